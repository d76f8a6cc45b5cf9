#pragma once
// nearbyint_small: std::nearbyint for the small values encoders round, without a libm call.
// Where nearbyint is no instruction (x86-64 without SSE4.1: programs built without -march flags,
// whose kernels are picked at run time) std::nearbyint is a call per element and the loop around
// it stays scalar; there this adds and subtracts 1.5 * 2^23 instead, which leaves no fraction
// bits and rounds the same way, in the current rounding mode.

#include <cmath>

namespace qcodec::detail {

/// std::nearbyint(v) for |v| <= 2^22; a larger |v| gives a result of v's sign beyond 2^21
/// (enough for encoders that clamp to small codes afterwards).
[[nodiscard]] inline float nearbyint_by_addition(float v) noexcept {
  constexpr float magic = 12582912.0f;
  return (v + magic) - magic;
}

/// nearbyint_by_addition where std::nearbyint is a libm call; std::nearbyint elsewhere (one
/// instruction, faster there than the two additions: measured).
[[nodiscard]] inline float nearbyint_small(float v) noexcept {
#if defined(__SSE4_1__) || defined(__aarch64__) || !(defined(__x86_64__) || defined(_M_X64))
  return std::nearbyint(v);
#else
  return nearbyint_by_addition(v);
#endif
}

}  // namespace qcodec::detail
