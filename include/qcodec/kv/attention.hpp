#pragma once
// Fused decode attention on a compressed KV cache (kv/cache.hpp).
//
//   out = softmax(scale * q K^T) V   for each query head, over the tokens of one layer
//
// computed without decoding the cache: key scores come from the key codec's scores() on the
// compressed units of a page (row kernels on the packed codes, simd/rows.hpp), values from the
// value codec's accumulate(), exact (fp32 or fp16) sink and residual tokens directly. Each row
// is read once for all the query heads that share its KV head. Tokens are visited in blocks of
// one page with an online softmax (running shift and sum, accumulators rescaled when the shift
// grows), so memory traffic is one pass over the compressed cache (per 16 queries, below), in
// the order of memory: each block for every KV head of the range in turn (a page holds the
// heads one after another), then the next block. Read head by head, every block of a head
// instead, a pass jumped a whole page between reads: at 64k tokens 4-bit attention took
// 1.05-1.14x the time (docs/measurements.md).
//
// GQA / MQA: q holds q_heads = group * kv_heads heads; query head i attends with KV head
// i / group. attention() handles KV heads [head_begin, head_end) and their query heads only, so
// an engine can split the heads of one step over its own threads (the cache must not be appended
// to meanwhile).
//
// Several queries at once (chunked prefill): q is [n_queries][q_heads][head_dim]; query i sits
// at position length - n_queries + i and attends causally to tokens [0, that position]. Blocks
// are read once for up to 16 queries (pre-RoPE keys decoded and rotated once for them too); the
// tokens a query does not see get weight 0 there, so values must be finite (0 * inf is NaN).
//
// Accuracy: the result is reference_attention (kv/reference.hpp, double precision) on the
// cache's own decoding (decode_layer), with compressed tokens scored as the key codec scores
// them: q' = kv::scored_query(key codec, q) (q itself, or its int8 form for codecs that round
// queries) against kv::scored_decode(key codec, unit, q') (the decoding, or for per_channel's
// integer scaled queries the keys that rounding amounts to), and exact tokens as q against the
// decoding; within 2e-5 * max(1, max |out|) per output and 1e-4 * max(1, |lse|) on the
// log-sum-exp: float accumulation in page blocks against double. tests/kv/kv_parity.hpp checks
// exactly this for every scheme.

#include <qcodec/core/status.hpp>
#include <qcodec/kv/cache.hpp>
#include <qcodec/kv/rope.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace qcodec::kv {

namespace detail {

// The checks every attention entry point makes (kv::attention, mixed_cache's attention): the
// sequence exists, the layer is in range, the head range is not reversed (head_end is clamped
// to the KV heads), and q_heads is a positive multiple of the KV heads.
inline status check_attention_arguments(const cache_config& cfg, bool contains, sequence_id s,
                                        std::size_t layer, std::size_t q_heads,
                                        std::size_t head_begin, std::size_t& head_end) {
  if (!contains) return status::failure(errors::bad_sequence, std::to_string(s));
  if (layer >= cfg.layers) return status::failure(errors::bad_layer, std::to_string(layer));
  head_end = std::min(head_end, cfg.kv_heads);
  if (head_begin > head_end) return status::failure(errors::bad_head, "empty or reversed range");
  if (q_heads == 0 || q_heads % cfg.kv_heads != 0) {
    return status::failure(errors::bad_query, "q_heads must be a positive multiple of kv_heads");
  }
  return {};
}

}  // namespace detail

struct attention_options {
  /// Softmax scale; 0 means 1 / sqrt(head_dim).
  float scale = 0.0f;
  /// If set, receives the log-sum-exp of the scaled scores per query and head:
  /// [n_queries][q_heads] (entries of heads outside the range are left untouched).
  float* log_sum_exp = nullptr;
  /// For a cache holding only some tokens of a sequence (a tier of kv::mixed_cache): the
  /// sequence position of each of its tokens in the layer (ascending) and of each query. Causality
  /// and the RoPE of pre-RoPE keys then follow these positions, and a query that sees no token
  /// gets a zero output and a log-sum-exp of -infinity. Both or neither.
  const std::uint32_t* token_positions = nullptr;
  const std::uint32_t* query_positions = nullptr;
};

/// Attention of n_queries queries of `q_heads` heads over `layer` of sequence s, for the KV
/// heads [head_begin, head_end); writes out[query][q_head][head_dim] for their query heads.
template <class Cache>
[[nodiscard]] status attention(const Cache& c, sequence_id s, std::size_t layer, const float* q,
                               std::size_t q_heads, float* out, std::size_t n_queries = 1,
                               std::size_t head_begin = 0,
                               std::size_t head_end = static_cast<std::size_t>(-1),
                               const attention_options& options = {}) {
  const cache_config& cfg = c.config();
  if (status st = detail::check_attention_arguments(cfg, c.contains(s), s, layer, q_heads,
                                                    head_begin, head_end);
      !st) {
    return st;
  }
  const std::size_t length = c.length(s, layer);
  const bool positioned = options.token_positions != nullptr;
  if (positioned != (options.query_positions != nullptr)) {
    return status::failure(errors::bad_query, "token and query positions go together");
  }
  if (n_queries == 0 || (!positioned && n_queries > length)) {
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

  // Queries are taken query_chunk at a time, and each block of the cache is read once for all of
  // them (and all the query heads of its KV head): chunked prefill makes ceil(n_queries / 16)
  // passes over each KV head's tokens, not n_queries.
  constexpr std::size_t query_chunk = 16;
  // Per row of a chunk (r = (qi - q0) * group + g for query qi and head g of the group): the
  // query as given and as the key codec prepares it, softmax state, two accumulators (values
  // from compressed units live in the value codec's space until finish_output; exact values do
  // not). Scores and weights of one block: [row][ld], ld leaving room for a whole trailing unit.
  const std::size_t ld = block + std::max(key_group, value_group);
  const std::size_t max_rows = std::min(n_queries, query_chunk) * group;
  // Prepared queries (alike for every stream) are not used for keys stored before RoPE.
  const std::size_t prepared_floats = query_floats(c.keys(layer));
  // All but the scores and weights, for each KV head of the range (state_of below).
  const std::size_t heads = head_end - head_begin;
  std::vector<float> raw_all(heads * max_rows * d),
      prepared_all(cfg.rope.pre_rope ? 0 : heads * max_rows * prepared_floats);
  std::vector<float> acc_codec_all(heads * max_rows * d), acc_float_all(heads * max_rows * d);
  std::vector<float> shift_all(heads * max_rows), sum_all(heads * max_rows);
  std::vector<float> scores(max_rows * ld), weights(max_rows * ld);
  std::vector<float> key_rows(cfg.rope.pre_rope ? ld * d : 0);  // a block of pre-RoPE keys
  const simd::row_kernels& rows = simd::kernels().rows;
  const simd::softmax_kernels& softmax = simd::kernels().softmax;
  // Exact tokens: rows [token][head][dim] of fp32 or fp16.
  const bool exact_f16 = cfg.exact_format == float_format::f16;
  const auto exact_dots = exact_f16 ? rows.f16_row_dots : rows.f32_row_dots;
  const auto exact_axpys = exact_f16 ? rows.f16_row_axpys : rows.f32_row_axpys;
  const std::size_t exact_bytes = float_bytes(cfg.exact_format);
  const std::size_t exact_stride = cfg.kv_heads * d * exact_bytes;

  // Blocks: the sinks, then page-aligned runs of the remaining tokens (so that the compressed
  // units of a block are consecutive units of one page).
  const auto block_end = [&](std::size_t from) {
    return from < keys.sinks ? std::min(keys.sinks, from + block)  // at most a block
                             : keys.sinks + ((from - keys.sinks) / block + 1) * block;
  };
  // Causal: query qi sees tokens [0, visible[qi]).
  std::vector<std::size_t> visible(n_queries);
  for (std::size_t qi = 0; qi < n_queries; ++qi) {
    visible[qi] = positioned
                      ? static_cast<std::size_t>(std::upper_bound(options.token_positions,
                                                                  options.token_positions + length,
                                                                  options.query_positions[qi]) -
                                                 options.token_positions)
                      : length - n_queries + qi + 1;
  }
  // The state above for each KV head of the range: blocks are visited in the order of memory (a
  // block's pages hold the KV heads one after another), every head's block before the next block.
  struct head_state {
    float *raw, *prepared, *acc_codec, *acc_float, *running_shift, *running_sum;
  };
  const auto state_of = [&](std::size_t h) {
    const std::size_t k = h - head_begin;
    float* prepared = cfg.rope.pre_rope ? nullptr : &prepared_all[k * max_rows * prepared_floats];
    return head_state{&raw_all[k * max_rows * d],       prepared,
                      &acc_codec_all[k * max_rows * d], &acc_float_all[k * max_rows * d],
                      &shift_all[k * max_rows],         &sum_all[k * max_rows]};
  };
  for (std::size_t q0 = 0; q0 < n_queries; q0 += query_chunk) {
    const std::size_t qn = std::min(query_chunk, n_queries - q0), nr = qn * group;
    // The tokens any query of the chunk sees (positioned queries need not be in order).
    const std::size_t seen_by_chunk =
        *std::max_element(visible.begin() + q0, visible.begin() + q0 + qn);
    for (std::size_t h = head_begin; h < head_end; ++h) {
      const head_state st = state_of(h);
      for (std::size_t k = 0; k < qn; ++k) {
        std::memcpy(st.raw + k * group * d, q + ((q0 + k) * q_heads + h * group) * d,
                    group * d * sizeof(float));
      }
      if (!cfg.rope.pre_rope) {  // pre-RoPE keys are scored as fp32 rows, in the model's space
        prepare_queries(c.keys(layer, h), st.raw, nr, st.prepared);
      }
      std::fill_n(st.acc_codec, nr * d, 0.0f);
      std::fill_n(st.acc_float, nr * d, 0.0f);
      std::fill_n(st.running_shift, nr, -std::numeric_limits<float>::infinity());
      std::fill_n(st.running_sum, nr, 0.0f);
    }

    for (std::size_t begin = 0; begin < seen_by_chunk;) {
      const std::size_t end = block_end(begin);
      const std::size_t stop = std::min(end, seen_by_chunk), n = stop - begin;
      for (std::size_t h = head_begin; h < head_end; ++h) {
        const head_state hs = state_of(h);
        float *raw = hs.raw, *prepared = hs.prepared, *acc_codec = hs.acc_codec,
              *acc_float = hs.acc_float, *running_shift = hs.running_shift,
              *running_sum = hs.running_sum;
        const auto rows_of = [&](const std::uint8_t* base, std::size_t token) {
          return base + (token * cfg.kv_heads + h) * d * exact_bytes;
        };
        // 1. Scores of tokens [begin, stop) for every query row; a unit cut by the causal limit
        //    is scored whole and its extra tokens ignored. Keys stored before RoPE are decoded a
        //    block at a time and rotated to their positions first.
        if (cfg.rope.pre_rope) {
          for (std::size_t t = begin; t < stop;) {
            float* row = &key_rows[(t - begin) * d];
            if (t < keys.sinks) {
              c.load_exact(rows_of(keys.sink_data, t), d, row);
              ++t;
            } else if (t < keys.sinks + keys.compressed) {
              c.keys(layer, h).decode(c.key_unit(s, layer, h, t - keys.sinks), row);
              t += key_group;
            } else {
              c.load_exact(rows_of(keys.tail_data, t - keys.sinks - keys.compressed), d, row);
              ++t;
            }
          }
          // RoPE over runs of consecutive positions (the whole block without positions).
          for (std::size_t t = begin; t < stop;) {
            std::size_t run = 1;
            const auto position = [&](std::size_t i) {
              return positioned ? std::size_t{options.token_positions[i]} : i;
            };
            while (t + run < stop && position(t + run) == position(t) + run) ++run;
            apply_rope_run(&key_rows[(t - begin) * d], run, d, position(t), cfg.rope);
            t += run;
          }
          rows.f32_row_dots(reinterpret_cast<const std::uint8_t*>(key_rows.data()),
                            d * sizeof(float), n, d, raw, nr, scores.data(), ld);
        }
        for (std::size_t t = cfg.rope.pre_rope ? stop : begin; t < stop;) {
          float* st = &scores[t - begin];
          if (t < keys.sinks) {
            exact_dots(rows_of(keys.sink_data, t), exact_stride, stop - t, d, raw, nr, st, ld);
            t = stop;
          } else if (t < keys.sinks + keys.compressed) {
            const std::size_t j = t - keys.sinks;
            const std::size_t last = std::min(stop, keys.sinks + keys.compressed);
            const std::size_t units = (last - t + key_group - 1) / key_group;
            c.keys(layer, h).scores(c.key_unit(s, layer, h, j), units, prepared, nr, st, ld);
            t += units * key_group;
          } else {
            const std::size_t first = t - keys.sinks - keys.compressed;
            exact_dots(rows_of(keys.tail_data, first), exact_stride, stop - t, d, raw, nr, st, ld);
            t = stop;
          }
        }

        // 2. Online softmax over the tokens each row sees: weights exp(scale * score - shift) of
        //    the block (zero past the row's causal limit). The shift is the largest scaled score
        //    up to some block, raised (and the accumulators rescaled to it) only when a block's
        //    scores exceed it by more than the headroom: then, and on a row's first block, the
        //    exponentials are taken again. Weights up to e^16 (9e6) are far from float's range
        //    (2^32 of them sum to 4e16), and most blocks take one pass and no rescaling.
        constexpr float headroom = 16.0f;
        for (std::size_t r = 0; r < nr; ++r) {
          float* sg = &scores[r * ld];
          float* wg = &weights[r * ld];
          const std::size_t limit = visible[q0 + r / group];
          const std::size_t seen = limit > begin ? std::min(stop, limit) - begin : 0;
          std::fill(wg + seen, wg + ld, 0.0f);
          if (seen == 0) continue;  // a later query's tokens: nothing for this row
          const float shift = running_shift[r];
          simd::exp_sum e = softmax.exp_scaled(sg, seen, scale, shift, wg);
          if (!(e.max <= shift + headroom)) {  // (NaN scores are skipped by e.max)
            const float raised = std::max(shift, e.max);
            e = softmax.exp_scaled(sg, seen, scale, raised, wg);
            const float rescale = std::exp(shift - raised);  // 0 on the first block
            running_shift[r] = raised;
            running_sum[r] *= rescale;
            for (std::size_t i = 0; i < d; ++i) {
              acc_codec[r * d + i] *= rescale;
              acc_float[r * d + i] *= rescale;
            }
          }
          running_sum[r] += e.sum;
        }

        // 3. Values of the block.
        for (std::size_t t = begin; t < stop;) {
          const float* w = &weights[t - begin];
          if (t < values.sinks) {
            exact_axpys(rows_of(values.sink_data, t), exact_stride, stop - t, d, w, ld, nr,
                        acc_float);
            t = stop;
          } else if (t < values.sinks + values.compressed) {
            const std::size_t j = t - values.sinks;
            const std::size_t last = std::min(stop, values.sinks + values.compressed);
            const std::size_t units = (last - t + value_group - 1) / value_group;
            c.values(layer, h).accumulate(c.value_unit(s, layer, h, j), units, w, ld, nr,
                                          acc_codec);
            t += units * value_group;
          } else {
            const std::size_t first = t - values.sinks - values.compressed;
            exact_axpys(rows_of(values.tail_data, first), exact_stride, stop - t, d, w, ld, nr,
                        acc_float);
            t = stop;
          }
        }
      }
      begin = end;
    }

    // 4. Normalise: out = (finish(acc_codec) + acc_float) / sum.
    for (std::size_t h = head_begin; h < head_end; ++h) {
      const head_state st = state_of(h);
      for (std::size_t r = 0; r < nr; ++r) {
        const std::size_t qh = (q0 + r / group) * q_heads + h * group + r % group;
        float* ac = st.acc_codec + r * d;
        c.values(layer, h).finish_output(ac);
        float* o = out + qh * d;
        const float sum = st.running_sum[r];
        const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;  // 0: no token
        for (std::size_t i = 0; i < d; ++i) o[i] = (ac[i] + st.acc_float[r * d + i]) * inv;
        if (options.log_sum_exp != nullptr) {
          options.log_sum_exp[qh] = st.running_shift[r] + std::log(sum);
        }
      }
    }
  }
  return {};
}

}  // namespace qcodec::kv
