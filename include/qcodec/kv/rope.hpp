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

#include <algorithm>
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

namespace detail {
// Channels (a, b) of RoPE pair i.
inline void rope_pair(std::size_t i, std::size_t head_dim, rope_style style, std::size_t& a,
                      std::size_t& b) noexcept {
  a = style == rope_style::interleaved ? 2 * i : i;
  b = style == rope_style::interleaved ? 2 * i + 1 : i + head_dim / 2;
}
// Pair i's angle per position, theta^(-2i / head_dim), in double: angles of long contexts
// (pos * frequency ~ 1e5) keep their precision.
inline double rope_frequency(std::size_t i, std::size_t head_dim, float theta) noexcept {
  return std::pow(static_cast<double>(theta),
                  -static_cast<double>(2 * i) / static_cast<double>(head_dim));
}
}  // namespace detail

/// Rotates `heads` vectors of head_dim (even), one after the other, to position pos.
inline void apply_rope(float* x, std::size_t heads, std::size_t head_dim, std::size_t pos,
                       const rope_config& rope) noexcept {
  for (std::size_t i = 0; i < head_dim / 2; ++i) {
    const double angle = static_cast<double>(pos) * detail::rope_frequency(i, head_dim, rope.theta);
    const auto c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
    std::size_t a = 0, b = 0;
    detail::rope_pair(i, head_dim, rope.style, a, b);
    for (std::size_t h = 0; h < heads; ++h) {
      float* v = x + h * head_dim;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
}

/// Rotates n vectors of head_dim (even), one after the other, to the consecutive positions
/// first, first + 1, ...: what apply_rope does to each, but with one sin and cos per pair for
/// the whole run, then the angle-addition recurrence in double (its rounding error grows by
/// ~1e-16 per step, far below float's), which makes RoPE on a block of cached keys a few
/// multiplies per value.
inline void apply_rope_run(float* x, std::size_t n, std::size_t head_dim, std::size_t first,
                           const rope_config& rope) noexcept {
  constexpr std::size_t chunk = 256;  // pairs whose rotations are tracked at once (on the stack)
  double c[chunk], s[chunk], step_c[chunk], step_s[chunk];
  for (std::size_t p0 = 0; p0 < head_dim / 2; p0 += chunk) {
    const std::size_t pairs = std::min(chunk, head_dim / 2 - p0);
    for (std::size_t i = 0; i < pairs; ++i) {
      const double frequency = detail::rope_frequency(p0 + i, head_dim, rope.theta);
      c[i] = std::cos(static_cast<double>(first) * frequency);
      s[i] = std::sin(static_cast<double>(first) * frequency);
      step_c[i] = std::cos(frequency);
      step_s[i] = std::sin(frequency);
    }
    for (std::size_t t = 0; t < n; ++t) {
      float* v = x + t * head_dim;
      for (std::size_t i = 0; i < pairs; ++i) {
        std::size_t a = 0, b = 0;
        detail::rope_pair(p0 + i, head_dim, rope.style, a, b);
        const auto ci = static_cast<float>(c[i]), si = static_cast<float>(s[i]);
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * ci - x1 * si;
        v[b] = x0 * si + x1 * ci;
        const double next_c = c[i] * step_c[i] - s[i] * step_s[i];
        s[i] = s[i] * step_c[i] + c[i] * step_s[i];
        c[i] = next_c;
      }
    }
  }
}

}  // namespace qcodec::kv
