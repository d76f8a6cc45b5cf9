#pragma once
// Block floating point (BFP): a block of N values shares one power-of-two scale, and each value
// keeps an M-bit signed mantissa (as in Microsoft's MSFP / BFP formats and Intel's Flexpoint).
//
//   value i = (q_i - 2^(M-1)) * 2^(e - 127),  q_i in [0, 2^M - 1]   (mantissa in two's-complement
//                                                                     range [-2^(M-1), 2^(M-1)-1])
//
// Layout of bfp_block<M, N> (N a multiple of 8, 2 <= M <= 8): one byte e, the shared exponent in
// E8M0 encoding (scale 2^(e - 127)), then N codes of M bits packed LSB-first
// (simd/bit_packing.hpp), M * N / 8 bytes. Bits per value: M + 8 / N (e.g. 8.25 for M = 8,
// N = 32).
//
// Encoding: with a the block's largest magnitude, the natural exponent puts a / 2^s in
// [2^(M-2), 2^(M-1)) (the largest mantissa uses all M bits); rounding can push it to 2^(M-1), one
// past the positive range, so the encoder also tries s + 1 and keeps whichever has the lower
// squared error. Because the scale is a power of two, x * 2^-s is exact and the only error is the
// final rounding (half to even). A zero block stores e = 0 and zero mantissas. Exponents are
// limited to [0, 254 - (M - 1)] so that every decoded value, including -2^(M-1) * scale, is
// finite: magnitudes at or above 2^(128 - M) saturate; magnitudes below 2^-127 flush toward 0.
// NaN inputs encode as the mantissa -2^(M-1) (the affine kernels' clamp), never undefined
// behaviour. Decoding the reserved exponent 0xFF yields NaN, as E8M0 specifies.
//
// bfp<M> is the same quantizer as a Quantizer policy (one unpacked code per element, any
// grouping); bfp_format<M, N> is the row format (ggml-style quantize_row / dequantize_row) used
// by the codec registry. A fixed channel permutation (quant/transform/permutation.hpp) placed in
// front groups outlier channels into the same blocks so they no longer set the exponent of
// ordinary ones.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/pow2.hpp>
#include <qcodec/core/rounding.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

namespace qcodec {

namespace detail {

/// 2^(e - 127) for an E8M0 byte (e = 0: the subnormal 2^-127); NaN for 0xFF.
/// (Here and below no std::ldexp, a libm call: the product by 2^(M-1) is exact, or inf.)
inline float bfp_scale(std::uint8_t e) noexcept {
  if (e == 0xFF) return std::numeric_limits<float>::quiet_NaN();
  return pow2f(static_cast<int>(e) - 127);
}

/// Affine parameters of mantissa codes under exponent e: value = scale * q - 2^(M-1) * scale.
inline affine_params bfp_affine(std::uint8_t e, unsigned mantissa_bits) noexcept {
  const float scale = bfp_scale(e);
  return {scale, -(scale * static_cast<float>(1u << (mantissa_bits - 1)))};
}

/// The largest exponent byte whose decoded values are all finite.
constexpr int bfp_max_exponent(unsigned mantissa_bits) noexcept {
  return 254 - (static_cast<int>(mantissa_bits) - 1);
}

/// The exponent byte that puts the largest magnitude `a` in the top binade of the mantissa.
inline int bfp_natural_exponent(float a, unsigned mantissa_bits) noexcept {
  if (!(a > 0.0f)) return 0;  // zero (and NaN) blocks
  if (!std::isfinite(a)) return bfp_max_exponent(mantissa_bits);
  int binade = 0;
  std::frexp(a, &binade);  // a = f * 2^binade, f in [0.5, 1): floor(log2 a) = binade - 1
  const int e = (binade - 1) - (static_cast<int>(mantissa_bits) - 2) + 127;
  return e < 0 ? 0 : (e > bfp_max_exponent(mantissa_bits) ? bfp_max_exponent(mantissa_bits) : e);
}

/// Squared error of encoding x with exponent byte e <= bfp_max_exponent (scalar, the results of
/// the affine kernels' fma(x, inv, bias) and fma(q, scale, offset)). Scale and inv are powers of
/// two, so both products are exact (or overflow, or vanish next to the sum's other term) and a
/// product and an addition round as the fma does: no std::fma, which is a libm call where FMA is
/// no instruction, nor std::nearbyint (core/rounding.hpp).
inline double bfp_squared_error(const float* x, std::size_t n, std::uint8_t e,
                                unsigned mantissa_bits) noexcept {
  const affine_params p = bfp_affine(e, mantissa_bits);
  const float inv = 1.0f / p.scale, bias = -p.offset * inv;
  const float max_code = static_cast<float>((1u << mantissa_bits) - 1);
  double err = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    float q = nearbyint_small(x[i] * inv + bias);
    q = q >= 0.0f ? (q <= max_code ? q : max_code) : 0.0f;
    const double d = static_cast<double>(q * p.scale + p.offset) - x[i];
    err += d * d;
  }
  return err;
}

/// The exponent byte the encoder chooses for x[0, n) (see the header comment).
inline std::uint8_t bfp_fit_exponent(const float* x, std::size_t n, unsigned mantissa_bits,
                                     float absmax) noexcept {
  const int e = bfp_natural_exponent(absmax, mantissa_bits);
  if (e >= bfp_max_exponent(mantissa_bits) || !(absmax > 0.0f)) return static_cast<std::uint8_t>(e);
  const auto lo = static_cast<std::uint8_t>(e), hi = static_cast<std::uint8_t>(e + 1);
  return bfp_squared_error(x, n, hi, mantissa_bits) < bfp_squared_error(x, n, lo, mantissa_bits)
             ? hi
             : lo;
}

}  // namespace detail

/// BFP as a Quantizer policy: a group shares the exponent, each element gets an M-bit code
/// (one byte per code, offset binary: mantissa + 2^(M-1)).
template <unsigned M>
class bfp {
  static_assert(M >= 2 && M <= 8, "BFP mantissas have 2 to 8 bits");

 public:
  struct params_type {
    std::uint8_t exponent;  ///< E8M0: scale 2^(exponent - 127)
  };
  static constexpr unsigned symbol_bits = M;

  [[nodiscard]] params_type fit(std::span<const float> x) const noexcept {
    const float a = x.empty() ? 0.0f : simd::kernels().reductions.absmax(x.data(), x.size());
    return {detail::bfp_fit_exponent(x.data(), x.size(), M, a)};
  }

  void encode(std::span<const float> x, const params_type& p,
              std::span<std::uint8_t> sym) const noexcept {
    QCODEC_ASSERT(sym.size() == x.size(), "one symbol per element");
    const affine_params a = detail::bfp_affine(p.exponent, M);
    // 8-bit codes are their own packing, so the fused kernel writes the symbols directly.
    if constexpr (M == 8) {
      simd::kernels().affine.quantize_pack(x.data(), x.size(), a, 8, sym.data());
    } else {
      // fma(x, inv, bias) without std::fma, as in detail::bfp_squared_error: inv is a power of
      // two. Above bfp_max_exponent (offset and bias infinite) and for 0xFF (NaN) the codes are
      // the kernels' too: the largest code, or 0.
      const float inv = 1.0f / a.scale, bias = -a.offset * inv;
      constexpr float max_code = static_cast<float>((1u << M) - 1);
      for (std::size_t i = 0; i < x.size(); ++i) {
        const float q = detail::nearbyint_small(x[i] * inv + bias);
        sym[i] = static_cast<std::uint8_t>(q >= 0.0f ? (q <= max_code ? q : max_code) : 0.0f);
      }
    }
  }

  void decode(std::span<const std::uint8_t> sym, const params_type& p,
              std::span<float> y) const noexcept {
    QCODEC_ASSERT(sym.size() == y.size(), "one value per symbol");
    const affine_params a = detail::bfp_affine(p.exponent, M);
    for (std::size_t i = 0; i < sym.size(); ++i) {
      // Codes above 2^M - 1 cannot come from encode; mask them so any byte decodes in range.
      y[i] = std::fma(static_cast<float>(sym[i] & ((1u << M) - 1)), a.scale, a.offset);
    }
  }
};

/// One BFP block: the wire format (see the header comment).
template <unsigned M, std::size_t N>
struct bfp_block {
  static_assert(M >= 2 && M <= 8, "BFP mantissas have 2 to 8 bits");
  static_assert(N > 0 && N % 8 == 0, "BFP blocks hold a multiple of 8 values");
  std::uint8_t exponent;          ///< E8M0 shared exponent
  std::uint8_t codes[M * N / 8];  ///< N codes of M bits, LSB-first
};

/// BFP rows: cols values (a multiple of N) as cols / N blocks of 1 + M * N / 8 bytes.
template <unsigned M, std::size_t N>
struct bfp_format {
  using block = bfp_block<M, N>;
  static constexpr std::size_t block_values = N;
  static constexpr std::size_t block_bytes = 1 + M * N / 8;
  static_assert(sizeof(block) == block_bytes);
  static constexpr double bits_per_value = M + 8.0 / static_cast<double>(N);
  static constexpr const char* name = "bfp";

  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    QCODEC_ASSERT(k % static_cast<std::int64_t>(N) == 0, "row length is not a multiple of N");
    const simd::kernel_table& kt = simd::kernels();
    for (std::int64_t b = 0; b < k / static_cast<std::int64_t>(N); ++b, x += N) {
      const float a = kt.reductions.absmax(x, N);
      y[b].exponent = detail::bfp_fit_exponent(x, N, M, a);
      kt.affine.quantize_pack(x, N, detail::bfp_affine(y[b].exponent, M), M, y[b].codes);
    }
  }

  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    QCODEC_ASSERT(k % static_cast<std::int64_t>(N) == 0, "row length is not a multiple of N");
    const simd::kernel_table& kt = simd::kernels();
    for (std::int64_t b = 0; b < k / static_cast<std::int64_t>(N); ++b, y += N) {
      kt.affine.unpack_dequantize(x[b].codes, N, M, detail::bfp_affine(x[b].exponent, M), y);
    }
  }
};

}  // namespace qcodec
