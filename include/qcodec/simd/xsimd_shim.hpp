#pragma once
// The one place that knows which xsimd version we build against (Debian ships 8.1; current
// xsimd renamed a few reducers), plus the few widening/narrowing moves xsimd 8 lacks.
// Everything here is a function template on the arch tag, so a per-ISA translation unit never
// emits an out-of-line copy that another translation unit could pick up at link time.

#include <xsimd/xsimd.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace qcodec::simd {

template <class T, class Arch>
using batch = xsimd::batch<T, Arch>;

/// Sum of all lanes.
template <class T, class Arch>
[[nodiscard]] inline T reduce_add(const batch<T, Arch>& v) noexcept {
#if XSIMD_VERSION_MAJOR >= 9
  return xsimd::reduce_add(v);
#else
  return xsimd::hadd(v);
#endif
}

/// Largest lane (lanes are never NaN where qcodec calls this).
template <class T, class Arch>
[[nodiscard]] inline T reduce_max(const batch<T, Arch>& v) noexcept {
#if XSIMD_VERSION_MAJOR >= 9
  return xsimd::reduce_max(v);
#else
  alignas(64) T lanes[batch<T, Arch>::size];
  v.store_aligned(lanes);
  T m = lanes[0];
  for (std::size_t i = 1; i < batch<T, Arch>::size; ++i) m = lanes[i] > m ? lanes[i] : m;
  return m;
#endif
}

/// Smallest lane (lanes are never NaN where qcodec calls this).
template <class T, class Arch>
[[nodiscard]] inline T reduce_min(const batch<T, Arch>& v) noexcept {
#if XSIMD_VERSION_MAJOR >= 9
  return xsimd::reduce_min(v);
#else
  alignas(64) T lanes[batch<T, Arch>::size];
  v.store_aligned(lanes);
  T m = lanes[0];
  for (std::size_t i = 1; i < batch<T, Arch>::size; ++i) m = lanes[i] < m ? lanes[i] : m;
  return m;
#endif
}

namespace detail {

// Widen `batch<int32_t, Arch>::size` bytes to 32-bit lanes (zero-extended).
template <class Arch>
inline batch<std::int32_t, Arch> load_u8_as_i32(const std::uint8_t* p, xsimd::generic) noexcept {
  alignas(64) std::int32_t lanes[batch<std::int32_t, Arch>::size];
  for (std::size_t i = 0; i < batch<std::int32_t, Arch>::size; ++i) lanes[i] = p[i];
  return batch<std::int32_t, Arch>::load_aligned(lanes);
}
#if XSIMD_WITH_AVX2
template <class Arch>
inline batch<std::int32_t, Arch> load_u8_as_i32(const std::uint8_t* p, xsimd::avx2) noexcept {
  std::int64_t eight;
  std::memcpy(&eight, p, sizeof eight);
  return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(eight));
}
#endif
#if XSIMD_WITH_AVX512F
template <class Arch>
inline batch<std::int32_t, Arch> load_u8_as_i32(const std::uint8_t* p, xsimd::avx512f) noexcept {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
#endif
#if XSIMD_WITH_NEON64
template <class Arch>
inline batch<std::int32_t, Arch> load_u8_as_i32(const std::uint8_t* p, xsimd::neon64) noexcept {
  std::uint32_t four;
  std::memcpy(&four, p, sizeof four);
  const uint16x8_t wide = vmovl_u8(vcreate_u8(four));
  return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(wide)));
}
#endif

// Store the low byte of each 32-bit lane (lanes hold 0..255).
template <class Arch>
inline void store_i32_as_u8(const batch<std::int32_t, Arch>& v, std::uint8_t* p,
                            xsimd::generic) noexcept {
  alignas(64) std::int32_t lanes[batch<std::int32_t, Arch>::size];
  v.store_aligned(lanes);
  for (std::size_t i = 0; i < batch<std::int32_t, Arch>::size; ++i)
    p[i] = static_cast<std::uint8_t>(lanes[i]);
}
#if XSIMD_WITH_AVX2
template <class Arch>
inline void store_i32_as_u8(const batch<std::int32_t, Arch>& v, std::uint8_t* p,
                            xsimd::avx2) noexcept {
  // Gather byte 0 of every dword into the low 4 bytes of each 128-bit half, then join them.
  const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                        -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                        -1, -1);
  const __m256i bytes = _mm256_shuffle_epi8(v, pick);
  const std::uint32_t lo = static_cast<std::uint32_t>(_mm256_extract_epi32(bytes, 0));
  const std::uint32_t hi = static_cast<std::uint32_t>(_mm256_extract_epi32(bytes, 4));
  const std::uint64_t both = lo | (std::uint64_t{hi} << 32);
  std::memcpy(p, &both, sizeof both);
}
#endif
#if XSIMD_WITH_AVX512F
template <class Arch>
inline void store_i32_as_u8(const batch<std::int32_t, Arch>& v, std::uint8_t* p,
                            xsimd::avx512f) noexcept {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(v));
}
#endif
#if XSIMD_WITH_NEON64
template <class Arch>
inline void store_i32_as_u8(const batch<std::int32_t, Arch>& v, std::uint8_t* p,
                            xsimd::neon64) noexcept {
  const uint16x4_t half = vmovn_u32(vreinterpretq_u32_s32(v));
  const uint8x8_t bytes = vmovn_u16(vcombine_u16(half, half));
  std::memcpy(p, &bytes, 4);
}
#endif

}  // namespace detail

/// Load `batch<int32_t, Arch>::size` bytes from `p` (unaligned), zero-extended to 32-bit lanes.
template <class Arch>
[[nodiscard]] inline batch<std::int32_t, Arch> load_u8_as_i32(const std::uint8_t* p) noexcept {
  return detail::load_u8_as_i32<Arch>(p, Arch{});
}

/// Store the low byte of every 32-bit lane of `v` to `p` (unaligned, `size` bytes).
template <class Arch>
inline void store_i32_as_u8(const batch<std::int32_t, Arch>& v, std::uint8_t* p) noexcept {
  detail::store_i32_as_u8<Arch>(v, p, Arch{});
}

}  // namespace qcodec::simd
