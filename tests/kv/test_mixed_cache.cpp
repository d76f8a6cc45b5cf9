// kv::mixed_cache: per-token precision from an engine-supplied importance score.
#include <qcodec/kv.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "../support/catch.hpp"
#include "kv_parity.hpp"
#include "kv_test_data.hpp"

namespace kv = qcodec::kv;
using kv_test::head_dim;
using kv_test::kv_heads;
using kv_test::layers;
using kv_test::q_heads;

namespace {

using exact_tier = kv::cache<kv::fp32_stream, kv::fp32_stream>;
// 8-bit and KIVI-2 keys scoring the float query: the reference parity below decodes every tier
// alike (the 15-bit queries of their defaults are checked through kv::cache in
// test_attention.cpp).
using q8_tier = kv::cache<kv::per_token<8, kv::query_format::f32>, kv::per_token<8>>;
using q2_tier = kv::cache<kv::per_token<2>, kv::per_token<2>>;
using kivi2_tier = kv::cache<kv::per_channel<2, 32, kv::query_format::f32>, kv::per_token<2>>;
using three_tiers = kv::mixed_cache<exact_tier, q8_tier, kivi2_tier>;

kv::mixed_config config(std::size_t window, std::vector<float> thresholds = {0.8f, 0.4f}) {
  kv::mixed_config c;
  c.base = kv_test::small_config(0, window);
  c.thresholds = std::move(thresholds);
  return c;
}

// Seeded scores in [0, 1): about 20% of the tokens reach tier 0, 40% tier 1, 40% tier 2.
std::vector<float> scores(std::size_t n, std::uint64_t seed) {
  qcodec::rng rng(seed);
  std::vector<float> s(n);
  for (float& x : s) x = rng.uniform();
  return s;
}

template <class Mixed>
Mixed filled(const kv::mixed_config& c, const kv_test::kv_data& data,
             const std::vector<float>& importance, kv::sequence_id& seq) {
  auto m = Mixed::create(c);
  REQUIRE(m.ok());
  seq = m->add_sequence();
  for (std::size_t l = 0; l < layers; ++l) {
    REQUIRE(m->append(seq, l, data.keys.data(), data.values.data(), data.tokens, importance.data())
                .ok());
  }
  return std::move(*m);
}

// Relative MSE of attention on layer 0 of a two-tier Mixed cache (threshold 0.5, no window)
// against exact attention on the original K/V, and the cache's bits per value.
template <class Mixed>
std::pair<double, double> salient_error(const kv_test::kv_data& data, const std::vector<float>& q,
                                        const std::vector<float>& importance) {
  kv::sequence_id seq = 0;
  const Mixed m = filled<Mixed>(config(0, {0.5f}), data, importance, seq);
  std::vector<float> out(q.size());
  REQUIRE(kv::attention(m, seq, 0, q.data(), q_heads, out.data()).ok());
  return {kv_test::error_against_exact(data, q, out), m.bits_per_value(seq)};
}

}  // namespace

TEST_CASE("mixed cache: attention equals the reference on its decoding", "[kv][mixed]") {
  for (const std::size_t tokens : {1u, 37u, 300u}) {
    for (const std::size_t window : {0u, 16u}) {
      for (const bool pre_rope : {false, true}) {
        for (const kv::float_format exact : {kv::float_format::f32, kv::float_format::f16}) {
          INFO("tokens " << tokens << " window " << window << " pre-RoPE " << pre_rope << " exact "
                         << kv::float_bytes(exact) * 8);
          kv::mixed_config c = config(window);
          c.base.rope.pre_rope = pre_rope;
          c.base.exact_format = exact;
          const kv_test::kv_data data = kv_test::make_kv(tokens, kv_heads, head_dim, tokens);
          kv::sequence_id seq = 0;
          const three_tiers m = filled<three_tiers>(c, data, scores(tokens, 3), seq);
          kv_test::check_reference_parity(m, seq, 1, 1, 7);
          if (tokens >= 5) kv_test::check_reference_parity(m, seq, 0, 5, 8);  // causal chunk
        }
      }
    }
  }
}

TEST_CASE("mixed cache: a token's score picks its tier when it leaves the window", "[kv][mixed]") {
  const std::size_t tokens = 200, window = 16;
  const kv_test::kv_data data = kv_test::make_kv(tokens, kv_heads, head_dim, 5);
  const std::vector<float> importance = scores(tokens, 6);
  kv::sequence_id seq = 0;
  const three_tiers m = filled<three_tiers>(config(window), data, importance, seq);
  std::vector<float> k(kv_heads * tokens * head_dim), v(k.size());
  m.decode_layer(seq, 0, k.data(), v.data());
  std::size_t per_tier[4] = {};
  for (std::size_t t = 0; t < tokens; ++t) {
    const std::size_t want = t >= tokens - window    ? 3
                             : importance[t] >= 0.8f ? 0
                             : importance[t] >= 0.4f ? 1
                                                     : 2;
    INFO("token " << t << " score " << importance[t]);
    REQUIRE(m.tier_of(seq, 0, t).ok());
    CHECK(*m.tier_of(seq, 0, t) == want);
    ++per_tier[want];
    // Tier 0 (fp32) and the window are exact; tier 1 (8-bit) is close, tier 2 (2-bit) is not.
    double err = 0.0;
    for (std::size_t i = 0; i < head_dim; ++i) {
      err = std::max(
          err, double(std::fabs(k[t * head_dim + i] - data.keys[t * kv_heads * head_dim + i])));
    }
    if (want == 0 || want == 3) CHECK(err == 0.0);
    if (want == 1) CHECK(err < 0.2);
  }
  CHECK(per_tier[0] > 20);
  CHECK(per_tier[1] > 40);
  CHECK(per_tier[2] > 40);
  CHECK(m.tier_positions(seq, 1, 2).size() == per_tier[2]);
  CHECK(m.tier<2>(0).length(m.tier_sequence(seq, 2), 0) == per_tier[2]);
}

TEST_CASE("mixed cache: scores can change while a token is in the window", "[kv][mixed]") {
  const kv_test::kv_data data = kv_test::make_kv(40, kv_heads, head_dim, 7);
  auto m = three_tiers::create(config(8));
  REQUIRE(m.ok());
  const kv::sequence_id s = m->add_sequence();
  const std::size_t row = kv_heads * head_dim;
  for (std::size_t t = 0; t < 40; ++t) {
    REQUIRE(m->append(s, 0, &data.keys[t * row], &data.values[t * row], 1).ok());  // score 0
    // H2O-style: the engine raises the scores of the tokens the new one attended to.
    if (t % 5 == 0) REQUIRE(m->set_importance(s, 0, t, 1.0f).ok());
  }
  for (std::size_t t = 0; t < 32; ++t) CHECK(*m->tier_of(s, 0, t) == (t % 5 == 0 ? 0u : 2u));
  CHECK(m->set_importance(s, 0, 31, 1.0f).is(kv::errors::not_in_window));
  CHECK(m->set_importance(s, 0, 40, 1.0f).is(kv::errors::not_in_window));
  CHECK(m->set_importance(s, 0, 32, 0.5f).ok());
  CHECK(m->set_importance(s, 5, 32, 0.5f).is(kv::errors::bad_layer));
  REQUIRE(m->clear(s).ok());
  CHECK(m->length(s, 0) == 0);
  CHECK(m->sequence_bytes(s) == 0);
}

TEST_CASE("mixed cache: a forked sequence continues independently", "[kv][mixed]") {
  const kv_test::kv_data a = kv_test::make_kv(200, kv_heads, head_dim, 14);
  const kv_test::kv_data b = kv_test::make_kv(200, kv_heads, head_dim, 15);
  const std::vector<float> importance = scores(200, 16);
  auto m = three_tiers::create(config(12));
  REQUIRE(m.ok());
  const std::size_t row = kv_heads * head_dim;
  const auto append = [&](kv::sequence_id s, const kv_test::kv_data& d, std::size_t from,
                          std::size_t to) {
    REQUIRE(
        m->append(s, 0, &d.keys[from * row], &d.values[from * row], to - from, &importance[from])
            .ok());
  };
  const kv::sequence_id base = m->add_sequence();
  append(base, a, 0, 120);
  auto fork = m->fork(base);
  REQUIRE(fork.ok());
  append(base, a, 120, 200);
  append(*fork, b, 120, 200);
  // Each equals a sequence built from scratch with the same tokens.
  kv_test::kv_data mixed = a;
  std::copy(b.keys.begin() + 120 * row, b.keys.end(), mixed.keys.begin() + 120 * row);
  std::copy(b.values.begin() + 120 * row, b.values.end(), mixed.values.begin() + 120 * row);
  const kv::sequence_id fresh_a = m->add_sequence(), fresh_mixed = m->add_sequence();
  append(fresh_a, a, 0, 200);
  append(fresh_mixed, mixed, 0, 200);
  const auto decoded = [&](kv::sequence_id s) {
    std::vector<float> k(kv_heads * 200 * head_dim), v(k.size());
    m->decode_layer(s, 0, k.data(), v.data());
    k.insert(k.end(), v.begin(), v.end());
    return k;
  };
  CHECK(decoded(base) == decoded(fresh_a));
  CHECK(decoded(*fork) == decoded(fresh_mixed));
  CHECK(m->fork(99).error().is(kv::errors::bad_sequence));
}

TEST_CASE("mixed cache: memory accounting and errors", "[kv][mixed]") {
  const std::size_t tokens = 150, window = 10;
  const kv_test::kv_data data = kv_test::make_kv(tokens, kv_heads, head_dim, 8);
  kv::sequence_id seq = 0;
  kv::mixed_config c = config(window);
  c.base.exact_format = kv::float_format::f16;
  const three_tiers m = filled<three_tiers>(c, data, scores(tokens, 9), seq);
  std::size_t bytes = 0;
  for (std::size_t l = 0; l < layers; ++l) {
    m.visit_tiers(l, [&](const auto& tier, std::size_t i) {
      bytes += tier.sequence_bytes(m.tier_sequence(seq, i));
      bytes += 4 * m.tier_positions(seq, l, i).size();
    });
  }
  // The window: keys and values in fp16 and a float score per token, per layer.
  bytes += layers * window * (2 * kv_heads * head_dim * 2 + 4);
  CHECK(m.sequence_bytes(seq) == bytes);
  CHECK(m.bits_per_value(seq) ==
        Approx(8.0 * double(bytes) / double(2 * layers * tokens * kv_heads * head_dim)));

  namespace e = kv::errors;
  CHECK(three_tiers::create(config(0, {0.5f})).error().is(e::bad_config));        // 2 needed
  CHECK(three_tiers::create(config(0, {0.2f, 0.5f})).error().is(e::bad_config));  // increasing
  CHECK(three_tiers::create(config(0, {0.5f, std::nanf("")})).error().is(e::bad_config));
  kv::mixed_config sinks = config(0);
  sinks.base.sink_tokens = 4;
  CHECK(three_tiers::create(sinks).error().is(e::bad_config));
  kv::mixed_config odd = config(0);
  odd.base.page_tokens = 48;  // not a multiple of KIVI's 32-token groups
  CHECK(three_tiers::create(odd).error().is(e::bad_config));
  const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 10);
  std::vector<float> out(q.size());
  CHECK(kv::attention(m, seq + 1, 0, q.data(), q_heads, out.data()).is(e::bad_sequence));
  CHECK(kv::attention(m, seq, 2, q.data(), q_heads, out.data()).is(e::bad_layer));
  CHECK(kv::attention(m, seq, 0, q.data(), 5, out.data()).is(e::bad_query));
}

TEST_CASE("mixed cache: a full tier fails cleanly, and layers pay only their own tiers' pages",
          "[kv][mixed]") {
  // Tier 1's caches have one 64-token page each; 100 tokens all go there: the 65th fails.
  using two_tiers = kv::mixed_cache<q8_tier, q2_tier>;
  kv::mixed_config c = config(4, {0.5f});
  c.base.max_pages = 1;
  auto m = two_tiers::create(c);
  REQUIRE(m.ok());
  const kv::sequence_id s = m->add_sequence();
  const kv_test::kv_data data = kv_test::make_kv(100, kv_heads, head_dim, 17);
  const std::size_t row = kv_heads * head_dim;
  CHECK(m->append(s, 0, data.keys.data(), data.values.data(), 100).is(kv::errors::out_of_pages));
  CHECK(m->length(s, 0) == 68);  // 64 in the tier, 4 in the window
  CHECK(m->tier_positions(s, 0, 1).size() == 64);
  for (int retry = 0; retry < 3; ++retry) {
    CHECK(m->append(s, 0, &data.keys[68 * row], &data.values[68 * row], 1)
              .is(kv::errors::out_of_pages));
  }
  CHECK(m->length(s, 0) == 68);
  CHECK(m->window(s, 0).tokens == 4);
  kv_test::check_reference_parity(*m, s, 0, 3, 18);  // still consistent
  // Salient tokens of layer 1 may still go to tier 0, whose caches are separate.
  const std::vector<float> high(100, 1.0f);
  CHECK(m->append(s, 1, data.keys.data(), data.values.data(), 60, high.data()).ok());

  // Memory: layer 0 all in the 8-bit tier, layer 1 all in the 2-bit tier costs the mean of the
  // two uniform caches (each layer's tier caches have their own pages).
  const kv_test::kv_data big = kv_test::make_kv(1280, kv_heads, head_dim, 19);
  const auto bits = [&](float score0, float score1) {
    auto mm = two_tiers::create(config(0, {0.5f}));
    REQUIRE(mm.ok());
    const kv::sequence_id t = mm->add_sequence();
    const std::vector<float> s0(1280, score0), s1(1280, score1);
    REQUIRE(mm->append(t, 0, big.keys.data(), big.values.data(), 1280, s0.data()).ok());
    REQUIRE(mm->append(t, 1, big.keys.data(), big.values.data(), 1280, s1.data()).ok());
    return mm->bits_per_value(t);
  };
  CHECK(bits(1.0f, 0.0f) == Approx((bits(1.0f, 1.0f) + bits(0.0f, 0.0f)) / 2));
  CHECK(bits(1.0f, 0.0f) < bits(1.0f, 1.0f));
}

TEST_CASE("mixed cache: a KIVI-2 tier scoring 15-bit queries stays within their rounding",
          "[kv][mixed]") {
  // The default per_channel<2> keys round each unit's scaled query to 15 bits: against the tier
  // scoring the float query, every score moves by about 3e-5 of its unit's largest term.
  using kivi2_q16_tier = kv::cache<kv::per_channel<2, 32>, kv::per_token<2>>;
  using q16_tiers = kv::mixed_cache<exact_tier, q8_tier, kivi2_q16_tier>;
  const kv_test::kv_data data = kv_test::make_kv(300, kv_heads, head_dim, 24);
  const std::vector<float> importance = scores(300, 25);
  kv::sequence_id a = 0, b = 0;
  const three_tiers f32 = filled<three_tiers>(config(16), data, importance, a);
  const q16_tiers q16 = filled<q16_tiers>(config(16), data, importance, b);
  const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 26);
  std::vector<float> want(q.size()), got(q.size());
  REQUIRE(kv::attention(f32, a, 0, q.data(), q_heads, want.data()).ok());
  REQUIRE(kv::attention(q16, b, 0, q.data(), q_heads, got.data()).ok());
  double max_err = 0.0, max_ref = 0.0, sum_err = 0.0;
  for (std::size_t i = 0; i < q.size(); ++i) {
    max_err = std::max(max_err, double(std::fabs(got[i] - want[i])));
    max_ref = std::max(max_ref, double(std::fabs(want[i])));
    sum_err += std::fabs(got[i] - want[i]);
  }
  CHECK(max_err <= 1e-3 * max_ref);
  CHECK(sum_err > 0.0);  // the tier does score differently: it is not the float path
}

TEST_CASE("mixed cache: a head range and a chunk longer than the window", "[kv][mixed]") {
  const kv_test::kv_data data = kv_test::make_kv(150, kv_heads, head_dim, 20);
  for (const bool pre_rope : {false, true}) {
    kv::mixed_config c = config(6);
    c.base.rope.pre_rope = pre_rope;
    kv::sequence_id seq = 0;
    const three_tiers m = filled<three_tiers>(c, data, scores(150, 21), seq);
    kv_test::check_reference_parity(m, seq, 1, 20, 22);  // 20 causal queries, window 6
    const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 23);
    std::vector<float> whole(q.size()), part(q.size(), 7.0f);
    REQUIRE(kv::attention(m, seq, 0, q.data(), q_heads, whole.data()).ok());
    REQUIRE(kv::attention(m, seq, 0, q.data(), q_heads, part.data(), 1, 1, 2).ok());
    for (std::size_t i = 0; i < q.size(); ++i) {
      CHECK(part[i] == (i < kv_test::group * head_dim ? 7.0f : whole[i]));  // head 0 untouched
    }
  }
}

TEST_CASE("mixed cache: salient tokens at high precision cost few bits and most of the error",
          "[kv][mixed]") {
  // Every 20th token is salient: its key points along the group's queries, so it draws most of
  // the attention (the engine's importance score is 1 for these, 0 for the rest). Storing the
  // salient 5% at 8 bits and the rest at 2 bits must come close to all-8-bit accuracy at close
  // to all-2-bit size. 1280 tokens: whole 64-token pages in both tiers (each tier pays for its
  // last, partial page).
  const std::size_t tokens = 1280;
  kv_test::kv_data data = kv_test::make_kv(tokens, kv_heads, head_dim, 12);
  const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 13);
  std::vector<float> importance(tokens, 0.0f);
  for (std::size_t t = 0; t < tokens; t += 20) {
    importance[t] = 1.0f;
    for (std::size_t h = 0; h < kv_heads; ++h) {
      for (std::size_t i = 0; i < head_dim; ++i) {
        float sum = 0.0f;  // the group's queries, summed
        for (std::size_t g = 0; g < kv_test::group; ++g)
          sum += q[(h * kv_test::group + g) * head_dim + i];
        data.keys[(t * kv_heads + h) * head_dim + i] = 6.0f * sum;
      }
    }
  }
  const auto [all8, bits8] = salient_error<kv::mixed_cache<q8_tier, q8_tier>>(data, q, importance);
  const auto [all2, bits2] = salient_error<kv::mixed_cache<q2_tier, q2_tier>>(data, q, importance);
  const auto [mixed, bits] = salient_error<kv::mixed_cache<q8_tier, q2_tier>>(data, q, importance);
  WARN("attention error: all 8-bit " << all8 << " (" << bits8 << " bits), all 2-bit " << all2
                                     << " (" << bits2 << "), mixed " << mixed << " (" << bits
                                     << ")");
  CHECK(mixed < 0.25 * all2);
  CHECK(bits < bits2 + 0.1 * (bits8 - bits2));
}

TEST_CASE("reference attention shares: uniform attention scores 1, a sink (window + 1) / 2",
          "[kv][mixed]") {
  // 10 tokens, 2 query heads on 1 KV head, head_dim 4, a window of 4.
  constexpr std::size_t tokens = 10, window = 4, d = 4;
  std::vector<float> q(2 * tokens * d, 1.0f), k(tokens * d, 0.0f), shares(tokens);
  kv::reference_attention_shares(q.data(), k.data(), tokens, 2, 1, d, window, shares.data());
  for (float s : shares) CHECK(s == Approx(1.0).epsilon(1e-6));  // p = 1 / (t + 1)
  // Token 0's key draws all the attention: each query t gives it t + 1, and it is in the window
  // of queries 0..3: (1 + 2 + 3 + 4) / 4. The others draw none.
  for (std::size_t i = 0; i < d; ++i) k[i] = 100.0f;
  kv::reference_attention_shares(q.data(), k.data(), tokens, 2, 1, d, window, shares.data());
  CHECK(shares[0] == Approx(2.5).epsilon(1e-6));
  for (std::size_t j = 1; j < tokens; ++j) CHECK(shares[j] < 1e-30f);
  kv::reference_attention_shares(q.data(), k.data(), tokens, 2, 1, d, 0, shares.data());
  for (float s : shares) CHECK(s == 0.0f);
}
