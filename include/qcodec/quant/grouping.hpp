#pragma once
// Applying a Quantizer over a rows x cols matrix at a granularity (core/granularity.hpp):
//
//   quantized_matrix<Q> m = quantize(q, per_group<64>{}, x);   // x: matrix_view<const float>
//   dequantize(q, per_group<64>{}, m, y);                      // y: matrix_view<float>
//
// Layout of quantized_matrix<Q>:
//   symbols  rows * cols bytes, row-major (symbol of x(r, c) at r * cols + c), one unpacked
//            symbol per element whatever the granularity (pack them with simd/bit_packing.hpp)
//   params   parameter_sets<G>(rows, cols) entries of Q::params_type:
//              per_tensor    params[0], fitted on the whole matrix
//              per_token     params[r], fitted on row r
//              per_channel   params[c], fitted on column c (all rows given)
//              per_group<G>  params[r * ceil(cols / G) + g], fitted on x(r, [g G, min(cols,
//                            (g + 1) G))); the last group of a row is shorter when G does not
//                            divide cols (a tail group)
//   Storage: rows * cols * Q::symbol_bits bits once packed, plus params.size() * sizeof(params)
//   bytes.
//
// per_channel gathers each column into a scratch buffer (fit and encode run on contiguous
// spans), then scatters the symbols; decode does the reverse. per_tensor gathers the matrix only
// when its rows are padded (row_stride > cols). Encoding visits groups in the order of params
// and elements in row-major order within a group, so a stochastic quantizer's draws follow that
// order. quantize allocates the result and scratch (it is not a kernel); fit/encode/decode are
// the policy's own.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/granularity.hpp>
#include <qcodec/core/matrix_view.hpp>
#include <qcodec/quant/concepts.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

namespace qcodec {

/// Symbols and parameters of a quantized rows x cols matrix; see the file comment for layouts.
template <Quantizer Q>
struct quantized_matrix {
  static_assert(
      [] {
        if constexpr (requires { Q::symbols_per_value; }) return Q::symbols_per_value == 1;
        return true;
      }(),
      "quantize/dequantize keep one symbol per element: policies with symbols_per_value != 1 "
      "(ieee16_quantizer) cannot be carried");
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<std::uint8_t> symbols;
  std::vector<typename Q::params_type> params;
};

/// Quantizes x (rows x cols, row-major with a row stride) with q at granularity G.
template <Quantizer Q, Granularity G>
[[nodiscard]] quantized_matrix<Q> quantize(const Q& q, G, matrix_view<const float> x) {
  const std::size_t rows = x.rows(), cols = x.cols();
  quantized_matrix<Q> m;
  m.rows = rows;
  m.cols = cols;
  m.symbols.resize(rows * cols);
  m.params.resize(parameter_sets<G>(rows, cols));
  if (rows * cols == 0) return m;
  const auto sym_row = [&](std::size_t r) {
    return std::span<std::uint8_t>(m.symbols.data() + r * cols, cols);
  };

  if constexpr (std::is_same_v<G, per_tensor>) {
    if (x.is_contiguous()) {
      const std::span<const float> all(x.data(), rows * cols);
      m.params[0] = q.fit(all);
      q.encode(all, m.params[0], std::span<std::uint8_t>(m.symbols));
    } else {
      std::vector<float> scratch(rows * cols);
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) scratch[r * cols + c] = x(r, c);
      m.params[0] = q.fit(std::span<const float>(scratch));
      q.encode(std::span<const float>(scratch), m.params[0], std::span<std::uint8_t>(m.symbols));
    }
  } else if constexpr (std::is_same_v<G, per_token>) {
    for (std::size_t r = 0; r < rows; ++r) {
      const std::span<const float> row = x.row(r);
      m.params[r] = q.fit(row);
      q.encode(row, m.params[r], sym_row(r));
    }
  } else if constexpr (std::is_same_v<G, per_channel>) {
    std::vector<float> column(rows);
    std::vector<std::uint8_t> codes(rows);
    for (std::size_t c = 0; c < cols; ++c) {
      for (std::size_t r = 0; r < rows; ++r) column[r] = x(r, c);
      m.params[c] = q.fit(std::span<const float>(column));
      q.encode(std::span<const float>(column), m.params[c], std::span<std::uint8_t>(codes));
      for (std::size_t r = 0; r < rows; ++r) m.symbols[r * cols + c] = codes[r];
    }
  } else {
    constexpr std::size_t group = G::group_size;
    const std::size_t groups = (cols + group - 1) / group;
    for (std::size_t r = 0; r < rows; ++r) {
      const std::span<const float> row = x.row(r);
      const std::span<std::uint8_t> srow = sym_row(r);
      for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t first = g * group;
        const std::size_t len = cols - first < group ? cols - first : group;
        auto& p = m.params[r * groups + g];
        p = q.fit(row.subspan(first, len));
        q.encode(row.subspan(first, len), p, srow.subspan(first, len));
      }
    }
  }
  return m;
}

/// Decodes m (made by quantize with the same q and G) into y (m.rows x m.cols).
template <Quantizer Q, Granularity G>
void dequantize(const Q& q, G, const quantized_matrix<Q>& m, matrix_view<float> y) {
  const std::size_t rows = m.rows, cols = m.cols;
  QCODEC_ASSERT(y.rows() == rows && y.cols() == cols,
                "[qcodec.grouping.1] dequantize: output shape differs from the quantized matrix");
  QCODEC_ASSERT(m.symbols.size() == rows * cols && m.params.size() == parameter_sets<G>(rows, cols),
                "[qcodec.grouping.2] dequantize: symbols or params do not match the shape");
  if (rows * cols == 0 || y.rows() != rows || y.cols() != cols || m.symbols.size() != rows * cols ||
      m.params.size() != parameter_sets<G>(rows, cols))
    return;
  const auto sym_row = [&](std::size_t r) {
    return std::span<const std::uint8_t>(m.symbols.data() + r * cols, cols);
  };

  if constexpr (std::is_same_v<G, per_tensor>) {
    for (std::size_t r = 0; r < rows; ++r) q.decode(sym_row(r), m.params[0], y.row(r));
  } else if constexpr (std::is_same_v<G, per_token>) {
    for (std::size_t r = 0; r < rows; ++r) q.decode(sym_row(r), m.params[r], y.row(r));
  } else if constexpr (std::is_same_v<G, per_channel>) {
    std::vector<float> column(rows);
    std::vector<std::uint8_t> codes(rows);
    for (std::size_t c = 0; c < cols; ++c) {
      for (std::size_t r = 0; r < rows; ++r) codes[r] = m.symbols[r * cols + c];
      q.decode(std::span<const std::uint8_t>(codes), m.params[c], std::span<float>(column));
      for (std::size_t r = 0; r < rows; ++r) y(r, c) = column[r];
    }
  } else {
    constexpr std::size_t group = G::group_size;
    const std::size_t groups = (cols + group - 1) / group;
    for (std::size_t r = 0; r < rows; ++r) {
      const std::span<const std::uint8_t> srow = sym_row(r);
      const std::span<float> yrow = y.row(r);
      for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t first = g * group;
        const std::size_t len = cols - first < group ? cols - first : group;
        q.decode(srow.subspan(first, len), m.params[r * groups + g], yrow.subspan(first, len));
      }
    }
  }
}

}  // namespace qcodec
