#pragma once
// A seeded random number generator whose stream is part of qcodec's contract.
//
// Codecs draw random rotations (Hadamard sign diagonals), k-means initialisations and test data
// from a seed that is stored next to the encoded data, so the same seed must give the same
// numbers on every compiler, standard library and CPU. The std:: distributions cannot promise
// that (their algorithms are implementation defined), so every conversion below is spelled out.
//
// Algorithms:
//   * state: xoshiro256** 1.0 (Blackman & Vigna, "Scrambled linear pseudorandom number
//     generators", 2018; reference code at https://prng.di.unimi.it/xoshiro256starstar.c);
//   * seeding: the 256-bit state is the first four outputs of splitmix64 started at the seed
//     (https://prng.di.unimi.it/splitmix64.c), the seeding the xoshiro authors recommend;
//   * uniform():          top 24 bits of next_u64() times 2^-24, a float in [0, 1);
//   * uniform_below(b):   Lemire's multiply-and-reject ("Fast random integer generation in an
//                         interval", 2019), exactly unbiased;
//   * normal():           Marsaglia's polar method in double precision, one pair per two calls
//                         (the second value is cached), rounded to float. Its logarithm is
//                         computed here from +, *, / and std::fma (all correctly rounded by
//                         IEEE-754) instead of std::log, whose last bit differs between libms.
//
// The integer stream is identical everywhere. uniform() and normal() are identical on every
// platform with IEEE-754 binary32/binary64 arithmetic in round-to-nearest (every SSE2, AVX, NEON
// target; not x87 extended precision).

#include <qcodec/core/assert.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace qcodec {

/// One step of splitmix64 (Steele, Lea & Flood 2014): advances `state` by the golden-ratio
/// increment and returns its mixed value. From state 0 the outputs are 0xE220A8397B1DCDAF,
/// 0x6E789E6AA1B965F4, 0x06C45D188009454F, 0xF88BB8A8724C81EC.
[[nodiscard]] constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  state += 0x9E3779B97F4A7C15u;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

namespace detail {

// High and low 64-bit halves of a * b, without relying on a 128-bit integer type.
struct u128_parts {
  std::uint64_t hi;
  std::uint64_t lo;
};

constexpr u128_parts mul_64x64(std::uint64_t a, std::uint64_t b) noexcept {
  const std::uint64_t a_lo = a & 0xFFFFFFFFu, a_hi = a >> 32;
  const std::uint64_t b_lo = b & 0xFFFFFFFFu, b_hi = b >> 32;
  const std::uint64_t p0 = a_lo * b_lo, p1 = a_lo * b_hi, p2 = a_hi * b_lo, p3 = a_hi * b_hi;
  const std::uint64_t mid = (p0 >> 32) + (p1 & 0xFFFFFFFFu) + (p2 & 0xFFFFFFFFu);
  return {p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32), a * b};
}

// Natural logarithm of s in (0, 1], reproducible to the last bit: s = m * 2^e with
// m in [sqrt(1/2), sqrt(2)), then log(m) = 2 atanh(f) with f = (m - 1) / (m + 1), |f| <= 0.172,
// summed as an odd series whose 13th term is below 2^-56 relative. Every multiply-add is an
// explicit std::fma, so floating-point contraction settings cannot change the result.
inline double log_reproducible(double s) noexcept {
  int e = 0;
  double m = std::frexp(s, &e);  // exact, m in [0.5, 1)
  if (m < 0.70710678118654752440) {
    m *= 2.0;  // exact
    --e;
  }
  const double f = (m - 1.0) / (m + 1.0);
  const double f2 = f * f;
  // Coefficients 1/(2k+1) for k = 12 down to 1, evaluated by Horner's rule in f^2.
  double p = 1.0 / 25.0;
  p = std::fma(p, f2, 1.0 / 23.0);
  p = std::fma(p, f2, 1.0 / 21.0);
  p = std::fma(p, f2, 1.0 / 19.0);
  p = std::fma(p, f2, 1.0 / 17.0);
  p = std::fma(p, f2, 1.0 / 15.0);
  p = std::fma(p, f2, 1.0 / 13.0);
  p = std::fma(p, f2, 1.0 / 11.0);
  p = std::fma(p, f2, 1.0 / 9.0);
  p = std::fma(p, f2, 1.0 / 7.0);
  p = std::fma(p, f2, 1.0 / 5.0);
  p = std::fma(p, f2, 1.0 / 3.0);
  const double f3 = f * f2;
  const double log_m = 2.0 * std::fma(f3, p, f);
  return std::fma(static_cast<double>(e), 0.69314718055994530942, log_m);
}

}  // namespace detail

/// xoshiro256** generator seeded through splitmix64; see the file comment for the exact stream.
/// Satisfies std::uniform_random_bit_generator, so it can drive std::shuffle (whose own use of
/// the bits is implementation defined: use uniform_below for reproducible shuffles).
/// Not thread-safe; copy it to fork an identical stream.
class rng {
 public:
  using result_type = std::uint64_t;

  /// State = the first four splitmix64 outputs from `seed` (never all zero).
  explicit constexpr rng(std::uint64_t seed) noexcept {
    for (std::uint64_t& word : s_) word = splitmix64(seed);
  }

  [[nodiscard]] static constexpr result_type min() noexcept { return 0; }
  [[nodiscard]] static constexpr result_type max() noexcept {
    return std::numeric_limits<result_type>::max();
  }

  /// The next 64 random bits (xoshiro256** output, then a state step).
  constexpr std::uint64_t next_u64() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  constexpr result_type operator()() noexcept { return next_u64(); }

  /// Uniform float in [0, 1): the top 24 bits of next_u64() times 2^-24 (every value is exact).
  float uniform() noexcept { return static_cast<float>(next_u64() >> 40) * 0x1.0p-24f; }

  /// Uniform integer in [0, bound), exactly unbiased (Lemire 2019: the high half of
  /// next_u64() * bound, redrawing when the low half falls in the 2^64 mod bound short zone).
  /// Consumes one next_u64() except with probability < bound / 2^64. Requires bound > 0
  /// (returns 0 for bound == 0 when assertions are off).
  std::uint64_t uniform_below(std::uint64_t bound) noexcept {
    QCODEC_ASSERT(bound > 0, "uniform_below needs a positive bound");
    if (bound == 0) return 0;
    detail::u128_parts m = detail::mul_64x64(next_u64(), bound);
    if (m.lo < bound) {
      const std::uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
      while (m.lo < threshold) m = detail::mul_64x64(next_u64(), bound);
    }
    return m.hi;
  }

  /// Standard normal N(0, 1) as float, by Marsaglia's polar method: u, v uniform in [-1, 1) on a
  /// 2^-52 grid (top 53 bits of two next_u64() calls), redrawn until 0 < s = u^2 + v^2 < 1, then
  /// u * sqrt(-2 log(s) / s) is returned and v * sqrt(-2 log(s) / s) cached for the next call.
  float normal() noexcept {
    if (has_cached_) {
      has_cached_ = false;
      return cached_;
    }
    double u = 0.0, v = 0.0, s = 0.0;
    do {
      u = static_cast<double>(next_u64() >> 11) * 0x1.0p-52 - 1.0;  // exact
      v = static_cast<double>(next_u64() >> 11) * 0x1.0p-52 - 1.0;
      s = std::fma(u, u, v * v);
    } while (s >= 1.0 || s == 0.0);
    const double factor = std::sqrt(-2.0 * detail::log_reproducible(s) / s);
    cached_ = static_cast<float>(v * factor);
    has_cached_ = true;
    return static_cast<float>(u * factor);
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }

  std::uint64_t s_[4]{};
  float cached_ = 0.0f;
  bool has_cached_ = false;
};

/// Writes `n` random sign bits for the diagonal of a randomized Hadamard transform (see
/// simd/hadamard.hpp): bit i is bit (i mod 64) of the (i / 64)-th next_u64() of rng(seed), packed
/// LSB-first, i.e. bit i lands in bits[i / 8] at position i % 8. Fills exactly (n + 7) / 8 bytes;
/// the unused high bits of the last byte are zero. A set bit means "negate".
inline void fill_sign_bits(std::uint64_t seed, std::size_t n, std::uint8_t* bits) noexcept {
  rng gen(seed);
  const std::size_t bytes = (n + 7) / 8;
  for (std::size_t i = 0; i < bytes; i += 8) {
    const std::uint64_t word = gen.next_u64();
    for (std::size_t b = 0; b < 8 && i + b < bytes; ++b)
      bits[i + b] = static_cast<std::uint8_t>(word >> (8 * b));
  }
  if (n % 8 != 0) bits[bytes - 1] &= static_cast<std::uint8_t>((1u << (n % 8)) - 1);
}

}  // namespace qcodec
