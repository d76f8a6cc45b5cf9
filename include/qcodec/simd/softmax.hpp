#pragma once
// The exponentials of a softmax: y[i] = exp(scale * x[i] - shift), returning sum_i y[i] and the
// largest scale * x[i]. Attention calls it once per block of raw scores: the scaling and the
// block's maximum come from the same pass as the exponentials (each was a pass of its own, 10%
// of a 4-bit decode step), and a scalar std::exp per score would cost more than scoring a
// compressed token.
//
// The argument is the rounded product minus the shift, not fused (unfused.hpp), so that every
// target exponentiates the same floats. Accuracy: AVX-512 takes exp from a table of 2^(j/32) and
// a degree-2 polynomial (exp16 below); other SIMD targets use Cephes' expf (range reduction, a
// degree-5 polynomial, and a scaling by 2^n built in the exponent field as two powers of two,
// whose product saturates to 0 and inf where exp does: xsimd 8.1's exp returns inf from 88.38
// on, below the true overflow at 88.72); the oracle uses std::exp in float. Element results agree
// within 4 ulp, results below FLT_MIN within FLT_MIN (they may flush to 0); sums within (n + 4) *
// FLT_EPSILON * sum; the maximum exactly (NaN skipped; -inf when there is none). -inf arguments
// (masked scores) give exactly 0, NaN gives NaN.

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

#if XSIMD_WITH_AVX512F
// exp(v) of 16 floats: v = (m + j / 32) ln2 + r, |r| <= ln2 / 64, so exp(v) = 2^m t_j exp(r)
// with t_j = 2^(j / 32) from a table of 32 (vpermt2ps, two registers) and exp(r) from
// 1 + r (c1 + c2 r), the degree-2 polynomial whose relative error to exp over |r| <= ln2 / 64 is
// least (at most 5.4e-8, Remez), as t_j + t_j r (c1 + c2 r) rounded once, and 2^m applied by
// vscalefps (which saturates to 0 and inf, and takes the floor of m + j / 32). One rounding of
// v / ln2 to 32nds gives m and j: adding 1.5 * 2^18, whose ulp is 1 / 32, leaves 32 m + j in the
// low bits of the sum, where vpermt2ps reads j, and the sum minus 1.5 * 2^18 is m + j / 32.
// Within 1.75 ulp of exp in double over every float of [-104, 89] (a standalone comparison). The
// table of 16 with a degree-3 polynomial used before was within 1.07 ulp and one FMA longer; this
// exp takes 0.92x its time in exp_scaled's loop (a standalone copy, 4 rows of 256 scores a call),
// 0.97-0.99x the time of a q4-blocks-quads decode step at head_dim 64 and 0.99x at 128
// (docs/measurements.md). v is clamped to [-104, 89] first: the rounding needs |v / ln2| < 2^17,
// results below -104 are below FLT_MIN (-inf gives 0) and above 89 inf; NaN passes. A template on
// the target, as kernel helpers are (kernel_table.hpp).
template <class Arch>
__m512 exp16(__m512 v) noexcept {
  // 2^(j / 32), rounded
  alignas(64) static constexpr float powers[32] = {
      1.0f,        1.0218972f,  1.04427373f, 1.06714046f, 1.09050775f, 1.1143868f,  1.13878858f,
      1.1637249f,  1.18920708f, 1.21524739f, 1.24185777f, 1.26905096f, 1.29683959f, 1.32523668f,
      1.35425556f, 1.38390994f, 1.41421354f, 1.44518077f, 1.47682619f, 1.50916445f, 1.54221082f,
      1.5759809f,  1.61049032f, 1.64575553f, 1.68179286f, 1.71861935f, 1.75625217f, 1.79470909f,
      1.8340081f,  1.87416768f, 1.91520655f, 1.95714414f};
  constexpr float ln2_hi = 0.693147182f;      // ln2 rounded,
  constexpr float ln2_lo = -1.90465421e-09f;  // and what that rounding left
  constexpr float c1 = 1.00001478f, c2 = 0.500011086f;
  const __m512 round = _mm512_set1_ps(393216.0f);  // 1.5 * 2^18
  // (max and min return their second operand for a NaN one)
  v = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), v));
  const __m512 sum = _mm512_fmadd_ps(v, _mm512_set1_ps(1.44269502f), round);  // 1 / ln2
  const __m512 k = _mm512_sub_ps(sum, round);                                 // m + j / 32
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(ln2_hi), v);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(ln2_lo), r);
  const __m512 e = _mm512_mul_ps(_mm512_fmadd_ps(_mm512_set1_ps(c2), r, _mm512_set1_ps(c1)), r);
  const __m512 t = _mm512_permutex2var_ps(_mm512_load_ps(powers), _mm512_castps_si512(sum),
                                          _mm512_load_ps(powers + 16));
  return _mm512_scalef_ps(_mm512_fmadd_ps(t, e, t), k);
}
#endif

// exp(v) for the other targets, Cephes' expf: v = n ln2 + r (|r| <= ln2 / 2, ln2 in two parts,
// Cody-Waite), exp(r) from a degree-5 polynomial, then 2^n as two powers of two, 2^(n/2) and
// 2^(n - n/2), built in the exponent field (each stays a normal float for n in [-150, 128]: the
// product's results below FLT_MIN underflow gradually, above FLT_MAX to inf). v is clamped to
// [-104, 89] first (exp(89) is already inf); NaN passes (max and min return their second operand
// for a NaN one on x86).
template <class Arch>
batch<float, Arch> exp_cephes(batch<float, Arch> v) noexcept {
  using B = batch<float, Arch>;
  using I = batch<std::int32_t, Arch>;
  v = xsimd::min(B(89.0f), xsimd::max(B(-104.0f), v));
  const B n = xsimd::nearbyint(v * B(1.44269504088896341f));
  B r = xsimd::fnma(n, B(0.693359375f), v);
  r = xsimd::fnma(n, B(-2.12194440e-4f), r);
  B p(1.9875691500e-4f);
  p = xsimd::fma(p, r, B(1.3981999507e-3f));
  p = xsimd::fma(p, r, B(8.3334519073e-3f));
  p = xsimd::fma(p, r, B(4.1665795894e-2f));
  p = xsimd::fma(p, r, B(1.6666665459e-1f));
  p = xsimd::fma(p, r, B(5.0000001201e-1f));
  p = xsimd::fma(p, r * r, r + B(1.0f));
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
  for (; i < n; i += W) {  // the last 1..2W - 1 elements; padding products are -inf
    const std::size_t k = n - i < W ? n - i : W;
    alignas(64) float v[W];
    for (std::size_t j = 0; j < W; ++j) v[j] = j < k ? unfused<Arch>(scale * x[i + j]) : -inf;
    const B p = B::load_aligned(v);
    raise(max0, p);
    detail::softmax::exp_cephes<Arch>(p - s).store_aligned(v);
    for (std::size_t j = 0; j < k; ++j) y[i + j] = v[j];
    // The padding adds nothing (exp(-inf - shift) is NaN under a row's first shift, -inf).
    for (std::size_t j = k; j < W; ++j) v[j] = 0.0f;
    acc0 += B::load_aligned(v);
  }
  raise(max0, max1);
  return {reduce_add(acc0 + acc1), reduce_max(max0)};
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace simd
}  // namespace qcodec
