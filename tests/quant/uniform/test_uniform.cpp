// uniform<Bits, Mode, Rounding> (quant/uniform/uniform.hpp): concept conformance, known answers,
// codes and levels bit-exact against the scalar oracle, round-trip bound and nearest level
// against brute force for every width and mode, mirror symmetry, stochastic rounding unbiased
// and reproducible.
#include <qcodec/quant/concepts.hpp>
#include <qcodec/quant/uniform/uniform.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "../../support/catch.hpp"
#include "test_util.hpp"

using qcodec::asymmetric;
using qcodec::stochastic_rounding;
using qcodec::symmetric;
using qcodec::symmetric_no_zero;
using qcodec::uniform;

namespace {

template <unsigned B, class M, class R>
constexpr bool conforms() {
  using Q = uniform<B, M, R>;
  return qcodec::Quantizer<Q> && std::is_trivially_copyable_v<typename Q::params_type> &&
         Q::symbol_bits == B;
}
template <class M, class R, unsigned... B>
constexpr bool all_conform(std::integer_sequence<unsigned, B...>) {
  return (conforms<B + 1, M, R>() && ...);
}
using bits_1_to_8 = std::make_integer_sequence<unsigned, 8>;
using bits_2_to_8 = std::integer_sequence<unsigned, 1, 2, 3, 4, 5, 6, 7>;  // +1 below
static_assert(all_conform<asymmetric, qcodec::round_to_nearest_even>(bits_1_to_8{}));
static_assert(all_conform<symmetric_no_zero, qcodec::round_to_nearest_even>(bits_1_to_8{}));
static_assert(all_conform<symmetric, qcodec::round_to_nearest_even>(bits_2_to_8{}));
static_assert(all_conform<asymmetric, stochastic_rounding>(bits_1_to_8{}));
static_assert(all_conform<symmetric_no_zero, stochastic_rounding>(bits_1_to_8{}));
static_assert(all_conform<symmetric, stochastic_rounding>(bits_2_to_8{}));
static_assert(sizeof(uniform<4, symmetric>::params_type) == 4);
static_assert(sizeof(uniform<4, asymmetric>::params_type) == 8);

template <class Q>
std::vector<std::uint8_t> encode(const Q& q, const std::vector<float>& x,
                                 const typename Q::params_type& p) {
  std::vector<std::uint8_t> s(x.size());
  q.encode(x, p, s);
  return s;
}
template <class Q>
std::vector<float> decode(const Q& q, const std::vector<std::uint8_t>& s,
                          const typename Q::params_type& p) {
  std::vector<float> y(s.size());
  q.decode(s, p, y);
  return y;
}

// Inputs for bit-exactness: Gaussian, exact multiples of half a step (ties), the edges of the
// range and beyond, zeros of both signs, and non-finite values.
template <class Q>
std::vector<float> tricky(std::size_t n, std::uint64_t seed, const typename Q::params_type& p) {
  std::vector<float> x = uniform_test::normal(n, seed, 2.0f);
  const qcodec::affine_params a = Q::to_affine(p);
  qcodec::rng g(seed + 1000);
  for (std::size_t i = 0; i < n; ++i) {
    switch (g.uniform_below(8)) {
      case 0:
        x[i] = a.offset + a.scale * 0.5f * static_cast<float>(g.uniform_below(600)) -
               0.5f * a.scale * 20.0f;
        break;
      case 1:
        x[i] = a.offset + a.scale * static_cast<float>(g.uniform_below(300));
        break;
      case 2:
        x[i] = g.uniform_below(2) ? 0.0f : -0.0f;
        break;
      case 3: {
        const float special[] = {std::numeric_limits<float>::quiet_NaN(),
                                 std::numeric_limits<float>::infinity(),
                                 -std::numeric_limits<float>::infinity(), 1e30f, -1e30f};
        x[i] = special[g.uniform_below(5)];
        break;
      }
      default:
        break;
    }
  }
  return x;
}

template <unsigned B, class M>
void check_bit_exact() {
  using Q = uniform<B, M>;
  const Q q;
  for (std::uint64_t seed = 1; seed <= 7; ++seed) {
    for (const std::size_t n : {0u, 1u, 3u, 7u, 8u, 15u, 16u, 17u, 31u, 33u, 64u, 100u, 257u}) {
      const std::vector<float> data = uniform_test::normal(n + 1, seed * 131 + n);
      typename Q::params_type p = q.fit(std::span<const float>(data).first(n));
      if (seed == 5) p = Q::make_params(0.0f, 0.0f);     // scale 0
      if (seed == 6) p = Q::make_params(0.37f, -1.25f);  // odd scale, offset
      if (seed == 7) p = Q::make_params(-0.37f, 0.5f);   // a negative scale mirrors the levels
      const std::vector<float> x = tricky<Q>(n, seed + n, p);
      const std::vector<std::uint8_t> s = encode(q, x, p);
      std::vector<std::uint8_t> s_ref(n);
      qcodec::ref::uniform_encode<B, M>(x.data(), n, p, s_ref.data());
      REQUIRE(s == s_ref);
      for (const std::uint8_t c : s) {
        REQUIRE(c >= Q::q_min);
        REQUIRE(c <= Q::q_max);
      }
      // decode every byte value, not only the codes encode produces
      std::vector<std::uint8_t> all(256 + n);
      for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint8_t>(i * 7 + seed);
      const std::vector<float> y = decode(q, all, p);
      std::vector<float> y_ref(all.size());
      qcodec::ref::uniform_decode<B, M>(all.data(), all.size(), p, y_ref.data());
      REQUIRE(std::memcmp(y.data(), y_ref.data(), y.size() * sizeof(float)) == 0);
    }
  }
}

// Round trip after the range fit: every element within scale / 2 of its decode, and the decode
// is the nearest level (brute force over every code, levels from the oracle).
template <unsigned B, class M>
void check_round_trip() {
  using Q = uniform<B, M>;
  const Q q;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    for (const std::size_t n : {1u, 2u, 5u, 32u, 77u, 300u}) {
      std::vector<float> x = seed % 2 ? uniform_test::normal(n, seed * 7 + n, 3.0f)
                                      : uniform_test::heavy(n, seed * 7 + n);
      if (seed == 4)
        for (float& v : x) v = std::fabs(v) + 2.0f;  // all positive
      const auto p = q.fit(x);
      const std::vector<float> y = decode(q, encode(q, x, p), p);
      float amax = 0.0f;
      for (const float v : x) amax = std::fmax(amax, std::fabs(v));
      std::vector<std::uint8_t> codes(Q::q_max - Q::q_min + 1);
      for (std::size_t c = 0; c < codes.size(); ++c)
        codes[c] = static_cast<std::uint8_t>(Q::q_min + c);
      std::vector<float> levels(codes.size());
      qcodec::ref::uniform_decode<B, M>(codes.data(), codes.size(), p, levels.data());
      const double scale = p.scale;
      const double slack = 4.0 * std::numeric_limits<float>::epsilon() * amax;
      for (std::size_t i = 0; i < n; ++i) {
        const double err = std::fabs(double{x[i]} - double{y[i]});
        INFO("bits " << B << " mode " << M::name() << " x " << x[i] << " y " << y[i] << " scale "
                     << scale);
        REQUIRE(err <= scale / 2 + slack);
        double best = std::numeric_limits<double>::infinity();
        for (const float l : levels) best = std::fmin(best, std::fabs(double{x[i]} - double{l}));
        REQUIRE(err <= best + slack);
      }
    }
  }
}

// Fixed parameters, values beyond the range: within half a step of the range the bound holds,
// farther out the decode is the outermost level on that side.
template <unsigned B, class M>
void check_clamping() {
  using Q = uniform<B, M>;
  const Q q;
  const auto p = Q::make_params(0.25f, -0.5f);
  const qcodec::affine_params a = Q::to_affine(p);
  const float lo = a.offset + a.scale * Q::q_min, hi = a.offset + a.scale * Q::q_max;
  const std::vector<float> x = uniform_test::normal(2000, 99, (hi - lo));
  const std::vector<float> y = decode(q, encode(q, x, p), p);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (x[i] >= lo - a.scale / 2 && x[i] <= hi + a.scale / 2) {
      REQUIRE(std::fabs(double{x[i]} - y[i]) <= a.scale / 2 + 1e-6);
    } else {
      REQUIRE(std::fabs(double{y[i]} - (x[i] < lo ? lo : hi)) <= 1e-6);
    }
  }
}

}  // namespace

TEST_CASE("uniform: known answers for each mode", "[uniform]") {
  // symmetric 2-bit, scale 1: levels -1, 0, 1 at codes 1, 2, 3; 0.5 is a tie -> 0 (even)
  {
    const uniform<2, symmetric> q;
    const std::vector<float> x = {-1.6f, -0.4f, 0.5f, -0.5f, 0.6f, 2.0f, 1.5f};
    REQUIRE(encode(q, x, {1.0f}) == std::vector<std::uint8_t>{1, 2, 2, 2, 3, 3, 3});
    REQUIRE(q.fit(x).scale == 2.0f);  // absmax 2 / (c - 1) = 2 / 1
    REQUIRE(decode(q, {1, 2, 3}, {1.0f}) == std::vector<float>{-1.0f, 0.0f, 1.0f});
  }
  // symmetric 8-bit: the int8 -127..127 convention
  {
    const uniform<8, symmetric> q;
    const std::vector<float> x = {-127.0f, 127.0f, 0.0f};
    REQUIRE(q.fit(x).scale == 1.0f);
    REQUIRE(encode(q, x, {1.0f}) == std::vector<std::uint8_t>{1, 255, 128});
  }
  // no zero, 2-bit, scale 1: levels -1.5, -0.5, 0.5, 1.5; |x| = 1 is a tie -> away from zero
  {
    const uniform<2, symmetric_no_zero> q;
    const std::vector<float> x = {-2.0f, -0.7f, 0.0f, -0.0f, 0.9f, 1.0f, -1.0f, 7.0f};
    REQUIRE(encode(q, x, {1.0f}) == std::vector<std::uint8_t>{0, 1, 2, 2, 2, 3, 0, 3});
    REQUIRE(decode(q, {0, 1, 2, 3}, {1.0f}) == std::vector<float>{-1.5f, -0.5f, 0.5f, 1.5f});
    REQUIRE(q.fit(std::vector<float>{-3.0f, 1.0f}).scale == 2.0f);  // 3 / 1.5
  }
  // no zero, 1-bit: sign * scale / 2
  {
    const uniform<1, symmetric_no_zero> q;
    REQUIRE(encode(q, {-0.1f, 0.1f, 5.0f}, {2.0f}) == std::vector<std::uint8_t>{0, 1, 1});
    REQUIRE(decode(q, {0, 1}, {2.0f}) == std::vector<float>{-1.0f, 1.0f});
  }
  // asymmetric 4-bit, scale 0.5, offset -1: x = 0.25 is code 2.5 -> 2 (even)
  {
    const uniform<4, asymmetric> q;
    const std::vector<float> x = {-1.0f, 0.0f, 6.5f, 0.25f, 0.75f, 100.0f, -100.0f};
    REQUIRE(encode(q, x, {0.5f, -1.0f}) == std::vector<std::uint8_t>{0, 2, 15, 2, 4, 15, 0});
    const auto p = q.fit(std::vector<float>{-1.0f, 6.5f, 2.0f});
    REQUIRE(p.scale == 0.5f);
    REQUIRE(p.offset == -1.0f);
  }
}

TEST_CASE("uniform: codes and levels bit-exact against the scalar oracle", "[uniform][ref]") {
  uniform_test::for_bits<1, 8>([](auto b) {
    check_bit_exact<b.value, asymmetric>();
    check_bit_exact<b.value, symmetric_no_zero>();
    if constexpr (b.value >= 2) check_bit_exact<b.value, symmetric>();
  });
}

TEST_CASE("uniform: round trip within scale/2 at the nearest level, every width and mode",
          "[uniform]") {
  uniform_test::for_bits<1, 8>([](auto b) {
    check_round_trip<b.value, asymmetric>();
    check_round_trip<b.value, symmetric_no_zero>();
    check_clamping<b.value, asymmetric>();
    check_clamping<b.value, symmetric_no_zero>();
    if constexpr (b.value >= 2) {
      check_round_trip<b.value, symmetric>();
      check_clamping<b.value, symmetric>();
    }
  });
}

TEST_CASE("uniform: symmetric codes and levels are mirror images", "[uniform][symmetric]") {
  uniform_test::for_bits<1, 8>([](auto b) {
    constexpr unsigned B = b.value;
    const auto check = [](const auto& q, unsigned mirror_sum) {
      using Q = std::remove_cvref_t<decltype(q)>;
      for (const float scale : {1.0f, 0.1f, 3.3f, 41.0f / 7.0f}) {
        std::vector<float> x = uniform_test::normal(1000, B * 17, 2.0f * scale * Q::span_steps);
        // exact ties and grid points: multiples of scale / 2
        for (int k = 1; k < 600; ++k) x.push_back(scale * 0.5f * static_cast<float>(k % 300));
        std::vector<float> neg(x.size());
        for (std::size_t i = 0; i < x.size(); ++i) neg[i] = -x[i];
        const typename Q::params_type p{scale};
        const auto s = encode(q, x, p), t = encode(q, neg, p);
        const auto y = decode(q, s, p), z = decode(q, t, p);
        for (std::size_t i = 0; i < x.size(); ++i) {
          if (x[i] == 0.0f) continue;  // no_zero: +-0 both go to +scale/2
          INFO("x " << x[i] << " scale " << scale);
          REQUIRE(unsigned{s[i]} + unsigned{t[i]} == mirror_sum);
          REQUIRE(y[i] == -z[i]);
        }
      }
    };
    check(uniform<B, symmetric_no_zero>{}, 2 * uniform<B, symmetric_no_zero>::centre - 1);
    if constexpr (B >= 2) check(uniform<B, symmetric>{}, 2 * uniform<B, symmetric>::centre);
  });
}

TEST_CASE("uniform: zero is exact in symmetric mode, never a level without zero",
          "[uniform][symmetric]") {
  const uniform<4, symmetric> q;
  REQUIRE(decode(q, encode(q, {0.0f, -0.0f, 1e-9f}, {0.5f}), {0.5f}) ==
          std::vector<float>{0.0f, 0.0f, 0.0f});
  const uniform<4, symmetric_no_zero> nz;
  std::vector<std::uint8_t> all(16);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint8_t>(i);
  for (const float v : decode(nz, all, {0.5f})) REQUIRE(std::fabs(v) >= 0.25f);
}

namespace {

// Mean of decode(encode(x)) over N draws for one x (N copies encoded in one call).
template <class Q>
double mean_decode(const Q& q, float x, const typename Q::params_type& p, std::size_t n) {
  const std::vector<float> xs(n, x);
  const std::vector<float> y = decode(q, encode(q, xs, p), p);
  double s = 0.0;
  for (const float v : y) s += v;
  return s / static_cast<double>(n);
}

template <unsigned B, class M>
void check_unbiased() {
  using Q = uniform<B, M, stochastic_rounding>;
  const Q q(stochastic_rounding(1234 + B));
  const auto p = Q::make_params(0.3f, -0.7f);
  const qcodec::affine_params a = Q::to_affine(p);
  const float lo = a.offset + a.scale * Q::q_min, hi = a.offset + a.scale * Q::q_max;
  constexpr std::size_t n = 40000;
  // The decode of x is one of its two neighbouring levels (variance <= scale^2 / 4), so the mean
  // of n draws is within 5 standard deviations, 5 * scale / (2 sqrt(n)), of x unless biased.
  const double bound = 5.0 * a.scale / (2.0 * std::sqrt(double{n})) + 1e-6;
  qcodec::rng g(B * 31 + 7);
  for (int k = 0; k < 6; ++k) {
    const float x = lo + (hi - lo) * g.uniform();
    INFO("bits " << B << " mode " << M::name() << " x " << x);
    REQUIRE(std::fabs(mean_decode(q, x, p, n) - x) <= bound);
  }
  // Nearest rounding fails the same test at 0.3 steps past a level: the bound can fail.
  const uniform<B, M> nearest;
  const float x = lo + 0.3f * a.scale;
  REQUIRE(std::fabs(mean_decode(nearest, x, p, n) - x) > bound);
  // Every draw lands on a neighbouring level.
  const std::vector<float> xs = uniform_test::normal(5000, B, (hi - lo) / 4);
  const auto y = decode(q, encode(q, xs, p), p);
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (xs[i] >= lo && xs[i] <= hi) REQUIRE(std::fabs(double{xs[i]} - y[i]) < a.scale * (1 + 1e-5));
}

}  // namespace

TEST_CASE("uniform: stochastic rounding is unbiased inside the range", "[uniform][stochastic]") {
  uniform_test::for_bits<1, 8>([](auto b) {
    check_unbiased<b.value, asymmetric>();
    check_unbiased<b.value, symmetric_no_zero>();
    if constexpr (b.value >= 2) check_unbiased<b.value, symmetric>();
  });
}

TEST_CASE("uniform: stochastic rounding is reproducible from its seed", "[uniform][stochastic]") {
  using Q = uniform<3, asymmetric, stochastic_rounding>;
  const std::vector<float> x = uniform_test::normal(1000, 5);
  const Q a(stochastic_rounding(42)), b(stochastic_rounding(42)), c(stochastic_rounding(43));
  const auto p = a.fit(x);
  const auto sa = encode(a, x, p), sb = encode(b, x, p), sc = encode(c, x, p);
  REQUIRE(sa == sb);
  REQUIRE(sa != sc);
  // the stream advances between calls and restarts on reseed
  const auto sa2 = encode(a, x, p);
  REQUIRE(sa2 != sa);
  a.rounding().reseed(42);
  REQUIRE(encode(a, x, p) == sa);
  // a copy forks an identical stream
  const Q d = b;
  REQUIRE(encode(d, x, p) == encode(b, x, p));
}
