#pragma once
// Q2_K: ggml's 2-bit K-quant: super-blocks of 256 values in 16 sub-blocks of 16, each with a
// 4-bit scale and a 4-bit min under two binary16 super-block scales.
//
// Layout (block_q2_K, k_common.hpp): 84 bytes per 256 values = 2.625 bits per value including
// all scales: scales[16] (sub-block j: scale in the low nibble, min in the high one), qs[64],
// d, dmin. Value 128 h + 32 s + l (l < 32) is bits 2 s, 2 s + 1 of qs[32 h + l]; sub-block
// j = value / 16 decodes as (d * (sc & 15)) * q - (dmin * (sc >> 4)), q in 0..3. Dot products
// pair it with Q8_K.
//
// Provenance: ggml (ggml-quants.c quantize_row_q2_K_ref / dequantize_row_q2_K,
// ggml-cpu/quants.c ggml_vec_dot_q2_K_q8_K_generic), release 0.21.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/block/ggml/k_common.hpp>
#include <qcodec/quant/block/ggml/q4_k.hpp>
#include <qcodec/quant/block/ggml/q8_k.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace qcodec::ggml {
namespace detail {

inline void q2_K_codes(const block_q2_K& b, std::uint8_t* a) noexcept {
  for (int h = 0; h < 2; ++h)
    for (int s = 0; s < 4; ++s)
      for (int l = 0; l < 32; ++l)
        a[128 * h + 32 * s + l] = static_cast<std::uint8_t>((b.qs[32 * h + l] >> (2 * s)) & 3);
}

/// qcodec's Q2_K encoder for one super-block (k_common.hpp).
inline void q2_K_block(const float* x, block_q2_K& y) noexcept {
  const kq::superblock sb(x);
  std::uint8_t L[256] = {};
  if (sb.zero) {
    std::memset(&y, 0, sizeof y);
    return;
  }
  static constexpr float as[2] = {0.0f, 0.5f};
  float s[16], m[16], w[16], wm[16];
  for (int j = 0; j < 16; ++j) {
    const kq::vals<16> xj(sb.xs + 16 * j);
    const kq::stats<16> st(xj);
    const kq::affine f = kq::affine_search<16, 3>(xj, st, as, 2);
    s[j] = f.s;
    m[j] = -f.b;
    const float v = st.sx2 - 2.0f * f.b * st.sx + 16.0f * f.b * f.b;
    w[j] = f.s > 0.0f ? v / (f.s * f.s) : 0.0f;
    wm[j] = 16.0f;
  }
  y.d = sb.to_half(kq::quantize_scales<16>(s, w, 0, 15));
  y.dmin = sb.to_half(kq::quantize_scales<16>(m, wm, 0, 15));
  const float D = y.d.to_float(), DM = y.dmin.to_float();
  const float Dp = D * sb.up, DMp = DM * sb.up;
  for (int j = 0; j < 16; ++j) {
    const kq::vals<16> xj(sb.xs + 16 * j);
    const int l0 = Dp > 0.0f ? static_cast<int>(kq::rnd(kq::clampf(s[j] / Dp, 0.0f, 15.0f))) : 0;
    const int m0 = DMp > 0.0f ? static_cast<int>(kq::rnd(kq::clampf(m[j] / DMp, 0.0f, 15.0f))) : 0;
    // the nearest integer scale and min, then each moved by one step (the scale first, then
    // the min with the best scale)
    kq::vals<16> codes, best_codes{};
    float best = INFINITY;
    int la = l0;
    // the first candidate (l0, m0: always valid) is kept whatever its error, so that a
    // sub-block whose errors are all NaN (a NaN or infinite input) still gets its scale, min
    // and codes; a finite first error is below INFINITY anyway
    bool first = true;
    const auto eval = [&](int a, int b) {
      if (a < 0 || a > 15 || b < 0 || b > 15) return;
      const float ds = D * static_cast<float>(a) * sb.up;
      const float dmv = DM * static_cast<float>(b) * sb.up;
      const float e = kq::affine_eval<16, 3>(xj, ds, dmv, codes);
      if (e < best || first) {
        first = false;
        best = e;
        la = a;
        y.scales[j] = static_cast<std::uint8_t>(a | (b << 4));
        best_codes = codes;
      }
    };
    eval(l0, m0);
    if (Dp > 0.0f) {
      eval(l0 - 1, m0);
      eval(l0 + 1, m0);
    }
    if (DMp > 0.0f) {
      const int a = la;
      eval(a, m0 - 1);
      eval(a, m0 + 1);
    }
    best_codes.to_bytes(L + 16 * j, 0);
  }
  pack_2bit_k(L, y.qs);
}

}  // namespace detail

/// ggml's reference encoder (quantize_row_q2_K_ref): make_qkx2_quants per 16 values with
/// weights |x| and mean absolute error (rmin -0.5, rdelta 0.1, 15 steps), 4-bit scales and
/// mins relative to their maxima, codes re-rounded against the decoded scales.
/// x: k floats, k a multiple of 256; y: k / 256 blocks.
inline void quantize_row_q2_K_ref(const float* x, block_q2_K* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, x += qk_k) {
    std::uint8_t L[256], Laux[16];
    float weights[16], mins[16], scales[16];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = detail::make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                           -0.5f, 0.1f, 15, true);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
      const float iscale = 15.0f / max_scale;
      for (int j = 0; j < 16; ++j)
        y[i].scales[j] = static_cast<std::uint8_t>(detail::nearest_int(iscale * scales[j]));
      y[i].d = half(max_scale / 15.0f);
    } else {
      for (int j = 0; j < 16; ++j) y[i].scales[j] = 0;
      y[i].d = half(0.0f);
    }
    if (max_min > 0) {
      const float iscale = 15.0f / max_min;
      for (int j = 0; j < 16; ++j)
        y[i].scales[j] = static_cast<std::uint8_t>(
            y[i].scales[j] | (detail::nearest_int(iscale * mins[j]) << 4));
      y[i].dmin = half(max_min / 15.0f);
    } else {
      y[i].dmin = half(0.0f);
    }
    for (int j = 0; j < 16; ++j) {
      const float d = y[i].d.to_float() * static_cast<float>(y[i].scales[j] & 0xF);
      if (d == 0.0f) continue;
      const float dm = y[i].dmin.to_float() * static_cast<float>(y[i].scales[j] >> 4);
      for (int ii = 0; ii < 16; ++ii) {
        const int l = detail::nearest_int((x[16 * j + ii] + dm) / d);
        L[16 * j + ii] = static_cast<std::uint8_t>(l < 0 ? 0 : (l > 3 ? 3 : l));
      }
    }
    detail::pack_2bit_k(L, y[i].qs);
  }
}

/// qcodec's Q2_K encoder (k_common.hpp): unweighted least-squares fits per 16 values over a
/// 2 x 2 grid of clipped ranges plus two refit steps, weighted searches for the 4-bit scale
/// and min grids, then per sub-block the best of 5 (scale, min) pairs around the rounded ones
/// with codes re-rounded against the decoded values. Relative squared error vs ggml's
/// encoder: 0.837x on ggml's known-answer input, 0.781x on N(0,1).
/// x: k floats, k a multiple of 256; y: k / 256 blocks.
inline void quantize_row_q2_K(const float* x, block_q2_K* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, x += qk_k) detail::q2_K_block(x, y[i]);
}

/// ggml's decoder: y = (d * (sc & 15)) * q - (dmin * (sc >> 4)), the product rounded first.
/// x: k / 256 blocks; y: k floats. Bit-exact with dequantize_row_q2_K.
inline void dequantize_row_q2_K(const block_q2_K* x, float* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, y += qk_k) {
    const float d = x[i].d.to_float(), min = x[i].dmin.to_float();
    float dl[16], ml[16];
    for (int j = 0; j < 16; ++j) {
      dl[j] = d * static_cast<float>(x[i].scales[j] & 0xF);
      ml[j] = min * static_cast<float>(x[i].scales[j] >> 4);
    }
    // sub-block j = 8 h + 2 s + t holds values 128 h + 32 s + 16 t + l, l < 16
    for (int j = 0; j < 16; ++j) {
      const std::uint8_t* q = x[i].qs + 32 * (j / 8) + 16 * (j % 2);
      const int shift = 2 * ((j % 8) / 2);
      for (int l = 0; l < 16; ++l)
        y[16 * j + l] = dl[j] * static_cast<float>((q[l] >> shift) & 3);
    }
    detail::product_barrier();
    for (int j = 0; j < 16; ++j)
      for (int l = 0; l < 16; ++l) y[16 * j + l] -= ml[j];
  }
}

/// *s = the dot product of the n-value rows x and y as ggml's ggml_vec_dot_q2_K_q8_K_generic
/// computes it, bit for bit: per block (y.d * d) * isum - (y.d * dmin) * summs, accumulated.
inline void vec_dot_q2_K_q8_K(std::int64_t n, float* s, const block_q2_K* x,
                              const block_q8_K* y) noexcept {
  QCODEC_ASSERT(n % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < n / qk_k; ++i) {
    std::uint8_t a[256];
    detail::q2_K_codes(x[i], a);
    int summs = 0;
    for (int j = 0; j < 16; ++j) summs += y[i].bsums[j] * (x[i].scales[j] >> 4);
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      std::int32_t t[16];
      for (int l = 0; l < 16; ++l) t[l] = y[i].qs[16 * j + l] * a[16 * j + l];
      int isuml = 0;
      for (int l = 0; l < 16; ++l) isuml += t[l];
      isum += (x[i].scales[j] & 0xF) * isuml;
    }
    const float dall = y[i].d * x[i].d.to_float();
    const float dmin = y[i].d * x[i].dmin.to_float();
    const float t1 = detail::unfused<simd::scalar>(dall * static_cast<float>(isum));
    const float t2 = detail::unfused<simd::scalar>(dmin * static_cast<float>(summs));
    sumf += t1 - t2;
  }
  *s = sumf;
}

/// Q2_K for the format registry.
struct q2_K {
  using block = block_q2_K;
  using dot_block = block_q8_K;
  static constexpr std::size_t block_values = 256;
  static constexpr std::size_t block_bytes = sizeof(block_q2_K);
  static constexpr const char* name = "q2_K";
  static constexpr double bits_per_value = 2.625;
  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q2_K(x, y, k);
  }
  static void quantize_row_ref(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q2_K_ref(x, y, k);
  }
  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    dequantize_row_q2_K(x, y, k);
  }
  static void quantize_dot_row(const float* x, dot_block* y, std::int64_t k) noexcept {
    quantize_row_q8_K(x, y, k);
  }
  static void vec_dot(std::int64_t n, float* s, const block* x, const dot_block* y) noexcept {
    vec_dot_q2_K_q8_K(n, s, x, y);
  }
};

}  // namespace qcodec::ggml
