// Calibrated per-channel codebooks (kv/channel_codebook.hpp) and caches that store keys before
// RoPE (kv/rope.hpp).
#include <qcodec/kv.hpp>

#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "../support/catch.hpp"
#include "kv_parity.hpp"
#include "kv_test_data.hpp"

namespace kv = qcodec::kv;

namespace {

template <unsigned Bits>
double weighted_mse(const kv::channel_codebook<Bits>& c, const std::vector<float>& x,
                    const std::vector<float>& w) {
  const std::size_t d = c.head_dim();
  std::vector<std::uint8_t> unit(c.unit_bytes());
  std::vector<float> y(d);
  double e = 0.0;
  for (std::size_t t = 0; t < x.size() / d; ++t) {
    c.encode(&x[t * d], unit.data());
    c.decode(unit.data(), y.data());
    for (std::size_t i = 0; i < d; ++i) {
      e += (w.empty() ? 1.0 : w[i]) * (y[i] - x[t * d + i]) * (y[i] - x[t * d + i]);
    }
  }
  return e;
}

}  // namespace

TEST_CASE("channel_codebook: codes are the nearest level of each channel's table",
          "[kv][codebook]") {
  const kv_test::kv_data data = kv_test::make_kv(400, 1, 16, 3);
  const std::vector<float> x = kv_test::head_rows(data, 0, true);
  auto c = kv::channel_codebook<3>::fit(x, 16, {}, kv::bit_allocation::uniform);
  REQUIRE(c.ok());
  CHECK(c->unit_bytes() == 6);
  std::vector<std::uint8_t> unit(c->unit_bytes());
  std::vector<float> y(16);
  for (std::size_t t = 0; t < 50; ++t) {
    c->encode(&x[t * 16], unit.data());
    c->decode(unit.data(), y.data());
    for (std::size_t i = 0; i < 16; ++i) {
      REQUIRE(c->bits(i) == 3);
      const std::span<const float> levels = c->table(i);
      REQUIRE(std::is_sorted(levels.begin(), levels.end()));
      float best = levels[0];
      for (float l : levels) {
        if (std::fabs(l - x[t * 16 + i]) < std::fabs(best - x[t * 16 + i])) best = l;
      }
      CHECK(std::fabs(y[i] - x[t * 16 + i]) == std::fabs(best - x[t * 16 + i]));
    }
  }
}

TEST_CASE("channel_codebook: greedy allocation moves bits to where the weighted error is",
          "[kv][codebook]") {
  const kv_test::kv_data data = kv_test::make_kv(600, 1, 16, 4);  // channels 3 and 9: 10x scale
  const std::vector<float> x = kv_test::head_rows(data, 0, true);
  auto uniform = kv::channel_codebook<3>::fit(x, 16, {}, kv::bit_allocation::uniform);
  auto greedy = kv::channel_codebook<3>::fit(x, 16);
  REQUIRE(uniform.ok());
  REQUIRE(greedy.ok());
  unsigned total = 0;
  for (std::size_t i = 0; i < 16; ++i) total += greedy->bits(i);
  CHECK(total == 3 * 16);
  CHECK(greedy->unit_bytes() == uniform->unit_bytes());
  CHECK(greedy->bits(3) > 3);
  CHECK(greedy->bits(9) > 3);
  CHECK(weighted_mse(*greedy, x, {}) < 0.8 * weighted_mse(*uniform, x, {}));

  // A heavy weight on channel 0 (a large query there) buys it more bits and less error.
  std::vector<float> w(16, 1.0f);
  w[0] = 1000.0f;
  auto weighted = kv::channel_codebook<3>::fit(x, 16, w);
  REQUIRE(weighted.ok());
  CHECK(weighted->bits(0) > greedy->bits(0));
  CHECK(weighted_mse(*weighted, x, w) < weighted_mse(*greedy, x, w));

  CHECK_FALSE(kv::channel_codebook<3>::fit(std::span<const float>(x.data(), 17), 16).ok());
  CHECK_FALSE(kv::channel_codebook<3>::fit(x, 16, std::vector<float>(3, 1.0f)).ok());
}

TEST_CASE("rope: half-split is interleaved on permuted channels; rotations keep norms",
          "[kv][rope]") {
  const std::size_t d = 16;
  std::vector<float> x(d);
  for (std::size_t i = 0; i < d; ++i) x[i] = std::sin(1.7f * float(i) + 0.3f);
  kv::rope_config interleaved, half;
  half.style = kv::rope_style::half_split;
  std::vector<float> a = x, b(d);
  for (std::size_t i = 0; i < d / 2; ++i) b[i] = x[2 * i], b[i + d / 2] = x[2 * i + 1];
  kv::apply_rope(a.data(), 1, d, 37, interleaved);
  kv::apply_rope(b.data(), 1, d, 37, half);
  for (std::size_t i = 0; i < d / 2; ++i) {
    CHECK(a[2 * i] == Approx(b[i]).margin(1e-6));  // FMA contraction may differ
    CHECK(a[2 * i + 1] == Approx(b[i + d / 2]).margin(1e-6));
    CHECK(std::hypot(a[2 * i], a[2 * i + 1]) == Approx(std::hypot(x[2 * i], x[2 * i + 1])));
  }
  std::vector<float> same = x;
  kv::apply_rope(same.data(), 1, d, 0, interleaved);  // position 0: the identity
  CHECK(same == x);
}

TEST_CASE("RoPE on a run of positions equals RoPE token by token", "[kv][rope]") {
  // apply_rope_run tracks each pair's rotation by angle addition (double) from one sin/cos; it
  // must stay within float rounding of apply_rope's direct sin/cos over a long run, at a large
  // position, for both pair conventions and a head wider than its 256-pair chunk.
  for (const std::size_t d : {8u, 128u, 1030u}) {
    for (const kv::rope_style style : {kv::rope_style::interleaved, kv::rope_style::half_split}) {
      INFO("head_dim " << d);
      kv::rope_config rope;
      rope.style = style;
      const std::size_t n = 600, first = 100000;
      std::vector<float> run = kv_test::make_queries(n * d, d), each = run;
      kv::apply_rope_run(run.data(), n, d, first, rope);
      for (std::size_t t = 0; t < n; ++t) kv::apply_rope(&each[t * d], 1, d, first + t, rope);
      double worst = 0.0;
      for (std::size_t i = 0; i < run.size(); ++i) {
        worst = std::max(worst, double(std::fabs(run[i] - each[i])));
      }
      CHECK(worst < 1e-5);  // values ~0.3-1: a few float ulps
    }
  }
}

TEST_CASE("pre-RoPE cache: attention equals a cache given the rotated keys", "[kv][rope]") {
  const kv_test::kv_data data = kv_test::make_kv(300, kv_test::kv_heads, kv_test::head_dim, 5);
  for (const kv::rope_style style : {kv::rope_style::interleaved, kv::rope_style::half_split}) {
    for (const std::size_t sinks : {0u, 4u}) {
      kv::cache_config pre = kv_test::small_config(sinks, 16), post = pre;
      pre.rope.pre_rope = true;
      pre.rope.style = style;
      post.rope.style = style;
      std::vector<float> rotated = data.keys;
      for (std::size_t t = 0; t < data.tokens; ++t) {
        kv::apply_rope(&rotated[t * kv_test::kv_heads * kv_test::head_dim], kv_test::kv_heads,
                       kv_test::head_dim, t, post.rope);
      }
      using fp32_cache = kv::cache<kv::fp32_stream, kv::fp32_stream>;
      auto a = fp32_cache::create(pre);
      auto b = fp32_cache::create(post);
      REQUIRE(a.ok());
      REQUIRE(b.ok());
      const kv::sequence_id sa = a->add_sequence(), sb = b->add_sequence();
      REQUIRE(a->append(sa, 0, data.keys.data(), data.values.data(), data.tokens).ok());
      REQUIRE(b->append(sb, 0, rotated.data(), data.values.data(), data.tokens).ok());
      // 20 queries: more than attention takes at once (16), each block rotated once for them.
      const std::vector<float> q =
          kv_test::make_queries(20 * kv_test::q_heads * kv_test::head_dim, 9);
      std::vector<float> oa(q.size()), ob(q.size());
      REQUIRE(kv::attention(*a, sa, 0, q.data(), kv_test::q_heads, oa.data(), 20).ok());
      REQUIRE(kv::attention(*b, sb, 0, q.data(), kv_test::q_heads, ob.data(), 20).ok());
      for (std::size_t i = 0; i < q.size(); ++i) CHECK(oa[i] == Approx(ob[i]).margin(1e-5));
      kv_test::check_reference_parity(*a, sa, 0, 5, 10);
      // Exact tokens in fp16: pre-RoPE sink and residual keys are widened, then rotated.
      kv::cache_config pre16 = pre;
      pre16.exact_format = kv::float_format::f16;
      auto c = fp32_cache::create(pre16);
      REQUIRE(c.ok());
      const kv::sequence_id sc = c->add_sequence();
      REQUIRE(c->append(sc, 0, data.keys.data(), data.values.data(), data.tokens).ok());
      kv_test::check_reference_parity(*c, sc, 0, 5, 10);
    }
  }
  kv::cache_config odd = kv_test::small_config(0, 0);
  odd.head_dim = 7;
  odd.rope.pre_rope = true;
  CHECK(
      kv::cache<kv::fp32_stream, kv::fp32_stream>::create(odd).error().is(kv::errors::bad_config));
}

TEST_CASE("channel_codebook cache: one codec per stream, reference parity", "[kv][codebook]") {
  const kv_test::kv_data calibration =
      kv_test::make_kv(500, kv_test::kv_heads, kv_test::head_dim, 11);
  const kv::kv_samples samples = kv_test::calibration_samples(calibration);
  using key_codec = kv::channel_codebook<4>;
  using value_codec = kv::channel_codebook<3>;
  auto keys = kv::fit_per_stream<key_codec>(samples, kv::kv_samples::kind::keys);
  auto values = kv::fit_per_stream<value_codec>(samples, kv::kv_samples::kind::values);
  REQUIRE(keys.ok());
  REQUIRE(values.ok());
  REQUIRE(keys->size() == kv_test::layers * kv_test::kv_heads);
  using cache_type = kv::cache<key_codec, value_codec>;
  for (const std::size_t tokens : {1u, 70u, 200u}) {
    for (const std::size_t sinks : {0u, 3u}) {
      INFO("tokens " << tokens << " sinks " << sinks);
      const kv_test::kv_data data =
          kv_test::make_kv(tokens, kv_test::kv_heads, kv_test::head_dim, 12);
      kv::sequence_id seq = 0;
      const cache_type c = kv_test::filled_cache<cache_type>(data, sinks, 0, seq, *keys, *values);
      CHECK(c.codec_bits_per_value() == Approx(3.5));
      kv_test::check_reference_parity(c, seq, 1, 1, 13);
      if (tokens >= 5) kv_test::check_reference_parity(c, seq, 0, 5, 14);
    }
  }
  // Codecs of another shape, or the wrong count, are refused.
  std::vector<key_codec> two(keys->begin(), keys->begin() + 2);
  CHECK(cache_type::create(kv_test::small_config(0, 0), two, *values)
            .error()
            .is(kv::errors::bad_config));
}

TEST_CASE("make_cache: calibrated schemes", "[kv][codebook][any_cache]") {
  const kv_test::kv_data calibration =
      kv_test::make_kv(300, kv_test::kv_heads, kv_test::head_dim, 21);
  kv::kv_samples samples = kv_test::calibration_samples(calibration);
  const kv::cache_config config = kv_test::small_config(0, 0);
  CHECK(kv::needs_calibration("cb4:prerope=0"));
  CHECK_FALSE(kv::needs_calibration("kivi4"));
  CHECK(kv::make_cache("cb4", config).error().is(kv::errors::bad_calibration));
  for (const char* spec : {"cb4", "cb3", "cb-k5v4", "cb-k4v2", "cb-k3v2", "cb2", "cb4:prerope=0"}) {
    INFO(spec);
    auto c = kv::make_cache(spec, config, &samples);
    REQUIRE(c.ok());
    CHECK((*c)->spec() == spec);
    CHECK((*c)->config().rope.pre_rope == (std::string(spec) != "cb4:prerope=0"));
    const kv::sequence_id s = (*c)->add_sequence();
    const kv_test::kv_data data = kv_test::make_kv(100, kv_test::kv_heads, kv_test::head_dim, 22);
    REQUIRE((*c)->append(s, 0, data.keys.data(), data.values.data(), 100).ok());
    const std::vector<float> q = kv_test::make_queries(kv_test::q_heads * kv_test::head_dim, 23);
    std::vector<float> out(q.size());
    CHECK((*c)->attention(s, 0, q.data(), kv_test::q_heads, out.data()).ok());
  }
  samples.pre_rope_keys.clear();  // pre-RoPE schemes need pre-RoPE keys
  CHECK(kv::make_cache("cb4", config, &samples).error().is(kv::errors::bad_calibration));
  CHECK(kv::make_cache("cb4:prerope=0", config, &samples).ok());
  samples.head_dim = 32;
  CHECK(kv::make_cache("cb4:prerope=0", config, &samples).error().is(kv::errors::bad_calibration));
}

TEST_CASE("kv_samples: append joins each stream's tokens", "[kv][codebook]") {
  const auto make = [](std::size_t tokens, float base) {
    kv::kv_samples s;
    s.layers = 2, s.kv_heads = 2, s.tokens = tokens, s.head_dim = 2;
    for (std::size_t i = 0; i < 2 * 2 * tokens * 2; ++i) {
      s.keys.push_back(base + float(i));
      s.values.push_back(-base - float(i));
    }
    s.pre_rope_keys = s.keys;
    s.key_weights.assign(2 * 2 * 2, base);
    return s;
  };
  kv::kv_samples all;
  REQUIRE(all.append(make(3, 0.0f)).ok());
  const kv::kv_samples b = make(2, 100.0f);
  REQUIRE(all.append(b).ok());
  CHECK(all.tokens == 5);
  const std::span<const float> joined = all.stream(kv::kv_samples::kind::pre_rope_keys, 1, 0);
  const kv::kv_samples a = make(3, 0.0f);
  const std::span<const float> first = a.stream(kv::kv_samples::kind::pre_rope_keys, 1, 0);
  const std::span<const float> second = b.stream(kv::kv_samples::kind::pre_rope_keys, 1, 0);
  REQUIRE(joined.size() == first.size() + second.size());
  CHECK(std::equal(first.begin(), first.end(), joined.begin()));
  CHECK(std::equal(second.begin(), second.end(), joined.begin() + 6));
  CHECK(all.key_weights[0] == Approx(40.0f));  // (3 * 0 + 2 * 100) / 5
  kv::kv_samples other = make(2, 1.0f);
  other.head_dim = 4;
  CHECK(all.append(other).is(kv::errors::bad_calibration));
}
