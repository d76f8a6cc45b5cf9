// Splitting one decode-attention step over an engine's own threads.
//
// kv::attention handles a range of KV heads (and the query heads that share them), so an engine
// can hand each of its worker threads a slice of the heads. The cache must not be appended to
// while attention runs; attention itself only reads it. Here two std::threads each take half of
// the 8 KV heads, and the result is checked against one call over all heads.
#include <qcodec/core/rng.hpp>
#include <qcodec/kv.hpp>

#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

int main() {
  namespace kv = qcodec::kv;
  kv::cache_config config;
  config.layers = 1;
  config.kv_heads = 8;
  config.head_dim = 128;
  constexpr std::size_t q_heads = 32, tokens = 4096;

  auto made = kv::make_cache("kivi4", config);
  if (!made) {
    std::fprintf(stderr, "%s\n", made.error().message().c_str());
    return 1;
  }
  kv::any_cache& cache = **made;
  const kv::sequence_id seq = cache.add_sequence();

  qcodec::rng rng(7);
  std::vector<float> k(tokens * 8 * 128), v(k.size()), q(q_heads * 128);
  for (float& x : k) x = rng.normal();
  for (float& x : v) x = rng.normal();
  for (float& x : q) x = 0.1f * rng.normal();
  if (!cache.append(seq, 0, k.data(), v.data(), tokens)) return 1;

  // Two threads, four KV heads (sixteen query heads) each, writing disjoint parts of `out`.
  std::vector<float> out(q.size());
  bool ok[2] = {false, false};
  std::thread workers[2];
  for (int t = 0; t < 2; ++t) {
    workers[t] = std::thread([&, t] {
      const std::size_t first = 4 * static_cast<std::size_t>(t);
      ok[t] = cache.attention(seq, 0, q.data(), q_heads, out.data(), 1, first, first + 4).ok();
    });
  }
  for (std::thread& w : workers) w.join();

  std::vector<float> single(q.size());
  if (!ok[0] || !ok[1] || !cache.attention(seq, 0, q.data(), q_heads, single.data()).ok()) {
    return 1;
  }
  const bool same = std::memcmp(out.data(), single.data(), out.size() * sizeof(float)) == 0;
  std::printf("two threads x 4 KV heads: %s one call over 8 heads\n",
              same ? "identical to" : "DIFFERENT from");
  return same ? 0 : 1;
}
