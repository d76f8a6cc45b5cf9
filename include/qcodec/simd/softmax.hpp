#pragma once
// The exponentials of a softmax: y[i] = exp(x[i] - shift), returning sum_i y[i]. Attention calls
// it once per block of scores; a scalar std::exp per score would cost more than scoring a
// compressed token.
//
// Accuracy: the x86 kernels use Cephes' expf polynomial (range reduction, degree-5 polynomial,
// a scaling by 2^n that saturates to 0 and inf: vscalefps on AVX-512, where it takes half the
// instructions of xsimd's exp; two powers of two built in the exponent field on AVX2, where
// xsimd 8.1's exp returns inf from 88.38 on, below the true overflow at 88.72), other targets
// xsimd's exp; the oracle uses std::exp in float. Element results agree within
// 4 ulp, results below FLT_MIN within FLT_MIN (they may flush to 0); sums within
// (n + 4) * FLT_EPSILON * sum. -inf inputs (masked scores) give exactly 0, NaN gives NaN.

#include <qcodec/simd/arch.hpp>

#include <cmath>
#include <cstddef>
#include <type_traits>

namespace qcodec {

namespace ref {

inline float exp_shifted(const float* x, std::size_t n, float shift, float* y) noexcept {
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; ++i) sum += (y[i] = std::exp(x[i] - shift));
  return sum;
}

}  // namespace ref

namespace simd {

template <class Arch>
float exp_shifted(const float* x, std::size_t n, float shift, float* y) noexcept;

/// The softmax entries of a kernel table (see kernel_table.hpp).
struct softmax_kernels {
  float (*exp_shifted)(const float* x, std::size_t n, float shift, float* y) noexcept;
};

template <class Arch>
softmax_kernels make_softmax_kernels() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::exp_shifted};
  } else {
    return {&exp_shifted<Arch>};
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's own AVX-512 intrinsics
#endif

#if XSIMD_WITH_AVX512F
namespace detail::softmax {

// exp(v) of 16 floats: v = n ln2 + r (|r| <= ln2 / 2, ln2 in two parts, Cody-Waite), exp(r) by
// Cephes' expf polynomial, times 2^n by vscalefps. Inputs below -104 are clamped there first
// (their results are below FLT_MIN, and -inf must not meet an infinite n ln2); NaN passes. A
// template on the target, as kernel helpers are (kernel_table.hpp).
template <class Arch>
__m512 exp16(__m512 v) noexcept {
  v = _mm512_max_ps(_mm512_set1_ps(-104.0f), v);  // (a NaN v is returned as it is)
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), v);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

}  // namespace detail::softmax
#endif

#if XSIMD_WITH_AVX2
namespace detail::softmax {

// exp(v) of 8 floats, exp16's algorithm without vscalefps: 2^n as two powers of two, 2^(n/2)
// and 2^(n - n/2), built in the exponent field (each stays a normal float for n in [-150, 128]:
// results below FLT_MIN underflow gradually, above FLT_MAX to inf). v is clamped to
// [-104, 89] first (exp(89) is already inf); NaN passes.
template <class Arch>
__m256 exp8(__m256 v) noexcept {
  v = _mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), v));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), v);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i ni = _mm256_cvtps_epi32(n);  // (a NaN lane gives garbage scales; p is NaN)
  const __m256i half = _mm256_srai_epi32(ni, 1);
  const auto power = [](__m256i e) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
  };
  return _mm256_mul_ps(_mm256_mul_ps(p, power(half)), power(_mm256_sub_epi32(ni, half)));
}

}  // namespace detail::softmax
#endif

template <class Arch>
float exp_shifted(const float* x, std::size_t n, float shift, float* y) noexcept {
  using B = batch<float, Arch>;
  constexpr std::size_t W = B::size;
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    const __m512 s = _mm512_set1_ps(shift);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m512 e0 = detail::softmax::exp16<Arch>(_mm512_sub_ps(_mm512_loadu_ps(x + i), s));
      const __m512 e1 = detail::softmax::exp16<Arch>(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), s));
      _mm512_storeu_ps(y + i, e0);
      _mm512_storeu_ps(y + i + 16, e1);
      acc0 = _mm512_add_ps(acc0, e0);
      acc1 = _mm512_add_ps(acc1, e1);
    }
    for (; i < n; i += 16) {  // the last 1..31 elements, masked
      const std::size_t k = n - i < 16 ? n - i : 16;
      const __mmask16 m = static_cast<__mmask16>((1u << k) - 1u);
      const __m512 e =
          detail::softmax::exp16<Arch>(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s));
      _mm512_mask_storeu_ps(y + i, m, e);
      acc0 = _mm512_mask_add_ps(acc0, m, acc0, e);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  }
#endif
#if XSIMD_WITH_AVX2
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch>) {
    const __m256 s = _mm256_set1_ps(shift);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m256 e0 = detail::softmax::exp8<Arch>(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
      const __m256 e1 = detail::softmax::exp8<Arch>(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), s));
      _mm256_storeu_ps(y + i, e0);
      _mm256_storeu_ps(y + i + 8, e1);
      acc0 = _mm256_add_ps(acc0, e0);
      acc1 = _mm256_add_ps(acc1, e1);
    }
    for (; i < n; i += 8) {  // the last 1..15 elements, masked
      const int k = static_cast<int>(n - i < 8 ? n - i : 8);
      const __m256i m =
          _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      const __m256 e = detail::softmax::exp8<Arch>(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), s));
      _mm256_maskstore_ps(y + i, m, e);
      acc0 = _mm256_add_ps(acc0, _mm256_and_ps(_mm256_castsi256_ps(m), e));
    }
    return reduce_add(B(_mm256_add_ps(acc0, acc1)));
  }
#endif
  const B s(shift);
  B acc(0.0f);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B e = xsimd::exp(B::load_unaligned(x + i) - s);
    e.store_unaligned(y + i);
    acc += e;
  }
  float sum = reduce_add(acc);
  for (; i < n; ++i) sum += (y[i] = std::exp(x[i] - shift));
  return sum;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace simd
}  // namespace qcodec
