#pragma once
// turbo<Bits>: TurboQuant's MSE quantizer for KV vectors (Zandieh, Daliri, Hadian, Mirrokni,
// "TurboQuant: Online Vector Quantization with Near-optimal Distortion Rate", 2025,
// arXiv:2504.19874), per token:
//
//   1. store the norm ||x|| (fp16);
//   2. rotate the unit vector u = x / ||x|| with the randomized Hadamard transform R (as
//      rotated.hpp: signs from a seed, head_dim a power of two <= 65536). After a random
//      rotation every coordinate of Ru follows the marginal of a uniformly random unit vector
//      in R^d, f(x) ∝ (1 - x^2)^((d-3)/2) on [-1, 1], whatever x was;
//   3. quantize each coordinate to the nearest level of the Lloyd–Max codebook of that density
//      for d = head_dim and 2^Bits levels (computed once per process), and pack the level
//      indices.
//
// Decoding is x^ = ||x|| R^T C[codes]. The codebook is data-independent (no per-token min/max:
// only 16 bits of metadata per token) and the expected squared error of a unit vector is
// d * mse(f, Bits), the Lloyd–Max MSE of one coordinate times d (~0.034 at 3 bits, ~0.009 at 4).
//
// Unit (one token): norm (fp16), then head_dim codes of Bits bits packed LSB-first.
// Bits per value: Bits + 16 / head_dim.
//
// Attention never decodes: the query is rotated once per step, so
//   q . k_t = ||k_t|| (Rq . C[codes_t])      one lut_row_dots call (simd/rows.hpp) + a scale,
//   sum_t p_t v_t = R^T sum_t (p_t ||v_t||) C[codes_t]
//                                            one lut_row_axpys call in the rotated space; the
//                                            inverse rotation is applied once (finish_output).
// This is TurboQuant_mse; TurboQuant_prod ((Bits - 1)-bit codes plus a 1-bit QJL sketch of the
// residual, an unbiased inner-product estimator for keys) is turbo_qjl<Bits> (turbo_qjl.hpp).

#include <qcodec/core/assert.hpp>
#include <qcodec/core/half.hpp>
#include <qcodec/core/rng.hpp>
#include <qcodec/kv/stream_codec.hpp>
#include <qcodec/quant/nonuniform/lloyd_max.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace qcodec::kv {

namespace detail {

/// The Lloyd–Max codebook (levels ascending, thresholds between them) of one coordinate of a
/// random unit vector in R^d at `bits` bits, and its per-coordinate MSE.
struct sphere_codebook {
  float levels[16] = {};
  float thresholds[15] = {};
  double mse = 0.0;
};

inline sphere_codebook make_sphere_codebook(std::size_t d, unsigned bits) {
  sphere_codebook cb;
  const std::size_t k = std::size_t{1} << bits;
  // The density is symmetric and concentrated in |x| < ~4 / sqrt(d); the quantile start used
  // by lloyd_max_density converges in a few dozen iterations for d up to a few thousand.
  auto fit = lloyd_max_density(sphere_marginal_density{d}, k);
  QCODEC_ASSERT(fit.ok(), "Lloyd-Max codebook of the sphere marginal did not converge");
  if (!fit.ok()) return cb;
  for (std::size_t j = 0; j < k; ++j) cb.levels[j] = static_cast<float>(fit->levels[j]);
  for (std::size_t j = 0; j + 1 < k; ++j)
    cb.thresholds[j] = 0.5f * (cb.levels[j] + cb.levels[j + 1]);
  cb.mse = fit->mse;
  return cb;
}

/// make_sphere_codebook, computed once per (d, bits) per process (~60 ms each; a cache
/// constructs two codecs, a model one cache per layer or sequence pool).
inline sphere_codebook sphere_codebook_for(std::size_t d, unsigned bits) {
  static std::mutex mutex;
  static std::map<std::pair<std::size_t, unsigned>, sphere_codebook> computed;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_pair(d, bits);
  auto it = computed.find(key);
  if (it == computed.end()) it = computed.emplace(key, make_sphere_codebook(d, bits)).first;
  return it->second;
}

}  // namespace detail

template <unsigned Bits>
class turbo {
  static_assert(Bits >= 1 && Bits <= 4, "turbo codes index a table of at most 16 levels");

 public:
  static constexpr std::size_t group_tokens = 1;
  static constexpr std::uint64_t default_seed = 0x7572626f71756174ull;
  /// kv::cache rejects other head dimensions with a status instead of this constructor's assert.
  static constexpr bool needs_power_of_two_head_dim = true;
  static constexpr std::size_t max_head_dim = 65536;

  explicit turbo(std::size_t head_dim, std::uint64_t seed = default_seed)
      : d_(head_dim), signs_((head_dim + 7) / 8), scratch_(head_dim) {
    QCODEC_ASSERT(std::has_single_bit(head_dim) && head_dim <= 65536 && head_dim >= 4,
                  "turbo codecs need a power-of-two head_dim in [4, 65536]");
    fill_sign_bits(seed, head_dim, signs_.data());
    codebook_ = detail::sphere_codebook_for(head_dim, Bits);
  }

  [[nodiscard]] std::size_t head_dim() const noexcept { return d_; }
  [[nodiscard]] std::size_t unit_bytes() const noexcept { return 2 + (d_ * Bits + 7) / 8; }
  [[nodiscard]] std::string name() const { return "turbo" + std::to_string(Bits); }

  /// The 2^Bits reconstruction levels (ascending) of one rotated unit-vector coordinate.
  [[nodiscard]] const float* levels() const noexcept { return codebook_.levels; }
  /// The Lloyd–Max MSE of one coordinate (the expected decode error of a unit vector is d times
  /// this).
  [[nodiscard]] double coordinate_mse() const noexcept { return codebook_.mse; }

  // encode uses a per-codec scratch row (one thread encodes at a time, as in rotated.hpp);
  // scores/accumulate are thread-safe.
  void encode(const float* x, std::uint8_t* unit) const noexcept {
    double sq = 0.0;
    for (std::size_t i = 0; i < d_; ++i) sq += double(x[i]) * x[i];
    const float norm = static_cast<float>(std::sqrt(sq));
    const std::uint16_t h = half(norm).bits;
    std::memcpy(unit, &h, 2);
    float* u = scratch_.data();
    const float inv = norm > 0.0f ? 1.0f / norm : 0.0f;
    for (std::size_t i = 0; i < d_; ++i) u[i] = x[i] * inv;
    simd::kernels().hadamard.randomized_hadamard(u, d_, signs_.data());
    std::uint8_t* codes = unit + 2;
    std::memset(codes, 0, (d_ * Bits + 7) / 8);
    constexpr unsigned k = 1u << Bits;
    for (std::size_t i = 0; i < d_; ++i) {
      unsigned c = 0;  // nearest level: count of thresholds below (ties go down)
      for (unsigned j = 0; j + 1 < k; ++j) c += u[i] > codebook_.thresholds[j] ? 1u : 0u;
      const std::size_t bit = i * Bits;
      codes[bit / 8] = static_cast<std::uint8_t>(codes[bit / 8] | (c << (bit % 8)));
      if (bit % 8 + Bits > 8)
        codes[bit / 8 + 1] = static_cast<std::uint8_t>(codes[bit / 8 + 1] | (c >> (8 - bit % 8)));
    }
  }
  void decode(const std::uint8_t* unit, float* y) const noexcept {
    const float norm = load_norm(unit);
    const std::uint8_t* codes = unit + 2;
    for (std::size_t i = 0; i < d_; ++i) {
      const std::size_t bit = i * Bits;
      std::uint32_t v = std::uint32_t{codes[bit / 8]} >> (bit % 8);
      if (bit % 8 + Bits > 8) v |= std::uint32_t{codes[bit / 8 + 1]} << (8 - bit % 8);
      y[i] = norm * codebook_.levels[v & ((1u << Bits) - 1)];
    }
    simd::kernels().hadamard.randomized_hadamard_inverse(y, d_, signs_.data());
  }
  void prepare_query(const float* q, float* out) const noexcept {
    std::memmove(out, q, d_ * sizeof(float));
    simd::kernels().hadamard.randomized_hadamard(out, d_, signs_.data());
  }
  // s_t = ||k_t|| (Rq . C[codes_t]): the row kernel looks the levels up, the norm scales after.
  void scores(const std::uint8_t* units, std::size_t count, const float* q, std::size_t nq,
              float* s, std::size_t ld) const noexcept {
    simd::kernels().rows.lut_row_dots(units + 2, unit_bytes(), count, d_, Bits, codebook_.levels, q,
                                      nq, s, ld);
    detail::for_chunks(count, chunk_tokens, [&](std::size_t t0, std::size_t tn) {
      float norm[chunk_tokens];
      for (std::size_t t = 0; t < tn; ++t) norm[t] = load_norm(units + (t0 + t) * unit_bytes());
      for (std::size_t g = 0; g < nq; ++g) {
        float* sg = s + g * ld + t0;
        for (std::size_t t = 0; t < tn; ++t) sg[t] *= norm[t];
      }
    });
  }
  // acc += sum_t (p_t ||v_t||) C[codes_t], in the rotated space.
  void accumulate(const std::uint8_t* units, std::size_t count, const float* p, std::size_t ldp,
                  std::size_t nq, float* acc) const noexcept {
    constexpr std::size_t heads = 8;
    detail::for_chunks(count, chunk_tokens, [&](std::size_t t0, std::size_t tn) {
      float norm[chunk_tokens], weights[heads * chunk_tokens];
      for (std::size_t t = 0; t < tn; ++t) norm[t] = load_norm(units + (t0 + t) * unit_bytes());
      detail::for_chunks(nq, heads, [&](std::size_t g0, std::size_t gn) {
        for (std::size_t g = 0; g < gn; ++g) {
          const float* pg = p + (g0 + g) * ldp + t0;
          for (std::size_t t = 0; t < tn; ++t) weights[g * chunk_tokens + t] = pg[t] * norm[t];
        }
        simd::kernels().rows.lut_row_axpys(units + t0 * unit_bytes() + 2, unit_bytes(), tn, d_,
                                           Bits, codebook_.levels, weights, chunk_tokens, gn,
                                           acc + g0 * d_);
      });
    });
  }
  void finish_output(float* acc) const noexcept {
    simd::kernels().hadamard.randomized_hadamard_inverse(acc, d_, signs_.data());
  }

 private:
  static constexpr std::size_t chunk_tokens = 64;

  static float load_norm(const std::uint8_t* unit) noexcept {
    std::uint16_t h;
    std::memcpy(&h, unit, 2);
    return half::from_bits(h).to_float();
  }

  std::size_t d_;
  std::vector<std::uint8_t> signs_;
  detail::sphere_codebook codebook_;
  mutable std::vector<float> scratch_;
};

}  // namespace qcodec::kv
