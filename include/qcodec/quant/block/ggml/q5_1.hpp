#pragma once
// Q5_1: ggml's 5-bit block format with an offset.
//
// Layout (block_q5_1, common.hpp): 24 bytes per 32 values = 6 bits per value including scale
// and offset: d, m (binary16), qh[4], qs[16] (as Q5_0); value i decodes to d * q[i] + m. Dot
// products pair it with Q8_1.
//
// Provenance: ggml (ggml-quants.c quantize_row_q5_1_ref / dequantize_row_q5_1, ggml-cpu/quants.c
// ggml_vec_dot_q5_1_q8_1_generic), release 0.21.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/block/ggml/common.hpp>
#include <qcodec/quant/block/ggml/q8_1.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace qcodec::ggml {

/// ggml's reference encoder, byte-identical to ggml's quantize_row_q5_1_ref: m = min,
/// d = (max - min) / 31, q[i] = trunc((x[i] - min) / d + 0.5).
/// x: k floats, k a multiple of 32; y: k / 32 blocks.
inline void quantize_row_q5_1_ref(const float* x, block_q5_1* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk; ++i, x += qk) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = half(d);
    y[i].m = half(min);
    std::uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      // unfused: ggml's C code adds after a rounded multiply (GCC would fuse them in C++)
      const float x0 = detail::unfused<simd::scalar>((x[j] - min) * id);
      const float x1 = detail::unfused<simd::scalar>((x[j + 16] - min) * id);
      // NaN (a NaN or infinite input, or max - min overflowing: id = 0) converts as on x86-64
      const int q0 = static_cast<std::uint8_t>(detail::trunc_to_int<simd::scalar>(x0 + 0.5f));
      const int q1 = static_cast<std::uint8_t>(detail::trunc_to_int<simd::scalar>(x1 + 0.5f));
      y[i].qs[j] = static_cast<std::uint8_t>((q0 & 15) | ((q1 & 15) << 4));
      qh |= static_cast<std::uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<std::uint32_t>((q1 >> 4) & 1) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, sizeof qh);
  }
}

/// qcodec's Q5_1 encoder (the default): Q4_1's least-squares search with levels
/// 0..31 (detail::offset_encode). Relative squared error vs ggml's encoder: 0.82x on N(0,1),
/// 0.69x on ggml's known-answer input.
/// x: k floats, k a multiple of 32; y: k / 32 blocks. Scalar algorithm compiled for each target;
/// same bits on every target.
inline void quantize_row_q5_1(const float* x, block_q5_1* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.q5_1.quantize_row(x, y, k);
}

/// ggml's decoder: y[i] = float(q[i]) * d + m. x: k / 32 blocks; y: k floats. Bit-exact with ggml's
/// dequantize_row_q5_1 on every target.
inline void dequantize_row_q5_1(const block_q5_1* x, float* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.q5_1.dequantize_row(x, y, k);
}

/// *s = the dot product of the n-value rows x and y as ggml's generic
/// ggml_vec_dot_q5_1_q8_1_generic computes it, bit for bit: per block (x.d * y.d) * float(sum q *
/// y.q) + x.m * y.s, accumulated block by block.
inline void vec_dot_q5_1_q8_1(std::int64_t n, float* s, const block_q5_1* x,
                              const block_q8_1* y) noexcept {
  QCODEC_ASSERT(n % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.q5_1.vec_dot(n, s, x, y);
}

/// Q5_1 for the format registry.
struct q5_1 {
  using block = block_q5_1;
  using dot_block = block_q8_1;
  static constexpr std::size_t block_values = 32;
  static constexpr std::size_t block_bytes = sizeof(block_q5_1);
  static constexpr const char* name = "q5_1";
  static constexpr double bits_per_value = 6.0;
  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q5_1(x, y, k);
  }
  static void quantize_row_ref(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q5_1_ref(x, y, k);
  }
  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    dequantize_row_q5_1(x, y, k);
  }
  static void quantize_dot_row(const float* x, dot_block* y, std::int64_t k) noexcept {
    quantize_row_q8_1(x, y, k);
  }
  static void vec_dot(std::int64_t n, float* s, const block* x, const dot_block* y) noexcept {
    vec_dot_q5_1_q8_1(n, s, x, y);
  }
};

}  // namespace qcodec::ggml
