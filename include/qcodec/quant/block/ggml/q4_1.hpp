#pragma once
// Q4_1: ggml's 4-bit block format with an offset.
//
// Layout (block_q4_1, common.hpp): 20 bytes per 32 values = 5 bits per value including scale
// and offset: d, m (binary16), then qs[16] (two codes per byte, as Q4_0); value i decodes to
// d * q[i] + m (a multiply, then an add). Dot products pair it with Q8_1.
//
// Provenance: ggml (ggml-quants.c quantize_row_q4_1_ref / dequantize_row_q4_1, ggml-cpu/quants.c
// ggml_vec_dot_q4_1_q8_1_generic), release 0.21.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/block/ggml/common.hpp>
#include <qcodec/quant/block/ggml/q8_1.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace qcodec::ggml {

/// ggml's reference encoder, byte-identical to ggml's quantize_row_q4_1_ref: m = min,
/// d = (max - min) / 15, q[i] = min(15, trunc((x[i] - min) / d + 0.5)).
/// x: k floats, k a multiple of 32; y: k / 32 blocks.
inline void quantize_row_q4_1_ref(const float* x, block_q4_1* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk; ++i, x += qk) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = half(d);
    y[i].m = half(min);
    for (int j = 0; j < 16; ++j) {
      // unfused: ggml's C code adds after a rounded multiply (GCC would fuse them in C++)
      const float x0 = detail::unfused<simd::scalar>((x[j] - min) * id);
      const float x1 = detail::unfused<simd::scalar>((x[j + 16] - min) * id);
      // NaN (a NaN or infinite input, or max - min overflowing: id = 0) converts as on x86-64
      const int q0 = detail::trunc_to_int<simd::scalar>(x0 + 0.5f);
      const int q1 = detail::trunc_to_int<simd::scalar>(x1 + 0.5f);
      y[i].qs[j] = static_cast<std::uint8_t>((q0 < 15 ? q0 : 15) | ((q1 < 15 ? q1 : 15) << 4));
    }
  }
}

/// qcodec's Q4_1 encoder (the default): least-squares fits of d and m from three
/// candidate scales plus one refit step (detail::offset_encode), then rounding against the
/// decoded binary16 d and m. Relative squared error vs ggml's min/max encoder: 0.82x on
/// N(0,1), 0.76x on ggml's known-answer input.
/// x: k floats, k a multiple of 32; y: k / 32 blocks. Scalar algorithm compiled for each target;
/// same bits on every target.
inline void quantize_row_q4_1(const float* x, block_q4_1* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.q4_1.quantize_row(x, y, k);
}

/// ggml's decoder: y[i] = float(q[i]) * d + m. x: k / 32 blocks; y: k floats. Bit-exact with ggml's
/// dequantize_row_q4_1 on every target.
inline void dequantize_row_q4_1(const block_q4_1* x, float* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.q4_1.dequantize_row(x, y, k);
}

/// *s = the dot product of the n-value rows x and y as ggml's generic
/// ggml_vec_dot_q4_1_q8_1_generic computes it, bit for bit: per block (x.d * y.d) * float(sum q *
/// y.q) + x.m * y.s, accumulated block by block.
inline void vec_dot_q4_1_q8_1(std::int64_t n, float* s, const block_q4_1* x,
                              const block_q8_1* y) noexcept {
  QCODEC_ASSERT(n % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.q4_1.vec_dot(n, s, x, y);
}

/// Q4_1 for the format registry.
struct q4_1 {
  using block = block_q4_1;
  using dot_block = block_q8_1;
  static constexpr std::size_t block_values = 32;
  static constexpr std::size_t block_bytes = sizeof(block_q4_1);
  static constexpr const char* name = "q4_1";
  static constexpr double bits_per_value = 5.0;
  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q4_1(x, y, k);
  }
  static void quantize_row_ref(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q4_1_ref(x, y, k);
  }
  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    dequantize_row_q4_1(x, y, k);
  }
  static void quantize_dot_row(const float* x, dot_block* y, std::int64_t k) noexcept {
    quantize_row_q8_1(x, y, k);
  }
  static void vec_dot(std::int64_t n, float* s, const block* x, const dot_block* y) noexcept {
    vec_dot_q4_1_q8_1(n, s, x, y);
  }
};

}  // namespace qcodec::ggml
