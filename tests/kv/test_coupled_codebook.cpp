// Coupled quantization (kv/coupled_codebook.hpp): units, decoding through the product quantizer,
// scores through the query's inner-product tables and value sums against the decoded vectors,
// reference parity of caches storing keys after RoPE (scored on the codes) and before it, the
// make_cache schemes, and calibration that cannot fit.
#include <qcodec/kv.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "../support/catch.hpp"
#include "kv_parity.hpp"
#include "kv_test_data.hpp"

namespace kv = qcodec::kv;

namespace {

template <class Codec>
void check_codec(const Codec& c, const std::vector<float>& x) {
  const std::size_t d = c.head_dim(), n = x.size() / d, m = d / c.quantizer().sub_dim();
  REQUIRE(c.unit_bytes() == qcodec::packed_bytes(m, c.quantizer().bits()));
  std::vector<std::uint8_t> units(n * c.unit_bytes()), codes(m);
  std::vector<float> decoded(n * d), direct(d);
  for (std::size_t t = 0; t < n; ++t) {
    c.encode(&x[t * d], &units[t * c.unit_bytes()]);
    c.decode(&units[t * c.unit_bytes()], &decoded[t * d]);
    c.quantizer().encode(&x[t * d], codes.data());
    c.quantizer().decode(codes.data(), direct.data());
    for (std::size_t i = 0; i < d; ++i) REQUIRE(decoded[t * d + i] == direct[i]);
  }
  // Scores of 1..n tokens (tails of the four-token loop), ld > count, for 1..8 query heads (the
  // tables of each four interleaved, then those of the heads left: widths 1 to 4 alone, widths
  // 1 to 3 after a whole group, two whole groups).
  const std::size_t ld = n + 5;
  for (std::size_t nq = 1; nq <= 8; ++nq) {
    const std::vector<float> q = kv_test::make_queries(nq * d, 5);
    std::vector<float> tables(nq * kv::query_floats(c));
    kv::prepare_queries(c, q.data(), nq, tables.data());
    for (const std::size_t count : {std::size_t{1}, std::size_t{3}, std::size_t{6}, n}) {
      INFO("heads " << nq << ", count " << count);
      std::vector<float> s(nq * ld, -1.0f);
      c.scores(units.data(), count, tables.data(), nq, s.data(), ld);
      for (std::size_t g = 0; g < nq; ++g) {
        for (std::size_t t = 0; t < count; ++t) {
          double want = 0.0;
          for (std::size_t i = 0; i < d; ++i) want += double(q[g * d + i]) * decoded[t * d + i];
          CHECK(s[g * ld + t] == Approx(want).margin(1e-4));
        }
        CHECK(s[g * ld + count] == -1.0f);  // nothing past count
      }
    }
  }
  const std::size_t nq = 3;
  std::vector<float> p(nq * ld), acc(nq * d, 0.5f);
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = float(i % 7) / 7.0f;
  c.accumulate(units.data(), n, p.data(), ld, nq, acc.data());
  for (std::size_t g = 0; g < nq; ++g) {
    for (std::size_t i = 0; i < d; ++i) {
      double want = 0.5;
      for (std::size_t t = 0; t < n; ++t) want += double(p[g * ld + t]) * decoded[t * d + i];
      CHECK(acc[g * d + i] == Approx(want).margin(1e-4));
    }
  }
}

}  // namespace

TEST_CASE("coupled_codebook: units, decoding, scores on the codes, value sums", "[kv][coupled]") {
  const kv_test::kv_data calibration =
      kv_test::make_kv(600, kv_test::kv_heads, kv_test::head_dim, 31);
  const std::vector<float> x = kv_test::head_rows(calibration, 1, true);
  // 301 tokens: several chunks of decoded rows (64) and of unpacked codes (64 for <1, 3>).
  const std::vector<float> held_out =
      kv_test::head_rows(kv_test::make_kv(301, kv_test::kv_heads, kv_test::head_dim, 32), 1, true);
  std::vector<float> w(kv_test::head_dim);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = 0.2f + float(i % 5);
  SECTION("8-bit codes, 4 channels (CQ-4c8b)") {
    auto c = kv::coupled_codebook<4, 8>::fit(x, kv_test::head_dim, w);
    REQUIRE(c.ok());
    CHECK(c->name() == "cq-4c8b");
    CHECK(kv::query_floats(*c) == kv_test::head_dim / 4 * 256);
    check_codec(*c, held_out);
  }
  SECTION("4-bit codes, 2 channels") {
    auto c = kv::coupled_codebook<2, 4>::fit(x, kv_test::head_dim);
    REQUIRE(c.ok());
    CHECK(c->unit_bytes() == kv_test::head_dim / 4);
    check_codec(*c, held_out);
  }
  SECTION("3-bit codes, 1 channel (a scalar codebook per channel)") {
    auto c = kv::coupled_codebook<1, 3>::fit(x, kv_test::head_dim);
    REQUIRE(c.ok());
    CHECK(c->unit_bytes() == kv_test::head_dim * 3 / 8);
    check_codec(*c, held_out);
  }
}

namespace {

// Caches of one codec per stream, keys stored after RoPE (scored on the codes) or before it.
template <class Codec>
void check_cache_parity(double bits) {
  const kv::kv_samples samples =
      kv_test::calibration_samples(kv_test::make_kv(400, kv_test::kv_heads, kv_test::head_dim, 33));
  auto keys = kv::fit_per_stream<Codec>(samples, kv::kv_samples::kind::keys);
  auto values = kv::fit_per_stream<Codec>(samples, kv::kv_samples::kind::values);
  REQUIRE(keys.ok());
  REQUIRE(values.ok());
  REQUIRE(keys->size() == kv_test::layers * kv_test::kv_heads);
  using cache_type = kv::cache<Codec, Codec>;
  for (const bool pre_rope : {false, true}) {
    for (const std::size_t tokens : {1u, 70u, 200u}) {
      for (const std::size_t sinks : {0u, 3u}) {
        INFO("pre_rope " << pre_rope << " tokens " << tokens << " sinks " << sinks);
        const kv_test::kv_data data =
            kv_test::make_kv(tokens, kv_test::kv_heads, kv_test::head_dim, 34);
        kv::cache_config config = kv_test::small_config(sinks, 0);
        config.rope.pre_rope = pre_rope;
        kv::sequence_id seq = 0;
        const cache_type c = kv_test::filled_cache<cache_type>(config, data, seq, *keys, *values);
        CHECK(c.codec_bits_per_value() == Approx(bits));
        kv_test::check_reference_parity(c, seq, 1, 1, 35);
        if (tokens >= 20) kv_test::check_reference_parity(c, seq, 0, 20, 36);  // two chunks
      }
    }
  }
}

}  // namespace

TEST_CASE("coupled_codebook cache: reference parity, keys after and before RoPE", "[kv][coupled]") {
  SECTION("CQ-4c8b") { check_cache_parity<kv::coupled_codebook<4, 8>>(2.0); }
  SECTION("2 channels, 4-bit codes (packed)") {
    check_cache_parity<kv::coupled_codebook<2, 4>>(2.0);
  }
}

TEST_CASE("coupled_codebook: calibration that cannot fit is refused", "[kv][coupled]") {
  const std::vector<float> x =
      kv_test::head_rows(kv_test::make_kv(300, kv_test::kv_heads, kv_test::head_dim, 37), 0, true);
  CHECK(kv::coupled_codebook<3, 8>::fit(x, 64).error().is(kv::errors::bad_calibration));
  CHECK(kv::coupled_codebook<4, 8>::fit(std::span<const float>(x.data(), 100 * 64), 64)
            .error()
            .is(kv::errors::bad_calibration));  // 100 tokens for 256 centroids
  CHECK(kv::coupled_codebook<4, 8>::fit(x, 64, std::vector<float>(3, 1.0f))
            .error()
            .is(kv::errors::bad_calibration));
  CHECK(kv::coupled_codebook<4, 8>::fit(x, 64, std::vector<float>(64, -1.0f))
            .error()
            .is(kv::errors::bad_calibration));
  std::vector<float> nan = x;
  nan[5] = std::nanf("");
  CHECK(kv::coupled_codebook<4, 8>::fit(nan, 64).error().is(kv::errors::bad_calibration));
}

TEST_CASE("make_cache: coupled quantization schemes", "[kv][coupled][any_cache]") {
  const kv::kv_samples samples =
      kv_test::calibration_samples(kv_test::make_kv(300, kv_test::kv_heads, kv_test::head_dim, 38));
  const kv::cache_config config = kv_test::small_config(0, 0);
  CHECK(kv::needs_calibration("cq2"));
  CHECK(kv::make_cache("cq2", config).error().is(kv::errors::bad_calibration));
  for (const char* spec : {"cq4", "cq2", "cq1", "cq2:prerope=0"}) {
    INFO(spec);
    auto c = kv::make_cache(spec, config, &samples);
    REQUIRE(c.ok());
    CHECK((*c)->spec() == spec);
    const kv::sequence_id s = (*c)->add_sequence();
    const kv_test::kv_data data = kv_test::make_kv(100, kv_test::kv_heads, kv_test::head_dim, 39);
    REQUIRE((*c)->append(s, 0, data.keys.data(), data.values.data(), 100).ok());
    const std::vector<float> q = kv_test::make_queries(kv_test::q_heads * kv_test::head_dim, 40);
    std::vector<float> out(q.size());
    CHECK((*c)->attention(s, 0, q.data(), kv_test::q_heads, out.data()).ok());
  }
}
