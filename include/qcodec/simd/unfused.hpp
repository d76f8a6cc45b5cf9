#pragma once
// unfused: a product kept a product. GCC 12 contracts a * b + c into a fused multiply-add in C++
// (-ffp-contract=fast is its default for every C++ mode, -std=c++20 included), even across
// statements and for vector intrinsics, wherever the target has FMA instructions. A kernel
// whose definition adds a rounded product (and so must return the same bits on every target)
// passes the product through unfused first; intended fusions are written as explicit fma.

namespace qcodec::simd::detail {

/// Returns v, hiding from the optimiser that it is a product, so that a following add stays a
/// separate, rounded operation. The empty asm emits no instruction. A template on the target,
/// as kernel helpers are (kernel_table.hpp).
template <class Arch, class T>
[[nodiscard]] inline T unfused(T v) noexcept {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__SSE2__) || defined(__x86_64__))
  __asm__("" : "+x"(v));
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
  __asm__("" : "+w"(v));
#else
  volatile T t = v;
  v = t;
#endif
  return v;
}

}  // namespace qcodec::simd::detail
