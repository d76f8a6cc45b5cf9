#include <qcodec/core/rng.hpp>

#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "../support/catch.hpp"

// Expected streams below come from an independent transcription of the reference C code
// (prng.di.unimi.it: splitmix64.c and xoshiro256starstar.c) run outside this project; the
// splitmix64 values from state 0 are the ones published with that code.

static_assert(std::uniform_random_bit_generator<qcodec::rng>);
static_assert(qcodec::rng::min() == 0);
static_assert(qcodec::rng::max() == std::numeric_limits<std::uint64_t>::max());

TEST_CASE("splitmix64 from state 0 gives the published outputs", "[rng]") {
  std::uint64_t state = 0;
  CHECK(qcodec::splitmix64(state) == 0xE220A8397B1DCDAFu);
  CHECK(qcodec::splitmix64(state) == 0x6E789E6AA1B965F4u);
  CHECK(qcodec::splitmix64(state) == 0x06C45D188009454Fu);
  CHECK(qcodec::splitmix64(state) == 0xF88BB8A8724C81ECu);
}

TEST_CASE("xoshiro256** seeded through splitmix64 gives the reference stream", "[rng]") {
  struct known {
    std::uint64_t seed;
    std::uint64_t first[5];
  };
  const known streams[] = {
      {0,
       {0x99EC5F36CB75F2B4u, 0xBF6E1F784956452Au, 0x1A5F849D4933E6E0u, 0x6AA594F1262D2D2Cu,
        0xBBA5AD4A1F842E59u}},
      {42,
       {0x15780B2E0C2EC716u, 0x6104D9866D113A7Eu, 0xAE17533239E499A1u, 0xECB8AD4703B360A1u,
        0xFDE6DC7FE2EC5E64u}},
      {0xDEADBEEF,
       {0xC5555444A74D7E83u, 0x65C30D37B4B16E38u, 0x54F773200A4EFA23u, 0x429AED75FB958AF7u,
        0xFB0E1DD69C255B2Eu}},
  };
  for (const known& k : streams) {
    INFO("seed " << k.seed);
    qcodec::rng gen(k.seed);
    for (std::uint64_t want : k.first) CHECK(gen.next_u64() == want);
  }
  // operator() is the same stream.
  qcodec::rng a(0);
  CHECK(a() == 0x99EC5F36CB75F2B4u);
}

TEST_CASE("the stream is deterministic and depends on the seed", "[rng]") {
  qcodec::rng a(2024), b(2024), c(2025);
  int equal_to_other_seed = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t va = a.next_u64();
    REQUIRE(va == b.next_u64());
    equal_to_other_seed += va == c.next_u64();
  }
  CHECK(equal_to_other_seed == 0);

  qcodec::rng d(7);
  qcodec::rng fork = d;  // copying forks an identical stream, normal() cache included
  (void)d.normal();
  (void)fork.normal();
  CHECK(d.normal() == fork.normal());
  CHECK(d.uniform() == fork.uniform());
}

TEST_CASE("uniform() is the top 24 bits scaled into [0, 1) with the right moments", "[rng]") {
  qcodec::rng first(0);
  CHECK(first.uniform() == static_cast<float>(0x99EC5F36CB75F2B4u >> 40) * 0x1.0p-24f);

  qcodec::rng gen(1);
  constexpr int n = 1 << 20;
  double sum = 0.0, sum_sq = 0.0;
  int below_tenth = 0;
  float lo = 1.0f, hi = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float u = gen.uniform();
    REQUIRE(u >= 0.0f);
    REQUIRE(u < 1.0f);
    lo = u < lo ? u : lo;
    hi = u > hi ? u : hi;
    sum += u;
    sum_sq += double{u} * u;
    below_tenth += u < 0.1f;
  }
  const double mean = sum / n, var = sum_sq / n - mean * mean;
  // Five standard errors: sd(mean) = sqrt(1/12 / n); sd(var) = sqrt((1/80 - 1/144) / n).
  CHECK(std::fabs(mean - 0.5) < 5.0 * std::sqrt(1.0 / 12.0 / n));
  CHECK(std::fabs(var - 1.0 / 12.0) < 5.0 * std::sqrt((1.0 / 80.0 - 1.0 / 144.0) / n));
  CHECK(std::fabs(below_tenth / double{n} - 0.1) < 5.0 * std::sqrt(0.09 / n));
  CHECK(lo < 1e-4f);
  CHECK(hi > 1.0f - 1e-4f);
}

TEST_CASE("uniform_below never reaches the bound and is unbiased", "[rng]") {
  qcodec::rng first(0);
  CHECK(first.uniform_below(10) == 6);  // high half of 0x99EC5F36CB75F2B4 * 10

  qcodec::rng gen(3);
  for (int i = 0; i < 1000; ++i) REQUIRE(gen.uniform_below(1) == 0);

  const std::uint64_t bounds[] = {
      2, 3, 7, 10, 1000, 0x8000000000000001u, std::numeric_limits<std::uint64_t>::max()};
  for (std::uint64_t bound : bounds) {
    INFO("bound " << bound);
    for (int i = 0; i < 100000; ++i) REQUIRE(gen.uniform_below(bound) < bound);
  }

  SECTION("counts over 10 values pass a chi-square test") {
    constexpr int n = 200000, k = 10;
    int counts[k] = {};
    for (int i = 0; i < n; ++i) ++counts[gen.uniform_below(k)];
    double chi2 = 0.0;
    for (int c : counts) chi2 += (c - n / double{k}) * (c - n / double{k}) / (n / double{k});
    CHECK(chi2 < 37.7);  // 9 degrees of freedom, p = 1e-5
  }

  SECTION("a bound just above 2^63 is not biased towards small values") {
    // 2^64 mod bound = 2^63 - 1: plain `x % bound` would return values below 2^63 - 1 twice as
    // often, moving the mean from bound/2 to bound/3; the rejection step must prevent that.
    constexpr std::uint64_t bound = 0x8000000000000001u;
    constexpr int n = 100000;
    double sum = 0.0;
    for (int i = 0; i < n; ++i) sum += static_cast<double>(gen.uniform_below(bound));
    const double mean = sum / n, expected = static_cast<double>(bound) / 2.0;
    CHECK(std::fabs(mean - expected) < 5.0 * static_cast<double>(bound) / std::sqrt(12.0 * n));
  }
}

TEST_CASE("normal() reproduces the reference polar-method stream", "[rng]") {
  // Marsaglia polar method in double from the stream of rng(seed), rounded to float.
  qcodec::rng a(0);
  CHECK(a.normal() == 0x1.323a82p-1f);
  CHECK(a.normal() == 0x1.76a55p+0f);
  CHECK(a.normal() == -0x1.ca4454p-1f);
  CHECK(a.normal() == -0x1.81270ep-3f);
  CHECK(a.normal() == -0x1.35329ap+1f);
  CHECK(a.normal() == 0x1.1b7214p+0f);
  qcodec::rng b(12345);
  CHECK(b.normal() == 0x1.87d442p-2f);
  CHECK(b.normal() == -0x1.2947dep-1f);
  CHECK(b.normal() == 0x1.c5bf54p-6f);
  CHECK(b.normal() == -0x1.f6f03p-3f);
}

TEST_CASE("normal() has the moments of N(0, 1)", "[rng]") {
  qcodec::rng gen(5);
  constexpr int n = 1 << 20;
  double m1 = 0.0, m2 = 0.0, m3 = 0.0, m4 = 0.0;
  int within_one = 0;
  for (int i = 0; i < n; ++i) {
    const double z = gen.normal();
    REQUIRE(std::isfinite(z));
    m1 += z;
    m2 += z * z;
    m3 += z * z * z;
    m4 += z * z * z * z;
    within_one += std::fabs(z) < 1.0;
  }
  m1 /= n;
  m2 /= n;
  m3 /= n;
  m4 /= n;
  // Five standard errors of each sample moment of N(0, 1): sd = sqrt(Var(z^k) / n) with
  // Var(z) = 1, Var(z^2) = 2, Var(z^3) = 15, Var(z^4) = 96.
  CHECK(std::fabs(m1) < 5.0 * std::sqrt(1.0 / n));
  CHECK(std::fabs(m2 - 1.0) < 5.0 * std::sqrt(2.0 / n));
  CHECK(std::fabs(m3) < 5.0 * std::sqrt(15.0 / n));
  CHECK(std::fabs(m4 - 3.0) < 5.0 * std::sqrt(96.0 / n));
  const double p = 0.682689492137;  // P(|z| < 1)
  CHECK(std::fabs(within_one / double{n} - p) < 5.0 * std::sqrt(p * (1 - p) / n));
}

TEST_CASE("the reproducible logarithm is accurate", "[rng]") {
  qcodec::rng gen(11);
  double worst = 0.0;
  for (int i = 0; i < 100000; ++i) {
    // Log-uniform over (2^-104, 1]: the range of s in the polar method.
    const double s = std::ldexp(1.0 + static_cast<double>(gen.next_u64() >> 11) * 0x1.0p-53,
                                -static_cast<int>(gen.uniform_below(105)));
    const double want = std::log(s);
    const double got = qcodec::detail::log_reproducible(s);
    const double err = want == 0.0 ? std::fabs(got) : std::fabs(got - want) / std::fabs(want);
    worst = err > worst ? err : worst;
  }
  CHECK(worst < 1e-15);
  CHECK(qcodec::detail::log_reproducible(1.0) == 0.0);
  CHECK(qcodec::detail::log_reproducible(0.5) == std::log(0.5));
}

TEST_CASE("fill_sign_bits packs the stream LSB-first and touches only (n+7)/8 bytes", "[rng]") {
  // rng(7)'s first output ends in ...9765A: bits 0..19 are 0x9765A.
  std::uint8_t twenty[4] = {0xEE, 0xEE, 0xEE, 0xEE};
  qcodec::fill_sign_bits(7, 20, twenty);
  CHECK(twenty[0] == 0x5A);
  CHECK(twenty[1] == 0x76);
  CHECK(twenty[2] == 0x09);  // high nibble of the last byte cleared
  CHECK(twenty[3] == 0xEE);  // beyond (20 + 7) / 8 bytes: untouched

  for (std::size_t n : {1u, 7u, 8u, 9u, 63u, 64u, 65u, 130u, 4096u}) {
    INFO("n=" << n);
    const std::size_t bytes = (n + 7) / 8;
    std::vector<std::uint8_t> bits(bytes + 3, 0xEE);
    qcodec::fill_sign_bits(99, n, bits.data());
    qcodec::rng gen(99);
    std::uint64_t word = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (i % 64 == 0) word = gen.next_u64();
      REQUIRE(((bits[i / 8] >> (i % 8)) & 1u) == ((word >> (i % 64)) & 1u));
    }
    for (std::size_t i = n; i < 8 * bytes; ++i) REQUIRE(((bits[i / 8] >> (i % 8)) & 1u) == 0);
    for (std::size_t i = bytes; i < bits.size(); ++i) REQUIRE(bits[i] == 0xEE);
  }

  std::vector<std::uint8_t> many(1 << 14);
  qcodec::fill_sign_bits(1, 8 * many.size(), many.data());
  std::size_t ones = 0;
  for (std::uint8_t b : many) ones += static_cast<std::size_t>(std::popcount(b));
  const double n = 8.0 * static_cast<double>(many.size());
  CHECK(std::fabs(static_cast<double>(ones) / n - 0.5) < 5.0 * std::sqrt(0.25 / n));
}
