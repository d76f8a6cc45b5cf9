// Dense-and-sparse outliers (kv/outliers.hpp): fused attention equals the reference on the
// decoded cache; the kept entries are the largest and decode exactly (up to the fp16 rounding
// of their correction); outliers lower KIVI-2's key error on keys with outlier channels.
#include <qcodec/kv.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
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

using kivi2_cache = kv::cache<kv::per_channel<2, 32>, kv::per_token<2>>;
using kivi2_o1_cache = kv::cache<kv::outliers<kv::per_channel<2, 32>, 10>, kv::per_token<2>>;
using q4_o2_cache =
    kv::cache<kv::outliers<kv::per_token<4>, 20>, kv::outliers<kv::per_token<4>, 20>>;
using q2_o5_cache = kv::cache<kv::outliers<kv::per_token<2>, 50>, kv::per_token<2>>;
using small_groups_cache =
    kv::cache<kv::outliers<kv::per_channel<3, 4>, 30>, kv::outliers<kv::per_channel<2, 8>, 10>>;

// Relative squared decode error of head 0's keys, through Codec in units of its group.
template <class Codec>
double key_error(const kv_test::kv_data& data) {
  const std::size_t d = data.dim, G = Codec::group_tokens;
  const Codec codec(d);
  std::vector<float> x(G * d), y(G * d);
  std::vector<std::uint8_t> unit(codec.unit_bytes());
  double err = 0.0, ref = 0.0;
  for (std::size_t t0 = 0; t0 + G <= data.tokens; t0 += G) {
    for (std::size_t t = 0; t < G; ++t)
      std::memcpy(&x[t * d], &data.keys[(t0 + t) * data.heads * d], d * 4);
    codec.encode(x.data(), unit.data());
    codec.decode(unit.data(), y.data());
    for (std::size_t i = 0; i < G * d; ++i) {
      err += std::pow(double(x[i]) - y[i], 2);
      ref += std::pow(double(x[i]), 2);
    }
  }
  return err / ref;
}

// For every token of every unit: the kept indices are the k largest |x_i| (brute force), and
// the decoded value there is x_i up to the fp16 rounding of the stored correction.
template <class Codec>
void check_kept_entries(std::size_t d, std::uint64_t seed) {
  const std::size_t G = Codec::group_tokens;
  const Codec codec(d);
  const std::size_t k = codec.kept();
  qcodec::rng rng(seed);
  std::vector<float> x(G * d), y(G * d), corr(k);
  std::vector<std::uint16_t> idx(k);
  std::vector<std::uint8_t> unit(codec.unit_bytes());
  for (int rep = 0; rep < 20; ++rep) {
    for (std::size_t i = 0; i < G * d; ++i) {
      x[i] = rng.normal();
      if (rng.uniform() < 0.03f) x[i] *= 30.0f;  // planted outliers, some tokens more than k
    }
    codec.encode(x.data(), unit.data());
    codec.decode(unit.data(), y.data());
    for (std::size_t t = 0; t < G; ++t) {
      const float* xt = &x[t * d];
      codec.sparse_entries(unit.data(), t, idx.data(), corr.data());
      std::vector<float> mags(d);
      for (std::size_t i = 0; i < d; ++i) mags[i] = std::fabs(xt[i]);
      std::sort(mags.begin(), mags.end(), std::greater<>());
      for (std::size_t j = 0; j < k; ++j) {
        INFO("rep " << rep << " token " << t << " entry " << j);
        REQUIRE(idx[j] < d);
        CHECK(std::fabs(xt[idx[j]]) == mags[j]);  // the j-th largest magnitude
        for (std::size_t m = 0; m < j; ++m) CHECK(idx[m] != idx[j]);
        // correction c = fp16(x - r) has |c - (x - r)| <= 2^-11 |x - r|; y = r + c in float.
        const double bound = std::ldexp(std::fabs(double(corr[j])), -10) +
                             4.0 * FLT_EPSILON * std::fabs(double(xt[idx[j]])) + 1e-7;
        CHECK(std::fabs(double(y[t * d + idx[j]]) - xt[idx[j]]) <= bound);
      }
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("outliers: attention on the codes equals the reference on its decoding",
                   "[kv][outliers]", kivi2_o1_cache, q4_o2_cache, q2_o5_cache, small_groups_cache) {
  check_all<TestType>(1, 0, 0);
  check_all<TestType>(37, 0, 0);
  check_all<TestType>(300, 4, 0);
  check_all<TestType>(300, 0, 32);
  check_all<TestType>(333, 5, 20);
}

TEST_CASE("outliers: the kept entries are the largest and decode exactly", "[kv][outliers]") {
  check_kept_entries<kv::outliers<kv::per_token<2>, 10>>(64, 1);         // k = 1
  check_kept_entries<kv::outliers<kv::per_token<4>, 50>>(128, 2);        // k = 7
  check_kept_entries<kv::outliers<kv::per_channel<2, 32>, 10>>(128, 3);  // k = 2 per token
  check_kept_entries<kv::outliers<kv::per_channel<3, 4>, 100>>(100, 4);  // k = 10
  CHECK(kv::outliers<kv::per_token<2>, 10>(128).kept() == 2);            // ceil(1.28)
  CHECK(kv::outliers<kv::per_token<2>, 10>(100).kept() == 1);            // ceil(1.0)
  CHECK(kv::outliers<kv::per_token<2>, 10>(128).unit_bytes() ==
        kv::per_token<2>(128).unit_bytes() + 2 * 4);
}

TEST_CASE("outliers: NaN entries are kept aside, not sorted into undefined behaviour",
          "[kv][outliers]") {
  // fabs(NaN) compares false with everything: NaN ranks as the largest magnitude, so the
  // selection stays a strict weak order, the NaNs go to the sparse list and the rest stays finite.
  const kv::outliers<kv::per_token<4>, 50> codec(64);  // 4 entries kept per token
  std::vector<float> x = kv_test::make_queries(64, 30), y(64);
  x[7] = x[40] = std::numeric_limits<float>::quiet_NaN();
  std::vector<std::uint8_t> unit(codec.unit_bytes());
  codec.encode(x.data(), unit.data());
  codec.decode(unit.data(), y.data());
  std::size_t finite = 0;
  for (std::size_t i = 0; i < 64; ++i) {
    finite += std::isfinite(y[i]) ? 1 : 0;
    if (i != 7 && i != 40) CHECK(std::fabs(y[i] - x[i]) < 0.1f);
  }
  CHECK(std::isnan(y[7]));
  CHECK(std::isnan(y[40]));
  CHECK(finite == 62);

  // Infinities and a NaN, no more than the 4 kept entries: all kept aside, the rest finite.
  x = kv_test::make_queries(64, 31);
  for (const std::size_t i : {1u, 2u, 3u}) x[i] = std::numeric_limits<float>::infinity();
  x[50] = std::numeric_limits<float>::quiet_NaN();
  codec.encode(x.data(), unit.data());
  codec.decode(unit.data(), y.data());
  CHECK(std::isnan(y[50]));
  for (const std::size_t i : {1u, 2u, 3u}) CHECK(y[i] == std::numeric_limits<float>::infinity());
  std::size_t finite_rest = 0;
  for (const float v : y) finite_rest += std::isfinite(v) ? 1 : 0;
  CHECK(finite_rest == 60);
}

TEST_CASE("outliers lower KIVI-2's key error on keys with outlier channels", "[kv][outliers]") {
  // kv_test keys have two channels 10x larger than the rest: with 1% of 128 channels kept
  // (2 per token) the per-channel ranges of those channels collapse around zero.
  const kv_test::kv_data data = kv_test::make_kv(512, 1, 128, 11);
  const double plain = key_error<kv::per_channel<2, 32>>(data);
  const double kept = key_error<kv::outliers<kv::per_channel<2, 32>, 10>>(data);
  const double plain_tok = key_error<kv::per_token<2>>(data);
  const double kept_tok = key_error<kv::outliers<kv::per_token<2>, 10>>(data);
  WARN("relative key MSE: KIVI-2 keys " << plain << ", with 1% outliers " << kept
                                        << "; 2-bit per-token " << plain_tok
                                        << ", with 1% outliers " << kept_tok);
  CHECK(kept < 0.6 * plain);
  CHECK(kept_tok < 0.5 * plain_tok);  // per-token ranges were set by the outlier channels
}
