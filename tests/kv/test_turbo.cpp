// TurboQuant KV codec (kv/turbo.hpp): fused attention equals the reference on the decoded
// cache; the decode error of unit vectors is the Lloyd–Max MSE of the sphere marginal; the
// codebook matches the known Gaussian Lloyd–Max values for large d; attention error vs int4.
#include <qcodec/kv.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "../support/catch.hpp"
#include "kv_parity.hpp"
#include "kv_test_data.hpp"

namespace kv = qcodec::kv;
using kv_test::check_all;
using kv_test::check_reference_parity;
using kv_test::filled_cache;
using kv_test::group;
using kv_test::head_dim;
using kv_test::kv_heads;
using kv_test::layers;
using kv_test::q_heads;
using kv_test::small_config;

namespace {

using turbo3_cache = kv::cache<kv::turbo<3>, kv::turbo<3>>;
using turbo4_cache = kv::cache<kv::turbo<4>, kv::turbo<4>>;
using turbo2_cache = kv::cache<kv::turbo<2>, kv::turbo<2>>;
using turbo_keys_cache = kv::cache<kv::turbo<4>, kv::per_token<4>>;
using q4_cache = kv::cache<kv::per_token<4>, kv::per_token<4>>;
using rotated4_cache = kv::cache<kv::rotated<kv::per_token<4>>, kv::rotated<kv::per_token<4>>>;
using rotated3_cache = kv::cache<kv::rotated<kv::per_token<3>>, kv::rotated<kv::per_token<3>>>;

// Mean over many uniformly random unit vectors of ||u - decode(encode(u))||^2 / d.
template <unsigned Bits>
double unit_vector_mse(std::size_t d, std::size_t n, std::uint64_t seed) {
  const kv::turbo<Bits> codec(d);
  qcodec::rng rng(seed);
  std::vector<float> x(d), y(d);
  std::vector<std::uint8_t> unit(codec.unit_bytes());
  double err = 0.0;
  for (std::size_t v = 0; v < n; ++v) {
    double sq = 0.0;
    for (float& e : x) {
      e = rng.normal();
      sq += double(e) * e;
    }
    for (float& e : x) e = static_cast<float>(e / std::sqrt(sq));
    codec.encode(x.data(), unit.data());
    codec.decode(unit.data(), y.data());
    for (std::size_t i = 0; i < d; ++i) err += std::pow(double(x[i]) - y[i], 2);
  }
  return err / double(n * d);
}

}  // namespace

TEMPLATE_TEST_CASE("turbo: attention on the codes equals the reference on its decoding",
                   "[kv][turbo]", turbo3_cache, turbo4_cache, turbo2_cache, turbo_keys_cache) {
  check_all<TestType>(1, 0, 0);
  check_all<TestType>(37, 0, 0);
  check_all<TestType>(300, 4, 0);
  check_all<TestType>(333, 5, 20);
}

TEST_CASE("turbo: the codebook is the Lloyd-Max quantizer of the sphere marginal", "[kv][turbo]") {
  // For large d, sqrt(d) x is nearly N(0, 1): Lloyd–Max MSE of the unit Gaussian at 2, 3, 4
  // bits is 0.1175, 0.03454, 0.009497 (Max 1960), and the 2-bit levels are +-0.4528, +-1.510.
  const std::size_t d = 1024;
  const kv::turbo<2> t2(d);
  const kv::turbo<3> t3(d);
  const kv::turbo<4> t4(d);
  CHECK(std::fabs(t2.coordinate_mse() * d - 0.1175) < 0.002);
  CHECK(std::fabs(t3.coordinate_mse() * d - 0.03454) < 0.0006);
  CHECK(std::fabs(t4.coordinate_mse() * d - 0.009497) < 0.0002);
  const float s = std::sqrt(float(d));
  CHECK(std::fabs(t2.levels()[2] * s - 0.4528f) < 0.005f);
  CHECK(std::fabs(t2.levels()[3] * s - 1.510f) < 0.01f);
  CHECK(t2.levels()[0] == -t2.levels()[3]);  // symmetric density, symmetric levels
  for (unsigned j = 0; j + 1 < 16; ++j) CHECK(t4.levels()[j] < t4.levels()[j + 1]);
}

TEST_CASE("turbo: unit-vector decode error is the per-coordinate Lloyd-Max MSE", "[kv][turbo]") {
  // R is orthogonal, so R u of a uniformly random unit vector u is uniformly random and each
  // coordinate follows the sphere marginal the codebook was fitted to: E ||u - u^||^2 / d is
  // exactly coordinate_mse() (the fp16 norm of a unit vector is 1, exact). 4000 vectors of
  // 64 or 128 coordinates: the sample mean is within a few percent.
  for (std::size_t d : {64u, 128u}) {
    INFO("d = " << d);
    const double m2 = unit_vector_mse<2>(d, 4000, 1), m3 = unit_vector_mse<3>(d, 4000, 2),
                 m4 = unit_vector_mse<4>(d, 4000, 3);
    const double e2 = kv::turbo<2>(d).coordinate_mse(), e3 = kv::turbo<3>(d).coordinate_mse(),
                 e4 = kv::turbo<4>(d).coordinate_mse();
    WARN("d " << d << " unit-vector MSE per coordinate (measured / Lloyd-Max): 2-bit " << m2
              << " / " << e2 << ", 3-bit " << m3 << " / " << e3 << ", 4-bit " << m4 << " / " << e4);
    CHECK(std::fabs(m2 / e2 - 1.0) < 0.04);
    CHECK(std::fabs(m3 / e3 - 1.0) < 0.04);
    CHECK(std::fabs(m4 / e4 - 1.0) < 0.04);
  }
}

TEST_CASE("turbo: decode scales with the norm and zero stays zero", "[kv][turbo]") {
  const kv::turbo<3> codec(64);
  std::vector<float> x(64), y(64), z(64);
  qcodec::rng rng(5);
  for (float& e : x) e = rng.normal();
  std::vector<std::uint8_t> u1(codec.unit_bytes()), u2(codec.unit_bytes());
  codec.encode(x.data(), u1.data());
  for (float& e : x) e *= 8.0f;  // power of two: same direction bits, norm exactly x8
  codec.encode(x.data(), u2.data());
  CHECK(std::memcmp(u1.data() + 2, u2.data() + 2, codec.unit_bytes() - 2) == 0);
  codec.decode(u1.data(), y.data());
  codec.decode(u2.data(), z.data());
  for (std::size_t i = 0; i < 64; ++i) CHECK(z[i] == 8.0f * y[i]);
  std::fill(x.begin(), x.end(), 0.0f);
  codec.encode(x.data(), u1.data());
  codec.decode(u1.data(), y.data());
  for (float e : y) CHECK(e == 0.0f);
}

TEST_CASE("turbo: attention error against exact attention", "[kv][turbo]") {
  const kv_test::kv_data data = kv_test::make_kv(512, kv_heads, head_dim, 9);
  const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 10);
  auto output_error = [&]<class Cache>() { return kv_test::attention_error<Cache>(data, q); };
  const double e_q4 = output_error.template operator()<q4_cache>();
  const double e_rot4 = output_error.template operator()<rotated4_cache>();
  const double e_rot3 = output_error.template operator()<rotated3_cache>();
  const double e_t2 = output_error.template operator()<turbo2_cache>();
  const double e_t3 = output_error.template operator()<turbo3_cache>();
  const double e_t4 = output_error.template operator()<turbo4_cache>();
  WARN("attention output relative MSE: int4 " << e_q4 << ", rotated int4 " << e_rot4
                                              << ", rotated int3 " << e_rot3 << ", turbo2 " << e_t2
                                              << ", turbo3 " << e_t3 << ", turbo4 " << e_t4);
  CHECK(e_t4 < e_t3);
  CHECK(e_t3 < e_t2);
  CHECK(e_t4 < e_q4);    // 4.25 vs 4.5 bits per value
  CHECK(e_t3 < e_rot3);  // 3.25 vs 3.5 bits per value
  // Not checked: turbo4 < rotated int4. On these keys it is not (0.018 vs 0.011 at d = 64):
  // the keys are dominated by two outlier channels, and a randomized Hadamard transform (one
  // fixed sign pattern, not a Haar-random rotation) maps a nearly 2-sparse vector to nearly
  // 4-valued coordinates, which per-token min/max levels fit better than the Lloyd–Max levels
  // of the sphere marginal; per-token 4-bit also spends 32 bits of metadata per token, not 16.
}

// ---- TurboQuant_prod: (Bits - 1)-bit codes + 1-bit QJL residual sketch (kv/turbo_qjl.hpp) ----

namespace {

using turbo3_qjl_cache = kv::cache<kv::turbo_qjl<3>, kv::turbo<3>>;
using qjl_both_cache = kv::cache<kv::turbo_qjl<2>, kv::turbo_qjl<4>>;
using qjl5_cache = kv::cache<kv::turbo_qjl<5>, kv::per_token<4>>;

// One token's score q . k through a key codec's own encode / prepare_query / scores.
template <class Codec>
double codec_score(const Codec& codec, const std::vector<float>& k, const std::vector<float>& q) {
  std::vector<std::uint8_t> unit(codec.unit_bytes());
  std::vector<float> qp(q.size());
  codec.encode(k.data(), unit.data());
  codec.prepare_query(q.data(), qp.data());
  float s = 0.0f;
  codec.scores(unit.data(), 1, qp.data(), 1, &s, 1);
  return s;
}

struct moments {
  double mean = 0.0, se = 0.0;  // sample mean of (estimate - truth) and its standard error
};

}  // namespace

TEMPLATE_TEST_CASE("turbo_qjl: attention on the codes equals the reference on its decoding",
                   "[kv][turbo][qjl]", turbo3_qjl_cache, qjl_both_cache, qjl5_cache) {
  check_all<TestType>(1, 0, 0);
  check_all<TestType>(37, 0, 0);
  check_all<TestType>(300, 4, 0);
  check_all<TestType>(333, 5, 20);
}

TEST_CASE("turbo_qjl: the inner-product estimate is unbiased, TurboQuant_mse's shrinks",
          "[kv][turbo][qjl]") {
  // Fixed k and q (correlated, so q . k is far from 0), N codecs with independent seeds (random
  // rotation and sketch S): the QJL estimate's mean error is 0 within 4 standard errors, while
  // the (Bits - 1)-bit MSE quantizer alone shrinks q . k by about d * coordinate_mse (0.12 at
  // 2 bits). Getting sqrt(pi/2), m or the sign convention wrong moves the QJL mean by tens of
  // standard errors.
  const std::size_t d = 128, n = 1500;
  qcodec::rng rng(2024);
  std::vector<float> k(d), q(d);
  for (std::size_t i = 0; i < d; ++i) {
    k[i] = rng.normal() * (i % 16 == 3 ? 4.0f : 1.0f);
    q[i] = 0.5f * k[i] + rng.normal();
  }
  double truth = 0.0;
  for (std::size_t i = 0; i < d; ++i) truth += double(q[i]) * k[i];
  const auto stats = [&](auto make, std::uint64_t seed0) {
    double sum = 0.0, sq = 0.0;
    for (std::size_t s = 0; s < n; ++s) {
      const double e = codec_score(make(seed0 + 7919 * s), k, q) - truth;
      sum += e;
      sq += e * e;
    }
    moments m;
    m.mean = sum / n;
    m.se = std::sqrt((sq / n - m.mean * m.mean) / (n - 1));
    return m;
  };
  const moments qjl3 = stats([&](std::uint64_t s) { return kv::turbo_qjl<3>(d, s); }, 1);
  const moments mse2 = stats([&](std::uint64_t s) { return kv::turbo<2>(d, s); }, 1);
  const moments qjl2 = stats([&](std::uint64_t s) { return kv::turbo_qjl<2>(d, s); }, 5);
  const moments mse1 = stats([&](std::uint64_t s) { return kv::turbo<1>(d, s); }, 5);
  const moments mse3 = stats([&](std::uint64_t s) { return kv::turbo<3>(d, s); }, 9);
  WARN("q.k = " << truth << "; mean error (standard error) over " << n << " seeds: turbo_qjl<3> "
                << qjl3.mean << " (" << qjl3.se << "), turbo<2> " << mse2.mean << " (" << mse2.se
                << "), turbo_qjl<2> " << qjl2.mean << " (" << qjl2.se << "), turbo<1> " << mse1.mean
                << " (" << mse1.se << "), turbo<3> " << mse3.mean << " (" << mse3.se << ")");
  CHECK(std::fabs(qjl3.mean) <= 4.0 * qjl3.se);
  CHECK(std::fabs(qjl2.mean) <= 4.0 * qjl2.se);
  // The MSE quantizers are biased towards 0 by about d * coordinate_mse of q . k.
  const double shrink2 = kv::turbo<2>(d).coordinate_mse() * d;
  const double shrink1 = kv::turbo<1>(d).coordinate_mse() * d;
  CHECK(mse2.mean < -20.0 * mse2.se);
  CHECK(mse1.mean < -20.0 * mse1.se);
  CHECK(mse3.mean < -4.0 * mse3.se);
  CHECK(mse2.mean / truth == Approx(-shrink2).epsilon(0.15));
  CHECK(mse1.mean / truth == Approx(-shrink1).epsilon(0.15));
  // Unbiased is not free: the sketch adds variance (TurboQuant's Theorem 2 bound).
  CHECK(qjl3.se > mse2.se);
}

TEST_CASE("turbo_qjl: unit layout and decode", "[kv][turbo][qjl]") {
  // norm + gamma (4 bytes), d (Bits - 1)-bit codes, d sign bits.
  CHECK(kv::turbo_qjl<3>(128).unit_bytes() == 4 + 32 + 16);
  CHECK(kv::turbo_qjl<2>(64).unit_bytes() == 4 + 8 + 8);
  CHECK(kv::turbo_qjl<5>(256).unit_bytes() == 4 + 128 + 32);
  CHECK(kv::turbo_qjl<3>(128).sketch_rows() == 128);
  // The (Bits - 1)-bit part is turbo<Bits - 1>'s codebook.
  const kv::turbo_qjl<3> codec(64);
  const kv::turbo<2> mse(64);
  for (int j = 0; j < 4; ++j) CHECK(codec.levels()[j] == mse.levels()[j]);
  // decode is the QJL reconstruction: q . decode(k) == the scores() estimate, any q.
  qcodec::rng rng(3);
  std::vector<float> k(64), q(64), y(64);
  for (float& e : k) e = rng.normal();
  for (float& e : q) e = rng.normal();
  std::vector<std::uint8_t> unit(codec.unit_bytes());
  codec.encode(k.data(), unit.data());
  codec.decode(unit.data(), y.data());
  double dot = 0.0, mag = 0.0;
  for (std::size_t i = 0; i < 64; ++i) {
    dot += double(q[i]) * y[i];
    mag += std::fabs(double(q[i]) * y[i]);
  }
  CHECK(std::fabs(codec_score(codec, k, q) - dot) <= 1e-5 * mag);
  // Zero stays zero (norm 0 scales everything away).
  std::fill(k.begin(), k.end(), 0.0f);
  codec.encode(k.data(), unit.data());
  codec.decode(unit.data(), y.data());
  for (float e : y) CHECK(e == 0.0f);
}

TEST_CASE("turbo_qjl keys: attention error against exact attention", "[kv][turbo][qjl]") {
  const kv_test::kv_data data = kv_test::make_kv(512, kv_heads, head_dim, 9);
  const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 10);
  auto output_error = [&]<class Cache>() { return kv_test::attention_error<Cache>(data, q); };
  const double e_t3 = output_error.template operator()<turbo3_cache>();
  const double e_t3q = output_error.template operator()<turbo3_qjl_cache>();
  const double e_t2k = output_error.template operator()<kv::cache<kv::turbo<2>, kv::turbo<3>>>();
  WARN("attention output relative MSE, turbo3 values: turbo3 keys "
       << e_t3 << ", turbo3-qjl keys " << e_t3q << ", turbo2 keys " << e_t2k);
  // Not checked against each other: one seed's attention error mixes bias and variance; the
  // unbiasedness test above is the property that QJL buys.
  CHECK(e_t3q < 1.0);
}
