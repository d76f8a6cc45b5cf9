#pragma once
// Sums of table entries chosen by one-byte codes: the scoring loop of product quantization
// (asymmetric distance computation, as in FAISS's IndexPQ). A row of m codes scores
// sum_j T[j][code_j] against a query's inner-product tables T[j][c] (k entries per sub-space).
// The tables of four queries are interleaved, T[j][c][g], so that one 16-byte load per code
// serves all four (kv/coupled_codebook.hpp: under GQA-4, the query heads of a KV head).
//
// Exact definition (every target returns these bits):
//
//   table_sums4   out[g * ld + r] = sum_{j < m} tables[(j * k + codes[r * m + j]) * 4 + g]
//                 for rows r < n and g < 4, added in order of j starting from +0.0f
//
// How: on x86 a row's four sums are one SSE register, which adds one load per code, four rows
// at a time (four independent chains of additions); a 4 x 4 transpose then turns the rows' sums
// into four runs of outputs. Four separate tables took a load, an address and an add per code
// and query: about 4 instructions a lookup under callgrind, against 1 this way. Other targets
// run the scalar loop.

#include <qcodec/simd/arch.hpp>

#include <cstddef>
#include <cstdint>

#if XSIMD_WITH_SSE2
#include <immintrin.h>
#endif

namespace qcodec {
namespace ref {

/// out[g * ld + r] = sum_j tables[(j * k + codes[r * m + j]) * 4 + g]; see the header comment.
inline void table_sums4(const std::uint8_t* codes, std::size_t n, std::size_t m, std::size_t k,
                        const float* tables, float* out, std::size_t ld) noexcept {
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t g = 0; g < 4; ++g) {
      float sum = 0.0f;
      for (std::size_t j = 0; j < m; ++j) sum += tables[(j * k + codes[r * m + j]) * 4 + g];
      out[g * ld + r] = sum;
    }
  }
}

}  // namespace ref

namespace simd {

namespace detail::table_sums {

// The oracle's loop, compiled for Arch (kernels never call ref functions: kernel_table.hpp).
template <class Arch>
void rows(const std::uint8_t* codes, std::size_t n, std::size_t m, std::size_t k,
          const float* tables, float* out, std::size_t ld) noexcept {
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t g = 0; g < 4; ++g) {
      float sum = 0.0f;
      for (std::size_t j = 0; j < m; ++j) sum += tables[(j * k + codes[r * m + j]) * 4 + g];
      out[g * ld + r] = sum;
    }
  }
}

}  // namespace detail::table_sums

/// out[g * ld + r] for n rows of m codes and four interleaved tables; see the header comment.
template <class Arch>
void table_sums4(const std::uint8_t* codes, std::size_t n, std::size_t m, std::size_t k,
                 const float* tables, float* out, std::size_t ld) noexcept {
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
  detail::table_sums::rows<Arch>(codes + r * m, n - r, m, k, tables, out + r, ld);
}

struct table_sum_kernels {
  void (*table_sums4)(const std::uint8_t* codes, std::size_t n, std::size_t m, std::size_t k,
                      const float* tables, float* out, std::size_t ld) noexcept;
};

template <class Arch>
table_sum_kernels make_table_sum_kernels() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::table_sums4};
  } else {
    return {&table_sums4<Arch>};
  }
}

}  // namespace simd
}  // namespace qcodec
