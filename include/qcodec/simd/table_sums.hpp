#pragma once
// Sums of table entries chosen by one-byte codes: the scoring loop of product quantization
// (asymmetric distance computation, as in FAISS's IndexPQ). A row of m codes scores
// sum_j T[j][code_j] against a query's inner-product tables T[j][c] (k entries per sub-space).
// The tables of up to four queries are interleaved, T[j][c][g], so that one load per code serves
// all of them (kv/coupled_codebook.hpp: under GQA-4, the query heads of a KV head).
//
// Exact definition (every target returns these bits):
//
//   table_sums   out[g * ld + r] = sum_{j < m} tables[(j * k + codes[r * m + j]) * width + g]
//                for rows r < n and g < width (1..4), added in order of j starting from +0.0f
//
// How: on x86, with four tables, a row's four sums are one SSE register, which adds one 16-byte
// load per code, four rows at a time (four independent chains of additions); a 4 x 4 transpose
// then turns the rows' sums into four runs of outputs. Four separate tables took a load, an
// address and an add per code and query: about 4 instructions a lookup under callgrind, against
// 1 this way. Narrower groups and other targets run a scalar loop, also four rows at a time.

#include <qcodec/simd/arch.hpp>

#include <cstddef>
#include <cstdint>

#if XSIMD_WITH_SSE2
#include <immintrin.h>
#endif

namespace qcodec {
namespace ref {

/// out[g * ld + r] for n rows of m codes and `width` interleaved tables; see the header comment.
inline void table_sums(const std::uint8_t* codes, std::size_t n, std::size_t m, std::size_t k,
                       const float* tables, std::size_t width, float* out,
                       std::size_t ld) noexcept {
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t g = 0; g < width; ++g) {
      float sum = 0.0f;
      for (std::size_t j = 0; j < m; ++j) sum += tables[(j * k + codes[r * m + j]) * width + g];
      out[g * ld + r] = sum;
    }
  }
}

}  // namespace ref

namespace simd {

namespace detail::table_sums {

// W interleaved tables: rows four at a time, so that four chains of additions are in flight,
// then the rows left one at a time.
template <std::size_t W, class Arch>
void rows(const std::uint8_t* codes, std::size_t n, std::size_t m, std::size_t k,
          const float* tables, float* out, std::size_t ld) noexcept {
  std::size_t r = 0;
  for (; r + 4 <= n; r += 4) {
    float sum[4][W] = {};
    const std::uint8_t* c = codes + r * m;
    for (std::size_t j = 0; j < m; ++j) {
      const float* tj = tables + j * k * W;
      for (std::size_t u = 0; u < 4; ++u) {
        const float* entry = tj + std::size_t{c[u * m + j]} * W;
        for (std::size_t g = 0; g < W; ++g) sum[u][g] += entry[g];
      }
    }
    for (std::size_t g = 0; g < W; ++g) {
      for (std::size_t u = 0; u < 4; ++u) out[g * ld + r + u] = sum[u][g];
    }
  }
  for (; r < n; ++r) {
    float sum[W] = {};
    for (std::size_t j = 0; j < m; ++j) {
      const float* entry = tables + (j * k + codes[r * m + j]) * W;
      for (std::size_t g = 0; g < W; ++g) sum[g] += entry[g];
    }
    for (std::size_t g = 0; g < W; ++g) out[g * ld + r] = sum[g];
  }
}

}  // namespace detail::table_sums

/// out[g * ld + r] for n rows of m codes and `width` (1..4) interleaved tables; see the header
/// comment.
template <class Arch>
void table_sums(const std::uint8_t* codes, std::size_t n, std::size_t m, std::size_t k,
                const float* tables, std::size_t width, float* out, std::size_t ld) noexcept {
  using detail::table_sums::rows;
  if (width == 1) return rows<1, Arch>(codes, n, m, k, tables, out, ld);
  if (width == 2) return rows<2, Arch>(codes, n, m, k, tables, out, ld);
  if (width == 3) return rows<3, Arch>(codes, n, m, k, tables, out, ld);
  std::size_t r = 0;
#if XSIMD_WITH_SSE2
  if constexpr (!is_scalar_v<Arch>) {  // every x86 target qcodec compiles has SSE
    for (; r + 4 <= n; r += 4) {
      const std::uint8_t* c = codes + r * m;
      __m128 s0 = _mm_setzero_ps(), s1 = _mm_setzero_ps(), s2 = _mm_setzero_ps(),
             s3 = _mm_setzero_ps();
      for (std::size_t j = 0; j < m; ++j) {
        const float* tj = tables + j * k * 4;
        s0 = _mm_add_ps(s0, _mm_loadu_ps(tj + std::size_t{c[j]} * 4));
        s1 = _mm_add_ps(s1, _mm_loadu_ps(tj + std::size_t{c[m + j]} * 4));
        s2 = _mm_add_ps(s2, _mm_loadu_ps(tj + std::size_t{c[2 * m + j]} * 4));
        s3 = _mm_add_ps(s3, _mm_loadu_ps(tj + std::size_t{c[3 * m + j]} * 4));
      }
      _MM_TRANSPOSE4_PS(s0, s1, s2, s3);  // s_g: query g's sums of rows r..r+3
      _mm_storeu_ps(out + r, s0);
      _mm_storeu_ps(out + ld + r, s1);
      _mm_storeu_ps(out + 2 * ld + r, s2);
      _mm_storeu_ps(out + 3 * ld + r, s3);
    }
  }
#endif
  rows<4, Arch>(codes + r * m, n - r, m, k, tables, out + r, ld);
}

struct table_sum_kernels {
  void (*table_sums)(const std::uint8_t* codes, std::size_t n, std::size_t m, std::size_t k,
                     const float* tables, std::size_t width, float* out, std::size_t ld) noexcept;
};

template <class Arch>
table_sum_kernels make_table_sum_kernels() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::table_sums};
  } else {
    return {&table_sums<Arch>};
  }
}

}  // namespace simd
}  // namespace qcodec
