// qcodec::half against independent computations: decoding with ldexp, rounding by locating
// the input between two adjacent halves and comparing it with their midpoint, and (on x86
// CPUs with F16C) the hardware conversion instructions.
#include <qcodec/core/half.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "../support/catch.hpp"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define QCODEC_TEST_X86_F16C 1
#else
#define QCODEC_TEST_X86_F16C 0
#endif

namespace {

using qcodec::half;

std::uint32_t bits_of(float f) { return std::bit_cast<std::uint32_t>(f); }
float float_of(std::uint32_t u) { return std::bit_cast<float>(u); }

bool is_half_nan(std::uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x03FFu) != 0; }

// Magnitude of a non-NaN half from its fields (0x7C00 decodes to 2^16, the value just past
// 65504 on the half grid, which is what the rounding checks need).
double half_magnitude(std::uint16_t h) {
  const int e = (h >> 10) & 0x1F;
  const int m = h & 0x3FF;
  return e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
}

// The correctly rounded half of a non-NaN float, found without any bit tricks: the largest
// grid point <= |f|, then a comparison with the midpoint to the next one (ties to even).
std::uint16_t nearest_half(float f) {
  static const std::vector<double> grid = [] {
    std::vector<double> g;
    for (std::uint32_t h = 0; h <= 0x7C00u; ++h)
      g.push_back(half_magnitude(static_cast<std::uint16_t>(h)));
    return g;
  }();
  const std::uint16_t sign = std::signbit(f) ? 0x8000u : 0u;
  const double a = std::fabs(static_cast<double>(f));
  if (a >= grid.back()) return static_cast<std::uint16_t>(sign | 0x7C00u);
  const auto k =
      static_cast<std::uint16_t>(std::upper_bound(grid.begin(), grid.end(), a) - grid.begin() - 1);
  const double mid = (grid[k] + grid[k + 1u]) / 2;  // exact: both have <= 11 significant bits
  std::uint16_t r = k;
  if (a > mid || (a == mid && (k & 1u) != 0)) r = static_cast<std::uint16_t>(k + 1u);
  return static_cast<std::uint16_t>(sign | r);
}

// What vcvtps2ph makes of a NaN, stated field by field.
bool is_documented_nan(std::uint32_t f, std::uint16_t h) {
  return is_half_nan(h) && (h & 0x8000u) == ((f >> 16) & 0x8000u) && (h & 0x0200u) != 0 &&
         (h & 0x01FFu) == ((f >> 13) & 0x01FFu);
}

#if QCODEC_TEST_X86_F16C
// vcvtps2ph / vcvtph2ps on one lane (what _cvtss_sh / _cvtsh_ss expand to; clang's _cvtss_sh
// macro is a compound literal that -Wpedantic rejects). Compiled for F16C whatever the
// translation unit's flags; only called after the CPU check.
__attribute__((target("f16c"))) std::uint16_t hw_float_to_half(float f) {
  return static_cast<std::uint16_t>(
      _mm_cvtsi128_si32(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT)));
}
__attribute__((target("f16c"))) float hw_half_to_float(std::uint16_t h) {
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}
bool cpu_has_f16c() { return qcodec::simd::cpu_supports<qcodec::simd::avx2>(); }
#endif

// Random float bit patterns: half of them uniform over all 2^32, half with exponents in the
// range that matters for half (2^-26 .. 2^16), either sign.
std::vector<std::uint32_t> sample_floats(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint32_t> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto r = static_cast<std::uint32_t>(rng());
    if (i % 2 == 0) {
      v[i] = r;
    } else {
      const auto e = static_cast<std::uint32_t>(101u + rng() % 43u);
      v[i] = (r & 0x807FFFFFu) | (e << 23);
    }
  }
  return v;
}

}  // namespace

// Compile-time use runs the portable algorithm.
static_assert(sizeof(half) == 2);
static_assert(half(1.0f).bits == 0x3C00u);
static_assert(half(-2.0f).bits == 0xC000u);
static_assert(half(65504.0f).bits == 0x7BFFu);
static_assert(half(65520.0f).bits == 0x7C00u);
static_assert(qcodec::float_to_half(std::bit_cast<float>(0x477FEFFFu)) == 0x7BFFu);
static_assert(half(0x1p-25f).bits == 0x0000u);
static_assert(half(std::bit_cast<float>(0x33000001u)).bits == 0x0001u);
static_assert(half(-0.0f).bits == 0x8000u);
static_assert(half(std::numeric_limits<float>::quiet_NaN()).bits == 0x7E00u);
static_assert(half::from_bits(0x0001u).to_float() == 0x1p-24f);
static_assert(half::from_bits(0x03FFu).to_float() == 1023 * 0x1p-24f);
static_assert(static_cast<float>(half::from_bits(0x7BFFu)) == 65504.0f);
static_assert(qcodec::half_to_float(0x3555u) == 0x1.554p-2f);
static_assert(half{}.bits == 0);

TEST_CASE("every half decodes exactly to float", "[half]") {
  for (std::uint32_t i = 0; i <= 0xFFFFu; ++i) {
    const auto h = static_cast<std::uint16_t>(i);
    INFO("half bits " << i);
    const float portable = qcodec::ref::half_to_float(h);
    const float used = qcodec::half_to_float(h);
    REQUIRE(bits_of(used) == bits_of(portable));
    REQUIRE(bits_of(half::from_bits(h).to_float()) == bits_of(portable));
    REQUIRE(bits_of(static_cast<float>(half::from_bits(h))) == bits_of(portable));
    if (is_half_nan(h)) {  // quieted, payload moved to the top of the float fraction
      REQUIRE(std::isnan(portable));
      REQUIRE(bits_of(portable) == (((i & 0x8000u) << 16) | 0x7FC00000u | ((i & 0x03FFu) << 13)));
    } else {
      const double want = (i & 0x8000u) ? -half_magnitude(h) : half_magnitude(h);
      if ((i & 0x7FFFu) == 0x7C00u) {
        REQUIRE(std::isinf(portable));
        REQUIRE((portable < 0) == ((i & 0x8000u) != 0));
      } else {
        REQUIRE(static_cast<double>(portable) == want);
        REQUIRE(std::signbit(portable) == ((i & 0x8000u) != 0));  // -0 stays -0
      }
    }
  }
}

TEST_CASE("every non-NaN half round-trips through float to the same bits", "[half]") {
  for (std::uint32_t i = 0; i <= 0xFFFFu; ++i) {
    const auto h = static_cast<std::uint16_t>(i);
    if (is_half_nan(h)) continue;
    INFO("half bits " << i);
    const float f = qcodec::ref::half_to_float(h);
    REQUIRE(qcodec::ref::float_to_half(f) == h);
    REQUIRE(qcodec::float_to_half(f) == h);
    REQUIRE(half(f).bits == h);
  }
}

TEST_CASE("midpoints between adjacent halves round to even, their neighbours to nearest",
          "[half]") {
  // k = 0 covers 2^-25 (the tie between 0 and the smallest subnormal, and the floats just
  // below it); k = 0x7BFF covers the overflow threshold 65520 (tie between 65504 and 2^16).
  for (std::uint32_t k = 0; k < 0x7C00u; ++k) {
    const double lo = half_magnitude(static_cast<std::uint16_t>(k));
    const double hi = half_magnitude(static_cast<std::uint16_t>(k + 1));
    const auto mid = static_cast<float>((lo + hi) / 2);
    REQUIRE(static_cast<double>(mid) == (lo + hi) / 2);  // representable in float
    const auto even = static_cast<std::uint16_t>(k % 2 == 0 ? k : k + 1);
    const float below = std::nextafter(mid, 0.0f);
    const float above = std::nextafter(mid, std::numeric_limits<float>::infinity());
    for (std::uint16_t sign : {std::uint16_t{0}, std::uint16_t{0x8000}}) {
      const float s = sign ? -1.0f : 1.0f;
      INFO("k=" << k << " sign=" << sign);
      REQUIRE(qcodec::ref::float_to_half(s * mid) == (sign | even));
      REQUIRE(qcodec::ref::float_to_half(s * below) == (sign | k));
      REQUIRE(qcodec::ref::float_to_half(s * above) == (sign | (k + 1)));
      REQUIRE(qcodec::float_to_half(s * mid) == (sign | even));
      REQUIRE(qcodec::float_to_half(s * below) == (sign | k));
      REQUIRE(qcodec::float_to_half(s * above) == (sign | (k + 1)));
    }
  }
}

TEST_CASE("overflow, infinities, zeros and the tiniest floats", "[half]") {
  constexpr float inf = std::numeric_limits<float>::infinity();
  for (auto to_half : {+[](float f) { return qcodec::ref::float_to_half(f); },
                       +[](float f) { return qcodec::float_to_half(f); }}) {
    CHECK(to_half(65520.0f) == 0x7C00u);
    CHECK(to_half(-65520.0f) == 0xFC00u);
    CHECK(to_half(std::nextafter(65520.0f, 0.0f)) == 0x7BFFu);
    CHECK(to_half(65504.0f) == 0x7BFFu);
    CHECK(to_half(std::numeric_limits<float>::max()) == 0x7C00u);
    CHECK(to_half(-std::numeric_limits<float>::max()) == 0xFC00u);
    CHECK(to_half(inf) == 0x7C00u);
    CHECK(to_half(-inf) == 0xFC00u);
    CHECK(to_half(0.0f) == 0x0000u);
    CHECK(to_half(-0.0f) == 0x8000u);
    CHECK(to_half(std::numeric_limits<float>::denorm_min()) == 0x0000u);
    CHECK(to_half(-std::numeric_limits<float>::denorm_min()) == 0x8000u);
    CHECK(to_half(std::numeric_limits<float>::min()) == 0x0000u);
    CHECK(to_half(0x1p-24f) == 0x0001u);
    CHECK(to_half(0x1p-14f) == 0x0400u);                        // smallest normal
    CHECK(to_half(std::nextafter(0x1p-14f, 0.0f)) == 0x0400u);  // rounds up into it
    CHECK(to_half(0x1p-14f - 0x1p-25f) == 0x0400u);             // tie: 0x3FF odd -> up
    CHECK(to_half(0x1p-14f - 0x1p-24f - 0x1p-25f) == 0x03FEu);  // tie: 0x3FE even
  }
  CHECK(bits_of(qcodec::half_to_float(0x8000u)) == 0x80000000u);
  CHECK(qcodec::half_to_float(0x7C00u) == inf);
  CHECK(qcodec::half_to_float(0xFC00u) == -inf);
}

TEST_CASE("NaN stays NaN: quieted, sign and top fraction bits kept", "[half]") {
  for (std::uint32_t sign : {0u, 0x80000000u}) {
    for (std::uint32_t frac = 1; frac <= 0x007FFFFFu; ++frac) {
      const std::uint32_t f = sign | 0x7F800000u | frac;
      const std::uint16_t h = qcodec::ref::float_to_half(float_of(f));
      if (!is_documented_nan(f, h)) {
        INFO("float bits " << f << " -> " << h);
        REQUIRE(is_documented_nan(f, h));
      }
    }
  }
  const float nan = float_of(0x7F802000u);  // signaling, payload in the kept bits
  CHECK(qcodec::float_to_half(nan) == 0x7E01u);
  CHECK(half(nan).bits == 0x7E01u);
  CHECK(qcodec::float_to_half(float_of(0xFF800001u)) == 0xFE00u);  // payload below the kept bits
  CHECK(std::isnan(half::from_bits(0x7C01u).to_float()));
}

TEST_CASE("random floats round to the nearest half", "[half]") {
  for (std::uint32_t u : sample_floats(std::size_t{1} << 20, 2024)) {
    const float f = float_of(u);
    if (std::isnan(f)) continue;  // covered exhaustively above
    const std::uint16_t want = nearest_half(f);
    if (qcodec::ref::float_to_half(f) != want || qcodec::float_to_half(f) != want) {
      INFO("float bits " << u);
      REQUIRE(qcodec::ref::float_to_half(f) == want);
      REQUIRE(qcodec::float_to_half(f) == want);
    }
  }
}

TEST_CASE("the portable conversions match the F16C instructions", "[half][f16c]") {
#if !defined(__F16C__)
  // With F16C targeted, every test above compares the hardware single-value path with the
  // portable one; here both names run the portable code.
  WARN(
      "this build does not target F16C: the hardware path of qcodec::float_to_half is not "
      "compiled, so only the portable algorithm is compared with the instructions below");
#endif
#if QCODEC_TEST_X86_F16C
  if (!cpu_has_f16c()) QCODEC_SKIP("skipped: this CPU lacks F16C");
  for (std::uint32_t i = 0; i <= 0xFFFFu; ++i) {
    const auto h = static_cast<std::uint16_t>(i);
    if (bits_of(qcodec::ref::half_to_float(h)) != bits_of(hw_half_to_float(h))) {
      INFO("half bits " << i);
      REQUIRE(bits_of(qcodec::ref::half_to_float(h)) == bits_of(hw_half_to_float(h)));
    }
  }
  std::vector<std::uint32_t> floats = sample_floats(std::size_t{1} << 22, 77);
  for (std::uint32_t frac = 1; frac <= 0x007FFFFFu; frac += 97)  // NaNs of both signs
    for (std::uint32_t sign : {0u, 0x80000000u}) floats.push_back(sign | 0x7F800000u | frac);
  for (std::uint32_t u : floats) {
    const float f = float_of(u);
    if (qcodec::ref::float_to_half(f) != hw_float_to_half(f) ||
        qcodec::float_to_half(f) != hw_float_to_half(f)) {
      INFO("float bits " << u);
      REQUIRE(qcodec::ref::float_to_half(f) == hw_float_to_half(f));
      REQUIRE(qcodec::float_to_half(f) == hw_float_to_half(f));
    }
  }
#else
  QCODEC_SKIP("skipped: F16C comparison needs an x86 target");
#endif
}
