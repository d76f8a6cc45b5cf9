#pragma once
// Q8_K: ggml's 8-bit activation format for the K-quants (Q2_K ... Q6_K, IQ4_XS are dotted with
// it): one float scale per 256 values plus the sums of every 16 codes.
//
// Layout (block_q8_K, k_common.hpp): 292 bytes per 256 values = 9.125 bits per value: d (float),
// qs[256] (int8, value i in qs[i]), bsums[16] (int16, bsums[j] = sum of qs[16 j .. 16 j + 15]);
// value i decodes to d * qs[i].
//
// Provenance: ggml (ggml-quants.c quantize_row_q8_K_ref / dequantize_row_q8_K), release 0.21.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/block/ggml/k_common.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace qcodec::ggml {

/// ggml's encoder, byte-identical to quantize_row_q8_K_ref: with m the first value of largest
/// magnitude, q[i] = min(127, nearest_int(-127 / m * x[i])) and d = 1 / (-127 / m); an all-zero
/// block gets d = 0. x: k floats, k a multiple of 256; y: k / 256 blocks.
inline void quantize_row_q8_K_ref(const float* x, block_q8_K* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, x += qk_k) {
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < 256; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      y[i].d = 0.0f;
      for (int j = 0; j < 256; ++j) y[i].qs[j] = 0;
      for (int j = 0; j < 16; ++j) y[i].bsums[j] = 0;
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < 256; ++j) {
      const int v = detail::nearest_int(iscale * x[j]);
      y[i].qs[j] = static_cast<std::int8_t>(v < 127 ? v : 127);
    }
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += y[i].qs[16 * j + l];
      y[i].bsums[j] = static_cast<std::int16_t>(s);
    }
    y[i].d = 1.0f / iscale;
  }
}

/// qcodec's Q8_K encoder: ggml's (Q8_K is an activation format, produced on the fly; its
/// error, 8-bit rounding noise, leaves nothing to gain). x: k floats; y: k / 256 blocks.
inline void quantize_row_q8_K(const float* x, block_q8_K* y, std::int64_t k) noexcept {
  quantize_row_q8_K_ref(x, y, k);
}

/// ggml's decoder: y[i] = d * float(q[i]). x: k / 256 blocks; y: k floats. Bit-exact.
inline void dequantize_row_q8_K(const block_q8_K* x, float* y, std::int64_t k) noexcept {
  QCODEC_ASSERT(k % qk_k == 0, "[qcodec.ggml.1] row length is not a multiple of the block size");
  for (std::int64_t i = 0; i < k / qk_k; ++i, y += qk_k) {
    const float d = x[i].d;
    for (int j = 0; j < 256; ++j) y[j] = d * static_cast<float>(x[i].qs[j]);
  }
}

/// Q8_K for the format registry (an activation format: it has no vec_dot of its own).
struct q8_K {
  using block = block_q8_K;
  static constexpr std::size_t block_values = 256;
  static constexpr std::size_t block_bytes = sizeof(block_q8_K);
  static constexpr const char* name = "q8_K";
  static constexpr double bits_per_value = 9.125;
  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q8_K(x, y, k);
  }
  static void quantize_row_ref(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_q8_K_ref(x, y, k);
  }
  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    dequantize_row_q8_K(x, y, k);
  }
};

}  // namespace qcodec::ggml
