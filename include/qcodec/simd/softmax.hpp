#pragma once
// The exponentials of a softmax: y[i] = exp(scale * x[i] - shift), returning sum_i y[i] and the
// largest scale * x[i]. Attention calls it once per block of raw scores: the scaling and the
// block's maximum come from the same pass as the exponentials (each was a pass of its own, 10%
// of a 4-bit decode step), and a scalar std::exp per score would cost more than scoring a
// compressed token.
//
// The argument is the rounded product minus the shift, not fused (unfused.hpp), so that every
// target exponentiates the same floats. Accuracy: the SIMD kernels use Cephes' expf polynomial
// (range reduction, degree-5 polynomial, a scaling by 2^n that saturates to 0 and inf: vscalefps
// on AVX-512, where it takes half the instructions of xsimd's exp; elsewhere two powers of two
// built in the exponent field, as xsimd 8.1's exp returns inf from 88.38 on, below the true
// overflow at 88.72); the oracle uses std::exp in float. Element results agree within 4 ulp,
// results below FLT_MIN within FLT_MIN (they may flush to 0); sums within
// (n + 4) * FLT_EPSILON * sum; the maximum exactly (NaN skipped; -inf when there is none).
// -inf arguments (masked scores) give exactly 0, NaN gives NaN.

#include <qcodec/simd/arch.hpp>
#include <qcodec/simd/unfused.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace qcodec {

namespace simd {

/// What exp_scaled returns: the sum of the exponentials and the largest scaled input.
struct exp_sum {
  float sum;
  float max;
};

}  // namespace simd

namespace ref {

inline simd::exp_sum exp_scaled(const float* x, std::size_t n, float scale, float shift,
                                float* y) noexcept {
  simd::exp_sum r{0.0f, -std::numeric_limits<float>::infinity()};
  for (std::size_t i = 0; i < n; ++i) {
    const float p = simd::detail::unfused<simd::scalar>(scale * x[i]);
    if (p > r.max) r.max = p;
    r.sum += (y[i] = std::exp(p - shift));
  }
  return r;
}

}  // namespace ref

namespace simd {

template <class Arch>
exp_sum exp_scaled(const float* x, std::size_t n, float scale, float shift, float* y) noexcept;

/// The softmax entries of a kernel table (see kernel_table.hpp).
struct softmax_kernels {
  exp_sum (*exp_scaled)(const float* x, std::size_t n, float scale, float shift, float* y) noexcept;
};

template <class Arch>
softmax_kernels make_softmax_kernels() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::exp_scaled};
  } else {
    return {&exp_scaled<Arch>};
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's own AVX-512 intrinsics
#endif

namespace detail::softmax {

// Cephes' expf for the kernels: v = n ln2 + r (|r| <= ln2 / 2, ln2 in two parts, Cody-Waite);
// returns exp(r) from the degree-5 polynomial and sets n. Each target then scales by 2^n.
template <class Arch>
batch<float, Arch> exp_reduced(batch<float, Arch> v, batch<float, Arch>& n) noexcept {
  using B = batch<float, Arch>;
  n = xsimd::nearbyint(v * B(1.44269504088896341f));
  B r = xsimd::fnma(n, B(0.693359375f), v);
  r = xsimd::fnma(n, B(-2.12194440e-4f), r);
  B p(1.9875691500e-4f);
  p = xsimd::fma(p, r, B(1.3981999507e-3f));
  p = xsimd::fma(p, r, B(8.3334519073e-3f));
  p = xsimd::fma(p, r, B(4.1665795894e-2f));
  p = xsimd::fma(p, r, B(1.6666665459e-1f));
  p = xsimd::fma(p, r, B(5.0000001201e-1f));
  return xsimd::fma(p, r * r, r + B(1.0f));
}

#if XSIMD_WITH_AVX512F
// exp(v) of 16 floats, times 2^n by vscalefps. Inputs below -104 are clamped there first (their
// results are below FLT_MIN, and -inf must not meet an infinite n ln2); NaN passes. A template
// on the target, as kernel helpers are (kernel_table.hpp).
template <class Arch>
__m512 exp16(__m512 v) noexcept {
  v = _mm512_max_ps(_mm512_set1_ps(-104.0f), v);  // (a NaN v is returned as it is)
  batch<float, Arch> n;
  const batch<float, Arch> p = exp_reduced<Arch>(v, n);
  return _mm512_scalef_ps(p, n);
}
#endif

// exp(v) for any target: 2^n as two powers of two, 2^(n/2) and 2^(n - n/2), built in the
// exponent field (each stays a normal float for n in [-150, 128]: results below FLT_MIN
// underflow gradually, above FLT_MAX to inf). v is clamped to [-104, 89] first (exp(89) is
// already inf); NaN passes (max and min return their second operand for a NaN one on x86).
template <class Arch>
batch<float, Arch> exp_cephes(batch<float, Arch> v) noexcept {
  using B = batch<float, Arch>;
  using I = batch<std::int32_t, Arch>;
  B n;
  const B p = exp_reduced<Arch>(xsimd::min(B(89.0f), xsimd::max(B(-104.0f), v)), n);
  const I ni = xsimd::to_int(n);  // (a NaN lane gives garbage scales; p is NaN)
  const I half = ni >> 1;
  const auto power = [](I e) { return xsimd::bitwise_cast<B>((e + I(127)) << 23); };
  return p * power(half) * power(ni - half);
}

}  // namespace detail::softmax

template <class Arch>
exp_sum exp_scaled(const float* x, std::size_t n, float scale, float shift, float* y) noexcept {
  using B = batch<float, Arch>;
  using R = typename B::register_type;
  constexpr std::size_t W = B::size;
  constexpr float inf = std::numeric_limits<float>::infinity();
  using detail::unfused;
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    const __m512 c = _mm512_set1_ps(scale), s = _mm512_set1_ps(shift);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m512 max0 = _mm512_set1_ps(-inf), max1 = max0;  // max(p, m) is m for a NaN p
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m512 p0 = unfused<Arch>(_mm512_mul_ps(_mm512_loadu_ps(x + i), c));
      const __m512 p1 = unfused<Arch>(_mm512_mul_ps(_mm512_loadu_ps(x + i + 16), c));
      max0 = _mm512_max_ps(p0, max0);
      max1 = _mm512_max_ps(p1, max1);
      const __m512 e0 = detail::softmax::exp16<Arch>(_mm512_sub_ps(p0, s));
      const __m512 e1 = detail::softmax::exp16<Arch>(_mm512_sub_ps(p1, s));
      _mm512_storeu_ps(y + i, e0);
      _mm512_storeu_ps(y + i + 16, e1);
      acc0 = _mm512_add_ps(acc0, e0);
      acc1 = _mm512_add_ps(acc1, e1);
    }
    for (; i < n; i += 16) {  // the last 1..31 elements, masked
      const std::size_t k = n - i < 16 ? n - i : 16;
      const __mmask16 m = static_cast<__mmask16>((1u << k) - 1u);
      const __m512 p = unfused<Arch>(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), c));
      max0 = _mm512_mask_max_ps(max0, m, p, max0);
      const __m512 e = detail::softmax::exp16<Arch>(_mm512_sub_ps(p, s));
      _mm512_mask_storeu_ps(y + i, m, e);
      acc0 = _mm512_mask_add_ps(acc0, m, acc0, e);
    }
    return {_mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)),
            _mm512_reduce_max_ps(_mm512_max_ps(max0, max1))};
  }
#endif
  const B c(scale), s(shift);
  B acc0(0.0f), acc1(0.0f), max0(-inf), max1(-inf);
  const auto product = [&c](const float* v) {
    const R p = B::load_unaligned(v) * c;
    return B(unfused<Arch>(p));
  };
  const auto raise = [](B& m, const B& p) { m = xsimd::select(p > m, p, m); };  // NaN: m stays
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const B p0 = product(x + i), p1 = product(x + i + W);
    raise(max0, p0);
    raise(max1, p1);
    const B e0 = detail::softmax::exp_cephes<Arch>(p0 - s);
    const B e1 = detail::softmax::exp_cephes<Arch>(p1 - s);
    e0.store_unaligned(y + i);
    e1.store_unaligned(y + i + W);
    acc0 += e0;
    acc1 += e1;
  }
  for (; i < n; i += W) {  // the last 1..2W - 1 elements; padding products are -inf (exp: 0)
    const std::size_t k = n - i < W ? n - i : W;
    alignas(64) float v[W];
    for (std::size_t j = 0; j < W; ++j) v[j] = j < k ? unfused<Arch>(scale * x[i + j]) : -inf;
    const B p = B::load_aligned(v);
    raise(max0, p);
    const B e = detail::softmax::exp_cephes<Arch>(p - s);
    e.store_aligned(v);
    for (std::size_t j = 0; j < k; ++j) y[i + j] = v[j];
    acc0 += e;
  }
  raise(max0, max1);
  return {reduce_add(acc0 + acc1), reduce_max(max0)};
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace simd
}  // namespace qcodec
