#pragma once
// Reference attention: naive softmax attention in double precision on decoded (or original)
// float keys and values. The oracle for the fused attention of kv/attention.hpp and the
// baseline of the evaluation tools.

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

}  // namespace qcodec::kv
