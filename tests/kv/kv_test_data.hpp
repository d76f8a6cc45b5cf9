#pragma once
// Seeded, transformer-like K/V for the KV cache tests: Gaussian channels of varying scale, a few
// outlier key channels, [token][kv_head][head_dim] as engines produce them.
#include <qcodec/core/rng.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kv_test {

struct kv_data {
  std::size_t tokens, heads, dim;
  std::vector<float> keys, values;  // [token][head][dim]
};

inline kv_data make_kv(std::size_t tokens, std::size_t heads, std::size_t dim, std::uint64_t seed) {
  qcodec::rng rng(seed);
  kv_data d{tokens, heads, dim, std::vector<float>(tokens * heads * dim),
            std::vector<float>(tokens * heads * dim)};
  std::vector<float> channel_scale(heads * dim);
  for (std::size_t i = 0; i < channel_scale.size(); ++i) {
    channel_scale[i] = 0.5f + rng.uniform();
    if (i % dim == 3 || i % dim == dim / 2 + 1) channel_scale[i] *= 10.0f;  // outlier channels
  }
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t i = 0; i < heads * dim; ++i) {
      d.keys[t * heads * dim + i] = channel_scale[i] * rng.normal() + (i % 7 == 0 ? 2.0f : 0.0f);
      d.values[t * heads * dim + i] = rng.normal();
    }
  return d;
}

inline std::vector<float> make_queries(std::size_t n, std::uint64_t seed) {
  qcodec::rng rng(seed);
  std::vector<float> q(n);
  for (float& v : q) v = 0.3f * rng.normal();
  return q;
}

}  // namespace kv_test
