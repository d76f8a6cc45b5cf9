// Lloyd–Max (quant/nonuniform/lloyd_max.hpp): known optima (uniform: cell midpoints, MSE
// Δ²/12; Gaussian k = 2 and 4: Max's 1960 table), MSE never increasing, samples vs density,
// weights as multiplicities, never worse than the uniform quantizer, no-convergence status, and
// the TurboQuant sphere-marginal codebook against a Monte-Carlo estimate.
#include <qcodec/quant/nonuniform/lloyd_max.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "../../support/catch.hpp"

using namespace qcodec;

namespace {

double dbl(std::size_t v) { return static_cast<double>(v); }

void check_monotone(const lloyd_max_fit& f) {
  REQUIRE(f.mse_history.size() >= 2);
  for (std::size_t i = 1; i < f.mse_history.size(); ++i)
    CHECK(f.mse_history[i] <= f.mse_history[i - 1] * (1 + 1e-12));
  CHECK(f.mse == f.mse_history.back());
}

std::vector<float> gaussian(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

std::vector<float> laplace(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::exponential_distribution<float> ed(1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = (rng() & 1u ? 1.0f : -1.0f) * ed(rng);
  return v;
}

double nearest_mse(const std::vector<float>& x, const std::vector<double>& levels) {
  double e = 0;
  for (const float v : x) {
    double b = 1e300;
    for (const double l : levels) b = std::min(b, (v - l) * (v - l));
    e += b;
  }
  return e / static_cast<double>(x.size());
}

}  // namespace

TEST_CASE("lloyd_max: uniform density converges to the cell midpoints, MSE = delta^2 / 12",
          "[nonuniform][lloyd_max]") {
  for (const std::size_t k : {2u, 4u, 8u, 16u}) {
    // start away from the optimum: levels squeezed towards -1
    std::vector<double> init(k);
    for (std::size_t j = 0; j < k; ++j) init[j] = -1.0 + 1.5 * std::pow((dbl(j) + 0.5) / dbl(k), 2.0);
    lloyd_max_options o;
    o.init = init;
    const auto f = lloyd_max_density(uniform_density{}, k, o);
    REQUIRE(f.ok());
    const double delta = 2.0 / static_cast<double>(k);
    for (std::size_t j = 0; j < k; ++j)
      CHECK(std::fabs(f->levels[j] - (-1.0 + delta * (dbl(j) + 0.5))) < 1e-7);
    CHECK(std::fabs(f->mse - delta * delta / 12.0) < 1e-9 * delta * delta);
    CHECK(f->iterations > 1);
    check_monotone(*f);
  }
}

TEST_CASE("lloyd_max: Gaussian optima (Max 1960)", "[nonuniform][lloyd_max]") {
  const auto f2 = lloyd_max_density(gaussian_density{}, 2);
  REQUIRE(f2.ok());
  CHECK(std::fabs(f2->levels[1] - std::sqrt(2.0 / M_PI)) < 1e-8);
  CHECK(std::fabs(f2->levels[0] + std::sqrt(2.0 / M_PI)) < 1e-8);
  CHECK(std::fabs(f2->mse - (1.0 - 2.0 / M_PI)) < 1e-8);
  const auto f4 = lloyd_max_density(gaussian_density{}, 4);
  REQUIRE(f4.ok());
  CHECK(std::fabs(f4->levels[2] - 0.4528) < 1e-4);
  CHECK(std::fabs(f4->levels[3] - 1.510) < 1e-3);
  CHECK(std::fabs(f4->levels[0] + 1.510) < 1e-3);
  CHECK(std::fabs(f4->thresholds[2] - 0.9816) < 1e-4);
  CHECK(std::fabs(f4->mse - 0.1175) < 1e-4);
  check_monotone(*f4);
  // 3 and 4 bits: Max's MSE 0.03454 and 0.009497
  const auto f8 = lloyd_max_density(gaussian_density{}, 8);
  REQUIRE(f8.ok());
  CHECK(std::fabs(f8->mse - 0.03454) < 2e-5);
  const auto f16 = lloyd_max_density(gaussian_density{}, 16);
  REQUIRE(f16.ok());
  CHECK(std::fabs(f16->mse - 0.009497) < 5e-6);
  check_monotone(*f16);
  // scale invariance
  const auto f4s = lloyd_max_density(gaussian_density{3.0}, 4);
  REQUIRE(f4s.ok());
  CHECK(std::fabs(f4s->levels[3] - 3.0 * f4->levels[3]) < 1e-7);
  CHECK(std::fabs(f4s->mse - 9.0 * f4->mse) < 1e-7);
}

TEST_CASE("lloyd_max: Laplace, k = 2 levels at +-b (the half-distribution mean)", "[nonuniform][lloyd_max]") {
  const auto f = lloyd_max_density(laplace_density{1.0}, 2);
  REQUIRE(f.ok());
  CHECK(std::fabs(f->levels[1] - 1.0) < 1e-8);
  CHECK(std::fabs(f->mse - 1.0) < 1e-8);  // variance 2 b^2 minus b^2
  const auto f8 = lloyd_max_density(laplace_density{}, 8);
  REQUIRE(f8.ok());
  check_monotone(*f8);
  // unit-variance Laplace, 3 bits: Adams & Giesler's optimum MSE 0.0545 (to 3 digits)
  CHECK(std::fabs(f8->mse - 0.0545) < 5e-4);
}

TEST_CASE("lloyd_max: samples agree with the density and beat the uniform quantizer",
          "[nonuniform][lloyd_max]") {
  const auto g = gaussian(200000, 1);
  const auto f4 = lloyd_max_samples(g, {}, 4);
  REQUIRE(f4.ok());
  CHECK(std::fabs(f4->levels[3] - 1.510) < 0.02);
  CHECK(std::fabs(f4->levels[2] - 0.4528) < 0.01);
  CHECK(std::fabs(f4->mse - 0.1175) < 0.003);
  CHECK(std::fabs(f4->mse - nearest_mse(g, f4->levels)) < 1e-9);
  check_monotone(*f4);
  for (const auto& x : {gaussian(50000, 2), laplace(50000, 3)}) {
    for (const std::size_t k : {4u, 8u, 16u}) {
      // the uniform quantizer at the same bits: k evenly spaced cell midpoints over
      // [-absmax, absmax], and the same grid over the best clipping range (searched)
      const double amax = std::max(-double{*std::min_element(x.begin(), x.end())},
                                   double{*std::max_element(x.begin(), x.end())});
      double best_uniform = 1e300;
      for (double c = 0.2; c <= 1.0001; c += 0.02) {
        std::vector<double> u(k);
        for (std::size_t j = 0; j < k; ++j) u[j] = c * amax * (-1.0 + (2.0 * dbl(j) + 1.0) / dbl(k));
        best_uniform = std::min(best_uniform, nearest_mse(x, u));
      }
      const auto f = lloyd_max_samples(x, {}, k);
      REQUIRE(f.ok());
      INFO("k " << k << " lloyd-max " << f->mse << " best uniform " << best_uniform);
      CHECK(f->mse <= best_uniform);
      check_monotone(*f);
      // and from the uniform grid itself: never worse than its start
      std::vector<double> u(k);
      for (std::size_t j = 0; j < k; ++j) u[j] = amax * (-1.0 + (2.0 * dbl(j) + 1.0) / dbl(k));
      lloyd_max_options o;
      o.init = u;
      const auto fu = lloyd_max_samples(x, {}, k, o);
      REQUIRE(fu.ok());
      CHECK(fu->mse <= nearest_mse(x, u) * (1 + 1e-12));
    }
  }
}

TEST_CASE("lloyd_max: integer weights act as multiplicities", "[nonuniform][lloyd_max]") {
  const auto x = laplace(3000, 5);
  std::vector<float> w(x.size()), rep;
  std::mt19937 rng(6);
  for (std::size_t i = 0; i < x.size(); ++i) {
    w[i] = static_cast<float>(rng() % 4);
    for (int r = 0; r < static_cast<int>(w[i]); ++r) rep.push_back(x[i]);
  }
  const auto a = lloyd_max_samples(x, w, 8), b = lloyd_max_samples(rep, {}, 8);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  for (std::size_t j = 0; j < 8; ++j) CHECK(std::fabs(a->levels[j] - b->levels[j]) < 1e-9);
  CHECK(std::fabs(a->mse - b->mse) < 1e-9);
}

TEST_CASE("lloyd_max: failures are statuses", "[nonuniform][lloyd_max]") {
  lloyd_max_options o;
  o.max_iterations = 2;
  const auto f = lloyd_max_density(gaussian_density{}, 8, o);
  REQUIRE(!f.ok());
  CHECK(f.error().is(errors::lloyd_max_no_convergence));
  CHECK(f.error().code() == errc::no_convergence);
  CHECK(!lloyd_max_density(gaussian_density{}, 0).ok());
  CHECK(!lloyd_max_samples(std::vector<float>{}, {}, 4).ok());
  const std::vector<double> bad = {0.0, 0.0, 1.0};
  o = {};
  o.init = bad;
  CHECK(lloyd_max_density(gaussian_density{}, 3, o).error().is(errors::lloyd_max_bad_input));
}

TEST_CASE("lloyd_max: TurboQuant sphere-marginal codebook matches Monte Carlo on unit vectors",
          "[nonuniform][lloyd_max][turboquant]") {
  constexpr std::size_t d = 128, vectors = 3000;
  // random unit vectors: normalised Gaussian vectors are uniform on the sphere
  std::mt19937 rng(42);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<double> u(d * vectors);
  for (std::size_t v = 0; v < vectors; ++v) {
    double n2 = 0;
    for (std::size_t i = 0; i < d; ++i) n2 += (u[v * d + i] = nd(rng)) * u[v * d + i];
    for (std::size_t i = 0; i < d; ++i) u[v * d + i] /= std::sqrt(n2);
  }
  const double paper[3] = {0.117, 0.03, 0.009};  // TurboQuant's reported MSE at b = 2, 3, 4
  for (unsigned b = 2; b <= 4; ++b) {
    const auto f = lloyd_max_density(sphere_marginal_density{d}, std::size_t{1} << b);
    REQUIRE(f.ok());
    check_monotone(*f);
    double total = 0;
    for (const double x : u) {
      double best = 1e300;
      for (const double l : f->levels) best = std::min(best, (x - l) * (x - l));
      total += best;
    }
    const double mc = total / vectors;  // squared error per unit vector
    const double predicted = static_cast<double>(d) * f->mse;
    INFO("b = " << b << " d * mse = " << predicted << " monte carlo " << mc);
    CHECK(std::fabs(mc - predicted) < 0.02 * predicted);
    CHECK(std::fabs(predicted - paper[b - 2]) < 0.2 * paper[b - 2]);
  }
}
