#pragma once
// channel_codebook<Bits>: every channel of a KV head quantized with its own non-uniform
// codebook of 2^Bits levels, fitted offline on calibration data (KVQuant's per-channel
// non-uniform quantization, Hooper et al. 2024, arXiv:2401.18079, with Lloyd-Max levels).
//
// Keys of real models have channels whose scales differ by 5x or more (outlier channels), but a
// channel's own distribution is stable from token to token. So a per-channel codebook learnt
// once replaces KIVI's per-group scale/offset: a unit is one token's codes and nothing else,
// Bits bits per value exactly, with no waiting buffer of unquantized tokens. That matters most
// for small heads, where per-token parameters cost 32 / head_dim bits per value.
//
// The codebooks are constants of the cache (like the model's weights, shared by every
// sequence): head_dim * 2^Bits floats per stream, not counted in the per-sequence bits.
// Values outside a channel's calibrated range are clamped to its outermost level.
//
// Unit (one token): head_dim codes of Bits bits, packed LSB-first.
// Attention: a chunk of tokens at a time is decoded through the tables into a stack buffer (in
// L1) and handed to the fp32 row kernels, so each row is decoded once for all query heads.

#include <qcodec/core/result.hpp>
#include <qcodec/core/status.hpp>
#include <qcodec/kv/stream_codec.hpp>
#include <qcodec/quant/nonuniform/lloyd_max.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace qcodec::kv {

namespace errors {
inline constexpr error_id bad_calibration{errc::invalid_argument, "qcodec.kv.8",
                                          "invalid calibration data"};
}  // namespace errors

namespace detail {

/// The per-channel weights a calibrated codec's fit() takes: empty, or head_dim finite values
/// >= 0 ([qcodec.kv.8] otherwise).
[[nodiscard]] inline status check_channel_weights(std::span<const float> weights,
                                                  std::size_t head_dim) {
  if (!weights.empty() && weights.size() != head_dim) {
    return status::failure(errors::bad_calibration, "one weight per channel");
  }
  for (const float w : weights) {
    if (!(w >= 0.0f && std::isfinite(w))) {
      return status::failure(errors::bad_calibration, "weights must be finite and >= 0");
    }
  }
  return {};
}

}  // namespace detail

/// How fit() spends the Bits * head_dim bits of a token over the channels.
enum class bit_allocation {
  uniform,  ///< Bits bits for every channel
  greedy    ///< bit by bit to the channel whose squared error drops most (reverse
            ///< water-filling): outlier channels get more levels, flat ones fewer
};

template <unsigned Bits>
class channel_codebook {
  static_assert(Bits >= 1 && Bits <= 8, "channel_codebook codes have 1..8 bits on average");

 public:
  static constexpr std::size_t group_tokens = 1;
  static constexpr unsigned max_channel_bits = 8;
  static constexpr std::size_t max_head_dim = 1024;

  /// Fits a Lloyd-Max codebook per channel to n calibration vectors x[n][head_dim], with
  /// Bits * head_dim bits per token spread over the channels as `allocation` says (a channel
  /// may get 0 bits: it is then the constant mean). The greedy allocation minimises
  /// sum_i weight_i * MSE_i: for keys, weight_i = E[q_i^2] makes it the error of the attention
  /// scores (empty weights: all 1).
  [[nodiscard]] static result<channel_codebook> fit(
      std::span<const float> x, std::size_t head_dim, std::span<const float> weights = {},
      bit_allocation allocation = bit_allocation::greedy) {
    if (head_dim == 0 || head_dim > max_head_dim || x.empty() || x.size() % head_dim != 0) {
      return status::failure(errors::bad_calibration,
                             "calibration needs whole vectors of head_dim (1..1024) floats");
    }
    if (status s = detail::check_channel_weights(weights, head_dim); !s) return s;
    const std::size_t n = x.size() / head_dim;
    // candidates[i][b]: channel i's Lloyd-Max levels with b bits (empty if no fit) and MSE.
    struct candidate {
      std::vector<float> levels;
      double mse = std::numeric_limits<double>::infinity();
    };
    std::vector<std::vector<candidate>> candidates(head_dim,
                                                   std::vector<candidate>(max_channel_bits + 1));
    std::vector<float> channel(n);
    lloyd_max_options options;
    options.max_iterations = 1000;
    options.tolerance = 1e-6;
    for (std::size_t i = 0; i < head_dim; ++i) {
      for (std::size_t t = 0; t < n; ++t) channel[t] = x[t * head_dim + i];
      const unsigned top = allocation == bit_allocation::uniform ? Bits : max_channel_bits;
      for (unsigned b = allocation == bit_allocation::uniform ? Bits : 0; b <= top; ++b) {
        result<lloyd_max_fit> f = lloyd_max_samples(channel, {}, std::size_t{1} << b, options);
        if (!f) continue;  // no convergence (or non-finite samples): the channel stops there
        candidates[i][b].levels.assign(f->levels.begin(), f->levels.end());
        candidates[i][b].mse = f->mse;
      }
    }
    std::vector<unsigned> bits(head_dim, allocation == bit_allocation::uniform ? Bits : 0);
    if (allocation == bit_allocation::greedy) {
      for (std::size_t spent = 0; spent < Bits * head_dim; ++spent) {
        std::size_t best = head_dim;
        double best_gain = -std::numeric_limits<double>::infinity();
        for (std::size_t i = 0; i < head_dim; ++i) {
          if (bits[i] == max_channel_bits) continue;
          const double weight = weights.empty() ? 1.0 : static_cast<double>(weights[i]);
          const double gain =
              weight * (candidates[i][bits[i]].mse - candidates[i][bits[i] + 1].mse);
          if (std::isfinite(gain) && gain > best_gain) best_gain = gain, best = i;
        }
        if (best == head_dim) break;
        ++bits[best];
      }
    }
    channel_codebook c;
    c.d_ = head_dim;
    std::size_t bit = 0;
    for (std::size_t i = 0; i < head_dim; ++i) {
      const std::vector<float>& levels = candidates[i][bits[i]].levels;
      if (levels.size() != std::size_t{1} << bits[i]) {
        return status::failure(errors::bad_calibration,
                               "no codebook for channel " + std::to_string(i));
      }
      c.channels_.push_back(
          {static_cast<std::uint32_t>(c.table_.size()), static_cast<std::uint32_t>(bit), bits[i]});
      c.table_.insert(c.table_.end(), levels.begin(), levels.end());
      bit += bits[i];
    }
    c.unit_bytes_ = (Bits * head_dim + 7) / 8;  // the same for every stream, all bits spent or not
    c.make_thresholds();
    return c;
  }

  [[nodiscard]] std::size_t head_dim() const noexcept { return d_; }
  /// Always (Bits * head_dim + 7) / 8 bytes: the allocation only moves bits between channels.
  [[nodiscard]] std::size_t unit_bytes() const noexcept { return unit_bytes_; }
  [[nodiscard]] std::string name() const { return "codebook" + std::to_string(Bits) + "-channel"; }
  /// Bits of channel i, and its 2^bits ascending levels.
  [[nodiscard]] unsigned bits(std::size_t i) const noexcept { return channels_[i].bits; }
  [[nodiscard]] std::span<const float> table(std::size_t i) const noexcept {
    return {&table_[channels_[i].first_level], std::size_t{1} << channels_[i].bits};
  }

  void encode(const float* x, std::uint8_t* unit) const noexcept {
    std::memset(unit, 0, unit_bytes_);
    for (std::size_t i = 0; i < d_; ++i) {
      // The nearest level: the number of midpoints below x (ties go to the lower level).
      const channel& ch = channels_[i];
      const float* t =
          thresholds_.data() + (ch.first_level - i);  // 2^bits - 1 midpoints per channel
      const std::size_t count = (std::size_t{1} << ch.bits) - 1;
      put(unit, ch, static_cast<std::uint32_t>(std::lower_bound(t, t + count, x[i]) - t));
    }
  }
  void decode(const std::uint8_t* unit, float* y) const noexcept {
    for (std::size_t i = 0; i < d_; ++i) y[i] = level(unit, i);
  }
  void prepare_query(const float* q, float* out) const noexcept {
    std::memmove(out, q, d_ * sizeof(float));
  }
  void scores(const std::uint8_t* units, std::size_t count, const float* q, std::size_t nq,
              float* s, std::size_t ld) const noexcept {
    detail::for_decoded_chunks(
        *this, units, count, [&](const std::uint8_t* rows, std::size_t t0, std::size_t tn) {
          simd::kernels().rows.f32_row_dots(rows, d_ * sizeof(float), tn, d_, q, nq, s + t0, ld);
        });
  }
  void accumulate(const std::uint8_t* units, std::size_t count, const float* p, std::size_t ldp,
                  std::size_t nq, float* acc) const noexcept {
    detail::accumulate_decoded(*this, units, count, p, ldp, nq, acc);
  }
  void finish_output(float*) const noexcept {}

 private:
  struct channel {
    std::uint32_t first_level;  // index of its first level in table_
    std::uint32_t bit_offset;   // where its code starts in a unit
    unsigned bits;
  };

  channel_codebook() = default;

  void make_thresholds() {
    thresholds_.clear();
    for (std::size_t i = 0; i < d_; ++i) {
      const std::span<const float> l = table(i);
      for (std::size_t j = 0; j + 1 < l.size(); ++j)
        thresholds_.push_back(0.5f * (l[j] + l[j + 1]));
    }
  }
  float level(const std::uint8_t* unit, std::size_t i) const noexcept {
    return table_[channels_[i].first_level + get(unit, channels_[i])];
  }
  // A channel's code: `bits` bits at its bit offset, LSB-first (may straddle two bytes).
  static std::uint32_t get(const std::uint8_t* unit, const channel& ch) noexcept {
    if (ch.bits == 0) return 0;
    const std::size_t byte = ch.bit_offset / 8, shift = ch.bit_offset % 8;
    std::uint32_t word = unit[byte];
    if (shift + ch.bits > 8) word |= static_cast<std::uint32_t>(unit[byte + 1]) << 8;
    return (word >> shift) & ((1u << ch.bits) - 1);
  }
  static void put(std::uint8_t* unit, const channel& ch, std::uint32_t code) noexcept {
    if (ch.bits == 0) return;
    const std::size_t byte = ch.bit_offset / 8, shift = ch.bit_offset % 8;
    const std::uint32_t shifted = code << shift;
    unit[byte] = static_cast<std::uint8_t>(unit[byte] | (shifted & 0xffu));
    if (shift + ch.bits > 8) {
      unit[byte + 1] = static_cast<std::uint8_t>(unit[byte + 1] | (shifted >> 8));
    }
  }

  std::size_t d_ = 0, unit_bytes_ = 0;
  std::vector<channel> channels_;
  std::vector<float> table_;       // every channel's levels, one after the other
  std::vector<float> thresholds_;  // every channel's 2^bits - 1 midpoints, likewise
};

/// Keys and values of every stream of a model on some calibration text, for fitting
/// calibrated codecs: [layer][kv_head][token][head_dim] (the layout of cache::decode_layer and
/// of K/V .npy dumps).
struct kv_samples {
  enum class kind { keys, pre_rope_keys, values };

  std::size_t layers = 0, kv_heads = 0, tokens = 0, head_dim = 0;
  std::vector<float> keys;           ///< after RoPE (what an engine appends to most caches)
  std::vector<float> pre_rope_keys;  ///< before RoPE (for rope_config::pre_rope), or empty
  std::vector<float> values;
  /// Mean squared query per key channel, [layer][kv_head][head_dim] over the query heads that
  /// read the head (pairs averaged, so the weights hold before and after RoPE), or empty.
  std::vector<float> key_weights;

  [[nodiscard]] const std::vector<float>& of(kind k) const noexcept {
    return k == kind::keys ? keys : k == kind::pre_rope_keys ? pre_rope_keys : values;
  }
  /// The samples of one stream, [tokens][head_dim].
  [[nodiscard]] std::span<const float> stream(kind k, std::size_t layer,
                                              std::size_t head) const noexcept {
    const std::size_t n = tokens * head_dim;
    return {of(k).data() + (layer * kv_heads + head) * n, n};
  }

  /// Adds the tokens of another text (same shape) after this one's, stream by stream; key
  /// weights become the token-weighted mean. More calibration text, less overfitted codebooks.
  [[nodiscard]] status append(const kv_samples& other) {
    if (tokens == 0) {
      *this = other;
      return {};
    }
    if (other.layers != layers || other.kv_heads != kv_heads || other.head_dim != head_dim ||
        other.pre_rope_keys.empty() != pre_rope_keys.empty() ||
        other.key_weights.size() != key_weights.size()) {
      return status::failure(errors::bad_calibration, "appended samples of another shape");
    }
    const auto concatenate = [&](std::vector<float>& mine, const std::vector<float>& theirs) {
      std::vector<float> joined;
      joined.reserve(mine.size() + theirs.size());
      const std::size_t a = tokens * head_dim, b = other.tokens * head_dim;
      for (std::size_t s = 0; s < layers * kv_heads; ++s) {
        joined.insert(joined.end(), mine.begin() + static_cast<std::ptrdiff_t>(s * a),
                      mine.begin() + static_cast<std::ptrdiff_t>((s + 1) * a));
        joined.insert(joined.end(), theirs.begin() + static_cast<std::ptrdiff_t>(s * b),
                      theirs.begin() + static_cast<std::ptrdiff_t>((s + 1) * b));
      }
      mine = std::move(joined);
    };
    concatenate(keys, other.keys);
    if (!pre_rope_keys.empty()) concatenate(pre_rope_keys, other.pre_rope_keys);
    concatenate(values, other.values);
    const float wa = static_cast<float>(tokens), wb = static_cast<float>(other.tokens);
    for (std::size_t i = 0; i < key_weights.size(); ++i) {
      key_weights[i] = (wa * key_weights[i] + wb * other.key_weights[i]) / (wa + wb);
    }
    tokens += other.tokens;
    return {};
  }
};

/// One codec per stream ([layer][kv_head]), each fitted to that stream's keys (or values);
/// codecs without a fit() need no calibration: one, built from head_dim, serves every stream.
template <class Codec>
[[nodiscard]] result<std::vector<Codec>> fit_per_stream(const kv_samples& samples,
                                                        kv_samples::kind which) {
  if constexpr (!requires { Codec::fit(std::span<const float>{}, samples.head_dim, {}); }) {
    return std::vector<Codec>{Codec(samples.head_dim)};
  } else {
    const std::size_t floats =
        samples.layers * samples.kv_heads * samples.tokens * samples.head_dim;
    if (!samples.key_weights.empty() &&
        samples.key_weights.size() != samples.layers * samples.kv_heads * samples.head_dim) {
      return status::failure(errors::bad_calibration, "key weights of the wrong size");
    }
    if (floats == 0 || samples.of(which).size() != floats) {
      return status::failure(errors::bad_calibration,
                             which == kv_samples::kind::pre_rope_keys
                                 ? "no pre-RoPE calibration keys"
                                 : "calibration samples of the wrong size");
    }
    std::vector<Codec> codecs;
    for (std::size_t l = 0; l < samples.layers; ++l) {
      for (std::size_t h = 0; h < samples.kv_heads; ++h) {
        const bool weighted = which != kv_samples::kind::values && !samples.key_weights.empty();
        const std::span<const float> weights =
            weighted ? std::span<const float>(
                           &samples.key_weights[(l * samples.kv_heads + h) * samples.head_dim],
                           samples.head_dim)
                     : std::span<const float>{};
        result<Codec> c = Codec::fit(samples.stream(which, l, h), samples.head_dim, weights);
        if (!c) return c.error();
        codecs.push_back(std::move(*c));
      }
    }
    return codecs;
  }
}

}  // namespace qcodec::kv
