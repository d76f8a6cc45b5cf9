#pragma once
// `qcodec::bfloat16`: the top 16 bits of an IEEE 754 binary32 (sign, 8-bit exponent, 7-bit
// fraction) as a storage type (2 bytes, trivially copyable): float's range with 8 significant
// bits, as used for model weights and activations. No arithmetic and no comparison operators:
// convert to float, compute, convert back. Bulk conversion of arrays is a kernel
// (`simd::kernels().convert.f32_to_bf16` / `bf16_to_f32`).
//
// Exact definition (simd/convert.hpp):
//   float -> bfloat16  round to nearest, ties to even; overflow gives +-inf; float subnormals
//                      round into bfloat16 subnormals (never flushed, unlike AVX512_BF16's
//                      `vcvtneps2bf16`); NaN -> (float bits >> 16) | 0x0040, i.e. quieted with
//                      its sign and top 6 payload bits kept, so no NaN turns into infinity.
//   bfloat16 -> float  exact: bits << 16 (NaNs keep their bits).
// Both are a few integer operations, constexpr, and identical on every target (no hardware
// path: the AVX512_BF16 instruction flushes subnormals, so it would not give the same bits).

#include <qcodec/simd/convert.hpp>

#include <cstdint>
#include <type_traits>

namespace qcodec {

/// float -> bfloat16 bits, round to nearest even (NaN -> (bits >> 16) | 0x0040).
[[nodiscard]] constexpr std::uint16_t float_to_bfloat16(float f) noexcept {
  return ref::float_to_bfloat16(f);
}

/// bfloat16 bits -> float, exact.
[[nodiscard]] constexpr float bfloat16_to_float(std::uint16_t b) noexcept {
  return ref::bfloat16_to_float(b);
}

/// bfloat16: sign (bit 15), exponent (bits 14..7, bias 127), fraction (bits 6..0).
/// Default construction leaves `bits` uninitialised, as for float (keeps the type trivial);
/// `bfloat16{}` is +0.
struct bfloat16 {
  std::uint16_t bits;  ///< the top half of the float encoding

  bfloat16() = default;
  /// Rounds `f` to nearest even.
  constexpr explicit bfloat16(float f) noexcept : bits(float_to_bfloat16(f)) {}

  /// The bfloat16 whose encoding is `b`.
  [[nodiscard]] static constexpr bfloat16 from_bits(std::uint16_t b) noexcept {
    bfloat16 v{};
    v.bits = b;
    return v;
  }

  /// The exact float value.
  [[nodiscard]] constexpr float to_float() const noexcept { return bfloat16_to_float(bits); }
  constexpr explicit operator float() const noexcept { return to_float(); }
};

static_assert(sizeof(bfloat16) == 2 && alignof(bfloat16) == 2);
static_assert(std::is_trivially_copyable_v<bfloat16> && std::is_trivial_v<bfloat16> &&
              std::is_standard_layout_v<bfloat16>);

}  // namespace qcodec
