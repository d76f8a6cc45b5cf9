#pragma once
// Q4_K: ggml's 4-bit K-quant: super-blocks of 256 values in 8 sub-blocks of 32, each with a
// 6-bit scale and a 6-bit min under two binary16 super-block scales.
//
// Layout (block_q4_K, k_common.hpp): 144 bytes per 256 values = 4.5 bits per value including
// all scales: d, dmin (binary16), scales[12] (8 scales + 8 mins, 6 bits each, packed as
// get_scale_min_k4 reads them), qs[128]. Value 64 c + l (l < 32) is the low nibble of
// qs[32 c + l], value 64 c + 32 + l its high nibble; sub-block j = value / 32 decodes as
// (d * sc[j]) * q - (dmin * m[j]). Dot products pair it with Q8_K.
//
// Provenance: ggml (ggml-quants.c quantize_row_q4_K_ref / dequantize_row_q4_K,
// ggml-cpu/quants.c ggml_vec_dot_q4_K_q8_K_generic), release 0.21.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/block/ggml/k_common.hpp>
#include <qcodec/quant/block/ggml/q8_k.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace qcodec::ggml {
namespace detail {

/// ggml's make_qkx2_quants (offset formats' sub-block fit, weights w), with ggml's unfused
/// arithmetic. Returns the scale, writes -min to *the_min and the codes to L.
inline float make_qkx2_quants(int n, int nmax, const float* x, const float* weights,
                              std::uint8_t* L, float* the_min, std::uint8_t* Laux, float rmin,
                              float rdelta, int nstep, bool use_mad) noexcept {
  const auto mul = [](float a, float b) { return unfused<simd::scalar>(a * b); };
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = mul(sum_w, x[0]);
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += mul(w, x[i]);
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<std::uint8_t>(l < 0 ? 0 : (l > nmax ? nmax : l));
    float diff = mul(scale, static_cast<float>(L[i])) + min - x[i];
    diff = use_mad ? std::fabs(diff) : mul(diff, diff);
    best_error += mul(weights[i], diff);
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + mul(rdelta, static_cast<float>(is)) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - min));
      l = l < 0 ? 0 : (l > nmax ? nmax : l);
      Laux[i] = static_cast<std::uint8_t>(l);
      const float w = weights[i];
      const float fl = static_cast<float>(l);
      sum_l += mul(w, fl);
      sum_l2 += mul(mul(w, fl), fl);
      sum_xl += mul(mul(w, fl), x[i]);
    }
    const float D = mul(sum_w, sum_l2) - mul(sum_l, sum_l);
    if (D > 0) {
      float this_scale = (mul(sum_w, sum_xl) - mul(sum_x, sum_l)) / D;
      float this_min = (mul(sum_l2, sum_x) - mul(sum_l, sum_xl)) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = mul(this_scale, static_cast<float>(Laux[i])) + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : mul(diff, diff);
        cur_error += mul(weights[i], diff);
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

/// ggml's quantize_row_q4_K_ref / quantize_row_q5_K_ref up to the packing of the codes:
/// writes d, dmin, scales and the codes L[256] (0..NMAX).
template <int NMAX, class Block>
inline void q45_K_ref_block(const float* x, Block& y, std::uint8_t* L) noexcept {
  const auto mul = [](float a, float b) { return unfused<simd::scalar>(a * b); };
  std::uint8_t Laux[32];
  float weights[32], mins[8], scales[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += mul(x[32 * j + l], x[32 * j + l]);
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = NMAX == 15 ? make_qkx2_quants(32, NMAX, x + 32 * j, weights, L + 32 * j, &mins[j],
                                              Laux, -1.0f, 0.1f, 20, false)
                           : make_qkx2_quants(32, NMAX, x + 32 * j, weights, L + 32 * j, &mins[j],
                                              Laux, -0.5f, 0.1f, 15, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  std::uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    const int a = nearest_int(inv_scale * scales[j]);
    const int b = nearest_int(inv_min * mins[j]);
    ls[j] = static_cast<std::uint8_t>(a < 63 ? a : 63);  // ggml: MIN(63, (uint8_t)l)
    lm[j] = static_cast<std::uint8_t>(b < 63 ? b : 63);
  }
  set_scales_mins_k4(ls, lm, y.scales);
  y.d = half(max_scale / 63.0f);
  y.dmin = half(max_min / 63.0f);
  for (int j = 0; j < 8; ++j) {
    std::uint8_t sc, m;
    get_scale_min_k4(j, y.scales, sc, m);
    const float d = y.d.to_float() * sc;
    if (d == 0.0f) continue;
    const float dm = y.dmin.to_float() * m;
    for (int ii = 0; ii < 32; ++ii) {
      const int l = nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<std::uint8_t>(l < 0 ? 0 : (l > NMAX ? NMAX : l));
    }
  }
}

/// qcodec's Q4_K / Q5_K encoder for one super-block (see k_common.hpp for the plan):
/// writes d, dmin, scales and the codes L[256] (0..NMAX). Q5_K spends more on the search (two
/// refit steps, 15 (scale, min) pairs per sub-block) because its error is more sensitive to
/// the integer scale.
template <int NMAX, class Block>
inline void q45_K_block(const float* x, Block& y, std::uint8_t* L) noexcept {
  const kq::superblock sb(x);
  std::uint8_t ls[8] = {}, lm[8] = {};
  if (sb.zero) {
    y.d = half(0.0f);
    y.dmin = half(0.0f);
    set_scales_mins_k4(ls, lm, y.scales);
    for (int j = 0; j < 256; ++j) L[j] = 0;
    return;
  }
  static constexpr float as[3] = {0.0f, 0.3f, 0.6f};
  float s[8], m[8], w[8], wm[8];
  for (int j = 0; j < 8; ++j) {
    const kq::vals<32> xj(sb.xs + 32 * j);
    const kq::stats<32> st(xj);
    const kq::affine f = kq::affine_search<32, NMAX>(xj, st, as, NMAX == 31 ? 2 : 1);
    s[j] = f.s;
    m[j] = -f.b;
    // the squared error a relative change of s causes grows with sum q^2 ~ sum (x - b)^2 / s^2
    const float v = st.sx2 - 2.0f * f.b * st.sx + 32.0f * f.b * f.b;
    w[j] = f.s > 0.0f ? v / (f.s * f.s) : 0.0f;
    wm[j] = 32.0f;
  }
  const float d = kq::quantize_scales<8>(s, w, 0, 63);
  const float dm = kq::quantize_scales<8>(m, wm, 0, 63);
  y.d = sb.to_half(d);
  y.dmin = sb.to_half(dm);
  const float D = y.d.to_float(), DM = y.dmin.to_float();
  const float Dp = D * sb.up, DMp = DM * sb.up;
  for (int j = 0; j < 8; ++j) {
    const kq::vals<32> xj(sb.xs + 32 * j);
    const int l0 = Dp > 0.0f ? static_cast<int>(kq::rnd(kq::clampf(s[j] / Dp, 0.0f, 63.0f))) : 0;
    const int m0 = DMp > 0.0f ? static_cast<int>(kq::rnd(kq::clampf(m[j] / DMp, 0.0f, 63.0f))) : 0;
    kq::vals<32> best_codes{};
    float best = INFINITY;
    // (the candidates of each step evaluated first and picked afterwards in the same order:
    // no data-dependent branch between independent evaluations)
    [[maybe_unused]] const auto eval3 = [&](int a0, int b0, int a1, int b1, int a2, int b2, bool first,
                           bool more) {
      const int as_[3] = {a0, a1, a2}, bs_[3] = {b0, b1, b2};
      float es[3];
      kq::vals<32> cs[3];
      for (int c = 0; c < 3; ++c)
        es[c] = kq::affine_eval<32, NMAX>(xj, D * static_cast<float>(as_[c]) * sb.up,
                                          DM * static_cast<float>(bs_[c]) * sb.up, cs[c]);
      for (int c = 0; c < 3; ++c) {
        const int a = as_[c], b = bs_[c];
        if (a < 0 || a > 63 || b < 0 || b > 63) continue;
        if (!(c == 0 ? first : more)) continue;
        if (es[c] < best) {
          best = es[c];
          ls[j] = static_cast<std::uint8_t>(a);
          lm[j] = static_cast<std::uint8_t>(b);
          best_codes = cs[c];
        }
      }
    };
    if constexpr (NMAX == 31) {
      // Q5_K: the squared error is a rugged function of the sub-block scale (the rounded
      // integer scale is often not the best of its neighbours): the scales within 2 of it
      // times the mins within 1. All 15 are evaluated first and the best picked afterwards
      // (in the same order, so the same choice as evaluating one by one): no data-dependent
      // branch between the independent evaluations, so they overlap in the pipeline.
      float es[15];
      kq::vals<32> cs[15];
      for (int c = 0; c < 15; ++c) {
        const int a = l0 - 2 + c / 3, b = m0 - 1 + c % 3;
        const float ds = D * static_cast<float>(a) * sb.up;
        const float dmv = DM * static_cast<float>(b) * sb.up;
        es[c] = kq::affine_eval<32, NMAX>(xj, ds, dmv, cs[c]);
      }
      for (int c = 0; c < 15; ++c) {
        const int a = l0 - 2 + c / 3, b = m0 - 1 + c % 3;
        if (a < 0 || a > 63 || b < 0 || b > 63) continue;
        if (!((Dp > 0.0f || a == l0) && (DMp > 0.0f || b == m0))) continue;
        if (es[c] < best) {
          best = es[c];
          ls[j] = static_cast<std::uint8_t>(a);
          lm[j] = static_cast<std::uint8_t>(b);
          best_codes = cs[c];
        }
      }
    } else {
      // Q4_K: the nearest integer scale and min, then each moved by one step (the scale
      // first, then the min with the best scale)
      eval3(l0, m0, l0 - 1, m0, l0 + 1, m0, true, Dp > 0.0f);
      eval3(ls[j], m0 - 1, ls[j], m0 + 1, ls[j], m0 + 1, DMp > 0.0f, DMp > 0.0f);
    }
    best_codes.to_bytes(L + 32 * j, 0);
  }
  set_scales_mins_k4(ls, lm, y.scales);
}

/// Separates the products of a decoder from the following subtraction: memory written
/// before it is re-read after it, so the compiler cannot fuse d * q - m into an FMA (ggml's
/// C code rounds the product first) while both loops stay vectorised.
inline void product_barrier() noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __asm__ __volatile__("" ::: "memory");
#endif
}

/// vec_dot of a Q4_K / Q5_K row with Q8_K as ggml's generic code computes it; codes(i, a)
/// writes block i's 256 codes.
template <class Block, class Codes>
inline float q45_K_vec_dot(std::int64_t n, const Block* x, const block_q8_K* y,
                           Codes codes) noexcept {
  float sums[8] = {};
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < n / qk_k; ++i) {
    std::int8_t a[256];
    codes(x[i], a);
    std::uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) get_scale_min_k4(j, x[i].scales, sc[j], mn[j]);
    int sumi = 0;
    for (int j = 0; j < 16; ++j) sumi += y[i].bsums[j] * mn[j / 2];
    std::int32_t aux32[8] = {};
    const std::int8_t* q8 = y[i].qs;
    for (int j = 0; j < 8; ++j) {
      std::int32_t t[32];
      for (int l = 0; l < 32; ++l) t[l] = q8[32 * j + l] * a[32 * j + l];
      for (int l = 0; l < 8; ++l) aux32[l] += sc[j] * (t[l] + t[l + 8] + t[l + 16] + t[l + 24]);
    }
    const float d = x[i].d.to_float() * y[i].d;
    for (int l = 0; l < 8; ++l)
      sums[l] += unfused<simd::scalar>(d * static_cast<float>(aux32[l]));
    const float dmin = x[i].dmin.to_float() * y[i].d;
    sumf -= unfused<simd::scalar>(dmin * static_cast<float>(sumi));
  }
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  return sumf;
}

inline void q4_K_codes(const block_q4_K& b, std::int8_t* a) noexcept {
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      a[64 * c + l] = static_cast<std::int8_t>(b.qs[32 * c + l] & 0xF);
      a[64 * c + 32 + l] = static_cast<std::int8_t>(b.qs[32 * c + l] >> 4);
    }
}

inline void pack_q4_K(const std::uint8_t* L, block_q4_K& y) noexcept {
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l)
      y.qs[32 * c + l] = static_cast<std::uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
}

}  // namespace detail

/// ggml's reference encoder (quantize_row_q4_K_ref, what ggml_quantize_chunk runs without an
/// importance matrix): per sub-block make_qkx2_quants with weights rms + |x| (rmin -1,
/// rdelta 0.1, 20 steps), 6-bit scales and mins relative to their maxima, codes re-rounded
/// against the decoded scales. x: k floats, k a multiple of 256; y: k / 256 blocks.
inline void quantize_row_q4_K_ref(const float* x, block_q4_K* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, x += qk_k) {
    std::uint8_t L[256];
    detail::q45_K_ref_block<15>(x, y[i], L);
    detail::pack_q4_K(L, y[i]);
  }
}

/// qcodec's Q4_K encoder (k_common.hpp): unweighted least-squares sub-block fits over a 3 x 3
/// grid of clipped ranges plus one refit step, a weighted search for the 6-bit scale and min
/// grids, then per sub-block the best of 5 (scale, min) pairs around the rounded ones with
/// codes re-rounded against the decoded values. Blocks any ggml decoder reads.
/// Relative squared error vs ggml's encoder: 0.963x on ggml's known-answer input, 0.970x on
/// N(0,1) (the unquantized-scale fit itself only reaches about 0.94x, so 0.9x would need a
/// different sub-block optimiser). x: k floats, k a multiple of 256; y: k / 256 blocks.
inline void quantize_row_q4_K(const float* x, block_q4_K* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, x += qk_k) {
    std::uint8_t L[256];
    detail::q45_K_block<15>(x, y[i], L);
    detail::pack_q4_K(L, y[i]);
  }
}

/// ggml's decoder: y = (d * sc) * q - (dmin * m) per sub-block, the product rounded before
/// the subtraction. x: k / 256 blocks; y: k floats. Bit-exact with dequantize_row_q4_K.
inline void dequantize_row_q4_K(const block_q4_K* x, float* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, y += qk_k) {
    const float d = x[i].d.to_float(), min = x[i].dmin.to_float();
    float dl[8], ml[8];
    for (int j = 0; j < 8; ++j) {
      std::uint8_t sc, m;
      detail::get_scale_min_k4(j, x[i].scales, sc, m);
      dl[j] = d * sc;
      ml[j] = min * m;
    }
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        y[64 * c + l] = dl[2 * c] * static_cast<float>(x[i].qs[32 * c + l] & 0xF);
        y[64 * c + 32 + l] = dl[2 * c + 1] * static_cast<float>(x[i].qs[32 * c + l] >> 4);
      }
    detail::product_barrier();
    for (int j = 0; j < 8; ++j)
      for (int l = 0; l < 32; ++l) y[32 * j + l] -= ml[j];
  }
}

/// *s = the dot product of the n-value rows x and y as ggml's ggml_vec_dot_q4_K_q8_K_generic
/// computes it, bit for bit: integer sums per block (8 lanes), float accumulation as ggml's.
inline void vec_dot_q4_K_q8_K(std::int64_t n, float* s, const block_q4_K* x,
                              const block_q8_K* y) noexcept {
  QCODEC_ASSERT(n % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  *s = detail::q45_K_vec_dot(n, x, y, detail::q4_K_codes);
}

/// Q4_K for the format registry.
struct q4_K {
  using block = block_q4_K;
  using dot_block = block_q8_K;
  static constexpr std::size_t block_values = 256;
  static constexpr std::size_t block_bytes = sizeof(block_q4_K);
  static constexpr const char* name = "q4_K";
  static constexpr double bits_per_value = 4.5;
  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q4_K(x, y, k);
  }
  static void quantize_row_ref(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q4_K_ref(x, y, k);
  }
  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    dequantize_row_q4_K(x, y, k);
  }
  static void quantize_dot_row(const float* x, dot_block* y, std::int64_t k) noexcept {
    quantize_row_q8_K(x, y, k);
  }
  static void vec_dot(std::int64_t n, float* s, const block* x, const dot_block* y) noexcept {
    vec_dot_q4_K_q8_K(n, s, x, y);
  }
};

}  // namespace qcodec::ggml
