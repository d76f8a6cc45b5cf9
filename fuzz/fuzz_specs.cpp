// libFuzzer target: spec strings, the text engines and tools pick codecs and KV schemes by
// (configuration files, command lines). The first byte picks what the rest names: a tensor codec
// (make_codec) or a KV-cache scheme (kv::make_cache, on a small cache). Any text must give an
// error or a codec; a codec given must
//   - write a canonical spec that builds a codec with that same spec,
//   - decode what it encodes of a small matrix, for each shape it accepts, to finite values;
// and a cache given must likewise round-trip its spec, take appended tokens (compressed, sinks,
// residual window; for tiered schemes, tokens scored into both tiers) and answer attention over
// them with finite outputs.
#include <qcodec/codec/registry.hpp>
#include <qcodec/core/rng.hpp>
#include <qcodec/kv/any_cache.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace {

// Gaussian rows whose scales differ from row to row, with one outlier column (per-channel and
// outlier codecs see the spread they are built for).
std::vector<float> samples(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  qcodec::rng rng(seed);
  std::vector<float> x(rows * cols);
  for (std::size_t r = 0; r < rows; ++r) {
    const float scale = 0.25f + static_cast<float>(r % 7) * 0.5f;
    for (std::size_t c = 0; c < cols; ++c) {
      x[r * cols + c] = rng.normal() * scale * (c % 16 == 3 ? 6.0f : 1.0f);
    }
  }
  return x;
}

bool all_finite(const std::vector<float>& x) {
  return std::all_of(x.begin(), x.end(), [](float v) { return std::isfinite(v); });
}

void check_codec(std::string_view text) {
  auto codec = qcodec::make_codec(text);
  if (!codec.ok()) return;
  auto again = qcodec::make_codec((*codec)->spec());
  if (!again.ok() || (*again)->spec() != (*codec)->spec()) __builtin_trap();  // not canonical
  for (const std::size_t cols : {16, 32, 64, 256}) {
    constexpr std::size_t rows = 2;
    if (!(*codec)->check_shape(rows, cols).ok()) continue;
    const std::vector<float> x = samples(rows, cols, cols);
    std::vector<std::uint8_t> bytes((*codec)->encoded_bytes(rows, cols));
    (*codec)->encode({x.data(), rows, cols}, bytes);
    std::vector<float> y(rows * cols);
    if (!(*codec)->decode(bytes, {y.data(), rows, cols}).ok()) __builtin_trap();  // its own bytes
    if (!all_finite(y)) __builtin_trap();  // finite data of a few units comes back finite
  }
}

void check_cache(std::string_view text) {
  qcodec::kv::cache_config config;
  config.kv_heads = 2;
  config.head_dim = 64;
  config.page_tokens = 128;
  config.max_pages = 16;
  config.max_tokens = 512;
  auto made = qcodec::kv::make_cache(text, config);
  if (!made.ok()) return;  // (calibrated schemes without samples, too: an error, not a crash)
  qcodec::kv::any_cache& cache = **made;
  auto again = qcodec::kv::make_cache(cache.spec(), config);
  if (!again.ok() || (*again)->spec() != cache.spec()) __builtin_trap();  // not canonical
  constexpr std::size_t tokens = 300, chunk = 20, q_heads = 4;
  const std::size_t row = config.kv_heads * config.head_dim;
  const std::vector<float> keys = samples(tokens * config.kv_heads, config.head_dim, 1);
  const std::vector<float> values = samples(tokens * config.kv_heads, config.head_dim, 2);
  const qcodec::kv::sequence_id s = cache.add_sequence();
  const std::size_t window = cache.config().residual_tokens;
  for (std::size_t t = 0; t < tokens; t += chunk) {
    if (!cache.append(s, 0, &keys[t * row], &values[t * row], chunk).ok()) __builtin_trap();
    if (!cache.tiered()) continue;
    // The chunk's tokens still in the window: every third one salient.
    for (std::size_t p = t + chunk - std::min(chunk, window); p < t + chunk; ++p) {
      if (!cache.set_importance(s, 0, p, p % 3 == 0 ? 1e3f : 0.0f).ok()) __builtin_trap();
    }
  }
  const std::vector<float> q = samples(q_heads, config.head_dim, 3);
  std::vector<float> out(q.size());
  if (!cache.attention(s, 0, q.data(), q_heads, out.data()).ok()) __builtin_trap();
  if (!all_finite(out)) __builtin_trap();  // finite queries, keys and values: finite outputs
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > 256) return 0;  // (specs are short; longer text only slows the search)
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] % 2 == 0) {
    check_codec(text);
  } else {
    check_cache(text);
  }
  return 0;
}
