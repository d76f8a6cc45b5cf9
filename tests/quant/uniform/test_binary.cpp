// binary (quant/uniform/binary.hpp): sign codes, absmean scale is the least-squares scale
// (brute force over nearby scales), weighted fit, signed zeros and NaN.
#include <qcodec/quant/concepts.hpp>
#include <qcodec/quant/uniform/binary.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../../support/catch.hpp"
#include "test_util.hpp"

static_assert(qcodec::Quantizer<qcodec::binary>);
static_assert(std::is_trivially_copyable_v<qcodec::binary::params_type>);

namespace {

double sq_error(const std::vector<float>& x, float scale, const std::vector<float>* w = nullptr) {
  const qcodec::binary q;
  std::vector<std::uint8_t> s(x.size());
  std::vector<float> y(x.size());
  q.encode(x, {scale}, s);
  q.decode(s, {scale}, y);
  double e = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = double{x[i]} - y[i];
    e += (w ? double{(*w)[i]} : 1.0) * d * d;
  }
  return e;
}

}  // namespace

TEST_CASE("binary: known answers", "[binary]") {
  const qcodec::binary q;
  const std::vector<float> x = {
      1.0f, -3.0f, 0.0f, -0.0f, 2.0f, -0.0f, std::numeric_limits<float>::quiet_NaN()};
  const auto p = q.fit(std::span<const float>(x).first(6));
  REQUIRE(p.scale == 1.0f);  // (1 + 3 + 0 + 0 + 2 + 0) / 6
  std::vector<std::uint8_t> s(x.size());
  q.encode(x, p, s);
  REQUIRE(s == std::vector<std::uint8_t>{1, 0, 1, 1, 1, 1, 0});
  std::vector<float> y(x.size());
  q.decode(s, p, y);
  REQUIRE(y == std::vector<float>{1.0f, -1.0f, 1.0f, 1.0f, 1.0f, 1.0f, -1.0f});
  const std::vector<std::uint8_t> odd = {2, 3, 255};  // only the low bit counts
  std::vector<float> z(3);
  q.decode(odd, p, z);
  REQUIRE(z == std::vector<float>{-1.0f, 1.0f, 1.0f});
  REQUIRE(q.fit(std::span<const float>()).scale == 0.0f);
}

TEST_CASE("binary: absmean is the least-squares scale for sign codes", "[binary]") {
  const qcodec::binary q;
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    const std::vector<float> x =
        seed % 2 ? uniform_test::normal(257, seed, 0.3f) : uniform_test::heavy(257, seed);
    const float s = q.fit(x).scale;
    const double e = sq_error(x, s);
    for (const double d : {-0.5, -0.1, -0.01, -0.001, 0.001, 0.01, 0.1, 0.5})
      REQUIRE(e <= sq_error(x, static_cast<float>(s * (1.0 + d))) * (1 + 1e-12));
    // the closed form: error = sum x^2 - n s^2 at the optimum
    double sx2 = 0.0;
    for (const float v : x) sx2 += double{v} * v;
    REQUIRE(std::fabs(e - (sx2 - 257.0 * double{s} * s)) <= 1e-5 * sx2);
    // every decode has the sign of x and magnitude scale
    std::vector<std::uint8_t> c(x.size());
    std::vector<float> y(x.size());
    q.encode(x, {s}, c);
    q.decode(c, {s}, y);
    for (std::size_t i = 0; i < x.size(); ++i) {
      REQUIRE(std::fabs(y[i]) == s);
      REQUIRE(std::signbit(y[i]) == (x[i] < 0.0f));
    }
  }
}

TEST_CASE("binary: weighted fit minimises the weighted error", "[binary]") {
  const qcodec::binary q;
  const std::vector<float> x = uniform_test::heavy(300, 5);
  qcodec::rng g(6);
  std::vector<float> w(x.size());
  for (float& v : w) v = g.uniform() * 3.0f;
  const float s = q.fit(x, w).scale;
  const double e = sq_error(x, s, &w);
  for (const double d : {-0.2, -0.02, 0.02, 0.2})
    REQUIRE(e <= sq_error(x, static_cast<float>(s * (1.0 + d)), &w));
  // unit weights give the plain fit
  const std::vector<float> ones(x.size(), 1.0f);
  REQUIRE(q.fit(x, ones).scale == q.fit(x).scale);
  REQUIRE(q.fit(x, std::vector<float>(x.size(), 0.0f)).scale == 0.0f);
}
