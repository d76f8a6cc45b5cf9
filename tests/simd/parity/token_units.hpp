#pragma once
// Shared by the parity tests of the 16-token value units (token_rows.hpp, token_quads.hpp): the
// units' fp16 scales and offsets in front, then codes; and softmax-like weight vectors.
#include <qcodec/core/half.hpp>
#include <qcodec/simd/token_blocks.hpp>  // block_tokens

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace parity {

struct units_buffer {
  std::vector<std::uint8_t> storage;
  const std::uint8_t* in;
};

/// `count` units of `bytes` bytes at `offset` into an exactly sized buffer (AddressSanitizer sees
/// any read past the last byte): random codes, scales in [0, 0.1) and offsets in [-1, 1) as
/// binary16.
inline units_buffer random_units(std::size_t bytes, std::size_t count, std::size_t offset,
                                 std::mt19937& rng) {
  units_buffer b{std::vector<std::uint8_t>(count * bytes + offset), nullptr};
  std::uniform_real_distribution<float> scale(0.0f, 0.1f), shift(-1.0f, 1.0f);
  for (std::size_t u = 0; u < count; ++u) {
    std::uint8_t* unit = b.storage.data() + offset + u * bytes;
    for (std::size_t i = 64; i < bytes; ++i) unit[i] = static_cast<std::uint8_t>(rng());
    for (std::size_t t = 0; t < qcodec::simd::block_tokens; ++t) {
      const qcodec::half s(scale(rng)), o(shift(rng));
      std::memcpy(unit + 2 * t, &s.bits, 2);
      std::memcpy(unit + 32 + 2 * t, &o.bits, 2);
    }
  }
  b.in = b.storage.data() + offset;
  return b;
}

/// Token t's scale (offset == false) or offset in a unit.
inline double unit_param(const std::uint8_t* unit, std::size_t t, bool offset) {
  std::uint16_t h;
  std::memcpy(&h, unit + (offset ? 32 : 0) + 2 * t, 2);
  return qcodec::half::from_bits(h).to_float();
}

/// nq weight vectors over `tokens` tokens, tokens + 1 apart: positive, spread over decades, a
/// few zeros.
inline std::vector<float> softmax_like_weights(std::size_t nq, std::size_t tokens,
                                               std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> p(nq * (tokens + 1), 0.0f);
  for (std::size_t i = 0; i < p.size(); ++i)
    p[i] = i % 11 == 5 ? 0.0f : std::exp(3.0f * normal(rng));
  return p;
}

/// Weight vector 1 of those made zero or tiny (special * (t % 3)), or given one huge, negative
/// or non-finite weight (special at token 20).
inline void make_special(std::vector<float>& p, std::size_t tokens, float special) {
  for (std::size_t t = 0; t < tokens; ++t) {
    float& x = p[(tokens + 1) + t];
    if (special == 0.0f || std::fabs(special) < 1e-30f)
      x = special * float(t % 3);
    else if (t == 20)
      x = special;
  }
}

}  // namespace parity
