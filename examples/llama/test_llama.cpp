// End-to-end check of the example engine on the real stories260K model (ctest: example_llama).
//
//   test_llama SHARED_DIR
//
// SHARED_DIR is the project's shared folder (../shared next to the repository). Without its
// model files the test prints why and exits with 77, which ctest reports as skipped. Checks:
//   1. greedy generation, 200 steps from BOS with an fp32 cache, prints exactly
//      data/models/stories260K/expected_greedy_200.txt (llama2.c's test_all.py output);
//   2. the tokenizer encodes data/kv/stories260K/text.txt to the ids of tokens.npy (its first
//      512 tokens, BOS first);
//   3. the teacher-forced fp32 perplexity over those tokens is the 3.259 of
//      data/kv/stories260K/README.md, and lossy and tiered caches move the distribution as
//      expected;
//   4. the importance scores the engine gives a tiered cache's tokens are their attention
//      shares (engine.hpp), recomputed here from the queries and keys in double precision;
//      and a step that fails part-way through the layers stops the engine until reset();
//   5. malformed model and tokenizer files give an error, not a crash.

#include "engine.hpp"

#include <qcodec/kv/reference.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s: %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

// A tiered cache for checking the engine's scores: fp32 storage, a window of `window` tokens
// (set_importance accepts exactly those), and the last score each token got. It can also refuse
// appends to some layers, as a full cache would.
class recording_cache final : public qcodec::kv::any_cache {
 public:
  recording_cache(std::unique_ptr<any_cache> fp32, std::size_t window)
      : inner_(std::move(fp32)), config_(inner_->config()) {
    config_.residual_tokens = window;
    scores_.resize(config_.layers);
  }
  [[nodiscard]] float score(std::size_t layer, std::size_t position) const {
    return position < scores_[layer].size() ? scores_[layer][position] : NAN;
  }
  /// Appends to layers >= `layer` fail from now on (SIZE_MAX: none do).
  void refuse_appends_from(std::size_t layer) noexcept { refused_from_ = layer; }

  [[nodiscard]] std::string spec() const override { return "recording"; }
  [[nodiscard]] const qcodec::kv::cache_config& config() const noexcept override { return config_; }
  [[nodiscard]] qcodec::kv::sequence_id add_sequence() override { return inner_->add_sequence(); }
  [[nodiscard]] qcodec::result<qcodec::kv::sequence_id> fork(qcodec::kv::sequence_id s) override {
    return inner_->fork(s);
  }
  qcodec::status free_sequence(qcodec::kv::sequence_id s) override {
    return inner_->free_sequence(s);
  }
  qcodec::status clear(qcodec::kv::sequence_id s) override { return inner_->clear(s); }
  qcodec::status append(qcodec::kv::sequence_id s, std::size_t layer, const float* keys,
                        const float* values, std::size_t n) override {
    if (layer >= refused_from_) return qcodec::status::failure(qcodec::kv::errors::out_of_pages);
    return inner_->append(s, layer, keys, values, n);
  }
  [[nodiscard]] qcodec::status attention(qcodec::kv::sequence_id s, std::size_t layer,
                                         const float* q, std::size_t q_heads, float* out,
                                         std::size_t n_queries, std::size_t head_begin,
                                         std::size_t head_end,
                                         const qcodec::kv::attention_options& o) const override {
    return inner_->attention(s, layer, q, q_heads, out, n_queries, head_begin, head_end, o);
  }
  void decode_layer(qcodec::kv::sequence_id s, std::size_t layer, float* k,
                    float* v) const override {
    inner_->decode_layer(s, layer, k, v);
  }
  [[nodiscard]] std::size_t length(qcodec::kv::sequence_id s,
                                   std::size_t layer) const noexcept override {
    return inner_->length(s, layer);
  }
  [[nodiscard]] std::size_t sequence_bytes(qcodec::kv::sequence_id s) const noexcept override {
    return inner_->sequence_bytes(s);
  }
  [[nodiscard]] double bits_per_value(qcodec::kv::sequence_id s) const noexcept override {
    return inner_->bits_per_value(s);
  }
  [[nodiscard]] float salient_threshold() const noexcept override {
    return qcodec::kv::importance_threshold;  // a threshold makes the cache tiered
  }
  qcodec::status set_importance(qcodec::kv::sequence_id s, std::size_t layer, std::size_t position,
                                float score) override {
    const std::size_t n = length(s, layer);
    if (position >= n || position + config_.residual_tokens < n) {
      return qcodec::status::failure(qcodec::kv::errors::not_in_window, std::to_string(position));
    }
    if (scores_[layer].size() <= position) scores_[layer].resize(position + 1, NAN);
    scores_[layer][position] = score;
    return {};
  }

 private:
  std::unique_ptr<any_cache> inner_;
  qcodec::kv::cache_config config_;
  std::vector<std::vector<float>> scores_;  // [layer][position]
  std::size_t refused_from_ = SIZE_MAX;
};

// int32 ids of a little-endian `<i4` .npy file of one dimension (data after the header).
std::vector<int> read_npy_int32(const std::vector<char>& bytes) {
  std::vector<int> ids;
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) return ids;
  const std::size_t header =
      10 + static_cast<unsigned char>(bytes[8]) + 256u * static_cast<unsigned char>(bytes[9]);
  const std::string dict(bytes.data() + 10, std::min(bytes.size(), header) - 10);
  if (dict.find("'<i4'") == std::string::npos || header > bytes.size()) return ids;
  ids.resize((bytes.size() - header) / 4);
  std::memcpy(ids.data(), bytes.data() + header, ids.size() * 4);
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: test_llama SHARED_DIR\n");
    return 2;
  }
  const std::filesystem::path shared = argv[1];
  const std::filesystem::path models = shared / "data/models/stories260K";
  const std::filesystem::path kv_dir = shared / "data/kv/stories260K";
  for (const char* f : {"stories260K.bin", "tok512.bin", "expected_greedy_200.txt"}) {
    if (!std::filesystem::exists(models / f)) {
      std::printf("SKIP: %s not found (the shared model data is not on this machine)\n",
                  (models / f).string().c_str());
      return 77;
    }
  }

  qcodec::result<llama::model> model = llama::model::load((models / "stories260K.bin").string());
  if (!model) return std::printf("FAIL: %s\n", model.error().message().c_str()), 1;
  qcodec::result<llama::tokenizer> tok =
      llama::tokenizer::load((models / "tok512.bin").string(), model->cfg().vocab_size);
  if (!tok) return std::printf("FAIL: %s\n", tok.error().message().c_str()), 1;
  const llama::config& c = model->cfg();
  check(c.dim == 64 && c.hidden_dim == 172 && c.n_layers == 5 && c.n_heads == 8 &&
            c.n_kv_heads == 4 && c.vocab_size == 512 && c.max_seq_len == 512 && c.shared_classifier,
        "stories260K header: dim 64, hidden 172, 5 layers, 8/4 heads, vocab 512, tied");

  // 1. Greedy generation.
  {
    auto cache = qcodec::kv::make_cache("fp32", llama::cache_config_for(c));
    if (!cache) return std::printf("FAIL: %s\n", cache.error().message().c_str()), 1;
    std::string text;
    const qcodec::status s = llama::generate_greedy(
        *model, *tok, **cache, "", 200, [&](const std::string& piece) { text += piece; });
    qcodec::result<std::vector<char>> expected =
        llama::read_file((models / "expected_greedy_200.txt").string());
    // The file holds the generated text byte for byte (llama2.c's final newline is not in it).
    const bool same = s && expected && text == std::string(expected->begin(), expected->end());
    check(same, "greedy 200 steps from BOS (fp32 cache) == expected_greedy_200.txt");
    if (!same) std::printf("---- got ----\n%s\n-------------\n", text.c_str());
  }

  // 2 and 3. Tokenizer and perplexity on the dumped text.
  qcodec::result<std::vector<char>> text = llama::read_file((kv_dir / "text.txt").string());
  qcodec::result<std::vector<char>> npy = llama::read_file((kv_dir / "tokens.npy").string());
  if (text && npy) {
    std::vector<int> tokens =
        tok->encode(std::string_view(text->data(), text->size()), true, false);
    const std::vector<int> want = read_npy_int32(*npy);
    if (tokens.size() > 512) tokens.resize(512);
    check(want.size() == 512 && tokens == want, "text.txt encodes to tokens.npy (512 tokens)");

    const std::vector<std::string> schemes = {"fp32"};
    qcodec::result<std::vector<llama::scheme_result>> r = llama::evaluate(*model, tokens, schemes);
    const bool ppl_ok = r && std::fabs((*r)[0].perplexity - 3.259) < 0.002 && (*r)[0].kl == 0.0 &&
                        (*r)[0].top1 == 1.0;
    check(ppl_ok, "fp32 perplexity over 511 predicted tokens = 3.259 (the data's README), KL 0, "
                  "top-1 1");
    if (r) std::printf("      perplexity %.5f\n", (*r)[0].perplexity);

    // The metrics see a lossy cache: fp16 keys and values barely move the distribution, 4-bit
    // per-token codes on this model's outlier key channels move it a lot (issue 5: ppl ~ 11
    // for Q4_0-like blocks), and the accounting halves from fp32 to fp16.
    const std::vector<std::string> lossy = {"fp32", "fp16", "q4"};
    r = llama::evaluate(*model, tokens, lossy);
    const bool lossy_ok = r && (*r)[1].kl > 0.0 && (*r)[1].kl < 1e-4 && (*r)[1].top1 > 0.99 &&
                          (*r)[2].kl > 0.05 && (*r)[2].perplexity > 3.5 &&
                          (*r)[1].kv_bytes * 2 <= (*r)[0].kv_bytes + 64 &&
                          std::fabs((*r)[0].bits_per_value - 32.0) < 0.1;
    check(lossy_ok, "fp16: 0 < KL < 1e-4, top-1 > 0.99, half the bytes; q4: KL > 0.05");
    if (r) {
      for (const llama::scheme_result& x : *r) {
        std::printf("      %-6s ppl %.4f kl %.6f top1 %.4f bytes %zu bits %.3f\n", x.scheme.c_str(),
                    x.perplexity, x.kl, x.top1, x.kv_bytes, x.bits_per_value);
      }
    }
    // Tiered caches (32-token window, 8-bit or KIVI-2 tokens), which the engine scores by the
    // attention each token draws in the window: with salient=0 every token is 8-bit, with an
    // unreachable threshold every token is KIVI-2 (kivi2 with the same window, up to the merge
    // of the tiers' partial attentions), and with the default the tokens that drew at least 4x
    // their uniform share of attention are 8-bit (55% by qcodec-eval's exact scores). Those cut
    // KL to the fp32 cache 5x (0.0256 against 0.1361 when measured); the same share of tokens
    // picked at random, 3x (0.0445).
    const std::vector<std::string> tiered = {"fp32", "mix-q8-kivi2:salient=0", "mix-q8-kivi2",
                                             "mix-q8-kivi2:salient=1e30", "kivi2:residual=32"};
    r = llama::evaluate(*model, tokens, tiered);
    const bool tiered_ok = r && (*r)[1].kl < 1e-4 &&
                           std::fabs((*r)[3].kl - (*r)[4].kl) < 1e-3 * (*r)[4].kl &&
                           (*r)[2].kl > (*r)[1].kl && (*r)[2].kl < 0.25 * (*r)[3].kl;
    check(tiered_ok, "tiered cache: all 8-bit KL < 1e-4, all KIVI-2 = kivi2, scored < 1/4 of it");
    if (r) {
      for (const llama::scheme_result& x : *r) {
        std::printf("      %-26s ppl %.4f kl %.6f top1 %.4f\n", x.scheme.c_str(), x.perplexity,
                    x.kl, x.top1);
      }
    }

    const std::vector<int> bad_tokens = {1, 5, 512};
    check(!llama::evaluate(*model, bad_tokens, schemes).ok(), "a token id >= vocab is refused");
  } else {
    std::printf("SKIP (part): %s not found\n", kv_dir.string().c_str());
  }

  // 4. The engine's importance scores against kv::reference_attention_shares on the queries
  //    (captured as the engine computes them) and the cache's keys.
  {
    constexpr std::size_t window = 8, steps = 40;
    auto fp32 = qcodec::kv::make_cache("fp32", llama::cache_config_for(c));
    if (!fp32) return std::printf("FAIL: %s\n", fp32.error().message().c_str()), 1;
    recording_cache cache(std::move(*fp32), window);
    llama::engine e(*model, cache);
    const std::size_t hd = c.head_dim();
    std::vector<float> queries(c.n_layers * c.n_heads * steps * hd);  // [layer][head][step][dim]
    std::size_t step = 0;
    e.on_query([&](std::size_t l, const float* q) {
      for (std::size_t h = 0; h < c.n_heads; ++h)
        std::copy_n(q + h * hd, hd, &queries[((l * c.n_heads + h) * steps + step) * hd]);
    });
    bool ran = true;
    for (step = 0; step < steps && ran; ++step)
      ran = e.forward(static_cast<int>(step % 7 + 3)).ok();
    double worst = 0.0;
    std::vector<float> keys(c.n_kv_heads * steps * hd), values(keys.size()), want(steps);
    for (std::size_t l = 0; ran && l < c.n_layers; ++l) {
      cache.decode_layer(e.sequence(), l, keys.data(), values.data());  // [kv_head][token][dim]
      qcodec::kv::reference_attention_shares(&queries[l * c.n_heads * steps * hd], keys.data(),
                                             steps, c.n_heads, c.n_kv_heads, hd, window,
                                             want.data());
      for (std::size_t j = 0; j < steps; ++j) {
        const double error = std::fabs(cache.score(l, j) - want[j]) / want[j];
        worst = std::isnan(error) ? INFINITY : std::max(worst, error);  // NaN: never scored
      }
    }
    check(ran && worst < 1e-4,
          "tiered cache: the engine's scores are the attention shares "
          "(rel. error " +
              std::to_string(worst) + ")");
  }

  // 4b. A step that fails after some layers took its token (an append refused at layer 1) stops
  //     the engine until reset(); then it runs as a new one would.
  {
    auto fp32 = qcodec::kv::make_cache("fp32", llama::cache_config_for(c));
    if (!fp32) return std::printf("FAIL: %s\n", fp32.error().message().c_str()), 1;
    recording_cache cache(std::move(*fp32), 8);
    llama::engine e(*model, cache);
    const std::vector<int> tokens = {1, 5, 9, 3, 7};
    const auto run = [&] {  // the logits after all the tokens (empty if a step failed)
      std::vector<float> logits;
      for (int t : tokens) {
        qcodec::result<const float*> r = e.forward(t);
        if (!r) return std::vector<float>{};
        logits.assign(*r, *r + c.vocab_size);
      }
      return logits;
    };
    const std::vector<float> fresh = run();
    bool ran = !fresh.empty() && e.reset().ok();
    for (std::size_t i = 0; ran && i < 2; ++i) ran = e.forward(tokens[i]).ok();
    cache.refuse_appends_from(1);
    const bool failed = !e.forward(tokens[2]).ok();
    cache.refuse_appends_from(SIZE_MAX);
    qcodec::result<const float*> again = e.forward(tokens[2]);
    const bool refused = !again && again.error().id() == llama::errors::step_interrupted.id;
    const bool same = e.reset().ok() && run() == fresh;
    check(ran && failed && refused && same,
          "a step interrupted after layer 0 refuses the next until reset(), then runs as new");
  }

  // 5. Malformed files.
  {
    qcodec::result<std::vector<char>> bytes =
        llama::read_file((models / "stories260K.bin").string());
    std::vector<char> truncated(bytes->begin(), bytes->end() - 4);
    check(!llama::model::parse(truncated, "truncated").ok(), "a truncated model is refused");
    std::vector<char> bad = *bytes;
    const std::int32_t huge = 1 << 30;
    std::memcpy(bad.data(), &huge, 4);  // dim
    check(!llama::model::parse(bad, "bad dim").ok(), "a model with dim 2^30 is refused");
    std::vector<char> header_only(bytes->begin(), bytes->begin() + 20);
    check(!llama::model::parse(header_only, "short").ok(), "a 20-byte model file is refused");
    check(!llama::model::load((models / "no_such_file.bin").string()).ok(),
          "a missing model file is refused");

    qcodec::result<std::vector<char>> tb = llama::read_file((models / "tok512.bin").string());
    std::vector<char> cut(tb->begin(), tb->begin() + static_cast<std::ptrdiff_t>(tb->size() / 2));
    check(!llama::tokenizer::parse(cut, 512, "cut").ok(), "a truncated tokenizer is refused");
    check(!llama::tokenizer::parse(*tb, 600, "short").ok(),
          "a tokenizer with fewer tokens than the model's vocab is refused");
    std::vector<char> negative = *tb;
    const std::int32_t minus_one = -1;
    std::memcpy(negative.data() + 8, &minus_one, 4);  // length of token 0
    check(!llama::tokenizer::parse(negative, 512, "negative").ok(),
          "a tokenizer with a negative piece length is refused");
  }

  std::printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
