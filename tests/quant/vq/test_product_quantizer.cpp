// Product quantizer (quant/vq/product_quantizer.hpp): codes are the nearest centroid of each
// sub-space, decoding looks them up, inner-product tables give q . decode(codes), data with few
// distinct sub-vectors is coded exactly, and more bits never code worse.
#include <qcodec/quant/vq/product_quantizer.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "../../support/catch.hpp"

using namespace qcodec;

namespace {

// n vectors of dim floats with correlated pairs of channels (x_{2i+1} = 0.8 x_{2i} + noise).
std::vector<float> correlated(std::size_t n, std::size_t dim, std::uint64_t seed) {
  rng random(seed);
  std::vector<float> x(n * dim);
  for (std::size_t t = 0; t < n; ++t) {
    for (std::size_t i = 0; i < dim; i += 2) {
      x[t * dim + i] = random.normal() * float(1 + i % 5);
      if (i + 1 < dim) x[t * dim + i + 1] = 0.8f * x[t * dim + i] + 0.3f * random.normal();
    }
  }
  return x;
}

double coding_mse(const product_quantizer& pq, const std::vector<float>& x) {
  const std::size_t d = pq.dim();
  std::vector<std::uint8_t> codes(pq.subspaces());
  std::vector<float> y(d);
  double e = 0.0;
  for (std::size_t t = 0; t < x.size() / d; ++t) {
    pq.encode(&x[t * d], codes.data());
    pq.decode(codes.data(), y.data());
    for (std::size_t i = 0; i < d; ++i) e += (y[i] - x[t * d + i]) * (y[i] - x[t * d + i]);
  }
  return e / double(x.size());
}

}  // namespace

TEST_CASE("product_quantizer: codes, decoding and inner-product tables", "[quant][vq][pq]") {
  const std::size_t dim = 12;
  const std::vector<float> x = correlated(600, dim, 1);
  std::vector<float> w(dim);
  for (std::size_t i = 0; i < dim; ++i) w[i] = 0.5f + float(i % 3);
  for (const std::size_t sub : {1u, 2u, 3u, 4u}) {
    for (const unsigned bits : {1u, 4u, 8u}) {
      for (const bool weighted : {false, true}) {
        INFO("sub_dim " << sub << " bits " << bits << " weighted " << weighted);
        auto pq = product_quantizer::train(
            x, dim, sub, bits, weighted ? std::span<const float>(w) : std::span<const float>{});
        REQUIRE(pq.ok());
        REQUIRE(pq->subspaces() == dim / sub);
        REQUIRE(pq->centroids() == std::size_t{1} << bits);
        const std::vector<float> q = correlated(1, dim, 99);
        std::vector<float> table(pq->subspaces() * pq->centroids());
        pq->inner_product_table(q.data(), table.data());
        std::vector<std::uint8_t> codes(pq->subspaces());
        std::vector<float> y(dim);
        for (std::size_t t = 0; t < 50; ++t) {
          const float* xt = &x[t * dim];
          pq->encode(xt, codes.data());
          pq->decode(codes.data(), y.data());
          double via_table = 0.0, direct = 0.0;
          for (std::size_t m = 0; m < pq->subspaces(); ++m) {
            // The code is the nearest centroid of the sub-space (brute force, weighted).
            const std::span<const float> book = pq->codebook(m);
            double best = INFINITY;
            for (std::size_t c = 0; c < pq->centroids(); ++c) {
              double e = 0.0;
              for (std::size_t i = 0; i < sub; ++i) {
                const double diff = xt[m * sub + i] - book[c * sub + i];
                e += (weighted ? w[m * sub + i] : 1.0f) * diff * diff;
              }
              best = std::min(best, e);
            }
            double mine = 0.0;
            for (std::size_t i = 0; i < sub; ++i) {
              CHECK(y[m * sub + i] == book[codes[m] * sub + i]);
              const double diff = xt[m * sub + i] - y[m * sub + i];
              mine += (weighted ? w[m * sub + i] : 1.0f) * diff * diff;
            }
            CHECK(mine <= best * (1 + 1e-5) + 1e-12);
            CHECK(codes[m] < pq->centroids());
            via_table += table[m * pq->centroids() + codes[m]];
          }
          for (std::size_t i = 0; i < dim; ++i) direct += double(q[i]) * y[i];
          CHECK(via_table == Approx(direct).margin(1e-4));
        }
      }
    }
  }
}

TEST_CASE("product_quantizer: more bits or wider sub-spaces at equal rate", "[quant][vq][pq]") {
  const std::size_t dim = 8;
  const std::vector<float> train = correlated(4000, dim, 2), test = correlated(1000, dim, 3);
  double previous = INFINITY;
  for (const unsigned bits : {2u, 4u, 6u, 8u}) {
    auto pq = product_quantizer::train(train, dim, 2, bits);
    REQUIRE(pq.ok());
    const double e = coding_mse(*pq, test);
    CHECK(e < previous);
    previous = e;
  }
  // 2 bits per value either way; coupling the correlated pairs (2 channels, 4 bits) beats
  // coding them apart (1 channel, 2 bits).
  auto apart = product_quantizer::train(train, dim, 1, 2);
  auto coupled = product_quantizer::train(train, dim, 2, 4);
  REQUIRE((apart.ok() && coupled.ok()));
  CHECK(coding_mse(*coupled, test) < 0.8 * coding_mse(*apart, test));
}

TEST_CASE("product_quantizer: few distinct sub-vectors are coded exactly", "[quant][vq][pq]") {
  std::vector<float> x;
  for (std::size_t t = 0; t < 300; ++t) {
    for (std::size_t i = 0; i < 6; ++i) x.push_back(float((t * (i + 1)) % 4) - 1.5f);
  }
  auto pq = product_quantizer::train(x, 6, 3, 4);  // at most 4 distinct sub-vectors each
  REQUIRE(pq.ok());
  CHECK(coding_mse(*pq, x) == 0.0);
  CHECK(pq->training_mse() == 0.0);
}

TEST_CASE("product_quantizer: bad shapes are refused", "[quant][vq][pq]") {
  const std::vector<float> x = correlated(300, 8, 4);
  CHECK(product_quantizer::train(x, 8, 3, 4).error().is(errors::product_quantizer_bad_shape));
  CHECK(product_quantizer::train(x, 8, 2, 0).error().is(errors::product_quantizer_bad_shape));
  CHECK(product_quantizer::train(x, 8, 2, 9).error().is(errors::product_quantizer_bad_shape));
  CHECK(product_quantizer::train(x, 8, 0, 4).error().is(errors::product_quantizer_bad_shape));
  CHECK(product_quantizer::train(x, 8, 2, 4, std::vector<float>(3, 1.0f))
            .error()
            .is(errors::product_quantizer_bad_shape));
  CHECK(product_quantizer::train(std::span<const float>(x.data(), 100 * 8), 8, 2, 8)
            .error()
            .is(errors::kmeans_bad_input));  // 100 samples, 256 centroids
}
