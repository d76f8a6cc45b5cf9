#pragma once
// The exponentials of a softmax: y[i] = exp(x[i] - shift), returning sum_i y[i]. Attention calls
// it once per block of scores; a scalar std::exp per score would cost more than scoring a
// compressed token.
//
// Accuracy: the SIMD kernels use xsimd's exp (a few ulp); the oracle uses std::exp in float.
// Element results agree within 4 ulp; sums within (n + 4) * FLT_EPSILON * sum. -inf inputs (masked
// scores) give exactly 0.

#include <qcodec/simd/arch.hpp>

#include <cmath>
#include <cstddef>

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

template <class Arch>
float exp_shifted(const float* x, std::size_t n, float shift, float* y) noexcept {
  using B = batch<float, Arch>;
  constexpr std::size_t W = B::size;
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

}  // namespace simd
}  // namespace qcodec
