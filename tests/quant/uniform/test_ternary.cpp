// ternary (quant/uniform/ternary.hpp): BitNet b1.58 absmean known answers, nearest of the three
// levels against brute force, the round trip bound, and 5-trits-per-byte packing: every byte
// value, random lengths with tails, validation of untrusted bytes.
#include <qcodec/quant/concepts.hpp>
#include <qcodec/quant/uniform/ternary.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../../support/catch.hpp"
#include "test_util.hpp"

static_assert(qcodec::Quantizer<qcodec::ternary>);
static_assert(std::is_trivially_copyable_v<qcodec::ternary::params_type>);

TEST_CASE("ternary: absmean scale and codes, known answers", "[ternary]") {
  const qcodec::ternary q;
  const std::vector<float> x = {1.0f,  -2.0f,  3.0f,  0.0f,
                                0.75f, -0.75f, 0.76f, std::numeric_limits<float>::quiet_NaN()};
  // mean |x| over the finite part {1, 2, 3, 0, .75, .75, .76} would differ; fit on the first 4
  const auto p = q.fit(std::span<const float>(x).first(4));
  REQUIRE(p.scale == 1.5f);
  std::vector<std::uint8_t> s(x.size());
  q.encode(x, p, s);
  // x / 1.5 = .67 -> 1, -1.33 -> -1, 2 -> 1 (clamped), 0, .5 -> 0 (tie, even), -.5 -> 0, .507 -> 1
  REQUIRE(s == std::vector<std::uint8_t>{2, 0, 2, 1, 1, 1, 2, 1});
  std::vector<float> y(s.size());
  q.decode(s, p, y);
  REQUIRE(y == std::vector<float>{1.5f, -1.5f, 1.5f, 0.0f, 0.0f, 0.0f, 1.5f, 0.0f});
  const std::vector<std::uint8_t> odd = {3, 255, 4, 6};
  std::vector<float> z(odd.size());
  q.decode(odd, p, z);
  REQUIRE(z == std::vector<float>{0.0f, 0.0f, -1.5f, 1.5f});
  REQUIRE(q.fit(std::span<const float>()).scale == 0.0f);
}

TEST_CASE("ternary: nearest of the three levels, within scale/2 inside +-1.5 scale", "[ternary]") {
  const qcodec::ternary q;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    const std::vector<float> x =
        seed % 2 ? uniform_test::normal(513, seed, 0.02f) : uniform_test::heavy(513, seed);
    const auto p = q.fit(x);
    std::vector<std::uint8_t> s(x.size());
    std::vector<float> y(x.size());
    q.encode(x, p, s);
    q.decode(s, p, y);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double d = std::fabs(double{x[i]} - y[i]);
      double best = std::numeric_limits<double>::infinity();
      for (const double l : {-double{p.scale}, 0.0, double{p.scale}})
        best = std::fmin(best, std::fabs(double{x[i]} - l));
      REQUIRE(d <= best * (1 + 1e-6) + 1e-30);
      if (std::fabs(x[i]) <= 1.5f * p.scale) REQUIRE(d <= 0.5 * p.scale * (1 + 1e-6));
    }
  }
}

TEST_CASE("ternary: pack/unpack every byte value", "[ternary][pack]") {
  for (unsigned b = 0; b < 256; ++b) {
    const std::uint8_t byte = static_cast<std::uint8_t>(b);
    std::vector<std::uint8_t> t(5);
    qcodec::unpack_trits(std::span<const std::uint8_t>(&byte, 1), t);
    std::uint8_t back = 0xAA;
    qcodec::pack_trits(t, std::span<std::uint8_t>(&back, 1));
    if (b < 243) {
      unsigned v = 0, w = 1;
      for (const std::uint8_t d : t) {
        REQUIRE(d <= 2);
        v += d * w;
        w *= 3;
      }
      REQUIRE(v == b);
      REQUIRE(back == byte);
      REQUIRE(qcodec::trits_valid(std::span<const std::uint8_t>(&byte, 1), 5));
    } else {
      REQUIRE(t == std::vector<std::uint8_t>(5, 1));  // invalid bytes decode to zeros
      REQUIRE_FALSE(qcodec::trits_valid(std::span<const std::uint8_t>(&byte, 1), 5));
    }
  }
}

TEST_CASE("ternary: pack/unpack round trip over random lengths with tails", "[ternary][pack]") {
  qcodec::rng g(11);
  for (std::size_t n = 0; n < 300; n += 1 + n / 16) {
    std::vector<std::uint8_t> t(n);
    for (auto& v : t) v = static_cast<std::uint8_t>(g.uniform_below(3));
    std::vector<std::uint8_t> packed(qcodec::packed_trit_bytes(n) + 1, 0xEE);
    qcodec::pack_trits(t, packed);
    REQUIRE(packed.back() == 0xEE);  // writes exactly (n + 4) / 5 bytes
    packed.pop_back();
    REQUIRE(packed.size() == (n + 4) / 5);
    REQUIRE(qcodec::trits_valid(packed, n));
    std::vector<std::uint8_t> back(n, 9);
    qcodec::unpack_trits(packed, back);
    REQUIRE(back == t);
    if (n % 5 != 0) {
      // a non-zero padding digit in the last byte is rejected
      unsigned limit = 1;
      for (std::size_t k = 0; k < n % 5; ++k) limit *= 3;
      std::vector<std::uint8_t> bad = packed;
      bad.back() = static_cast<std::uint8_t>(bad.back() + limit);
      REQUIRE_FALSE(qcodec::trits_valid(bad, n));
    }
    if (n > 0)
      REQUIRE_FALSE(
          qcodec::trits_valid(std::span<const std::uint8_t>(packed).first(packed.size() - 1), n));
  }
}

TEST_CASE("ternary: encode, pack, unpack, decode end to end", "[ternary][pack]") {
  const qcodec::ternary q;
  const std::vector<float> x = uniform_test::normal(1001, 4);
  const auto p = q.fit(x);
  std::vector<std::uint8_t> s(x.size()), packed(qcodec::packed_trit_bytes(x.size())),
      back(x.size());
  q.encode(x, p, s);
  qcodec::pack_trits(s, packed);
  qcodec::unpack_trits(packed, back);
  REQUIRE(back == s);
  // 1.6 bits per value
  REQUIRE(8.0 * static_cast<double>(packed.size()) / static_cast<double>(x.size()) <=
          1.6 + 8.0 / 1001);
}
