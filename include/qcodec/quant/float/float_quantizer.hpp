#pragma once
// float_quantizer<T>: scaled low-precision float as a Quantizer policy, T one of fp8_e4m3,
// fp8_e5m2, fp4_e2m1. Each group gets an FP32 scale s = absmax / T::max_finite (1 for an
// all-zero group) so its largest value lands on the format's largest finite value (the usual
// per-tensor / per-channel FP8 recipe); symbols are the format's codes of x / s (round to
// nearest even, saturating), decoded as value(code) * s.
// Bits per value: T's width (8 or 4) + 32 / group length.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/float/fp4.hpp>
#include <qcodec/quant/float/fp8.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

namespace qcodec {

template <class T>
struct float_quantizer {
  struct params_type {
    float scale;  ///< value = decoded code * scale
  };
  static constexpr unsigned symbol_bits = T::format::total_bits;

  [[nodiscard]] params_type fit(std::span<const float> x) const noexcept {
    // The reduction kernel (NaNs skipped, as std::fmax skips them): std::fmax was a libm call
    // per element, with -march=native too (GCC inlines it only where NaNs cannot occur).
    const float amax = simd::kernels().reductions.absmax(x.data(), x.size());
    const float s = amax / T::max_finite;
    return {s > 0.0f && std::isfinite(s) ? s : 1.0f};
  }
  void encode(std::span<const float> x, const params_type& p, std::span<std::uint8_t> sym) const noexcept {
    QCODEC_ASSERT(x.size() == sym.size(), "[qcodec.float.1] one symbol per value");
    for (std::size_t i = 0; i < x.size(); ++i)
      sym[i] = detail::float_to_minifloat_fast<typename T::format>(x[i] / p.scale, overflow_mode::saturate);
  }
  void decode(std::span<const std::uint8_t> sym, const params_type& p, std::span<float> y) const noexcept {
    QCODEC_ASSERT(y.size() == sym.size(), "[qcodec.float.1] one symbol per value");
    for (std::size_t i = 0; i < sym.size(); ++i) y[i] = T::from_bits(sym[i]).to_float() * p.scale;
  }
};

}  // namespace qcodec
