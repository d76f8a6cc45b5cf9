// libFuzzer target: spec strings, the text engines and tools pick codecs and KV schemes by
// (configuration files, command lines). The first byte picks what the rest names: a tensor codec
// (make_codec) or a KV-cache scheme (kv::make_cache, on a small cache). Any text must give a
// codec or an error; a codec given must
//   - write a canonical spec that builds a codec with that same spec,
//   - encode and decode a small matrix of a shape it accepts, exactly its encoded_bytes;
// and a cache given must likewise round-trip its spec, take appended tokens (compressed, sinks,
// residual window) and answer attention over them with finite outputs.
#include <qcodec/codec/registry.hpp>
#include <qcodec/kv/any_cache.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace {

// Deterministic data that is not all alike: a few periods of a sine, scaled per row.
std::vector<float> wave(std::size_t n, float scale) {
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = scale * std::sin(0.37f * static_cast<float>(i) + 1.0f);
  return x;
}

void check_codec(std::string_view text) {
  auto codec = qcodec::make_codec(text);
  if (!codec.ok()) return;
  auto again = qcodec::make_codec((*codec)->spec());
  if (!again.ok() || (*again)->spec() != (*codec)->spec()) __builtin_trap();
  for (const std::size_t cols : {16, 32, 64, 256}) {
    constexpr std::size_t rows = 2;
    if (!(*codec)->check_shape(rows, cols).ok()) continue;
    const std::vector<float> x = wave(rows * cols, 3.0f);
    std::vector<std::uint8_t> bytes((*codec)->encoded_bytes(rows, cols));
    (*codec)->encode({x.data(), rows, cols}, bytes);
    std::vector<float> y(rows * cols);
    if (!(*codec)->decode(bytes, {y.data(), rows, cols}).ok()) __builtin_trap();
  }
}

void check_cache(std::string_view text) {
  qcodec::kv::cache_config config;
  config.kv_heads = 2;
  config.head_dim = 64;
  config.page_tokens = 128;
  config.max_pages = 16;
  config.max_tokens = 512;
  auto cache = qcodec::kv::make_cache(text, config);
  if (!cache.ok()) return;  // (calibrated schemes without samples, too: an error, not a crash)
  auto again = qcodec::kv::make_cache((*cache)->spec(), config);
  if (!again.ok() || (*again)->spec() != (*cache)->spec()) __builtin_trap();
  constexpr std::size_t tokens = 300, q_heads = 4;
  const std::size_t row = config.kv_heads * config.head_dim;
  const std::vector<float> keys = wave(tokens * row, 1.5f), values = wave(tokens * row, 0.5f);
  const qcodec::kv::sequence_id s = (*cache)->add_sequence();
  if (!(*cache)->append(s, 0, keys.data(), values.data(), tokens).ok()) __builtin_trap();
  const std::vector<float> q = wave(q_heads * config.head_dim, 1.0f);
  std::vector<float> out(q.size());
  if (!(*cache)->attention(s, 0, q.data(), q_heads, out.data()).ok()) __builtin_trap();
  for (const float o : out) {
    if (!std::isfinite(o)) __builtin_trap();
  }
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
