#pragma once
// Q8_1: ggml's 8-bit activation format for dot products with the offset formats Q4_1 and Q5_1
// (their vec_dot_type in ggml 0.21). It carries s = d * sum(q) so that the offset term of the
// dot product costs one multiply per block. Never a storage format in ggml.
//
// Layout (block_q8_1, common.hpp): 36 bytes per 32 values = 9 bits per value: d, s (binary16),
// then qs[32] (int8); value i decodes to d * qs[i].
//
// Provenance: ggml (ggml-quants.c quantize_row_q8_1_ref), release 0.21.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/block/ggml/common.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace qcodec::ggml {

/// ggml's reference encoder, byte-identical to ggml's quantize_row_q8_1_ref: Q8_0's rounding,
/// and s = binary16(float(sum q) * d) with the unrounded d.
/// x: k floats, k a multiple of 32; y: k / 32 blocks.
inline void quantize_row_q8_1_ref(const float* x, block_q8_1* y, std::int64_t k) noexcept {
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
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      // through int: NaN (a NaN or infinite input, or id overflowing) converts as on x86-64
      y[i].qs[j] =
          static_cast<std::int8_t>(detail::trunc_to_int<simd::scalar>(std::round(x[j] * id)));
      sum += y[i].qs[j];
    }
    y[i].s = half(static_cast<float>(sum) * d);
  }
}

/// qcodec's Q8_1 encoder (the default): the codes of quantize_row_q8_0 (rounded against the
/// decoded scale), and s = binary16(float(sum q) * decoded d), the exact sum of the decoded
/// values before rounding. x: k floats, k a multiple of 32; y: k / 32 blocks. SIMD kernel.
inline void quantize_row_q8_1(const float* x, block_q8_1* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.q8_1.quantize_row(x, y, k);
}

/// y[i] = float(q[i]) * d (ggml has no Q8_1 decoder; this is the value the dot products use).
inline void dequantize_row_q8_1(const block_q8_1* x, float* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.q8_1.dequantize_row(x, y, k);
}

/// Q8_1 (activation format) for the format registry.
struct q8_1 {
  using block = block_q8_1;
  static constexpr std::size_t block_values = 32;
  static constexpr std::size_t block_bytes = sizeof(block_q8_1);
  static constexpr const char* name = "q8_1";
  static constexpr double bits_per_value = 9.0;
  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q8_1(x, y, k);
  }
  static void quantize_row_ref(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q8_1_ref(x, y, k);
  }
  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    dequantize_row_q8_1(x, y, k);
  }
};

}  // namespace qcodec::ggml
