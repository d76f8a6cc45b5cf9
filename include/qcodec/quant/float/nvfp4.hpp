#pragma once
// NVFP4 (NVIDIA Blackwell's 4-bit format): blocks of 16 E2M1 values sharing an FP8 E4M3 scale,
// plus one FP32 scale per tensor.
//
//   decode:  y[i] = e2m1(q[i]) * d,   d = float(block scale, E4M3) * global   (d rounded once)
//   layout:  nvfp4_block = { scale (E4M3 bits), q[8] (codes two per byte, LSB first: element
//            2j in the low nibble of byte j, the simd/lut.hpp layout) }: 9 bytes per 16 values
//            = 4.5 bits per value, plus 32 bits per tensor for `global`.
//
// Scales follow NVIDIA's recipe (TensorRT Model Optimizer; NVIDIA's "Introducing NVFP4" blog):
//   global = absmax(tensor) / (6 * 448)            (nvfp4_global_scale; 1 for an all-zero or
//                                                   non-finite tensor)
//   block scale = E4M3(absmax(block) / (6 * global)), round to nearest even, saturating
// so the largest block of the tensor uses the top of both ranges (E2M1 max 6, E4M3 max 448).
// Elements are E2M1(x / d), nearest even, saturating at +-6 (the E4M3 rounding of the block
// scale may leave the block's largest value up to 1/16 above 6 d; it clips). A block whose
// scale rounds to 0 (absmax(block) < 2^-10 * 6 * global) encodes as zeros.
// Error bound per element: |x - y| <= d (E2M1's half step is at most 1 at the top of the range,
// and the clipping above is at most 0.375 d) while the block scale is an E4M3 normal
// (block absmax >= 2^-6 * 6 * global).
//
// Scale choice (nvfp4_scale_rule):
//   nvidia      the recipe above, exactly
//   search      also tries the E4M3 codes just below and just above NVIDIA's block scale and
//               keeps the one with the smallest squared error of the block (ties keep
//               NVIDIA's): never worse than `nvidia`, block by block. The default.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/float/fp4.hpp>
#include <qcodec/quant/float/fp8.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

namespace qcodec {

/// Elements per NVFP4 block.
inline constexpr std::size_t nvfp4_block_size = 16;

/// One NVFP4 block (layout: header comment).
struct nvfp4_block {
  std::uint8_t scale;  ///< E4M3 block scale (bits)
  std::uint8_t q[8];   ///< E2M1 codes, two per byte
};
static_assert(sizeof(nvfp4_block) == 9);

/// NVIDIA's per-tensor scale absmax / (6 * 448) over the n floats of x (1 when that is 0 or
/// not finite).
[[nodiscard]] inline float nvfp4_global_scale(const float* x, std::size_t n) noexcept {
  // The reduction kernel: NaNs skipped, as std::fmax (a libm call per element) skips them.
  const float amax = simd::kernels().reductions.absmax(x, n);
  const float g = amax / (6.0f * 448.0f);
  return (g > 0.0f && std::isfinite(g)) ? g : 1.0f;
}

/// How the NVFP4 encoder picks the E4M3 block scale (see the header comment).
enum class nvfp4_scale_rule : std::uint8_t { nvidia, search };

namespace detail {
/// The decode factor d of a block.
[[nodiscard]] inline float nvfp4_factor(std::uint8_t scale, float global) noexcept {
  return fp8_e4m3::from_bits(scale).to_float() * global;
}
/// Codes of x under the block scale `scale`; returns the squared error of the reconstruction.
inline double nvfp4_encode_values(std::span<const float> x, std::uint8_t scale, float global,
                                  std::uint8_t* codes) noexcept {
  const float d = nvfp4_factor(scale, global);
  double err = 0.0;
  if (!(d > 0.0f)) {
    for (std::size_t i = 0; i < x.size(); ++i) {
      codes[i] = 0;
      err += double{x[i]} * x[i];
    }
    return err;
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    codes[i] = e2m1_code(x[i] / d);
    const double e = double{e2m1_values[codes[i]] * d} - x[i];
    err += e * e;
  }
  return err;
}
/// Block scale bits for a group of values under `global`, by `rule`.
[[nodiscard]] inline std::uint8_t nvfp4_block_scale(std::span<const float> x, float global,
                                                    nvfp4_scale_rule rule) noexcept {
  const float amax = simd::kernels().reductions.absmax(x.data(), x.size());
  const std::uint8_t s = fp8_e4m3(amax / (6.0f * global)).bits;
  if (rule == nvfp4_scale_rule::nvidia || s == 0) return s;
  std::uint8_t tmp[256];
  const auto sse = [&](std::uint8_t c) {
    double e = 0.0;
    for (std::size_t done = 0; done < x.size(); done += 256) {
      const std::size_t m = x.size() - done < 256 ? x.size() - done : 256;
      e += nvfp4_encode_values(x.subspan(done, m), c, global, tmp);
    }
    return e;
  };
  std::uint8_t best = s;
  double best_err = sse(s);
  // E4M3 codes of positive finite values are ordered like their values: s - 1 and s + 1 are
  // the neighbouring scales (0x7E = 448 is the largest)
  for (const std::uint8_t c : {static_cast<std::uint8_t>(s - 1), static_cast<std::uint8_t>(s + 1)}) {
    if (c == 0 || c > 0x7E) continue;
    const double e = sse(c);
    if (e < best_err) {
      best = c;
      best_err = e;
    }
  }
  return best;
}
}  // namespace detail

/// x: n floats (n a multiple of 16) -> y: n / 16 blocks, with the per-tensor scale `global`
/// (nvfp4_global_scale of the whole tensor).
inline void quantize_row_nvfp4(const float* x, nvfp4_block* y, std::size_t n, float global,
                               nvfp4_scale_rule rule = nvfp4_scale_rule::search) noexcept {
  QCODEC_ASSERT(n % nvfp4_block_size == 0, "[qcodec.nvfp4.1] row length is not a multiple of 16");
  QCODEC_ASSERT(global > 0.0f, "[qcodec.nvfp4.2] the global scale must be positive");
  for (std::size_t b = 0; b < n / nvfp4_block_size; ++b, x += nvfp4_block_size) {
    const std::span<const float> xs(x, nvfp4_block_size);
    y[b].scale = detail::nvfp4_block_scale(xs, global, rule);
    std::uint8_t codes[nvfp4_block_size];
    (void)detail::nvfp4_encode_values(xs, y[b].scale, global, codes);
    for (std::size_t j = 0; j < 8; ++j)
      y[b].q[j] = static_cast<std::uint8_t>(codes[2 * j] | codes[2 * j + 1] << 4);
  }
}

/// x: n / 16 blocks -> y: n floats, y[i] = e2m1(q[i]) * (float(scale) * global), through
/// simd::kernels().lut.lut16_dequantize.
inline void dequantize_row_nvfp4(const nvfp4_block* x, float* y, std::size_t n, float global) noexcept {
  QCODEC_ASSERT(n % nvfp4_block_size == 0, "[qcodec.nvfp4.1] row length is not a multiple of 16");
  const auto lut = simd::kernels().lut.lut16_dequantize;
  for (std::size_t b = 0; b < n / nvfp4_block_size; ++b, y += nvfp4_block_size)
    lut(x[b].q, nvfp4_block_size, e2m1_values, detail::nvfp4_factor(x[b].scale, global), y);
}

/// NVFP4 as a Quantizer policy: each group (per_group<16> for NVFP4 proper) gets an E4M3 scale;
/// the per-tensor `global` scale is state of the policy (set it from the tensor with
/// nvfp4_global_scale). One E2M1 code per value: 4 + 8 / group length bits per value.
struct nvfp4_quantizer {
  struct params_type {
    std::uint8_t scale;  ///< E4M3 bits
  };
  static constexpr unsigned symbol_bits = 4;
  float global = 1.0f;  ///< per-tensor FP32 scale
  nvfp4_scale_rule rule = nvfp4_scale_rule::search;

  [[nodiscard]] params_type fit(std::span<const float> x) const noexcept {
    return {detail::nvfp4_block_scale(x, global, rule)};
  }
  void encode(std::span<const float> x, const params_type& p, std::span<std::uint8_t> sym) const noexcept {
    QCODEC_ASSERT(x.size() == sym.size(), "[qcodec.nvfp4.3] one symbol per value");
    (void)detail::nvfp4_encode_values(x, p.scale, global, sym.data());
  }
  void decode(std::span<const std::uint8_t> sym, const params_type& p, std::span<float> y) const noexcept {
    QCODEC_ASSERT(y.size() == sym.size(), "[qcodec.nvfp4.3] one symbol per value");
    const float d = detail::nvfp4_factor(p.scale, global);
    for (std::size_t i = 0; i < sym.size(); ++i) y[i] = e2m1_values[sym[i] & 15u] * d;
  }
};

}  // namespace qcodec
