#pragma once
// Fused decode attention on a compressed KV cache (kv/cache.hpp).
//
//   out = softmax(scale * q K^T) V   for each query head, over the tokens of one layer
//
// computed without decoding the cache: key scores come from the key codec's scores() on each
// compressed unit (decode_dot on packed codes), values from the value codec's accumulate()
// (decode_axpy), fp32 sink and residual tokens directly. Tokens are visited in blocks of one
// page with an online softmax (running maximum and sum, accumulators rescaled when the maximum
// grows), so memory traffic is one pass over the compressed cache.
//
// GQA / MQA: q holds q_heads = group * kv_heads heads; query head i attends with KV head
// i / group. attention() handles KV heads [head_begin, head_end) and their query heads only, so
// an engine can split the heads of one step over its own threads (the cache must not be appended
// to meanwhile).
//
// Several queries at once (chunked prefill): q is [n_queries][q_heads][head_dim]; query i sits
// at position length - n_queries + i and attends causally to tokens [0, that position].

#include <qcodec/core/status.hpp>
#include <qcodec/kv/cache.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace qcodec::kv {

struct attention_options {
  /// Softmax scale; 0 means 1 / sqrt(head_dim).
  float scale = 0.0f;
  /// If set, receives the log-sum-exp of the scaled scores per query and head:
  /// [n_queries][q_heads] (entries of heads outside the range are left untouched).
  float* log_sum_exp = nullptr;
};

namespace detail {

inline void axpy(float a, const float* x, float* y, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) y[i] = std::fma(a, x[i], y[i]);
}

}  // namespace detail

/// Attention of n_queries queries of `q_heads` heads over `layer` of sequence s, for the KV
/// heads [head_begin, head_end); writes out[query][q_head][head_dim] for their query heads.
template <class Cache>
[[nodiscard]] status attention(const Cache& c, sequence_id s, std::size_t layer, const float* q,
                               std::size_t q_heads, float* out, std::size_t n_queries = 1,
                               std::size_t head_begin = 0,
                               std::size_t head_end = static_cast<std::size_t>(-1),
                               const attention_options& options = {}) {
  const cache_config& cfg = c.config();
  if (layer >= cfg.layers) return status::failure(errors::bad_layer, std::to_string(layer));
  head_end = std::min(head_end, cfg.kv_heads);
  if (head_begin > head_end) return status::failure(errors::bad_head, "empty or reversed range");
  if (q_heads == 0 || q_heads % cfg.kv_heads != 0) {
    return status::failure(errors::bad_query, "q_heads must be a positive multiple of kv_heads");
  }
  const std::size_t length = c.length(s, layer);
  if (n_queries == 0 || n_queries > length) {
    return status::failure(errors::bad_query, std::to_string(n_queries) + " queries over " +
                                                  std::to_string(length) + " tokens");
  }

  using key_codec = typename Cache::key_codec;
  using value_codec = typename Cache::value_codec;
  constexpr std::size_t key_group = key_codec::group_tokens;
  constexpr std::size_t value_group = value_codec::group_tokens;
  const std::size_t d = cfg.head_dim, group = q_heads / cfg.kv_heads;
  const std::size_t block = cfg.page_tokens;
  const float scale =
      options.scale != 0.0f ? options.scale : 1.0f / std::sqrt(static_cast<float>(d));
  const auto keys = c.key_stream(s, layer);
  const auto values = c.value_stream(s, layer);
  const simd::reduction_kernels& reduce = simd::kernels().reductions;

  // Per query head of the group: prepared query, softmax state, two accumulators (values from
  // compressed units live in the value codec's space until finish_output; fp32 values do not).
  std::vector<float> prepared(group * d), acc_codec(group * d), acc_float(group * d);
  std::vector<float> scores(group * (block + key_group)), weights(block + value_group);
  std::vector<float> running_max(group), running_sum(group);

  for (std::size_t qi = 0; qi < n_queries; ++qi) {
    const std::size_t visible = length - n_queries + qi + 1;  // causal: tokens [0, visible)
    for (std::size_t h = head_begin; h < head_end; ++h) {
      const float* qh = q + (qi * q_heads + h * group) * d;
      for (std::size_t g = 0; g < group; ++g) c.keys().prepare_query(qh + g * d, &prepared[g * d]);
      std::fill(acc_codec.begin(), acc_codec.end(), 0.0f);
      std::fill(acc_float.begin(), acc_float.end(), 0.0f);
      std::fill(running_max.begin(), running_max.end(), -std::numeric_limits<float>::infinity());
      std::fill(running_sum.begin(), running_sum.end(), 0.0f);

      // Blocks: the sinks, then page-aligned runs of the remaining tokens.
      for (std::size_t begin = 0; begin < visible;) {
        const std::size_t end =
            begin < keys.sinks
                ? keys.sinks
                : std::min(visible, keys.sinks + ((begin - keys.sinks) / block + 1) * block);
        const std::size_t stop = std::min(end, visible);
        const std::size_t n = stop - begin;

        // 1. Scores of tokens [begin, stop) for every query head of the group.
        for (std::size_t t = begin; t < stop;) {
          if (t < keys.sinks || t >= keys.sinks + keys.compressed) {
            const float* k =
                t < keys.sinks
                    ? keys.sink_data + (t * cfg.kv_heads + h) * d
                    : keys.tail_data + ((t - keys.sinks - keys.compressed) * cfg.kv_heads + h) * d;
            for (std::size_t g = 0; g < group; ++g) {
              scores[g * (block + key_group) + (t - begin)] = reduce.dot(qh + g * d, k, d);
            }
            ++t;
          } else {
            // A whole unit; tokens past `stop` (causal cut) are scored and ignored.
            const std::size_t j = t - keys.sinks;
            const std::uint8_t* unit = c.key_unit(s, layer, h, j);
            for (std::size_t g = 0; g < group; ++g) {
              c.keys().scores(unit, &prepared[g * d],
                              &scores[g * (block + key_group) + (t - begin)]);
            }
            t += key_group;
          }
        }

        // 2. Online softmax, then 3. the values of the block, once per query head.
        for (std::size_t g = 0; g < group; ++g) {
          float* sg = &scores[g * (block + key_group)];
          float block_max = -std::numeric_limits<float>::infinity();
          for (std::size_t i = 0; i < n; ++i) {
            sg[i] *= scale;
            block_max = std::max(block_max, sg[i]);
          }
          const float new_max = std::max(running_max[g], block_max);
          const float rescale = std::exp(running_max[g] - new_max);  // 0 on the first block
          running_max[g] = new_max;
          float sum = 0.0f;
          for (std::size_t i = 0; i < n; ++i) {
            weights[i] = std::exp(sg[i] - new_max);
            sum += weights[i];
          }
          std::fill(weights.begin() + static_cast<std::ptrdiff_t>(n), weights.end(), 0.0f);
          running_sum[g] = running_sum[g] * rescale + sum;
          float* ac = &acc_codec[g * d];
          float* af = &acc_float[g * d];
          if (rescale != 1.0f) {
            for (std::size_t i = 0; i < d; ++i) {
              ac[i] *= rescale;
              af[i] *= rescale;
            }
          }
          for (std::size_t t = begin; t < stop;) {
            if (t < values.sinks || t >= values.sinks + values.compressed) {
              const float* v =
                  t < values.sinks
                      ? values.sink_data + (t * cfg.kv_heads + h) * d
                      : values.tail_data +
                            ((t - values.sinks - values.compressed) * cfg.kv_heads + h) * d;
              detail::axpy(weights[t - begin], v, af, d);
              ++t;
            } else {
              const std::size_t j = t - values.sinks;
              c.values().accumulate(c.value_unit(s, layer, h, j), &weights[t - begin], ac);
              t += value_group;
            }
          }
        }
        begin = end;
      }

      // 4. Normalise: out = (finish(acc_codec) + acc_float) / sum.
      for (std::size_t g = 0; g < group; ++g) {
        float* ac = &acc_codec[g * d];
        c.values().finish_output(ac);
        float* o = out + (qi * q_heads + h * group + g) * d;
        const float inv = 1.0f / running_sum[g];
        for (std::size_t i = 0; i < d; ++i) o[i] = (ac[i] + acc_float[g * d + i]) * inv;
        if (options.log_sum_exp != nullptr) {
          options.log_sum_exp[qi * q_heads + h * group + g] =
              running_max[g] + std::log(running_sum[g]);
        }
      }
    }
  }
  return {};
}

}  // namespace qcodec::kv
