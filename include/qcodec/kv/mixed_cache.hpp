#pragma once
// kv::mixed_cache<Tiers...>: per-token precision chosen by an importance score the engine
// supplies (mixed-precision KV: MiKV, Yang et al. 2024, "No Token Left Behind", arXiv:2402.18096;
// ZipCache, He et al. 2024). Salient tokens are stored by the first tier (say 8-bit), the others
// by later tiers, and the tokens an eviction policy (H2O, SnapKV, ...) would drop go to the last
// tier (say 2-bit) instead of disappearing, so a wrong eviction costs precision, not the token.
//
// Every token first enters a window of the R = config.base.residual_tokens most recent tokens,
// kept exact (in config.base.exact_format). While it is there the engine may set its score
// (set_importance: e.g. the attention it has drawn so far, H2O's heavy-hitter score; tokens
// appended without a score have 0). When it leaves the window its score picks its tier for good:
// the first tier i with score >= thresholds[i], or the last tier. Each tier is a kv::cache of its
// own (codecs, pages) per layer, holding the layer's tokens of that tier in position order, with
// their positions: a token may be stored at different precisions in different layers, and a
// layer that sends most of its tokens to one tier does not make the other layers pay pages of it.
//
// Attention (kv::attention overload below) runs the fused attention of each tier with the tier's
// token positions (for causality and for the RoPE of pre-RoPE keys) and of the window, and merges
// the partial outputs by their log-sum-exp, which is exact: softmax over a union of token sets.
//
// Attention sinks: give them a score above thresholds[0] (with an fp16 or fp32 first tier they
// stay exact); config.base.sink_tokens must be 0. Each layer's cache of each tier has its own
// page pool of config.base.max_pages pages.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/result.hpp>
#include <qcodec/core/status.hpp>
#include <qcodec/kv/attention.hpp>
#include <qcodec/kv/cache.hpp>
#include <qcodec/kv/rope.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace qcodec::kv {

namespace errors {
inline constexpr error_id not_in_window{errc::out_of_range, "qcodec.kv.9",
                                        "the token has left the window (its tier is chosen)"};
}  // namespace errors

struct mixed_config {
  /// Shape, capacity, RoPE and exact format, shared by every tier. residual_tokens is the
  /// window R; sink_tokens must be 0.
  cache_config base;
  /// One threshold per tier but the last, non-increasing: a token leaving the window goes to
  /// the first tier i with score >= thresholds[i], else to the last tier.
  std::vector<float> thresholds;
};

template <class... Tiers>
class mixed_cache {
  static_assert(sizeof...(Tiers) >= 2, "a mixed cache needs at least two tiers");

 public:
  static constexpr std::size_t tier_count = sizeof...(Tiers);

  /// A mixed cache whose tiers are built from the head dimension (Tiers::create(cache_config)).
  [[nodiscard]] static result<mixed_cache> create(const mixed_config& config) {
    if (config.base.sink_tokens != 0) {
      return status::failure(errors::bad_config,
                             "a mixed cache has no sink tokens: give sinks a high score");
    }
    if (config.thresholds.size() != tier_count - 1) {
      return status::failure(errors::bad_config, "give " + std::to_string(tier_count - 1) +
                                                     " thresholds for " +
                                                     std::to_string(tier_count) + " tiers");
    }
    for (std::size_t i = 0; i < config.thresholds.size(); ++i) {
      if (std::isnan(config.thresholds[i]) ||
          (i > 0 && config.thresholds[i] > config.thresholds[i - 1])) {
        return status::failure(errors::bad_config, "thresholds must be non-increasing numbers");
      }
    }
    cache_config tier_config = config.base;
    tier_config.layers = 1;           // one cache per layer and tier
    tier_config.residual_tokens = 0;  // the window is the mixed cache's own
    std::tuple<std::vector<Tiers>...> tiers;
    status failed;
    std::apply([&](auto&... caches) { (make_layers(caches, tier_config, config, failed), ...); },
               tiers);
    if (!failed.ok()) return failed;
    return mixed_cache(config, std::move(tiers));
  }

  [[nodiscard]] const mixed_config& config() const noexcept { return config_; }
  /// Tier I's cache of `layer` (a one-layer kv::cache); sequence s lives there as
  /// tier_sequence(s, I).
  template <std::size_t I>
  [[nodiscard]] const auto& tier(std::size_t layer) const noexcept {
    return std::get<I>(tiers_)[layer];
  }
  /// f(tier cache of `layer`, tier index) for every tier, in order.
  template <class F>
  void visit_tiers(std::size_t layer, F&& f) const {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (f(std::get<I>(tiers_)[layer], I), ...); }
    (std::index_sequence_for<Tiers...>{});
  }

  // ---- sequences -------------------------------------------------------------------------

  [[nodiscard]] sequence_id add_sequence() {
    sequence seq;
    seq.live = true;
    seq.layers.resize(config_.base.layers);
    for_each_tier([&](auto& per_layer, std::size_t i) {
      for (auto& t : per_layer) seq.ids[i] = t.add_sequence();  // in lockstep: the same id
    });
    return place(std::move(seq));
  }

  /// A new sequence with the same contents as `source`, sharing its tiers' pages (copy on
  /// write, see kv::cache::fork).
  [[nodiscard]] result<sequence_id> fork(sequence_id source) {
    if (!valid(source)) return status::failure(errors::bad_sequence, std::to_string(source));
    sequence copy = sequences_[source];
    for_each_tier([&](auto& per_layer, std::size_t i) {
      for (auto& t : per_layer) copy.ids[i] = *t.fork(sequences_[source].ids[i]);  // a valid id
    });
    return place(std::move(copy));
  }

  status free_sequence(sequence_id s) {
    if (!valid(s)) return status::failure(errors::bad_sequence, std::to_string(s));
    for_each_tier([&](auto& per_layer, std::size_t i) {
      for (auto& t : per_layer) (void)t.free_sequence(sequences_[s].ids[i]);
    });
    sequences_[s] = sequence{};
    return {};
  }

  /// Empties a sequence (keeps its id).
  status clear(sequence_id s) {
    if (!valid(s)) return status::failure(errors::bad_sequence, std::to_string(s));
    for_each_tier([&](auto& per_layer, std::size_t i) {
      for (auto& t : per_layer) (void)t.clear(sequences_[s].ids[i]);
    });
    sequences_[s].layers.assign(config_.base.layers, layer_state{});
    return {};
  }

  [[nodiscard]] std::size_t length(sequence_id s, std::size_t layer) const noexcept {
    return valid(s) && layer < config_.base.layers ? sequences_[s].layers[layer].length : 0;
  }

  // ---- appending and scoring ---------------------------------------------------------------

  /// Appends n tokens to `layer` of sequence s (keys, values: [n][kv_heads][head_dim]), with
  /// optional scores importance[n] (0 when null). Tokens pushed out of the window are stored in
  /// the tier their score picks. When that tier is full (out_of_pages), the tokens before the
  /// one that failed are appended and the rest are not.
  status append(sequence_id s, std::size_t layer, const float* keys, const float* values,
                std::size_t n, const float* importance = nullptr) {
    if (status st = check(s, layer); !st) return st;
    layer_state& ls = sequences_[s].layers[layer];
    if (ls.length + n > config_.base.max_tokens) {
      return status::failure(errors::too_long, std::to_string(ls.length + n) + " tokens");
    }
    const std::size_t row = row_floats();
    for (std::size_t i = 0; i < n; ++i) {
      ls.window_keys.push(format(), keys + i * row, row);
      ls.window_values.push(format(), values + i * row, row);
      ls.scores.push_back(importance != nullptr ? importance[i] : 0.0f);
      ++ls.length;
      if (ls.scores.size() > config_.base.residual_tokens) {
        if (status st = leave_window(s, layer); !st) {  // undo the token: the window is as before
          const std::size_t bytes = row * float_bytes(format());
          ls.window_keys.drop_back(bytes);
          ls.window_values.drop_back(bytes);
          ls.scores.pop_back();
          --ls.length;
          return st;
        }
      }
    }
    return {};
  }

  /// Sets the score of token `position` of `layer`, which must still be in the window.
  status set_importance(sequence_id s, std::size_t layer, std::size_t position, float score) {
    if (status st = check(s, layer); !st) return st;
    layer_state& ls = sequences_[s].layers[layer];
    const std::size_t first = ls.length - ls.scores.size();
    if (position < first || position >= ls.length) {
      return status::failure(errors::not_in_window, "token " + std::to_string(position) +
                                                        " (window: " + std::to_string(first) +
                                                        ".." + std::to_string(ls.length) + ")");
    }
    ls.scores[position - first] = score;
    return {};
  }

  /// The tier storing token `position` of `layer`, or tier_count while it is in the window.
  [[nodiscard]] result<std::size_t> tier_of(sequence_id s, std::size_t layer,
                                            std::size_t position) const {
    if (status st = check(s, layer); !st) return st;
    if (position >= length(s, layer)) {
      return status::failure(errors::too_long, "no token " + std::to_string(position));
    }
    const layer_state& ls = sequences_[s].layers[layer];
    for (std::size_t t = 0; t < tier_count; ++t) {
      const std::vector<std::uint32_t>& p = ls.positions[t];
      if (std::binary_search(p.begin(), p.end(), static_cast<std::uint32_t>(position))) return t;
    }
    return tier_count;
  }

  // ---- reading -------------------------------------------------------------------------------

  // The accessors below take a live sequence (contains(s)) and a layer < layers.

  /// Whether sequence s exists (added and not freed).
  [[nodiscard]] bool contains(sequence_id s) const noexcept { return valid(s); }
  /// Sequence s in tier t's caches.
  [[nodiscard]] sequence_id tier_sequence(sequence_id s, std::size_t t) const noexcept {
    QCODEC_ASSERT(valid(s) && t < tier_count, "no such sequence or tier");
    return sequences_[s].ids[t];
  }
  /// Positions of the tokens of `layer` that tier t stores, ascending.
  [[nodiscard]] const std::vector<std::uint32_t>& tier_positions(sequence_id s, std::size_t layer,
                                                                 std::size_t t) const noexcept {
    QCODEC_ASSERT(valid(s) && layer < config_.base.layers && t < tier_count, "out of range");
    return sequences_[s].layers[layer].positions[t];
  }
  /// The window of `layer`: tokens [first, first + tokens), [token][kv_head][head_dim] in
  /// config().base.exact_format.
  struct window_view {
    std::size_t first, tokens;
    const std::uint8_t* keys;
    const std::uint8_t* values;
  };
  [[nodiscard]] window_view window(sequence_id s, std::size_t layer) const noexcept {
    QCODEC_ASSERT(valid(s) && layer < config_.base.layers, "no such sequence or layer");
    const layer_state& ls = sequences_[s].layers[layer];
    return {ls.length - ls.scores.size(), ls.scores.size(), ls.window_keys.data(),
            ls.window_values.data()};
  }

  /// Decodes `layer` of sequence s into [kv_heads][length][head_dim] arrays in position order
  /// (the reference path; keys as appended, before RoPE when config().base.rope.pre_rope).
  void decode_layer(sequence_id s, std::size_t layer, float* keys_out, float* values_out) const {
    QCODEC_ASSERT(valid(s) && layer < config_.base.layers, "no such sequence or layer");
    const layer_state& ls = sequences_[s].layers[layer];
    const std::size_t d = config_.base.head_dim, heads = config_.base.kv_heads;
    const std::size_t length = ls.length;
    std::vector<float> k, v;
    visit_tiers(layer, [&](const auto& t, std::size_t i) {
      const std::vector<std::uint32_t>& pos = ls.positions[i];
      k.resize(heads * pos.size() * d);
      v.resize(k.size());
      t.decode_layer(sequences_[s].ids[i], 0, k.data(), v.data());
      for (std::size_t h = 0; h < heads; ++h) {
        for (std::size_t j = 0; j < pos.size(); ++j) {
          std::copy_n(&k[(h * pos.size() + j) * d], d, &keys_out[(h * length + pos[j]) * d]);
          std::copy_n(&v[(h * pos.size() + j) * d], d, &values_out[(h * length + pos[j]) * d]);
        }
      }
    });
    const std::size_t first = length - ls.scores.size(), bytes = float_bytes(format());
    for (std::size_t j = 0; j < ls.scores.size(); ++j) {
      for (std::size_t h = 0; h < heads; ++h) {
        const std::size_t at = (j * heads + h) * d * bytes;
        load_floats(format(), ls.window_keys.data() + at, d,
                    &keys_out[(h * length + first + j) * d]);
        load_floats(format(), ls.window_values.data() + at, d,
                    &values_out[(h * length + first + j) * d]);
      }
    }
  }

  // ---- memory accounting ---------------------------------------------------------------------

  /// Bytes that store sequence s: every tier's (kv::cache::sequence_bytes), the window, the
  /// window's scores and the tiers' position lists.
  [[nodiscard]] std::size_t sequence_bytes(sequence_id s) const noexcept {
    if (!valid(s)) return 0;
    std::size_t bytes = 0;
    for (std::size_t l = 0; l < config_.base.layers; ++l) {
      visit_tiers(l, [&](const auto& t, std::size_t i) {
        bytes += t.sequence_bytes(sequences_[s].ids[i]);
      });
    }
    for (const layer_state& ls : sequences_[s].layers) {
      bytes += ls.window_keys.size() + ls.window_values.size() + ls.scores.size() * sizeof(float);
      for (const auto& p : ls.positions) bytes += p.size() * sizeof(std::uint32_t);
    }
    return bytes;
  }
  /// Bits per stored value of sequence s, everything counted (see kv::cache::bits_per_value).
  [[nodiscard]] double bits_per_value(sequence_id s) const noexcept {
    std::size_t values = 0;
    for (std::size_t l = 0; l < config_.base.layers; ++l) {
      values += 2 * length(s, l) * row_floats();
    }
    return values == 0 ? 0.0
                       : 8.0 * static_cast<double>(sequence_bytes(s)) / static_cast<double>(values);
  }

 private:
  struct layer_state {
    std::size_t length = 0;
    // The window: its tokens' keys and values, [token][kv_head][head_dim] in the exact format,
    // and scores; the window holds tokens [length - scores.size(), length).
    exact_rows window_keys, window_values;
    std::vector<float> scores;
    std::array<std::vector<std::uint32_t>, tier_count> positions;  // per tier, ascending
  };
  struct sequence {
    bool live = false;
    std::array<sequence_id, tier_count> ids{};  // the sequence in each tier
    std::vector<layer_state> layers;
  };

  mixed_cache(const mixed_config& config, std::tuple<std::vector<Tiers>...> tiers)
      : config_(config), tiers_(std::move(tiers)) {}

  template <class Tier>
  static void make_layers(std::vector<Tier>& caches, const cache_config& tier_config,
                          const mixed_config& config, status& failed) {
    for (std::size_t l = 0; l < config.base.layers && failed.ok(); ++l) {
      result<Tier> t = Tier::create(tier_config);
      if (!t) {
        failed = t.error();
        return;
      }
      caches.push_back(std::move(*t));
    }
  }

  // Stores a sequence in the first free slot.
  sequence_id place(sequence seq) {
    for (sequence_id i = 0; i < sequences_.size(); ++i) {
      if (!sequences_[i].live) {
        sequences_[i] = std::move(seq);
        return i;
      }
    }
    sequences_.push_back(std::move(seq));
    return static_cast<sequence_id>(sequences_.size() - 1);
  }

  [[nodiscard]] status check(sequence_id s, std::size_t layer) const {
    if (!valid(s)) return status::failure(errors::bad_sequence, std::to_string(s));
    if (layer >= config_.base.layers) {
      return status::failure(errors::bad_layer, std::to_string(layer));
    }
    return {};
  }
  [[nodiscard]] bool valid(sequence_id s) const noexcept {
    return s < sequences_.size() && sequences_[s].live;
  }
  [[nodiscard]] std::size_t row_floats() const noexcept {
    return config_.base.kv_heads * config_.base.head_dim;
  }
  [[nodiscard]] float_format format() const noexcept { return config_.base.exact_format; }

  // f(the tier's caches, one per layer, tier index) for every tier.
  template <class F>
  void for_each_tier(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (f(std::get<I>(tiers_), I), ...); }
    (std::index_sequence_for<Tiers...>{});
  }

  // Moves the window's oldest token of `layer` to the tier its score picks.
  status leave_window(sequence_id s, std::size_t layer) {
    sequence& seq = sequences_[s];
    layer_state& ls = seq.layers[layer];
    const float score = ls.scores.front();
    std::size_t tier = 0;
    while (tier < config_.thresholds.size() && !(score >= config_.thresholds[tier])) ++tier;
    const std::size_t row = row_floats(), bytes = row * float_bytes(format());
    std::vector<float>& k = scratch_;
    k.resize(2 * row);
    load_floats(format(), ls.window_keys.data(), row, k.data());
    load_floats(format(), ls.window_values.data(), row, k.data() + row);
    status st;
    for_each_tier([&](auto& per_layer, std::size_t i) {
      if (i == tier) st = per_layer[layer].append(seq.ids[i], 0, k.data(), k.data() + row, 1);
    });
    if (!st) return st;
    ls.positions[tier].push_back(static_cast<std::uint32_t>(ls.length - ls.scores.size()));
    ls.window_keys.drop_front(bytes);
    ls.window_values.drop_front(bytes);
    ls.scores.erase(ls.scores.begin());
    return {};
  }

  mixed_config config_;
  std::tuple<std::vector<Tiers>...> tiers_;  // [tier][layer]
  std::vector<sequence> sequences_;
  std::vector<float> scratch_;
};

/// Attention on a mixed cache: the same contract as kv::attention on a kv::cache (GQA, a range
/// of KV heads, n_queries causal queries at the last positions, optional log-sum-exp). Each
/// tier's part and the window's are computed separately and merged by their log-sum-exp.
template <class... Tiers>
[[nodiscard]] status attention(const mixed_cache<Tiers...>& c, sequence_id s, std::size_t layer,
                               const float* q, std::size_t q_heads, float* out,
                               std::size_t n_queries = 1, std::size_t head_begin = 0,
                               std::size_t head_end = static_cast<std::size_t>(-1),
                               const attention_options& options = {}) {
  const cache_config& cfg = c.config().base;
  if (status st = detail::check_attention_arguments(cfg, c.contains(s), s, layer, q_heads,
                                                    head_begin, head_end);
      !st) {
    return st;
  }
  if (options.token_positions != nullptr || options.query_positions != nullptr) {
    return status::failure(errors::bad_query, "a mixed cache knows its positions itself");
  }
  const std::size_t length = c.length(s, layer);
  if (n_queries == 0 || n_queries > length) {
    return status::failure(errors::bad_query, std::to_string(n_queries) + " queries over " +
                                                  std::to_string(length) + " tokens");
  }
  const std::size_t d = cfg.head_dim, group = q_heads / cfg.kv_heads;
  const float scale =
      options.scale != 0.0f ? options.scale : 1.0f / std::sqrt(static_cast<float>(d));
  const float minus_inf = -std::numeric_limits<float>::infinity();

  // The merged result so far, per query and query head: out (normalised) and log-sum-exp.
  std::vector<float> lse(n_queries * q_heads, minus_inf), part(n_queries * q_heads * d),
      part_lse(n_queries * q_heads);
  for (std::size_t qi = 0; qi < n_queries; ++qi) {
    std::fill_n(out + (qi * q_heads + head_begin * group) * d, (head_end - head_begin) * group * d,
                0.0f);
  }
  const auto merge = [&](std::size_t qi, std::size_t qh, const float* o, float o_lse) {
    float& l = lse[qi * q_heads + qh];
    if (o_lse == minus_inf) return;
    float* acc = out + (qi * q_heads + qh) * d;
    const float m = std::max(l, o_lse);
    const float wa = std::exp(l - m), wo = std::exp(o_lse - m), inv = 1.0f / (wa + wo);
    for (std::size_t i = 0; i < d; ++i) acc[i] = (acc[i] * wa + o[i] * wo) * inv;
    l = m + std::log(wa + wo);
  };

  // 1. Each tier: its tokens at their positions.
  std::vector<std::uint32_t> query_positions(n_queries);
  for (std::size_t qi = 0; qi < n_queries; ++qi) {
    query_positions[qi] = static_cast<std::uint32_t>(length - n_queries + qi);
  }
  status st;
  c.visit_tiers(layer, [&](const auto& tier, std::size_t i) {
    const std::vector<std::uint32_t>& positions = c.tier_positions(s, layer, i);
    if (!st || positions.empty()) return;
    attention_options o;
    o.scale = scale;
    o.log_sum_exp = part_lse.data();
    o.token_positions = positions.data();
    o.query_positions = query_positions.data();
    st = attention(tier, c.tier_sequence(s, i), 0, q, q_heads, part.data(), n_queries, head_begin,
                   head_end, o);
    if (!st) return;
    for (std::size_t qi = 0; qi < n_queries; ++qi) {
      for (std::size_t qh = head_begin * group; qh < head_end * group; ++qh) {
        merge(qi, qh, &part[(qi * q_heads + qh) * d], part_lse[qi * q_heads + qh]);
      }
    }
  });
  if (!st) return st;

  // 2. The window: tokens [first, length), exact; pre-RoPE keys rotated to their positions.
  const auto view = c.window(s, layer);
  const std::size_t window = view.tokens, first = view.first;
  const std::size_t bytes = float_bytes(cfg.exact_format);
  std::vector<float> keys(window * d), values(window * d), scores(group * window), o(d);
  const simd::row_kernels& rows = simd::kernels().rows;
  for (std::size_t h = head_begin; h < head_end && window > 0; ++h) {
    for (std::size_t j = 0; j < window; ++j) {
      const std::size_t at = (j * cfg.kv_heads + h) * d * bytes;
      load_floats(cfg.exact_format, view.keys + at, d, &keys[j * d]);
      load_floats(cfg.exact_format, view.values + at, d, &values[j * d]);
    }
    if (cfg.rope.pre_rope) apply_rope_run(keys.data(), window, d, first, cfg.rope);
    for (std::size_t qi = 0; qi < n_queries; ++qi) {
      if (query_positions[qi] < first) continue;  // sees no window token
      const std::size_t visible = std::min<std::size_t>(window, query_positions[qi] + 1 - first);
      const float* qh = q + (qi * q_heads + h * group) * d;
      rows.f32_row_dots(reinterpret_cast<const std::uint8_t*>(keys.data()), d * sizeof(float),
                        visible, d, qh, group, scores.data(), window);
      for (std::size_t g = 0; g < group; ++g) {
        float* sg = &scores[g * window];
        float m = minus_inf;
        for (std::size_t j = 0; j < visible; ++j) m = std::max(m, sg[j] *= scale);
        float sum = 0.0f;
        std::fill(o.begin(), o.end(), 0.0f);
        for (std::size_t j = 0; j < visible; ++j) {
          const float w = std::exp(sg[j] - m);
          sum += w;
          for (std::size_t i = 0; i < d; ++i) o[i] += w * values[j * d + i];
        }
        for (float& x : o) x /= sum;
        merge(qi, h * group + g, o.data(), m + std::log(sum));
      }
    }
  }
  if (options.log_sum_exp != nullptr) {
    for (std::size_t qi = 0; qi < n_queries; ++qi) {
      for (std::size_t qh = head_begin * group; qh < head_end * group; ++qh) {
        options.log_sum_exp[qi * q_heads + qh] = lse[qi * q_heads + qh];
      }
    }
  }
  return {};
}

}  // namespace qcodec::kv
