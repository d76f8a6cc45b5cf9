#pragma once
// turbo_qjl<Bits>: TurboQuant_prod, the inner-product variant of TurboQuant (Zandieh, Daliri,
// Hadian, Mirrokni, "TurboQuant: Online Vector Quantization with Near-optimal Distortion Rate",
// 2025, arXiv:2504.19874, Algorithm 2), for keys. Bits is the total per coordinate, spent as in
// the paper: (Bits - 1)-bit TurboQuant_mse (turbo.hpp) plus a 1-bit QJL sketch of its residual
// (Zandieh, Daliri, Han, "QJL: 1-Bit Quantized JL Transform for KV Cache Quantization with Zero
// Overhead", 2024, arXiv:2406.03482).
//
// Per token x, in turbo's rotated unit-vector space (u = R x / ||x||, c^ = C[codes]):
//   r = u - c^,  gamma = ||r||,  z = sign(S r) in {-1, +1}^m
// with S an m x d matrix of i.i.d. N(0, 1) entries drawn from the seed (m = d: one sign bit per
// coordinate). Decoding is the paper's DeQuant_prod,
//   x~ = ||x|| R^T (c^ + gamma sqrt(pi/2) / m  S^T z),
// and since E_S[sign(s.r) (s.y)] = sqrt(2/pi) (r.y) / ||r|| for s ~ N(0, I), E_S[q . x~] = q . x
// exactly: the inner product is unbiased, where TurboQuant_mse's shrinks by the factor
// 1 - d * coordinate_mse (on average over rotations; 0.88 at 2 bits) and softmax scores with
// it. The price is variance: each x~ is a noisier *vector* than (Bits)-bit turbo's, so this is
// a key codec (scores are what keys are for). As a value codec it still satisfies the contract
// (accumulate sums exactly the x~ that decode returns) but its output MSE is worse than
// turbo<Bits>'s; kv_schemes pairs it with turbo values.
//
// Unit (one token): norm ||x|| (fp16), gamma (fp16), head_dim codes of Bits - 1 bits, then m
// sign bits (bit j = 1 iff (S r)_j >= 0), all packed LSB-first. Bits per value: Bits + 32 / d.
//
// Attention on the codes: the query is rotated once (prepare_query), then per call of scores
//   s_t = ||k_t|| (Rq . c^_t + gamma_t sqrt(pi/2) / m  (S Rq) . z_t)
// with two row-kernel passes (lut_row_dots over the codes, and over the sign bits with the
// table {-1, +1}). S Rq is computed in every scores call (one f32_row_dots over S's rows: m * d
// per query head, the work of m / 2 more tokens per page at d = 128, 1-bit codes included)
// because the prepared query has room for head_dim floats only; hoisting it to once per step
// would need a wider prepared query in the StreamCodec concept. accumulate sums sign rows into
// an m-vector per head and applies S^T once per call (f32_row_axpys). S is stored as floats
// (m * d * 4 bytes per codec object: 64 KiB at d = 128). encode computes S r in double, so the
// stored signs do not depend on the SIMD target.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/half.hpp>
#include <qcodec/core/rng.hpp>
#include <qcodec/kv/stream_codec.hpp>
#include <qcodec/kv/turbo.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace qcodec::kv {

template <unsigned Bits>
class turbo_qjl {
  static_assert(Bits >= 2 && Bits <= 5,
                "turbo_qjl spends Bits - 1 (1..4) bits on Lloyd-Max codes and 1 on the sketch");

 public:
  static constexpr unsigned mse_bits = Bits - 1;
  static constexpr std::size_t group_tokens = 1;
  static constexpr std::size_t max_head_dim = 1024;
  static constexpr std::uint64_t default_seed = 0x716a6c7475726271ull;
  /// kv::cache rejects other head dimensions with a status instead of this constructor's assert.
  static constexpr bool needs_power_of_two_head_dim = true;

  explicit turbo_qjl(std::size_t head_dim, std::uint64_t seed = default_seed)
      : d_(head_dim),
        signs_((head_dim + 7) / 8),
        sketch_(head_dim * head_dim),
        scratch_(2 * head_dim) {
    QCODEC_ASSERT(std::has_single_bit(head_dim) && head_dim >= 4 && head_dim <= max_head_dim,
                  "turbo_qjl needs a power-of-two head_dim in [4, 1024]");
    fill_sign_bits(seed, head_dim, signs_.data());
    // S from its own stream of the seed (the rotation's signs use rng(seed) directly).
    qcodec::rng gen(seed ^ 0x9e3779b97f4a7c15ull);
    for (float& v : sketch_) v = gen.normal();
    codebook_ = detail::sphere_codebook_for(head_dim, mse_bits);
  }

  [[nodiscard]] std::size_t head_dim() const noexcept { return d_; }
  /// Sketch rows m (= head_dim: one sign bit per coordinate).
  [[nodiscard]] std::size_t sketch_rows() const noexcept { return d_; }
  [[nodiscard]] std::size_t unit_bytes() const noexcept {
    return 4 + code_bytes() + (sketch_rows() + 7) / 8;
  }
  [[nodiscard]] std::string name() const { return "turbo" + std::to_string(Bits) + "-qjl"; }
  [[nodiscard]] const float* levels() const noexcept { return codebook_.levels; }

  /// Uses per-codec scratch (one thread encodes at a time, as in rotated.hpp).
  void encode(const float* x, std::uint8_t* unit) const noexcept {
    double sq = 0.0;
    for (std::size_t i = 0; i < d_; ++i) sq += double(x[i]) * x[i];
    const float norm = static_cast<float>(std::sqrt(sq));
    float* u = scratch_.data();
    float* r = u + d_;
    const float inv = norm > 0.0f ? 1.0f / norm : 0.0f;
    for (std::size_t i = 0; i < d_; ++i) u[i] = x[i] * inv;
    simd::kernels().hadamard.randomized_hadamard(u, d_, signs_.data());
    std::uint8_t* codes = unit + 4;
    std::memset(codes, 0, unit_bytes() - 4);
    constexpr unsigned k = 1u << mse_bits;
    double r_sq = 0.0;
    for (std::size_t i = 0; i < d_; ++i) {
      unsigned c = 0;  // nearest level, as turbo::encode
      for (unsigned j = 0; j + 1 < k; ++j) c += u[i] > codebook_.thresholds[j] ? 1u : 0u;
      const std::size_t bit = i * mse_bits;
      codes[bit / 8] = static_cast<std::uint8_t>(codes[bit / 8] | (c << (bit % 8)));
      if (bit % 8 + mse_bits > 8)
        codes[bit / 8 + 1] = static_cast<std::uint8_t>(codes[bit / 8 + 1] | (c >> (8 - bit % 8)));
      r[i] = u[i] - codebook_.levels[c];
      r_sq += double(r[i]) * r[i];
    }
    std::uint8_t* bits = codes + code_bytes();
    for (std::size_t j = 0; j < sketch_rows(); ++j) {
      const float* sj = sketch_.data() + j * d_;
      double dot = 0.0;
      for (std::size_t i = 0; i < d_; ++i) dot += double(sj[i]) * r[i];
      if (dot >= 0.0) bits[j / 8] = static_cast<std::uint8_t>(bits[j / 8] | (1u << (j % 8)));
    }
    const std::uint16_t h[2] = {half(norm).bits, half(static_cast<float>(std::sqrt(r_sq))).bits};
    std::memcpy(unit, h, 4);
  }

  void decode(const std::uint8_t* unit, float* y) const noexcept {
    float norm, gamma;
    detail::load_half_pair(unit, norm, gamma);
    const std::uint8_t* codes = unit + 4;
    const std::uint8_t* bits = codes + code_bytes();
    for (std::size_t i = 0; i < d_; ++i) y[i] = levels_at(codes, i);
    const float w = gamma * qjl_scale();
    for (std::size_t j = 0; j < sketch_rows(); ++j) {
      const float* sj = sketch_.data() + j * d_;
      const float wz = w * sign_at(bits, j);
      for (std::size_t i = 0; i < d_; ++i) y[i] = std::fma(wz, sj[i], y[i]);
    }
    for (std::size_t i = 0; i < d_; ++i) y[i] *= norm;
    simd::kernels().hadamard.randomized_hadamard_inverse(y, d_, signs_.data());
  }

  void prepare_query(const float* q, float* out) const noexcept {
    std::memmove(out, q, d_ * sizeof(float));
    simd::kernels().hadamard.randomized_hadamard(out, d_, signs_.data());
  }

  void scores(const std::uint8_t* units, std::size_t count, const float* q, std::size_t nq,
              float* s, std::size_t ld) const noexcept {
    const simd::row_kernels& rows = simd::kernels().rows;
    const std::size_t ub = unit_bytes(), m = sketch_rows();
    rows.lut_row_dots(units + 4, ub, count, d_, mse_bits, codebook_.levels, q, nq, s, ld);
    detail::for_chunks(nq, heads, [&](std::size_t g0, std::size_t gn) {
      float sq[heads * max_head_dim];
      // S Rq for the chunk's heads: S's rows as f32 rows, each read once for all gn heads.
      rows.f32_row_dots(sketch_bytes(), d_ * sizeof(float), m, d_, q + g0 * d_, gn, sq, m);
      detail::for_chunks(count, chunk_tokens, [&](std::size_t t0, std::size_t tn) {
        float sketch_dot[heads * chunk_tokens], norm[chunk_tokens], gamma[chunk_tokens];
        for (std::size_t t = 0; t < tn; ++t) {
          detail::load_half_pair(units + (t0 + t) * ub, norm[t], gamma[t]);
          gamma[t] *= qjl_scale();
        }
        rows.lut_row_dots(units + t0 * ub + 4 + code_bytes(), ub, tn, m, 1, plus_minus_one, sq, gn,
                          sketch_dot, chunk_tokens);
        for (std::size_t g = 0; g < gn; ++g) {
          // s = norm * fma(gamma', sketch . q, s): the fma by affine_scores (with offset s and
          // c = 1, exact), as std::fma is a libm call in code built without FMA instructions.
          float* sg = s + (g0 + g) * ld + t0;
          float* dot = sketch_dot + g * chunk_tokens;
          rows.affine_scores(gamma, sg, 1.0f, dot, tn);
          for (std::size_t t = 0; t < tn; ++t) sg[t] = norm[t] * dot[t];
        }
      });
    });
  }

  // acc += sum_t p_t ||v_t|| (c^_t + gamma_t sqrt(pi/2)/m S^T z_t), in the rotated space: the
  // sign rows are summed into z_acc (m per head) and S^T z_acc is added once per call.
  void accumulate(const std::uint8_t* units, std::size_t count, const float* p, std::size_t ldp,
                  std::size_t nq, float* acc) const noexcept {
    const simd::row_kernels& rows = simd::kernels().rows;
    const std::size_t ub = unit_bytes(), m = sketch_rows();
    detail::for_chunks(nq, heads, [&](std::size_t g0, std::size_t gn) {
      float z_acc[heads * max_head_dim];
      std::memset(z_acc, 0, gn * m * sizeof(float));
      detail::for_chunks(count, chunk_tokens, [&](std::size_t t0, std::size_t tn) {
        float w_mse[heads * chunk_tokens], w_qjl[heads * chunk_tokens];
        float norm[chunk_tokens], gamma[chunk_tokens];
        for (std::size_t t = 0; t < tn; ++t)
          detail::load_half_pair(units + (t0 + t) * ub, norm[t], gamma[t]);
        for (std::size_t g = 0; g < gn; ++g) {
          const float* pg = p + (g0 + g) * ldp + t0;
          for (std::size_t t = 0; t < tn; ++t) {
            w_mse[g * chunk_tokens + t] = pg[t] * norm[t];
            w_qjl[g * chunk_tokens + t] = pg[t] * norm[t] * gamma[t] * qjl_scale();
          }
        }
        rows.lut_row_axpys(units + t0 * ub + 4, ub, tn, d_, mse_bits, codebook_.levels, w_mse,
                           chunk_tokens, gn, acc + g0 * d_);
        rows.lut_row_axpys(units + t0 * ub + 4 + code_bytes(), ub, tn, m, 1, plus_minus_one, w_qjl,
                           chunk_tokens, gn, z_acc);
      });
      rows.f32_row_axpys(sketch_bytes(), d_ * sizeof(float), m, d_, z_acc, m, gn, acc + g0 * d_);
    });
  }

  void finish_output(float* acc) const noexcept {
    simd::kernels().hadamard.randomized_hadamard_inverse(acc, d_, signs_.data());
  }

 private:
  static constexpr std::size_t chunk_tokens = 64;
  static constexpr std::size_t heads = 8;
  static constexpr float plus_minus_one[2] = {-1.0f, 1.0f};

  // sqrt(pi / 2) / m: E|s . r| over s ~ N(0, I) is sqrt(2 / pi) ||r||, so this rescales the
  // sketch's inner product back to (r . y) in expectation.
  float qjl_scale() const noexcept {
    return static_cast<float>(1.2533141373155002512 / static_cast<double>(sketch_rows()));
  }
  [[nodiscard]] std::size_t code_bytes() const noexcept { return (d_ * mse_bits + 7) / 8; }
  float levels_at(const std::uint8_t* codes, std::size_t i) const noexcept {
    const std::size_t bit = i * mse_bits;
    std::uint32_t v = std::uint32_t{codes[bit / 8]} >> (bit % 8);
    if (bit % 8 + mse_bits > 8) v |= std::uint32_t{codes[bit / 8 + 1]} << (8 - bit % 8);
    return codebook_.levels[v & ((1u << mse_bits) - 1)];
  }
  static float sign_at(const std::uint8_t* bits, std::size_t j) noexcept {
    return (bits[j / 8] >> (j % 8)) & 1u ? 1.0f : -1.0f;
  }
  const std::uint8_t* sketch_bytes() const noexcept {
    return reinterpret_cast<const std::uint8_t*>(sketch_.data());
  }

  std::size_t d_;
  std::vector<std::uint8_t> signs_;
  std::vector<float> sketch_;
  detail::sphere_codebook codebook_;
  mutable std::vector<float> scratch_;
};

}  // namespace qcodec::kv
