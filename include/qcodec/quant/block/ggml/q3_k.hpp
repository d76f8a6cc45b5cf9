#pragma once
// Q3_K: ggml's 3-bit K-quant: super-blocks of 256 values in 16 sub-blocks of 16, each with a
// 6-bit signed scale under one binary16 super-block scale.
//
// Layout (block_q3_K, k_common.hpp): 110 bytes per 256 values = 3.4375 bits per value including
// all scales: hmask[32], qs[64], scales[12] (16 6-bit scales biased by 32, packed), d. Value
// v = 128 h + 32 s + l (l < 32) has its low two bits at bits 2 s, 2 s + 1 of qs[32 h + l] (as
// Q2_K) and its third bit at bit 4 h + s of hmask[l]; sub-block j = v / 16 decodes as
// (d * (sc[j] - 32)) * (q - 4), q in 0..7. Dot products pair it with Q8_K.
//
// Provenance: ggml (ggml-quants.c quantize_row_q3_K_ref / make_q3_quants / dequantize_row_q3_K,
// ggml-cpu/quants.c ggml_vec_dot_q3_K_q8_K_generic), release 0.21.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/block/ggml/k_common.hpp>
#include <qcodec/quant/block/ggml/q6_k.hpp>
#include <qcodec/quant/block/ggml/q8_k.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace qcodec::ggml {
namespace detail {

/// ggml's make_q3_quants with do_rmse (weights x^2, coordinate-descent refinement of the
/// codes), with ggml's unfused arithmetic. Writes l + nmax to L and returns the scale.
inline float make_q3_quants(int n, int nmax, const float* x, std::int8_t* L) noexcept {
  const auto mul = [](float a, float b) { return unfused<simd::scalar>(a * b); };
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const float iscale = -static_cast<float>(nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = l < -nmax ? -nmax : (l > nmax - 1 ? nmax - 1 : l);
    L[i] = static_cast<std::int8_t>(l);
    const float w = mul(x[i], x[i]);
    sumlx += mul(mul(w, x[i]), static_cast<float>(l));
    suml2 += mul(mul(w, static_cast<float>(l)), static_cast<float>(l));
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = mul(x[i], x[i]);
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - mul(mul(w, x[i]), li);
      if (slx > 0) {
        float sl2 = suml2 - mul(mul(w, li), li);
        int new_l = nearest_int(mul(x[i], sl2) / slx);
        new_l = new_l < -nmax ? -nmax : (new_l > nmax - 1 ? nmax - 1 : new_l);
        if (new_l != L[i]) {
          const float nl = static_cast<float>(new_l);
          slx += mul(mul(w, x[i]), nl);
          sl2 += mul(mul(w, nl), nl);
          if (sl2 > 0 && mul(mul(slx, slx), suml2) > mul(mul(sumlx, sumlx), sl2)) {
            L[i] = static_cast<std::int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

inline void q3_K_codes(const block_q3_K& b, std::int8_t* a) noexcept {
  for (int h = 0; h < 2; ++h)
    for (int s = 0; s < 4; ++s)
      for (int l = 0; l < 32; ++l) {
        const int lo = (b.qs[32 * h + l] >> (2 * s)) & 3;
        const int hi = (b.hmask[l] >> (4 * h + s)) & 1;
        a[128 * h + 32 * s + l] = static_cast<std::int8_t>(lo - (hi ? 0 : 4));
      }
}

/// Packs codes L[256] (0..7, value order) into qs / hmask.
inline void pack_q3_K(const std::uint8_t* L, block_q3_K& y) noexcept {
  std::uint8_t lo[256];
  for (int l = 0; l < 32; ++l) y.hmask[l] = 0;
  for (int j = 0; j < 256; ++j) {
    lo[j] = static_cast<std::uint8_t>(L[j] & 3);
    y.hmask[j % 32] = static_cast<std::uint8_t>(y.hmask[j % 32] | ((L[j] >> 2) << (j / 32)));
  }
  pack_2bit_k(lo, y.qs);
}

}  // namespace detail

/// ggml's reference encoder (quantize_row_q3_K_ref): make_q3_quants per 16 values, 6-bit
/// scales with the largest-magnitude one mapped to -32, codes re-rounded against the decoded
/// scales. x: k floats, k a multiple of 256; y: k / 256 blocks.
inline void quantize_row_q3_K_ref(const float* x, block_q3_K* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, x += qk_k) {
    std::int8_t L[256];
    float scales[16];
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
      scales[j] = detail::make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
      const float scale = std::fabs(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }
    int ls[16] = {};
    if (max_scale != 0.0f) {
      const float iscale = -32.0f / max_scale;
      for (int j = 0; j < 16; ++j) {
        // ggml: int8_t l = nearest_int(...); l = MAX(-32, MIN(31, l)) + 32
        const auto l8 = static_cast<std::int8_t>(detail::nearest_int(iscale * scales[j]));
        ls[j] = (l8 < -32 ? -32 : (l8 > 31 ? 31 : l8)) + 32;
      }
      detail::pack_q3_K_scales(ls, y[i].scales);
      y[i].d = half(1 / iscale);
    } else {
      std::memset(y[i].scales, 0, 12);
      y[i].d = half(0.0f);
    }
    int sc[16];
    detail::unpack_q3_K_scales(y[i].scales, sc);
    std::uint8_t U[256];
    for (int j = 0; j < 256; ++j) U[j] = static_cast<std::uint8_t>(L[j]);
    for (int j = 0; j < 16; ++j) {
      const float d = y[i].d.to_float() * static_cast<float>(sc[j] - 32);
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int l = detail::nearest_int(x[16 * j + ii] / d);
        l = l < -4 ? -4 : (l > 3 ? 3 : l);
        U[16 * j + ii] = static_cast<std::uint8_t>(l + 4);
      }
    }
    detail::pack_q3_K(U, y[i]);
  }
}

/// qcodec's Q3_K encoder (k_common.hpp, detail::sym16_K_block): unweighted least-squares
/// sub-block scales, a weighted search for the 6-bit scale grid, the best of the 3 nearest
/// scales per sub-block with codes re-rounded against the decoded scale. Relative squared error
/// vs ggml's encoder: 0.903x on ggml's known-answer input, 0.905x on N(0,1) (a brute-force
/// scale search per sub-block reaches the same: the format's limit for single-scale fits).
/// x: k floats, k a multiple of 256; y: k / 256 blocks.
inline void quantize_row_q3_K(const float* x, block_q3_K* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, x += qk_k) {
    std::uint8_t L[256];
    int ls[16];
    detail::sym16_K_block<4, -32, 31>(x, y[i].d, ls, L);
    for (int j = 0; j < 16; ++j) ls[j] += 32;
    detail::pack_q3_K_scales(ls, y[i].scales);
    detail::pack_q3_K(L, y[i]);
  }
}

/// ggml's decoder: y = (d * (sc - 32)) * (q - 4). x: k / 256 blocks; y: k floats. Bit-exact
/// with dequantize_row_q3_K.
inline void dequantize_row_q3_K(const block_q3_K* x, float* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, y += qk_k) {
    const float d = x[i].d.to_float();
    int sc[16];
    detail::unpack_q3_K_scales(x[i].scales, sc);
    float dl[16];
    for (int j = 0; j < 16; ++j) dl[j] = d * static_cast<float>(sc[j] - 32);
    // sub-block j = 8 h + 2 s + t holds values 128 h + 32 s + 16 t + l, l < 16
    for (int j = 0; j < 16; ++j) {
      const std::uint8_t* q = x[i].qs + 32 * (j / 8) + 16 * (j % 2);
      const std::uint8_t* hm = x[i].hmask + 16 * (j % 2);
      const int shift = 2 * ((j % 8) / 2), hbit = 4 * (j / 8) + (j % 8) / 2;
      for (int l = 0; l < 16; ++l) {
        const int c = ((q[l] >> shift) & 3) + 4 * ((hm[l] >> hbit) & 1) - 4;
        y[16 * j + l] = dl[j] * static_cast<float>(c);
      }
    }
  }
}

/// *s = the dot product of the n-value rows x and y as ggml's ggml_vec_dot_q3_K_q8_K_generic
/// computes it, bit for bit.
inline void vec_dot_q3_K_q8_K(std::int64_t n, float* s, const block_q3_K* x,
                              const block_q8_K* y) noexcept {
  QCODEC_ASSERT(n % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  float sums[8] = {};
  for (std::int64_t i = 0; i < n / qk_k; ++i) {
    std::int8_t a[256];
    detail::q3_K_codes(x[i], a);
    int sc[16];
    detail::unpack_q3_K_scales(x[i].scales, sc);
    std::int32_t aux32[8] = {};
    for (int j = 0; j < 16; ++j) {
      std::int32_t t[16];
      for (int l = 0; l < 16; ++l) t[l] = y[i].qs[16 * j + l] * a[16 * j + l];
      for (int l = 0; l < 8; ++l) aux32[l] += (sc[j] - 32) * (t[l] + t[l + 8]);
    }
    const float d = x[i].d.to_float() * y[i].d;
    for (int l = 0; l < 8; ++l)
      sums[l] += detail::unfused<simd::scalar>(d * static_cast<float>(aux32[l]));
  }
  float sumf = 0.0f;
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  *s = sumf;
}

/// Q3_K for the format registry.
struct q3_K {
  using block = block_q3_K;
  using dot_block = block_q8_K;
  static constexpr std::size_t block_values = 256;
  static constexpr std::size_t block_bytes = sizeof(block_q3_K);
  static constexpr const char* name = "q3_K";
  static constexpr double bits_per_value = 3.4375;
  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q3_K(x, y, k);
  }
  static void quantize_row_ref(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q3_K_ref(x, y, k);
  }
  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    dequantize_row_q3_K(x, y, k);
  }
  static void quantize_dot_row(const float* x, dot_block* y, std::int64_t k) noexcept {
    quantize_row_q8_K(x, y, k);
  }
  static void vec_dot(std::int64_t n, float* s, const block* x, const dot_block* y) noexcept {
    vec_dot_q3_K_q8_K(n, s, x, y);
  }
};

}  // namespace qcodec::ggml
