#pragma once
// Q5_0: ggml's 5-bit symmetric block format.
//
// Layout (block_q5_0, common.hpp): 22 bytes per 32 values = 5.5 bits per value including the
// scale: d (binary16), qh[4] (bit i of the little-endian word is bit 4 of q[i]), qs[16] (low four
// bits, two per byte as Q4_0); value i decodes to d * (q[i] - 16). Dot products pair it with
// Q8_0.
//
// Provenance: ggml (ggml-quants.c quantize_row_q5_0_ref / dequantize_row_q5_0, ggml-cpu/quants.c
// ggml_vec_dot_q5_0_q8_0_generic), release 0.21.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/block/ggml/common.hpp>
#include <qcodec/quant/block/ggml/q8_0.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace qcodec::ggml {

/// ggml's reference encoder, byte-identical to ggml's quantize_row_q5_0_ref: with m the first
/// value of largest magnitude, d = m / -16 and q[i] = min(31, trunc(x[i] / d + 16.5)).
/// x: k floats, k a multiple of 32; y: k / 32 blocks.
inline void quantize_row_q5_0_ref(const float* x, block_q5_0* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk; ++i, x += qk) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = half(d);
    std::uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      // unfused: ggml's C code adds after a rounded multiply (GCC would fuse them in C++)
      const float x0 = detail::unfused<simd::scalar>(x[j] * id);
      const float x1 = detail::unfused<simd::scalar>(x[j + 16] * id);
      // NaN (from a NaN or infinite input) converts as on x86-64
      int q0 = detail::trunc_to_int<simd::scalar>(x0 + 16.5f);
      int q1 = detail::trunc_to_int<simd::scalar>(x1 + 16.5f);
      q0 = q0 < 31 ? q0 : 31;
      q1 = q1 < 31 ? q1 : 31;
      y[i].qs[j] = static_cast<std::uint8_t>((q0 & 15) | ((q1 & 15) << 4));
      qh |= static_cast<std::uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<std::uint32_t>((q1 >> 4) & 1) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, sizeof qh);
  }
}

/// qcodec's Q5_0 encoder (the default): Q4_0's scale search with levels -16..15
/// (candidates mapping the largest-magnitude value to -16, -16.5 and 15). Relative squared
/// error vs ggml's encoder: 0.90x on N(0,1), 0.93x on ggml's known-answer input.
/// x: k floats, k a multiple of 32; y: k / 32 blocks. SIMD kernel; same bits on every target.
inline void quantize_row_q5_0(const float* x, block_q5_0* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.q5_0.quantize_row(x, y, k);
}

/// ggml's decoder: y[i] = float(q[i] - 16) * d. x: k / 32 blocks; y: k floats. Bit-exact with
/// ggml's dequantize_row_q5_0 on every target.
inline void dequantize_row_q5_0(const block_q5_0* x, float* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.q5_0.dequantize_row(x, y, k);
}

/// *s = the dot product of the n-value rows x and y as ggml's generic
/// ggml_vec_dot_q5_0_q8_0_generic computes it, bit for bit: per block (x.d * y.d) * float(sum (q -
/// 16) * y.q), accumulated block by block.
inline void vec_dot_q5_0_q8_0(std::int64_t n, float* s, const block_q5_0* x,
                              const block_q8_0* y) noexcept {
  QCODEC_ASSERT(n % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.q5_0.vec_dot(n, s, x, y);
}

/// Q5_0 for the format registry.
struct q5_0 {
  using block = block_q5_0;
  using dot_block = block_q8_0;
  static constexpr std::size_t block_values = 32;
  static constexpr std::size_t block_bytes = sizeof(block_q5_0);
  static constexpr const char* name = "q5_0";
  static constexpr double bits_per_value = 5.5;
  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q5_0(x, y, k);
  }
  static void quantize_row_ref(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q5_0_ref(x, y, k);
  }
  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    dequantize_row_q5_0(x, y, k);
  }
  static void quantize_dot_row(const float* x, dot_block* y, std::int64_t k) noexcept {
    quantize_row_q8_0(x, y, k);
  }
  static void vec_dot(std::int64_t n, float* s, const block* x, const dot_block* y) noexcept {
    vec_dot_q5_0_q8_0(n, s, x, y);
  }
};

}  // namespace qcodec::ggml
