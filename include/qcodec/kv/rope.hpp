#pragma once
// Rotary position embedding (RoPE, Su et al. 2021), for caches that store keys before it.
//
// KVQuant (Hooper et al. 2024) quantizes keys *before* RoPE: a pre-RoPE channel keeps its
// scale from token to token, while RoPE turns each channel pair into a slowly rotating vector
// whose per-channel range is much wider than its spread within a group of tokens. A cache with
// rope_config::pre_rope stores the keys an engine gives it unrotated and applies the rotation
// of each key's position when scoring it (kv/attention.hpp).
//
// Conventions: interleaved pairs (2i, 2i+1), as llama2.c and GPT-J; half_split pairs
// (i, i + d/2), as Hugging Face's rotate_half. Pair i rotates by pos * theta^(-2i / head_dim).

#include <cmath>
#include <cstddef>

namespace qcodec::kv {

enum class rope_style { interleaved, half_split };

struct rope_config {
  /// Keys are appended before RoPE; attention rotates them at their positions.
  bool pre_rope = false;
  float theta = 10000.0f;
  rope_style style = rope_style::interleaved;
};

/// Rotates `heads` vectors of head_dim (even), one after the other, to position pos.
inline void apply_rope(float* x, std::size_t heads, std::size_t head_dim, std::size_t pos,
                       const rope_config& rope) noexcept {
  const std::size_t half = head_dim / 2;
  for (std::size_t i = 0; i < half; ++i) {
    const float frequency =
        1.0f / std::pow(rope.theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
    const float angle = static_cast<float>(pos) * frequency;
    const float c = std::cos(angle), s = std::sin(angle);
    const std::size_t a = rope.style == rope_style::interleaved ? 2 * i : i;
    const std::size_t b = rope.style == rope_style::interleaved ? 2 * i + 1 : i + half;
    for (std::size_t h = 0; h < heads; ++h) {
      float* v = x + h * head_dim;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
}

}  // namespace qcodec::kv
