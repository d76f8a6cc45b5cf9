// exp_shifted against std::exp: a few ulp per element, the sum within its rounding bound.
#include <qcodec/simd/softmax.hpp>

#include <cfloat>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "parity.hpp"

TEST_CASE("exp_shifted matches std::exp within 4 ulp", "[parity][softmax]") {
  const auto& k = parity::under_test().softmax;
  for (std::size_t n : parity::lengths()) {
    for (std::size_t off : parity::offsets) {
      parity::floats x(n, off, static_cast<std::uint32_t>(n * 3 + off), 8.0f);
      if (n > 2) x.data[n / 2] = -std::numeric_limits<float>::infinity();  // a masked score
      float shift = 0.0f;
      for (std::size_t i = 0; i < n; ++i) shift = std::max(shift, x.data[i]);
      std::vector<float> want(n + 1, 5.0f), got(n + 1, 5.0f);
      const float sum_want = qcodec::ref::exp_shifted(x.data, n, shift, want.data());
      const float sum_got = k.exp_shifted(x.data, n, shift, got.data());
      INFO("n=" << n << " offset=" << off);
      for (std::size_t i = 0; i < n; ++i) {
        REQUIRE(std::fabs(got[i] - want[i]) <= 4 * FLT_EPSILON * want[i] + FLT_MIN);
      }
      REQUIRE(got[n] == 5.0f);  // nothing written past n
      if (n > 2) REQUIRE(got[n / 2] == 0.0f);
      REQUIRE(std::fabs(sum_got - sum_want) <= float(n + 4) * FLT_EPSILON * sum_want + FLT_MIN);
    }
  }
}

TEST_CASE("exp_shifted: special values", "[parity][softmax]") {
  const auto& k = parity::under_test().softmax;
  constexpr float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Every position of a vector and of the masked tail: 0 -> 1, -inf -> 0, NaN -> NaN, results
  // below FLT_MIN within FLT_MIN of std::exp, near FLT_MAX within 4 ulp, beyond it inf.
  for (std::size_t n : {std::size_t{7}, std::size_t{16}, std::size_t{37}}) {
    for (std::size_t at = 0; at < n; ++at) {
      std::vector<float> x(n, 0.0f), y(n);
      x[at] = nan;
      x[(at + 1) % n] = -inf;
      x[(at + 2) % n] = -95.0f;
      x[(at + 3) % n] = -300.0f;
      x[(at + 4) % n] = 88.5f;
      x[(at + 5) % n] = 100.0f;
      INFO("n=" << n << " at=" << at);
      REQUIRE(std::isnan(k.exp_shifted(x.data(), n, 0.0f, y.data())));
      CHECK(std::isnan(y[at]));
      CHECK(y[(at + 1) % n] == 0.0f);
      CHECK(std::fabs(y[(at + 2) % n] - std::exp(-95.0f)) <= FLT_MIN);
      CHECK(y[(at + 3) % n] == 0.0f);
      CHECK(std::fabs(y[(at + 4) % n] - std::exp(88.5f)) <= 4 * FLT_EPSILON * std::exp(88.5f));
      CHECK(y[(at + 5) % n] == inf);
      for (std::size_t i = 6; i < n; ++i) CHECK(y[(at + i) % n] == 1.0f);
    }
  }
}
