#pragma once
// Conversions between float and the two 16-bit float storage formats, one value at a time
// (the portable oracles) and in bulk (the kernels):
//
//   half      IEEE 754 binary16: sign (bit 15), exponent (bits 14..10, bias 15), fraction
//             (bits 9..0). Finite range +-65504, subnormals down to 2^-24.
//   bfloat16  the top 16 bits of an IEEE 754 binary32: sign, 8-bit exponent (bias 127), 7-bit
//             fraction. Same range as float, 8 significant bits.
//
// Exact definition (every target returns these bits; parity tests compare with memcmp):
//
//   float -> half      round to nearest, ties to even, independent of MXCSR/FPCR rounding mode.
//                      |x| >= 65520 (the midpoint between 65504 and 2^16) gives +-inf; results
//                      below 2^-14 round correctly into the subnormals; |x| <= 2^-25 gives +-0.
//                      NaN -> sign | 0x7E00 | (fraction >> 13): quiet bit set, float fraction
//                      bits 21..13 kept as the payload. This is exactly what x86 F16C
//                      `vcvtps2ph` produces (and AArch64 FCVT with FPCR.DN = 0, per the Arm ARM's
//                      FPConvertNaN), so the hardware paths agree bit for bit.
//   half -> float      exact, subnormals included. NaN -> sign | 0x7FC00000 | (fraction << 13):
//                      quieted, payload kept, as `vcvtph2ps` does.
//   float -> bfloat16  round to nearest, ties to even; overflow gives +-inf; float subnormals
//                      round into bfloat16 subnormals (no flush to zero, unlike AVX512_BF16's
//                      `vcvtneps2bf16`, which gives the same bits for every other input). NaN ->
//                      (bits >> 16) | 0x0040: quiet bit set, sign and float fraction bits 21..16
//                      kept (a NaN whose payload lies only in the low 16 bits stays NaN instead of
//                      truncating to infinity).
//   bfloat16 -> float  exact: bits << 16 (NaNs keep their bits, signaling ones included).
//
// Results do not depend on the floating-point environment on x86: the conversion instructions
// take their rounding from the immediate, MXCSR.DAZ/FTZ change none of their results (every
// float subnormal rounds to +-0 in half anyway), and bfloat16 is integer arithmetic. NEON
// follows FPCR, whose default is round to nearest even.
//
// Layout of every bulk kernel: x and y are contiguous arrays of n elements, unaligned, not
// overlapping. Tails (n not a multiple of the vector width) go through a zero-padded stack
// buffer and the same vector instructions as the body, so no element is converted differently
// and nothing outside x[0, n) / y[0, n) is read or written.

#include <qcodec/simd/arch.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace qcodec {
namespace simd::detail::cvt {

// The portable single-value algorithms, in integer arithmetic only (constexpr, no FP
// environment). Templates on Arch so that kernels may call them (kernel_table.hpp rules);
// the `ref::` functions below are their `scalar` instantiation.

template <class Arch>
constexpr std::uint16_t portable_f32_to_f16(float f) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const std::uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u)  // NaN: quiet it, keep the top 10 fraction bits
    return static_cast<std::uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x03FFu));
  if (a >= 0x477FF000u)  // >= 65520 (inf included): rounds past 65504
    return static_cast<std::uint16_t>(sign | 0x7C00u);
  if (a >= 0x38800000u) {  // >= 2^-14: normal half. Rebias the exponent (127 -> 15) in place
    // and round at bit 13; a carry out of the fraction correctly bumps the exponent.
    std::uint32_t v = a - 0x38000000u;
    v += 0x0FFFu + ((v >> 13) & 1u);
    return static_cast<std::uint16_t>(sign | (v >> 13));
  }
  if (a < 0x33000000u)  // < 2^-25 (half of the smallest subnormal): +-0; 2^-25 itself is a
    return static_cast<std::uint16_t>(sign);  // tie that the code below rounds to even (0)
  // Subnormal half: the result counts units of 2^-24. The float is m * 2^(e - 150) with the
  // implicit bit in m, i.e. m >> (126 - e) units; 126 - e lies in 14..24 here.
  const std::uint32_t e = a >> 23;
  const std::uint32_t m = (a & 0x007FFFFFu) | 0x00800000u;
  const std::uint32_t shift = 126u - e;
  std::uint32_t q = m >> shift;
  const std::uint32_t rem = m & ((1u << shift) - 1u);
  const std::uint32_t halfway = 1u << (shift - 1u);
  if (rem > halfway || (rem == halfway && (q & 1u) != 0)) ++q;  // may carry into 2^-14: fine
  return static_cast<std::uint16_t>(sign | q);
}

template <class Arch>
constexpr float portable_f16_to_f32(std::uint16_t h) noexcept {
  const std::uint32_t sign = (std::uint32_t{h} & 0x8000u) << 16;
  const std::uint32_t e = (std::uint32_t{h} >> 10) & 0x1Fu;
  const std::uint32_t m = std::uint32_t{h} & 0x03FFu;
  std::uint32_t u;
  if (e == 0x1Fu) {  // inf, or NaN (quieted like vcvtph2ps)
    u = sign | 0x7F800000u | (m << 13) | (m != 0 ? 0x00400000u : 0u);
  } else if (e != 0) {
    u = sign | ((e + 112u) << 23) | (m << 13);
  } else if (m == 0) {
    u = sign;
  } else {  // subnormal m * 2^-24: normalise so that the top set bit p of m becomes implicit
    const auto p = static_cast<std::uint32_t>(31 - std::countl_zero(m));
    u = sign | ((p + 103u) << 23) | ((m << (23u - p)) & 0x007FFFFFu);
  }
  return std::bit_cast<float>(u);
}

template <class Arch>
constexpr std::uint16_t portable_f32_to_bf16(float f) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);
  // Adding 0x7FFF plus the result's lowest bit rounds to nearest even; a carry propagates
  // into the exponent (and to inf past the largest finite value).
  return static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

template <class Arch>
constexpr float portable_bf16_to_f32(std::uint16_t b) noexcept {
  return std::bit_cast<float>(std::uint32_t{b} << 16);
}

}  // namespace simd::detail::cvt

namespace ref {

/// float -> IEEE binary16 bits, round to nearest even (see the file comment for NaN and
/// overflow). Portable C++; never uses conversion instructions, even when compiled with F16C.
[[nodiscard]] constexpr std::uint16_t float_to_half(float f) noexcept {
  return simd::detail::cvt::portable_f32_to_f16<simd::scalar>(f);
}

/// IEEE binary16 bits -> float, exact (NaNs quieted, payload kept).
[[nodiscard]] constexpr float half_to_float(std::uint16_t h) noexcept {
  return simd::detail::cvt::portable_f16_to_f32<simd::scalar>(h);
}

/// float -> bfloat16 bits, round to nearest even (NaN -> quiet NaN, sign and top payload kept).
[[nodiscard]] constexpr std::uint16_t float_to_bfloat16(float f) noexcept {
  return simd::detail::cvt::portable_f32_to_bf16<simd::scalar>(f);
}

/// bfloat16 bits -> float, exact.
[[nodiscard]] constexpr float bfloat16_to_float(std::uint16_t b) noexcept {
  return simd::detail::cvt::portable_bf16_to_f32<simd::scalar>(b);
}

/// y[i] = float_to_half(x[i]) for i < n.
inline void f32_to_f16(const float* x, std::size_t n, std::uint16_t* y) noexcept {
  for (std::size_t i = 0; i < n; ++i) y[i] = float_to_half(x[i]);
}

/// y[i] = half_to_float(x[i]) for i < n.
inline void f16_to_f32(const std::uint16_t* x, std::size_t n, float* y) noexcept {
  for (std::size_t i = 0; i < n; ++i) y[i] = half_to_float(x[i]);
}

/// y[i] = float_to_bfloat16(x[i]) for i < n.
inline void f32_to_bf16(const float* x, std::size_t n, std::uint16_t* y) noexcept {
  for (std::size_t i = 0; i < n; ++i) y[i] = float_to_bfloat16(x[i]);
}

/// y[i] = bfloat16_to_float(x[i]) for i < n.
inline void bf16_to_f32(const std::uint16_t* x, std::size_t n, float* y) noexcept {
  for (std::size_t i = 0; i < n; ++i) y[i] = bfloat16_to_float(x[i]);
}

}  // namespace ref

namespace simd {

/// float[n] -> binary16[n], round to nearest even. Same bits as ref::f32_to_f16.
template <class Arch>
void f32_to_f16(const float* x, std::size_t n, std::uint16_t* y) noexcept;
/// binary16[n] -> float[n], exact. Same bits as ref::f16_to_f32.
template <class Arch>
void f16_to_f32(const std::uint16_t* x, std::size_t n, float* y) noexcept;
/// float[n] -> bfloat16[n], round to nearest even. Same bits as ref::f32_to_bf16.
template <class Arch>
void f32_to_bf16(const float* x, std::size_t n, std::uint16_t* y) noexcept;
/// bfloat16[n] -> float[n], exact. Same bits as ref::bf16_to_f32.
template <class Arch>
void bf16_to_f32(const std::uint16_t* x, std::size_t n, float* y) noexcept;

/// The conversion entries of a kernel table (see kernel_table.hpp).
struct convert_kernels {
  void (*f32_to_f16)(const float* x, std::size_t n, std::uint16_t* y) noexcept;
  void (*f16_to_f32)(const std::uint16_t* x, std::size_t n, float* y) noexcept;
  void (*f32_to_bf16)(const float* x, std::size_t n, std::uint16_t* y) noexcept;
  void (*bf16_to_f32)(const std::uint16_t* x, std::size_t n, float* y) noexcept;
};

template <class Arch>
convert_kernels make_convert_kernels() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::f32_to_f16, &ref::f16_to_f32, &ref::f32_to_bf16, &ref::bf16_to_f32};
  } else {
    return {&f32_to_f16<Arch>, &f16_to_f32<Arch>, &f32_to_bf16<Arch>, &bf16_to_f32<Arch>};
  }
}

// GCC 12.2 reports its own AVX-512 intrinsics (the `_mm512_undefined_*()` pass-through operand
// of their unmasked forms) as maybe-uninitialized once they are inlined here (GCC bug
// 105593): silence exactly that for the kernels below.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace detail::cvt {

// One vector of binary16 <-> float: `batch<float, Arch>::size` elements, unaligned.
// Hardware conversion where the ISA has it (the avx2 target always includes F16C), the
// portable algorithm lane by lane otherwise.

template <class Arch>
inline void f32_to_f16_block(const float* x, std::uint16_t* y, xsimd::generic) noexcept {
  for (std::size_t i = 0; i < batch<float, Arch>::size; ++i) y[i] = portable_f32_to_f16<Arch>(x[i]);
}
template <class Arch>
inline void f16_to_f32_block(const std::uint16_t* x, float* y, xsimd::generic) noexcept {
  for (std::size_t i = 0; i < batch<float, Arch>::size; ++i) y[i] = portable_f16_to_f32<Arch>(x[i]);
}
// The same as a register (kernels that consume the floats at once: no store and reload).
template <class Arch>
inline batch<float, Arch> f16_to_f32_batch(const std::uint16_t* x, xsimd::generic) noexcept {
  std::uint16_t h[batch<float, Arch>::size];  // x need not be aligned
  std::memcpy(h, x, sizeof h);
  alignas(64) float y[batch<float, Arch>::size];
  f16_to_f32_block<Arch>(h, y, Arch{});
  return batch<float, Arch>::load_aligned(y);
}
#if XSIMD_WITH_AVX2 && defined(__F16C__)
// The immediate selects round-to-nearest-even regardless of MXCSR.RC.
template <class Arch>
inline void f32_to_f16_block(const float* x, std::uint16_t* y, xsimd::avx2) noexcept {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(y),
                   _mm256_cvtps_ph(_mm256_loadu_ps(x), _MM_FROUND_TO_NEAREST_INT));
}
template <class Arch>
inline batch<float, Arch> f16_to_f32_batch(const std::uint16_t* x, xsimd::avx2) noexcept {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
}
template <class Arch>
inline void f16_to_f32_block(const std::uint16_t* x, float* y, xsimd::avx2) noexcept {
  _mm256_storeu_ps(y, f16_to_f32_batch<Arch>(x, Arch{}));
}
#endif
#if XSIMD_WITH_AVX512F
template <class Arch>
inline void f32_to_f16_block(const float* x, std::uint16_t* y, xsimd::avx512f) noexcept {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(y),
                      _mm512_cvtps_ph(_mm512_loadu_ps(x), _MM_FROUND_TO_NEAREST_INT));
}
template <class Arch>
inline batch<float, Arch> f16_to_f32_batch(const std::uint16_t* x, xsimd::avx512f) noexcept {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
}
template <class Arch>
inline void f16_to_f32_block(const std::uint16_t* x, float* y, xsimd::avx512f) noexcept {
  _mm512_storeu_ps(y, f16_to_f32_batch<Arch>(x, Arch{}));
}
#endif
#if XSIMD_WITH_NEON64
// FCVTN / FCVTL round with FPCR.RMode (round to nearest even unless a program changes it).
template <class Arch>
inline void f32_to_f16_block(const float* x, std::uint16_t* y, xsimd::neon64) noexcept {
  vst1_u16(y, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x))));
}
template <class Arch>
inline void f16_to_f32_block(const std::uint16_t* x, float* y, xsimd::neon64) noexcept {
  vst1q_f32(y, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x))));
}
#endif

// batch<uint32_t, Arch>::size 16-bit values <-> 32-bit lanes (zero-extended; narrowing keeps
// the low half of lanes that hold 0..0xFFFF).

template <class Arch>
inline batch<std::uint32_t, Arch> load_u16_as_u32(const std::uint16_t* p, xsimd::generic) noexcept {
  alignas(64) std::uint32_t lanes[batch<std::uint32_t, Arch>::size];
  for (std::size_t i = 0; i < batch<std::uint32_t, Arch>::size; ++i) lanes[i] = p[i];
  return batch<std::uint32_t, Arch>::load_aligned(lanes);
}
template <class Arch>
inline void store_u32_as_u16(const batch<std::uint32_t, Arch>& v, std::uint16_t* p,
                             xsimd::generic) noexcept {
  alignas(64) std::uint32_t lanes[batch<std::uint32_t, Arch>::size];
  v.store_aligned(lanes);
  for (std::size_t i = 0; i < batch<std::uint32_t, Arch>::size; ++i)
    p[i] = static_cast<std::uint16_t>(lanes[i]);
}
#if XSIMD_WITH_AVX2
template <class Arch>
inline batch<std::uint32_t, Arch> load_u16_as_u32(const std::uint16_t* p, xsimd::avx2) noexcept {
  return _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
template <class Arch>
inline void store_u32_as_u16(const batch<std::uint32_t, Arch>& v, std::uint16_t* p,
                             xsimd::avx2) noexcept {
  // Lanes are <= 0xFFFF, so the unsigned saturation of packus never triggers.
  const __m256i w = v;
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                   _mm_packus_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
}
#endif
#if XSIMD_WITH_AVX512F
template <class Arch>
inline batch<std::uint32_t, Arch> load_u16_as_u32(const std::uint16_t* p, xsimd::avx512f) noexcept {
  return _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
template <class Arch>
inline void store_u32_as_u16(const batch<std::uint32_t, Arch>& v, std::uint16_t* p,
                             xsimd::avx512f) noexcept {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(v));
}
#endif
#if XSIMD_WITH_NEON64
template <class Arch>
inline batch<std::uint32_t, Arch> load_u16_as_u32(const std::uint16_t* p, xsimd::neon64) noexcept {
  return vmovl_u16(vld1_u16(p));
}
template <class Arch>
inline void store_u32_as_u16(const batch<std::uint32_t, Arch>& v, std::uint16_t* p,
                             xsimd::neon64) noexcept {
  vst1_u16(p, vmovn_u32(v));
}
#endif

// One vector of float <-> bfloat16 in xsimd integer arithmetic (the same steps as
// portable_f32_to_bf16, with the NaN case selected per lane).
template <class Arch>
inline void f32_to_bf16_block(const float* x, std::uint16_t* y) noexcept {
  using F = batch<float, Arch>;
  using U = batch<std::uint32_t, Arch>;
  const F v = F::load_unaligned(x);
  const U u = xsimd::bitwise_cast<U>(v);
  const U top = u >> 16;
  const U rounded = (u + U(0x7FFFu) + (top & U(1u))) >> 16;
  const U quiet = top | U(0x0040u);
  const F r = xsimd::select(xsimd::isnan(v), xsimd::bitwise_cast<F>(quiet),
                            xsimd::bitwise_cast<F>(rounded));
  store_u32_as_u16<Arch>(xsimd::bitwise_cast<U>(r), y, Arch{});
}
template <class Arch>
inline void bf16_to_f32_block(const std::uint16_t* x, float* y) noexcept {
  using F = batch<float, Arch>;
  xsimd::bitwise_cast<F>(load_u16_as_u32<Arch>(x, Arch{}) << 16).store_unaligned(y);
}

// Applies `block` (which converts exactly W elements) to [0, n): four vectors per step while
// possible, then single vectors, then the n % W tail through zero-padded stack buffers, so
// the tail runs the same instructions as the body and touches nothing beyond element n - 1.
template <class Arch, std::size_t W, class In, class Out, class Block>
inline void for_each_block(const In* x, std::size_t n, Out* y, Block block) noexcept {
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    block(x + i, y + i);
    block(x + i + W, y + i + W);
    block(x + i + 2 * W, y + i + 2 * W);
    block(x + i + 3 * W, y + i + 3 * W);
  }
  for (; i + W <= n; i += W) block(x + i, y + i);
  if (i < n) {
    alignas(64) In in[W] = {};
    alignas(64) Out out[W];
    std::memcpy(in, x + i, (n - i) * sizeof(In));
    block(in, out);
    std::memcpy(y + i, out, (n - i) * sizeof(Out));
  }
}

}  // namespace detail::cvt

// Kernels are defined out of class and not `inline` (see reductions.hpp).

template <class Arch>
void f32_to_f16(const float* x, std::size_t n, std::uint16_t* y) noexcept {
  detail::cvt::for_each_block<Arch, batch<float, Arch>::size>(
      x, n, y, [](const float* in, std::uint16_t* out) {
        detail::cvt::f32_to_f16_block<Arch>(in, out, Arch{});
      });
}

template <class Arch>
void f16_to_f32(const std::uint16_t* x, std::size_t n, float* y) noexcept {
  detail::cvt::for_each_block<Arch, batch<float, Arch>::size>(
      x, n, y, [](const std::uint16_t* in, float* out) {
        detail::cvt::f16_to_f32_block<Arch>(in, out, Arch{});
      });
}

template <class Arch>
void f32_to_bf16(const float* x, std::size_t n, std::uint16_t* y) noexcept {
  detail::cvt::for_each_block<Arch, batch<float, Arch>::size>(
      x, n, y,
      [](const float* in, std::uint16_t* out) { detail::cvt::f32_to_bf16_block<Arch>(in, out); });
}

template <class Arch>
void bf16_to_f32(const std::uint16_t* x, std::size_t n, float* y) noexcept {
  detail::cvt::for_each_block<Arch, batch<float, Arch>::size>(
      x, n, y,
      [](const std::uint16_t* in, float* out) { detail::cvt::bf16_to_f32_block<Arch>(in, out); });
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace simd
}  // namespace qcodec
