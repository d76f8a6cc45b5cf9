#pragma once
// outliers<Inner, PerMille>: dense-and-sparse quantization (KVQuant, Hooper et al., "KVQuant:
// Towards 10 Million Context Length LLM Inference with KV Cache Quantization", 2024). Per token,
// the k = ceil(PerMille / 1000 * head_dim) largest-magnitude entries are kept aside (index and
// fp16 value) and zeroed before the Inner codec sees the vector, so Inner's ranges (per-token
// min/max, or per-channel min/max over a group) no longer stretch to cover them. k is fixed, so
// units stay fixed-size.
//
// The sparse part stores the *correction* x_i - inner^_i at each kept index, where inner^ is
// Inner's own reconstruction of the zeroed vector (computed at encode time): decode is
// inner.decode + the sparse corrections, so every kept entry decodes to x_i up to the fp16
// rounding of the correction (|x_i - inner^_i| * 2^-11), whatever Inner reconstructs for 0.
//
// Unit: Inner's unit, then for each of the group_tokens tokens k (index u16, correction fp16)
// pairs. Bits per value: Inner's + 32 k / head_dim (1% of 128 channels: k = 2, +0.5 bit).
//
// Attention: Inner's scores/accumulate run on its units (copied to a contiguous stack buffer in
// chunks, because Inner addresses units at its own stride), then the sparse entries add
// q[i] * c to the token's score, and p_t * c to acc[i]. Inner must work in the model's space
// (per_token, per_channel, fp streams): prepare_query must keep the query in it (the identity,
// or per_token's int8 rounding, which the sparse terms then see too) and finish_output must be
// the identity, for the sparse terms to line up. Not checked (the concept cannot say it): do
// not wrap rotated<...> or turbo<...>.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/half.hpp>
#include <qcodec/kv/stream_codec.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace qcodec::kv {

template <StreamCodec Inner, unsigned PerMille>
class outliers {
  static_assert(PerMille >= 1 && PerMille <= 1000, "PerMille in 1..1000");
  static_assert(
      !requires { Inner::prepares_query_bytes; },
      "the sparse terms read the prepared query as floats (no token_blocks<> inside "
      "outliers)");

 public:
  static constexpr std::size_t group_tokens = Inner::group_tokens;
  /// Inner's limit, and indices are 16-bit.
  static constexpr std::size_t max_head_dim =
      std::min<std::size_t>(detail::max_head_dim_of<Inner>(), 65536);
  static constexpr std::size_t head_dim_multiple = detail::head_dim_multiple_of<Inner>();
  /// The bytes of Inner units copied per chunk in scores/accumulate (a stack buffer).
  static constexpr std::size_t chunk_bytes = 16384;

  explicit outliers(std::size_t head_dim)
      : inner_(head_dim),
        k_((PerMille * head_dim + 999) / 1000),
        scratch_(2 * group_tokens * head_dim),
        order_(head_dim) {
    QCODEC_ASSERT(head_dim <= 65536, "outlier indices are 16-bit");
    QCODEC_ASSERT(inner_.unit_bytes() <= chunk_bytes, "Inner unit larger than the chunk buffer");
  }

  [[nodiscard]] std::size_t head_dim() const noexcept { return inner_.head_dim(); }
  /// Kept entries per token.
  [[nodiscard]] std::size_t kept() const noexcept { return k_; }
  [[nodiscard]] std::size_t unit_bytes() const noexcept {
    return inner_.unit_bytes() + group_tokens * k_ * 4;
  }
  [[nodiscard]] std::string name() const {
    return inner_.name() + "+o" + std::to_string(PerMille) + "pm";
  }
  [[nodiscard]] const Inner& inner() const noexcept { return inner_; }

  /// The kept entries of token t (< group_tokens) of a unit: index[j] and the fp16 correction
  /// added to Inner's reconstruction there, j < kept(), in decreasing order of |x|.
  void sparse_entries(const std::uint8_t* unit, std::size_t t, std::uint16_t* index,
                      float* correction) const noexcept {
    const std::uint8_t* e = sparse(unit) + t * k_ * 4;
    for (std::size_t j = 0; j < k_; ++j) {
      std::uint16_t h;
      std::memcpy(&index[j], e + 4 * j, 2);
      std::memcpy(&h, e + 4 * j + 2, 2);
      correction[j] = half::from_bits(h).to_float();
    }
  }

  // encode uses per-codec scratch (one thread encodes at a time, as rotated.hpp).
  void encode(const float* x, std::uint8_t* unit) const noexcept {
    const std::size_t d = head_dim();
    float* zeroed = scratch_.data();
    float* recon = zeroed + group_tokens * d;
    std::memcpy(zeroed, x, group_tokens * d * sizeof(float));
    std::uint8_t* sp = sparse(unit);
    for (std::size_t t = 0; t < group_tokens; ++t) {
      const float* xt = x + t * d;
      // The k largest |x_i| (NaN first, then ties by lower index), in decreasing order.
      detail::largest_magnitudes(xt, d, k_, order_.data());
      for (std::size_t j = 0; j < k_; ++j) {
        const auto idx = static_cast<std::uint16_t>(order_[j]);
        std::memcpy(sp + (t * k_ + j) * 4, &idx, 2);
        zeroed[t * d + idx] = 0.0f;
      }
    }
    inner_.encode(zeroed, unit);
    inner_.decode(unit, recon);
    for (std::size_t t = 0; t < group_tokens; ++t)
      for (std::size_t j = 0; j < k_; ++j) {
        std::uint8_t* e = sp + (t * k_ + j) * 4;
        std::uint16_t idx;
        std::memcpy(&idx, e, 2);
        const std::uint16_t h = half(x[t * d + idx] - recon[t * d + idx]).bits;
        std::memcpy(e + 2, &h, 2);
      }
  }
  void decode(const std::uint8_t* unit, float* y) const noexcept {
    inner_.decode(unit, y);
    add_sparse(unit, y);
  }
  /// Inner's scored decoding plus the exact entries (kv::scored_decode).
  void scored_decode(const std::uint8_t* unit, const float* q, float* y) const noexcept {
    kv::scored_decode(inner_, unit, q, y);
    add_sparse(unit, y);
  }
  void prepare_query(const float* q, float* out) const noexcept { inner_.prepare_query(q, out); }
  void scored_query(const float* q, float* out) const noexcept { kv::scored_query(inner_, q, out); }
  void scores(const std::uint8_t* units, std::size_t count, const float* q, std::size_t nq,
              float* s, std::size_t ld) const noexcept {
    const std::size_t d = head_dim();
    chunked(units, count, [&](const std::uint8_t* packed, std::size_t u0, std::size_t un) {
      inner_.scores(packed, un, q, nq, s + u0 * group_tokens, ld);
    });
    for (std::size_t u = 0; u < count; ++u) {
      const std::uint8_t* sp = sparse(units + u * unit_bytes());
      for (std::size_t t = 0; t < group_tokens; ++t)
        for (std::size_t j = 0; j < k_; ++j) {
          std::uint16_t idx;
          const float c = entry(sp + (t * k_ + j) * 4, idx);
          const std::size_t col = u * group_tokens + t;
          for (std::size_t g = 0; g < nq; ++g)
            s[g * ld + col] = std::fma(q[g * d + idx], c, s[g * ld + col]);
        }
    }
  }
  void accumulate(const std::uint8_t* units, std::size_t count, const float* p, std::size_t ldp,
                  std::size_t nq, float* acc) const noexcept {
    const std::size_t d = head_dim();
    chunked(units, count, [&](const std::uint8_t* packed, std::size_t u0, std::size_t un) {
      inner_.accumulate(packed, un, p + u0 * group_tokens, ldp, nq, acc);
    });
    for (std::size_t u = 0; u < count; ++u) {
      const std::uint8_t* sp = sparse(units + u * unit_bytes());
      for (std::size_t t = 0; t < group_tokens; ++t)
        for (std::size_t j = 0; j < k_; ++j) {
          std::uint16_t idx;
          const float c = entry(sp + (t * k_ + j) * 4, idx);
          const std::size_t col = u * group_tokens + t;
          for (std::size_t g = 0; g < nq; ++g)
            acc[g * d + idx] = std::fma(p[g * ldp + col], c, acc[g * d + idx]);
        }
    }
  }
  void finish_output(float* acc) const noexcept { inner_.finish_output(acc); }

 private:
  // The exact entries, added to a decoding.
  void add_sparse(const std::uint8_t* unit, float* y) const noexcept {
    const std::uint8_t* sp = sparse(unit);
    for (std::size_t t = 0; t < group_tokens; ++t)
      for (std::size_t j = 0; j < k_; ++j) {
        std::uint16_t idx;
        const float c = entry(sp + (t * k_ + j) * 4, idx);
        y[t * head_dim() + idx] += c;
      }
  }
  const std::uint8_t* sparse(const std::uint8_t* unit) const noexcept {
    return unit + inner_.unit_bytes();
  }
  std::uint8_t* sparse(std::uint8_t* unit) const noexcept { return unit + inner_.unit_bytes(); }
  static float entry(const std::uint8_t* e, std::uint16_t& idx) noexcept {
    std::uint16_t h;
    std::memcpy(&idx, e, 2);
    std::memcpy(&h, e + 2, 2);
    return half::from_bits(h).to_float();
  }
  // Calls f(inner units, first unit, unit count) with Inner's parts of up to chunk_bytes of
  // consecutive units gathered contiguously (Inner reads its units at its own stride).
  template <class F>
  void chunked(const std::uint8_t* units, std::size_t count, F&& f) const noexcept {
    alignas(64) std::uint8_t buf[chunk_bytes];
    const std::size_t ib = inner_.unit_bytes(), ub = unit_bytes();
    detail::for_chunks(count, chunk_bytes / ib, [&](std::size_t u0, std::size_t un) {
      for (std::size_t u = 0; u < un; ++u) std::memcpy(buf + u * ib, units + (u0 + u) * ub, ib);
      f(static_cast<const std::uint8_t*>(buf), u0, un);
    });
  }

  Inner inner_;
  std::size_t k_;
  mutable std::vector<float> scratch_;
  mutable std::vector<std::uint32_t> order_;
};

}  // namespace qcodec::kv
