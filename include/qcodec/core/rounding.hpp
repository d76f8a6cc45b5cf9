#pragma once
// nearbyint_small: std::nearbyint for the small values encoders round, without a libm call.
// Where nearbyint is no instruction (x86-64 without SSE4.1: programs built without -march flags,
// whose kernels are picked at run time) std::nearbyint is a call per element and the loop around
// it stays scalar; there this adds and subtracts 1.5 * 2^23 instead, which leaves no fraction
// bits. Not for kernel code: the body depends on the translation unit's flags (kernel_table.hpp).
// Like the addition itself, it needs IEEE arithmetic as written (no -ffast-math, which folds
// (v + m) - m to v).

#include <cmath>

namespace qcodec::detail {

/// std::nearbyint(v) as a value (the sign of a zero result may differ) for |v| <= 2^22, rounding
/// to nearest, upward or downward; toward zero it rounds a negative v down (the sum it rounds is
/// positive). A larger |v| gives a result of v's sign and magnitude at least 2^22 (enough for
/// encoders that clamp to small codes afterwards).
[[nodiscard]] inline float nearbyint_by_addition(float v) noexcept {
  constexpr float magic = 12582912.0f;
  return (v + magic) - magic;
}

/// nearbyint_by_addition on x86-64 without SSE4.1, where std::nearbyint is a libm call;
/// std::nearbyint elsewhere (one instruction, faster there than the two additions: measured).
/// 32-bit x86 keeps std::nearbyint too: with x87 excess precision the addition would not round.
[[nodiscard]] inline float nearbyint_small(float v) noexcept {
#if (defined(__x86_64__) || defined(_M_X64)) && !defined(__SSE4_1__)
  return nearbyint_by_addition(v);
#else
  return std::nearbyint(v);
#endif
}

}  // namespace qcodec::detail
