#pragma once
// ternary: BitNet b1.58 ternary quantization with absmean scaling (Ma et al., "The Era of 1-bit
// LLMs: All Large Language Models are in 1.58 Bits", 2024, eq. 1-3):
//
//   scale = mean_i |x_i|             (fit; 0 for an empty or all-zero group)
//   t_i   = clamp(nearbyint(x_i / scale), -1, 1)    (half to even: |x| = scale/2 goes to 0)
//   x_i  ~= scale * t_i
//
// Symbols (one byte each, the Quantizer contract): t + 1, i.e. 0 -> -scale, 1 -> 0, 2 -> +scale;
// a byte 3 decodes to 0 and larger bytes use their low two bits, so no byte is undefined.
// The round trip error is at most scale / 2 for |x| <= 1.5 * scale.
//
// Storage: pack_trits stores 5 trits per byte in base 3 (3^5 = 243 <= 256): 1.6 bits per value,
// plus 32 bits of scale per group. Layout: byte j = t[5j] + 3 t[5j+1] + 9 t[5j+2] + 27 t[5j+3]
// + 81 t[5j+4] (the first trit is the least significant digit; t = symbol in 0..2); n trits take
// (n + 4) / 5 bytes and the missing trits of a last, partial byte are 0. Bytes 243..255 never
// occur in packed output; unpack_trits decodes them to symbol 1 (value 0) for all five, and
// trits_valid reports them (and non-zero padding digits) for bytes from outside.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/uniform/uniform.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

namespace qcodec {

/// BitNet b1.58 ternary quantizer; models qcodec::Quantizer (symbols 0, 1, 2).
class ternary {
 public:
  using params_type = scale_params;
  /// Bits per symbol for a generic bit packer; pack_trits stores 1.6.
  static constexpr unsigned symbol_bits = 2;
  static constexpr unsigned metadata_bits = 32;
  /// Storage per value with pack_trits, excluding the per-group scale.
  static constexpr double packed_bits_per_value = 1.6;

  // The policy's own symbol packing (5 trits per byte), which codecs use instead of packing
  // symbol_bits-bit codes (codec/grouped_codec.hpp). Defined after pack_trits below.
  [[nodiscard]] static constexpr std::size_t packed_bytes(std::size_t n) noexcept;
  static void pack(std::span<const std::uint8_t> sym, std::span<std::uint8_t> out) noexcept;
  static void unpack(std::span<const std::uint8_t> packed, std::span<std::uint8_t> sym) noexcept;

  /// scale = mean |x| (absmean), accumulated in double.
  [[nodiscard]] params_type fit(std::span<const float> x) const noexcept {
    if (x.empty()) return {0.0f};
    double s = 0.0;
    for (const float v : x) s += std::fabs(double{v});
    return {static_cast<float>(s / static_cast<double>(x.size()))};
  }

  /// sym[i] = clamp(nearbyint(x[i] / scale), -1, 1) + 1 (NaN -> 1). x.size() == sym.size().
  void encode(std::span<const float> x, const params_type& p,
              std::span<std::uint8_t> sym) const noexcept {
    QCODEC_ASSERT(x.size() == sym.size(), "[qcodec.ternary.1] encode: x and sym differ in length");
    const std::size_t n = x.size() < sym.size() ? x.size() : sym.size();
    const float inv = p.scale != 0.0f ? 1.0f / p.scale : 0.0f;
    for (std::size_t i = 0; i < n; ++i) {
      // Rounded without a libm call where nearbyint is no instruction (core/rounding.hpp; there,
      // rounding toward zero takes x / scale in (-1, 0) to -1), then clamped.
      float t = detail::nearbyint_small(x[i] * inv);
      t = t == t ? t : 0.0f;  // NaN -> 0
      t = t > -1.0f ? t : -1.0f;
      t = t < 1.0f ? t : 1.0f;
      sym[i] = static_cast<std::uint8_t>(static_cast<int>(t) + 1);
    }
  }

  /// y[i] = scale * (sym[i] - 1) for symbols 0..2 (byte 3 -> 0; see the file comment).
  void decode(std::span<const std::uint8_t> sym, const params_type& p,
              std::span<float> y) const noexcept {
    QCODEC_ASSERT(sym.size() == y.size(), "[qcodec.ternary.2] decode: sym and y differ in length");
    const std::size_t n = sym.size() < y.size() ? sym.size() : y.size();
    const float level[4] = {-p.scale, 0.0f, p.scale, 0.0f};
    for (std::size_t i = 0; i < n; ++i) y[i] = level[sym[i] & 3u];
  }
};

namespace detail {

// unpacked_trits[b] = the five base-3 digits of b (least significant first); bytes >= 243 give
// 1, 1, 1, 1, 1 (value 0).
inline constexpr std::array<std::array<std::uint8_t, 5>, 256> unpacked_trits = [] {
  std::array<std::array<std::uint8_t, 5>, 256> t{};
  for (unsigned b = 0; b < 256; ++b) {
    unsigned v = b;
    for (unsigned k = 0; k < 5; ++k) {
      t[b][k] = static_cast<std::uint8_t>(b < 243 ? v % 3 : 1);
      v /= 3;
    }
  }
  return t;
}();

}  // namespace detail

/// Bytes pack_trits writes for n trits: (n + 4) / 5.
[[nodiscard]] constexpr std::size_t packed_trit_bytes(std::size_t n) noexcept {
  return (n + 4) / 5;
}

/// Packs trits (symbols 0..2; larger bytes are reduced modulo 3) five per byte into
/// out[0, (n + 4) / 5); see the file comment for the layout.
inline void pack_trits(std::span<const std::uint8_t> trits, std::span<std::uint8_t> out) noexcept {
  const std::size_t n = trits.size();
  QCODEC_ASSERT(out.size() >= packed_trit_bytes(n), "[qcodec.ternary.3] pack_trits: out too small");
  const std::size_t bytes = out.size() < packed_trit_bytes(n) ? out.size() : packed_trit_bytes(n);
  for (std::size_t j = 0; j < bytes; ++j) {
    unsigned v = 0;
    const std::size_t first = 5 * j;
    const std::size_t last = first + 5 < n ? first + 5 : n;
    for (std::size_t i = last; i-- > first;) v = 3 * v + trits[i] % 3u;
    out[j] = static_cast<std::uint8_t>(v);
  }
}

/// Unpacks trits.size() trits from packed[0, (n + 4) / 5) (symbols 0..2).
inline void unpack_trits(std::span<const std::uint8_t> packed,
                         std::span<std::uint8_t> trits) noexcept {
  const std::size_t n = trits.size();
  QCODEC_ASSERT(packed.size() >= packed_trit_bytes(n),
                "[qcodec.ternary.4] unpack_trits: packed too short");
  const std::size_t whole = n / 5 < packed.size() ? n / 5 : packed.size();
  for (std::size_t j = 0; j < whole; ++j) {
    const auto& d = detail::unpacked_trits[packed[j]];
    for (std::size_t k = 0; k < 5; ++k) trits[5 * j + k] = d[k];
  }
  if (n % 5 != 0 && whole < packed.size()) {
    const auto& d = detail::unpacked_trits[packed[whole]];
    for (std::size_t k = 0; k < n % 5; ++k) trits[5 * whole + k] = d[k];
  }
}

/// True when packed holds a valid encoding of n trits: (n + 4) / 5 bytes (extra bytes ignored),
/// each below 243, and the unused digits of a last partial byte zero. For bytes from outside.
[[nodiscard]] inline bool trits_valid(std::span<const std::uint8_t> packed,
                                      std::size_t n) noexcept {
  const std::size_t bytes = packed_trit_bytes(n);
  if (packed.size() < bytes) return false;
  for (std::size_t j = 0; j < bytes; ++j)
    if (packed[j] >= 243) return false;
  if (n % 5 != 0) {
    unsigned limit = 1;
    for (std::size_t k = 0; k < n % 5; ++k) limit *= 3;
    if (packed[bytes - 1] >= limit) return false;
  }
  return true;
}

constexpr std::size_t ternary::packed_bytes(std::size_t n) noexcept { return packed_trit_bytes(n); }
inline void ternary::pack(std::span<const std::uint8_t> sym, std::span<std::uint8_t> out) noexcept {
  pack_trits(sym, out);
}
inline void ternary::unpack(std::span<const std::uint8_t> packed,
                            std::span<std::uint8_t> sym) noexcept {
  unpack_trits(packed, sym);
}

}  // namespace qcodec
