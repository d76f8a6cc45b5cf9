#pragma once
// Reference attention: naive softmax attention in double precision on decoded (or original)
// float keys and values. The oracle for the fused attention of kv/attention.hpp and the
// baseline of the evaluation tools; and the attention shares tiered caches are scored by.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace qcodec::kv {

/// out[head_dim] = softmax(scale * keys q) values over tokens [0, visible), with keys and values
/// [tokens][head_dim] (row-major, any number of tokens >= visible), except that tokens
/// [coded_begin, coded_end) are scored with q_coded: the query a key codec scores its compressed
/// tokens with (kv::scored_query, stream_codec.hpp; their keys then come from kv::scored_decode),
/// while exact tokens (sinks, residual window) see q. Returns the log-sum-exp of the scaled
/// scores.
inline double reference_attention(const float* keys, const float* values, std::size_t visible,
                                  std::size_t head_dim, const float* q, const float* q_coded,
                                  std::size_t coded_begin, std::size_t coded_end, float scale,
                                  float* out) {
  std::vector<double> score(visible);
  double max_score = -INFINITY;
  for (std::size_t t = 0; t < visible; ++t) {
    const float* qt = t >= coded_begin && t < coded_end ? q_coded : q;
    double dot = 0.0;
    for (std::size_t i = 0; i < head_dim; ++i) dot += double(qt[i]) * keys[t * head_dim + i];
    score[t] = dot * scale;
    max_score = std::max(max_score, score[t]);
  }
  double sum = 0.0;
  for (double& s : score) sum += (s = std::exp(s - max_score));
  for (std::size_t i = 0; i < head_dim; ++i) {
    double acc = 0.0;
    for (std::size_t t = 0; t < visible; ++t) acc += score[t] * values[t * head_dim + i];
    out[i] = static_cast<float>(acc / sum);
  }
  return max_score + std::log(sum);
}

/// The same with every token scored with q.
inline double reference_attention(const float* keys, const float* values, std::size_t visible,
                                  std::size_t head_dim, const float* q, float scale, float* out) {
  return reference_attention(keys, values, visible, head_dim, q, q, 0, 0, scale, out);
}

/// The attention shares a tiered cache's tokens are scored by (kv::importance_threshold, as
/// examples/llama's engine computes them), exactly: for one layer with queries q
/// [q_heads][tokens][head_dim] (query t at position t, after RoPE) and keys k
/// [kv_heads][tokens][head_dim] (GQA: query head h reads KV head h / (q_heads / kv_heads)),
/// shares[j] is the mean over the queries t in [j, j + window) (those that see token j in a
/// window of the `window` most recent tokens) and the query heads of p_t,h(j) * (t + 1), with p
/// the causal softmax attention of scale 1 / sqrt(head_dim). 0 for window 0.
inline void reference_attention_shares(const float* q, const float* k, std::size_t tokens,
                                       std::size_t q_heads, std::size_t kv_heads,
                                       std::size_t head_dim, std::size_t window, float* shares) {
  std::vector<double> sums(tokens, 0.0), p(tokens);
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  const std::size_t group = q_heads / kv_heads;
  for (std::size_t h = 0; h < q_heads; ++h) {
    const float* kh = k + h / group * tokens * head_dim;
    for (std::size_t t = 0; t < tokens; ++t) {
      const float* qt = q + (h * tokens + t) * head_dim;
      double max = -INFINITY, sum = 0.0;
      for (std::size_t j = 0; j <= t; ++j) {
        double dot = 0.0;
        for (std::size_t i = 0; i < head_dim; ++i) dot += double(qt[i]) * kh[j * head_dim + i];
        p[j] = dot * scale;
        max = std::max(max, p[j]);
      }
      for (std::size_t j = 0; j <= t; ++j) sum += (p[j] = std::exp(p[j] - max));
      for (std::size_t j = t + 1 > window ? t + 1 - window : 0; j <= t; ++j)
        sums[j] += p[j] / sum * static_cast<double>(t + 1) / static_cast<double>(q_heads);
    }
  }
  for (std::size_t j = 0; j < tokens; ++j) {
    const std::size_t queries = std::min(j + window, tokens) - j;
    shares[j] = queries == 0 ? 0.0f : static_cast<float>(sums[j] / static_cast<double>(queries));
  }
}

}  // namespace qcodec::kv
