#pragma once
// FP4 E2M1, the element type of OCP MXFP4 and NVIDIA NVFP4: sign bit 3, exponent bits 2..1
// (bias 1), fraction bit 0, stored in the low nibble of a byte. The 16 codes are
//   0, 0.5, 1, 1.5, 2, 3, 4, 6   (codes 0..7)   and their negatives (codes 8..15; 8 is -0).
// No infinities and no NaN. float -> E2M1 rounds to nearest, ties to even (so 0.25 -> 0,
// 0.75 -> 1, 2.5 -> 2, 5 -> 4), and always saturates: |x| > 6 and +-inf give +-6. NaN gives +-0
// (E2M1 cannot hold it; MX blocks signal NaN through their E8M0 scale instead).

#include <qcodec/quant/float/minifloat.hpp>

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace qcodec {

namespace detail {
using e2m1_format = minifloat_format<2, 1, 1, minifloat_kind::finite>;
}  // namespace detail

/// OCP FP4 E2M1 in the low 4 bits of a byte (the high bits are zero).
struct fp4_e2m1 {
  using format = detail::e2m1_format;
  static constexpr float max_finite = 6.0f;
  /// exponent of the largest power of two <= max_finite (the MX spec's emax_elem)
  static constexpr int emax = 2;
  std::uint8_t bits;  ///< the code, 0..15

  fp4_e2m1() = default;
  /// Rounds `f` to nearest even, saturating at +-6; NaN -> +-0.
  constexpr explicit fp4_e2m1(float f) noexcept
      : bits(detail::float_to_minifloat<format>(f, overflow_mode::saturate)) {}
  /// The code `b` (low 4 bits used).
  [[nodiscard]] static constexpr fp4_e2m1 from_bits(std::uint8_t b) noexcept {
    fp4_e2m1 v{};
    v.bits = static_cast<std::uint8_t>(b & 15u);
    return v;
  }
  [[nodiscard]] constexpr float to_float() const noexcept {
    return detail::minifloat_to_float<format>(bits);
  }
  constexpr explicit operator float() const noexcept { return to_float(); }
};

static_assert(sizeof(fp4_e2m1) == 1 && std::is_trivial_v<fp4_e2m1>);

/// The 16 E2M1 values indexed by code (the 16-entry table of simd/lut.hpp decoding).
inline constexpr float e2m1_values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                          -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

namespace detail {
/// The E2M1 code of the nearest value to v (ties to even, saturating): the minifloat
/// conversion, written as comparisons against the midpoints for speed. Same result for every v
/// (tested against the minifloat conversion on all midpoints and random floats).
[[nodiscard]] inline std::uint8_t e2m1_code(float v) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(v);
  const float a = std::bit_cast<float>(u & 0x7FFFFFFFu);
  // ties go to the even code: midpoints 0.25 1.25 2.5 5 round down, 0.75 1.75 3.5 up
  std::uint8_t c = static_cast<std::uint8_t>((a > 0.25f) + (a >= 0.75f) + (a > 1.25f) +
                                             (a >= 1.75f) + (a > 2.5f) + (a >= 3.5f) + (a > 5.0f));
  if (a != a) c = 0;
  return static_cast<std::uint8_t>(c | ((u >> 28) & 8u));
}
}  // namespace detail

}  // namespace qcodec
