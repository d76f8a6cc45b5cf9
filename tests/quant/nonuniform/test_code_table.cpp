// code_table (quant/nonuniform/code_table.hpp): encode = brute-force nearest level (ties to the
// lower index) on random data and exact ties, decode through the LUT = table * scale, packed
// decode, training never worse than its starting table.
#include <qcodec/quant/concepts.hpp>
#include <qcodec/quant/nonuniform/code_table.hpp>
#include <qcodec/quant/nonuniform/tables.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "../../support/catch.hpp"

using namespace qcodec;

static_assert(Quantizer<code_table<4>>);
static_assert(Quantizer<code_table<8>>);
static_assert(Quantizer<code_table<2>>);
static_assert(TrainableQuantizer<code_table<4>>);
static_assert(TrainableQuantizer<code_table<3>>);

namespace {

std::vector<float> normal(std::size_t n, std::uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

template <unsigned B>
std::uint8_t brute(const code_table<B>& q, float scale, float x) {
  std::size_t best = 0;
  double bd = 1e300;
  for (std::size_t k = 0; k < code_table<B>::levels; ++k) {
    const double d = std::fabs(double{x} - double{q.table()[k] * scale});
    if (d < bd) {
      bd = d;
      best = k;
    }
  }
  return static_cast<std::uint8_t>(best);
}

template <unsigned B>
void check_encode(const code_table<B>& q, const std::vector<float>& x, std::size_t group) {
  std::vector<std::uint8_t> s(group);
  std::vector<float> y(group);
  for (std::size_t i = 0; i + group <= x.size(); i += group) {
    const std::span<const float> g(x.data() + i, group);
    const auto p = q.fit(g);
    q.encode(g, p, s);
    q.decode(s, p, y);
    for (std::size_t j = 0; j < group; ++j) {
      const std::uint8_t want = brute(q, p.scale, g[j]);
      if (s[j] != want) FAIL_CHECK("x = " << g[j] << " got " << int{s[j]} << " want " << int{want});
      CHECK(y[j] == q.table()[s[j]] * p.scale);
    }
  }
}

// values exactly at (and next to) the float midpoints of the scaled levels
template <unsigned B>
void check_ties(const code_table<B>& q, float scale) {
  const auto& t = q.table();
  std::vector<float> x;
  for (std::size_t k = 0; k + 1 < t.size(); ++k) {
    const float m = 0.5f * (t[k] * scale + t[k + 1] * scale);
    x.insert(x.end(), {m, std::nextafter(m, -1e9f), std::nextafter(m, 1e9f), t[k] * scale});
  }
  std::vector<std::uint8_t> s(x.size());
  q.encode(x, {scale}, s);
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(s[i] == brute(q, scale, x[i]));
}

}  // namespace

TEST_CASE("code_table: encode is the brute-force nearest level", "[nonuniform][code_table]") {
  const auto x = normal(64 * 200, 1);
  check_encode(code_table<4>(nf4_table), x, 64);
  check_encode(code_table<4>(iq4nl_table), x, 32);
  check_encode(code_table<4>(e2m1_table), x, 32);  // duplicated zero: first copy
  check_encode(code_table<8>(dynamic_map_8bit()), x, 256);
  check_encode(code_table<3>(), x, 7);
  check_encode(code_table<1>(), x, 5);
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> xu(4096);
  for (float& v : xu) v = u(rng) * u(rng) * 1e3f;
  check_encode(code_table<4>(nf4_table), xu, 64);
  check_encode(code_table<8>(dynamic_map_8bit()), xu, 64);
  for (const float scale : {1.0f, 0.37f, 3e-5f, 2.5e7f}) {
    check_ties(code_table<4>(nf4_table), scale);
    check_ties(code_table<4>(e2m1_table), scale);
    check_ties(code_table<8>(dynamic_map_8bit()), scale);
  }
}

TEST_CASE("code_table: absmax scale, zero groups, LUT and packed decode", "[nonuniform][code_table]") {
  const code_table<4> q(nf4_table);
  const float g[4] = {0.5f, -2.0f, 1.0f, 0.0f};
  const auto p = q.fit(g);
  CHECK(p.scale == 2.0f);
  std::uint8_t s[4];
  q.encode(g, p, s);
  CHECK(s[1] == 0);   // -absmax -> -1
  CHECK(s[3] == 7);   // 0 -> the exact zero
  const float z[3] = {0.0f, 0.0f, -0.0f};
  const auto pz = q.fit(z);
  CHECK(pz.scale == 0.0f);
  std::uint8_t sz[3];
  float yz[3];
  q.encode(z, pz, sz);
  q.decode(sz, pz, yz);
  for (const float v : yz) CHECK(v == 0.0f);
  // decode (LUT kernel, odd lengths, several chunks) and decode_packed against table * scale
  for (const std::size_t n : {1u, 2u, 31u, 513u, 1500u}) {
    std::mt19937 rng(static_cast<std::uint32_t>(n));
    std::vector<std::uint8_t> sym(n), packed((n + 1) / 2, 0);
    for (std::size_t i = 0; i < n; ++i) {
      sym[i] = static_cast<std::uint8_t>(rng() & 15u);
      packed[i / 2] = static_cast<std::uint8_t>(packed[i / 2] | sym[i] << (i % 2 * 4));
    }
    std::vector<float> y(n), yp(n);
    q.decode(sym, {1.7f}, y);
    q.decode_packed(packed.data(), n, {1.7f}, yp.data());
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(y[i] == nf4_table[sym[i]] * 1.7f);
      CHECK(yp[i] == y[i]);
    }
  }
}

TEST_CASE("code_table: untrusted tables are validated", "[nonuniform][code_table]") {
  std::vector<float> t(nf4_table.begin(), nf4_table.end());
  CHECK(code_table<4>::from_values(t).ok());
  std::swap(t[3], t[4]);
  CHECK(!code_table<4>::from_values(t).ok());
  t.assign(nf4_table.begin(), nf4_table.end());
  t[15] = 1.5f;
  CHECK(!code_table<4>::from_values(t).ok());
  CHECK(!code_table<4>::from_values(std::vector<float>(8, 0.0f)).ok());
  CHECK(code_table<4>::from_values(t).error().is(errors::code_table_bad_table));
}

namespace {
template <unsigned B>
double sse(const code_table<B>& q, const std::vector<float>& x, std::size_t group) {
  double e = 0;
  std::vector<std::uint8_t> s(group);
  std::vector<float> y(group);
  for (std::size_t i = 0; i < x.size(); i += group) {
    const std::span<const float> g(x.data() + i, group);
    const auto p = q.fit(g);
    q.encode(g, p, s);
    q.decode(s, p, y);
    for (std::size_t j = 0; j < group; ++j) e += (double{y[j]} - g[j]) * (double{y[j]} - g[j]);
  }
  return e;
}
}  // namespace

TEST_CASE("code_table: training is never worse than its starting table", "[nonuniform][code_table]") {
  const std::size_t group = 64, rows = 400;
  auto x = normal(group * rows, 3);
  const matrix_view<const float> m(x.data(), rows, group);
  // from the uniform table
  code_table<4> u;
  const double before_u = sse(u, x, group);
  REQUIRE(u.train(m).ok());
  const double after_u = sse(u, x, group);
  CHECK(after_u <= before_u * (1 + 1e-6));
  // from NF4
  code_table<4> n(nf4_table);
  const double before_n = sse(n, x, group);
  REQUIRE(n.train(m).ok());
  const double after_n = sse(n, x, group);
  CHECK(after_n <= before_n * (1 + 1e-6));
  INFO("uniform " << before_u << " -> " << after_u << ", nf4 " << before_n << " -> " << after_n);
  // measured 258.1 -> 196.1 and 218.5 -> 196.8: both starts reach about the same optimum,
  // 10% below NF4 on the data it was trained on
  CHECK(after_u < 0.8 * before_u);
  CHECK(after_n < 0.95 * before_n);
  CHECK(std::fabs(after_u - after_n) < 0.01 * after_n);
  // 2 and 3 bits on Laplace groups
  std::mt19937 rng(4);
  std::exponential_distribution<float> ed(1.0f);
  for (float& v : x) v = (rng() & 1u ? 1.0f : -1.0f) * ed(rng);
  code_table<2> q2;
  const double b2 = sse(q2, x, group);
  REQUIRE(q2.train(m).ok());
  CHECK(sse(q2, x, group) <= b2 * (1 + 1e-6));
  code_table<3> q3;
  const double b3 = sse(q3, x, group);
  REQUIRE(q3.train(m).ok());
  CHECK(sse(q3, x, group) <= b3 * (1 + 1e-6));
}
