#pragma once
// code_table<Bits>: a non-uniform scalar quantizer over a sorted table of 2^Bits levels in
// [-1, 1] (NF4, IQ4_NL, the 8-bit dynamic map: tables.hpp; or trained by Lloyd–Max), scaled per
// group by the group's absmax (QLoRA's blockwise absmax quantization).
//
//   params:   scale = absmax(group) (0 for an all-zero group); one float per group
//   encode:   sym[i] = the index of the level nearest to x[i] among table[k] * scale (the exact
//             decoded values); ties go to the lower index (so with duplicated table values the
//             first copy is used). NaN encodes to 0. Inputs must be finite.
//   decode:   y[i] = table[sym[i]] * scale, one float multiply. 4-bit tables decode through the
//             16-entry LUT kernel (simd::kernels().lut.lut16_dequantize), which computes exactly
//             this product; other widths are a scalar loop.
//   bits per value: Bits + 32 / group length.
//
// Encoding counts the midpoints of the scaled levels below each value (tables of up to 16
// levels: 15 independent compares, 16 values at a time) or runs a branch-free binary search
// over them (Bits compares), then checks the neighbouring levels in double precision, which
// makes the result exactly the brute-force nearest level even where the float midpoints are
// rounded.
//
// Training (TrainableQuantizer): `train(samples)` treats each row of `samples` as one group,
// divides it by its absmax, and runs Lloyd–Max (lloyd_max.hpp) on the pooled values, each
// weighted by absmax^2 (so the objective is the squared error in data units), starting from the
// current table: a locally optimal table for absmax-scaled groups of that data, never worse on
// the training data than the table it started from.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/matrix_view.hpp>
#include <qcodec/core/result.hpp>
#include <qcodec/core/status.hpp>
#include <qcodec/quant/nonuniform/lloyd_max.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace qcodec {

namespace errors {
inline constexpr error_id code_table_bad_table{errc::invalid_argument, "qcodec.code_table.1",
                                               "code table must hold 2^bits ascending values in [-1, 1]"};
}  // namespace errors

template <unsigned Bits>
class code_table {
  static_assert(Bits >= 1 && Bits <= 8, "code tables have 1..8-bit codes");

 public:
  static constexpr unsigned symbol_bits = Bits;
  static constexpr std::size_t levels = std::size_t{1} << Bits;
  struct params_type {
    float scale;  ///< absmax of the group; value = table[code] * scale
  };

  /// Evenly spaced levels -1 + 2k / (2^Bits - 1) (a uniform quantizer; train() refines it).
  constexpr code_table() noexcept {
    for (std::size_t k = 0; k < levels; ++k)
      table_[k] = -1.0f + 2.0f * static_cast<float>(k) / static_cast<float>(levels - 1);
  }
  /// The table `t`: ascending (non-decreasing) values in [-1, 1] (checked by QCODEC_ASSERT;
  /// use from_values for untrusted input).
  constexpr explicit code_table(const std::array<float, levels>& t) noexcept : table_(t) {
    QCODEC_ASSERT(valid(t), "[qcodec.code_table.1] code table must be ascending in [-1, 1]");
  }
  /// A table from untrusted values (2^Bits ascending finite values in [-1, 1]).
  [[nodiscard]] static result<code_table> from_values(std::span<const float> v) {
    std::array<float, levels> t{};
    if (v.size() != levels) return status::failure(errors::code_table_bad_table, "wrong size");
    for (std::size_t k = 0; k < levels; ++k) t[k] = v[k];
    if (!valid(t)) return status::failure(errors::code_table_bad_table);
    return code_table(t);
  }
  /// A table from 2^Bits ascending levels of any range (e.g. a Lloyd–Max fit to a density),
  /// divided by their largest magnitude (NF4's normalisation).
  [[nodiscard]] static result<code_table> from_levels_normalized(std::span<const double> v) {
    double m = 0.0;
    for (const double x : v) m = std::fmax(m, std::fabs(x));
    if (v.size() != levels || !(m > 0.0) || !std::isfinite(m))
      return status::failure(errors::code_table_bad_table, "need 2^bits finite levels, not all 0");
    std::vector<float> t(levels);
    for (std::size_t k = 0; k < levels; ++k) t[k] = static_cast<float>(v[k] / m);
    return from_values(t);
  }

  [[nodiscard]] constexpr const std::array<float, levels>& table() const noexcept { return table_; }

  [[nodiscard]] params_type fit(std::span<const float> x) const noexcept {
    float amax = 0.0f;
    for (const float v : x) amax = std::fmax(amax, std::fabs(v));
    return {amax};
  }

  void encode(std::span<const float> x, const params_type& p, std::span<std::uint8_t> sym) const noexcept {
    QCODEC_ASSERT(x.size() == sym.size(), "[qcodec.code_table.2] one symbol per value");
    float lv[levels];
    float mid[levels];  // levels - 1 used
    for (std::size_t k = 0; k < levels; ++k) lv[k] = table_[k] * p.scale;
    for (std::size_t k = 0; k + 1 < levels; ++k) mid[k] = 0.5f * (lv[k] + lv[k + 1]);
    // exact nearest (ties to the lower index) in double, where the distances are exact; moves
    // c at most a step from the float midpoint search, and only next to a midpoint
    const auto exact = [&lv](float v, std::size_t c) {
      const double dv = v;
      while (c > 0 && std::fabs(dv - lv[c - 1]) <= std::fabs(dv - lv[c])) --c;
      while (c + 1 < levels && std::fabs(dv - lv[c + 1]) < std::fabs(dv - lv[c])) ++c;
      return static_cast<std::uint8_t>(c);
    };
    if constexpr (levels <= 16) {
      // up to 15 midpoints: count those below each value, 16 values at a time (independent
      // compares the compiler vectorises, instead of a chain of dependent table loads)
      for (std::size_t i0 = 0; i0 < x.size(); i0 += 16) {
        const std::size_t m = x.size() - i0 < 16 ? x.size() - i0 : 16;
        float xv[16] = {};
        std::uint32_t cnt[16] = {};
        for (std::size_t j = 0; j < m; ++j) xv[j] = x[i0 + j];
        for (std::size_t k = 0; k + 1 < levels; ++k)
          for (std::size_t j = 0; j < 16; ++j) cnt[j] += xv[j] > mid[k] ? 1u : 0u;
        for (std::size_t j = 0; j < m; ++j) sym[i0 + j] = exact(xv[j], cnt[j]);
      }
    } else {
      for (std::size_t i = 0; i < x.size(); ++i) {
        const float v = x[i];
        std::size_t c = 0;
        // branch-free (a multiply, not a conditional): the comparisons are unpredictable
        for (std::size_t step = levels / 2; step > 0; step /= 2)
          c += static_cast<std::size_t>(v > mid[c + step - 1]) * step;
        sym[i] = exact(v, c);
      }
    }
  }

  void decode(std::span<const std::uint8_t> sym, const params_type& p, std::span<float> y) const noexcept {
    QCODEC_ASSERT(y.size() == sym.size(), "[qcodec.code_table.2] one symbol per value");
    if constexpr (Bits == 4) {
      // pack into the LUT kernel's layout, a stack chunk at a time
      constexpr std::size_t chunk = 512;
      std::uint8_t packed[chunk / 2];
      const auto lut = simd::kernels().lut.lut16_dequantize;
      for (std::size_t i = 0; i < sym.size(); i += chunk) {
        const std::size_t m = sym.size() - i < chunk ? sym.size() - i : chunk;
        for (std::size_t j = 0; j < m; j += 2) {
          const unsigned hi = j + 1 < m ? sym[i + j + 1] & 15u : 0u;
          packed[j / 2] = static_cast<std::uint8_t>((sym[i + j] & 15u) | hi << 4);
        }
        lut(packed, m, table_.data(), p.scale, y.data() + i);
      }
    } else {
      for (std::size_t i = 0; i < sym.size(); ++i) y[i] = table_[sym[i] & (levels - 1)] * p.scale;
    }
  }

  /// 4-bit tables: decodes n codes already packed two per byte, LSB first (simd/lut.hpp layout:
  /// code 2j in the low nibble of byte j), straight through the LUT kernel. in: (n + 1) / 2
  /// bytes; y: n floats.
  void decode_packed(const std::uint8_t* in, std::size_t n, const params_type& p, float* y) const noexcept
    requires(Bits == 4)
  {
    simd::kernels().lut.lut16_dequantize(in, n, table_.data(), p.scale, y);
  }

  /// Lloyd–Max on the absmax-normalised rows of `samples` (see the header comment).
  [[nodiscard]] status train(matrix_view<const float> samples, const lloyd_max_options& opt = {}) {
    // weight s^2 per normalised value: sum s^2 (x / s - l)^2 is the squared error in data units
    std::vector<float> v, w;
    v.reserve(samples.size());
    w.reserve(samples.size());
    for (std::size_t r = 0; r < samples.rows(); ++r) {
      const auto row = samples.row(r);
      const float s = fit(row).scale;
      if (!(s > 0.0f) || !std::isfinite(s)) continue;
      for (const float x : row) {
        v.push_back(x / s);
        w.push_back(s * s);
      }
    }
    // start from the current table (distinct values only; Lloyd–Max needs them ascending)
    std::array<double, levels> init{};
    bool distinct = true;
    for (std::size_t k = 0; k < levels; ++k) {
      init[k] = table_[k];
      distinct = distinct && (k == 0 || init[k] > init[k - 1]);
    }
    lloyd_max_options o = opt;
    if (o.init.empty() && distinct) o.init = init;
    auto fit_result = lloyd_max_samples(v, w, levels, o);
    if (!fit_result.ok()) return fit_result.error();
    for (std::size_t k = 0; k < levels; ++k)
      table_[k] = static_cast<float>(std::fmin(1.0, std::fmax(-1.0, fit_result->levels[k])));
    return {};
  }

 private:
  static constexpr bool valid(const std::array<float, levels>& t) noexcept {
    for (std::size_t k = 0; k < levels; ++k) {
      if (!(t[k] >= -1.0f && t[k] <= 1.0f)) return false;
      if (k > 0 && !(t[k] >= t[k - 1])) return false;
    }
    return true;
  }

  std::array<float, levels> table_{};
};

}  // namespace qcodec
