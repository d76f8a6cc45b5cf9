// qcodec demo: what each KV-cache scheme costs and what it buys, on a seeded, transformer-like
// workload that needs nothing but this repository.
//
// Workload: one layer of an 8B-class model's attention (head_dim 128, 8 KV heads, 32 query
// heads: GQA 4) over a 16384-token context. Keys have the structure real keys have: Gaussian
// channels of different scales, a few outlier channels 10-20x larger, and attention sinks (the
// first tokens' keys align with the queries, so they draw a large share of attention). Values
// are Gaussian. For every registered KV scheme (kv::kv_schemes()) the demo prints
//   bits/value     everything the cache stores, metadata included (its own accounting)
//   32k GiB        KV memory of a 32k-token context of an 8B-class model (32 layers) at that rate
//   attn err       relative error of the decode-attention output against exact fp32 attention
//   speed-up       decode attention time of fp32 / this scheme, measured in this run
// Usage: qcodec_demo [--tokens N]
#include <qcodec/core/rng.hpp>
#include <qcodec/kv.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

namespace kv = qcodec::kv;

constexpr std::size_t head_dim = 128, kv_heads = 8, q_heads = 32, group = q_heads / kv_heads;
constexpr std::size_t sink_tokens = 4;

struct workload {
  std::size_t tokens;
  std::vector<float> keys, values;  // [token][kv_head][head_dim]
  std::vector<float> queries;       // [q_head][head_dim], one decode step
};

workload make_workload(std::size_t tokens, std::uint64_t seed) {
  qcodec::rng rng(seed);
  workload w{tokens, std::vector<float>(tokens * kv_heads * head_dim),
             std::vector<float>(tokens * kv_heads * head_dim),
             std::vector<float>(q_heads * head_dim)};
  std::vector<float> scale(kv_heads * head_dim);
  for (std::size_t i = 0; i < scale.size(); ++i) {
    scale[i] = 0.3f + 0.7f * rng.uniform();
    if (i % head_dim == 7 || i % head_dim == 70) scale[i] *= 12.0f;  // outlier channels
    if (i % head_dim == 126) scale[i] *= 20.0f;
  }
  for (float& v : w.queries) v = 0.25f * rng.normal();
  for (std::size_t t = 0; t < tokens; ++t) {
    for (std::size_t h = 0; h < kv_heads; ++h) {
      float* k = &w.keys[(t * kv_heads + h) * head_dim];
      float* v = &w.values[(t * kv_heads + h) * head_dim];
      for (std::size_t i = 0; i < head_dim; ++i) {
        k[i] = scale[h * head_dim + i] * rng.normal();
        v[i] = rng.normal();
      }
      if (t < sink_tokens) {
        // Sinks: keys along the group's mean query, so every head of the group attends to them.
        for (std::size_t i = 0; i < head_dim; ++i) {
          float mean = 0.0f;
          for (std::size_t g = 0; g < group; ++g) mean += w.queries[(h * group + g) * head_dim + i];
          k[i] += 4.0f * mean;
        }
      }
    }
  }
  return w;
}

// Exact attention of the step's queries over the original keys and values.
std::vector<float> exact_attention(const workload& w) {
  std::vector<float> out(q_heads * head_dim), k(w.tokens * head_dim), v(w.tokens * head_dim);
  for (std::size_t h = 0; h < kv_heads; ++h) {
    for (std::size_t t = 0; t < w.tokens; ++t) {
      std::memcpy(&k[t * head_dim], &w.keys[(t * kv_heads + h) * head_dim], head_dim * 4);
      std::memcpy(&v[t * head_dim], &w.values[(t * kv_heads + h) * head_dim], head_dim * 4);
    }
    for (std::size_t g = 0; g < group; ++g) {
      const std::size_t qh = h * group + g;
      kv::reference_attention(k.data(), v.data(), w.tokens, head_dim, &w.queries[qh * head_dim],
                              1.0f / std::sqrt(float(head_dim)), &out[qh * head_dim]);
    }
  }
  return out;
}

// Seconds per decode-attention step, the median of several timed runs.
double time_attention(const kv::any_cache& cache, kv::sequence_id seq, const workload& w,
                      std::vector<float>& out) {
  using clock = std::chrono::steady_clock;
  std::vector<double> runs;
  for (int r = 0; r < 7; ++r) {
    const auto start = clock::now();
    if (!cache.attention(seq, 0, w.queries.data(), q_heads, out.data()).ok()) std::abort();
    runs.push_back(std::chrono::duration<double>(clock::now() - start).count());
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t tokens = 16384;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--tokens" && i + 1 < argc) {
      tokens = std::strtoul(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: qcodec_demo [--tokens N]\n");
      return 2;
    }
  }
  if (tokens < sink_tokens + 1) tokens = sink_tokens + 1;

  std::printf(
      "qcodec demo: decode attention over %zu tokens, head_dim %zu, %zu KV heads, %zu query "
      "heads (GQA %zu),\nkeys with outlier channels and %zu attention sinks; kernels: %s\n\n",
      tokens, head_dim, kv_heads, q_heads, group, sink_tokens, qcodec::simd::kernels().arch);
  const workload w = make_workload(tokens, 2024);
  const std::vector<float> exact = exact_attention(w);
  double exact_energy = 0.0;
  for (float v : exact) exact_energy += double(v) * v;

  kv::cache_config config;
  config.layers = 1;
  config.kv_heads = kv_heads;
  config.head_dim = head_dim;
  config.page_tokens = 256;
  config.max_pages = tokens / 256 + 2;
  config.max_tokens = tokens;

  // 8B-class model (Llama-3-8B shape): 32 layers x 8 KV heads x 128 dims, keys and values.
  const double values_32k = 32.0 * 8 * 128 * 2 * 32768;
  std::printf("%-12s %10s %10s %12s %10s   %s\n", "scheme", "bits/value", "32k GiB", "attn err",
              "speed-up", "description");
  double fp32_seconds = 0.0;
  for (const kv::kv_scheme& scheme : kv::kv_schemes()) {
    auto made = kv::make_cache(scheme.name, config);
    if (!made) {
      std::fprintf(stderr, "%s: %s\n", scheme.name, made.error().message().c_str());
      return 1;
    }
    kv::any_cache& cache = **made;
    const kv::sequence_id seq = cache.add_sequence();
    if (auto s = cache.append(seq, 0, w.keys.data(), w.values.data(), tokens); !s) {
      std::fprintf(stderr, "%s: %s\n", scheme.name, s.message().c_str());
      return 1;
    }
    std::vector<float> out(q_heads * head_dim);
    const double seconds = time_attention(cache, seq, w, out);
    if (fp32_seconds == 0.0) fp32_seconds = seconds;  // fp32 is the first scheme
    double err = 0.0;
    for (std::size_t i = 0; i < out.size(); ++i)
      err += double(out[i] - exact[i]) * (out[i] - exact[i]);
    const double bits = cache.bits_per_value(seq);
    std::printf("%-12s %10.3f %10.2f %12.3e %9.2fx   %s\n", scheme.name, bits,
                values_32k * bits / 8 / (1u << 30), err / exact_energy, fp32_seconds / seconds,
                scheme.description);
  }
  std::printf(
      "\nbits/value counts every stored byte: codes, scales, the fp32 sink and residual tokens, "
      "page tables.\nSpeed-ups are single-threaded decode-attention times against fp32 in this "
      "run.\n");
  return 0;
}
