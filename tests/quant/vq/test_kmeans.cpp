// k-means (quant/vq/kmeans.hpp): separated clusters found, the error never rising, the reported
// error equal to the nearest-centroid error it claims, weights as the distance, determinism by
// seed, degenerate data, and bad inputs refused.
#include <qcodec/quant/vq/kmeans.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../../support/catch.hpp"

using namespace qcodec;

namespace {

// n samples of dim Gaussian values (sigma) around `centres` (c x dim), cycling through them.
std::vector<float> around(const std::vector<float>& centres, std::size_t dim, std::size_t n,
                          float sigma, std::uint64_t seed) {
  rng random(seed);
  const std::size_t c = centres.size() / dim;
  std::vector<float> x(n * dim);
  for (std::size_t t = 0; t < n; ++t) {
    for (std::size_t i = 0; i < dim; ++i) {
      x[t * dim + i] = centres[(t % c) * dim + i] + sigma * random.normal();
    }
  }
  return x;
}

std::vector<float> gaussian(std::size_t n, std::uint64_t seed) {
  rng random(seed);
  std::vector<float> x(n);
  for (float& v : x) v = random.normal();
  return x;
}

// Mean weighted squared distance of the samples to their nearest centroid.
double nearest_error(const kmeans_fit& fit, const std::vector<float>& x,
                     std::span<const float> weights = {}) {
  const std::size_t dim = fit.dim, n = x.size() / dim;
  double total = 0.0;
  for (std::size_t t = 0; t < n; ++t) {
    const std::size_t j = nearest_centroid(fit.centroids, dim, &x[t * dim], weights);
    for (std::size_t i = 0; i < dim; ++i) {
      const double e = double(x[t * dim + i]) - fit.centroids[j * dim + i];
      total += (weights.empty() ? 1.0 : weights[i]) * e * e;
    }
  }
  return total / double(n);
}

}  // namespace

TEST_CASE("kmeans: well separated clusters are found", "[quant][vq][kmeans]") {
  const std::vector<float> centres = {0, 0, 0, 10, 0, 0, 0, 10, 0, 0, 0, 10, 10, 10, 10};
  const std::vector<float> x = around(centres, 3, 1000, 0.1f, 1);
  auto fit = kmeans(x, 3, 5);
  REQUIRE(fit.ok());
  // Every centre has a centroid within the noise, so the error is the noise's: 3 * 0.01.
  for (std::size_t c = 0; c < 5; ++c) {
    const std::size_t j = nearest_centroid(fit->centroids, 3, &centres[c * 3]);
    for (std::size_t i = 0; i < 3; ++i)
      CHECK(fit->centroids[j * 3 + i] == Approx(centres[c * 3 + i]).margin(0.05));
  }
  CHECK(fit->mse == Approx(0.03).epsilon(0.1));
}

TEST_CASE("kmeans: the error never rises and is the nearest-centroid error",
          "[quant][vq][kmeans]") {
  for (const std::size_t dim : {1u, 2u, 4u, 7u}) {
    for (const std::size_t k : {1u, 3u, 16u, 64u}) {
      INFO("dim " << dim << " k " << k);
      const std::vector<float> x = gaussian(2000 * dim, dim * 100 + k);
      kmeans_options options;
      options.tolerance = 0.0;  // every iteration
      options.max_iterations = 30;
      auto fit = kmeans(x, dim, k, options);
      REQUIRE(fit.ok());
      REQUIRE(fit->centroids.size() == k * dim);
      REQUIRE(fit->mse_history.size() == fit->iterations + 1);
      for (std::size_t i = 1; i < fit->mse_history.size(); ++i) {
        CHECK(fit->mse_history[i] <= fit->mse_history[i - 1] * (1 + 1e-6));
      }
      CHECK(fit->mse == Approx(nearest_error(*fit, x)).epsilon(1e-5));
      if (k > 1) CHECK(fit->mse < fit->mse_history.front());
      // Lloyd-Max's 1-D optimum for N(0, 1): k = 3 gives 0.1902 (Max 1960); k-means on 2000
      // samples lands close.
      if (dim == 1 && k == 3) CHECK(fit->mse == Approx(0.1902).epsilon(0.1));
    }
  }
}

TEST_CASE("kmeans: weights are the distance's, and a zero weight ignores a dimension",
          "[quant][vq][kmeans]") {
  // Dimension 0 holds two clusters (-5, 5); dimension 1 is wide noise. Unweighted, two centroids
  // split the noise too; with weight 0 on dimension 1 they must split dimension 0.
  rng random(7);
  std::vector<float> x;
  for (std::size_t t = 0; t < 1000; ++t) {
    x.push_back((t % 2 ? 5.0f : -5.0f) + 0.1f * random.normal());
    x.push_back(100.0f * random.normal());
  }
  const std::vector<float> w = {1.0f, 0.0f};
  kmeans_options options;
  options.weights = w;
  auto fit = kmeans(x, 2, 2, options);
  REQUIRE(fit.ok());
  const float a = fit->centroids[0], b = fit->centroids[2];
  CHECK(std::min(a, b) == Approx(-5.0f).margin(0.05));
  CHECK(std::max(a, b) == Approx(5.0f).margin(0.05));
  CHECK(fit->mse == Approx(nearest_error(*fit, x, w)).epsilon(1e-5));
  CHECK(fit->mse < 0.02);  // 0.01 of noise on dimension 0 only
}

TEST_CASE("kmeans: the same seed gives the same centroids", "[quant][vq][kmeans]") {
  const std::vector<float> x = gaussian(3000, 5);
  kmeans_options options;
  auto a = kmeans(x, 3, 32, options), b = kmeans(x, 3, 32, options);
  options.seed += 1;
  auto c = kmeans(x, 3, 32, options);
  REQUIRE((a.ok() && b.ok() && c.ok()));
  CHECK(a->centroids == b->centroids);
  CHECK(a->centroids != c->centroids);
}

TEST_CASE("kmeans: fewer distinct samples than k", "[quant][vq][kmeans]") {
  std::vector<float> x;
  for (std::size_t t = 0; t < 40; ++t) x.push_back(float(t % 3));
  auto fit = kmeans(x, 1, 8);
  REQUIRE(fit.ok());
  CHECK(fit->mse == 0.0);
  for (const float v : {0.0f, 1.0f, 2.0f}) {
    CHECK(fit->centroids[nearest_centroid(fit->centroids, 1, &v)] == v);
  }
}

TEST_CASE("kmeans: bad inputs are refused", "[quant][vq][kmeans]") {
  const std::vector<float> x = gaussian(40, 3);
  CHECK(kmeans(x, 0, 2).error().is(errors::kmeans_bad_input));
  CHECK(kmeans(x, 2, 0).error().is(errors::kmeans_bad_input));
  CHECK(kmeans(x, 3, 2).error().is(errors::kmeans_bad_input));   // 40 % 3 != 0
  CHECK(kmeans(x, 2, 21).error().is(errors::kmeans_bad_input));  // 20 samples
  std::vector<float> nan = x;
  nan[7] = std::nanf("");
  CHECK(kmeans(nan, 2, 2).error().is(errors::kmeans_bad_input));
  const std::vector<float> one = {1.0f}, negative = {1.0f, -1.0f};
  kmeans_options options;
  options.weights = one;
  CHECK(kmeans(x, 2, 2, options).error().is(errors::kmeans_bad_input));
  options.weights = negative;
  CHECK(kmeans(x, 2, 2, options).error().is(errors::kmeans_bad_input));
}
