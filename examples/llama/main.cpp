// qcodec_llama: a small Llama inference engine on qcodec's compressed KV cache.
//
//   qcodec_llama MODEL.bin TOKENIZER.bin [--kv SPEC] [--steps N] [--prompt TEXT]
//       greedy generation (llama2.c's `run -t 0`), printing the text as it is produced
//   qcodec_llama MODEL.bin TOKENIZER.bin --ppl TEXT.txt [--kv SPEC[,SPEC...]] [--tokens N]
//       teacher-forced evaluation of the first N tokens of the text (BOS included, default 512)
//       for each KV scheme: perplexity, KL divergence and top-1 agreement against an fp32
//       cache, and what the cache stores (bytes, bits per value with all metadata).
//
// Models and tokenizers are llama2.c's legacy `.bin` exports (see model.hpp, tokenizer.hpp);
// KV specs are those of kv::make_cache ("fp32", "fp16", "q8", "q4", "kivi2", "kivi4", "rot4",
// with options such as "kivi2:residual=32,sinks=4"). Calibrated schemes ("cb4", "cb3", ...:
// per-channel codebooks) are fitted to the K/V of a text the model samples itself first
// (--calibration-tokens tokens, texts from BOS with seeds from --calibration-seed), never to the
// evaluated text.

#include "engine.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>  // isatty

namespace {

constexpr const char* usage =
    "usage: qcodec_llama MODEL.bin TOKENIZER.bin [options]\n"
    "  --kv SPEC[,SPEC...]  KV cache scheme(s) (default fp32); generation uses the first\n"
    "  --steps N            greedy generation: forward passes (default 200)\n"
    "  --prompt TEXT        greedy generation: text after BOS (default none)\n"
    "  --ppl TEXTFILE       evaluate perplexity / KL / top-1 per scheme on the text instead\n"
    "  --tokens N           --ppl: tokens of the text to use, BOS included (default 512)\n"
    "  --calibration-tokens N  tokens the model samples to calibrate cb* schemes (default 8192)\n"
    "  --calibration-seed S    seed of that sampling (default 1)\n";

int fail(const std::string& message) {
  std::fprintf(stderr, "qcodec_llama: %s\n", message.c_str());
  return 1;
}

bool parse_count(const char* s, std::size_t& out) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || *end != '\0' || s[0] == '-') return false;
  out = static_cast<std::size_t>(v);
  return true;
}

// "fp32,kivi2:residual=32,sinks=4,q8" -> {"fp32", "kivi2:residual=32,sinks=4", "q8"}: a comma
// followed by a bare key=value continues the options of the spec before it.
std::vector<std::string> split(std::string_view list) {
  std::vector<std::string> specs;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view piece = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (piece.empty()) continue;
    const std::size_t equals = piece.find('=');
    const bool option = equals != std::string_view::npos &&
                        piece.substr(0, equals).find(':') == std::string_view::npos &&
                        !specs.empty() && specs.back().find(':') != std::string::npos;
    if (option) {
      specs.back().append(",").append(piece);
    } else {
      specs.emplace_back(piece);
    }
  }
  return specs;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  std::string kv_list = "fp32", prompt, text_path;
  std::size_t steps = 200, max_tokens = 512, calibration_tokens = 8192, calibration_seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "-h" || arg == "--help") {
      std::fputs(usage, stdout);
      return 0;
    } else if (arg == "--kv" && has_value) {
      kv_list = argv[++i];
    } else if (arg == "--prompt" && has_value) {
      prompt = argv[++i];
    } else if (arg == "--ppl" && has_value) {
      text_path = argv[++i];
    } else if (arg == "--steps" && has_value) {
      if (!parse_count(argv[++i], steps)) return fail("--steps needs a count");
    } else if (arg == "--tokens" && has_value) {
      if (!parse_count(argv[++i], max_tokens)) return fail("--tokens needs a count");
    } else if (arg == "--calibration-tokens" && has_value) {
      if (!parse_count(argv[++i], calibration_tokens) || calibration_tokens < 2) {
        return fail("--calibration-tokens needs a count of at least 2");
      }
    } else if (arg == "--calibration-seed" && has_value) {
      if (!parse_count(argv[++i], calibration_seed))
        return fail("--calibration-seed needs a number");
    } else if (arg.starts_with("-")) {
      std::fputs(usage, stderr);
      return fail("unknown option or missing value: " + std::string(arg));
    } else {
      positional.emplace_back(arg);
    }
  }
  if (positional.size() != 2) {
    std::fputs(usage, stderr);
    return 2;
  }
  const std::vector<std::string> schemes = split(kv_list);
  if (schemes.empty()) return fail("--kv names no scheme");

  qcodec::result<llama::model> model = llama::model::load(positional[0]);
  if (!model) return fail(model.error().message());
  qcodec::result<llama::tokenizer> tok =
      llama::tokenizer::load(positional[1], model->cfg().vocab_size);
  if (!tok) return fail(tok.error().message());

  // Calibration samples, only when a scheme needs them.
  qcodec::kv::kv_samples calibration;
  const bool calibrate = std::any_of(schemes.begin(), schemes.end(), [](const std::string& s) {
    return qcodec::kv::needs_calibration(s);
  });
  if (calibrate) {
    auto collected = llama::calibrate(*model, calibration_tokens, calibration_seed);
    if (!collected) return fail(collected.error().message());
    calibration = std::move(*collected);
    std::fprintf(stderr, "calibration: K/V of %zu tokens the model sampled (seeds from %zu)\n",
                 calibration.tokens, calibration_seed);
  }
  const qcodec::kv::kv_samples* cal = calibrate ? &calibration : nullptr;

  if (text_path.empty()) {  // greedy generation
    qcodec::result<std::unique_ptr<qcodec::kv::any_cache>> cache =
        qcodec::kv::make_cache(schemes[0], llama::cache_config_for(model->cfg()), cal);
    if (!cache) return fail(cache.error().message());
    const qcodec::status s =
        llama::generate_greedy(*model, *tok, **cache, prompt, steps, [](const std::string& piece) {
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
        });
    // The text alone when redirected (byte for byte what llama2.c prints); a final newline on a
    // terminal.
    if (isatty(fileno(stdout))) std::fputc('\n', stdout);
    return s ? 0 : fail(s.message());
  }

  qcodec::result<std::vector<char>> text = llama::read_file(text_path);
  if (!text) return fail(text.error().message());
  std::vector<int> tokens =
      tok->encode(std::string_view(text->data(), text->size()), /*add_bos=*/true, false);
  if (tokens.size() > max_tokens) tokens.resize(max_tokens);
  if (tokens.size() < 2) return fail(text_path + ": too short (at least two tokens are needed)");
  std::printf("%s: %zu tokens (BOS included), %zu predicted; reference: fp32 cache\n",
              text_path.c_str(), tokens.size(), tokens.size() - 1);
  std::printf("%-28s %10s %10s %8s %10s %8s\n", "kv", "ppl", "kl", "top1", "kv_bytes", "bits/val");
  std::fflush(stdout);
  qcodec::result<std::vector<llama::scheme_result>> results = llama::evaluate(
      *model, tokens, schemes,
      [](std::size_t, const llama::scheme_result& r) {
        std::printf("%-28s %10.4f %10.6f %8.4f %10zu %8.3f\n", r.scheme.c_str(), r.perplexity, r.kl,
                    r.top1, r.kv_bytes, r.bits_per_value);
        std::fflush(stdout);
      },
      cal);
  if (!results) return fail(results.error().message());
  return 0;
}
