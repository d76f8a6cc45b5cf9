#pragma once
// ieee16_quantizer<T>: plain fp16 (qcodec::half) or bf16 (qcodec::bfloat16) storage as a
// Quantizer policy, the 16-bit baseline the other policies are compared against. No parameters
// (params_type is empty); conversion rounds to nearest even (core/half.hpp, core/bfloat16.hpp).
//
// Symbols: the concept's symbols are bytes, so each value takes TWO symbols, the little-endian
// bytes of its 16-bit encoding: sym.size() == 2 * x.size() (symbols_per_value = 2,
// symbol_bits = 8). Bits per value: 16. Generic drivers that assume one symbol per value
// (quant/grouping.hpp) cannot carry this policy; check `symbols_per_value` first. A span pair
// of the wrong sizes fails QCODEC_ASSERT and, with asserts off, is never read or written past
// its end (only min(x.size(), sym.size() / 2) values are converted).

#include <qcodec/core/assert.hpp>
#include <qcodec/core/bfloat16.hpp>
#include <qcodec/core/half.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

namespace qcodec {

template <class T>
struct ieee16_quantizer {
  struct params_type {};
  static constexpr unsigned symbol_bits = 8;
  static constexpr std::size_t symbols_per_value = 2;

  [[nodiscard]] params_type fit(std::span<const float>) const noexcept { return {}; }
  void encode(std::span<const float> x, const params_type&, std::span<std::uint8_t> sym) const noexcept {
    QCODEC_ASSERT(sym.size() == 2 * x.size(), "[qcodec.float.2] two symbols per value");
    const std::size_t n = x.size() < sym.size() / 2 ? x.size() : sym.size() / 2;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint16_t b = T(x[i]).bits;
      sym[2 * i] = static_cast<std::uint8_t>(b & 0xFFu);
      sym[2 * i + 1] = static_cast<std::uint8_t>(b >> 8);
    }
  }
  void decode(std::span<const std::uint8_t> sym, const params_type&, std::span<float> y) const noexcept {
    QCODEC_ASSERT(sym.size() == 2 * y.size(), "[qcodec.float.2] two symbols per value");
    const std::size_t n = y.size() < sym.size() / 2 ? y.size() : sym.size() / 2;
    for (std::size_t i = 0; i < n; ++i)
      y[i] = T::from_bits(static_cast<std::uint16_t>(sym[2 * i] | sym[2 * i + 1] << 8)).to_float();
  }
};

using fp16_quantizer = ieee16_quantizer<half>;
using bf16_quantizer = ieee16_quantizer<bfloat16>;

}  // namespace qcodec
