#include <qcodec/simd/reductions.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include "parity.hpp"

namespace {

// Bound on the difference between two summation orders of the same terms.
float sum_tolerance(const float* terms_abs_sum_source, std::size_t n, bool squares) {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i)
    s += squares ? double{terms_abs_sum_source[i]} * terms_abs_sum_source[i]
                 : std::fabs(terms_abs_sum_source[i]);
  return static_cast<float>(static_cast<double>(n + 1) * std::numeric_limits<float>::epsilon() * s) +
         std::numeric_limits<float>::min();
}

}  // namespace

TEST_CASE("absmax and minmax match the oracle bit for bit", "[parity][reductions]") {
  const auto& k = parity::under_test().reductions;
  for (std::size_t n : parity::lengths()) {
    for (std::size_t off : parity::offsets) {
      parity::floats x(n, off, static_cast<std::uint32_t>(n * 7 + off));
      if (n > 2) {  // NaN and infinities must be treated alike by every target
        x.data[n / 2] = std::numeric_limits<float>::quiet_NaN();
        x.data[n / 3] = (n % 2) ? std::numeric_limits<float>::infinity() : -1e30f;
      }
      INFO("n=" << n << " offset=" << off);
      const float want = qcodec::ref::absmax(x.data, n);
      const float got = k.absmax(x.data, n);
      REQUIRE(std::memcmp(&want, &got, sizeof want) == 0);
      const qcodec::min_max mw = qcodec::ref::minmax(x.data, n);
      const qcodec::min_max mg = k.minmax(x.data, n);
      REQUIRE(std::memcmp(&mw.min, &mg.min, sizeof(float)) == 0);
      REQUIRE(std::memcmp(&mw.max, &mg.max, sizeof(float)) == 0);
    }
  }
}

TEST_CASE("sum, sum of squares and dot match the oracle within rounding", "[parity][reductions]") {
  const auto& k = parity::under_test().reductions;
  for (std::size_t n : parity::lengths()) {
    for (std::size_t off : parity::offsets) {
      parity::floats x(n, off, static_cast<std::uint32_t>(n * 11 + off));
      parity::floats y(n, 2 - off % 2, static_cast<std::uint32_t>(n * 13 + off));
      INFO("n=" << n << " offset=" << off);
      REQUIRE(std::fabs(k.sum(x.data, n) - qcodec::ref::sum(x.data, n)) <=
              sum_tolerance(x.data, n, false));
      REQUIRE(std::fabs(k.sum_squares(x.data, n) - qcodec::ref::sum_squares(x.data, n)) <=
              sum_tolerance(x.data, n, true));
      std::vector<float> prod(n);
      for (std::size_t i = 0; i < n; ++i) prod[i] = x.data[i] * y.data[i];
      REQUIRE(std::fabs(k.dot(x.data, y.data, n) - qcodec::ref::dot(x.data, y.data, n)) <=
              sum_tolerance(prod.data(), n, false));
    }
  }
}
