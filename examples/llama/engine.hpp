#pragma once
// A small Llama inference engine whose KV cache is qcodec's compressed cache.
//
// One decode step (engine::forward) for a token at position pos:
//
//   x = token_embedding[token]
//   for each layer:
//     h = RMSNorm(x) * rms_att
//     q = Wq h, k = Wk h, v = Wv h             q: [n_heads][head_dim], k, v: [n_kv_heads][head_dim]
//     RoPE(q), RoPE(k) at pos                  interleaved pairs (2i, 2i+1), as llama2.c
//     cache.append(k, v)                       keys stored after RoPE, as engines do (or
//                                              before, for caches that apply it: KVQuant)
//     a = cache.attention(q)                   qcodec's fused attention on the compressed cache
//                                              (GQA: query head h reads KV head h / group)
//     (tiered caches: the window's tokens scored by the attention they drew, see below)
//     x += Wo a
//     h = RMSNorm(x) * rms_ffn
//     x += W2 (SiLU(W1 h) * W3 h)              SwiGLU
//   logits = classifier (RMSNorm(x) * rms_final)
//
// The cache is a kv::any_cache, so the codec (fp32, fp16, q8, q4, kivi2/4, rot4, ...) is chosen
// at run time from a spec string; everything else is plain fp32 C++. Matrix-vector products use
// qcodec's fp32 row-dot kernel (the same one attention uses on fp32 rows).
//
// A tiered cache (kv::any_cache::tiered: the "mix-" schemes) stores each token at the precision
// its importance score picks when it leaves the window of the R most recent tokens. The engine
// scores the window as kv::importance_threshold describes: token j's score is its attention
// share, the probability p_t,h(j) each query t that saw it in the window gave it times the t + 1
// tokens that query attended to, averaged over those queries and the query heads. The
// probabilities come from the fused attention's log-sum-exp and the tokens' keys (the engine's
// own fp32 copies of the window's keys).
//
// Also here: greedy generation and the teacher-forced evaluation (perplexity, KL divergence
// and top-1 agreement against an fp32 cache, KV bytes) that `qcodec_llama --ppl` prints and
// that other tools can call (evaluate()).

#include "model.hpp"
#include "tokenizer.hpp"

#include <qcodec/core/result.hpp>
#include <qcodec/core/rng.hpp>
#include <qcodec/core/status.hpp>
#include <qcodec/kv/any_cache.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llama {

namespace kv = qcodec::kv;

// ---- building blocks ---------------------------------------------------------------------

/// y = W x, W row-major [rows][cols]: one dot product per row, with qcodec's row kernel.
inline void matmul(float* y, const float* w, const float* x, std::size_t rows,
                   std::size_t cols) noexcept {
  qcodec::simd::kernels().rows.f32_row_dots(reinterpret_cast<const std::uint8_t*>(w),
                                            cols * sizeof(float), rows, cols, x, 1, y, rows);
}

/// out = x / sqrt(mean(x^2) + eps) * weight, over n values.
inline void rmsnorm(float* out, const float* x, const float* weight, std::size_t n,
                    float eps) noexcept {
  float sum_squares = 0.0f;
  for (std::size_t i = 0; i < n; ++i) sum_squares += x[i] * x[i];
  const float inv_rms = 1.0f / std::sqrt(sum_squares / static_cast<float>(n) + eps);
  for (std::size_t i = 0; i < n; ++i) out[i] = weight[i] * (inv_rms * x[i]);
}

/// log-softmax of n logits, in double (the evaluation sums hundreds of these).
inline void log_softmax(const float* logits, std::size_t n, std::vector<double>& out) {
  out.resize(n);
  const double max = *std::max_element(logits, logits + n);
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  const double log_sum = max + std::log(sum);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<double>(logits[i]) - log_sum;
}

inline int argmax(const float* x, std::size_t n) noexcept {
  return static_cast<int>(std::max_element(x, x + n) - x);  // the first maximum on ties
}

/// The KV cache shape a model needs: one cache layer per transformer layer, kv_heads heads of
/// head_dim, room for max_seq_len tokens. Sinks and the residual window are left to the spec
/// (kv::make_cache takes them from its options or the scheme's defaults).
inline kv::cache_config cache_config_for(const config& c) {
  kv::cache_config k;
  k.layers = c.n_layers;
  k.kv_heads = c.n_kv_heads;
  k.head_dim = c.head_dim();
  k.max_tokens = c.max_seq_len;
  k.page_tokens = 256;
  k.max_pages = c.max_seq_len / k.page_tokens + 1;
  k.rope.theta = c.rope_theta;
  k.rope.style = kv::rope_style::interleaved;  // llama2.c's pairs (2i, 2i+1)
  return k;
}

// ---- the engine ----------------------------------------------------------------------------

/// Decodes one sequence, one token per forward() call, with its K/V in `cache`.
class engine {
 public:
  /// The engine uses a new sequence of `cache` (which must outlive it and have the shape of
  /// cache_config_for(m.cfg())).
  engine(const model& m, kv::any_cache& cache)
      : model_(m), cache_(cache), sequence_(cache.add_sequence()) {
    const config& c = m.cfg();
    x_.resize(c.dim);
    h_.resize(c.dim);
    q_.resize(c.dim);
    attended_.resize(c.dim);
    k_.resize(c.kv_dim());
    v_.resize(c.kv_dim());
    gate_.resize(c.hidden_dim);
    up_.resize(c.hidden_dim);
    logits_.resize(c.vocab_size);
    if (cache.tiered()) {
      lse_.resize(c.n_heads);
      windows_.resize(c.n_layers);
    }
  }
  ~engine() { (void)cache_.free_sequence(sequence_); }
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  /// Tokens decoded so far (the position of the next token).
  [[nodiscard]] std::size_t position() const noexcept { return position_; }
  [[nodiscard]] kv::sequence_id sequence() const noexcept { return sequence_; }
  [[nodiscard]] const kv::any_cache& cache() const noexcept { return cache_; }

  /// Calls f(layer, q) with each layer's queries ([n_heads][head_dim], after RoPE) as they are
  /// computed (for calibration).
  void on_query(std::function<void(std::size_t, const float*)> f) { on_query_ = std::move(f); }

  /// Forgets the sequence (the cache keeps its pages for reuse).
  qcodec::status reset() {
    position_ = 0;
    interrupted_ = false;
    for (window& w : windows_) w.oldest = w.size = 0;  // (keeps the rings' memory)
    return cache_.clear(sequence_);
  }

  /// Runs `token` at the next position; returns the logits of the token after it
  /// ([vocab_size], valid until the next call). A step that fails after some layers took its
  /// token leaves those layers a token ahead of the others (and of the tiered windows): every
  /// later step is refused (errors::step_interrupted) until reset().
  qcodec::result<const float*> forward(int token) {
    if (interrupted_) return qcodec::status::failure(errors::step_interrupted);
    const config& c = model_.cfg();
    if (token < 0 || static_cast<std::size_t>(token) >= c.vocab_size) {
      return qcodec::status::failure(errors::bad_token, std::to_string(token));
    }
    if (position_ >= c.max_seq_len) {
      return qcodec::status::failure(errors::too_long, std::to_string(position_));
    }
    // append() reads kv_heads * head_dim floats per token: the cache must have our shape.
    const kv::cache_config& kc = cache_.config();
    if (kc.layers != c.n_layers || kc.kv_heads != c.n_kv_heads || kc.head_dim != c.head_dim()) {
      return qcodec::status::failure(errors::cache_mismatch, "make it with cache_config_for()");
    }
    const kv::rope_config rope = cache_config_for(c).rope;  // the model's RoPE
    if (kc.rope.pre_rope && (kc.rope.theta != rope.theta || kc.rope.style != rope.style)) {
      return qcodec::status::failure(errors::cache_mismatch, "the cache applies another RoPE");
    }
    const std::size_t dim = c.dim, hd = c.head_dim(), hidden = c.hidden_dim;
    const float* embedding = model_.token_embedding() + static_cast<std::size_t>(token) * dim;
    std::copy(embedding, embedding + dim, x_.begin());

    for (std::size_t l = 0; l < c.n_layers; ++l) {
      const layer_weights& w = model_.layer(l);

      // Attention block.
      rmsnorm(h_.data(), x_.data(), w.rms_att, dim, c.norm_eps);
      matmul(q_.data(), w.wq, h_.data(), c.n_heads * hd, dim);
      matmul(k_.data(), w.wk, h_.data(), c.kv_dim(), dim);
      matmul(v_.data(), w.wv, h_.data(), c.kv_dim(), dim);
      kv::apply_rope(q_.data(), c.n_heads, hd, position_, rope);
      if (on_query_) on_query_(l, q_.data());
      // A pre-RoPE cache rotates the keys itself when it scores them.
      if (!kc.rope.pre_rope) kv::apply_rope(k_.data(), c.n_kv_heads, hd, position_, rope);
      // k_, v_ are [kv_head][head_dim] of one token: the cache's [token][kv_head][head_dim].
      if (qcodec::status s = cache_.append(sequence_, l, k_.data(), v_.data(), 1); !s) return s;
      interrupted_ = true;  // until the step completes: the cache holds part of it
      kv::attention_options options;
      options.log_sum_exp = lse_.empty() ? nullptr : lse_.data();
      if (qcodec::status s = cache_.attention(sequence_, l, q_.data(), c.n_heads, attended_.data(),
                                              1, 0, c.n_kv_heads, options);
          !s) {
        return s;
      }
      if (!windows_.empty()) {
        if (qcodec::status s = score_window(l, rope); !s) return s;
      }
      matmul(h_.data(), w.wo, attended_.data(), dim, c.n_heads * hd);
      for (std::size_t i = 0; i < dim; ++i) x_[i] += h_[i];

      // Feed-forward block (SwiGLU).
      rmsnorm(h_.data(), x_.data(), w.rms_ffn, dim, c.norm_eps);
      matmul(gate_.data(), w.w1, h_.data(), hidden, dim);
      matmul(up_.data(), w.w3, h_.data(), hidden, dim);
      for (std::size_t i = 0; i < hidden; ++i) {
        const float g = gate_[i];
        gate_[i] = g / (1.0f + std::exp(-g)) * up_[i];  // SiLU(g) * up
      }
      matmul(h_.data(), w.w2, gate_.data(), dim, hidden);
      for (std::size_t i = 0; i < dim; ++i) x_[i] += h_[i];
    }

    rmsnorm(x_.data(), x_.data(), model_.rms_final(), dim, c.norm_eps);
    matmul(logits_.data(), model_.classifier(), x_.data(), c.vocab_size, dim);
    ++position_;
    interrupted_ = false;
    return static_cast<const float*>(logits_.data());
  }

 private:
  // A tiered cache's window in one layer, a ring of residual_tokens slots: its tokens' keys
  // after RoPE ([kv_head][head_dim] each) and their summed attention shares, the oldest token in
  // slot `oldest`.
  struct window {
    std::vector<float> keys;
    std::vector<double> shares;
    std::size_t oldest = 0, size = 0;
  };

  // Adds this step's token to the window of layer l (k_: its key, after RoPE unless the cache
  // applies RoPE itself) and gives every window token its score (attention share; header).
  qcodec::status score_window(std::size_t l, const kv::rope_config& rope) {
    const config& c = model_.cfg();
    const std::size_t hd = c.head_dim(), group = c.n_heads / c.n_kv_heads, kv_dim = c.kv_dim();
    const std::size_t slots = cache_.config().residual_tokens;
    if (slots == 0) return {};
    window& w = windows_[l];
    if (w.keys.empty()) {
      w.keys.resize(slots * kv_dim);
      w.shares.resize(slots);
    }
    std::size_t slot = w.oldest;  // when full: the oldest token has left the window
    if (w.size < slots) {
      slot = (w.oldest + w.size++) % slots;
    } else {
      w.oldest = (w.oldest + 1) % slots;
    }
    float* key = &w.keys[slot * kv_dim];
    std::copy(k_.begin(), k_.end(), key);
    if (cache_.config().rope.pre_rope) kv::apply_rope(key, c.n_kv_heads, hd, position_, rope);
    w.shares[slot] = 0.0;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const std::size_t first = position_ + 1 - w.size;
    for (std::size_t j = 0; j < w.size; ++j) {
      const std::size_t at = (w.oldest + j) % slots;
      double p = 0.0;  // summed over the query heads
      for (std::size_t h = 0; h < c.n_heads; ++h) {
        const float* q = &q_[h * hd];
        const float* k = &w.keys[at * kv_dim + h / group * hd];
        float dot = 0.0f;
        for (std::size_t i = 0; i < hd; ++i) dot += q[i] * k[i];
        p += std::exp(static_cast<double>(dot * scale) - lse_[h]);
      }
      w.shares[at] += p * static_cast<double>(position_ + 1) / static_cast<double>(c.n_heads);
      const double queries = static_cast<double>(position_ + 1 - (first + j));
      if (qcodec::status s = cache_.set_importance(sequence_, l, first + j,
                                                   static_cast<float>(w.shares[at] / queries));
          !s) {
        return s;
      }
    }
    return {};
  }

  const model& model_;
  kv::any_cache& cache_;
  kv::sequence_id sequence_;
  std::size_t position_ = 0;
  bool interrupted_ = false;  // a step failed after an append (forward's comment)
  // Activations of one step: x_ the residual stream, h_ a normalised or projected copy.
  std::vector<float> x_, h_, q_, attended_, k_, v_, gate_, up_, logits_;
  std::vector<float> lse_;       // the attention's log-sum-exp per query head (tiered caches)
  std::vector<window> windows_;  // per layer (tiered caches)
  std::function<void(std::size_t, const float*)> on_query_;
};

// ---- generation ----------------------------------------------------------------------------

/// Greedy decoding as llama2.c's `run -t 0` does it: the prompt (BOS, then the encoded text if
/// any) is fed one token per step, then each step feeds the most likely next token, for `steps`
/// forward passes in all (at most max_seq_len) or until the model emits BOS. Every token after
/// the first is passed to on_text as decoded text (unprintable lone bytes dropped).
inline qcodec::status generate_greedy(const model& m, const tokenizer& tok, kv::any_cache& cache,
                                      std::string_view prompt, std::size_t steps,
                                      const std::function<void(const std::string&)>& on_text) {
  const std::vector<int> prompt_tokens = tok.encode(prompt, /*add_bos=*/true, /*add_eos=*/false);
  steps = std::min(steps, m.cfg().max_seq_len);
  engine e(m, cache);
  int token = prompt_tokens[0];
  for (std::size_t pos = 0; pos < steps; ++pos) {
    qcodec::result<const float*> logits = e.forward(token);
    if (!logits) return logits.error();
    const int next = pos + 1 < prompt_tokens.size() ? prompt_tokens[pos + 1]
                                                    : argmax(*logits, m.cfg().vocab_size);
    if (next == tokenizer::bos) break;  // the model starts a new text: stop
    const std::string text = tok.decode(token, next);
    if (tokenizer::printable(text)) on_text(text);
    token = next;
  }
  return {};
}

// ---- calibration ---------------------------------------------------------------------------

/// n tokens the model writes itself from BOS, sampled at temperature 1 with a seeded generator
/// (BOS included; a BOS the model emits is fed back like any token): calibration text for KV
/// codecs that is not the text they are evaluated on.
inline qcodec::result<std::vector<int>> sample_tokens(const model& m, std::size_t n,
                                                      std::uint64_t seed) {
  auto cache = kv::make_cache("fp32", cache_config_for(m.cfg()));
  if (!cache) return cache.error();
  engine e(m, **cache);
  qcodec::rng random(seed);
  std::vector<int> tokens{tokenizer::bos};
  std::vector<double> log_probs;
  while (tokens.size() < std::min(n, m.cfg().max_seq_len)) {
    qcodec::result<const float*> logits = e.forward(tokens.back());
    if (!logits) return logits.error();
    log_softmax(*logits, m.cfg().vocab_size, log_probs);
    double u = static_cast<double>(random.uniform());
    std::size_t next = 0;
    while (next + 1 < log_probs.size() && (u -= std::exp(log_probs[next])) >= 0.0) ++next;
    tokens.push_back(static_cast<int>(next));
  }
  return tokens;
}

/// The keys (before and after RoPE) and values the model computes on `tokens` (fp32 cache),
/// for fitting calibrated KV codecs (kv::make_cache's calibrated schemes).
inline qcodec::result<kv::kv_samples> collect_kv(const model& m, std::span<const int> tokens) {
  const config& c = m.cfg();
  const kv::cache_config kc = cache_config_for(c);
  auto cache = kv::make_cache("fp32:prerope=1", kc);
  if (!cache) return cache.error();
  engine e(m, **cache);
  const std::size_t hd = c.head_dim(), group = c.n_heads / c.n_kv_heads;
  std::vector<double> q_squares(c.n_layers * c.n_kv_heads * hd);
  e.on_query([&](std::size_t layer, const float* q) {  // q: [n_heads][head_dim], after RoPE
    for (std::size_t h = 0; h < c.n_heads; ++h) {
      for (std::size_t i = 0; i < hd; i += 2) {  // an (interleaved) RoPE pair shares its weight
        const double pair = 0.5 * (static_cast<double>(q[h * hd + i]) * q[h * hd + i] +
                                   static_cast<double>(q[h * hd + i + 1]) * q[h * hd + i + 1]);
        double* w = &q_squares[(layer * c.n_kv_heads + h / group) * hd + i];
        w[0] += pair;
        w[1] += pair;
      }
    }
  });
  for (const int t : tokens) {
    if (qcodec::result<const float*> r = e.forward(t); !r) return r.error();
  }
  kv::kv_samples samples;
  for (const double w : q_squares) {
    samples.key_weights.push_back(
        static_cast<float>(w / static_cast<double>(tokens.size() * group)));
  }
  samples.layers = c.n_layers;
  samples.kv_heads = c.n_kv_heads;
  samples.tokens = tokens.size();
  samples.head_dim = c.head_dim();
  const std::size_t per_layer = samples.kv_heads * samples.tokens * samples.head_dim;
  samples.pre_rope_keys.resize(samples.layers * per_layer);
  samples.values.resize(samples.layers * per_layer);
  for (std::size_t l = 0; l < c.n_layers; ++l) {
    (*cache)->decode_layer(e.sequence(), l, samples.pre_rope_keys.data() + l * per_layer,
                           samples.values.data() + l * per_layer);
  }
  samples.keys = samples.pre_rope_keys;  // [layer][head][token][dim]: rotate each to its token
  for (std::size_t i = 0; i < samples.layers * samples.kv_heads * samples.tokens; ++i) {
    kv::apply_rope(&samples.keys[i * samples.head_dim], 1, samples.head_dim, i % samples.tokens,
                   kc.rope);
  }
  return samples;
}

/// Calibration samples from `tokens` tokens the model writes itself: as many texts of up to
/// max_seq_len tokens as needed, sampled with seeds seed, seed + 1, ...
inline qcodec::result<kv::kv_samples> calibrate(const model& m, std::size_t tokens,
                                                std::uint64_t seed) {
  kv::kv_samples all;
  for (std::size_t done = 0; done < tokens; ++seed) {
    const std::size_t n = std::min(tokens - done, m.cfg().max_seq_len);
    if (n < 2) break;
    qcodec::result<std::vector<int>> text = sample_tokens(m, n, seed);
    if (!text) return text.error();
    qcodec::result<kv::kv_samples> samples = collect_kv(m, *text);
    if (!samples) return samples.error();
    if (qcodec::status s = all.append(*samples); !s) return s;
    done += n;
  }
  return all;
}

// ---- evaluation ----------------------------------------------------------------------------

/// What a KV scheme does to the model on a text (teacher forcing: the engine is fed the text's
/// tokens one at a time and predicts each next one).
struct scheme_result {
  std::string scheme;     ///< the cache spec
  std::size_t predicted;  ///< tokens predicted (text tokens - 1)
  double nll;             ///< mean negative log-likelihood of the text's next tokens (nats)
  double perplexity;      ///< exp(nll)
  double kl;              ///< mean KL(p_fp32 || p_scheme) of the next-token distribution (nats)
  double top1;            ///< fraction of positions where the argmax equals the fp32 cache's
  std::size_t kv_bytes;   ///< cache.sequence_bytes() after the whole text
  double bits_per_value;  ///< cache.bits_per_value() after the whole text (all metadata)
};

/// Called after each scheme's run: (index of the scheme, its result).
using evaluation_progress = std::function<void(std::size_t, const scheme_result&)>;

/// Teacher-forced evaluation of `tokens` (BOS first, at most max_seq_len) for each KV cache
/// spec in `schemes`, against an fp32 cache run first as the reference. Each scheme gets a new
/// cache from kv::make_cache(spec, cache_config_for(m.cfg()), calibration).
inline qcodec::result<std::vector<scheme_result>> evaluate(
    const model& m, std::span<const int> tokens, std::span<const std::string> schemes,
    const evaluation_progress& progress = {}, const kv::kv_samples* calibration = nullptr) {
  const config& c = m.cfg();
  const std::size_t vocab = c.vocab_size;
  if (tokens.size() < 2) {
    return qcodec::status::failure(errors::too_short, "it needs at least two tokens");
  }
  if (tokens.size() > c.max_seq_len) {
    return qcodec::status::failure(
        errors::too_long,
        std::to_string(tokens.size()) + " tokens; max_seq_len is " + std::to_string(c.max_seq_len));
  }
  for (const int t : tokens) {
    if (t < 0 || static_cast<std::size_t>(t) >= vocab) {
      return qcodec::status::failure(errors::bad_token, std::to_string(t));
    }
  }
  const std::size_t predicted = tokens.size() - 1;

  // One run: log-probabilities of every position's next-token distribution, [predicted][vocab].
  const auto run = [&](std::string_view spec, std::vector<double>& log_probs,
                       scheme_result& r) -> qcodec::status {
    qcodec::result<std::unique_ptr<kv::any_cache>> cache =
        kv::make_cache(spec, cache_config_for(c), calibration);
    if (!cache) return cache.error();
    engine e(m, **cache);
    log_probs.resize(predicted * vocab);
    std::vector<double> row;
    for (std::size_t pos = 0; pos < predicted; ++pos) {
      qcodec::result<const float*> logits = e.forward(tokens[pos]);
      if (!logits) return logits.error();
      log_softmax(*logits, vocab, row);
      std::copy(row.begin(), row.end(),
                log_probs.begin() + static_cast<std::ptrdiff_t>(pos * vocab));
    }
    r.scheme = (*cache)->spec();  // canonical spec, options included
    r.predicted = predicted;
    r.kv_bytes = (*cache)->sequence_bytes(e.sequence());
    r.bits_per_value = (*cache)->bits_per_value(e.sequence());
    return {};
  };

  std::vector<double> reference, current;
  scheme_result reference_result{};
  if (qcodec::status s = run("fp32", reference, reference_result); !s) return s;

  std::vector<scheme_result> results;
  for (std::size_t i = 0; i < schemes.size(); ++i) {
    scheme_result r{};
    if (schemes[i] == "fp32") {
      current = reference;
      r = reference_result;
    } else if (qcodec::status s = run(schemes[i], current, r); !s) {
      return s;
    }
    double nll = 0.0, kl = 0.0;
    std::size_t agree = 0;
    for (std::size_t pos = 0; pos < predicted; ++pos) {
      const double* p = &reference[pos * vocab];  // log p_fp32
      const double* q = &current[pos * vocab];    // log p_scheme
      nll -= q[static_cast<std::size_t>(tokens[pos + 1])];
      for (std::size_t t = 0; t < vocab; ++t) kl += std::exp(p[t]) * (p[t] - q[t]);
      agree += std::max_element(p, p + vocab) - p == std::max_element(q, q + vocab) - q;
    }
    const double n = static_cast<double>(predicted);
    r.nll = nll / n;
    r.perplexity = std::exp(r.nll);
    r.kl = kl / n;
    r.top1 = static_cast<double>(agree) / n;
    if (progress) progress(i, r);
    results.push_back(r);
  }
  return results;
}

}  // namespace llama
