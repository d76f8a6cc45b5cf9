#pragma once
// Exact conversions between float and small binary floating-point formats (FP8, FP6, FP4), the
// shared engine behind fp8.hpp and fp4.hpp.
//
// A format is 1 sign bit, E exponent bits (bias B) and M fraction bits, stored in the low
// 1 + E + M bits of a byte. Field exponent 0 holds the subnormals m * 2^(1 - B - M); field e > 0
// holds (1 + m / 2^M) * 2^(e - B). What the all-ones exponent means differs per format (`kind`):
//
//   ieee      all-ones exponent: fraction 0 = +-inf, otherwise NaN (FP8 E5M2)
//   fn        no infinities; only the all-ones pattern (exponent and fraction) is NaN (FP8 E4M3)
//   finite    every pattern is a finite number; no inf, no NaN (FP4 E2M1, FP6)
//
// float -> format rounds exactly to nearest, ties to even, as if the exponent range were
// unbounded above (so a value is an overflow when its rounded magnitude exceeds the largest
// finite value: for E4M3 that is |x| > 464, the midpoint between 448 and the missing 480, while
// 464 itself rounds to 448). Then, by `overflow`:
//
//   saturate      overflow and +-inf give +-max finite (OCP FP8 "saturation mode")
//   no_saturate   overflow and +-inf give +-inf (ieee) or NaN (fn); `finite` formats saturate
//                 anyway, having neither
//
// NaN input gives the format's NaN (sign kept; ieee: quiet NaN, fraction MSB set) or, for a
// `finite` format, +-0 (documented choice: such formats carry NaN at block level, e.g. the MX
// E8M0 scale 0xFF). Float subnormals and zeros round to +-0; the sign of zero is kept.
//
// Every function is constexpr and uses integer operations only, so all targets return the
// same bits.

#include <bit>
#include <cstdint>

namespace qcodec {

/// What a small float format does with its all-ones exponent (see the header comment).
enum class minifloat_kind : std::uint8_t { ieee, fn, finite };

/// Out-of-range policy of float -> small float conversions (see the header comment).
enum class overflow_mode : std::uint8_t { saturate, no_saturate };

namespace detail {

/// Format parameters: E exponent bits, M fraction bits, bias B, kind K.
template <unsigned E, unsigned M, int B, minifloat_kind K>
struct minifloat_format {
  static_assert(E >= 1 && E <= 5 && M <= 7 && 1 + E + M <= 8, "a format of at most 8 bits");
  static constexpr unsigned exp_bits = E;
  static constexpr unsigned man_bits = M;
  static constexpr int bias = B;
  static constexpr minifloat_kind kind = K;
  static constexpr unsigned total_bits = 1 + E + M;
  static constexpr std::uint8_t sign_mask = static_cast<std::uint8_t>(1u << (E + M));
  static constexpr std::uint8_t abs_mask = static_cast<std::uint8_t>(sign_mask - 1u);
  static constexpr unsigned exp_all_ones = (1u << E) - 1u;
  /// Magnitude bits of the largest finite value.
  static constexpr std::uint8_t max_finite_bits = static_cast<std::uint8_t>(
      K == minifloat_kind::ieee  ? ((exp_all_ones - 1u) << M) | ((1u << M) - 1u)
      : K == minifloat_kind::fn ? abs_mask - 1u
                                : abs_mask);
  /// Magnitude bits of NaN (quiet NaN for ieee), and of +inf (ieee only).
  static constexpr std::uint8_t nan_bits = static_cast<std::uint8_t>(
      K == minifloat_kind::ieee ? (exp_all_ones << M) | (1u << (M - 1)) : abs_mask);
  static constexpr std::uint8_t inf_bits = static_cast<std::uint8_t>(exp_all_ones << M);
};

/// The format's value of `bits` (exact; NaN and inf as float NaN and inf).
template <class F>
[[nodiscard]] constexpr float minifloat_to_float(std::uint8_t bits) noexcept {
  const std::uint32_t sign = (bits & F::sign_mask) ? 0x80000000u : 0u;
  const unsigned mag = bits & F::abs_mask;
  const unsigned e = mag >> F::man_bits;
  const unsigned m = mag & ((1u << F::man_bits) - 1u);
  if constexpr (F::kind == minifloat_kind::ieee) {
    if (e == F::exp_all_ones)
      return std::bit_cast<float>(sign | (m == 0 ? 0x7F800000u : 0x7FC00000u | (m << (23 - F::man_bits))));
  } else if constexpr (F::kind == minifloat_kind::fn) {
    if (mag == F::abs_mask) return std::bit_cast<float>(sign | 0x7FC00000u);
  }
  if (e == 0) {
    // m * 2^(1 - B - M): m is exact in float and the power of two is a normal float
    constexpr int p = 1 - F::bias - static_cast<int>(F::man_bits);
    constexpr float ulp = std::bit_cast<float>(static_cast<std::uint32_t>(p + 127) << 23);
    const float v = static_cast<float>(m) * ulp;
    return sign ? -v : v;
  }
  const auto fe = static_cast<std::uint32_t>(static_cast<int>(e) - F::bias + 127);
  return std::bit_cast<float>(sign | fe << 23 | m << (23 - F::man_bits));
}

/// float -> format bits, round to nearest even, overflow by `mode` (see the header comment).
template <class F>
[[nodiscard]] constexpr std::uint8_t float_to_minifloat(float f, overflow_mode mode) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  const auto sign = static_cast<std::uint8_t>((u >> 31) ? F::sign_mask : 0u);
  const std::uint32_t a = u & 0x7FFFFFFFu;
  const auto overflow = [&]() -> std::uint8_t {
    if (mode == overflow_mode::no_saturate) {
      if constexpr (F::kind == minifloat_kind::ieee) return sign | F::inf_bits;
      if constexpr (F::kind == minifloat_kind::fn) return sign | F::nan_bits;
    }
    return sign | F::max_finite_bits;
  };
  if (a > 0x7F800000u) {  // NaN
    if constexpr (F::kind == minifloat_kind::finite) return sign;
    return sign | F::nan_bits;
  }
  if (a == 0x7F800000u) return overflow();
  if (a < 0x00800000u) return sign;  // float zero or subnormal: far below every format's ulp
  constexpr int M = static_cast<int>(F::man_bits);
  constexpr int emin = 1 - F::bias;  // exponent of the smallest normal
  const int e = static_cast<int>(a >> 23) - 127;
  const std::uint64_t sig = (a & 0x007FFFFFu) | 0x00800000u;  // value = sig * 2^(e - 23)
  const int te = e > emin ? e : emin;                          // binade of the result
  const int shift = te - M - (e - 23);                         // >= 23 - M > 0
  if (shift > 40) return sign;                                 // below a quarter ulp
  const std::uint64_t half = std::uint64_t{1} << (shift - 1);
  const std::uint64_t rem = sig & ((half << 1) - 1u);
  std::uint64_t r = sig >> shift;  // value = r * 2^(te - M) after rounding
  r += static_cast<std::uint64_t>((rem > half) | ((rem == half) & ((r & 1u) != 0)));  // branch-free
  int field_e = te + F::bias;  // biased exponent if r is normalised
  if (r < (std::uint64_t{1} << M)) {
    field_e = 0;  // subnormal (only when te == emin)
  } else if (r == (std::uint64_t{1} << (M + 1))) {
    r >>= 1;  // rounding carried into the next binade
    ++field_e;
  }
  if (field_e > static_cast<int>(F::exp_all_ones)) return overflow();
  const auto mag = static_cast<unsigned>(field_e) << M | (static_cast<unsigned>(r) & ((1u << M) - 1u));
  if (mag > F::max_finite_bits) return overflow();
  return static_cast<std::uint8_t>(sign | mag);
}

/// The same result as float_to_minifloat, without branches, for bulk loops the compiler can
/// vectorize (float_to_fp8, the scaled policies, MX encoders). Requires the default
/// round-to-nearest-even FP environment (the subnormal results come from one float addition).
///   * normal results: round the float's fraction to M bits on its bit pattern (ties to even:
///     add 2^(22-M) - 1 plus the lowest kept bit, then truncate); a carry moves the exponent up
///   * subnormal results (|x| < 2^emin): |x| + 2^(emin - M + 23) rounds |x| to a multiple of the
///     subnormal step 2^(emin - M) in hardware, and the low bits of the sum count the steps
///     (a count of 2^M is the smallest normal, whose code is also 2^M)
template <class F>
[[nodiscard]] inline std::uint8_t float_to_minifloat_fast(float f, overflow_mode mode) noexcept {
  constexpr int M = static_cast<int>(F::man_bits);
  constexpr int emin = 1 - F::bias;
  constexpr float K = std::bit_cast<float>(static_cast<std::uint32_t>(emin - M + 23 + 127) << 23);
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t a = u & 0x7FFFFFFFu;
  const std::uint32_t rounded = a + ((1u << (22 - M)) - 1u) + ((a >> (23 - M)) & 1u);
  const std::int32_t normal =
      static_cast<std::int32_t>(rounded >> (23 - M)) - ((127 - F::bias) << M);
  const std::int32_t sub = static_cast<std::int32_t>(
      std::bit_cast<std::uint32_t>(std::bit_cast<float>(a) + K) - std::bit_cast<std::uint32_t>(K));
  std::int32_t code = a < (static_cast<std::uint32_t>(emin + 127) << 23) ? sub : normal;
  std::int32_t over = F::max_finite_bits;
  if constexpr (F::kind == minifloat_kind::ieee)
    over = mode == overflow_mode::no_saturate ? F::inf_bits : over;
  if constexpr (F::kind == minifloat_kind::fn)
    over = mode == overflow_mode::no_saturate ? F::nan_bits : over;
  code = code > F::max_finite_bits ? over : code;
  code = a > 0x7F800000u ? (F::kind == minifloat_kind::finite ? 0 : F::nan_bits) : code;
  return static_cast<std::uint8_t>(static_cast<std::uint32_t>(code) | ((u >> 31) << (F::exp_bits + F::man_bits)));
}

}  // namespace detail
}  // namespace qcodec
