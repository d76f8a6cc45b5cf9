#pragma once
// pow2f: exact powers of two as floats, built from their bits (std::ldexp is a libm call).

#include <bit>
#include <cstdint>

namespace qcodec::detail {

/// 2^k as a float, exactly, for k in [-149, 127] (subnormal below -126).
[[nodiscard]] constexpr float pow2f(int k) noexcept {
  return k >= -126 ? std::bit_cast<float>(static_cast<std::uint32_t>(k + 127) << 23)
                   : std::bit_cast<float>(std::uint32_t{1} << (k + 149));
}

}  // namespace qcodec::detail
