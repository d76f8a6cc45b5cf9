#pragma once
// Q8_0: ggml's 8-bit block format, and the activation format that Q4_0, Q5_0, Q8_0, IQ4_NL and
// MXFP4 rows are dotted with (their vec_dot_type in ggml 0.21).
//
// Layout (block_q8_0, common.hpp): 34 bytes per 32 values = 8.5 bits per value including the
// scale: d (binary16), then qs[32] (int8); value i decodes to d * qs[i].
//
// Provenance: ggml (ggml-quants.c quantize_row_q8_0_ref / dequantize_row_q8_0, ggml-cpu/quants.c
// ggml_vec_dot_q8_0_q8_0_generic), release 0.21.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/block/ggml/common.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace qcodec::ggml {

/// ggml's reference encoder, byte-identical to ggml's quantize_row_q8_0_ref:
/// d = amax / 127, q[i] = roundf(x[i] / d) (ties away from zero), d stored as binary16.
/// x: k floats, k a multiple of 32; y: k / 32 blocks.
inline void quantize_row_q8_0_ref(const float* x, block_q8_0* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk; ++i, x += qk) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) {
      const float a = std::fabs(x[j]);
      amax = amax > a ? amax : a;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = half(d);
    // through int: NaN (a NaN or infinite input, or id overflowing) converts as on x86-64
    for (int j = 0; j < 32; ++j)
      y[i].qs[j] =
          static_cast<std::int8_t>(detail::trunc_to_int<simd::scalar>(std::round(x[j] * id)));
  }
}

/// qcodec's Q8_0 encoder (the default): ggml's scale, with every value rounded against the
/// binary16 scale the decoder will use (never a larger error than ggml's encoder for any
/// value), ties to even, scales clamped to 65504 so that huge inputs saturate. The gain is small
/// (0.998x ggml's relative squared error on N(0,1), 0.996x on ggml's known-answer input): with
/// 255 levels the error is rounding noise that the scale barely changes.
/// x: k floats, k a multiple of 32; y: k / 32 blocks. SIMD kernel; same bits on every target.
inline void quantize_row_q8_0(const float* x, block_q8_0* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.q8_0.quantize_row(x, y, k);
}

/// ggml's decoder: y[i] = float(q[i]) * d. x: k / 32 blocks; y: k floats. Bit-exact with ggml.
inline void dequantize_row_q8_0(const block_q8_0* x, float* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.q8_0.dequantize_row(x, y, k);
}

/// *s = sum over blocks of float(sum_i x.q[i] * y.q[i]) * (x.d * y.d), accumulated block by
/// block in one float: ggml's generic ggml_vec_dot_q8_0_q8_0, bit for bit. n values per row.
inline void vec_dot_q8_0_q8_0(std::int64_t n, float* s, const block_q8_0* x,
                              const block_q8_0* y) noexcept {
  QCODEC_ASSERT(n % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.q8_0.vec_dot(n, s, x, y);
}

/// Q8_0 for the format registry.
struct q8_0 {
  using block = block_q8_0;
  using dot_block = block_q8_0;
  static constexpr std::size_t block_values = 32;
  static constexpr std::size_t block_bytes = sizeof(block_q8_0);
  static constexpr const char* name = "q8_0";
  static constexpr double bits_per_value = 8.5;
  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q8_0(x, y, k);
  }
  static void quantize_row_ref(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q8_0_ref(x, y, k);
  }
  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    dequantize_row_q8_0(x, y, k);
  }
  static void quantize_dot_row(const float* x, dot_block* y, std::int64_t k) noexcept {
    quantize_row_q8_0(x, y, k);
  }
  static void vec_dot(std::int64_t n, float* s, const block* x, const dot_block* y) noexcept {
    vec_dot_q8_0_q8_0(n, s, x, y);
  }
};

}  // namespace qcodec::ggml
