// qcodec-eval: what each KV scheme does to real keys, values and attention.
//
//   qcodec-eval --kv DIR [--schemes SPEC,...] [--json FILE] [--csv FILE] [--plot FILE.svg]
//               [--rope-theta 10000] [--model M.bin --tokenizer T.bin --text TEXT [--tokens N]]
//
// DIR holds K/V/Q dumps as .npy, [layer, head, token, head_dim], float16 or float32:
//   k_postrope.npy, v.npy, q_postrope.npy (required); k_prerope.npy (optional).
// The GQA mapping comes from the shapes (query head h uses KV head h / (q_heads / kv_heads)).
// For every scheme (default: every registered KV scheme; the calibrated ones only with a model,
// which samples its own calibration text) and the fp32 reference, it stores each layer in a
// qcodec KV cache (256-token pages, as the example engine's) and reports:
//   bits_per_value     the cache's own accounting, every stored byte counted
//   key_rel_err        relative squared error sum (k' - k)^2 / sum k^2 over all keys
//                      (likewise value_rel_err)
//   score_rel_err      the same for the causal attention logits q.k / sqrt(d)
//   attn_out_rel_err   the same for the causal attention outputs, computed by qcodec's fused
//                      attention on the compressed cache against exact attention on the dump
//   salient_fraction   tiered schemes: the share of tokens whose score reaches salient=X
// and, when k_prerope.npy is present, key_rel_err_prerope / attn_out_rel_err_prerope for a
// cache that stores keys before RoPE (KVQuant) and applies RoPE (interleaved pairs) after
// decoding. Schemes whose cache stores pre-RoPE keys itself (the calibrated ones) are fed
// k_prerope.npy, and their fused attention applies RoPE. Tiered schemes ("mix-...") get each
// token's score as the example engine computes it (its attention share while in the window),
// here from exact attention on the dump. With a llama2.c model, its tokenizer
// and a text, it also runs the example engine (examples/llama) teacher-forced over the first N
// tokens of the text (default 512, BOS included) with each scheme's cache and adds ppl, kl
// (mean KL of the next-token distribution against the fp32 cache) and top1 (agreement of the
// argmax with the fp32 cache).
#include <qcodec/io/npy.hpp>
#include <qcodec/kv.hpp>

#include "../examples/llama/engine.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

constexpr qcodec::error_id bad_usage{qcodec::errc::invalid_argument, "qcodec.eval.1",
                                     "bad command line"};
constexpr qcodec::error_id bad_dump{qcodec::errc::corrupt_data, "qcodec.eval.2",
                                    "inconsistent K/V/Q dump"};
constexpr qcodec::error_id missing_file{qcodec::errc::invalid_argument, "qcodec.eval.3",
                                        "missing file"};
constexpr qcodec::error_id cannot_write{qcodec::errc::invalid_argument, "qcodec.eval.4",
                                        "cannot write the output file"};

constexpr const char* usage_text =
    "usage: qcodec-eval --kv DIR [--schemes SPEC,...] [--json FILE] [--csv FILE]\n"
    "                   [--plot FILE.svg] [--rope-theta THETA]\n"
    "                   [--model M.bin --tokenizer T.bin --text TEXT [--tokens N]]\n";

// A [layer][head][token][dim] tensor.
struct tensor4 {
  std::size_t layers = 0, heads = 0, tokens = 0, dim = 0;
  std::vector<float> data;
  const float* at(std::size_t l, std::size_t h, std::size_t t) const {
    return data.data() + ((l * heads + h) * tokens + t) * dim;
  }
  bool same_shape(const tensor4& o) const {
    return layers == o.layers && heads == o.heads && tokens == o.tokens && dim == o.dim;
  }
};

bool file_exists(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f) std::fclose(f);
  return f != nullptr;
}

qcodec::result<tensor4> load(const std::string& path) {
  if (!file_exists(path)) return qcodec::status::failure(missing_file, path);
  auto a = qcodec::io::read_npy(path);
  if (!a) return qcodec::status::failure(bad_dump, path + ": " + a.error().message());
  if (a->shape.size() != 4) {
    return qcodec::status::failure(bad_dump, path + ": expected [layer, head, token, head_dim]");
  }
  return tensor4{a->shape[0], a->shape[1], a->shape[2], a->shape[3], std::move(a->data)};
}

// RoPE with interleaved pairs (2i, 2i+1), as llama2.c applies it, at position `pos`.
void apply_rope(float* x, std::size_t dim, std::size_t pos, double theta) {
  for (std::size_t i = 0; i + 1 < dim; i += 2) {
    const double freq = 1.0 / std::pow(theta, static_cast<double>(i) / static_cast<double>(dim));
    const double angle = static_cast<double>(pos) * freq;
    const double c = std::cos(angle), s = std::sin(angle);
    const double a = x[i], b = x[i + 1];
    x[i] = static_cast<float>(a * c - b * s);
    x[i + 1] = static_cast<float>(a * s + b * c);
  }
}

struct row {
  std::string scheme;
  double bits_per_value = 0, key_rel_err = 0, value_rel_err = 0, score_rel_err = 0,
         attn_out_rel_err = 0, key_rel_err_prerope = NAN, attn_out_rel_err_prerope = NAN, ppl = NAN,
         kl = NAN, top1 = NAN, salient_fraction = NAN;
};

struct error_sum {
  double err = 0, ref = 0;
  void add(double got, double want) {
    err += (got - want) * (got - want);
    ref += want * want;
  }
  double value() const { return ref > 0 ? err / ref : 0.0; }
};

// Stores the keys (post-RoPE `k`, or `k_pre` when the scheme's cache applies RoPE itself) and
// v of every layer in a cache of `spec`, returns the decoded keys/values and fused-attention
// outputs for all queries, and the cache's bits per value.
struct scheme_run {
  bool pre_rope = false;            // the cache stored k_pre and applied RoPE itself
  std::vector<float> keys, values;  // decoded (keys as stored), [layer][kv_head][token][dim]
  std::vector<float> out;           // fused attention, [layer][token][q_head][dim]
  double bits_per_value = 0;
  double salient = NAN;  // tiered caches: the share of tokens scoring at least salient=X
};

// The importance scores the example engine gives a tiered cache's tokens, from exact attention
// on the dump: kv::reference_attention_shares per layer. [layer][token].
std::vector<float> attention_shares(const tensor4& k, const tensor4& q, std::size_t window) {
  const std::size_t T = k.tokens;
  std::vector<float> shares(k.layers * T);
  for (std::size_t l = 0; l < k.layers; ++l) {
    qcodec::kv::reference_attention_shares(q.at(l, 0, 0), k.at(l, 0, 0), T, q.heads, k.heads, k.dim,
                                           window, &shares[l * T]);
  }
  return shares;
}

qcodec::result<scheme_run> run_scheme(const std::string& spec, const tensor4& k_post,
                                      const tensor4* k_pre, const tensor4& v, const tensor4& q,
                                      double theta, const qcodec::kv::kv_samples* calibration,
                                      bool with_attention) {
  qcodec::kv::cache_config config;
  config.layers = k_post.layers;
  config.kv_heads = k_post.heads;
  config.head_dim = k_post.dim;
  config.page_tokens = 256;  // as the example engine's cache, so bits per value agree
  config.max_pages = k_post.tokens / config.page_tokens + 2;
  config.max_tokens = k_post.tokens;
  config.rope.theta = static_cast<float>(theta);
  auto made = qcodec::kv::make_cache(spec, config, calibration);
  if (!made) return made.error();
  qcodec::kv::any_cache& cache = **made;
  const bool pre_rope = cache.config().rope.pre_rope;
  if (pre_rope && k_pre == nullptr) {
    return qcodec::status::failure(
        bad_dump, spec + " stores keys before RoPE: the dump needs " + "k_prerope.npy");
  }
  const tensor4& k = pre_rope ? *k_pre : k_post;
  const qcodec::kv::sequence_id seq = cache.add_sequence();
  const std::size_t L = k.layers, H = k.heads, T = k.tokens, D = k.dim, Q = q.heads;
  scheme_run run;
  run.pre_rope = pre_rope;
  run.keys.resize(L * H * T * D);
  run.values.resize(run.keys.size());
  run.out.resize(L * T * Q * D);
  std::vector<float> kt(T * H * D), vt(T * H * D), qt(T * Q * D), shares;
  if (cache.tiered()) {  // every layer's scores, and the share of them reaching the threshold
    shares = attention_shares(k_post, q, cache.config().residual_tokens);
    const float threshold = cache.salient_threshold();
    run.salient = static_cast<double>(std::count_if(shares.begin(), shares.end(),
                                                    [&](float x) { return x >= threshold; })) /
                  static_cast<double>(shares.size());
  }
  for (std::size_t l = 0; l < L; ++l) {
    for (std::size_t t = 0; t < T; ++t) {
      for (std::size_t h = 0; h < H; ++h) {
        std::memcpy(&kt[(t * H + h) * D], k.at(l, h, t), D * sizeof(float));
        std::memcpy(&vt[(t * H + h) * D], v.at(l, h, t), D * sizeof(float));
      }
      for (std::size_t h = 0; h < Q; ++h) std::memcpy(&qt[(t * Q + h) * D], q.at(l, h, t), D * 4);
    }
    if (cache.tiered()) {  // one token at a time, each scored while it is in the window
      for (std::size_t t = 0; t < T; ++t) {
        if (auto s = cache.append(seq, l, &kt[t * H * D], &vt[t * H * D], 1); !s) return s;
        if (auto s = cache.set_importance(seq, l, t, shares[l * T + t]); !s) return s;
      }
    } else if (auto s = cache.append(seq, l, kt.data(), vt.data(), T); !s) {
      return s;
    }
    cache.decode_layer(seq, l, &run.keys[l * H * T * D], &run.values[l * H * T * D]);
    if (with_attention) {
      if (auto s = cache.attention(seq, l, qt.data(), Q, &run.out[l * T * Q * D], T); !s) return s;
    }
  }
  run.bits_per_value = cache.bits_per_value(seq);
  return run;
}

// Keys [layer][head][token][dim] with RoPE applied at each token's position.
std::vector<float> roped(std::vector<float> keys, const tensor4& shape, double theta) {
  for (std::size_t lh = 0; lh < shape.layers * shape.heads; ++lh)
    for (std::size_t t = 0; t < shape.tokens; ++t)
      apply_rope(&keys[(lh * shape.tokens + t) * shape.dim], shape.dim, t, theta);
  return keys;
}

// Causal attention outputs [layer][token][q_head][dim] of q over (keys, values) laid out
// [layer][kv_head][token][dim], exactly (double precision).
std::vector<float> exact_attention(const float* keys, const float* values, const tensor4& q,
                                   std::size_t kv_heads) {
  const std::size_t L = q.layers, T = q.tokens, D = q.dim, Q = q.heads, group = Q / kv_heads;
  std::vector<float> out(L * T * Q * D);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  for (std::size_t l = 0; l < L; ++l)
    for (std::size_t h = 0; h < Q; ++h) {
      const std::size_t kh = h / group;
      const float* kl = keys + (l * kv_heads + kh) * T * D;
      const float* vl = values + (l * kv_heads + kh) * T * D;
      for (std::size_t t = 0; t < T; ++t) {
        qcodec::kv::reference_attention(kl, vl, t + 1, D, q.at(l, h, t), scale,
                                        &out[((l * T + t) * Q + h) * D]);
      }
    }
  return out;
}

double rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  error_sum e;
  for (std::size_t i = 0; i < got.size(); ++i) e.add(got[i], want[i]);
  return e.value();
}

double score_rel_err(const std::vector<float>& keys, const tensor4& k, const tensor4& q) {
  error_sum e;
  const std::size_t group = q.heads / k.heads, D = k.dim, T = k.tokens;
  for (std::size_t l = 0; l < k.layers; ++l)
    for (std::size_t h = 0; h < q.heads; ++h)
      for (std::size_t t = 0; t < T; ++t)
        for (std::size_t s = 0; s <= t; ++s) {
          const float* qv = q.at(l, h, t);
          const float* kw = k.at(l, h / group, s);
          const float* kg = &keys[((l * k.heads + h / group) * T + s) * D];
          double want = 0, got = 0;
          for (std::size_t i = 0; i < D; ++i) {
            want += double(qv[i]) * kw[i];
            got += double(qv[i]) * kg[i];
          }
          e.add(got, want);
        }
  return e.value();
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t comma = s.find(',', start);
    // A comma inside an option list ("q4:sinks=4,residual=8") belongs to the spec: an item
    // without ':' directly after one with options continues it when it looks like key=value.
    std::string item =
        s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!out.empty() && item.find('=') != std::string::npos &&
        item.find(':') == std::string::npos && out.back().find(':') != std::string::npos) {
      out.back() += "," + item;
    } else if (!item.empty()) {
      out.push_back(item);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", v);
  return text;
}

// Rate-distortion curves as a self-contained SVG: bits per value (x, log2) against the
// attention-output error and, when the model ran, against the KL divergence (y, log10).
qcodec::status write_svg(const std::string& path, const std::vector<row>& rows) {
  struct panel {
    const char* title;
    double row::*metric;
  };
  std::vector<panel> panels = {{"attention-output relative error", &row::attn_out_rel_err}};
  if (!rows.empty() && std::isfinite(rows.front().kl)) {
    panels.push_back({"KL divergence vs the fp32 cache (nats)", &row::kl});
  }
  const double width = 640, panel_height = 360, left = 70, right = 20, top = 40, bottom = 45;
  const double xmin = 1, xmax = 32;
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return qcodec::status::failure(cannot_write, path);
  std::fprintf(f,
               "<svg xmlns='http://www.w3.org/2000/svg' width='%g' height='%g' "
               "font-family='sans-serif' font-size='11'>\n<rect width='100%%' height='100%%' "
               "fill='white'/>\n",
               width, panel_height * static_cast<double>(panels.size()));
  for (std::size_t p = 0; p < panels.size(); ++p) {
    const double y0 = panel_height * static_cast<double>(p);
    double ymin = 1e-6;
    for (const row& r : rows) {
      const double v = r.*panels[p].metric;
      if (v > 0 && std::isfinite(v)) ymin = std::min(ymin, v / 2);
    }
    const double ymax = 10;
    auto x_of = [&](double bits) {
      return left + std::log2(std::clamp(bits, xmin, xmax) / xmin) / std::log2(xmax / xmin) *
                        (width - left - right);
    };
    auto y_of = [&](double e) {
      e = std::clamp(e, ymin, ymax);
      return y0 + top +
             std::log10(ymax / e) / std::log10(ymax / ymin) * (panel_height - top - bottom);
    };
    std::fprintf(f, "<text x='%g' y='%g' font-size='13'>%s vs bits per value</text>\n", left,
                 y0 + 22, panels[p].title);
    for (double b = 1; b <= xmax; b *= 2) {
      std::fprintf(f,
                   "<line x1='%g' y1='%g' x2='%g' y2='%g' stroke='#ddd'/>"
                   "<text x='%g' y='%g' text-anchor='middle'>%g</text>\n",
                   x_of(b), y0 + top, x_of(b), y0 + panel_height - bottom, x_of(b),
                   y0 + panel_height - bottom + 15, b);
    }
    for (double e = ymax; e >= ymin; e /= 10) {
      std::fprintf(f,
                   "<line x1='%g' y1='%g' x2='%g' y2='%g' stroke='#ddd'/>"
                   "<text x='%g' y='%g' text-anchor='end'>%g</text>\n",
                   left, y_of(e), width - right, y_of(e), left - 4, y_of(e) + 4, e);
    }
    std::fprintf(f,
                 "<text x='%g' y='%g' text-anchor='middle'>bits per value (all metadata)</text>\n",
                 (left + width - right) / 2, y0 + panel_height - 10);
    for (const row& r : rows) {
      const double v = r.*panels[p].metric;
      if (!std::isfinite(v)) continue;
      std::fprintf(f,
                   "<circle cx='%g' cy='%g' r='4' fill='#1f77b4'/><text x='%g' y='%g'>%s</text>\n",
                   x_of(r.bits_per_value), y_of(v), x_of(r.bits_per_value) + 6, y_of(v) - 6,
                   r.scheme.c_str());
    }
  }
  std::fprintf(f, "</svg>\n");
  std::fclose(f);
  return {};
}

// The model run's inputs: the model, the text's first tokens, and calibration K/V the model
// produced on text it sampled itself (for the calibrated schemes).
struct model_run {
  llama::model model;
  std::vector<int> tokens;
  qcodec::kv::kv_samples calibration;
};

// Loads --model, --tokenizer and --text (checked before any scheme runs) and, when `calibrate`,
// the calibration K/V.
qcodec::result<model_run> load_model(std::map<std::string, std::string>& args, bool calibrate) {
  if (!args.count("model") || !args.count("tokenizer") || !args.count("text")) {
    return qcodec::status::failure(bad_usage, "--model, --tokenizer and --text go together");
  }
  std::size_t max_tokens = 512;
  if (args.count("tokens")) {
    char* end = nullptr;
    max_tokens = std::strtoul(args["tokens"].c_str(), &end, 10);
    if (*end != '\0' || max_tokens < 2 || args["tokens"].find('-') != std::string::npos) {
      return qcodec::status::failure(bad_usage,
                                     "--tokens " + args["tokens"] + " (an integer >= 2)");
    }
  }
  auto m = llama::model::load(args["model"]);
  if (!m) return m.error();
  auto tok = llama::tokenizer::load(args["tokenizer"], m->cfg().vocab_size);
  if (!tok) return tok.error();
  auto text = llama::read_file(args["text"]);
  if (!text) return text.error();
  std::vector<int> tokens = tok->encode(std::string_view(text->data(), text->size()), true, false);
  if (tokens.size() > max_tokens) tokens.resize(max_tokens);
  model_run run{std::move(*m), std::move(tokens), {}};
  if (calibrate) {
    std::fprintf(stderr, "calibrating on 8192 tokens the model samples...\n");
    auto calibration = llama::calibrate(run.model, 8192, 1);
    if (!calibration) return calibration.error();
    run.calibration = std::move(*calibration);
  }
  return run;
}

// Runs the example engine over the text with every scheme; fills ppl / kl / top1 of `rows`
// (same order as `schemes`).
qcodec::status run_model(const model_run& run, const std::vector<std::string>& schemes,
                         std::vector<row>& rows) {
  auto results = llama::evaluate(
      run.model, run.tokens, schemes,
      [&](std::size_t i, const auto&) {
        std::fprintf(stderr, "\rmodel [%-30s] %zu/%zu",
                     std::string(30 * (i + 1) / schemes.size(), '#').c_str(), i + 1,
                     schemes.size());
      },
      &run.calibration);
  std::fprintf(stderr, "\n");
  if (!results) return results.error();
  for (std::size_t i = 0; i < rows.size() && i < results->size(); ++i) {
    rows[i].ppl = (*results)[i].perplexity;
    rows[i].kl = (*results)[i].kl;
    rows[i].top1 = (*results)[i].top1;
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (key.rfind("--", 0) != 0 || i + 1 >= argc) {
      std::fprintf(stderr, "qcodec-eval: [%s] %s: %s\n%s", bad_usage.id, bad_usage.text,
                   key.c_str(), usage_text);
      return 2;
    }
    args[key.substr(2)] = argv[++i];
  }
  for (const auto& [key, value] : args) {
    if (key != "kv" && key != "schemes" && key != "json" && key != "csv" && key != "plot" &&
        key != "rope-theta" && key != "model" && key != "tokenizer" && key != "text" &&
        key != "tokens") {
      std::fprintf(stderr, "qcodec-eval: unknown option --%s\n%s", key.c_str(), usage_text);
      return 2;
    }
  }
  if (!args.count("kv")) {
    std::fprintf(stderr, "qcodec-eval: --kv DIR is required\n%s", usage_text);
    return 2;
  }
  const std::string dir = args["kv"] + "/";
  double theta = 10000.0;
  if (args.count("rope-theta")) {
    char* end = nullptr;
    theta = std::strtod(args["rope-theta"].c_str(), &end);
    // The caches take theta as a float, where a value beyond float's range becomes infinite, and
    // an infinite theta gives every RoPE pair but the first a frequency of 0.
    if (*end != '\0' || !(theta > 1.0) || !(theta <= FLT_MAX)) {
      std::fprintf(stderr, "qcodec-eval: [%s] %s: --rope-theta %s (a finite number > 1)\n",
                   bad_usage.id, bad_usage.text, args["rope-theta"].c_str());
      return 2;
    }
  }
  auto k = load(dir + "k_postrope.npy");
  auto v = load(dir + "v.npy");
  auto q = load(dir + "q_postrope.npy");
  for (const auto* r : {&k, &v, &q}) {
    if (!*r) {
      std::fprintf(stderr, "qcodec-eval: %s\n", r->error().message().c_str());
      return 1;
    }
  }
  // Every dimension non-zero first: the GQA group is q->heads / k->heads (and the modulo below
  // would divide by zero), and an empty dump has nothing to measure.
  if (k->layers == 0 || k->heads == 0 || k->tokens == 0 || k->dim == 0 || q->heads == 0 ||
      !v->same_shape(*k) || q->layers != k->layers || q->tokens != k->tokens || q->dim != k->dim ||
      q->heads % k->heads != 0) {
    std::fprintf(stderr,
                 "qcodec-eval: [%s] %s: shapes K %zux%zux%zux%zu, V %zux%zux%zux%zu, Q "
                 "%zux%zux%zux%zu (need non-zero dimensions, equal K and V, Q with as many "
                 "layers, tokens and dims and a multiple of K's heads)\n",
                 bad_dump.id, bad_dump.text, k->layers, k->heads, k->tokens, k->dim, v->layers,
                 v->heads, v->tokens, v->dim, q->layers, q->heads, q->tokens, q->dim);
    return 1;
  }
  qcodec::result<tensor4> k_pre = qcodec::status::failure(bad_dump, "absent");
  if (file_exists(dir + "k_prerope.npy")) {
    k_pre = load(dir + "k_prerope.npy");
    if (!k_pre) {
      std::fprintf(stderr, "qcodec-eval: %s\n", k_pre.error().message().c_str());
      return 1;
    }
    // It is read with K's shape (the caches, the pre-RoPE reference and the comparisons).
    if (!k_pre->same_shape(*k)) {
      std::fprintf(stderr,
                   "qcodec-eval: [%s] %s: k_prerope.npy is %zux%zux%zux%zu, k_postrope.npy "
                   "%zux%zux%zux%zu (need the same shape)\n",
                   bad_dump.id, bad_dump.text, k_pre->layers, k_pre->heads, k_pre->tokens,
                   k_pre->dim, k->layers, k->heads, k->tokens, k->dim);
      return 1;
    }
  }

  // Calibrated schemes are fitted to K/V a model produces on text it samples, and store keys
  // before RoPE: they need --model and k_prerope.npy.
  const bool with_model = args.count("model") || args.count("tokenizer") || args.count("text");
  std::vector<std::string> schemes = {"fp32"};
  if (args.count("schemes")) {
    for (const std::string& s : split(args["schemes"])) {
      if (s == "fp32") continue;
      if (qcodec::kv::needs_calibration(s) && !with_model) {
        std::fprintf(stderr,
                     "qcodec-eval: %s is calibrated: give --model, --tokenizer and --text (the "
                     "model samples its own calibration text)\n",
                     s.c_str());
        return 1;
      }
      schemes.push_back(s);
    }
  } else {
    for (const auto& s : qcodec::kv::kv_schemes()) {
      if (std::string(s.name) != "fp32" && (!s.calibrated || (with_model && k_pre))) {
        schemes.push_back(s.name);
      }
    }
  }
  const bool calibrate = std::any_of(schemes.begin(), schemes.end(), [](const std::string& s) {
    return qcodec::kv::needs_calibration(s);
  });
  qcodec::result<model_run> model = qcodec::status::failure(bad_usage, "no model");
  if (with_model) {  // checked before any scheme runs
    model = load_model(args, calibrate);
    if (!model) {
      std::fprintf(stderr, "qcodec-eval: %s\n", model.error().message().c_str());
      return 1;
    }
  }
  const qcodec::kv::kv_samples* calibration = calibrate ? &model->calibration : nullptr;

  const std::vector<float> exact = exact_attention(k->data.data(), v->data.data(), *q, k->heads);
  // The pre-RoPE reference: exact attention with RoPE applied to the dump's pre-RoPE keys.
  std::vector<float> exact_pre;
  if (k_pre) {
    const std::vector<float> keys = roped(k_pre->data, *k_pre, theta);
    exact_pre = exact_attention(keys.data(), v->data.data(), *q, k->heads);
  }
  std::vector<row> rows;
  for (std::size_t i = 0; i < schemes.size(); ++i) {
    std::fprintf(stderr, "\r[%-30s] %zu/%zu %-24s",
                 std::string(30 * i / schemes.size(), '#').c_str(), i, schemes.size(),
                 schemes[i].c_str());
    const tensor4* keys_pre = k_pre ? &*k_pre : nullptr;
    auto run = run_scheme(schemes[i], *k, keys_pre, *v, *q, theta, calibration, true);
    if (!run) {
      std::fprintf(stderr, "\nqcodec-eval: %s: %s\n", schemes[i].c_str(),
                   run.error().message().c_str());
      return 1;
    }
    row r;
    r.scheme = schemes[i];
    r.bits_per_value = run->bits_per_value;
    r.salient_fraction = run->salient;
    // A pre-RoPE cache's keys are compared after RoPE too (RoPE is exact, so the errors of the
    // stored keys show through); its fused attention is already the pre-RoPE one.
    const std::vector<float> keys = run->pre_rope ? roped(run->keys, *k_pre, theta) : run->keys;
    r.key_rel_err = rel_err(keys, k->data);
    r.value_rel_err = rel_err(run->values, v->data);
    r.score_rel_err = score_rel_err(keys, *k, *q);
    r.attn_out_rel_err = rel_err(run->out, exact);
    if (run->pre_rope) {  // the pre-RoPE columns compare with the reference from k_prerope.npy
      r.key_rel_err_prerope = rel_err(run->keys, k_pre->data);
      r.attn_out_rel_err_prerope = rel_err(run->out, exact_pre);
    } else if (k_pre) {
      // KVQuant's pre-RoPE keys: the cache stores keys before RoPE, RoPE follows decoding.
      auto pre = run_scheme(schemes[i], *k_pre, nullptr, *v, *q, theta, calibration, false);
      if (!pre) {
        std::fprintf(stderr, "\nqcodec-eval: %s: %s\n", schemes[i].c_str(),
                     pre.error().message().c_str());
        return 1;
      }
      r.key_rel_err_prerope = rel_err(pre->keys, k_pre->data);
      const std::vector<float> pre_keys = roped(pre->keys, *k_pre, theta);
      r.attn_out_rel_err_prerope =
          rel_err(exact_attention(pre_keys.data(), pre->values.data(), *q, k->heads), exact_pre);
    }
    rows.push_back(r);
  }
  std::fprintf(stderr, "\r[%-30s] %zu/%zu %-24s\n", std::string(30, '#').c_str(), schemes.size(),
               schemes.size(), "done");

  if (with_model) {
    if (auto s = run_model(*model, schemes, rows); !s) {
      std::fprintf(stderr, "qcodec-eval: %s\n", s.message().c_str());
      return 1;
    }
  }

  std::printf("%-24s %9s %11s %11s %11s %11s", "scheme", "bits/val", "key_err", "value_err",
              "score_err", "attn_err");
  if (k_pre) std::printf(" %12s %12s", "key_err_pre", "attn_err_pre");
  if (with_model) std::printf(" %9s %10s %7s", "ppl", "kl", "top1");
  std::printf("\n");
  for (const row& r : rows) {
    std::printf("%-24s %9.3f %11.3e %11.3e %11.3e %11.3e", r.scheme.c_str(), r.bits_per_value,
                r.key_rel_err, r.value_rel_err, r.score_rel_err, r.attn_out_rel_err);
    if (k_pre) std::printf(" %12.3e %12.3e", r.key_rel_err_prerope, r.attn_out_rel_err_prerope);
    if (with_model) std::printf(" %9.4f %10.6f %7.4f", r.ppl, r.kl, r.top1);
    std::printf("\n");
  }
  for (const row& r : rows) {
    if (std::isfinite(r.salient_fraction)) {
      std::printf("%s: %.1f%% of the tokens score salient (from exact attention on the dump)\n",
                  r.scheme.c_str(), 100.0 * r.salient_fraction);
    }
  }

  if (args.count("json")) {
    std::FILE* f = std::fopen(args["json"].c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "qcodec-eval: cannot write %s\n", args["json"].c_str());
      return 1;
    }
    std::fprintf(f, "[\n");
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const row& r = rows[i];
      std::fprintf(f,
                   "  {\"scheme\": \"%s\", \"bits_per_value\": %s, \"key_rel_err\": %s, "
                   "\"value_rel_err\": %s, \"score_rel_err\": %s, \"attn_out_rel_err\": %s, "
                   "\"key_rel_err_prerope\": %s, \"attn_out_rel_err_prerope\": %s, \"ppl\": %s, "
                   "\"kl\": %s, \"top1\": %s, \"salient_fraction\": %s}%s\n",
                   r.scheme.c_str(), number(r.bits_per_value).c_str(),
                   number(r.key_rel_err).c_str(), number(r.value_rel_err).c_str(),
                   number(r.score_rel_err).c_str(), number(r.attn_out_rel_err).c_str(),
                   number(r.key_rel_err_prerope).c_str(),
                   number(r.attn_out_rel_err_prerope).c_str(), number(r.ppl).c_str(),
                   number(r.kl).c_str(), number(r.top1).c_str(), number(r.salient_fraction).c_str(),
                   i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, "]\n");
    std::fclose(f);
  }
  if (args.count("csv")) {
    std::FILE* f = std::fopen(args["csv"].c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "qcodec-eval: cannot write %s\n", args["csv"].c_str());
      return 1;
    }
    // Schemes with options contain commas: quoted, as RFC 4180 says.
    std::fprintf(f,
                 "scheme,bits_per_value,key_rel_err,value_rel_err,score_rel_err,attn_out_rel_err,"
                 "key_rel_err_prerope,attn_out_rel_err_prerope%s\n",
                 with_model ? ",ppl,kl,top1" : "");
    const auto cell = [](double x) { return std::isfinite(x) ? number(x) : std::string(); };
    for (const row& r : rows) {
      std::fprintf(f, "\"%s\",%s,%s,%s,%s,%s,%s,%s", r.scheme.c_str(),
                   cell(r.bits_per_value).c_str(), cell(r.key_rel_err).c_str(),
                   cell(r.value_rel_err).c_str(), cell(r.score_rel_err).c_str(),
                   cell(r.attn_out_rel_err).c_str(), cell(r.key_rel_err_prerope).c_str(),
                   cell(r.attn_out_rel_err_prerope).c_str());
      if (with_model) {
        std::fprintf(f, ",%s,%s,%s", cell(r.ppl).c_str(), cell(r.kl).c_str(), cell(r.top1).c_str());
      }
      std::fprintf(f, "\n");
    }
    std::fclose(f);
  }
  if (args.count("plot")) {
    if (auto s = write_svg(args["plot"], rows); !s) {
      std::fprintf(stderr, "qcodec-eval: %s\n", s.message().c_str());
      return 1;
    }
  }
  return 0;
}
