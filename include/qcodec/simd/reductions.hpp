#pragma once
// Reductions over float arrays: absmax, min/max, sum, sum of squares, dot product.
//
// absmax and minmax are exact, so every target returns the same bits as the oracle. The sums
// use several vector accumulators (the oracles accumulate in double); they agree with the
// oracle to within n * FLT_EPSILON * sum(|terms|).
//
// NaN inputs are skipped by absmax and minmax (a comparison with NaN is false), identically on
// every target.

#include <qcodec/simd/arch.hpp>

#include <cmath>
#include <cstddef>
#include <limits>

namespace qcodec {

/// Smallest and largest element; {+inf, -inf} for an empty range.
struct min_max {
  float min;
  float max;
};

namespace ref {

[[nodiscard]] inline float absmax(const float* x, std::size_t n) noexcept {
  float m = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    m = a > m ? a : m;
  }
  return m;
}

[[nodiscard]] inline min_max minmax(const float* x, std::size_t n) noexcept {
  min_max r{std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  for (std::size_t i = 0; i < n; ++i) {
    r.min = x[i] < r.min ? x[i] : r.min;
    r.max = x[i] > r.max ? x[i] : r.max;
  }
  return r;
}

[[nodiscard]] inline float sum(const float* x, std::size_t n) noexcept {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) s += x[i];
  return static_cast<float>(s);
}

[[nodiscard]] inline float sum_squares(const float* x, std::size_t n) noexcept {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) s += double{x[i]} * x[i];
  return static_cast<float>(s);
}

[[nodiscard]] inline float dot(const float* a, const float* b, std::size_t n) noexcept {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) s += double{a[i]} * b[i];
  return static_cast<float>(s);
}

}  // namespace ref

namespace simd {

template <class Arch>
float absmax(const float* x, std::size_t n) noexcept;
template <class Arch>
min_max minmax(const float* x, std::size_t n) noexcept;
template <class Arch>
float sum(const float* x, std::size_t n) noexcept;
template <class Arch>
float sum_squares(const float* x, std::size_t n) noexcept;
template <class Arch>
float dot(const float* a, const float* b, std::size_t n) noexcept;

/// The reduction entries of a kernel table (see kernel_table.hpp).
struct reduction_kernels {
  float (*absmax)(const float* x, std::size_t n) noexcept;
  min_max (*minmax)(const float* x, std::size_t n) noexcept;
  float (*sum)(const float* x, std::size_t n) noexcept;
  float (*sum_squares)(const float* x, std::size_t n) noexcept;
  float (*dot)(const float* a, const float* b, std::size_t n) noexcept;
};

template <class Arch>
reduction_kernels make_reduction_kernels() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::absmax, &ref::minmax, &ref::sum, &ref::sum_squares, &ref::dot};
  } else {
    return {&absmax<Arch>, &minmax<Arch>, &sum<Arch>, &sum_squares<Arch>, &dot<Arch>};
  }
}

// Kernels are defined out of class and not `inline`, so that `extern template` declarations
// (dispatch.hpp) keep them out of translation units compiled without the ISA's flags.

template <class Arch>
float absmax(const float* x, std::size_t n) noexcept {
  using B = batch<float, Arch>;
  constexpr std::size_t W = B::size;
  B m0(0.0f), m1(0.0f);
  std::size_t i = 0;
  // Two accumulators hide the max latency; select() (not xsimd::max) keeps NaN-skipping exact.
  for (; i + 2 * W <= n; i += 2 * W) {
    const B a0 = xsimd::abs(B::load_unaligned(x + i));
    const B a1 = xsimd::abs(B::load_unaligned(x + i + W));
    m0 = xsimd::select(a0 > m0, a0, m0);
    m1 = xsimd::select(a1 > m1, a1, m1);
  }
  float m = reduce_max(xsimd::select(m1 > m0, m1, m0));
  for (; i < n; ++i) {
    const float a = std::fabs(x[i]);
    m = a > m ? a : m;
  }
  return m;
}

template <class Arch>
min_max minmax(const float* x, std::size_t n) noexcept {
  using B = batch<float, Arch>;
  constexpr std::size_t W = B::size;
  constexpr float inf = std::numeric_limits<float>::infinity();
  B lo0(inf), hi0(-inf), lo1(inf), hi1(-inf);
  std::size_t i = 0;
  // Two pairs of accumulators hide the compare-select latency (as in absmax).
  for (; i + 2 * W <= n; i += 2 * W) {
    const B v0 = B::load_unaligned(x + i);
    const B v1 = B::load_unaligned(x + i + W);
    lo0 = xsimd::select(v0 < lo0, v0, lo0);
    hi0 = xsimd::select(v0 > hi0, v0, hi0);
    lo1 = xsimd::select(v1 < lo1, v1, lo1);
    hi1 = xsimd::select(v1 > hi1, v1, hi1);
  }
  if (i + W <= n) {
    const B v = B::load_unaligned(x + i);
    lo0 = xsimd::select(v < lo0, v, lo0);
    hi0 = xsimd::select(v > hi0, v, hi0);
    i += W;
  }
  min_max r{reduce_min(xsimd::select(lo1 < lo0, lo1, lo0)),
            reduce_max(xsimd::select(hi1 > hi0, hi1, hi0))};
  for (; i < n; ++i) {
    r.min = x[i] < r.min ? x[i] : r.min;
    r.max = x[i] > r.max ? x[i] : r.max;
  }
  return r;
}

namespace detail {

// Folds step(acc, i) over the whole vectors of [0, n) with four independent accumulators;
// the caller adds the n % W tail elements.
template <class Arch, class Step>
float accumulate(std::size_t n, Step step) noexcept {
  using B = batch<float, Arch>;
  constexpr std::size_t W = B::size;
  B s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    s0 = step(s0, i);
    s1 = step(s1, i + W);
    s2 = step(s2, i + 2 * W);
    s3 = step(s3, i + 3 * W);
  }
  for (; i + W <= n; i += W) s0 = step(s0, i);
  return reduce_add((s0 + s1) + (s2 + s3));
}

}  // namespace detail

template <class Arch>
float sum(const float* x, std::size_t n) noexcept {
  using B = batch<float, Arch>;
  float s = detail::accumulate<Arch>(
      n, [x](const B& acc, std::size_t i) { return acc + B::load_unaligned(x + i); });
  for (std::size_t i = n - n % B::size; i < n; ++i) s += x[i];
  return s;
}

template <class Arch>
float sum_squares(const float* x, std::size_t n) noexcept {
  using B = batch<float, Arch>;
  float s = detail::accumulate<Arch>(n, [x](const B& acc, std::size_t i) {
    const B v = B::load_unaligned(x + i);
    return xsimd::fma(v, v, acc);
  });
  for (std::size_t i = n - n % B::size; i < n; ++i) s = std::fma(x[i], x[i], s);
  return s;
}

template <class Arch>
float dot(const float* a, const float* b, std::size_t n) noexcept {
  using B = batch<float, Arch>;
  float s = detail::accumulate<Arch>(n, [a, b](const B& acc, std::size_t i) {
    return xsimd::fma(B::load_unaligned(a + i), B::load_unaligned(b + i), acc);
  });
  for (std::size_t i = n - n % B::size; i < n; ++i) s = std::fma(a[i], b[i], s);
  return s;
}

}  // namespace simd
}  // namespace qcodec
