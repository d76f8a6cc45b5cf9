#pragma once
// Published non-uniform code tables, sorted ascending, in [-1, 1]; a group decodes to
// table[code] * absmax(group) (code_table.hpp).
//
//   nf4_table            NF4, 4-bit NormalFloat (Dettmers et al., "QLoRA", 2023, arXiv:2305.14314,
//                        Appendix E; bitsandbytes' NF4 code): the 16 float32 values exactly as
//                        published. Quantiles of N(0, 1), normalised to [-1, 1], with an exact 0
//                        (7 negative and 8 positive levels).
//   iq4nl_table          ggml's IQ4_NL levels (kvalues_iq4nl, ggml-common.h) divided by 127:
//                        a 16-level non-linear 4-bit table fitted by ikawrakow to LLM weights
//                        (denser near 0, asymmetric, no exact 0).
//   e2m1_table           the FP4 E2M1 values divided by 6 (-1, -2/3, -1/2, -1/3, -1/4, -1/6,
//                        -1/12, -0, +0, 1/12, ..., 1): FP4 with absmax scaling instead of a
//                        power-of-two scale (OCP MX element type, quant/float/fp4.hpp). Two
//                        codes share the value 0 (the E2M1 signed zeros), so only 15 values
//                        are distinct.
//   dynamic_map_8bit()   bitsandbytes' 8-bit "dynamic" map of its 8-bit optimizers and
//                        blockwise quantization (Dettmers et al., "8-bit Optimizers via
//                        Block-wise Quantization", 2022, arXiv:2110.02861; create_dynamic_map
//                        (signed=True, max_exponent_bits=7, total_bits=8)): dynamic tree
//                        quantization. For i = 0..6, the 2^i midpoints of linspace(0.1, 1,
//                        2^i + 1), i.e. 0.1 + (j + 1/2) * 0.9 / 2^i for j < 2^i, scaled by
//                        10^(i - 6), with both signs (127 positive and 127 negative values from
//                        0.55e-6 up to 0.99296875), plus 0 and 1: 256 values, sorted.
//                        qcodec computes them in double and rounds once to float;
//                        bitsandbytes computes in float32 (torch.linspace), so individual
//                        entries may differ from its table in the last bit or two.

#include <array>
#include <cstddef>
#include <cstdint>

#include <qcodec/quant/block/ggml/common.hpp>

namespace qcodec {

/// NF4 (QLoRA), ascending; code 7 is the exact zero.
inline constexpr std::array<float, 16> nf4_table = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f};

namespace detail {
constexpr std::array<float, 16> make_iq4nl_table() noexcept {
  std::array<float, 16> t{};
  for (std::size_t i = 0; i < 16; ++i) t[i] = static_cast<float>(ggml::kvalues_iq4nl[i]) / 127.0f;
  return t;
}
}  // namespace detail

/// ggml IQ4_NL levels / 127, ascending.
inline constexpr std::array<float, 16> iq4nl_table = detail::make_iq4nl_table();

/// FP4 E2M1 values / 6, ascending (codes 7 and 8 are -0 and +0).
inline constexpr std::array<float, 16> e2m1_table = {
    -1.0f,         -4.0f / 6.0f, -3.0f / 6.0f, -2.0f / 6.0f, -1.5f / 6.0f, -1.0f / 6.0f,
    -0.5f / 6.0f,  -0.0f,        0.0f,         0.5f / 6.0f,  1.0f / 6.0f,  1.5f / 6.0f,
    2.0f / 6.0f,   3.0f / 6.0f,  4.0f / 6.0f,  1.0f};

/// bitsandbytes' signed 8-bit dynamic map (see the header comment), ascending.
[[nodiscard]] constexpr std::array<float, 256> dynamic_map_8bit() noexcept {
  constexpr double pow10[7] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1e0};
  std::array<double, 256> d{};
  std::size_t n = 0;
  for (int i = 0; i < 7; ++i) {
    const std::size_t m = std::size_t{1} << i;
    for (std::size_t j = 0; j < m; ++j) {
      const double mean = 0.1 + (static_cast<double>(j) + 0.5) * 0.9 / static_cast<double>(m);
      d[n++] = pow10[i] * mean;
      d[n++] = -pow10[i] * mean;
    }
  }
  d[n++] = 0.0;
  d[n++] = 1.0;
  // insertion sort (constexpr)
  for (std::size_t i = 1; i < d.size(); ++i)
    for (std::size_t j = i; j > 0 && d[j - 1] > d[j]; --j) {
      const double t = d[j];
      d[j] = d[j - 1];
      d[j - 1] = t;
    }
  std::array<float, 256> f{};
  for (std::size_t i = 0; i < 256; ++i) f[i] = static_cast<float>(d[i]);
  return f;
}

}  // namespace qcodec
