#pragma once
// MX block formats (OCP Microscaling Formats (MX) Specification v1.0, 2023): blocks of 32
// elements sharing one E8M0 scale X = 2^(e - 127) (e = 0xFF is NaN: every element of the block
// decodes to NaN). Element i decodes to X * elem(q[i]).
//
//   format       element      block bytes   bits per value (scale included)
//   MXFP4        fp4_e2m1     1 + 16 = 17   4.25
//   MXFP8 E4M3   fp8_e4m3     1 + 32 = 33   8.25
//   MXFP8 E5M2   fp8_e5m2     1 + 32 = 33   8.25
//
// Layout (qcodec's, the spec fixes none): `e`, then the codes in element order; 4-bit codes
// two per byte LSB first (element 2j in the low nibble of byte j), the layout of simd/lut.hpp,
// so MXFP4 decodes through the 16-entry LUT kernel. (ggml's MXFP4 uses split halves instead:
// quant/block/ggml/mxfp4.hpp.)
//
// Scale choice:
//   mx_scale_rule::spec         the spec's: e - 127 = floor(log2(absmax)) - emax_elem, clamped
//                               to [-127, 127] (emax_elem = 2 for E2M1, 8 for E4M3, 15 for
//                               E5M2). Elements then reach up to 2^(emax_elem + 1) and the
//                               largest ones saturate (E2M1: values in (6, 8) clip to 6).
//   mx_scale_rule::best_of_two  also tries e + 1 (no clipping, coarser steps) and keeps the one
//                               with the smaller squared error (ties keep the spec's), so it is
//                               never worse than `spec`. The default.
// An all-zero block gets e = 0; a block holding NaN or +-inf gets e = 0xFF (NaN). Elements are
// converted with round-to-nearest-even and saturation, as the spec requires.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/pow2.hpp>
#include <qcodec/quant/block/ggml/common.hpp>
#include <qcodec/quant/float/fp4.hpp>
#include <qcodec/quant/float/fp8.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

namespace qcodec {

/// Elements per MX block.
inline constexpr std::size_t mx_block_size = 32;

/// E8M0 value 2^(e - 127), exactly (e = 0 is the float subnormal 2^-127); NaN for e = 0xFF.
[[nodiscard]] constexpr float e8m0_to_float(std::uint8_t e) noexcept {
  // ggml's helper gives half the E8M0 value exactly; doubling it is exact too.
  return e == 0xFF ? std::numeric_limits<float>::quiet_NaN() : ggml::e8m0_to_float_half(e) * 2.0f;
}

/// How an MX encoder picks the block exponent (see the header comment).
enum class mx_scale_rule : std::uint8_t { spec, best_of_two };

/// Element formats of MX blocks: code width, emax_elem, encode and decode.
template <class Elem>
struct mx_element;

template <>
struct mx_element<fp4_e2m1> {
  static constexpr unsigned bits = 4;
  static constexpr int emax = fp4_e2m1::emax;
  static constexpr const char* name = "mxfp4";
  [[nodiscard]] static std::uint8_t encode(float v) noexcept { return detail::e2m1_code(v); }
  [[nodiscard]] static float decode(std::uint8_t c) noexcept { return e2m1_values[c & 15u]; }
};
template <>
struct mx_element<fp8_e4m3> {
  static constexpr unsigned bits = 8;
  static constexpr int emax = fp8_e4m3::emax;
  static constexpr const char* name = "mxfp8_e4m3";
  [[nodiscard]] static std::uint8_t encode(float v) noexcept {
    return detail::float_to_minifloat_fast<fp8_e4m3::format>(v, overflow_mode::saturate);
  }
  [[nodiscard]] static float decode(std::uint8_t c) noexcept {
    return detail::fp8_values<fp8_e4m3>.value[c];
  }
};
template <>
struct mx_element<fp8_e5m2> {
  static constexpr unsigned bits = 8;
  static constexpr int emax = fp8_e5m2::emax;
  static constexpr const char* name = "mxfp8_e5m2";
  [[nodiscard]] static std::uint8_t encode(float v) noexcept {
    return detail::float_to_minifloat_fast<fp8_e5m2::format>(v, overflow_mode::saturate);
  }
  [[nodiscard]] static float decode(std::uint8_t c) noexcept {
    return detail::fp8_values<fp8_e5m2>.value[c];
  }
};

/// One MX block: E8M0 exponent `e` and 32 codes (layout: header comment).
template <class Elem>
struct mx_block {
  std::uint8_t e;                                          ///< E8M0 scale exponent (bias 127)
  std::uint8_t q[mx_block_size * mx_element<Elem>::bits / 8];  ///< element codes
};
using mxfp4_block = mx_block<fp4_e2m1>;
using mxfp8_e4m3_block = mx_block<fp8_e4m3>;
using mxfp8_e5m2_block = mx_block<fp8_e5m2>;
static_assert(sizeof(mxfp4_block) == 17 && sizeof(mxfp8_e4m3_block) == 33 &&
              sizeof(mxfp8_e5m2_block) == 33);

namespace detail {

/// The spec's E8M0 exponent for a group (header comment): 0 for all zeros, 0xFF for non-finite.
template <class Elem>
[[nodiscard]] inline std::uint8_t mx_spec_exponent(std::span<const float> x) noexcept {
  float amax = 0.0f;
  for (const float v : x) {
    if (!std::isfinite(v)) return 0xFF;
    const float a = std::fabs(v);
    amax = a > amax ? a : amax;  // no NaN here; std::fmax would be a libm call
  }
  if (amax == 0.0f) return 0;
  int shared = std::ilogb(amax) - mx_element<Elem>::emax;
  shared = shared < -127 ? -127 : shared > 127 ? 127 : shared;
  return static_cast<std::uint8_t>(shared + 127);
}

/// Codes of x under exponent e (< 0xFF); returns the squared error of the reconstruction.
template <class Elem>
inline double mx_encode_with(std::span<const float> x, std::uint8_t e, std::uint8_t* codes) noexcept {
  using el = mx_element<Elem>;
  const float inv = pow2f(127 - static_cast<int>(e));  // exact: 1 / X
  const float scale = pow2f(static_cast<int>(e) - 127);
  double err = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    codes[i] = el::encode(x[i] * inv);
    const double d = static_cast<double>(el::decode(codes[i]) * scale) - x[i];
    err += d * d;
  }
  return err;
}

/// Picks the exponent of one 32-element block by `rule` and writes its codes; returns e.
template <class Elem>
inline std::uint8_t mx_encode_block(const float* x, mx_scale_rule rule,
                                    std::uint8_t (&codes)[mx_block_size]) noexcept {
  const std::span<const float> xs(x, mx_block_size);
  const std::uint8_t e = mx_spec_exponent<Elem>(xs);
  if (e == 0xFF) {
    for (auto& c : codes) c = 0;
    return e;
  }
  const double err = mx_encode_with<Elem>(xs, e, codes);
  if (rule == mx_scale_rule::spec || e >= 254 || err == 0.0) return e;
  std::uint8_t alt[mx_block_size];
  const auto e1 = static_cast<std::uint8_t>(e + 1);
  if (!(mx_encode_with<Elem>(xs, e1, alt) < err)) return e;
  for (std::size_t i = 0; i < mx_block_size; ++i) codes[i] = alt[i];
  return e1;
}

}  // namespace detail

/// Encodes one block of 32 floats.
template <class Elem>
inline void quantize_block_mx(const float* x, mx_block<Elem>& b,
                              mx_scale_rule rule = mx_scale_rule::best_of_two) noexcept {
  std::uint8_t codes[mx_block_size];
  b.e = detail::mx_encode_block<Elem>(x, rule, codes);
  if constexpr (mx_element<Elem>::bits == 4) {
    for (std::size_t j = 0; j < mx_block_size / 2; ++j)
      b.q[j] = static_cast<std::uint8_t>(codes[2 * j] | codes[2 * j + 1] << 4);
  } else {
    for (std::size_t j = 0; j < mx_block_size; ++j) b.q[j] = codes[j];
  }
}

/// x: n floats (n a multiple of 32) -> y: n / 32 blocks.
template <class Elem>
inline void quantize_row_mx(const float* x, mx_block<Elem>* y, std::size_t n,
                            mx_scale_rule rule = mx_scale_rule::best_of_two) noexcept {
  QCODEC_ASSERT(n % mx_block_size == 0, "[qcodec.mx.1] row length is not a multiple of 32");
  for (std::size_t i = 0; i < n / mx_block_size; ++i) quantize_block_mx<Elem>(x + i * mx_block_size, y[i], rule);
}

/// x: n / 32 blocks -> y: n floats, y[i] = 2^(e - 127) * elem(q[i]) (exact products; NaN
/// blocks decode to NaN). MXFP4 goes through simd::kernels().lut.lut16_dequantize.
template <class Elem>
inline void dequantize_row_mx(const mx_block<Elem>* x, float* y, std::size_t n) noexcept {
  QCODEC_ASSERT(n % mx_block_size == 0, "[qcodec.mx.1] row length is not a multiple of 32");
  using el = mx_element<Elem>;
  [[maybe_unused]] const auto lut = simd::kernels().lut.lut16_dequantize;
  for (std::size_t i = 0; i < n / mx_block_size; ++i, y += mx_block_size) {
    const float X = e8m0_to_float(x[i].e);
    if constexpr (el::bits == 4) {
      lut(x[i].q, mx_block_size, e2m1_values, X, y);
    } else {
      for (std::size_t j = 0; j < mx_block_size; ++j) y[j] = el::decode(x[i].q[j]) * X;
    }
  }
}

/// MX as a Quantizer policy: a group (use per_group<32> for the MX format proper; any length
/// works) shares one E8M0 exponent; one element code per value (symbol_bits 4 or 8).
/// Bits per value: symbol_bits + 8 / group length.
template <class Elem>
struct mx_quantizer {
  struct params_type {
    std::uint8_t e;  ///< E8M0 exponent (0xFF: NaN)
  };
  static constexpr unsigned symbol_bits = mx_element<Elem>::bits;
  mx_scale_rule rule = mx_scale_rule::best_of_two;

  [[nodiscard]] params_type fit(std::span<const float> x) const noexcept {
    const std::uint8_t e = detail::mx_spec_exponent<Elem>(x);
    if (rule == mx_scale_rule::spec || e >= 254) return {e};
    double err[2] = {0.0, 0.0};
    std::uint8_t tmp[256];
    for (int k = 0; k < 2; ++k)
      for (std::size_t done = 0; done < x.size(); done += 256) {
        const std::size_t m = x.size() - done < 256 ? x.size() - done : 256;
        err[k] += detail::mx_encode_with<Elem>(x.subspan(done, m), static_cast<std::uint8_t>(e + k), tmp);
      }
    return {err[1] < err[0] ? static_cast<std::uint8_t>(e + 1) : e};
  }
  void encode(std::span<const float> x, const params_type& p, std::span<std::uint8_t> sym) const noexcept {
    QCODEC_ASSERT(x.size() == sym.size(), "[qcodec.mx.2] one symbol per value");
    if (p.e == 0xFF) {
      for (auto& s : sym) s = 0;
      return;
    }
    (void)detail::mx_encode_with<Elem>(x, p.e, sym.data());
  }
  void decode(std::span<const std::uint8_t> sym, const params_type& p, std::span<float> y) const noexcept {
    QCODEC_ASSERT(y.size() == sym.size(), "[qcodec.mx.2] one symbol per value");
    const float X = e8m0_to_float(p.e);
    for (std::size_t i = 0; i < sym.size(); ++i) y[i] = mx_element<Elem>::decode(sym[i]) * X;
  }
};

}  // namespace qcodec
