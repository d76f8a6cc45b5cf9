#pragma once
// any_cache: a KV cache whose scheme is chosen at run time by name, for engines and tools that
// take the scheme from a command line or a config file. Compile-time users instantiate
// kv::cache<KeyCodec, ValueCodec> directly; this adds one virtual call per layer and step.
//
//   auto c = qcodec::kv::make_cache("kivi2:residual=128", config);
//
// Specs (codec/spec.hpp grammar): a scheme name from kv_schemes(), with the options
//   sinks=S      first S tokens kept exact            (default: the config's sink_tokens)
//   residual=R   most recent R tokens kept exact      (default: the scheme's, see kv_schemes())
//   exact=32|16  exact tokens stored in fp32 or fp16  (default: the config's exact_format)
//   prerope=0|1  keys appended before RoPE, rotated when scored (kv/rope.hpp; the config's
//                rope theta and style)                (default: 1 for calibrated schemes)
//   salient=X    tiered schemes ("mix-..."): the importance score from which a token is stored
//                by the first, high-precision tier    (default: 4, see importance_threshold)
// Tiered schemes have no sinks (a config with sink_tokens needs sinks=0 in their spec: give the
// sinks a high score instead) and need a window (residual >= 1).
// Everything else about the scheme is in its name, so a spec names one configuration exactly.
// Calibrated schemes (kv_scheme::calibrated: per-channel codebooks) also need K/V samples of
// the model (kv_samples, e.g. from a run on calibration text); make_cache fits them per stream.
// Tiered schemes are kv::mixed_caches: the engine scores each token while it is in the window
// of the residual=R most recent tokens (set_importance), and the score picks its precision when
// it leaves the window.

#include <qcodec/codec/spec.hpp>
#include <qcodec/core/result.hpp>
#include <qcodec/kv/attention.hpp>
#include <qcodec/kv/cache.hpp>
#include <qcodec/kv/channel_codebook.hpp>
#include <qcodec/kv/coupled_codebook.hpp>
#include <qcodec/kv/fp_stream.hpp>
#include <qcodec/kv/gear.hpp>
#include <qcodec/kv/mixed_cache.hpp>
#include <qcodec/kv/outliers.hpp>
#include <qcodec/kv/per_channel.hpp>
#include <qcodec/kv/per_token.hpp>
#include <qcodec/kv/rotated.hpp>
#include <qcodec/kv/token_blocks.hpp>
#include <qcodec/kv/token_quads.hpp>
#include <qcodec/kv/token_rows.hpp>
#include <qcodec/kv/turbo.hpp>
#include <qcodec/kv/turbo_qjl.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace qcodec::kv {

class any_cache {
 public:
  virtual ~any_cache() = default;

  /// The canonical spec of this cache's scheme.
  [[nodiscard]] virtual std::string spec() const = 0;
  [[nodiscard]] virtual const cache_config& config() const noexcept = 0;

  [[nodiscard]] virtual sequence_id add_sequence() = 0;
  [[nodiscard]] virtual result<sequence_id> fork(sequence_id source) = 0;
  virtual status free_sequence(sequence_id s) = 0;
  virtual status clear(sequence_id s) = 0;
  virtual status append(sequence_id s, std::size_t layer, const float* keys, const float* values,
                        std::size_t n) = 0;
  /// kv::attention on this cache (see kv/attention.hpp for shapes).
  [[nodiscard]] virtual status attention(sequence_id s, std::size_t layer, const float* q,
                                         std::size_t q_heads, float* out, std::size_t n_queries = 1,
                                         std::size_t head_begin = 0,
                                         std::size_t head_end = static_cast<std::size_t>(-1),
                                         const attention_options& options = {}) const = 0;
  /// Keys and values of a layer decoded to [kv_heads][length][head_dim] (reference path).
  virtual void decode_layer(sequence_id s, std::size_t layer, float* keys, float* values) const = 0;

  [[nodiscard]] virtual std::size_t length(sequence_id s, std::size_t layer) const noexcept = 0;
  [[nodiscard]] virtual std::size_t sequence_bytes(sequence_id s) const noexcept = 0;
  [[nodiscard]] virtual double bits_per_value(sequence_id s) const noexcept = 0;

  /// A tiered cache's threshold: tokens scoring at least this are stored at high precision
  /// (NaN for other caches).
  [[nodiscard]] virtual float salient_threshold() const noexcept {
    return std::numeric_limits<float>::quiet_NaN();
  }
  /// Whether each token's precision follows its importance score (the "mix-" schemes, a
  /// kv::mixed_cache): a token gets the score last set while it was among the
  /// config().residual_tokens most recent ones (0 if none was set).
  [[nodiscard]] bool tiered() const noexcept { return !std::isnan(salient_threshold()); }
  /// Sets the importance score of token `position` of `layer`, which must still be in the
  /// window (kv::mixed_cache::set_importance). Only tiered caches have scores.
  virtual status set_importance(sequence_id, std::size_t, std::size_t position, float) {
    return status::failure(errors::bad_config, spec() + " is not tiered: no score for token " +
                                                   std::to_string(position));
  }
};

/// The score from which a tiered scheme's token goes to its high-precision tier unless the
/// spec sets salient=X. The scores engines give them (examples/llama, qcodec-eval) are H2O-style
/// attention shares: the probability each query that saw the token in the window gave it, times
/// the number of tokens that query attended to (1: as much as uniform attention gives), averaged
/// over those queries and all query heads. Recent tokens draw far more than uniform attention:
/// on stories260K with a 32-token window, 75% of the tokens scored 2 or more, 55% 4 or more,
/// 30% 8 or more.
inline constexpr float importance_threshold = 4.0f;

namespace detail {

// A kv::cache or (tiered) a kv::mixed_cache behind any_cache.
template <class Cache>
class cache_model final : public any_cache {
  static constexpr bool mixed = requires(Cache & c) { c.set_importance(0, 0, 0, 0.0f); };

 public:
  cache_model(Cache c, std::string spec) : cache_(std::move(c)), spec_(std::move(spec)) {}

  [[nodiscard]] std::string spec() const override { return spec_; }
  [[nodiscard]] const cache_config& config() const noexcept override {
    if constexpr (mixed) {
      return cache_.config().base;
    } else {
      return cache_.config();
    }
  }
  [[nodiscard]] sequence_id add_sequence() override { return cache_.add_sequence(); }
  [[nodiscard]] result<sequence_id> fork(sequence_id source) override {
    return cache_.fork(source);
  }
  status free_sequence(sequence_id s) override { return cache_.free_sequence(s); }
  status clear(sequence_id s) override { return cache_.clear(s); }
  status append(sequence_id s, std::size_t layer, const float* keys, const float* values,
                std::size_t n) override {
    return cache_.append(s, layer, keys, values, n);
  }
  [[nodiscard]] status attention(sequence_id s, std::size_t layer, const float* q,
                                 std::size_t q_heads, float* out, std::size_t n_queries,
                                 std::size_t head_begin, std::size_t head_end,
                                 const attention_options& options) const override {
    return kv::attention(cache_, s, layer, q, q_heads, out, n_queries, head_begin, head_end,
                         options);
  }
  void decode_layer(sequence_id s, std::size_t layer, float* keys, float* values) const override {
    cache_.decode_layer(s, layer, keys, values);
  }
  [[nodiscard]] std::size_t length(sequence_id s, std::size_t layer) const noexcept override {
    return cache_.length(s, layer);
  }
  [[nodiscard]] std::size_t sequence_bytes(sequence_id s) const noexcept override {
    return cache_.sequence_bytes(s);
  }
  [[nodiscard]] double bits_per_value(sequence_id s) const noexcept override {
    return cache_.bits_per_value(s);
  }
  [[nodiscard]] float salient_threshold() const noexcept override {
    if constexpr (mixed) {
      return cache_.config().thresholds.front();
    } else {
      return any_cache::salient_threshold();
    }
  }
  status set_importance(sequence_id s, std::size_t layer, std::size_t position,
                        float score) override {
    if constexpr (mixed) {
      return cache_.set_importance(s, layer, position, score);
    } else {
      return any_cache::set_importance(s, layer, position, score);
    }
  }

 private:
  Cache cache_;
  std::string spec_;
};

}  // namespace detail

/// One registered KV scheme.
struct kv_scheme {
  const char* name;
  const char* description;
  /// Residual window used when the spec does not set one (KIVI: 128 recent tokens in fp32).
  std::size_t default_residual;
  /// Whether make needs calibration samples (it fails without them).
  bool calibrated;
  /// Whether the cache is tiered (any_cache::tiered): the scheme takes salient=X.
  bool tiered;
  /// The cache of `config` (the spec's options applied) named by the canonical `spec`;
  /// `salient`: a tiered scheme's threshold.
  result<std::unique_ptr<any_cache>> (*make)(const cache_config& config, std::string spec,
                                             const kv_samples* calibration, float salient);
};

namespace detail {

template <class Cache>
result<std::unique_ptr<any_cache>> wrap(result<Cache> c, std::string spec) {
  if (!c) return c.error();
  return std::unique_ptr<any_cache>(
      std::make_unique<cache_model<Cache>>(std::move(*c), std::move(spec)));
}

template <class KeyCodec, class ValueCodec>
result<std::unique_ptr<any_cache>> make_cache_model(const cache_config& config, std::string spec,
                                                    const kv_samples*, float) {
  return wrap(cache<KeyCodec, ValueCodec>::create(config), std::move(spec));
}

// A two-tier kv::mixed_cache: tokens whose score reaches `salient` go to the first tier, the
// others to the second. Without a window no token could be scored.
template <class Salient, class Others>
result<std::unique_ptr<any_cache>> make_mixed_model(const cache_config& config, std::string spec,
                                                    const kv_samples*, float salient) {
  if (config.residual_tokens == 0) {
    return status::failure(codec_errors::bad_option,
                           spec + ": tokens are scored in the window: residual must be >= 1");
  }
  return wrap(mixed_cache<Salient, Others>::create({config, {salient}}), std::move(spec));
}

// Codecs fitted per stream to the calibration samples, which must have the cache's shape.
template <class KeyCodec, class ValueCodec>
result<std::unique_ptr<any_cache>> make_calibrated_cache_model(const cache_config& config,
                                                               std::string spec,
                                                               const kv_samples* calibration,
                                                               float) {
  if (calibration == nullptr) {
    return status::failure(errors::bad_calibration, spec + " needs calibration samples");
  }
  if (calibration->layers != config.layers || calibration->kv_heads != config.kv_heads ||
      calibration->head_dim != config.head_dim ||
      (!calibration->key_weights.empty() &&
       calibration->key_weights.size() != config.layers * config.kv_heads * config.head_dim)) {
    return status::failure(errors::bad_calibration, "calibration samples of another model shape");
  }
  result<std::vector<KeyCodec>> keys =
      fit_per_stream<KeyCodec>(*calibration, config.rope.pre_rope ? kv_samples::kind::pre_rope_keys
                                                                  : kv_samples::kind::keys);
  if (!keys) return keys.error();
  result<std::vector<ValueCodec>> values =
      fit_per_stream<ValueCodec>(*calibration, kv_samples::kind::values);
  if (!values) return values.error();
  return wrap(cache<KeyCodec, ValueCodec>::create(config, std::move(*keys), std::move(*values)),
              std::move(spec));
}

}  // namespace detail

// kv_schemes() instantiates a cache for every scheme: a translation unit that calls it (or
// make_cache) takes tens of seconds to compile. A program with several such units may compile the
// table once: define QCODEC_KV_SCHEMES_SEPARATE in all of them, and in exactly one also
// QCODEC_KV_SCHEMES_IMPLEMENTATION (before including this header); the others only declare it.
#if defined(QCODEC_KV_SCHEMES_SEPARATE) && !defined(QCODEC_KV_SCHEMES_IMPLEMENTATION)
[[nodiscard]] std::span<const kv_scheme> kv_schemes();
#else
#ifdef QCODEC_KV_SCHEMES_SEPARATE
#define QCODEC_KV_SCHEMES_LINKAGE
#else
#define QCODEC_KV_SCHEMES_LINKAGE inline
#endif
/// Every KV scheme make_cache knows, in the order tools list them. Adding a scheme is one line.
[[nodiscard]] QCODEC_KV_SCHEMES_LINKAGE std::span<const kv_scheme> kv_schemes() {
  using namespace detail;
  static const kv_scheme schemes[] = {
      {"fp32", "keys and values in fp32 (the reference)", 0, false, false,
       &make_cache_model<fp32_stream, fp32_stream>},
      {"fp16", "keys and values in fp16", 0, false, false,
       &make_cache_model<fp16_stream, fp16_stream>},
      {"q8", "8-bit per-token keys and values, fp16 scale and offset", 0, false, false,
       &make_cache_model<per_token<8>, per_token<8>>},
      {"q4", "4-bit per-token keys and values", 0, false, false,
       &make_cache_model<per_token<4>, per_token<4>>},
      {"kivi4", "KIVI: 4-bit per-channel keys (32-token groups), 4-bit per-token values", 128,
       false, false, &make_cache_model<per_channel<4, 32>, per_token<4>>},
      {"kivi2", "KIVI: 2-bit per-channel keys (32-token groups), 2-bit per-token values", 128,
       false, false, &make_cache_model<per_channel<2, 32>, per_token<2>>},
      {"k4v2", "KIVI-style 4-bit per-channel keys, 2-bit per-token values", 128, false, false,
       &make_cache_model<per_channel<4, 32>, per_token<2>>},
      {"rot4", "randomized Hadamard rotation, then 4-bit per-token keys and values", 0, false,
       false, &make_cache_model<rotated<per_token<4>>, rotated<per_token<4>>>},
      // The 4-bit schemes with values summed with 16-bit weights (weight_format::i16: integer
      // sums, fast on AVX-512 VNNI CPUs at head_dim a multiple of 64 only).
      {"q4-w16", "q4, values summed with 16-bit weights", 0, false, false,
       &make_cache_model<per_token<4>, per_token<4, query_format::i8, weight_format::i16>>},
      {"kivi4-w16", "kivi4, values summed with 16-bit weights", 128, false, false,
       &make_cache_model<per_channel<4, 32>, per_token<4, query_format::i8, weight_format::i16>>},
      {"rot4-w16", "rot4, values summed with 16-bit weights", 0, false, false,
       &make_cache_model<rotated<per_token<4>>,
                         rotated<per_token<4, query_format::i8, weight_format::i16>>>},
      // q4's codes with the keys stored 16 tokens to a unit (token_blocks: VNNI dots without
      // lane reductions; the newest < 16 keys wait in full precision).
      {"q4b", "q4, keys in 16-token blocks", 0, false, false,
       &make_cache_model<token_blocks<4>, per_token<4>>},
      {"q4b-w16", "q4, keys in 16-token blocks, values summed with 16-bit weights", 0, false, false,
       &make_cache_model<token_blocks<4>, per_token<4, query_format::i8, weight_format::i16>>},
      {"rot4b-w16", "rot4, keys in 16-token blocks, values summed with 16-bit weights", 0, false,
       false,
       &make_cache_model<rotated<token_blocks<4>>,
                         rotated<per_token<4, query_format::i8, weight_format::i16>>>},
      // And the values 16 tokens to a unit too (token_rows: their scales one load, not a
      // gather; summed with 16-bit weights; the newest < 16 values wait in full precision).
      {"q4b-rows", "q4b-w16 with the values in 16-token units", 0, false, false,
       &make_cache_model<token_blocks<4>, token_rows<4>>},
      {"rot4b-rows", "rot4b-w16 with the values in 16-token units", 0, false, false,
       &make_cache_model<rotated<token_blocks<4>>, rotated<token_rows<4>>>},
      // And four tokens' codes interleaved, summed with 8-bit weights per 16 tokens
      // (token_quads: vpdpbusd, twice the codes per instruction of 16-bit weights).
      {"q4b-quads", "q4b-rows with 8-bit weights per 16 tokens", 0, false, false,
       &make_cache_model<token_blocks<4>, token_quads<4>>},
      {"rot4b-quads", "rot4b-rows with 8-bit weights per 16 tokens", 0, false, false,
       &make_cache_model<rotated<token_blocks<4>>, rotated<token_quads<4>>>},
      {"kivi4-quads", "kivi4 with the values of q4b-quads", 128, false, false,
       &make_cache_model<per_channel<4, 32>, token_quads<4>>},
      // KIVI-4 keys scored against int8 scaled queries (opt-in: kv/per_channel.hpp).
      {"kivi4-q8", "kivi4, keys scored against int8 scaled queries", 128, false, false,
       &make_cache_model<per_channel<4, 32, query_format::i8>, per_token<4>>},
      {"kivi4-q8-quads", "kivi4-quads, keys scored against int8 scaled queries", 128, false, false,
       &make_cache_model<per_channel<4, 32, query_format::i8>, token_quads<4>>},
      // q8's codes so too: keys in token_blocks (15-bit queries, as q8's), values summed with
      // 15-bit weights per 16 tokens (8-bit weights would be as coarse as the values).
      {"q8b-quads", "q8 with keys in 16-token blocks and values in token_quads<8>", 0, false, false,
       &make_cache_model<token_blocks<8, query_format::i16>, token_quads<8>>},
      {"kivi2-quads", "kivi2 with its values summed as kivi4-quads'", 128, false, false,
       &make_cache_model<per_channel<2, 32>, token_quads<2>>},
      {"kivi2-q8-quads", "kivi2-quads, keys scored against int8 scaled queries", 128, false, false,
       &make_cache_model<per_channel<2, 32, query_format::i8>, token_quads<2>>},
      {"rot3", "randomized Hadamard rotation, then 3-bit per-token keys and values", 0, false,
       false, &make_cache_model<rotated<per_token<3>>, rotated<per_token<3>>>},
      {"turbo3", "TurboQuant: fp16 norm, rotation, 3-bit Lloyd-Max codes, keys and values", 0,
       false, false, &make_cache_model<turbo<3>, turbo<3>>},
      {"turbo4", "TurboQuant: fp16 norm, rotation, 4-bit Lloyd-Max codes, keys and values", 0,
       false, false, &make_cache_model<turbo<4>, turbo<4>>},
      {"kivi2-o1", "KIVI-2 with 1% of each key kept exactly (KVQuant dense-and-sparse keys)", 128,
       false, false, &make_cache_model<outliers<per_channel<2, 32>, 10>, per_token<2>>},
      // GEAR on KIVI, both streams, as the paper applies it: 64-token groups, rank 2, 2% of the
      // entries kept exactly; at head_dim 128 the correction costs 0.75 + 0.64 bits per value.
      {"gear2", "GEAR: KIVI-2 keys and values + rank-2 residual + 2% sparse (64-token groups)", 128,
       false, false,
       &make_cache_model<gear<per_channel<2, 32>, 2, 20, 64>, gear<per_token<2>, 2, 20, 64>>},
      {"gear4", "GEAR: KIVI-4 keys and values + rank-2 residual + 2% sparse (64-token groups)", 128,
       false, false,
       &make_cache_model<gear<per_channel<4, 32>, 2, 20, 64>, gear<per_token<4>, 2, 20, 64>>},
      // TurboQuant_prod keys (unbiased scores), TurboQuant_mse values (lowest vector MSE).
      {"turbo3-qjl", "TurboQuant: keys 2-bit Lloyd-Max + 1-bit QJL residual sketch, turbo3 values",
       0, false, false, &make_cache_model<turbo_qjl<3>, turbo<3>>},
      // KVQuant-style (calibrated): keys stored before RoPE, every channel with its own
      // Lloyd-Max codebook, bits moved to the channels where the query-weighted error drops
      // most; Bits per value exactly, no per-token or per-group metadata.
      {"cb4", "calibrated per-channel codebooks (pre-RoPE keys), 4-bit keys and values", 0, true,
       false, &make_calibrated_cache_model<channel_codebook<4>, channel_codebook<4>>},
      {"cb-k5v4", "calibrated per-channel codebooks (pre-RoPE keys), 5-bit keys, 4-bit values", 0,
       true, false, &make_calibrated_cache_model<channel_codebook<5>, channel_codebook<4>>},
      {"cb3", "calibrated per-channel codebooks (pre-RoPE keys), 3-bit keys and values", 0, true,
       false, &make_calibrated_cache_model<channel_codebook<3>, channel_codebook<3>>},
      {"cb-k4v2", "calibrated per-channel codebooks (pre-RoPE keys), 4-bit keys, 2-bit values", 0,
       true, false, &make_calibrated_cache_model<channel_codebook<4>, channel_codebook<2>>},
      {"cb-k3v2", "calibrated per-channel codebooks (pre-RoPE keys), 3-bit keys, 2-bit values", 0,
       true, false, &make_calibrated_cache_model<channel_codebook<3>, channel_codebook<2>>},
      {"cb2", "calibrated per-channel codebooks (pre-RoPE keys), 2-bit keys and values", 0, true,
       false, &make_calibrated_cache_model<channel_codebook<2>, channel_codebook<2>>},
      // CQ (calibrated): runs of 2, 4 or 8 channels quantized jointly to one of 256 centroids.
      // Keys before RoPE by default (prerope=0: after it, scored through inner-product tables,
      // but with far more error: KL 1.1 against 0.11 for cq2 on stories260K).
      {"cq4", "coupled quantization CQ-2c8b (pre-RoPE keys), keys and values, 4 bits per value", 0,
       true, false, &make_calibrated_cache_model<coupled_codebook<2, 8>, coupled_codebook<2, 8>>},
      {"cq2", "coupled quantization CQ-4c8b (pre-RoPE keys), keys and values, 2 bits per value", 0,
       true, false, &make_calibrated_cache_model<coupled_codebook<4, 8>, coupled_codebook<4, 8>>},
      {"cq1", "coupled quantization CQ-8c8b (pre-RoPE keys), keys and values, 1 bit per value", 0,
       true, false, &make_calibrated_cache_model<coupled_codebook<8, 8>, coupled_codebook<8, 8>>},
      // Tiered (kv::mixed_cache): the engine scores tokens in a 32-token window; those scoring
      // salient=X or more are stored by the first cache, the others by the second.
      {"mix-q8-kivi2", "tiered: salient tokens 8-bit per-token, the others KIVI-2", 32, false, true,
       &make_mixed_model<cache<per_token<8>, per_token<8>>,
                         cache<per_channel<2, 32>, per_token<2>>>},
      {"mix-kivi4-kivi2", "tiered: salient tokens KIVI-4, the others KIVI-2", 32, false, true,
       &make_mixed_model<cache<per_channel<4, 32>, per_token<4>>,
                         cache<per_channel<2, 32>, per_token<2>>>},
  };
  return schemes;
}
#undef QCODEC_KV_SCHEMES_LINKAGE
#endif

/// Whether the scheme `spec` names needs calibration samples (false for unknown names).
[[nodiscard]] inline bool needs_calibration(std::string_view spec) {
  const std::string_view name = spec.substr(0, spec.find(':'));
  for (const kv_scheme& scheme : kv_schemes()) {
    if (name == scheme.name) return scheme.calibrated;
  }
  return false;
}

/// A cache of the scheme `spec` names ("kivi2", "q4:residual=32,sinks=4"), with `config`'s
/// shape and capacity; calibrated schemes are fitted to `calibration`.
[[nodiscard]] inline result<std::unique_ptr<any_cache>> make_cache(
    std::string_view spec, cache_config config, const kv_samples* calibration = nullptr) {
  result<codec_spec> parsed = codec_spec::parse(spec);
  if (!parsed) return parsed.error();
  if (status s = parsed->only_options({"sinks", "residual", "prerope", "exact", "salient"}); !s) {
    return s;
  }
  for (const kv_scheme& scheme : kv_schemes()) {
    if (parsed->name() != scheme.name) continue;
    const auto& given = parsed->options();
    if (!scheme.tiered && std::any_of(given.begin(), given.end(),
                                      [](const auto& o) { return o.first == "salient"; })) {
      return status::failure(codec_errors::unknown_option,
                             parsed->name() + ": salient (only tiered schemes have it)");
    }
    auto sinks = parsed->get_uint("sinks", config.sink_tokens, 0, config.max_tokens);
    if (!sinks) return sinks.error();
    auto residual = parsed->get_uint("residual", scheme.default_residual, 0, config.max_tokens);
    if (!residual) return residual.error();
    const bool default_pre_rope = scheme.calibrated;
    auto pre_rope = parsed->get_uint("prerope", default_pre_rope ? 1 : 0, 0, 1);
    if (!pre_rope) return pre_rope.error();
    auto exact = parsed->get_uint("exact", float_bytes(config.exact_format) * 8, 16, 32);
    if (!exact) return exact.error();
    if (*exact != 16 && *exact != 32) {
      return status::failure(codec_errors::bad_option,
                             parsed->name() + ": exact=" + std::to_string(*exact) + " (16 or 32)");
    }
    // The canonical spec writes an option that is not the plain default (no sinks, fp32, the
    // scheme's residual and RoPE placement) or that differs from the config's: it describes the
    // cache, and parses back to it with the same config.
    std::string options;
    const auto write = [&](const char* key, std::size_t value, bool shown) {
      if (!shown) return;
      if (!options.empty()) options += ',';
      options.append(key).append("=").append(std::to_string(value));
    };
    write("sinks", *sinks, *sinks != 0 || *sinks != config.sink_tokens);
    write("exact", *exact, *exact != 32 || *exact != float_bytes(config.exact_format) * 8);
    write("residual", *residual, *residual != scheme.default_residual);
    write("prerope", *pre_rope, (*pre_rope == 1) != default_pre_rope);
    auto salient =
        parsed->get_float("salient", importance_threshold, 0.0f, std::numeric_limits<float>::max());
    if (!salient) return salient.error();
    if (*salient != importance_threshold) {
      options.append(options.empty() ? "" : ",").append("salient=").append(float_text(*salient));
    }
    config.sink_tokens = *sinks;
    config.residual_tokens = *residual;
    config.rope.pre_rope = *pre_rope == 1;
    config.exact_format = *exact == 16 ? float_format::f16 : float_format::f32;
    std::string canonical = scheme.name;
    if (!options.empty()) canonical += ":" + options;
    return scheme.make(config, std::move(canonical), calibration, *salient);
  }
  return status::failure(codec_errors::unknown_codec,
                         parsed->name() + " (kv_schemes() lists the KV schemes)");
}

}  // namespace qcodec::kv
