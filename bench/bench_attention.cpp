// One decode step of attention on the compressed KV cache:
//
//   BM_attention_decode/<scheme>/<context>/<head_dim>
//
// 32 query heads over 8 KV heads (GQA 4), one layer, single-threaded, contexts 1024 to 65536.
// Counters: bits_per_value (the cache's own accounting, everything stored), bytes_read (the
// compressed K and V one step reads) and the bandwidth that implies. Compare schemes within one
// run: the fp32 row is the baseline the others' speed-ups are quoted against.
//
//   BM_attention_prefill/<scheme>/<context>/<queries>/<pre_rope>
//
// The same attention for a chunk of queries at the end of the context (head_dim 128), with keys
// stored after RoPE (0) or before it (1).
//
//   BM_attention_model_step/<scheme>/<context>/<head_dim>
//
// One decode step's attention over every layer of a model of that shape, one layer after
// another, as an engine runs it: 16 layers at head_dim 64 (Llama-3.2-1B: 32 query heads over 8
// KV heads) and 32 at head_dim 128 (Llama-3.1-8B), 16k tokens. Each layer is read once a step,
// after every other layer, as in a model; BM_attention_decode repeats one layer's step, so where
// the last-level cache holds a layer (a 16k/64 layer of fp32 is 64 MiB), its time is that
// cache's, not memory's. (A cache that large may hold a whole model's 4-bit layers too: 151-168 MB
// at 16k/64.) Counters as BM_attention_decode's, for the whole step.
#include <qcodec/kv.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.hpp"

namespace {

namespace kv = qcodec::kv;

constexpr std::size_t kv_heads = 8, q_heads = 32;

// The configuration of a cache of up to `context` tokens (8 KV heads).
template <class Cache>
kv::cache_config bench_config(std::size_t context, std::size_t head_dim, std::size_t layers = 1) {
  kv::cache_config config;
  config.layers = layers;
  config.kv_heads = kv_heads;
  config.head_dim = head_dim;
  config.page_tokens = 256;
  config.max_pages = context / 256 + 2;
  // KIVI (per-channel keys over 32 and more tokens) keeps R = 128.
  config.residual_tokens = Cache::key_codec::group_tokens >= 32 ? 128 : 0;
  return config;
}

// n vectors of head_dim keys with a few outlier channels, as real keys have.
std::vector<float> bench_keys(std::size_t n, std::size_t head_dim, std::uint32_t seed) {
  std::vector<float> keys = qcodec_bench::normal_floats(n * head_dim, seed);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i % head_dim == 5 || i % head_dim == 17) keys[i] *= 10.0f;
  }
  return keys;
}

// The cache, created with codecs calibrated on 4096 other vectors of the same distributions
// (fitted once per head_dim and shared by every stream) when its codecs need calibration.
template <class Cache>
qcodec::result<Cache> create_cache(const kv::cache_config& config) {
  using key_codec = typename Cache::key_codec;
  using value_codec = typename Cache::value_codec;
  if constexpr (requires { key_codec::fit(std::span<const float>{}, 0); }) {
    static std::map<std::size_t, std::pair<key_codec, value_codec>> fitted;
    const std::size_t d = config.head_dim;
    if (!fitted.contains(d)) {
      auto k = key_codec::fit(bench_keys(4096, d, 11), d);
      auto v = value_codec::fit(qcodec_bench::normal_floats(4096 * d, 12), d);
      if (!k.ok()) return qcodec::result<Cache>(k.error());
      if (!v.ok()) return qcodec::result<Cache>(v.error());
      fitted.emplace(d, std::pair(std::move(*k), std::move(*v)));
    }
    return Cache::create(config, fitted.at(d).first, fitted.at(d).second);
  } else {
    return Cache::create(config);
  }
}

// A cache of `context` tokens (8 KV heads) in each layer, or an error the benchmark reports.
template <class Cache>
std::optional<Cache> filled_cache(benchmark::State& state, std::size_t context,
                                  std::size_t head_dim, kv::sequence_id& seq, bool pre_rope = false,
                                  std::size_t layers = 1) {
  kv::cache_config config = bench_config<Cache>(context, head_dim, layers);
  config.rope.pre_rope = pre_rope;
  auto cache = create_cache<Cache>(config);
  if (!cache.ok()) {
    state.SkipWithError(cache.error().message().c_str());
    return std::nullopt;
  }
  seq = cache->add_sequence();
  // Filled in chunks to bound memory.
  constexpr std::size_t chunk = 1024;
  const std::size_t row = kv_heads * head_dim;
  const std::vector<float> keys = bench_keys(chunk * kv_heads, head_dim, 1);
  const std::vector<float> values = qcodec_bench::normal_floats(chunk * row, 2);
  for (std::size_t t = 0; t < context; t += chunk) {
    const std::size_t n = std::min(chunk, context - t);
    for (std::size_t layer = 0; layer < layers; ++layer) {
      if (!cache->append(seq, layer, keys.data(), values.data(), n).ok()) {
        state.SkipWithError("append failed");
        return std::nullopt;
      }
    }
  }
  return std::move(*cache);
}

// One decode step over each of `layers` layers in turn per iteration, and the counters.
template <class Cache>
void decode_steps(benchmark::State& state, std::size_t layers) {
  const auto context = static_cast<std::size_t>(state.range(0));
  const auto head_dim = static_cast<std::size_t>(state.range(1));
  kv::sequence_id seq = 0;
  const std::optional<Cache> cache =
      filled_cache<Cache>(state, context, head_dim, seq, false, layers);
  if (!cache) return;
  const std::vector<float> q = qcodec_bench::normal_floats(q_heads * head_dim, 3);
  std::vector<float> out(q.size());
  for (auto _ : state) {
    for (std::size_t layer = 0; layer < layers; ++layer) {
      const qcodec::status s = kv::attention(*cache, seq, layer, q.data(), q_heads, out.data());
      benchmark::DoNotOptimize(out.data());
      if (!s.ok()) state.SkipWithError(s.message().c_str());
    }
  }
  const double bytes = static_cast<double>(cache->sequence_bytes(seq));
  state.counters["bits_per_value"] = cache->bits_per_value(seq);
  state.counters["bytes_read"] = bytes;
  state.counters["read_bandwidth"] =
      benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(qcodec::simd::kernels().arch);
}

template <class Cache>
void BM_attention_decode(benchmark::State& state) {
  decode_steps<Cache>(state, 1);
}

// Llama-3.2-1B's 16 layers at head_dim 64, Llama-3.1-8B's 32 at 128.
template <class Cache>
void BM_attention_model_step(benchmark::State& state) {
  decode_steps<Cache>(state, state.range(1) == 64 ? 16 : 32);
}

// Chunked prefill: the last `queries` positions of the context attend at once (causally), as
// an engine prefilling a prompt in chunks does; keys stored after RoPE, or before it (third
// argument 1). Counter: queries_per_second.
template <class Cache>
void BM_attention_prefill(benchmark::State& state) {
  const auto context = static_cast<std::size_t>(state.range(0));
  const auto queries = static_cast<std::size_t>(state.range(1));
  const bool pre_rope = state.range(2) != 0;
  constexpr std::size_t head_dim = 128;
  kv::sequence_id seq = 0;
  const std::optional<Cache> cache = filled_cache<Cache>(state, context, head_dim, seq, pre_rope);
  if (!cache) return;
  const std::vector<float> q = qcodec_bench::normal_floats(queries * q_heads * head_dim, 3);
  std::vector<float> out(q.size());
  for (auto _ : state) {
    const qcodec::status s = kv::attention(*cache, seq, 0, q.data(), q_heads, out.data(), queries);
    benchmark::DoNotOptimize(out.data());
    if (!s.ok()) state.SkipWithError(s.message().c_str());
  }
  state.counters["queries_per_second"] = benchmark::Counter(
      static_cast<double>(queries), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(qcodec::simd::kernels().arch);
}

// Decode-time appends: one token of every KV head at a time, as an engine appends each step's
// keys and values, to a cache of 4096 tokens at most (then emptied, untimed). With KIVI's R = 128
// exact tokens, every step compresses a unit of values and every 32nd step a unit of keys.
// Counters: the time is per token; bytes_per_second counts its fp32 keys and values (compare
// with BM_memcpy in the same run).
template <class Cache>
void BM_append_decode(benchmark::State& state) {
  const auto head_dim = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t context = 4096, distinct = 256;
  auto cache = Cache::create(bench_config<Cache>(context, head_dim));
  if (!cache.ok()) return state.SkipWithError(cache.error().message().c_str());
  kv::sequence_id seq = cache->add_sequence();
  const std::size_t row = kv_heads * head_dim;
  const std::vector<float> keys = qcodec_bench::normal_floats(distinct * row, 1);
  const std::vector<float> values = qcodec_bench::normal_floats(distinct * row, 2);
  std::size_t length = 0;
  for (auto _ : state) {
    if (length == context) {
      state.PauseTiming();
      if (!cache->free_sequence(seq).ok()) return state.SkipWithError("free_sequence failed");
      seq = cache->add_sequence();
      length = 0;
      state.ResumeTiming();
    }
    const std::size_t at = length % distinct * row;
    if (!cache->append(seq, 0, &keys[at], &values[at], 1).ok()) {
      return state.SkipWithError("append failed");
    }
    ++length;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 2 * row * sizeof(float)));
  state.SetLabel(qcodec::simd::kernels().arch);
}

void shapes(benchmark::internal::Benchmark* b) {
  for (std::int64_t context : {1024, 4096, 16384, 65536})
    for (std::int64_t head_dim : {64, 128}) b->Args({context, head_dim});
  b->Unit(benchmark::kMicrosecond);
}

using fp32 = kv::cache<kv::fp32_stream, kv::fp32_stream>;
using fp16 = kv::cache<kv::fp16_stream, kv::fp16_stream>;
using q8 = kv::cache<kv::per_token<8>, kv::per_token<8>>;
using q4 = kv::cache<kv::per_token<4>, kv::per_token<4>>;
using kivi2 = kv::cache<kv::per_channel<2, 32>, kv::per_token<2>>;
using kivi4 = kv::cache<kv::per_channel<4, 32>, kv::per_token<4>>;
using rotated4 = kv::cache<kv::rotated<kv::per_token<4>>, kv::rotated<kv::per_token<4>>>;

BENCHMARK_TEMPLATE(BM_attention_decode, fp32)->Name("BM_attention_decode/fp32")->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, fp16)->Name("BM_attention_decode/fp16")->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, q8)->Name("BM_attention_decode/q8")->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, q4)->Name("BM_attention_decode/q4")->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, kivi2)->Name("BM_attention_decode/kivi2")->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, kivi4)->Name("BM_attention_decode/kivi4")->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, rotated4)
    ->Name("BM_attention_decode/rotated4")
    ->Apply(shapes);

void prefill_shapes(benchmark::internal::Benchmark* b) {
  b->Args({4096, 64, 0})->Args({4096, 64, 1})->Unit(benchmark::kMillisecond);
}
BENCHMARK_TEMPLATE(BM_attention_prefill, fp32)
    ->Name("BM_attention_prefill/fp32")
    ->Apply(prefill_shapes);
BENCHMARK_TEMPLATE(BM_attention_prefill, kivi4)
    ->Name("BM_attention_prefill/kivi4")
    ->Apply(prefill_shapes);

// 4-bit keys score integer queries by default (per_token: int8, per_channel: 15-bit, as 2-bit
// per_channel keys do); these score the float query, for the same-run comparison.
using q4_floatq = kv::cache<kv::per_token<4, kv::query_format::f32>, kv::per_token<4>>;
using rotated4_floatq =
    kv::cache<kv::rotated<kv::per_token<4, kv::query_format::f32>>, kv::rotated<kv::per_token<4>>>;

BENCHMARK_TEMPLATE(BM_attention_decode, q4_floatq)
    ->Name("BM_attention_decode/q4-floatq")
    ->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, rotated4_floatq)
    ->Name("BM_attention_decode/rotated4-floatq")
    ->Apply(shapes);
using kivi4_floatq = kv::cache<kv::per_channel<4, 32, kv::query_format::f32>, kv::per_token<4>>;
BENCHMARK_TEMPLATE(BM_attention_decode, kivi4_floatq)
    ->Name("BM_attention_decode/kivi4-floatq")
    ->Apply(shapes);
using kivi2_floatq = kv::cache<kv::per_channel<2, 32, kv::query_format::f32>, kv::per_token<2>>;
BENCHMARK_TEMPLATE(BM_attention_decode, kivi2_floatq)
    ->Name("BM_attention_decode/kivi2-floatq")
    ->Apply(shapes);

// 4-bit per-token values summed with 16-bit weights (kv::weight_format::i16: integer sums, VNNI).
using w16_values = kv::per_token<4, kv::query_format::i8, kv::weight_format::i16>;
using q4_w16 = kv::cache<kv::per_token<4>, w16_values>;
using kivi4_w16 = kv::cache<kv::per_channel<4, 32>, w16_values>;
using rotated4_w16 = kv::cache<kv::rotated<kv::per_token<4>>, kv::rotated<w16_values>>;

BENCHMARK_TEMPLATE(BM_attention_decode, q4_w16)->Name("BM_attention_decode/q4-w16")->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, kivi4_w16)
    ->Name("BM_attention_decode/kivi4-w16")
    ->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, rotated4_w16)
    ->Name("BM_attention_decode/rotated4-w16")
    ->Apply(shapes);

// 4-bit per-token keys in blocks of 16 tokens (kv/token_blocks.hpp: integer dots without lane
// reductions), values as above.
using q4_blocks = kv::cache<kv::token_blocks<4>, kv::per_token<4>>;
using q4_blocks_w16 = kv::cache<kv::token_blocks<4>, w16_values>;
using rotated4_blocks_w16 = kv::cache<kv::rotated<kv::token_blocks<4>>, kv::rotated<w16_values>>;

BENCHMARK_TEMPLATE(BM_attention_decode, q4_blocks)
    ->Name("BM_attention_decode/q4-blocks")
    ->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, q4_blocks_w16)
    ->Name("BM_attention_decode/q4-blocks-w16")
    ->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, rotated4_blocks_w16)
    ->Name("BM_attention_decode/rotated4-blocks-w16")
    ->Apply(shapes);

// The same keys, with values in blocks of 16 tokens too (kv/token_rows.hpp: the 16 tokens'
// scales one load instead of a gather; summed with 16-bit weights).
using q4_blocks_rows = kv::cache<kv::token_blocks<4>, kv::token_rows<4>>;
using rotated4_blocks_rows =
    kv::cache<kv::rotated<kv::token_blocks<4>>, kv::rotated<kv::token_rows<4>>>;

BENCHMARK_TEMPLATE(BM_attention_decode, q4_blocks_rows)
    ->Name("BM_attention_decode/q4-blocks-rows")
    ->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, rotated4_blocks_rows)
    ->Name("BM_attention_decode/rotated4-blocks-rows")
    ->Apply(shapes);

// And the values four tokens interleaved, summed with 8-bit weights per block of 16 tokens
// (kv/token_quads.hpp: vpdpbusd, four codes per lane and instruction).
using q4_blocks_quads = kv::cache<kv::token_blocks<4>, kv::token_quads<4>>;
using rotated4_blocks_quads =
    kv::cache<kv::rotated<kv::token_blocks<4>>, kv::rotated<kv::token_quads<4>>>;

BENCHMARK_TEMPLATE(BM_attention_decode, q4_blocks_quads)
    ->Name("BM_attention_decode/q4-blocks-quads")
    ->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, rotated4_blocks_quads)
    ->Name("BM_attention_decode/rotated4-blocks-quads")
    ->Apply(shapes);
// KIVI-4 keys with those values.
using kivi4_quads = kv::cache<kv::per_channel<4, 32>, kv::token_quads<4>>;
BENCHMARK_TEMPLATE(BM_attention_decode, kivi4_quads)
    ->Name("BM_attention_decode/kivi4-quads")
    ->Apply(shapes);
// KIVI-4 keys scored against int8 scaled queries (opt-in: kv/per_channel.hpp), with either
// values.
using kivi4_keys_q8 = kv::per_channel<4, 32, kv::query_format::i8>;
using kivi4_q8 = kv::cache<kivi4_keys_q8, kv::per_token<4>>;
using kivi4_q8_quads = kv::cache<kivi4_keys_q8, kv::token_quads<4>>;
BENCHMARK_TEMPLATE(BM_attention_decode, kivi4_q8)
    ->Name("BM_attention_decode/kivi4-q8")
    ->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, kivi4_q8_quads)
    ->Name("BM_attention_decode/kivi4-q8-quads")
    ->Apply(shapes);
// KIVI-2 so too: its 2-bit values in token_quads' layout, keys against 15-bit or int8 scaled
// queries.
using kivi2_quads = kv::cache<kv::per_channel<2, 32>, kv::token_quads<2>>;
using kivi2_q8_quads = kv::cache<kv::per_channel<2, 32, kv::query_format::i8>, kv::token_quads<2>>;
BENCHMARK_TEMPLATE(BM_attention_decode, kivi2_quads)
    ->Name("BM_attention_decode/kivi2-quads")
    ->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, kivi2_q8_quads)
    ->Name("BM_attention_decode/kivi2-q8-quads")
    ->Apply(shapes);
// 8-bit per-token keys and values on the fast layouts: keys in token_blocks (15-bit queries, as
// q8's), values in token_quads' (15-bit weights per 16 tokens); two vpdpbusd a query or weight
// byte pair.
using q8_blocks_quads = kv::cache<kv::token_blocks<8, kv::query_format::i16>, kv::token_quads<8>>;
BENCHMARK_TEMPLATE(BM_attention_decode, q8_blocks_quads)
    ->Name("BM_attention_decode/q8-blocks-quads")
    ->Apply(shapes);

// The goal's schemes over a model's layers (BM_attention_model_step).
void model_shapes(benchmark::internal::Benchmark* b) {
  b->Args({16384, 64})->Args({16384, 128})->Unit(benchmark::kMillisecond);
}
BENCHMARK_TEMPLATE(BM_attention_model_step, fp32)
    ->Name("BM_attention_model_step/fp32")
    ->Apply(model_shapes);
BENCHMARK_TEMPLATE(BM_attention_model_step, fp16)
    ->Name("BM_attention_model_step/fp16")
    ->Apply(model_shapes);
BENCHMARK_TEMPLATE(BM_attention_model_step, kivi4_q8_quads)
    ->Name("BM_attention_model_step/kivi4-q8-quads")
    ->Apply(model_shapes);
BENCHMARK_TEMPLATE(BM_attention_model_step, q4_blocks_quads)
    ->Name("BM_attention_model_step/q4-blocks-quads")
    ->Apply(model_shapes);
BENCHMARK_TEMPLATE(BM_attention_model_step, rotated4_blocks_quads)
    ->Name("BM_attention_model_step/rotated4-blocks-quads")
    ->Apply(model_shapes);

// TurboQuant (kv/turbo.hpp) and KIVI-2 with 1% dense-and-sparse key outliers (kv/outliers.hpp).
using turbo3 = kv::cache<kv::turbo<3>, kv::turbo<3>>;
using turbo4 = kv::cache<kv::turbo<4>, kv::turbo<4>>;
using kivi2_o1 = kv::cache<kv::outliers<kv::per_channel<2, 32>, 10>, kv::per_token<2>>;

BENCHMARK_TEMPLATE(BM_attention_decode, turbo3)->Name("BM_attention_decode/turbo3")->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, turbo4)->Name("BM_attention_decode/turbo4")->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, kivi2_o1)
    ->Name("BM_attention_decode/kivi2-o1")
    ->Apply(shapes);

void head_dims(benchmark::internal::Benchmark* b) { b->Arg(64)->Arg(128); }
BENCHMARK_TEMPLATE(BM_append_decode, fp32)->Name("BM_append_decode/fp32")->Apply(head_dims);
BENCHMARK_TEMPLATE(BM_append_decode, q4)->Name("BM_append_decode/q4")->Apply(head_dims);
BENCHMARK_TEMPLATE(BM_append_decode, kivi4)->Name("BM_append_decode/kivi4")->Apply(head_dims);

// GEAR on KIVI-2 (kv/gear.hpp) and TurboQuant_prod keys (kv/turbo_qjl.hpp), as kv_schemes()
// registers them.
using gear2 =
    kv::cache<kv::gear<kv::per_channel<2, 32>, 2, 20, 64>, kv::gear<kv::per_token<2>, 2, 20, 64>>;
using turbo3_qjl = kv::cache<kv::turbo_qjl<3>, kv::turbo<3>>;

BENCHMARK_TEMPLATE(BM_attention_decode, gear2)->Name("BM_attention_decode/gear2")->Apply(shapes);
BENCHMARK_TEMPLATE(BM_attention_decode, turbo3_qjl)
    ->Name("BM_attention_decode/turbo3-qjl")
    ->Apply(shapes);

// Coupled quantization (kv/coupled_codebook.hpp), calibrated: CQ-4c8b keys and values, 2 bits
// per value; keys scored through the query's inner-product tables (stored after RoPE).
using cq2 = kv::cache<kv::coupled_codebook<4, 8>, kv::coupled_codebook<4, 8>>;
BENCHMARK_TEMPLATE(BM_attention_decode, cq2)->Name("BM_attention_decode/cq2")->Apply(shapes);

}  // namespace
