#pragma once
// Q5_K: ggml's 5-bit K-quant: Q4_K's super-block (8 sub-blocks of 32 values, 6-bit scales and
// mins under two binary16 scales) with 5-bit codes.
//
// Layout (block_q5_K, k_common.hpp): 176 bytes per 256 values = 5.5 bits per value including
// all scales: d, dmin, scales[12] (as Q4_K), qh[32], qs[128]. Value 64 c + l (l < 32) has its
// low four bits in the low nibble of qs[32 c + l] and its fifth bit in bit 2 c of qh[l]; value
// 64 c + 32 + l the high nibble and bit 2 c + 1. Sub-block j decodes as
// (d * sc[j]) * q - (dmin * m[j]), q in 0..31. Dot products pair it with Q8_K.
//
// Provenance: ggml (ggml-quants.c quantize_row_q5_K_ref / dequantize_row_q5_K,
// ggml-cpu/quants.c ggml_vec_dot_q5_K_q8_K_generic), release 0.21.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/block/ggml/k_common.hpp>
#include <qcodec/quant/block/ggml/q4_k.hpp>
#include <qcodec/quant/block/ggml/q8_k.hpp>

#include <cstddef>
#include <cstdint>

namespace qcodec::ggml {
namespace detail {

inline void q5_K_codes(const block_q5_K& b, std::int8_t* a) noexcept {
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const int h = b.qh[l] >> (2 * c);
      a[64 * c + l] = static_cast<std::int8_t>((b.qs[32 * c + l] & 0xF) | ((h & 1) << 4));
      a[64 * c + 32 + l] = static_cast<std::int8_t>((b.qs[32 * c + l] >> 4) | ((h & 2) << 3));
    }
}

inline void pack_q5_K(const std::uint8_t* L, block_q5_K& y) noexcept {
  for (int l = 0; l < 32; ++l) y.qh[l] = 0;
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
      y.qs[32 * c + l] = static_cast<std::uint8_t>((l1 & 0xF) | ((l2 & 0xF) << 4));
      y.qh[l] = static_cast<std::uint8_t>(y.qh[l] | ((l1 >> 4) << (2 * c)) |
                                          ((l2 >> 4) << (2 * c + 1)));
    }
}

}  // namespace detail

/// ggml's reference encoder (quantize_row_q5_K_ref): as Q4_K's with 5-bit codes
/// (make_qkx2_quants rmin -0.5, rdelta 0.1, 15 steps). x: k floats; y: k / 256 blocks.
inline void quantize_row_q5_K_ref(const float* x, block_q5_K* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, x += qk_k) {
    std::uint8_t L[256];
    detail::q45_K_ref_block<31>(x, y[i], L);
    detail::pack_q5_K(L, y[i]);
  }
}

/// qcodec's Q5_K encoder: Q4_K's (k_common.hpp, q4_k.hpp) with 5-bit codes, two refit steps
/// and, per sub-block, the best of the integer scales within 2 of the rounded one times the
/// mins within 1. Relative squared error vs ggml's encoder: 0.771x on ggml's known-answer
/// input, 0.918x on N(0,1). x: k floats, k a multiple of 256; y: k / 256 blocks.
inline void quantize_row_q5_K(const float* x, block_q5_K* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, x += qk_k) {
    std::uint8_t L[256];
    detail::q45_K_block<31>(x, y[i], L);
    detail::pack_q5_K(L, y[i]);
  }
}

/// ggml's decoder: y = (d * sc) * q - (dmin * m) per sub-block, the product rounded first.
/// x: k / 256 blocks; y: k floats. Bit-exact with dequantize_row_q5_K.
inline void dequantize_row_q5_K(const block_q5_K* x, float* y, std::int64_t k) noexcept {
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
        const int h = x[i].qh[l] >> (2 * c);
        const int q1 = (x[i].qs[32 * c + l] & 0xF) | ((h & 1) << 4);
        const int q2 = (x[i].qs[32 * c + l] >> 4) | ((h & 2) << 3);
        y[64 * c + l] = dl[2 * c] * static_cast<float>(q1);
        y[64 * c + 32 + l] = dl[2 * c + 1] * static_cast<float>(q2);
      }
    detail::product_barrier();
    for (int j = 0; j < 8; ++j)
      for (int l = 0; l < 32; ++l) y[32 * j + l] -= ml[j];
  }
}

/// *s = the dot product of the n-value rows x and y as ggml's ggml_vec_dot_q5_K_q8_K_generic
/// computes it, bit for bit.
inline void vec_dot_q5_K_q8_K(std::int64_t n, float* s, const block_q5_K* x,
                              const block_q8_K* y) noexcept {
  QCODEC_ASSERT(n % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  *s = detail::q45_K_vec_dot(n, x, y, detail::q5_K_codes);
}

/// Q5_K for the format registry.
struct q5_K {
  using block = block_q5_K;
  using dot_block = block_q8_K;
  static constexpr std::size_t block_values = 256;
  static constexpr std::size_t block_bytes = sizeof(block_q5_K);
  static constexpr const char* name = "q5_K";
  static constexpr double bits_per_value = 5.5;
  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q5_K(x, y, k);
  }
  static void quantize_row_ref(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q5_K_ref(x, y, k);
  }
  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    dequantize_row_q5_K(x, y, k);
  }
  static void quantize_dot_row(const float* x, dot_block* y, std::int64_t k) noexcept {
    quantize_row_q8_K(x, y, k);
  }
  static void vec_dot(std::int64_t n, float* s, const block* x, const dot_block* y) noexcept {
    vec_dot_q5_K_q8_K(n, s, x, y);
  }
};

}  // namespace qcodec::ggml
