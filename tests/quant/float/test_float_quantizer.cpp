// Scaled FP8 / FP4 policies and the fp16 / bf16 policies (quant/float/float_quantizer.hpp,
// ieee16_quantizer.hpp): concept checks, exact round trips against the storage types.
#include <qcodec/quant/concepts.hpp>
#include <qcodec/quant/float/float_quantizer.hpp>
#include <qcodec/quant/float/ieee16_quantizer.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "../../support/catch.hpp"

using namespace qcodec;

static_assert(Quantizer<float_quantizer<fp8_e4m3>>);
static_assert(Quantizer<float_quantizer<fp8_e5m2>>);
static_assert(Quantizer<float_quantizer<fp4_e2m1>>);
static_assert(Quantizer<fp16_quantizer>);
static_assert(Quantizer<bf16_quantizer>);
static_assert(float_quantizer<fp8_e4m3>::symbol_bits == 8 && float_quantizer<fp4_e2m1>::symbol_bits == 4);

namespace {
std::vector<float> normal(std::size_t n, std::uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

template <class T>
void check_scaled(float sigma, double rel_bound) {
  const auto x = normal(1000, 2, sigma);
  float_quantizer<T> q;
  const auto p = q.fit(x);
  float amax = 0;
  for (const float v : x) amax = std::fmax(amax, std::fabs(v));
  CHECK(p.scale == amax / T::max_finite);
  std::vector<std::uint8_t> s(x.size());
  std::vector<float> y(x.size());
  q.encode(x, p, s);
  q.decode(s, p, y);
  double err = 0, sig = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    CHECK(s[i] == T(x[i] / p.scale).bits);
    CHECK(y[i] == T::from_bits(s[i]).to_float() * p.scale);
    err += (double{y[i]} - x[i]) * (double{y[i]} - x[i]);
    sig += double{x[i]} * x[i];
  }
  CHECK(err / sig < rel_bound);
  // the largest value maps to the largest finite code
  const float big = std::fabs(x[0]) == amax ? x[0] : amax;
  CHECK(std::fabs(T(big / p.scale).to_float()) == T::max_finite);
}
}  // namespace

TEST_CASE("float_quantizer: scaled FP8 / FP4 round trips", "[float][policy]") {
  // relative error of round-to-nearest with M fraction bits: about 2^(-2M) / 12 per value
  // in the normal range (E4M3: ~3.3e-4, E5M2: ~1.3e-3, E2M1 coarse and with subnormal 0.5)
  check_scaled<fp8_e4m3>(1.0f, 1e-3);
  check_scaled<fp8_e4m3>(1e-5f, 1e-3);
  check_scaled<fp8_e5m2>(3e3f, 4e-3);
  check_scaled<fp4_e2m1>(1.0f, 0.05);
  float_quantizer<fp8_e4m3> q;
  const std::vector<float> zeros(8, 0.0f);
  CHECK(q.fit(zeros).scale == 1.0f);
}

TEST_CASE("ieee16_quantizer: fp16 and bf16 round trips, two symbols per value", "[float][policy]") {
  const auto x = normal(777, 5, 10.0f);
  std::vector<std::uint8_t> s(2 * x.size());
  std::vector<float> y(x.size());
  fp16_quantizer h;
  h.encode(x, h.fit(x), s);
  h.decode(s, h.fit(x), y);
  for (std::size_t i = 0; i < x.size(); ++i) {
    CHECK(y[i] == half(x[i]).to_float());
    CHECK((s[2 * i] | s[2 * i + 1] << 8) == half(x[i]).bits);
  }
  bf16_quantizer b;
  b.encode(x, b.fit(x), s);
  b.decode(s, b.fit(x), y);
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(y[i] == bfloat16(x[i]).to_float());
}
