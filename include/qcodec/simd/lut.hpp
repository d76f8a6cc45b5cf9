#pragma once
// Decoding 4-bit codes through a 16-entry lookup table: non-uniform 4-bit formats (NF4,
// ggml's IQ4_NL, learned codebooks) store a code per value and a table per tensor or group.
//
// Code layout: 4-bit codes packed LSB first (see affine.hpp), so byte j holds code 2j in its low
// nibble and code 2j+1 in its high nibble; n codes take (n + 1) / 2 bytes and the high nibble of
// the last byte is ignored when n is odd.
//
// Exact definitions (every target returns these bits):
//
//   lut16_dequantize  y[i] = table16[q_i] * scale   (one float multiply, rounded once)
//   lut16_lookup_i8   out[i] = table16[q_i]
//
// How: the kernels multiply the 16 entries by `scale` once per call (the same product the
// oracle computes per element) and then only look up. AVX-512 holds the whole float table in one
// register (`vpermps` indexes 16 lanes); AVX2 looks up both 8-entry halves and blends on bit 3 of
// the code. The int8 lookup is a byte shuffle (`pshufb`, 16 entries per 128-bit lane) on x86 and
// `tbl` (vqtbl1q_s8) on AArch64: bytes are zero-extended to 16-bit lanes so that each lane's low
// and high byte receive its two nibbles, already in output order.

#include <qcodec/simd/affine.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace qcodec {
namespace ref {

/// y[i] = table16[q_i] * scale for the n 4-bit codes packed in in[0, (n + 1) / 2).
inline void lut16_dequantize(const std::uint8_t* in, std::size_t n, const float* table16,
                             float scale, float* y) noexcept {
  for (std::size_t i = 0; i < n; ++i) y[i] = table16[(in[i / 2] >> (i % 2 * 4)) & 15u] * scale;
}

/// out[i] = table16[q_i] for the n 4-bit codes packed in in[0, (n + 1) / 2).
inline void lut16_lookup_i8(const std::uint8_t* in, std::size_t n, const std::int8_t* table16,
                            std::int8_t* out) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = table16[(in[i / 2] >> (i % 2 * 4)) & 15u];
}

}  // namespace ref

// GCC 12 reports its own AVX-512 intrinsics (the `__Y = __Y` self-initialisation inside
// _mm512_undefined_*) as maybe-uninitialized once they are inlined at -O2/-O3 (GCC PR 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace simd {

/// y[0, n) = table16[q_i] * scale; see the header comment.
template <class Arch>
void lut16_dequantize(const std::uint8_t* in, std::size_t n, const float* table16, float scale,
                      float* y) noexcept;
/// out[0, n) = table16[q_i] for a 16-entry int8 table.
template <class Arch>
void lut16_lookup_i8(const std::uint8_t* in, std::size_t n, const std::int8_t* table16,
                     std::int8_t* out) noexcept;

/// The lookup-table entries of a kernel table (see kernel_table.hpp).
struct lut_kernels {
  void (*lut16_dequantize)(const std::uint8_t* in, std::size_t n, const float* table16,
                           float scale, float* y) noexcept;
  void (*lut16_lookup_i8)(const std::uint8_t* in, std::size_t n, const std::int8_t* table16,
                          std::int8_t* out) noexcept;
};

template <class Arch>
lut_kernels make_lut_kernels() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::lut16_dequantize, &ref::lut16_lookup_i8};
  } else {
    return {&lut16_dequantize<Arch>, &lut16_lookup_i8<Arch>};
  }
}

namespace detail::lut {

using packed::f32;
using packed::i32;

// The 16 scaled entries, in memory and as the batches that cover them.
template <class Arch>
struct scaled_table16 {
  static constexpr std::size_t W = f32<Arch>::size;
  static constexpr std::size_t parts = W >= 16 ? 1 : 16 / W;
  alignas(64) float values[16];
  f32<Arch> part[parts];

  scaled_table16(const float* table16, float scale) noexcept {
    for (std::size_t k = 0; k < 16; ++k) values[k] = table16[k] * scale;
    for (std::size_t j = 0; j < parts; ++j) part[j] = f32<Arch>::load_aligned(values + j * W);
  }
};

// values[idx & 15] per lane (x86 kernels pass indices with bits above the code set).
template <class Arch>
f32<Arch> lookup16(const i32<Arch>& idx, const scaled_table16<Arch>& t, xsimd::generic) noexcept {
  constexpr std::size_t W = f32<Arch>::size;
  alignas(64) std::int32_t l[W];
  alignas(64) float r[W];
  idx.store_aligned(l);
  for (std::size_t j = 0; j < W; ++j) r[j] = t.values[l[j] & 15];
  return f32<Arch>::load_aligned(r);
}
#if XSIMD_WITH_AVX2
template <class Arch>
f32<Arch> lookup16(const i32<Arch>& idx, const scaled_table16<Arch>& t, xsimd::avx2) noexcept {
  // vpermps uses bits 0..2; bit 3 of the code, moved to the sign bit, picks the half.
  const __m256 lo = _mm256_permutevar8x32_ps(t.part[0], idx);
  const __m256 hi = _mm256_permutevar8x32_ps(t.part[1], idx);
  return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}
#endif
#if XSIMD_WITH_AVX512BW
template <class Arch>
f32<Arch> lookup16(const i32<Arch>& idx, const scaled_table16<Arch>& t, xsimd::avx512bw) noexcept {
  return _mm512_permutexvar_ps(idx, t.part[0]);  // uses bits 0..3 of each index
}
#endif

// Runs chunk(src, dst) over whole chunks of InBytes packed bytes (2 * InBytes codes), then once
// more on a zero-padded copy of the remainder.
template <class Arch, std::size_t InBytes, class Chunk>
void lookup_i8_loop(const std::uint8_t* in, std::size_t n, std::int8_t* out, Chunk chunk) noexcept {
  constexpr std::size_t C = 2 * InBytes;
  std::size_t i = 0;
  for (; i + C <= n; i += C) chunk(in + i / 2, out + i);
  if (i < n) {
    std::uint8_t src[InBytes] = {};
    std::int8_t dst[C];
    std::memcpy(src, in + i / 2, (n - i + 1) / 2);
    chunk(src, dst);
    std::memcpy(out + i, dst, n - i);
  }
}

template <class Arch>
void lookup_i8(const std::uint8_t* in, std::size_t n, const std::int8_t* table16,
               std::int8_t* out, xsimd::generic) noexcept {
  lookup_i8_loop<Arch, 16>(in, n, out, [table16](const std::uint8_t* src, std::int8_t* dst) {
    for (std::size_t j = 0; j < 16; ++j) {
      dst[2 * j] = table16[src[j] & 15u];
      dst[2 * j + 1] = table16[src[j] >> 4];
    }
  });
}
#if XSIMD_WITH_AVX2
template <class Arch>
void lookup_i8(const std::uint8_t* in, std::size_t n, const std::int8_t* table16,
               std::int8_t* out, xsimd::avx2) noexcept {
  const __m256i t =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table16)));
  lookup_i8_loop<Arch, 16>(in, n, out, [t](const std::uint8_t* src, std::int8_t* dst) {
    // 16-bit lane k = byte k; (b | b << 4) & 0x0F0F puts its low nibble in the lane's low byte
    // and its high nibble in the high byte: codes 2k, 2k+1 in output order.
    const __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
    const __m256i idx = _mm256_and_si256(_mm256_or_si256(b, _mm256_slli_epi16(b, 4)),
                                         _mm256_set1_epi16(0x0F0F));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_shuffle_epi8(t, idx));
  });
}
#endif
#if XSIMD_WITH_AVX512BW
template <class Arch>
void lookup_i8(const std::uint8_t* in, std::size_t n, const std::int8_t* table16,
               std::int8_t* out, xsimd::avx512bw) noexcept {
  const __m512i t =
      _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table16)));
  lookup_i8_loop<Arch, 32>(in, n, out, [t](const std::uint8_t* src, std::int8_t* dst) {
    const __m512i b = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
    const __m512i idx = _mm512_and_si512(_mm512_or_si512(b, _mm512_slli_epi16(b, 4)),
                                         _mm512_set1_epi16(0x0F0F));
    _mm512_storeu_si512(dst, _mm512_shuffle_epi8(t, idx));
  });
}
#endif
#if XSIMD_WITH_NEON64
template <class Arch>
void lookup_i8(const std::uint8_t* in, std::size_t n, const std::int8_t* table16,
               std::int8_t* out, xsimd::neon64) noexcept {
  const int8x16_t t = vld1q_s8(table16);
  lookup_i8_loop<Arch, 16>(in, n, out, [t](const std::uint8_t* src, std::int8_t* dst) {
    const uint8x16_t b = vld1q_u8(src);
    const int8x16_t lo = vqtbl1q_s8(t, vandq_u8(b, vdupq_n_u8(15)));
    const int8x16_t hi = vqtbl1q_s8(t, vshrq_n_u8(b, 4));
    vst1q_s8(dst, vzip1q_s8(lo, hi));
    vst1q_s8(dst + 16, vzip2q_s8(lo, hi));
  });
}
#endif

}  // namespace detail::lut

template <class Arch>
void lut16_dequantize(const std::uint8_t* in, std::size_t n, const float* table16, float scale,
                      float* y) noexcept {
  using F = detail::lut::f32<Arch>;
  namespace packed = detail::packed;
  constexpr std::size_t W = F::size;
  const detail::lut::scaled_table16<Arch> t(table16, scale);
  const auto lookup = [&t](const detail::lut::i32<Arch>& idx) {
    return detail::lut::lookup16<Arch>(idx, t, Arch{});
  };
  const std::size_t full = packed::full_batches<4, Arch>(n, Arch{});
  std::size_t i = 0, b = 0;
  for (; b + 2 <= full; b += 2, i += 2 * W) {
    const F y0 = lookup(packed::unpack_batch<4, Arch, false>(in, i, Arch{}));
    const F y1 = lookup(packed::unpack_batch<4, Arch, false>(in, i + W, Arch{}));
    y0.store_unaligned(y + i);
    y1.store_unaligned(y + i + W);
  }
  for (; b < full; ++b, i += W)
    lookup(packed::unpack_batch<4, Arch, false>(in, i, Arch{})).store_unaligned(y + i);
  for (; i < n; i += W) {
    const std::size_t k = n - i < W ? n - i : W;
    packed::store_first<Arch>(lookup(packed::unpack_tail<4, Arch, false>(in, i, n, Arch{})), y + i,
                              k, Arch{});
  }
}

template <class Arch>
void lut16_lookup_i8(const std::uint8_t* in, std::size_t n, const std::int8_t* table16,
                     std::int8_t* out) noexcept {
  detail::lut::lookup_i8<Arch>(in, n, table16, out, Arch{});
}

}  // namespace simd
}  // namespace qcodec

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
