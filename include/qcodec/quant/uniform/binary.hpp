#pragma once
// binary: sign codes with one scale per group (1 bit per value plus 32 bits of scale per group),
// the binarization of XNOR-Net (Rastegari et al., 2016) and BinaryConnect-style weights:
//
//   scale = mean_i |x_i|        the least-squares scale for sign codes: sum (x - s sign x)^2 =
//                               sum x^2 - 2 s sum |x| + n s^2 is minimal at s = sum |x| / n
//   q_i   = x_i >= 0 ? 1 : 0    (-0.0 and +0.0 -> 1; NaN -> 0)
//   x_i  ~= q_i ? scale : -scale
//
// fit(x, w) gives the weighted least-squares scale sum w|x| / sum w. Symbols are one byte each
// (the Quantizer contract), 0 or 1; decode reads only the low bit.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/uniform/uniform.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

namespace qcodec {

/// Sign + absmean scale; models qcodec::Quantizer (symbols 0, 1).
class binary {
 public:
  using params_type = scale_params;
  static constexpr unsigned symbol_bits = 1;
  static constexpr unsigned metadata_bits = 32;

  /// scale = mean |x| (0 for an empty group), accumulated in double.
  [[nodiscard]] params_type fit(std::span<const float> x) const noexcept {
    if (x.empty()) return {0.0f};
    double s = 0.0;
    for (const float v : x) s += std::fabs(double{v});
    return {static_cast<float>(s / static_cast<double>(x.size()))};
  }

  /// scale = sum w|x| / sum w, the weighted least-squares scale (w >= 0, w.size() == x.size();
  /// 0 when every weight is 0).
  [[nodiscard]] params_type fit(std::span<const float> x, std::span<const float> w) const noexcept {
    QCODEC_ASSERT(w.size() == x.size(), "[qcodec.binary.1] fit: x and w differ in length");
    double s = 0.0, sw = 0.0;
    for (std::size_t i = 0; i < x.size() && i < w.size(); ++i) {
      s += double{w[i]} * std::fabs(double{x[i]});
      sw += double{w[i]};
    }
    return {sw > 0.0 ? static_cast<float>(s / sw) : 0.0f};
  }

  /// sym[i] = x[i] >= 0 ? 1 : 0. x.size() == sym.size().
  void encode(std::span<const float> x, const params_type&,
              std::span<std::uint8_t> sym) const noexcept {
    QCODEC_ASSERT(x.size() == sym.size(), "[qcodec.binary.2] encode: x and sym differ in length");
    const std::size_t n = x.size() < sym.size() ? x.size() : sym.size();
    for (std::size_t i = 0; i < n; ++i) sym[i] = x[i] >= 0.0f ? 1 : 0;
  }

  /// y[i] = (sym[i] & 1) ? scale : -scale.
  void decode(std::span<const std::uint8_t> sym, const params_type& p,
              std::span<float> y) const noexcept {
    QCODEC_ASSERT(sym.size() == y.size(), "[qcodec.binary.3] decode: sym and y differ in length");
    const std::size_t n = sym.size() < y.size() ? sym.size() : y.size();
    for (std::size_t i = 0; i < n; ++i) y[i] = (sym[i] & 1u) != 0 ? p.scale : -p.scale;
  }
};

}  // namespace qcodec
