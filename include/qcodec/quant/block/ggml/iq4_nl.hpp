#pragma once
// IQ4_NL: ggml's 4-bit non-linear block format: 16 fixed levels (kvalues_iq4nl, denser
// near zero) times a per-block scale.
//
// Layout (block_iq4_nl, common.hpp): 18 bytes per 32 values = 4.5 bits per value including the
// scale: d (binary16), qs[16] (level indices, two per byte as Q4_0); value i decodes to
// d * kvalues_iq4nl[q[i]]. Dot products pair it with Q8_0.
//
// Provenance: ggml (ggml-quants.c quantize_iq4_nl / quantize_row_iq4_nl_impl /
// dequantize_row_iq4_nl, ggml-cpu/quants.c ggml_vec_dot_iq4_nl_q8_0_generic), release 0.21.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/block/ggml/common.hpp>
#include <qcodec/quant/block/ggml/q8_0.hpp>
#include <qcodec/simd/dispatch.hpp>
#include <qcodec/simd/ggml_kernels.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace qcodec::ggml {

/// ggml's reference encoder for IQ4_NL as GGUF files contain it, byte-identical to ggml's
/// quantize_iq4_nl without an importance matrix (what ggml_quantize_chunk runs): scale search
/// over 15 candidates weighted by x^2 (quantize_row_iq4_nl_impl with ntry = 7), binary16 scale,
/// levels picked against the unrounded scale. (ggml's quantize_row_iq4_nl_ref, used for
/// activations, skips the search: ntry = -1.)
/// x: k floats, k a multiple of 32; y: k / 32 blocks.
inline void quantize_row_iq4_nl_ref(const float* x, block_iq4_nl* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  constexpr int ntry = 7;
  const auto index = [](float v) { return detail::iq4nl_index<simd::scalar>(v); };
  for (std::int64_t i = 0; i < k / qk; ++i, x += qk) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
      const float a = std::fabs(x[j]);
      if (a > amax) {
        amax = a;
        max = x[j];
      }
    }
    float d = 0.0f;
    if (amax >= 1e-15f) {  // ggml's GROUP_MAX_EPS
      // weights x^2 (no importance matrix); products left to right as in ggml's C code
      const auto fit = [&](float id, float& sumqx, float& sumq2) {
        sumqx = 0.0f;
        sumq2 = 0.0f;
        for (int j = 0; j < 32; ++j) {
          const float q = static_cast<float>(kvalues_iq4nl[index(id * x[j])]);
          const float w = x[j] * x[j];
          const float wq = w * q;
          const float wqx = detail::unfused<simd::scalar>(wq * x[j]);
          const float wqq = detail::unfused<simd::scalar>(wq * q);
          sumqx += wqx;
          sumq2 += wqq;
        }
      };
      d = -max / static_cast<float>(kvalues_iq4nl[0]);
      float sumqx, sumq2;
      fit(1.0f / d, sumqx, sumq2);
      d = sumq2 > 0.0f ? sumqx / sumq2 : 0.0f;
      float best = d * sumqx;
      for (int itry = -ntry; itry <= ntry; ++itry) {
        fit(static_cast<float>(itry + kvalues_iq4nl[0]) / max, sumqx, sumq2);
        if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
          d = sumqx / sumq2;
          best = d * sumqx;
        }
      }
    }
    y[i].d = half(d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 16; ++j)
      y[i].qs[j] = static_cast<std::uint8_t>(index(id * x[j]) | (index(id * x[j + 16]) << 4));
  }
}

/// qcodec's IQ4_NL encoder (the default): six starting scales with one Lloyd step
/// each, scored by the unweighted least-squares fit (detail::iq4nl_encode), then levels picked
/// against the decoded binary16 scale. Relative squared error vs ggml's encoder: 0.94x on N(0,1)
/// and on ggml's known-answer input (the best single-scale fit reaches 0.94x there).
/// x: k floats, k a multiple of 32; y: k / 32 blocks. Scalar algorithm compiled for each target;
/// same bits on every target.
inline void quantize_row_iq4_nl(const float* x, block_iq4_nl* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.iq4_nl.quantize_row(x, y, k);
}

/// ggml's decoder: y[i] = d * float(kvalues_iq4nl[q[i]]). x: k / 32 blocks; y: k floats. Bit-exact
/// with ggml's dequantize_row_iq4_nl on every target.
inline void dequantize_row_iq4_nl(const block_iq4_nl* x, float* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.iq4_nl.dequantize_row(x, y, k);
}

/// *s = the dot product of the n-value rows x and y as ggml's generic
/// ggml_vec_dot_iq4_nl_q8_0_generic computes it, bit for bit: per block (y.d * x.d) * float(sum
/// level * y.q), accumulated block by block.
inline void vec_dot_iq4_nl_q8_0(std::int64_t n, float* s, const block_iq4_nl* x,
                                const block_q8_0* y) noexcept {
  QCODEC_ASSERT(n % qk == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  simd::kernels().ggml.iq4_nl.vec_dot(n, s, x, y);
}

/// IQ4_NL for the format registry.
struct iq4_nl {
  using block = block_iq4_nl;
  using dot_block = block_q8_0;
  static constexpr std::size_t block_values = 32;
  static constexpr std::size_t block_bytes = sizeof(block_iq4_nl);
  static constexpr const char* name = "iq4_nl";
  static constexpr double bits_per_value = 4.5;
  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_iq4_nl(x, y, k);
  }
  static void quantize_row_ref(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_iq4_nl_ref(x, y, k);
  }
  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    dequantize_row_iq4_nl(x, y, k);
  }
  static void quantize_dot_row(const float* x, dot_block* y, std::int64_t k) noexcept {
    quantize_row_q8_0(x, y, k);
  }
  static void vec_dot(std::int64_t n, float* s, const block* x, const dot_block* y) noexcept {
    vec_dot_iq4_nl_q8_0(n, s, x, y);
  }
};

}  // namespace qcodec::ggml
