// Scale search (quant/uniform/scale_search.hpp): never worse than the absmax and min/max fits on
// the data it fits, for many random and heavy-tailed groups, with and without weights; known
// range fits; clipping pays off on Gaussian data; weights steer the fit.
#include <qcodec/quant/concepts.hpp>
#include <qcodec/quant/uniform/scale_search.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../../support/catch.hpp"
#include "test_util.hpp"

using qcodec::asymmetric;
using qcodec::mse_fitted;
using qcodec::symmetric;
using qcodec::symmetric_no_zero;
using qcodec::uniform;

static_assert(qcodec::Quantizer<mse_fitted<uniform<4, asymmetric>>>);
static_assert(qcodec::Quantizer<mse_fitted<uniform<3, symmetric>>>);
static_assert(qcodec::Quantizer<mse_fitted<uniform<1, symmetric_no_zero>>>);
static_assert(qcodec::Quantizer<mse_fitted<uniform<4, asymmetric, qcodec::stochastic_rounding>>>);

namespace {

// A zoo of groups: Gaussian, heavy-tailed, lognormal (all positive), one huge outlier,
// constant, two values, tiny groups.
std::vector<float> group(int kind, std::size_t n, std::uint64_t seed) {
  std::vector<float> x;
  switch (kind % 7) {
    case 0:
      x = uniform_test::normal(n, seed);
      break;
    case 1:
      x = uniform_test::heavy(n, seed);
      break;
    case 2:
      x = uniform_test::normal(n, seed);
      for (float& v : x) v = std::exp(v);
      break;
    case 3:
      x = uniform_test::normal(n, seed, 0.01f);
      x[seed % n] = 50.0f;
      break;
    case 4:
      x.assign(n, -1.75f);
      break;
    case 5:
      x = uniform_test::normal(n, seed);
      for (float& v : x) v = v > 0 ? 3.0f : -0.5f;
      break;
    default:
      x = uniform_test::heavy(n, seed);
      for (float& v : x) v = v * v * v;
      break;
  }
  return x;
}

std::vector<float> weights(std::size_t n, std::uint64_t seed) {
  qcodec::rng g(seed);
  std::vector<float> w(n);
  for (float& v : w) {
    const float z = g.normal();
    v = z * z;  // importance like squared activations: some near zero, some large
  }
  return w;
}

template <unsigned B, class M>
void check_never_worse() {
  using Q = uniform<B, M>;
  const Q q;
  int cases = 0;
  for (int kind = 0; kind < 7; ++kind) {
    for (const std::size_t n : {1u, 2u, 3u, 16u, 32u, 64u, 128u, 1000u}) {
      for (std::uint64_t seed = 1; seed <= 6; ++seed) {
        const std::vector<float> x = group(kind, n, seed * 1009 + n);
        const std::vector<float> w = weights(n, seed + 77);
        for (const bool weighted : {false, true}) {
          const std::span<const float> ws =
              weighted ? std::span<const float>(w) : std::span<const float>();
          const auto r = qcodec::search_scale(q, x, ws);
          const double e_search = qcodec::quantization_error(q, x, ws, r.params);
          const double e_absmax = qcodec::quantization_error(q, x, ws, qcodec::fit_absmax(q, x));
          const double e_minmax = qcodec::quantization_error(q, x, ws, qcodec::fit_minmax(q, x));
          INFO("bits " << B << " mode " << M::name() << " kind " << kind << " n " << n << " seed "
                       << seed << " weighted " << weighted);
          REQUIRE(e_search == r.error);
          REQUIRE(e_search <= e_absmax);
          REQUIRE(e_search <= e_minmax);
          ++cases;
        }
      }
    }
  }
  REQUIRE(cases == 7 * 8 * 6 * 2);
}

template <unsigned B, class M>
double gaussian_ratio() {
  const uniform<B, M> q;
  double searched = 0.0, range = 0.0;
  for (std::uint64_t seed = 1; seed <= 16; ++seed) {
    const std::vector<float> x = uniform_test::normal(128, seed);
    searched += qcodec::search_scale(q, x).error;
    range += qcodec::quantization_error(q, x, {}, q.fit(x));
  }
  return searched / range;
}

}  // namespace

TEST_CASE("scale search: never worse than absmax or min/max on the data it fits",
          "[uniform][scale_search]") {
  uniform_test::for_bits<1, 8>([](auto b) {
    check_never_worse<b.value, asymmetric>();
    check_never_worse<b.value, symmetric_no_zero>();
    if constexpr (b.value >= 2) check_never_worse<b.value, symmetric>();
  });
}

TEST_CASE("scale search: range fits, known answers", "[uniform][scale_search]") {
  const std::vector<float> x = {-1.0f, 3.0f, 0.5f};
  REQUIRE(qcodec::fit_absmax(uniform<4, asymmetric>{}, x).scale == 0.4f);  // [-3, 3] / 15
  REQUIRE(qcodec::fit_absmax(uniform<4, asymmetric>{}, x).offset == -3.0f);
  REQUIRE(qcodec::fit_minmax(uniform<2, asymmetric>{}, x).scale == 4.0f / 3.0f);
  REQUIRE(qcodec::fit_minmax(uniform<2, asymmetric>{}, x).offset == -1.0f);
  REQUIRE(qcodec::fit_minmax(uniform<3, symmetric>{}, x).scale == 1.0f);          // 3 / 3
  REQUIRE(qcodec::fit_absmax(uniform<2, symmetric_no_zero>{}, x).scale == 2.0f);  // 3 / 1.5
}

TEST_CASE("scale search: clipping lowers the error on Gaussian groups", "[uniform][scale_search]") {
  // Gaussian groups of 128: the best uniform quantizer clips inside the absmax (optimal
  // clipping: Banner et al., ACIQ, 2019). Measured ratios of searched to range-fit squared error
  // (16 groups, search_scale defaults): symmetric 2-bit 0.331, 3-bit 0.587, 4-bit 0.850;
  // asymmetric 2-bit 0.431, 4-bit 0.843.
  REQUIRE(gaussian_ratio<2, symmetric>() < 0.36);
  REQUIRE(gaussian_ratio<3, symmetric>() < 0.62);
  REQUIRE(gaussian_ratio<4, symmetric>() < 0.88);
  REQUIRE(gaussian_ratio<2, asymmetric>() < 0.46);
  REQUIRE(gaussian_ratio<4, asymmetric>() < 0.87);
}

TEST_CASE("scale search: weights steer the fit", "[uniform][scale_search]") {
  const uniform<4, symmetric> q;
  std::vector<float> x = uniform_test::normal(256, 3);
  x[17] = 80.0f;  // an outlier nobody cares about
  std::vector<float> w(x.size(), 1.0f);
  w[17] = 0.0f;
  const auto weighted = qcodec::search_scale(q, x, w);
  // ignoring the outlier, the scale suits the Gaussian bulk: far below 80 / 7
  REQUIRE(weighted.params.scale < 1.0f);
  // measured: 3.49 against 301 for the range fit
  REQUIRE(weighted.error < 0.02 * qcodec::quantization_error(q, x, w, q.fit(x)));
  // uniform weights 2 double every error exactly and change no decision
  const std::vector<float> two(x.size(), 2.0f);
  const auto plain = qcodec::search_scale(q, x);
  const auto doubled = qcodec::search_scale(q, x, two);
  REQUIRE(doubled.params.scale == plain.params.scale);
  REQUIRE(doubled.error == 2.0 * plain.error);
}

TEST_CASE("scale search: mse_fitted fits with the search", "[uniform][scale_search]") {
  const mse_fitted<uniform<3, asymmetric>> q;
  const std::vector<float> x = uniform_test::heavy(200, 8);
  const std::vector<float> w = weights(200, 9);
  const auto p = q.fit(x);
  const auto r = qcodec::search_scale(uniform<3, asymmetric>{}, x);
  REQUIRE(std::memcmp(&p, &r.params, sizeof p) == 0);
  const auto pw = q.fit(x, w);
  const auto rw = qcodec::search_scale(uniform<3, asymmetric>{}, x, w);
  REQUIRE(std::memcmp(&pw, &rw.params, sizeof pw) == 0);
  REQUIRE(qcodec::search_scale(uniform<3, asymmetric>{}, std::span<const float>()).error == 0.0);
}
