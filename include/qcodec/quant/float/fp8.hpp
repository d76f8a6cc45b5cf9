#pragma once
// FP8 storage types of the OCP 8-bit floating point specification (OFP8, v1.0, 2023), as used by
// NVIDIA Hopper/Blackwell, AMD MI300 and the MX formats:
//
//   fp8_e4m3  E4M3 "fn" variant: bias 7, no infinities, only S.1111.111 (0x7F / 0xFF) is NaN,
//             max finite 448 (S.1111.110), min normal 2^-6, min subnormal 2^-9.
//   fp8_e5m2  E5M2, IEEE-like: bias 15, S.11111.00 = +-inf, S.11111.{01,10,11} = NaN,
//             max finite 57344 (S.11110.11), min normal 2^-14, min subnormal 2^-16.
//
// float -> fp8 rounds to nearest, ties to even, exactly (minifloat.hpp). Out of range:
//
//                         saturating (default)     non-saturating
//   |x| rounds above max  +-max finite             E4M3: NaN (0x7F|s)   E5M2: +-inf
//   +-inf                 +-max finite             E4M3: NaN (0x7F|s)   E5M2: +-inf
//   NaN                   NaN (0x7F|s / 0x7E|s)    same
//
// "Rounds above max": E4M3 overflows for |x| > 464 (464 itself ties to 448), E5M2 for
// |x| >= 61440 (the tie goes to the even 2^16, which is out of range). fp8 -> float is exact.
// Storage types only, like qcodec::half: convert to float to compute.

#include <qcodec/quant/float/minifloat.hpp>

#include <cstdint>
#include <type_traits>

namespace qcodec {

namespace detail {
using e4m3_format = minifloat_format<4, 3, 7, minifloat_kind::fn>;
using e5m2_format = minifloat_format<5, 2, 15, minifloat_kind::ieee>;
}  // namespace detail

/// OCP FP8 E4M3 (fn): sign bit 7, exponent bits 6..3 (bias 7), fraction bits 2..0.
struct fp8_e4m3 {
  using format = detail::e4m3_format;
  static constexpr float max_finite = 448.0f;
  /// exponent of the largest power of two <= max_finite (the MX spec's emax_elem)
  static constexpr int emax = 8;
  std::uint8_t bits;  ///< the encoding

  fp8_e4m3() = default;
  /// Rounds `f` to nearest even, saturating (see the header comment).
  constexpr explicit fp8_e4m3(float f, overflow_mode mode = overflow_mode::saturate) noexcept
      : bits(detail::float_to_minifloat<format>(f, mode)) {}
  [[nodiscard]] static constexpr fp8_e4m3 from_bits(std::uint8_t b) noexcept {
    fp8_e4m3 v{};
    v.bits = b;
    return v;
  }
  /// The exact float value (NaN for 0x7F / 0xFF).
  [[nodiscard]] constexpr float to_float() const noexcept {
    return detail::minifloat_to_float<format>(bits);
  }
  constexpr explicit operator float() const noexcept { return to_float(); }
};

/// OCP FP8 E5M2: sign bit 7, exponent bits 6..2 (bias 15), fraction bits 1..0.
struct fp8_e5m2 {
  using format = detail::e5m2_format;
  static constexpr float max_finite = 57344.0f;
  static constexpr int emax = 15;
  std::uint8_t bits;  ///< the encoding

  fp8_e5m2() = default;
  /// Rounds `f` to nearest even, saturating (see the header comment).
  constexpr explicit fp8_e5m2(float f, overflow_mode mode = overflow_mode::saturate) noexcept
      : bits(detail::float_to_minifloat<format>(f, mode)) {}
  [[nodiscard]] static constexpr fp8_e5m2 from_bits(std::uint8_t b) noexcept {
    fp8_e5m2 v{};
    v.bits = b;
    return v;
  }
  /// The exact float value (+-inf for 0x7C / 0xFC, NaN for S.11111.xx with xx != 0).
  [[nodiscard]] constexpr float to_float() const noexcept {
    return detail::minifloat_to_float<format>(bits);
  }
  constexpr explicit operator float() const noexcept { return to_float(); }
};

static_assert(sizeof(fp8_e4m3) == 1 && std::is_trivial_v<fp8_e4m3>);
static_assert(sizeof(fp8_e5m2) == 1 && std::is_trivial_v<fp8_e5m2>);
static_assert(fp8_e4m3::from_bits(0x7E).to_float() == 448.0f);
static_assert(fp8_e5m2::from_bits(0x7B).to_float() == 57344.0f);
static_assert(fp8_e4m3(464.0f).bits == 0x7E && fp8_e4m3(465.0f, overflow_mode::no_saturate).bits == 0x7F);

namespace detail {
/// All 256 values of an FP8 format, for table decoding.
template <class T>
struct fp8_table {
  float value[256];
  constexpr fp8_table() noexcept : value{} {
    for (unsigned b = 0; b < 256; ++b) value[b] = T::from_bits(static_cast<std::uint8_t>(b)).to_float();
  }
};
template <class T>
inline constexpr fp8_table<T> fp8_values{};
}  // namespace detail

/// y[i] = value of the FP8 code x[i] (an exact 256-entry table lookup). T: fp8_e4m3 or fp8_e5m2.
template <class T>
inline void fp8_to_float(const std::uint8_t* x, std::size_t n, float* y) noexcept {
  const float* t = detail::fp8_values<T>.value;
  for (std::size_t i = 0; i < n; ++i) y[i] = t[x[i]];
}

/// y[i] = T(x[i], mode).bits for n floats (the branch-free conversion of minifloat.hpp, same
/// bits; needs the default rounding mode).
template <class T>
inline void float_to_fp8(const float* x, std::size_t n, std::uint8_t* y,
                         overflow_mode mode = overflow_mode::saturate) noexcept {
  for (std::size_t i = 0; i < n; ++i) y[i] = detail::float_to_minifloat_fast<typename T::format>(x[i], mode);
}

}  // namespace qcodec
