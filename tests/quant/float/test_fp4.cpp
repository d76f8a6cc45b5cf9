// FP4 E2M1 (quant/float/fp4.hpp): all 16 codes, nearest-even conversion, saturation, NaN, and
// the fast comparison encoder against the exact minifloat conversion.
#include <qcodec/quant/float/fp4.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "../../support/catch.hpp"

using qcodec::fp4_e2m1;

namespace {
double spec_e2m1(unsigned b) {
  const unsigned s = (b >> 3) & 1u, e = (b >> 1) & 3u, m = b & 1u;
  const double v = e == 0 ? 0.5 * m : std::ldexp(1.0 + 0.5 * m, static_cast<int>(e) - 1);
  return s ? -v : v;
}
// nearest of the 8 magnitudes with x's sign, ties to the even code, saturating
std::uint8_t brute(float x) {
  const unsigned sign = std::signbit(x) ? 8u : 0u;
  if (std::fabs(x) >= 6.0f) return static_cast<std::uint8_t>(sign | 7u);  // (saturation; also
  // keeps huge |x| from tying in double)
  unsigned best = 0;
  double bd = 1e300;
  for (unsigned m = 0; m < 8; ++m) {
    const double d = std::fabs(static_cast<double>(x) - spec_e2m1(sign | m));
    if (d < bd || (d == bd && (m & 1u) == 0)) {
      best = m;
      bd = d;
    }
  }
  return static_cast<std::uint8_t>(sign | best);
}
}  // namespace

TEST_CASE("fp4: every E2M1 code decodes to its specified value", "[float][fp4]") {
  const float want[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  for (unsigned b = 0; b < 16; ++b) {
    const float v = fp4_e2m1::from_bits(static_cast<std::uint8_t>(b)).to_float();
    CHECK(static_cast<double>(v) == spec_e2m1(b));
    CHECK(v == (b & 8u ? -want[b & 7u] : want[b & 7u]));
    CHECK(qcodec::e2m1_values[b] == v);
    CHECK(fp4_e2m1(v).bits == b);
  }
}

TEST_CASE("fp4: conversion is the nearest value, ties to even, saturating", "[float][fp4]") {
  const float mids[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  const std::uint8_t even[7] = {0, 2, 2, 4, 4, 6, 6};
  for (int k = 0; k < 7; ++k) {
    CHECK(fp4_e2m1(mids[k]).bits == even[k]);
    CHECK(fp4_e2m1(-mids[k]).bits == (even[k] | 8u));
    CHECK(qcodec::detail::e2m1_code(mids[k]) == even[k]);
    CHECK(qcodec::detail::e2m1_code(-mids[k]) == (even[k] | 8u));
    for (const float v : {std::nextafter(mids[k], 0.0f), std::nextafter(mids[k], 9.0f)}) {
      CHECK(fp4_e2m1(v).bits == brute(v));
      CHECK(qcodec::detail::e2m1_code(v) == brute(v));
    }
  }
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-9.0f, 9.0f);
  for (int i = 0; i < 100000; ++i) {
    const float v = i % 2 ? u(rng) : std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
    if (std::isnan(v)) continue;
    const std::uint8_t want = brute(v);
    if (fp4_e2m1(v).bits != want || qcodec::detail::e2m1_code(v) != want) FAIL_CHECK("v = " << v);
  }
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(fp4_e2m1(7.0f).bits == 7);
  CHECK(fp4_e2m1(1e30f).bits == 7);
  CHECK(fp4_e2m1(inf).bits == 7);
  CHECK(fp4_e2m1(-inf).bits == 15);
  CHECK(qcodec::detail::e2m1_code(inf) == 7);
  CHECK(qcodec::detail::e2m1_code(-inf) == 15);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK((fp4_e2m1(nan).bits & 7u) == 0);
  CHECK((qcodec::detail::e2m1_code(nan) & 7u) == 0);
  CHECK(fp4_e2m1(-0.0f).bits == 8);
}
