#pragma once
// rotated<Inner>: a randomized Hadamard transform of every vector before the Inner codec
// (QuaRot, RotateKV, and llama.cpp's default KV rotation). The rotation is orthogonal, so it
// preserves dot products, and it spreads the energy of outlier channels over all channels, so
// per-token groups are no longer scaled by a few large channels.
//
// Attention never un-rotates keys: the query is rotated once per step instead (q . k =
// Rq . Rk). Values accumulate in the rotated space and the inverse rotation is applied once to
// the accumulator (finish_output). head_dim must be a power of two (<= 65536); the signs come
// from a seed, so encoder and decoder agree without storing them.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/rng.hpp>
#include <qcodec/kv/stream_codec.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace qcodec::kv {

template <StreamCodec Inner>
class rotated {
 public:
  static constexpr std::size_t group_tokens = Inner::group_tokens;
  static constexpr std::size_t max_head_dim =
      std::min<std::size_t>(detail::max_head_dim_of<Inner>(), 65536);
  static constexpr std::size_t head_dim_multiple = detail::head_dim_multiple_of<Inner>();
  static constexpr std::uint64_t default_seed = 0x9e3779b97f4a7c15ull;
  /// kv::cache rejects other head dimensions with a status instead of this constructor's assert.
  static constexpr bool needs_power_of_two_head_dim = true;

  explicit rotated(std::size_t head_dim, std::uint64_t seed = default_seed)
      : inner_(head_dim), signs_((head_dim + 7) / 8), scratch_(group_tokens * head_dim) {
    QCODEC_ASSERT(std::has_single_bit(head_dim) && head_dim <= 65536,
                  "rotated codecs need a power-of-two head_dim");
    fill_sign_bits(seed, head_dim, signs_.data());
  }

  [[nodiscard]] std::size_t head_dim() const noexcept { return inner_.head_dim(); }
  [[nodiscard]] std::size_t unit_bytes() const noexcept { return inner_.unit_bytes(); }
  [[nodiscard]] std::string name() const { return "rot-" + inner_.name(); }

  // encode/decode use a per-codec scratch buffer: a codec object is used by one thread at a
  // time for encoding (the cache appends serially); scores/accumulate are thread-safe.
  void encode(const float* x, std::uint8_t* unit) const noexcept {
    const std::size_t d = head_dim();
    std::memcpy(scratch_.data(), x, group_tokens * d * sizeof(float));
    for (std::size_t t = 0; t < group_tokens; ++t) rotate(scratch_.data() + t * d);
    inner_.encode(scratch_.data(), unit);
  }
  void decode(const std::uint8_t* unit, float* y) const noexcept {
    inner_.decode(unit, y);
    for (std::size_t t = 0; t < group_tokens; ++t) unrotate(y + t * head_dim());
  }
  /// Inner's scored decoding for q taken into the rotated space, rotated back
  /// (kv::scored_decode; uses the encode/decode scratch).
  void scored_decode(const std::uint8_t* unit, const float* q, float* y) const noexcept {
    float* qr = scratch_.data();
    std::memcpy(qr, q, head_dim() * sizeof(float));
    rotate(qr);
    kv::scored_decode(inner_, unit, qr, y);
    for (std::size_t t = 0; t < group_tokens; ++t) unrotate(y + t * head_dim());
  }
  void prepare_query(const float* q, float* out) const noexcept {
    std::memmove(out, q, head_dim() * sizeof(float));
    rotate(out);
    inner_.prepare_query(out, out);
  }
  /// Inner's scored query, taken in the rotated space and rotated back (kv::scored_query).
  void scored_query(const float* q, float* out) const noexcept {
    std::memmove(out, q, head_dim() * sizeof(float));
    rotate(out);
    kv::scored_query(inner_, out, out);
    unrotate(out);
  }
  void scores(const std::uint8_t* units, std::size_t count, const float* q, std::size_t nq,
              float* s, std::size_t ld) const noexcept {
    inner_.scores(units, count, q, nq, s, ld);
  }
  void accumulate(const std::uint8_t* units, std::size_t count, const float* p, std::size_t ldp,
                  std::size_t nq, float* acc) const noexcept {
    inner_.accumulate(units, count, p, ldp, nq, acc);
  }
  void finish_output(float* acc) const noexcept {
    inner_.finish_output(acc);
    unrotate(acc);
  }

 private:
  void rotate(float* x) const noexcept {
    simd::kernels().hadamard.randomized_hadamard(x, head_dim(), signs_.data());
  }
  void unrotate(float* x) const noexcept {
    simd::kernels().hadamard.randomized_hadamard_inverse(x, head_dim(), signs_.data());
  }

  Inner inner_;
  std::vector<std::uint8_t> signs_;
  mutable std::vector<float> scratch_;
};

}  // namespace qcodec::kv
