#pragma once
// `qcodec::half`: IEEE 754 binary16 as a storage type (2 bytes, trivially copyable), for
// scales in block formats, fp16 KV caches and fp16 tensors read from files. No arithmetic and
// no comparison operators (which of bits or value equality is meant differs by caller: +-0,
// NaN): convert to float, compute, convert back. Bulk conversion of arrays is a kernel
// (`simd::kernels().convert.f32_to_f16` / `f16_to_f32`).
//
// Conversions follow the exact definition in simd/convert.hpp: float -> half rounds to
// nearest even (+-inf from 65520 up, correct rounding into the subnormals, NaN quieted with
// float fraction bits 21..13 kept, as x86 `vcvtps2ph` does); half -> float is exact (NaN
// quieted, as `vcvtph2ps` does).
//
// Both directions are constexpr and use the portable algorithm during constant evaluation.
// At run time, a translation unit compiled for F16C (`__F16C__`) uses the single-value
// hardware instructions instead, which return the same bits (tests/core/test_half.cpp checks
// this on every half and on random floats). Like any inline function these are compiled with
// the including translation unit's flags: per-ISA kernel translation units must not call them
// (kernel_table.hpp rules); kernels use `simd::detail::cvt::portable_*<Arch>` or the bulk
// kernels.

#include <qcodec/simd/convert.hpp>

#include <cstdint>
#include <type_traits>

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace qcodec {

namespace detail {
#if defined(__F16C__)
// vcvtps2ph / vcvtph2ps on lane 0 (clang's _cvtss_sh macro is a C compound literal, which
// -Wpedantic rejects in C++). The immediate selects round-to-nearest-even whatever MXCSR.RC.
inline std::uint16_t float_to_half_f16c(float f) noexcept {
  return static_cast<std::uint16_t>(
      _mm_cvtsi128_si32(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT)));
}
inline float half_to_float_f16c(std::uint16_t h) noexcept {
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}
#endif
}  // namespace detail

/// float -> binary16 bits, round to nearest even (NaN -> sign | 0x7E00 | fraction >> 13).
[[nodiscard]] constexpr std::uint16_t float_to_half(float f) noexcept {
#if defined(__F16C__)
  if (!std::is_constant_evaluated()) return detail::float_to_half_f16c(f);
#endif
  return ref::float_to_half(f);
}

/// binary16 bits -> float, exact (NaN -> sign | 0x7FC00000 | fraction << 13).
[[nodiscard]] constexpr float half_to_float(std::uint16_t h) noexcept {
#if defined(__F16C__)
  if (!std::is_constant_evaluated()) return detail::half_to_float_f16c(h);
#endif
  return ref::half_to_float(h);
}

/// IEEE 754 binary16: sign (bit 15), exponent (bits 14..10, bias 15), fraction (bits 9..0).
/// Default construction leaves `bits` uninitialised, as for float (keeps the type trivial);
/// `half{}` is +0.
struct half {
  std::uint16_t bits;  ///< the binary16 encoding

  half() = default;
  /// Rounds `f` to nearest even.
  constexpr explicit half(float f) noexcept : bits(float_to_half(f)) {}

  /// The half whose encoding is `b`.
  [[nodiscard]] static constexpr half from_bits(std::uint16_t b) noexcept {
    half h{};
    h.bits = b;
    return h;
  }

  /// The exact float value.
  [[nodiscard]] constexpr float to_float() const noexcept { return half_to_float(bits); }
  constexpr explicit operator float() const noexcept { return to_float(); }
};

static_assert(sizeof(half) == 2 && alignof(half) == 2);
static_assert(std::is_trivially_copyable_v<half> && std::is_trivial_v<half> &&
              std::is_standard_layout_v<half>);

}  // namespace qcodec
