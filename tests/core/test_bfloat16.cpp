// qcodec::bfloat16 against independent computations: decoding with ldexp, and rounding by
// locating the input between two adjacent bfloat16 values and comparing it with their midpoint.
#include <qcodec/core/bfloat16.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "../support/catch.hpp"

namespace {

using qcodec::bfloat16;

std::uint32_t bits_of(float f) { return std::bit_cast<std::uint32_t>(f); }
float float_of(std::uint32_t u) { return std::bit_cast<float>(u); }

bool is_bf16_nan(std::uint16_t b) { return (b & 0x7F80u) == 0x7F80u && (b & 0x007Fu) != 0; }

// Magnitude of a non-NaN bfloat16 from its fields (0x7F80 decodes to 2^128, the value just
// past the largest finite one on the bfloat16 grid).
double bf16_magnitude(std::uint16_t b) {
  const int e = (b >> 7) & 0xFF;
  const int m = b & 0x7F;
  return e == 0 ? std::ldexp(m, -133) : std::ldexp(128 + m, e - 134);
}

// The correctly rounded bfloat16 of a non-NaN float: the largest grid point <= |f|, then a
// comparison with the midpoint to the next one (ties to even).
std::uint16_t nearest_bf16(float f) {
  static const std::vector<double> grid = [] {
    std::vector<double> g;
    for (std::uint32_t b = 0; b <= 0x7F80u; ++b)
      g.push_back(bf16_magnitude(static_cast<std::uint16_t>(b)));
    return g;
  }();
  const std::uint16_t sign = std::signbit(f) ? 0x8000u : 0u;
  const double a = std::fabs(static_cast<double>(f));
  if (std::isinf(a)) return static_cast<std::uint16_t>(sign | 0x7F80u);
  const auto k =
      static_cast<std::uint16_t>(std::upper_bound(grid.begin(), grid.end(), a) - grid.begin() - 1);
  if (k == 0x7F80u) return static_cast<std::uint16_t>(sign | k);
  const double mid = (grid[k] + grid[k + 1u]) / 2;  // exact: both have <= 8 significant bits
  std::uint16_t r = k;
  if (a > mid || (a == mid && (k & 1u) != 0)) r = static_cast<std::uint16_t>(k + 1u);
  return static_cast<std::uint16_t>(sign | r);
}

}  // namespace

static_assert(sizeof(bfloat16) == 2);
static_assert(bfloat16(1.0f).bits == 0x3F80u);
static_assert(bfloat16(-2.0f).bits == 0xC000u);
static_assert(bfloat16(std::bit_cast<float>(0x3F808000u)).bits == 0x3F80u);  // tie, even below
static_assert(bfloat16(std::bit_cast<float>(0x3F818000u)).bits == 0x3F82u);  // tie, even above
static_assert(bfloat16(std::bit_cast<float>(0x3F808001u)).bits == 0x3F81u);
static_assert(bfloat16(std::numeric_limits<float>::max()).bits == 0x7F80u);
static_assert(bfloat16(std::bit_cast<float>(0x7F7F7FFFu)).bits == 0x7F7Fu);
static_assert(bfloat16(std::bit_cast<float>(0x7FFFFFFFu)).bits == 0x7FFFu);
static_assert(bfloat16(std::bit_cast<float>(0xFF800001u)).bits == 0xFFC0u);
static_assert(bfloat16::from_bits(0x4049u).to_float() == 3.140625f);
static_assert(static_cast<float>(bfloat16::from_bits(0x0001u)) == 0x1p-133f);
static_assert(bfloat16{}.bits == 0);

TEST_CASE("every bfloat16 decodes exactly to float", "[bfloat16]") {
  for (std::uint32_t i = 0; i <= 0xFFFFu; ++i) {
    const auto b = static_cast<std::uint16_t>(i);
    INFO("bfloat16 bits " << i);
    const float f = qcodec::bfloat16_to_float(b);
    REQUIRE(bits_of(f) == bits_of(bfloat16::from_bits(b).to_float()));
    REQUIRE(bits_of(f) == bits_of(static_cast<float>(bfloat16::from_bits(b))));
    REQUIRE(bits_of(f) == bits_of(qcodec::ref::bfloat16_to_float(b)));
    if (is_bf16_nan(b)) {  // exact, signaling NaNs included
      REQUIRE(std::isnan(f));
      REQUIRE(bits_of(f) == i << 16);
    } else if ((i & 0x7FFFu) == 0x7F80u) {
      REQUIRE(std::isinf(f));
      REQUIRE((f < 0) == ((i & 0x8000u) != 0));
    } else {
      const double m = bf16_magnitude(b);
      REQUIRE(static_cast<double>(f) == ((i & 0x8000u) ? -m : m));
      REQUIRE(std::signbit(f) == ((i & 0x8000u) != 0));
    }
  }
}

TEST_CASE("every non-NaN bfloat16 round-trips through float to the same bits", "[bfloat16]") {
  for (std::uint32_t i = 0; i <= 0xFFFFu; ++i) {
    const auto b = static_cast<std::uint16_t>(i);
    if (is_bf16_nan(b)) continue;
    INFO("bfloat16 bits " << i);
    const float f = qcodec::bfloat16_to_float(b);
    REQUIRE(qcodec::float_to_bfloat16(f) == b);
    REQUIRE(bfloat16(f).bits == b);
  }
}

TEST_CASE("midpoints between adjacent bfloat16 values round to even, neighbours to nearest",
          "[bfloat16]") {
  // k = 0 covers the float subnormals below the smallest bfloat16 subnormal; k = 0x7F7F covers
  // the overflow threshold (the tie between the largest finite value and 2^128 goes to inf).
  for (std::uint32_t k = 0; k < 0x7F80u; ++k) {
    const double lo = bf16_magnitude(static_cast<std::uint16_t>(k));
    const double hi = bf16_magnitude(static_cast<std::uint16_t>(k + 1));
    const auto mid = static_cast<float>((lo + hi) / 2);
    REQUIRE(static_cast<double>(mid) == (lo + hi) / 2);
    const auto even = static_cast<std::uint16_t>(k % 2 == 0 ? k : k + 1);
    const float below = std::nextafter(mid, 0.0f);
    const float above = std::nextafter(mid, std::numeric_limits<float>::infinity());
    for (std::uint16_t sign : {std::uint16_t{0}, std::uint16_t{0x8000}}) {
      const float s = sign ? -1.0f : 1.0f;
      INFO("k=" << k << " sign=" << sign);
      REQUIRE(qcodec::float_to_bfloat16(s * mid) == (sign | even));
      REQUIRE(qcodec::float_to_bfloat16(s * below) == (sign | k));
      REQUIRE(qcodec::float_to_bfloat16(s * above) == (sign | (k + 1)));
    }
  }
}

TEST_CASE("bfloat16 overflow, infinities, zeros and subnormals", "[bfloat16]") {
  constexpr float inf = std::numeric_limits<float>::infinity();
  CHECK(qcodec::float_to_bfloat16(inf) == 0x7F80u);
  CHECK(qcodec::float_to_bfloat16(-inf) == 0xFF80u);
  CHECK(qcodec::float_to_bfloat16(-std::numeric_limits<float>::max()) == 0xFF80u);
  CHECK(qcodec::float_to_bfloat16(float_of(0x7F7F8000u)) == 0x7F80u);
  CHECK(qcodec::float_to_bfloat16(float_of(0x7F7F7FFFu)) == 0x7F7Fu);
  CHECK(qcodec::float_to_bfloat16(0.0f) == 0x0000u);
  CHECK(qcodec::float_to_bfloat16(-0.0f) == 0x8000u);
  CHECK(qcodec::float_to_bfloat16(std::numeric_limits<float>::denorm_min()) == 0x0000u);
  CHECK(qcodec::float_to_bfloat16(float_of(0x00008000u)) == 0x0000u);  // tie, even
  CHECK(qcodec::float_to_bfloat16(float_of(0x00018000u)) == 0x0002u);  // tie, even
  CHECK(qcodec::float_to_bfloat16(float_of(0x80008001u)) == 0x8001u);  // not flushed
  CHECK(qcodec::float_to_bfloat16(float_of(0x007FFFFFu)) == 0x0080u);  // up to the smallest normal
  CHECK(bits_of(qcodec::bfloat16_to_float(0x8000u)) == 0x80000000u);
}

TEST_CASE("bfloat16 NaN stays NaN: quieted, sign and top payload bits kept", "[bfloat16]") {
  for (std::uint32_t sign : {0u, 0x80000000u}) {
    for (std::uint32_t frac = 1; frac <= 0x007FFFFFu; ++frac) {
      const std::uint32_t f = sign | 0x7F800000u | frac;
      const std::uint16_t b = qcodec::float_to_bfloat16(float_of(f));
      const bool ok = is_bf16_nan(b) && (b & 0x8000u) == (f >> 16 & 0x8000u) &&
                      (b & 0x0040u) != 0 && (b & 0x003Fu) == ((f >> 16) & 0x003Fu);
      if (!ok) {
        INFO("float bits " << f << " -> " << b);
        REQUIRE(ok);
      }
    }
  }
}

TEST_CASE("random floats round to the nearest bfloat16", "[bfloat16]") {
  std::mt19937 rng(4242);
  for (int i = 0; i < (1 << 20); ++i) {
    const float f = float_of(static_cast<std::uint32_t>(rng()));
    if (std::isnan(f)) continue;  // covered exhaustively above
    const std::uint16_t want = nearest_bf16(f);
    if (qcodec::float_to_bfloat16(f) != want || bfloat16(f).bits != want) {
      INFO("float bits " << bits_of(f));
      REQUIRE(qcodec::float_to_bfloat16(f) == want);
      REQUIRE(bfloat16(f).bits == want);
    }
  }
}
