#pragma once
// The reference-parity check shared by the KV attention tests: a small GQA cache (2 layers, 2 KV
// heads of 64 dims, 3 query heads per KV head) filled with kv_test data, and fused attention
// compared with the reference attention on the cache's own decoding, for one query and for a
// causal chunk of five; and the error of fused attention against exact attention.
#include <qcodec/kv.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "../support/catch.hpp"
#include "kv_test_data.hpp"

namespace kv_test {

namespace kv = qcodec::kv;

inline constexpr std::size_t layers = 2, kv_heads = 2, head_dim = 64, group = 3;
inline constexpr std::size_t q_heads = kv_heads * group;

inline kv::cache_config small_config(std::size_t sinks, std::size_t residual,
                                     kv::float_format exact = kv::float_format::f32) {
  kv::cache_config c;
  c.exact_format = exact;
  c.layers = layers;
  c.kv_heads = kv_heads;
  c.head_dim = head_dim;
  c.page_tokens = 64;
  c.max_pages = 64;
  c.sink_tokens = sinks;
  c.residual_tokens = residual;
  return c;
}

template <class Cache, class... Codecs>
Cache filled_cache(const kv::cache_config& config, const kv_test::kv_data& data,
                   kv::sequence_id& seq, Codecs&&... codecs) {
  auto c = Cache::create(config, std::forward<Codecs>(codecs)...);
  REQUIRE(c.ok());
  seq = c->add_sequence();
  for (std::size_t l = 0; l < layers; ++l) {
    REQUIRE(c->append(seq, l, data.keys.data(), data.values.data(), data.tokens).ok());
  }
  return std::move(*c);
}

template <class Cache, class... Codecs>
Cache filled_cache(const kv_test::kv_data& data, std::size_t sinks, std::size_t residual,
                   kv::sequence_id& seq, Codecs&&... codecs) {
  return filled_cache<Cache>(small_config(sinks, residual), data, seq,
                             std::forward<Codecs>(codecs)...);
}

// One head's vectors [n][dim] from kv_test data ([token][head][dim]).
inline std::vector<float> head_rows(const kv_test::kv_data& data, std::size_t head, bool keys) {
  std::vector<float> rows(data.tokens * data.dim);
  const std::vector<float>& src = keys ? data.keys : data.values;
  for (std::size_t t = 0; t < data.tokens; ++t) {
    std::memcpy(&rows[t * data.dim], &src[(t * data.heads + head) * data.dim],
                data.dim * sizeof(float));
  }
  return rows;
}

// kv_samples for the small cache shape, from seeded data (keys also "pre-RoPE").
inline kv::kv_samples calibration_samples(const kv_test::kv_data& data) {
  kv::kv_samples s;
  s.layers = layers;
  s.kv_heads = kv_heads;
  s.tokens = data.tokens;
  s.head_dim = head_dim;
  for (std::size_t l = 0; l < s.layers; ++l) {
    for (std::size_t h = 0; h < s.kv_heads; ++h) {
      const std::vector<float> k = head_rows(data, h, true), v = head_rows(data, h, false);
      s.keys.insert(s.keys.end(), k.begin(), k.end());
      s.values.insert(s.values.end(), v.begin(), v.end());
    }
  }
  s.pre_rope_keys = s.keys;
  return s;
}

inline const kv::cache_config& base_config(const kv::cache_config& c) { return c; }
inline const kv::cache_config& base_config(const kv::mixed_config& c) { return c.base; }

// Fused attention of queries q ([n_queries][q_heads][head_dim]) against the reference on the
// decoded cache, for every query head.
template <class Cache>
void check_reference_parity(const Cache& c, kv::sequence_id seq, std::size_t layer,
                            const std::vector<float>& q) {
  const std::size_t length = c.length(seq, layer), n_queries = q.size() / (q_heads * head_dim);
  std::vector<float> out(q.size()), lse(n_queries * q_heads);
  kv::attention_options options;
  options.log_sum_exp = lse.data();
  REQUIRE(
      kv::attention(c, seq, layer, q.data(), q_heads, out.data(), n_queries, 0, kv_heads, options)
          .ok());

  std::vector<float> keys(kv_heads * length * head_dim), values(keys.size());
  c.decode_layer(seq, layer, keys.data(), values.data());
  const kv::rope_config& rope = base_config(c.config()).rope;
  if (rope.pre_rope) {  // the cache stores keys before RoPE: rotate as attention does
    for (std::size_t i = 0; i < kv_heads * length; ++i) {
      kv::apply_rope(&keys[i * head_dim], 1, head_dim, i % length, rope);
    }
  }
  const float scale = 1.0f / std::sqrt(float(head_dim));
  for (std::size_t qi = 0; qi < n_queries; ++qi) {
    for (std::size_t qh = 0; qh < q_heads; ++qh) {
      const std::size_t h = qh / group, visible = length - n_queries + qi + 1;
      // A kv::cache scores its compressed tokens with the key codec's scored query (the int8
      // form for codecs that round queries) against their scored decoding (per_channel's 15-bit
      // scaled queries); exact tokens and keys stored before RoPE see q and the decoding.
      // (The mixed caches tested here have no such tiers: every token sees q.)
      const float* qh_ptr = &q[(qi * q_heads + qh) * head_dim];
      std::vector<float> want(head_dim), q_coded(qh_ptr, qh_ptr + head_dim);
      std::vector<float> scored_keys(&keys[h * length * head_dim],
                                     &keys[(h + 1) * length * head_dim]);
      std::size_t coded_begin = 0, coded_end = 0;
      if constexpr (requires { c.key_stream(seq, layer); }) {
        const auto& codec = c.keys(layer, h);
        kv::scored_query(codec, qh_ptr, q_coded.data());
        const auto stream = c.key_stream(seq, layer);
        coded_begin = stream.sinks;
        coded_end = rope.pre_rope ? coded_begin : coded_begin + stream.compressed;
        const std::size_t group_tokens = std::decay_t<decltype(codec)>::group_tokens;
        for (std::size_t j = 0; j < coded_end - coded_begin; j += group_tokens) {
          kv::scored_decode(codec, c.key_unit(seq, layer, h, j), q_coded.data(),
                            &scored_keys[(coded_begin + j) * head_dim]);
        }
      }
      const double want_lse = kv::reference_attention(
          scored_keys.data(), &values[h * length * head_dim], visible, head_dim, qh_ptr,
          q_coded.data(), coded_begin, coded_end, scale, want.data());
      const float* got = &out[(qi * q_heads + qh) * head_dim];
      double max_err = 0.0, max_ref = 0.0;
      for (std::size_t i = 0; i < head_dim; ++i) {
        max_err = std::max(max_err, double(std::fabs(got[i] - want[i])));
        max_ref = std::max(max_ref, double(std::fabs(want[i])));
      }
      INFO("query " << qi << " head " << qh);
      // Float accumulation in blocks against double: a few ulps of the output's scale.
      CHECK(max_err <= 2e-5 * std::max(1.0, max_ref));
      CHECK(std::fabs(lse[qi * q_heads + qh] - want_lse) <=
            1e-4 * std::max(1.0, std::fabs(want_lse)));
    }
  }
}

// The same for n_queries random queries.
template <class Cache>
void check_reference_parity(const Cache& c, kv::sequence_id seq, std::size_t layer,
                            std::size_t n_queries, std::uint64_t seed) {
  check_reference_parity(c, seq, layer,
                         kv_test::make_queries(n_queries * q_heads * head_dim, seed));
}

// Relative MSE of attention outputs out[q_heads][head_dim] (one query per head, over every
// token of `data`) against exact attention on the original float K/V.
inline double error_against_exact(const kv_test::kv_data& data, const std::vector<float>& q,
                                  const std::vector<float>& out) {
  const std::size_t n = data.tokens;
  double err = 0.0, ref = 0.0;
  for (std::size_t qh = 0; qh < q_heads; ++qh) {
    const std::size_t h = qh / group;
    std::vector<float> k(n * head_dim), v(n * head_dim), want(head_dim);
    for (std::size_t t = 0; t < n; ++t) {
      std::memcpy(&k[t * head_dim], &data.keys[(t * kv_heads + h) * head_dim], head_dim * 4);
      std::memcpy(&v[t * head_dim], &data.values[(t * kv_heads + h) * head_dim], head_dim * 4);
    }
    kv::reference_attention(k.data(), v.data(), n, head_dim, &q[qh * head_dim],
                            1.0f / std::sqrt(float(head_dim)), want.data());
    for (std::size_t i = 0; i < head_dim; ++i) {
      err += std::pow(out[qh * head_dim + i] - want[i], 2);
      ref += std::pow(want[i], 2);
    }
  }
  return err / ref;
}

// The same for fused attention on layer 0 of a Cache filled with `data` (no sinks or residual).
template <class Cache>
double attention_error(const kv_test::kv_data& data, const std::vector<float>& q) {
  kv::sequence_id seq = 0;
  const Cache c = filled_cache<Cache>(data, 0, 0, seq);
  std::vector<float> out(q.size());
  REQUIRE(kv::attention(c, seq, 0, q.data(), q_heads, out.data()).ok());
  return error_against_exact(data, q, out);
}

template <class Cache>
void check_all(std::size_t tokens, std::size_t sinks, std::size_t residual,
               kv::float_format exact = kv::float_format::f32) {
  INFO("tokens " << tokens << " sinks " << sinks << " residual " << residual << " exact "
                 << kv::float_bytes(exact) * 8);
  const kv_test::kv_data data = kv_test::make_kv(tokens, kv_heads, head_dim, tokens + sinks);
  kv::sequence_id seq = 0;
  const Cache c = filled_cache<Cache>(small_config(sinks, residual, exact), data, seq);
  check_reference_parity(c, seq, 1, 1, 7);
  if (tokens >= 5) check_reference_parity(c, seq, 0, 5, 8);  // chunked prefill, causal
  // More queries than attention takes at once (16); the last query sees the whole cache.
  if (tokens >= 21) check_reference_parity(c, seq, 0, 21, 9);
}

}  // namespace kv_test
