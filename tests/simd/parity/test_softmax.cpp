// exp_scaled against std::exp: a few ulp per element, the sum within its rounding bound, the
// maximum of the scaled inputs exactly.
#include <qcodec/simd/softmax.hpp>

#include <cfloat>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "parity.hpp"

TEST_CASE("exp_scaled matches std::exp within 4 ulp", "[parity][softmax]") {
  const auto& k = parity::under_test().softmax;
  constexpr float inf = std::numeric_limits<float>::infinity();
  for (const float scale : {1.0f, 0.125f, -0.7f}) {
    for (std::size_t n : parity::lengths()) {
      for (std::size_t off : parity::offsets) {
        parity::floats x(n, off, static_cast<std::uint32_t>(n * 3 + off), 8.0f);
        // A masked score (-inf, or +inf under a negative scale: a scaled -inf either way).
        if (n > 2) x.data[n / 2] = scale < 0.0f ? inf : -inf;
        float max_want = -inf;
        for (std::size_t i = 0; i < n; ++i) {
          if (i != n / 2 || n <= 2) max_want = std::max(max_want, scale * x.data[i]);
        }
        // Shifted by the maximum, and by less (weights above 1, as attention allows).
        for (const float shift : {max_want, max_want - 5.0f}) {
          std::vector<float> want(n + 1, 5.0f), got(n + 1, 5.0f);
          const auto r_want = qcodec::ref::exp_scaled(x.data, n, scale, shift, want.data());
          const auto r_got = k.exp_scaled(x.data, n, scale, shift, got.data());
          INFO("n=" << n << " offset=" << off << " scale=" << scale << " shift=" << shift);
          for (std::size_t i = 0; i < n; ++i) {
            REQUIRE(std::fabs(got[i] - want[i]) <= 4 * FLT_EPSILON * want[i] + FLT_MIN);
          }
          REQUIRE(got[n] == 5.0f);  // nothing written past n
          if (n > 2) REQUIRE(got[n / 2] == 0.0f);
          REQUIRE(std::fabs(r_got.sum - r_want.sum) <=
                  float(n + 4) * FLT_EPSILON * r_want.sum + FLT_MIN);
          REQUIRE(r_got.max == max_want);
          REQUIRE(r_want.max == max_want);
        }
      }
    }
  }
}

TEST_CASE("exp_scaled: special values", "[parity][softmax]") {
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
      const auto r = k.exp_scaled(x.data(), n, 1.0f, 0.0f, y.data());
      REQUIRE(std::isnan(r.sum));
      CHECK(r.max == 100.0f);  // NaN skipped
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

TEST_CASE("exp_scaled: huge and infinite arguments give inf", "[parity][softmax]") {
  const auto& k = parity::under_test().softmax;
  constexpr float inf = std::numeric_limits<float>::infinity();
  for (std::size_t n : {std::size_t{7}, std::size_t{16}, std::size_t{37}}) {
    for (std::size_t at = 0; at < n; ++at) {
      // (An AVX-512 kernel that clamped only from below gave -inf for 1e10.)
      for (const float big : {1e10f, 1e35f, std::numeric_limits<float>::max(), inf}) {
        std::vector<float> x(n, 0.0f), y(n);
        x[at] = big;
        INFO("n=" << n << " at=" << at << " big=" << big);
        const auto r = k.exp_scaled(x.data(), n, 1.0f, 0.0f, y.data());
        CHECK(r.sum == inf);
        CHECK(r.max == big);
        for (std::size_t i = 0; i < n; ++i) CHECK(y[i] == (i == at ? inf : 1.0f));
      }
      // A row's first block is shifted by -inf: every finite score gives inf, and so does the sum
      // (the padding of a partial last vector, -inf - -inf, must not make it NaN).
      std::vector<float> x(n, 0.0f), y(n);
      const auto r = k.exp_scaled(x.data(), n, 1.0f, -inf, y.data());
      CHECK(r.sum == inf);
      for (std::size_t i = 0; i < n; ++i) CHECK(y[i] == inf);
    }
  }
}

TEST_CASE("exp_scaled: no maximum without a number", "[parity][softmax]") {
  const auto& k = parity::under_test().softmax;
  constexpr float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  float y[40];
  CHECK(k.exp_scaled(nullptr, 0, 1.0f, 0.0f, y).sum == 0.0f);
  CHECK(k.exp_scaled(nullptr, 0, 1.0f, 0.0f, y).max == -inf);
  for (std::size_t n : {std::size_t{1}, std::size_t{17}, std::size_t{40}}) {
    std::vector<float> x(n, nan);
    x[n / 2] = -inf;
    INFO("n=" << n);
    CHECK(k.exp_scaled(x.data(), n, 2.0f, 0.0f, y).max == -inf);
    CHECK(k.exp_scaled(x.data(), n, -2.0f, 0.0f, y).max == inf);  // -2 * -inf
  }
}
