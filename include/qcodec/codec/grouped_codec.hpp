#pragma once
// grouped_codec<Q>: any_codec for a scalar Quantizer policy (quant/concepts.hpp) applied per
// group of G consecutive values of each row (per_group<G> granularity, G chosen at run time).
//
// Stream layout, row after row; each row is ceil(cols / G) groups (the last one may be shorter),
// and each group is
//
//   params   sizeof(Q::params_type) bytes, the policy's parameters as stored in memory
//            (little-endian hosts: e.g. a float scale is its IEEE bytes)
//   codes    n codes of Q::symbol_bits bits, packed LSB-first (simd/bit_packing.hpp),
//            ceil(n * symbol_bits / 8) bytes
//
// so bits per value = symbol_bits + 8 * sizeof(params_type) / G (every stored bit counted).
// Decoding untrusted streams relies on every bit pattern of params_type being a valid value
// (true of the float and integer parameters of qcodec's policies) and on the policy's decode
// accepting any code below 2^symbol_bits.

#include <qcodec/codec/any_codec.hpp>
#include <qcodec/codec/spec.hpp>
#include <qcodec/quant/concepts.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace qcodec {

/// A policy that packs its own symbols (ternary: 5 trits per byte) instead of storing
/// symbol_bits bits per symbol: packed_bytes(n) bytes hold n symbols.
template <class Q>
concept SymbolPacker = requires(std::span<const std::uint8_t> in, std::span<std::uint8_t> out,
                                std::size_t n) {
  { Q::packed_bytes(n) } -> std::same_as<std::size_t>;
  Q::pack(in, out);
  Q::unpack(in, out);
};

template <Quantizer Q>
class grouped_codec final : public any_codec {
 public:
  using params_type = typename Q::params_type;
  static constexpr unsigned bits = Q::symbol_bits;
  static_assert(bits >= 1 && bits <= 8, "grouped_codec packs 1..8-bit symbols");
  static_assert(
      [] {
        if constexpr (requires { Q::symbols_per_value; }) return Q::symbols_per_value == 1;
        return true;
      }(),
      "grouped_codec stores one symbol per value: policies with symbols_per_value != 1 "
      "(ieee16_quantizer) cannot be carried");

  /// `quantizer` applied to groups of `group` values (group > 0); `spec` names the codec.
  grouped_codec(Q quantizer, std::size_t group, std::string spec)
      : q_(std::move(quantizer)), group_(group), spec_(std::move(spec)) {
    QCODEC_ASSERT(group > 0, "groups hold at least one value");
  }

  [[nodiscard]] std::string spec() const override { return spec_; }
  [[nodiscard]] status check_shape(std::size_t, std::size_t) const override { return {}; }

  [[nodiscard]] std::size_t encoded_bytes(std::size_t rows, std::size_t cols) const override {
    return rows * row_bytes(cols);
  }

  void encode(matrix_view<const float> x, std::span<std::uint8_t> out) const override {
    QCODEC_ASSERT(out.size() == encoded_bytes(x.rows(), x.cols()), "output size mismatch");
    const simd::packing_kernels& pack = simd::kernels().packing;
    std::vector<std::uint8_t> symbols(group_);
    std::uint8_t* p = out.data();
    for (std::size_t r = 0; r < x.rows(); ++r) {
      const std::span<const float> row = x.row(r);
      for (std::size_t start = 0; start < row.size(); start += group_) {
        const std::span<const float> g = row.subspan(start, std::min(group_, row.size() - start));
        const params_type params = q_.fit(g);
        std::memcpy(p, &params, sizeof params);
        p += sizeof params;
        q_.encode(g, params, {symbols.data(), g.size()});
        if constexpr (SymbolPacker<Q>) {
          Q::pack({symbols.data(), g.size()}, {p, code_bytes(g.size())});
        } else {
          pack.pack_bits(symbols.data(), g.size(), bits, p);
        }
        p += code_bytes(g.size());
      }
    }
  }

  [[nodiscard]] status decode(std::span<const std::uint8_t> in,
                              matrix_view<float> y) const override {
    if (in.size() != encoded_bytes(y.rows(), y.cols())) {
      return status::failure(codec_errors::size_mismatch,
                             spec_ + ": expected " +
                                 std::to_string(encoded_bytes(y.rows(), y.cols())) +
                                 " bytes, got " + std::to_string(in.size()));
    }
    const simd::packing_kernels& pack = simd::kernels().packing;
    std::vector<std::uint8_t> symbols(group_);
    const std::uint8_t* p = in.data();
    for (std::size_t r = 0; r < y.rows(); ++r) {
      const std::span<float> row = y.row(r);
      for (std::size_t start = 0; start < row.size(); start += group_) {
        const std::span<float> g = row.subspan(start, std::min(group_, row.size() - start));
        params_type params;
        std::memcpy(&params, p, sizeof params);
        p += sizeof params;
        if constexpr (SymbolPacker<Q>) {
          Q::unpack({p, code_bytes(g.size())}, {symbols.data(), g.size()});
        } else {
          pack.unpack_bits(p, g.size(), bits, symbols.data());
        }
        p += code_bytes(g.size());
        q_.decode({symbols.data(), g.size()}, params, g);
      }
    }
    return {};
  }

  [[nodiscard]] const Q& quantizer() const noexcept { return q_; }

  /// Bytes of the packed symbols of a group of n values.
  [[nodiscard]] static constexpr std::size_t code_bytes(std::size_t n) noexcept {
    if constexpr (SymbolPacker<Q>) {
      return Q::packed_bytes(n);
    } else {
      return (n * bits + 7) / 8;
    }
  }

  [[nodiscard]] std::size_t group() const noexcept { return group_; }

 private:
  [[nodiscard]] std::size_t row_bytes(std::size_t cols) const noexcept {
    const std::size_t full = cols / group_, tail = cols % group_;
    return full * (sizeof(params_type) + code_bytes(group_)) +
           (tail != 0 ? sizeof(params_type) + code_bytes(tail) : 0);
  }

  Q q_;
  std::size_t group_;
  std::string spec_;
};

}  // namespace qcodec
