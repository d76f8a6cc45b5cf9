#pragma once
// IQ4_XS: ggml's 4.25-bit non-linear K-quant: IQ4_NL's 16 levels (kvalues_iq4nl) in
// super-blocks of 256 values, 8 sub-blocks of 32 with 6-bit signed scales under one binary16
// super-block scale.
//
// Layout (block_iq4_xs, k_common.hpp): 136 bytes per 256 values = 4.25 bits per value including
// all scales: d, scales_h (bits 2 j, 2 j + 1: high bits of scale j), scales_l[4] (low nibble of
// byte j / 2, low or high by j % 2), qs[128] (sub-block j in qs[16 j .. 16 j + 15], value l in
// the low nibble of byte l, value l + 16 in the high one). Sub-block j decodes as
// (d * (s[j] - 32)) * kvalues_iq4nl[q]. Dot products pair it with Q8_K.
//
// Provenance: ggml (ggml-quants.c quantize_iq4_xs / quantize_row_iq4_nl_impl /
// dequantize_row_iq4_xs, ggml-cpu/quants.c ggml_vec_dot_iq4_xs_q8_K_generic), release 0.21.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/block/ggml/k_common.hpp>
#include <qcodec/quant/block/ggml/q8_k.hpp>
#include <qcodec/simd/ggml_kernels.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace qcodec::ggml {
namespace detail {

inline int iq4_xs_scale(const block_iq4_xs& b, int ib) noexcept {
  return ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b.scales_h >> (2 * ib)) & 3) << 4);
}

inline void iq4_xs_set_scales(const int* ls, block_iq4_xs& b) noexcept {
  b.scales_h = 0;
  for (int j = 0; j < 4; ++j) b.scales_l[j] = 0;
  for (int ib = 0; ib < 8; ++ib) {
    const int l = ls[ib] + 32;
    b.scales_l[ib / 2] = static_cast<std::uint8_t>(b.scales_l[ib / 2] | ((l & 0xF) << (4 * (ib % 2))));
    b.scales_h = static_cast<std::uint16_t>(b.scales_h | ((l >> 4) << (2 * ib)));
  }
}

/// IQ4_NL level (in table units) and level index of every lane: the nearest table value,
/// counted against the exact midpoints (as iq4nl_level / iq4nl_index_count, vectorised).
/// (Results through references: see kq's note on -Wpsabi.)
/// The 15 terms are small integers, so every summation order gives the same exact result:
/// four interleaved partial sums (4 dependent additions each instead of 15 in a row).
inline void iq4_level(kq::vf& q, const kq::vf& v) noexcept {
  const kq::vf v2 = v + v, zero = {};
  kq::vf t[4] = {zero + static_cast<float>(kvalues_iq4nl[0]), zero, zero, zero};
  for (int j = 1; j < 16; ++j) {
    const kq::vf step = zero + static_cast<float>(kvalues_iq4nl[j] - kvalues_iq4nl[j - 1]);
    t[j % 4] += v2 >= static_cast<float>(kvalues_iq4nl[j - 1] + kvalues_iq4nl[j]) ? step : zero;
  }
  q = (t[0] + t[1]) + (t[2] + t[3]);
}
inline void iq4_index(kq::vf& q, const kq::vf& v) noexcept {
  const kq::vf v2 = v + v, zero = {}, one = zero + 1.0f;
  kq::vf t[4] = {zero, zero, zero, zero};
  for (int j = 1; j < 16; ++j)
    t[j % 4] += v2 >= static_cast<float>(kvalues_iq4nl[j - 1] + kvalues_iq4nl[j]) ? one : zero;
  q = (t[0] + t[1]) + (t[2] + t[3]);
}

/// IQ4 sub-block fit (32 values): six starting scales (the largest-magnitude value mapped to
/// levels -135, -127, -119, 105, 113, 121 in table units), each with one Lloyd step, scored by
/// the unweighted least-squares fit (sum q x)^2 / sum q^2. Returns the scale (signed).
inline float iq4_fit(const kq::vals<32>& x) noexcept {
  const kq::vf lo = x.v[0] < x.v[1] ? x.v[0] : x.v[1], hi = x.v[0] > x.v[1] ? x.v[0] : x.v[1];
  const float mn = kq::hmin(lo), mx = kq::hmax(hi);
  const float ext = mx >= -mn ? mx : mn;
  if (!(ext != 0.0f)) return 0.0f;
  static constexpr float cands[6] = {-135.0f, -127.0f, -119.0f, 105.0f, 113.0f, 121.0f};
  float best = -1.0f, best_d = 0.0f;
  // every candidate's two steps are computed first and kept (in the original order)
  // afterwards: no data-dependent branch between the independent candidates, so they overlap
  // in the pipeline
  // (two candidates' sums reduced together by one hsum4)
  const auto stepv = [&](float id, kq::vf& a, kq::vf& b) {
    kq::vf q0, q1;
    iq4_level(q0, x.v[0] * id);
    iq4_level(q1, x.v[1] * id);
    a = q0 * x.v[0] + q1 * x.v[1];
    b = q0 * q0 + q1 * q1;
  };
  const auto step2 = [&](const float* id, float* qx, float* q2) {
    kq::vf a0, b0, a1, b1;
    stepv(id[0], a0, b0);
    stepv(id[1], a1, b1);
    kq::vf4 r;
    kq::hsum4(a0, b0, a1, b1, r);
    qx[0] = r[0];
    q2[0] = r[1];
    qx[1] = r[2];
    q2[1] = r[3];
  };
  float qx1[6], q21[6], qx2[6], q22[6], id[6];
  for (int c = 0; c < 6; ++c) id[c] = cands[c] / ext;
  for (int c = 0; c < 6; c += 2) step2(id + c, qx1 + c, q21 + c);
  for (int c = 0; c < 6; ++c) {
    const bool ok = q21[c] > 0.0f && qx1[c] != 0.0f;
    id[c] = ok ? q21[c] / qx1[c] : 0.0f;
  }
  for (int c = 0; c < 6; c += 2) step2(id + c, qx2 + c, q22 + c);
  const auto keep = [&](float qx, float q2) {
    if (qx * qx > best * q2) {
      best = qx * qx / q2;
      best_d = qx / q2;
    }
  };
  for (int c = 0; c < 6; ++c) {
    if (!(q21[c] > 0.0f)) continue;
    keep(qx1[c], q21[c]);
    if (qx1[c] == 0.0f || !(q22[c] > 0.0f)) continue;
    keep(qx2[c], q22[c]);
  }
  return best_d;
}

/// Squared error of a 32-value sub-block decoded as ds * level, levels re-picked for ds
/// (their indices written to idx).
inline float iq4_eval(const kq::vals<32>& x, float ds, kq::vals<32>& idx) noexcept {
  const float is = ds != 0.0f ? 1.0f / ds : 0.0f;
  kq::vf e = {};
  for (int k = 0; k < 2; ++k) {
    const kq::vf v = x.v[k] * is;
    kq::vf q;
    iq4_level(q, v);
    const kq::vf d = ds * q - x.v[k];
    e += d * d;
    iq4_index(idx.v[k], v);
  }
  return kq::hsum(e);
}

inline void iq4_xs_pack(const std::uint8_t* L, block_iq4_xs& y) noexcept {
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 16; ++j)
      y.qs[16 * i + j] = static_cast<std::uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

}  // namespace detail

/// ggml's reference encoder for IQ4_XS as GGUF files contain it (quantize_iq4_xs without an
/// importance matrix: quantize_row_iq4_nl_impl with 256-value super-blocks, ntry = 7): IQ4_NL's
/// weighted scale search per 32 values, 6-bit scales with the largest-magnitude one mapped to
/// -32, levels re-picked against the (unrounded) sub-block scales.
/// x: k floats, k a multiple of 256; y: k / 256 blocks.
inline void quantize_row_iq4_xs_ref(const float* x, block_iq4_xs* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  constexpr int ntry = 7;
  const auto index = [](float v) { return detail::iq4nl_index<simd::scalar>(v); };
  for (std::int64_t ibl = 0; ibl < k / qk_k; ++ibl, x += qk_k) {
    std::uint8_t L[256] = {};
    float scales[8];
    float max_scale = 0, amax_scale = 0;
    y[ibl].d = half(0.0f);
    for (int ib = 0; ib < 8; ++ib) {
      const float* xb = x + 32 * ib;
      float amax = 0, max = 0;
      for (int j = 0; j < 32; ++j) {
        const float ax = std::fabs(xb[j]);
        if (ax > amax) {
          amax = ax;
          max = xb[j];
        }
      }
      if (amax < 1e-15f) {
        scales[ib] = 0;
        continue;
      }
      const auto fit = [&](float id, float& sumqx, float& sumq2, bool store) {
        sumqx = 0.0f;
        sumq2 = 0.0f;
        for (int j = 0; j < 32; ++j) {
          const int l = index(id * xb[j]);
          if (store) L[32 * ib + j] = static_cast<std::uint8_t>(l);
          const float q = static_cast<float>(kvalues_iq4nl[l]);
          const float w = detail::unfused<simd::scalar>(xb[j] * xb[j]);
          const float wq = detail::unfused<simd::scalar>(w * q);
          sumqx += detail::unfused<simd::scalar>(wq * xb[j]);
          sumq2 += detail::unfused<simd::scalar>(wq * q);
        }
      };
      float d = -max / static_cast<float>(kvalues_iq4nl[0]);
      float sumqx, sumq2;
      fit(1 / d, sumqx, sumq2, true);
      d = sumqx / sumq2;
      float best = d * sumqx;
      for (int itry = -ntry; itry <= ntry; ++itry) {
        fit(static_cast<float>(itry + kvalues_iq4nl[0]) / max, sumqx, sumq2, false);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
          d = sumqx / sumq2;
          best = d * sumqx;
        }
      }
      scales[ib] = d;
      const float abs_d = std::fabs(d);
      if (abs_d > amax_scale) {
        amax_scale = abs_d;
        max_scale = d;
      }
    }
    const float d = -max_scale / 32;
    y[ibl].d = half(d);
    const float id = d != 0.0f ? 1 / d : 0.0f;
    int ls[8];
    for (int ib = 0; ib < 8; ++ib) {
      int l = detail::nearest_int(id * scales[ib]);
      l = l < -32 ? -32 : (l > 31 ? 31 : l);
      ls[ib] = l;
      const float dl = d * static_cast<float>(l);
      const float idl = dl != 0.0f ? 1 / dl : 0.0f;
      for (int j = 0; j < 32; ++j) L[32 * ib + j] = static_cast<std::uint8_t>(index(idl * x[32 * ib + j]));
    }
    detail::iq4_xs_set_scales(ls, y[ibl]);
    detail::iq4_xs_pack(L, y[ibl]);
  }
}

/// qcodec's IQ4_XS encoder (k_common.hpp): IQ4_NL's unweighted scale search per 32 values,
/// a weighted search for the 6-bit scale grid, then per sub-block the best of the 3 nearest
/// scales with levels re-picked against the decoded sub-block scale. Relative squared error vs
/// ggml's encoder: 0.933x on ggml's known-answer input and on N(0,1).
/// x: k floats, k a multiple of 256; y: k / 256 blocks.
inline void quantize_row_iq4_xs(const float* x, block_iq4_xs* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, x += qk_k) {
    const detail::kq::superblock sb(x);
    std::uint8_t L[256];
    int ls[8] = {};
    if (sb.zero) {
      y[i].d = half(0.0f);
      for (int j = 0; j < 256; ++j) L[j] = 8;  // level 1 (smallest magnitude); d = 0 anyway
      detail::iq4_xs_set_scales(ls, y[i]);
      detail::iq4_xs_pack(L, y[i]);
      continue;
    }
    float s[8], w[8];
    for (int j = 0; j < 8; ++j) {
      const detail::kq::vals<32> xj(sb.xs + 32 * j);
      s[j] = detail::iq4_fit(xj);
      const detail::kq::stats<32> st(xj);
      w[j] = s[j] != 0.0f ? st.sx2 / (s[j] * s[j]) : 0.0f;
    }
    y[i].d = sb.to_half(detail::kq::quantize_scales<8>(s, w, -32, 31));
    const float D = y[i].d.to_float();
    const float Dp = D * sb.up;
    for (int j = 0; j < 8; ++j) {
      const detail::kq::vals<32> xj(sb.xs + 32 * j);
      const int l0 = Dp != 0.0f ? static_cast<int>(detail::kq::rnd(
                                      detail::kq::clampf(s[j] / Dp, -32.0f, 31.0f)))
                                : 0;
      // the three evaluated first, picked afterwards in the same order (no data-dependent
      // branch between independent evaluations)
      float best = INFINITY, es[3];
      detail::kq::vals<32> cs[3];
      for (int c = 0; c < 3; ++c)
        es[c] = detail::iq4_eval(xj, D * static_cast<float>(l0 - 1 + c) * sb.up, cs[c]);
      // the rounded scale (candidate 1, always valid) stands when no error compares (all NaN:
      // a NaN or infinite input), so the scale matches the levels written
      int bc = 1;
      ls[j] = l0;
      for (int c = 0; c < 3; ++c) {
        const int a = l0 - 1 + c;
        if (a < -32 || a > 31 || (Dp == 0.0f && a != l0)) continue;
        if (es[c] < best) {
          best = es[c];
          ls[j] = a;
          bc = c;
        }
      }
      cs[bc].to_bytes(L + 32 * j, 0);
    }
    detail::iq4_xs_set_scales(ls, y[i]);
    detail::iq4_xs_pack(L, y[i]);
  }
}

/// ggml's decoder: y = (d * (s - 32)) * kvalues_iq4nl[q]. x: k / 256 blocks; y: k floats.
/// Bit-exact with dequantize_row_iq4_xs.
inline void dequantize_row_iq4_xs(const block_iq4_xs* x, float* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i) {
    const float d = x[i].d.to_float();
    for (int ib = 0; ib < 8; ++ib, y += 32) {
      const float dl = d * static_cast<float>(detail::iq4_xs_scale(x[i], ib) - 32);
      const std::uint8_t* qs = x[i].qs + 16 * ib;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kvalues_iq4nl[qs[j] & 0xF]);
        y[j + 16] = dl * static_cast<float>(kvalues_iq4nl[qs[j] >> 4]);
      }
    }
  }
}

/// *s = the dot product of the n-value rows x and y as ggml's ggml_vec_dot_iq4_xs_q8_K_generic
/// computes it, bit for bit: per sub-block (d * y.d * (s - 32)) * float(sum level * y.q),
/// accumulated in one float.
inline void vec_dot_iq4_xs_q8_K(std::int64_t n, float* s, const block_iq4_xs* x,
                                const block_q8_K* y) noexcept {
  QCODEC_ASSERT(n % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  float sumf = 0.0f;
  for (std::int64_t ibl = 0; ibl < n / qk_k; ++ibl) {
    const float d4d8 = x[ibl].d.to_float() * y[ibl].d;
    for (int ib = 0; ib < 8; ++ib) {
      const std::uint8_t* qs = x[ibl].qs + 16 * ib;
      const std::int8_t* q8 = y[ibl].qs + 32 * ib;
      std::int32_t t[16];
      for (int j = 0; j < 16; ++j)
        t[j] = q8[j] * kvalues_iq4nl[qs[j] & 0xF] + q8[j + 16] * kvalues_iq4nl[qs[j] >> 4];
      int sumi = 0;
      for (int j = 0; j < 16; ++j) sumi += t[j];
      const float dl = d4d8 * static_cast<float>(detail::iq4_xs_scale(x[ibl], ib) - 32);
      sumf += detail::unfused<simd::scalar>(dl * static_cast<float>(sumi));
    }
  }
  *s = sumf;
}

/// IQ4_XS for the format registry.
struct iq4_xs {
  using block = block_iq4_xs;
  using dot_block = block_q8_K;
  static constexpr std::size_t block_values = 256;
  static constexpr std::size_t block_bytes = sizeof(block_iq4_xs);
  static constexpr const char* name = "iq4_xs";
  static constexpr double bits_per_value = 4.25;
  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_iq4_xs(x, y, k);
  }
  static void quantize_row_ref(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_iq4_xs_ref(x, y, k);
  }
  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    dequantize_row_iq4_xs(x, y, k);
  }
  static void quantize_dot_row(const float* x, dot_block* y, std::int64_t k) noexcept {
    quantize_row_q8_K(x, y, k);
  }
  static void vec_dot(std::int64_t n, float* s, const block* x, const dot_block* y) noexcept {
    vec_dot_iq4_xs_q8_K(n, s, x, y);
  }
};

}  // namespace qcodec::ggml
