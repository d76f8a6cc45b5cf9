#pragma once
// MXFP4: the OCP Microscaling FP4 format as ggml stores it: 32 E2M1 values sharing an E8M0
// (power of two) scale.
//
// Layout (block_mxfp4, common.hpp): 17 bytes per 32 values = 4.25 bits per value including
// the scale: e (E8M0 exponent), qs[16] (E2M1 codes, two per byte as Q4_0); value i decodes to
// float(kvalues_mxfp4[q[i]]) * 2^(e - 128) (the table holds twice the E2M1 values). Dot
// products pair it with Q8_0.
//
// Provenance: ggml (ggml-quants.c quantize_row_mxfp4_ref / dequantize_row_mxfp4, ggml-impl.h
// GGML_E8M0_TO_FP32_HALF, ggml-cpu/quants.c ggml_vec_dot_mxfp4_q8_0_generic), release 0.21.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/block/ggml/common.hpp>
#include <qcodec/quant/block/ggml/q8_0.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace qcodec::ggml {

/// ggml's reference encoder, byte-identical to ggml's quantize_row_mxfp4_ref (on x86-64):
/// e = floor(log2f(amax)) - 2 + 127 (0 for an all-zero block), codes the nearest table values
/// by a linear search (first of equals). For amax < 2^-125 the exponent is negative and ggml
/// converts it to uint8_t out of range; this reproduces x86-64's result (the low byte).
/// x: k floats, k a multiple of 32; y: k / 32 blocks.
inline void quantize_row_mxfp4_ref(const float* x, block_mxfp4* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  const auto nearest = [](float v, float d) {
    int best = 0;
    float best_err = std::fabs(static_cast<float>(kvalues_mxfp4[0]) * d - v);
    for (int c = 1; c < 16; ++c) {
      const float t = static_cast<float>(kvalues_mxfp4[c]) * d;
      const float err = std::fabs(t - v);
      if (err < best_err) {
        best = c;
        best_err = err;
      }
    }
    return best;
  };
  for (std::int64_t i = 0; i < k / qk; ++i, x += qk) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j)
      if (amax < std::fabs(x[j])) amax = std::fabs(x[j]);
    const float ef = amax > 0.0f ? std::floor(std::log2(amax)) - 2.0f + 127.0f : 0.0f;
    // ef = inf for an infinite input: converted as on x86-64
    const auto e = static_cast<std::uint8_t>(detail::trunc_to_int<simd::scalar>(ef));
    const float d = e8m0_to_float_half(e);
    y[i].e = e;
    for (int j = 0; j < 16; ++j)
      y[i].qs[j] = static_cast<std::uint8_t>(nearest(x[j], d) | (nearest(x[j + 16], d) << 4));
  }
}

/// qcodec's MXFP4 encoder (the default): ggml's exponent and the one above it,
/// whichever gives the smaller squared error (detail::mxfp4_encode); codes are the nearest
/// values, as in ggml. Relative squared error vs ggml's encoder: 0.94x on N(0,1), 0.83x on
/// ggml's known-answer input.
/// x: k floats, k a multiple of 32; y: k / 32 blocks. Scalar algorithm compiled for each target;
/// same bits on every target.
inline void quantize_row_mxfp4(const float* x, block_mxfp4* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.mxfp4.quantize_row(x, y, k);
}

/// ggml's decoder: y[i] = float(kvalues_mxfp4[q[i]]) * 2^(e - 128). x: k / 32 blocks; y: k floats.
/// Bit-exact with ggml's dequantize_row_mxfp4 on every target.
inline void dequantize_row_mxfp4(const block_mxfp4* x, float* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.mxfp4.dequantize_row(x, y, k);
}

/// *s = the dot product of the n-value rows x and y as ggml's generic
/// ggml_vec_dot_mxfp4_q8_0_generic computes it, bit for bit: per block (y.d * 2^(x.e - 128)) *
/// float(sum level * y.q), accumulated block by block.
inline void vec_dot_mxfp4_q8_0(std::int64_t n, float* s, const block_mxfp4* x,
                               const block_q8_0* y) noexcept {
  QCODEC_ASSERT(n % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.mxfp4.vec_dot(n, s, x, y);
}

/// MXFP4 for the format registry.
struct mxfp4 {
  using block = block_mxfp4;
  using dot_block = block_q8_0;
  static constexpr std::size_t block_values = 32;
  static constexpr std::size_t block_bytes = sizeof(block_mxfp4);
  static constexpr const char* name = "mxfp4";
  static constexpr double bits_per_value = 4.25;
  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_mxfp4(x, y, k);
  }
  static void quantize_row_ref(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_mxfp4_ref(x, y, k);
  }
  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    dequantize_row_mxfp4(x, y, k);
  }
  static void quantize_dot_row(const float* x, dot_block* y, std::int64_t k) noexcept {
    quantize_row_q8_0(x, y, k);
  }
  static void vec_dot(std::int64_t n, float* s, const block* x, const dot_block* y) noexcept {
    vec_dot_mxfp4_q8_0(n, s, x, y);
  }
};

}  // namespace qcodec::ggml
