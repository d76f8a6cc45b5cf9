#pragma once
// Q6_K: ggml's 6-bit K-quant: super-blocks of 256 values in 16 sub-blocks of 16, each with an
// int8 scale under one binary16 super-block scale.
//
// Layout (block_q6_K, k_common.hpp): 210 bytes per 256 values = 6.5625 bits per value including
// all scales: ql[128], qh[64], scales[16] (int8), d. Value 128 h + 32 k + l (l < 32, k < 4) has
// its low four bits in ql[64 h + l + 32 (k & 1)] (low nibble for k < 2, high nibble for
// k >= 2) and its high two bits in bits 2 k, 2 k + 1 of qh[32 h + l]; sub-block j = value / 16
// decodes as (d * sc[j]) * (q - 32), q in 0..63. Dot products pair it with Q8_K.
//
// Provenance: ggml (ggml-quants.c quantize_row_q6_K_ref / make_qx_quants / dequantize_row_q6_K,
// ggml-cpu/quants.c ggml_vec_dot_q6_K_q8_K_generic), release 0.21.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/block/ggml/k_common.hpp>
#include <qcodec/quant/block/ggml/q8_k.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace qcodec::ggml {
namespace detail {

/// ggml's make_qx_quants with rmse_type 1 and no importance weights (weights x^2), with ggml's
/// unfused arithmetic: symmetric levels -nmax..nmax-1, 19 candidate scales. Writes l + nmax
/// to L and returns the scale.
inline float make_qx_quants(int n, int nmax, const float* x, std::int8_t* L) noexcept {
  const auto mul = [](float a, float b) { return unfused<simd::scalar>(a * b); };
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {  // ggml's GROUP_MAX_EPS
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const float fn = static_cast<float>(nmax);
  const auto code = [&](float iscale, float v) {
    const int l = nearest_int(iscale * v);
    return l < -nmax ? -nmax : (l > nmax - 1 ? nmax - 1 : l);
  };
  float iscale = -fn / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = code(iscale, x[i]);
    L[i] = static_cast<std::int8_t>(l + nmax);
    const float w = mul(x[i], x[i]);
    const float fl = static_cast<float>(l);
    sumlx += mul(mul(w, x[i]), fl);
    suml2 += mul(mul(w, fl), fl);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(fn + mul(0.1f, static_cast<float>(is))) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const float fl = static_cast<float>(code(iscale, x[i]));
      const float w = mul(x[i], x[i]);
      sumlx += mul(mul(w, x[i]), fl);
      suml2 += mul(mul(w, fl), fl);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(nmax + code(iscale, x[i]));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

inline void q6_K_codes(const block_q6_K& b, std::int8_t* a) noexcept {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const std::uint8_t* ql = b.ql + 64 * h;
      const int qh = b.qh[32 * h + l];
      std::int8_t* o = a + 128 * h;
      o[l] = static_cast<std::int8_t>(((ql[l] & 0xF) | (((qh >> 0) & 3) << 4)) - 32);
      o[l + 32] = static_cast<std::int8_t>(((ql[l + 32] & 0xF) | (((qh >> 2) & 3) << 4)) - 32);
      o[l + 64] = static_cast<std::int8_t>(((ql[l] >> 4) | (((qh >> 4) & 3) << 4)) - 32);
      o[l + 96] = static_cast<std::int8_t>(((ql[l + 32] >> 4) | (((qh >> 6) & 3) << 4)) - 32);
    }
}

/// Packs codes L[256] (0..63, value order) into ql / qh.
inline void pack_q6_K(const std::uint8_t* L, block_q6_K& y) noexcept {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const std::uint8_t* Lh = L + 128 * h;
      y.ql[64 * h + l] = static_cast<std::uint8_t>((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
      y.ql[64 * h + l + 32] =
          static_cast<std::uint8_t>((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
      y.qh[32 * h + l] = static_cast<std::uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) |
                                                   ((Lh[l + 64] >> 4) << 4) |
                                                   ((Lh[l + 96] >> 4) << 6));
    }
}

/// qcodec's encoder for one super-block of a symmetric 16-value-sub-block format (Q6_K: N =
/// 32, scales -128..127; Q3_K: N = 4, scales -32..31): unweighted sub-block fits, a weighted
/// search for the scale grid, then per sub-block the best of the 3 nearest integer scales with
/// codes re-rounded against the decoded scale. Writes the super-block scale, the integer
/// scales and the codes (l + N).
template <int N, int SLO, int SHI>
inline void sym16_K_block(const float* x, half& d, int* ls, std::uint8_t* L) noexcept {
  const kq::superblock sb(x);
  if (sb.zero) {
    d = half(0.0f);
    for (int j = 0; j < 16; ++j) ls[j] = 0;
    for (int j = 0; j < 256; ++j) L[j] = static_cast<std::uint8_t>(N);
    return;
  }
  float s[16], w[16];
  for (int j = 0; j < 16; ++j) {
    const kq::vals<16> xj(sb.xs + 16 * j);
    s[j] = kq::sym_search<16, N>(xj, 2);
    const kq::stats<16> st(xj);
    w[j] = s[j] != 0.0f ? st.sx2 / (s[j] * s[j]) : 0.0f;
  }
  d = sb.to_half(kq::quantize_scales<16>(s, w, SLO, SHI));
  const float D = d.to_float();
  const float Dp = D * sb.up;
  for (int j = 0; j < 16; ++j) {
    const kq::vals<16> xj(sb.xs + 16 * j);
    const int l0 =
        Dp != 0.0f ? static_cast<int>(kq::rnd(kq::clampf(s[j] / Dp, static_cast<float>(SLO),
                                                         static_cast<float>(SHI))))
                   : 0;
    // the three evaluated first, picked afterwards in the same order (no data-dependent
    // branch between independent evaluations)
    float best = INFINITY, es[3];
    kq::vals<16> cs[3];
    for (int c = 0; c < 3; ++c)
      es[c] = kq::sym_eval<16, N>(xj, D * static_cast<float>(l0 - 1 + c) * sb.up, cs[c]);
    // the rounded scale (candidate 1, always valid) stands when no error compares: all NaN
    // for a sub-block holding a NaN or an infinity
    int bc = 1;
    ls[j] = l0;
    for (int c = 0; c < 3; ++c) {
      const int a = l0 - 1 + c;
      if (a < SLO || a > SHI || (Dp == 0.0f && a != l0)) continue;
      if (es[c] < best) {
        best = es[c];
        ls[j] = a;
        bc = c;
      }
    }
    cs[bc].to_bytes(L + 16 * j, N);
  }
}

}  // namespace detail

/// ggml's reference encoder (quantize_row_q6_K_ref): make_qx_quants per 16 values (weights
/// x^2, 19 candidate scales), int8 scales with the largest-magnitude one mapped to -128, codes
/// re-rounded against the decoded scales. x: k floats, k a multiple of 256; y: k / 256 blocks.
inline void quantize_row_q6_K_ref(const float* x, block_q6_K* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, x += qk_k) {
    std::int8_t L[256];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      const float scale = detail::make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
      scales[ib] = scale;
      const float abs_scale = std::fabs(scale);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scale;
      }
    }
    if (max_abs_scale < 1e-15f) {
      std::memset(&y[i], 0, sizeof(block_q6_K));
      continue;
    }
    const float iscale = -128.0f / max_scale;
    y[i].d = half(1 / iscale);
    for (int ib = 0; ib < 16; ++ib) {
      const int l = detail::nearest_int(iscale * scales[ib]);
      y[i].scales[ib] = static_cast<std::int8_t>(l < 127 ? l : 127);
    }
    for (int j = 0; j < 16; ++j) {
      const float d = y[i].d.to_float() * static_cast<float>(y[i].scales[j]);
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int l = detail::nearest_int(x[16 * j + ii] / d);
        l = l < -32 ? -32 : (l > 31 ? 31 : l);
        L[16 * j + ii] = static_cast<std::int8_t>(l + 32);
      }
    }
    std::uint8_t U[256];
    for (int j = 0; j < 256; ++j) U[j] = static_cast<std::uint8_t>(L[j]);
    detail::pack_q6_K(U, y[i]);
  }
}

/// qcodec's Q6_K encoder (k_common.hpp, detail::sym16_K_block): unweighted least-squares
/// sub-block scales (nine starting scales, each refitted once), a weighted search for the
/// int8 scale grid, the best of the 3 nearest scales per sub-block with codes re-rounded
/// against the decoded scale. Relative squared error vs ggml's encoder: 0.913x on ggml's
/// known-answer input (one 256-value block dominates it), 0.868x on N(0,1).
/// x: k floats, k a multiple of 256; y: k / 256 blocks.
inline void quantize_row_q6_K(const float* x, block_q6_K* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, x += qk_k) {
    std::uint8_t L[256];
    int ls[16];
    detail::sym16_K_block<32, -128, 127>(x, y[i].d, ls, L);
    for (int j = 0; j < 16; ++j) y[i].scales[j] = static_cast<std::int8_t>(ls[j]);
    detail::pack_q6_K(L, y[i]);
  }
}

/// ggml's decoder: y = (d * sc) * (q - 32). x: k / 256 blocks; y: k floats. Bit-exact with
/// dequantize_row_q6_K.
inline void dequantize_row_q6_K(const block_q6_K* x, float* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, y += qk_k) {
    const float d = x[i].d.to_float();
    float dl[16];
    for (int j = 0; j < 16; ++j) dl[j] = d * static_cast<float>(x[i].scales[j]);
    std::int8_t a[256];
    detail::q6_K_codes(x[i], a);
    for (int j = 0; j < 16; ++j)
      for (int l = 0; l < 16; ++l) y[16 * j + l] = dl[j] * static_cast<float>(a[16 * j + l]);
  }
}

/// *s = the dot product of the n-value rows x and y as ggml's ggml_vec_dot_q6_K_q8_K_generic
/// computes it, bit for bit: integer sums in 8 lanes per block, float lanes accumulated.
inline void vec_dot_q6_K_q8_K(std::int64_t n, float* s, const block_q6_K* x,
                              const block_q8_K* y) noexcept {
  QCODEC_ASSERT(n % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  float sums[8] = {};
  for (std::int64_t i = 0; i < n / qk_k; ++i) {
    std::int8_t a[256];
    detail::q6_K_codes(x[i], a);
    std::int32_t aux32[8] = {};
    for (int j = 0; j < 16; ++j) {
      std::int32_t t[16];
      for (int l = 0; l < 16; ++l) t[l] = y[i].qs[16 * j + l] * a[16 * j + l];
      for (int l = 0; l < 8; ++l) aux32[l] += x[i].scales[j] * (t[l] + t[l + 8]);
    }
    const float d = x[i].d.to_float() * y[i].d;
    for (int l = 0; l < 8; ++l)
      sums[l] += detail::unfused<simd::scalar>(d * static_cast<float>(aux32[l]));
  }
  float sumf = 0.0f;
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  *s = sumf;
}

/// Q6_K for the format registry.
struct q6_K {
  using block = block_q6_K;
  using dot_block = block_q8_K;
  static constexpr std::size_t block_values = 256;
  static constexpr std::size_t block_bytes = sizeof(block_q6_K);
  static constexpr const char* name = "q6_K";
  static constexpr double bits_per_value = 6.5625;
  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q6_K(x, y, k);
  }
  static void quantize_row_ref(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q6_K_ref(x, y, k);
  }
  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    dequantize_row_q6_K(x, y, k);
  }
  static void quantize_dot_row(const float* x, dot_block* y, std::int64_t k) noexcept {
    quantize_row_q8_K(x, y, k);
  }
  static void vec_dot(std::int64_t n, float* s, const block* x, const dot_block* y) noexcept {
    vec_dot_q6_K_q8_K(n, s, x, y);
  }
};

}  // namespace qcodec::ggml
