#pragma once
// Bit packing: codes of 1..8 bits stored densely, and ggml's split-halves nibble order.
//
// Sequential layout (pack_bits / unpack_bits), LSB-first: code i occupies stream bits
// [i*bits, (i+1)*bits), where stream bit k is bit (k % 8) of byte k / 8. n codes take
// packed_bytes(n, bits) = ceil(n*bits / 8) bytes; the unused high bits of the last byte are zero.
// Eight codes always fill exactly `bits` bytes, so every group of 8 codes is byte aligned.
//
// Split-halves nibble layout (pack_nibbles_split / unpack_nibbles_split), ggml's order: each
// group of 2*half codes c[0..2*half) becomes half bytes with byte j = c[j] | c[j + half] << 4.
// Q4_0 / Q4_1 / IQ4_NL blocks use half = 16 (32 values -> 16 bytes), Q4_K / Q5_K use half = 32.
//
// How the SIMD kernels work (Highway's lesson: specialise per width and keep shifts inside
// lanes). Each call switches on `bits` once and runs a loop written for that width.
//   * Packing merges neighbours pairwise, doubling the lane width each time: bytes c0, c1 become
//     the 16-bit value c0 | c1 << b (pmaddubsw), two of those the 32-bit value of 4 codes
//     (pmaddwd), and, for odd b, two of those the 64-bit value of 8 codes (= b bytes). A
//     byte shuffle inside each 128-bit lane then keeps the 2b meaningful bytes per lane, and the
//     lanes are joined (vpermw on AVX-512BW, two overlapping 16-byte stores on AVX2).
//   * Unpacking runs the same steps backwards: bring each lane its 2b bytes, give every 32-bit
//     lane the 4 bytes that hold its four codes (shifted right by 4 where the codes start
//     mid-byte), then split 32 -> 2 x 16 -> 2 x 8 bits with one shift and a select per step.
//   * The hot widths skip the general scheme: 1 bit is a movemask / mask register, 2 and 4 bits
//     narrow with saturating packs (no shuffles per byte) and widen with vpmovzx, 8 bits is a copy.
//   * Full blocks run straight from the caller's buffers. On AVX2 a block of width 3, 5, 6 or 7
//     reads (unpack) or writes (pack) up to 10 bytes past its own range; such blocks near the
//     end, and the final partial block, go through a small stack buffer, so no kernel ever
//     touches a byte outside [in, in + packed_bytes) or [out, out + packed_bytes).
//
// Split nibbles: lo | hi << 4 on whole vectors when half is a multiple of the vector width, and
// for half = 16 (and 32 on AVX-512) a 128-bit-lane shuffle first separates the low and high
// halves of the groups held by two vectors. Other halves use a byte loop.
//
// The few primitives xsimd 8.1 lacks (byte shuffles, saturating narrows, movemask) have AVX2 and
// AVX-512BW versions below and a portable per-lane fallback that other targets (NEON) use: correct
// there, but not tuned.

#include <qcodec/simd/arch.hpp>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

// GCC 12 reports the placeholder operand of its own unmasked AVX-512 intrinsics
// (`__m512i __Y = __Y;` in _mm512_undefined_*) as (maybe-)uninitialized once they are inlined
// into loops like these, xsimd's shifts included (seen by Highway too: google/highway#710).
// The operand is never read (the mask is all ones), so the warning is silenced for this header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace qcodec {

/// Bytes that n codes of `bits` bits (1..8) occupy when packed sequentially.
constexpr std::size_t packed_bytes(std::size_t n, unsigned bits) noexcept {
  return (n * bits + 7) / 8;
}

namespace ref {

/// Packs n codes of `bits` bits (1..8) into packed_bytes(n, bits) bytes at `out`, sequential
/// LSB-first (see the top of this header). Only the low `bits` bits of each code are used; the
/// unused high bits of the last byte are zero. `codes` and `out` must not overlap.
inline void pack_bits(const std::uint8_t* codes, std::size_t n, unsigned bits,
                      std::uint8_t* out) noexcept {
  const unsigned mask = (1u << bits) - 1u;
  unsigned acc = 0;   // pending stream bits, oldest in bit 0
  unsigned fill = 0;  // how many bits `acc` holds; < 8 between codes
  for (std::size_t i = 0; i < n; ++i) {
    acc |= (codes[i] & mask) << fill;
    fill += bits;
    while (fill >= 8) {
      *out++ = static_cast<std::uint8_t>(acc);
      acc >>= 8;
      fill -= 8;
    }
  }
  if (fill > 0) *out = static_cast<std::uint8_t>(acc);
}

/// Inverse of pack_bits: reads exactly packed_bytes(n, bits) bytes at `in` and writes n codes,
/// each < 2^bits (the unused high bits of the last byte are ignored).
inline void unpack_bits(const std::uint8_t* in, std::size_t n, unsigned bits,
                        std::uint8_t* codes) noexcept {
  const unsigned mask = (1u << bits) - 1u;
  unsigned acc = 0;
  unsigned fill = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (fill < bits) {  // read a byte only when the next code needs it
      acc |= unsigned{*in++} << fill;
      fill += 8;
    }
    codes[i] = static_cast<std::uint8_t>(acc & mask);
    acc >>= bits;
    fill -= bits;
  }
}

/// ggml's split-halves nibble order. n is a multiple of 2*half, half >= 1. For every group of
/// 2*half codes c: out[j] = c[j] | c[j + half] << 4 for j < half; writes n / 2 bytes. Only the
/// low 4 bits of each code are used.
inline void pack_nibbles_split(const std::uint8_t* codes, std::size_t n, std::size_t half,
                               std::uint8_t* out) noexcept {
  for (std::size_t g = 0; g < n; g += 2 * half, codes += 2 * half, out += half) {
    for (std::size_t j = 0; j < half; ++j)
      out[j] = static_cast<std::uint8_t>((codes[j] & 0x0Fu) | (unsigned{codes[j + half]} << 4));
  }
}

/// Inverse of pack_nibbles_split: reads n / 2 bytes, writes n codes (each < 16).
inline void unpack_nibbles_split(const std::uint8_t* in, std::size_t n, std::size_t half,
                                 std::uint8_t* codes) noexcept {
  for (std::size_t g = 0; g < n; g += 2 * half, codes += 2 * half, in += half) {
    for (std::size_t j = 0; j < half; ++j) {
      codes[j] = static_cast<std::uint8_t>(in[j] & 0x0Fu);
      codes[j + half] = static_cast<std::uint8_t>(in[j] >> 4);
    }
  }
}

}  // namespace ref

namespace simd {

template <class Arch>
void pack_bits(const std::uint8_t* codes, std::size_t n, unsigned bits, std::uint8_t* out) noexcept;
template <class Arch>
void unpack_bits(const std::uint8_t* in, std::size_t n, unsigned bits,
                 std::uint8_t* codes) noexcept;
template <class Arch>
void pack_nibbles_split(const std::uint8_t* codes, std::size_t n, std::size_t half,
                        std::uint8_t* out) noexcept;
template <class Arch>
void unpack_nibbles_split(const std::uint8_t* in, std::size_t n, std::size_t half,
                          std::uint8_t* codes) noexcept;

/// The bit packing entries of a kernel table (see kernel_table.hpp); same contracts as the
/// `qcodec::ref` functions of the same names.
struct packing_kernels {
  void (*pack_bits)(const std::uint8_t* codes, std::size_t n, unsigned bits,
                    std::uint8_t* out) noexcept;
  void (*unpack_bits)(const std::uint8_t* in, std::size_t n, unsigned bits,
                      std::uint8_t* codes) noexcept;
  void (*pack_nibbles_split)(const std::uint8_t* codes, std::size_t n, std::size_t half,
                             std::uint8_t* out) noexcept;
  void (*unpack_nibbles_split)(const std::uint8_t* in, std::size_t n, std::size_t half,
                               std::uint8_t* codes) noexcept;
};

template <class Arch>
packing_kernels make_packing_kernels() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::pack_bits, &ref::unpack_bits, &ref::pack_nibbles_split,
            &ref::unpack_nibbles_split};
  } else {
    return {&pack_bits<Arch>, &unpack_bits<Arch>, &pack_nibbles_split<Arch>,
            &unpack_nibbles_split<Arch>};
  }
}

namespace detail::packing {

// Multi-byte values are moved with memcpy, which assumes the stream's byte order.
static_assert(std::endian::native == std::endian::little, "bit packing assumes little endian");

template <class Arch>
using u8v = batch<std::uint8_t, Arch>;
template <class Arch>
using u16v = batch<std::uint16_t, Arch>;
template <class Arch>
using u32v = batch<std::uint32_t, Arch>;
template <class Arch>
using u64v = batch<std::uint64_t, Arch>;

template <unsigned B>
using width = std::integral_constant<unsigned, B>;

// ---- constant tables (data only; their pattern repeats in every 128-bit lane) ----------------

// Pack, byte shuffle: after the merge steps each 128-bit lane holds two 64-bit groups of b bytes
// (odd b) or four 32-bit values of b/2 bytes (even b); gather them into the lane's first 2b bytes.
template <unsigned B>
inline constexpr std::array<std::uint8_t, 64> pack_gather = [] {
  std::array<std::uint8_t, 64> t{};
  for (unsigned i = 0; i < 64; ++i) {
    const unsigned k = i % 16;
    unsigned src = 0x80;  // pshufb: zero
    if (k < 2 * B) src = B % 2 ? 8 * (k / B) + k % B : 4 * (k / (B / 2)) + k % (B / 2);
    t[i] = static_cast<std::uint8_t>(src);
  }
  return t;
}();

// Unpack, byte shuffle: 32-bit lane d of a 128-bit lane holds codes 4d..4d+3 of the lane, which
// start at stream bit 4*b*d: take the 4 bytes from byte (b*d)/2 (a 4-bit offset remains for odd
// b and odd d; the extra high bits are masked later).
template <unsigned B>
inline constexpr std::array<std::uint8_t, 64> unpack_gather = [] {
  std::array<std::uint8_t, 64> t{};
  for (unsigned i = 0; i < 64; ++i) {
    const unsigned k = i % 16;
    t[i] = static_cast<std::uint8_t>((B * (k / 4)) / 2 + k % 4);
  }
  return t;
}();

// ---- per-ISA primitives xsimd 8.1 lacks (generic fallbacks first) ---------------------------

// Bit i of the result is bit 0 of byte lane i.
template <class Arch>
std::uint64_t bit0_mask(const u8v<Arch>& x, xsimd::generic) noexcept {
  alignas(64) std::uint8_t lanes[u8v<Arch>::size];
  x.store_aligned(lanes);
  std::uint64_t m = 0;
  for (std::size_t i = 0; i < u8v<Arch>::size; ++i) m |= std::uint64_t{lanes[i] & 1u} << i;
  return m;
}

// Byte lane i = bit i of the little-endian bit string at p (u8v::size / 8 bytes).
template <class Arch>
u8v<Arch> expand_bits(const std::uint8_t* p, xsimd::generic) noexcept {
  alignas(64) std::uint8_t lanes[u8v<Arch>::size];
  for (std::size_t i = 0; i < u8v<Arch>::size; ++i)
    lanes[i] = static_cast<std::uint8_t>((p[i / 8] >> (i % 8)) & 1u);
  return u8v<Arch>::load_aligned(lanes);
}

// 16-bit lane j = byte 2j + (byte 2j+1 << S). Bytes are < 2^S and < 128.
template <unsigned S, class Arch>
u16v<Arch> merge_pairs_u8(const u8v<Arch>& x, xsimd::generic) noexcept {
  const u16v<Arch> w = xsimd::bitwise_cast<u16v<Arch>>(x);
  return (w & u16v<Arch>(std::uint16_t{0x00FF})) | ((w >> 8) << S);
}

// 32-bit lane j = 16-bit lane 2j + (16-bit lane 2j+1 << S). Values are < 2^S and S <= 14.
template <unsigned S, class Arch>
u32v<Arch> merge_pairs_u16(const u16v<Arch>& x, xsimd::generic) noexcept {
  const u32v<Arch> w = xsimd::bitwise_cast<u32v<Arch>>(x);
  return (w & u32v<Arch>(0xFFFFu)) | ((w >> 16) << S);
}

// Lanes of a then b (all <= 255) as bytes, in order.
template <class Arch>
u8v<Arch> narrow_u16x2(const u16v<Arch>& a, const u16v<Arch>& b, xsimd::generic) noexcept {
  constexpr std::size_t W = u16v<Arch>::size;
  alignas(64) std::uint16_t in[2 * W];
  alignas(64) std::uint8_t out[2 * W];
  a.store_aligned(in);
  b.store_aligned(in + W);
  for (std::size_t i = 0; i < 2 * W; ++i) out[i] = static_cast<std::uint8_t>(in[i]);
  return u8v<Arch>::load_aligned(out);
}

// Lanes of a, b, c, d (all <= 255) as bytes, in order.
template <class Arch>
u8v<Arch> narrow_u32x4(const u32v<Arch>& a, const u32v<Arch>& b, const u32v<Arch>& c,
                       const u32v<Arch>& d, xsimd::generic) noexcept {
  constexpr std::size_t W = u32v<Arch>::size;
  alignas(64) std::uint32_t in[4 * W];
  alignas(64) std::uint8_t out[4 * W];
  a.store_aligned(in);
  b.store_aligned(in + W);
  c.store_aligned(in + 2 * W);
  d.store_aligned(in + 3 * W);
  for (std::size_t i = 0; i < 4 * W; ++i) out[i] = static_cast<std::uint8_t>(in[i]);
  return u8v<Arch>::load_aligned(out);
}

// pshufb: within each 128-bit lane, result byte i = x[idx[i] & 15], or 0 if idx[i] & 0x80.
template <class Arch>
u8v<Arch> shuffle_in_lanes(const u8v<Arch>& x, const u8v<Arch>& idx, xsimd::generic) noexcept {
  static_assert(u8v<Arch>::size % 16 == 0, "batches are made of 128-bit lanes");
  alignas(64) std::uint8_t v[u8v<Arch>::size], k[u8v<Arch>::size], r[u8v<Arch>::size];
  x.store_aligned(v);
  idx.store_aligned(k);
  for (std::size_t i = 0; i < u8v<Arch>::size; ++i)
    r[i] = (k[i] & 0x80u) ? std::uint8_t{0} : v[(i & ~std::size_t{15}) + (k[i] & 15u)];
  return u8v<Arch>::load_aligned(r);
}

// 32-bit lane i shifted right by s[i] (< 32).
template <class Arch>
u32v<Arch> shift_right_var(const u32v<Arch>& x, const u32v<Arch>& s, xsimd::generic) noexcept {
  return x >> s;
}

// Zero-extends u16v::size bytes at p to 16-bit lanes.
template <class Arch>
u16v<Arch> load_u8_as_u16(const std::uint8_t* p, xsimd::generic) noexcept {
  alignas(64) std::uint16_t lanes[u16v<Arch>::size];
  for (std::size_t i = 0; i < u16v<Arch>::size; ++i) lanes[i] = p[i];
  return u16v<Arch>::load_aligned(lanes);
}

// Bytes a block may write past its own output (store_lane_prefixes) or read past its own input
// (load_lane_prefixes) for width B.
template <unsigned B>
constexpr std::size_t lane_prefix_slack(xsimd::generic) noexcept {
  return 0;
}

// Writes the first 2B bytes of every 128-bit lane of x contiguously at out.
template <unsigned B, class Arch>
void store_lane_prefixes(const u8v<Arch>& x, std::uint8_t* out, xsimd::generic) noexcept {
  alignas(64) std::uint8_t v[u8v<Arch>::size];
  x.store_aligned(v);
  for (std::size_t l = 0; l < u8v<Arch>::size / 16; ++l)
    std::memcpy(out + 2 * B * l, v + 16 * l, 2 * B);
}

// Inverse: 128-bit lane l gets bytes [2B*l, 2B*l + 2B) of in at its start (rest unspecified).
template <unsigned B, class Arch>
u8v<Arch> load_lane_prefixes(const std::uint8_t* in, xsimd::generic) noexcept {
  alignas(64) std::uint8_t v[u8v<Arch>::size] = {};
  for (std::size_t l = 0; l < u8v<Arch>::size / 16; ++l)
    std::memcpy(v + 16 * l, in + 2 * B * l, 2 * B);
  return u8v<Arch>::load_aligned(v);
}

// Split nibbles: a and b hold whole groups of 2*Q 128-bit chunks [low half | high half]; lo gets
// all the low-half chunks in order, hi all the high-half chunks.
template <std::size_t Q, class Arch>
void split_halves(const u8v<Arch>& a, const u8v<Arch>& b, u8v<Arch>& lo, u8v<Arch>& hi,
                  xsimd::generic) noexcept {
  constexpr std::size_t V = u8v<Arch>::size, G = 32 * Q;  // G: bytes per group
  alignas(64) std::uint8_t in[2 * V], l[V], h[V];
  a.store_aligned(in);
  b.store_aligned(in + V);
  for (std::size_t g = 0; g < 2 * V / G; ++g) {
    std::memcpy(l + g * G / 2, in + g * G, G / 2);
    std::memcpy(h + g * G / 2, in + g * G + G / 2, G / 2);
  }
  lo = u8v<Arch>::load_aligned(l);
  hi = u8v<Arch>::load_aligned(h);
}

// Inverse of split_halves.
template <std::size_t Q, class Arch>
void join_halves(const u8v<Arch>& lo, const u8v<Arch>& hi, u8v<Arch>& a, u8v<Arch>& b,
                 xsimd::generic) noexcept {
  constexpr std::size_t V = u8v<Arch>::size, G = 32 * Q;
  alignas(64) std::uint8_t out[2 * V], l[V], h[V];
  lo.store_aligned(l);
  hi.store_aligned(h);
  for (std::size_t g = 0; g < 2 * V / G; ++g) {
    std::memcpy(out + g * G, l + g * G / 2, G / 2);
    std::memcpy(out + g * G + G / 2, h + g * G / 2, G / 2);
  }
  a = u8v<Arch>::load_aligned(out);
  b = u8v<Arch>::load_aligned(out + V);
}

#if XSIMD_WITH_AVX2
template <class Arch>
std::uint64_t bit0_mask(const u8v<Arch>& x, xsimd::avx2) noexcept {
  // Bit 0 of every byte moves to bit 7, where movemask reads it.
  return static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(x, 7)));
}

template <class Arch>
u8v<Arch> expand_bits(const std::uint8_t* p, xsimd::avx2) noexcept {
  std::int32_t m;
  std::memcpy(&m, p, sizeof m);
  // Byte k of the 32 bits goes to lanes 8k..8k+7; each lane then tests its own bit.
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(m), _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                                             2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  return _mm256_min_epu8(_mm256_and_si256(spread, bit), _mm256_set1_epi8(1));
}

template <unsigned S, class Arch>
u16v<Arch> merge_pairs_u8(const u8v<Arch>& x, xsimd::avx2) noexcept {
  // pmaddubsw multiplies unsigned bytes of its first operand by signed bytes of the second:
  // the weights (1, 2^S <= 128) go first so that S = 7 works; codes are < 128.
  return _mm256_maddubs_epi16(_mm256_set1_epi16(static_cast<short>(1 | (1 << S) << 8)), x);
}

template <unsigned S, class Arch>
u32v<Arch> merge_pairs_u16(const u16v<Arch>& x, xsimd::avx2) noexcept {
  return _mm256_madd_epi16(x, _mm256_set1_epi32(1 | (1 << (S + 16))));
}

template <class Arch>
u8v<Arch> narrow_u16x2(const u16v<Arch>& a, const u16v<Arch>& b, xsimd::avx2) noexcept {
  // packus works per 128-bit lane: qwords come out as a.lo, b.lo, a.hi, b.hi.
  return _mm256_permute4x64_epi64(_mm256_packus_epi16(a, b), 0xD8);
}

template <class Arch>
u8v<Arch> narrow_u32x4(const u32v<Arch>& a, const u32v<Arch>& b, const u32v<Arch>& c,
                       const u32v<Arch>& d, xsimd::avx2) noexcept {
  const __m256i ab = _mm256_packus_epi32(a, b);
  const __m256i cd = _mm256_packus_epi32(c, d);
  // dwords now: a.lo b.lo c.lo d.lo | a.hi b.hi c.hi d.hi
  return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, cd),
                                     _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

template <class Arch>
u8v<Arch> shuffle_in_lanes(const u8v<Arch>& x, const u8v<Arch>& idx, xsimd::avx2) noexcept {
  return _mm256_shuffle_epi8(x, idx);
}

template <class Arch>
u32v<Arch> shift_right_var(const u32v<Arch>& x, const u32v<Arch>& s, xsimd::avx2) noexcept {
  return _mm256_srlv_epi32(x, s);
}

template <class Arch>
u16v<Arch> load_u8_as_u16(const std::uint8_t* p, xsimd::avx2) noexcept {
  return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// AVX2 has no byte-granular cross-lane move: the upper lane is stored (loaded) 2B bytes after
// the lower one with a full 16-byte access, overlapping what the next block writes (reads).
template <unsigned B>
constexpr std::size_t lane_prefix_slack(xsimd::avx2) noexcept {
  return 16 - 2 * B;
}

template <unsigned B, class Arch>
void store_lane_prefixes(const u8v<Arch>& x, std::uint8_t* out, xsimd::avx2) noexcept {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(x));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * B), _mm256_extracti128_si256(x, 1));
}

template <unsigned B, class Arch>
u8v<Arch> load_lane_prefixes(const std::uint8_t* in, xsimd::avx2) noexcept {
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * B));
  return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

template <std::size_t Q, class Arch>
void split_halves(const u8v<Arch>& a, const u8v<Arch>& b, u8v<Arch>& lo, u8v<Arch>& hi,
                  xsimd::avx2) noexcept {
  static_assert(Q == 1, "a 256-bit vector holds one group of two 16-byte halves");
  lo = _mm256_permute2x128_si256(a, b, 0x20);
  hi = _mm256_permute2x128_si256(a, b, 0x31);
}

template <std::size_t Q, class Arch>
void join_halves(const u8v<Arch>& lo, const u8v<Arch>& hi, u8v<Arch>& a, u8v<Arch>& b,
                 xsimd::avx2) noexcept {
  static_assert(Q == 1, "a 256-bit vector holds one group of two 16-byte halves");
  a = _mm256_permute2x128_si256(lo, hi, 0x20);
  b = _mm256_permute2x128_si256(lo, hi, 0x31);
}
#endif  // XSIMD_WITH_AVX2

#if XSIMD_WITH_AVX512F
template <class Arch>
u32v<Arch> shift_right_var(const u32v<Arch>& x, const u32v<Arch>& s, xsimd::avx512f) noexcept {
  return _mm512_srlv_epi32(x, s);
}

template <std::size_t Q, class Arch>
void split_halves(const u8v<Arch>& a, const u8v<Arch>& b, u8v<Arch>& lo, u8v<Arch>& hi,
                  xsimd::avx512f) noexcept {
  static_assert(Q == 1 || Q == 2, "a 512-bit vector holds groups of 2 or 4 16-byte chunks");
  if constexpr (Q == 1) {  // chunks a0 a2 b0 b2 are low halves, a1 a3 b1 b3 high halves
    lo = _mm512_shuffle_i64x2(a, b, 0x88);
    hi = _mm512_shuffle_i64x2(a, b, 0xDD);
  } else {  // a0 a1 b0 b1 low, a2 a3 b2 b3 high
    lo = _mm512_shuffle_i64x2(a, b, 0x44);
    hi = _mm512_shuffle_i64x2(a, b, 0xEE);
  }
}

template <std::size_t Q, class Arch>
void join_halves(const u8v<Arch>& lo, const u8v<Arch>& hi, u8v<Arch>& a, u8v<Arch>& b,
                 xsimd::avx512f) noexcept {
  static_assert(Q == 1 || Q == 2, "a 512-bit vector holds groups of 2 or 4 16-byte chunks");
  if constexpr (Q == 1) {  // qword indices: 0..7 from lo, 8..15 from hi
    a = _mm512_permutex2var_epi64(lo, _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), hi);
    b = _mm512_permutex2var_epi64(lo, _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15), hi);
  } else {
    a = _mm512_shuffle_i64x2(lo, hi, 0x44);
    b = _mm512_shuffle_i64x2(lo, hi, 0xEE);
  }
}
#endif  // XSIMD_WITH_AVX512F

#if XSIMD_WITH_AVX512BW
// vpermw word indices that join (store) or spread (load) the 2B-byte lane prefixes.
template <unsigned B>
inline constexpr std::array<std::uint16_t, 32> join_prefix_words = [] {
  std::array<std::uint16_t, 32> t{};
  for (unsigned w = 0; w < 4 * B; ++w) t[w] = static_cast<std::uint16_t>(8 * (w / B) + w % B);
  return t;
}();
template <unsigned B>
inline constexpr std::array<std::uint16_t, 32> spread_prefix_words = [] {
  std::array<std::uint16_t, 32> t{};
  for (unsigned w = 0; w < 32; ++w) t[w] = static_cast<std::uint16_t>(B * (w / 8) + w % 8);
  return t;
}();

template <class Arch>
std::uint64_t bit0_mask(const u8v<Arch>& x, xsimd::avx512bw) noexcept {
  return _mm512_test_epi8_mask(x, _mm512_set1_epi8(1));
}

template <class Arch>
u8v<Arch> expand_bits(const std::uint8_t* p, xsimd::avx512bw) noexcept {
  std::uint64_t m;
  std::memcpy(&m, p, sizeof m);
  return _mm512_maskz_mov_epi8(m, _mm512_set1_epi8(1));
}

template <unsigned S, class Arch>
u16v<Arch> merge_pairs_u8(const u8v<Arch>& x, xsimd::avx512bw) noexcept {
  return _mm512_maddubs_epi16(_mm512_set1_epi16(static_cast<short>(1 | (1 << S) << 8)), x);
}

template <unsigned S, class Arch>
u32v<Arch> merge_pairs_u16(const u16v<Arch>& x, xsimd::avx512bw) noexcept {
  return _mm512_madd_epi16(x, _mm512_set1_epi32(1 | (1 << (S + 16))));
}

template <class Arch>
u8v<Arch> narrow_u16x2(const u16v<Arch>& a, const u16v<Arch>& b, xsimd::avx512bw) noexcept {
  // per 128-bit lane k: qword 2k = a's lane k, qword 2k+1 = b's lane k
  return _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7),
                                  _mm512_packus_epi16(a, b));
}

template <class Arch>
u8v<Arch> narrow_u32x4(const u32v<Arch>& a, const u32v<Arch>& b, const u32v<Arch>& c,
                       const u32v<Arch>& d, xsimd::avx512bw) noexcept {
  const __m512i ab = _mm512_packus_epi32(a, b);
  const __m512i cd = _mm512_packus_epi32(c, d);
  // per 128-bit lane k: dwords a_k b_k c_k d_k
  return _mm512_permutexvar_epi32(
      _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
      _mm512_packus_epi16(ab, cd));
}

template <class Arch>
u8v<Arch> shuffle_in_lanes(const u8v<Arch>& x, const u8v<Arch>& idx, xsimd::avx512bw) noexcept {
  return _mm512_shuffle_epi8(x, idx);
}

template <class Arch>
u16v<Arch> load_u8_as_u16(const std::uint8_t* p, xsimd::avx512bw) noexcept {
  return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Byte-masked loads and stores touch exactly the block's 8B bytes.
template <unsigned B>
constexpr std::size_t lane_prefix_slack(xsimd::avx512bw) noexcept {
  return 0;
}

template <unsigned B, class Arch>
void store_lane_prefixes(const u8v<Arch>& x, std::uint8_t* out, xsimd::avx512bw) noexcept {
  const __m512i idx = _mm512_loadu_si512(join_prefix_words<B>.data());
  _mm512_mask_storeu_epi8(out, (std::uint64_t{1} << (8 * B)) - 1, _mm512_permutexvar_epi16(idx, x));
}

template <unsigned B, class Arch>
u8v<Arch> load_lane_prefixes(const std::uint8_t* in, xsimd::avx512bw) noexcept {
  const __m512i idx = _mm512_loadu_si512(spread_prefix_words<B>.data());
  return _mm512_permutexvar_epi16(idx,
                                  _mm512_maskz_loadu_epi8((std::uint64_t{1} << (8 * B)) - 1, in));
}
#endif  // XSIMD_WITH_AVX512BW

// ---- blocks: K codes <-> K*B/8 bytes, written once over xsimd batches ------------------------

struct block_shape {
  std::size_t codes;  // codes per block, a multiple of 8
  std::size_t slack;  // bytes a block may touch past its own packed bytes
};

template <unsigned B, class Arch>
constexpr block_shape shape() noexcept {
  constexpr std::size_t V = u8v<Arch>::size;
  if constexpr (B == 1 || B == 2) {
    return {4 * V, 0};
  } else if constexpr (B == 4) {
    return {2 * V, 0};
  } else {
    return {V, lane_prefix_slack<B>(Arch{})};
  }
}

template <class Arch>
void pack_block(width<1>, const std::uint8_t* c, std::uint8_t* o) noexcept {
  constexpr std::size_t V = u8v<Arch>::size;
  for (std::size_t u = 0; u < 4; ++u) {
    const std::uint64_t m = bit0_mask<Arch>(u8v<Arch>::load_unaligned(c + u * V), Arch{});
    std::memcpy(o + u * V / 8, &m, V / 8);
  }
}

template <class Arch>
void unpack_block(width<1>, const std::uint8_t* in, std::uint8_t* c) noexcept {
  constexpr std::size_t V = u8v<Arch>::size;
  for (std::size_t u = 0; u < 4; ++u)
    expand_bits<Arch>(in + u * V / 8, Arch{}).store_unaligned(c + u * V);
}

template <class Arch>
void pack_block(width<2>, const std::uint8_t* c, std::uint8_t* o) noexcept {
  constexpr std::size_t V = u8v<Arch>::size;
  const u8v<Arch> m(std::uint8_t{3});
  u32v<Arch> q[4];
  for (std::size_t u = 0; u < 4; ++u) {
    const u8v<Arch> x = u8v<Arch>::load_unaligned(c + u * V) & m;
    q[u] = merge_pairs_u16<4, Arch>(merge_pairs_u8<2, Arch>(x, Arch{}), Arch{});
  }
  narrow_u32x4<Arch>(q[0], q[1], q[2], q[3], Arch{}).store_unaligned(o);
}

template <class Arch>
void unpack_block(width<2>, const std::uint8_t* in, std::uint8_t* c) noexcept {
  constexpr std::size_t V = u8v<Arch>::size;
  for (std::size_t u = 0; u < 4; ++u) {
    // One packed byte per 32-bit lane: nibbles to bytes 0 and 2, then 2-bit fields to bytes 0..3.
    const u32v<Arch> x =
        xsimd::bitwise_cast<u32v<Arch>>(qcodec::simd::load_u8_as_i32<Arch>(in + u * V / 4));
    const u32v<Arch> t = (x | (x << 12)) & u32v<Arch>(0x000F000Fu);
    const u32v<Arch> r = (t | (t << 6)) & u32v<Arch>(0x03030303u);
    xsimd::bitwise_cast<u8v<Arch>>(r).store_unaligned(c + u * V);
  }
}

template <class Arch>
void pack_block(width<4>, const std::uint8_t* c, std::uint8_t* o) noexcept {
  constexpr std::size_t V = u8v<Arch>::size;
  const u8v<Arch> m(std::uint8_t{15});
  const u8v<Arch> x0 = u8v<Arch>::load_unaligned(c) & m;
  const u8v<Arch> x1 = u8v<Arch>::load_unaligned(c + V) & m;
  narrow_u16x2<Arch>(merge_pairs_u8<4, Arch>(x0, Arch{}), merge_pairs_u8<4, Arch>(x1, Arch{}),
                     Arch{})
      .store_unaligned(o);
}

template <class Arch>
void unpack_block(width<4>, const std::uint8_t* in, std::uint8_t* c) noexcept {
  constexpr std::size_t V = u8v<Arch>::size;
  for (std::size_t u = 0; u < 2; ++u) {
    const u16v<Arch> w = load_u8_as_u16<Arch>(in + u * V / 2, Arch{});
    const u16v<Arch> r = (w | (w << 4)) & u16v<Arch>(std::uint16_t{0x0F0F});
    xsimd::bitwise_cast<u8v<Arch>>(r).store_unaligned(c + u * V);
  }
}

// Widths 3, 5, 6, 7: V codes -> V*B/8 bytes.
template <class Arch, unsigned B>
void pack_block(width<B>, const std::uint8_t* c, std::uint8_t* o) noexcept {
  static_assert(B == 3 || B == 5 || B == 6 || B == 7);
  const u8v<Arch> x = u8v<Arch>::load_unaligned(c) & u8v<Arch>(std::uint8_t((1u << B) - 1));
  const u32v<Arch> z = merge_pairs_u16<2 * B, Arch>(merge_pairs_u8<B, Arch>(x, Arch{}), Arch{});
  u8v<Arch> g;
  if constexpr (B % 2 == 1) {  // 4B bits per dword is not whole bytes: merge to 8 codes = B bytes
    const u64v<Arch> q = xsimd::bitwise_cast<u64v<Arch>>(z);
    const u64v<Arch> w = (q & u64v<Arch>(0xFFFFFFFFu)) | ((q >> 32) << (4 * B));
    g = xsimd::bitwise_cast<u8v<Arch>>(w);
  } else {
    g = xsimd::bitwise_cast<u8v<Arch>>(z);
  }
  g = shuffle_in_lanes<Arch>(g, u8v<Arch>::load_unaligned(pack_gather<B>.data()), Arch{});
  store_lane_prefixes<B, Arch>(g, o, Arch{});
}

template <class Arch, unsigned B>
void unpack_block(width<B>, const std::uint8_t* in, std::uint8_t* c) noexcept {
  static_assert(B == 3 || B == 5 || B == 6 || B == 7);
  const u8v<Arch> g = load_lane_prefixes<B, Arch>(in, Arch{});
  u32v<Arch> z = xsimd::bitwise_cast<u32v<Arch>>(
      shuffle_in_lanes<Arch>(g, u8v<Arch>::load_unaligned(unpack_gather<B>.data()), Arch{}));
  if constexpr (B % 2 == 1) {  // odd dwords start mid-byte
    z = shift_right_var<Arch>(
        z, xsimd::bitwise_cast<u32v<Arch>>(u64v<Arch>(std::uint64_t{4} << 32)), Arch{});
  }
  // 32 -> 2 x 16 bits: a plain select; the bits above 2B it leaves in each half are dropped by
  // the masks of the 16 -> 2 x 8 step, which reads only bits [0, 2B).
  const u32v<Arch> y = (z & u32v<Arch>(0xFFFFu)) | ((z << (16 - 2 * B)) & u32v<Arch>(0xFFFF0000u));
  const u16v<Arch> h = xsimd::bitwise_cast<u16v<Arch>>(y);
  constexpr std::uint16_t m1 = (1u << B) - 1;
  const u16v<Arch> x =
      (h & u16v<Arch>(m1)) | ((h << (8 - B)) & u16v<Arch>(static_cast<std::uint16_t>(m1 << 8)));
  xsimd::bitwise_cast<u8v<Arch>>(x).store_unaligned(c);
}

// ---- per-width drivers -----------------------------------------------------------------------

template <unsigned B, class Arch>
void pack_width(const std::uint8_t* codes, std::size_t n, std::uint8_t* out) noexcept {
  if constexpr (B == 8) {
    if (n != 0) std::memcpy(out, codes, n);
  } else {
    constexpr block_shape s = shape<B, Arch>();
    constexpr std::size_t K = s.codes, KB = K * B / 8;
    const std::size_t total = (n * B + 7) / 8;
    std::size_t blocks = n / K;
    if constexpr (s.slack > 0) {  // the last direct block's overhang must stay inside `out`
      const std::size_t fit = total >= s.slack ? (total - s.slack) / KB : 0;
      blocks = fit < blocks ? fit : blocks;
    }
    for (std::size_t b = 0; b < blocks; ++b)
      pack_block<Arch>(width<B>{}, codes + b * K, out + b * KB);
    // The rest through stack buffers; zero codes past n leave the last byte's spare bits zero.
    for (std::size_t i = blocks * K; i < n; i += K) {
      alignas(64) std::uint8_t c[K] = {};
      alignas(64) std::uint8_t o[KB + s.slack];
      const std::size_t m = n - i < K ? n - i : K;
      std::memcpy(c, codes + i, m);
      pack_block<Arch>(width<B>{}, c, o);
      std::memcpy(out + i / 8 * B, o, (m * B + 7) / 8);
    }
  }
}

template <unsigned B, class Arch>
void unpack_width(const std::uint8_t* in, std::size_t n, std::uint8_t* codes) noexcept {
  if constexpr (B == 8) {
    if (n != 0) std::memcpy(codes, in, n);
  } else {
    constexpr block_shape s = shape<B, Arch>();
    constexpr std::size_t K = s.codes, KB = K * B / 8;
    const std::size_t total = (n * B + 7) / 8;
    std::size_t blocks = n / K;
    if constexpr (s.slack > 0) {  // the last direct block's over-read must stay inside `in`
      const std::size_t fit = total >= s.slack ? (total - s.slack) / KB : 0;
      blocks = fit < blocks ? fit : blocks;
    }
    for (std::size_t b = 0; b < blocks; ++b)
      unpack_block<Arch>(width<B>{}, in + b * KB, codes + b * K);
    for (std::size_t i = blocks * K; i < n; i += K) {
      alignas(64) std::uint8_t p[KB + s.slack] = {};
      alignas(64) std::uint8_t c[K];
      const std::size_t m = n - i < K ? n - i : K;
      std::memcpy(p, in + i / 8 * B, (m * B + 7) / 8);
      unpack_block<Arch>(width<B>{}, p, c);
      std::memcpy(codes + i, c, m);
    }
  }
}

// ---- split nibbles ---------------------------------------------------------------------------

template <class Arch>
u8v<Arch> join_nibbles(const u8v<Arch>& lo, const u8v<Arch>& hi) noexcept {
  const u8v<Arch> hi4 = xsimd::bitwise_cast<u8v<Arch>>(xsimd::bitwise_cast<u16v<Arch>>(hi) << 4);
  return (lo & u8v<Arch>(std::uint8_t{0x0F})) | (hi4 & u8v<Arch>(std::uint8_t{0xF0}));
}

template <class Arch>
u8v<Arch> high_nibbles(const u8v<Arch>& x) noexcept {
  return xsimd::bitwise_cast<u8v<Arch>>(xsimd::bitwise_cast<u16v<Arch>>(x) >> 4) &
         u8v<Arch>(std::uint8_t{0x0F});
}

template <class Arch>
void pack_nibbles_bytes(const std::uint8_t* codes, std::size_t n, std::size_t half,
                        std::uint8_t* out) noexcept {
  for (std::size_t g = 0; g < n; g += 2 * half, codes += 2 * half, out += half) {
    for (std::size_t j = 0; j < half; ++j)
      out[j] = static_cast<std::uint8_t>((codes[j] & 0x0Fu) | (unsigned{codes[j + half]} << 4));
  }
}

template <class Arch>
void unpack_nibbles_bytes(const std::uint8_t* in, std::size_t n, std::size_t half,
                          std::uint8_t* codes) noexcept {
  for (std::size_t g = 0; g < n; g += 2 * half, codes += 2 * half, in += half) {
    for (std::size_t j = 0; j < half; ++j) {
      codes[j] = static_cast<std::uint8_t>(in[j] & 0x0Fu);
      codes[j + half] = static_cast<std::uint8_t>(in[j] >> 4);
    }
  }
}

// Two vectors of codes (whole groups of 2 * 16Q codes) -> one vector of bytes; returns codes done.
template <std::size_t Q, class Arch>
std::size_t pack_nibbles_shuffled(const std::uint8_t* codes, std::size_t n,
                                  std::uint8_t* out) noexcept {
  constexpr std::size_t V = u8v<Arch>::size;
  std::size_t i = 0;
  for (; i + 2 * V <= n; i += 2 * V) {
    u8v<Arch> lo, hi;
    split_halves<Q, Arch>(u8v<Arch>::load_unaligned(codes + i),
                          u8v<Arch>::load_unaligned(codes + i + V), lo, hi, Arch{});
    join_nibbles<Arch>(lo, hi).store_unaligned(out + i / 2);
  }
  return i;
}

template <std::size_t Q, class Arch>
std::size_t unpack_nibbles_shuffled(const std::uint8_t* in, std::size_t n,
                                    std::uint8_t* codes) noexcept {
  constexpr std::size_t V = u8v<Arch>::size;
  std::size_t i = 0;
  for (; i + 2 * V <= n; i += 2 * V) {
    const u8v<Arch> x = u8v<Arch>::load_unaligned(in + i / 2);
    u8v<Arch> a, b;
    join_halves<Q, Arch>(x & u8v<Arch>(std::uint8_t{0x0F}), high_nibbles<Arch>(x), a, b, Arch{});
    a.store_unaligned(codes + i);
    b.store_unaligned(codes + i + V);
  }
  return i;
}

}  // namespace detail::packing

// Kernels are defined out of class and not `inline`, so that `extern template` declarations
// (dispatch.hpp) keep them out of translation units compiled without the ISA's flags.

template <class Arch>
void pack_bits(const std::uint8_t* codes, std::size_t n, unsigned bits,
               std::uint8_t* out) noexcept {
  namespace d = detail::packing;
  switch (bits) {
    case 1:
      d::pack_width<1, Arch>(codes, n, out);
      break;
    case 2:
      d::pack_width<2, Arch>(codes, n, out);
      break;
    case 3:
      d::pack_width<3, Arch>(codes, n, out);
      break;
    case 4:
      d::pack_width<4, Arch>(codes, n, out);
      break;
    case 5:
      d::pack_width<5, Arch>(codes, n, out);
      break;
    case 6:
      d::pack_width<6, Arch>(codes, n, out);
      break;
    case 7:
      d::pack_width<7, Arch>(codes, n, out);
      break;
    case 8:
      d::pack_width<8, Arch>(codes, n, out);
      break;
    default:
      break;  // outside the contract (bits in 1..8)
  }
}

template <class Arch>
void unpack_bits(const std::uint8_t* in, std::size_t n, unsigned bits,
                 std::uint8_t* codes) noexcept {
  namespace d = detail::packing;
  switch (bits) {
    case 1:
      d::unpack_width<1, Arch>(in, n, codes);
      break;
    case 2:
      d::unpack_width<2, Arch>(in, n, codes);
      break;
    case 3:
      d::unpack_width<3, Arch>(in, n, codes);
      break;
    case 4:
      d::unpack_width<4, Arch>(in, n, codes);
      break;
    case 5:
      d::unpack_width<5, Arch>(in, n, codes);
      break;
    case 6:
      d::unpack_width<6, Arch>(in, n, codes);
      break;
    case 7:
      d::unpack_width<7, Arch>(in, n, codes);
      break;
    case 8:
      d::unpack_width<8, Arch>(in, n, codes);
      break;
    default:
      break;
  }
}

template <class Arch>
void pack_nibbles_split(const std::uint8_t* codes, std::size_t n, std::size_t half,
                        std::uint8_t* out) noexcept {
  namespace d = detail::packing;
  using v = d::u8v<Arch>;
  constexpr std::size_t V = v::size;
  std::size_t i = 0;  // codes done; bytes done = i / 2
  if (half % V == 0) {
    for (; i < n; i += 2 * half) {
      for (std::size_t j = 0; j < half; j += V) {
        d::join_nibbles<Arch>(v::load_unaligned(codes + i + j),
                              v::load_unaligned(codes + i + half + j))
            .store_unaligned(out + i / 2 + j);
      }
    }
  } else if (half == 16) {
    if constexpr (V % 32 == 0) i = d::pack_nibbles_shuffled<1, Arch>(codes, n, out);
  } else if (half == 32) {
    if constexpr (V % 64 == 0) i = d::pack_nibbles_shuffled<2, Arch>(codes, n, out);
  }
  d::pack_nibbles_bytes<Arch>(codes + i, n - i, half, out + i / 2);
}

template <class Arch>
void unpack_nibbles_split(const std::uint8_t* in, std::size_t n, std::size_t half,
                          std::uint8_t* codes) noexcept {
  namespace d = detail::packing;
  using v = d::u8v<Arch>;
  constexpr std::size_t V = v::size;
  std::size_t i = 0;
  if (half % V == 0) {
    for (; i < n; i += 2 * half) {
      for (std::size_t j = 0; j < half; j += V) {
        const v x = v::load_unaligned(in + i / 2 + j);
        (x & v(std::uint8_t{0x0F})).store_unaligned(codes + i + j);
        d::high_nibbles<Arch>(x).store_unaligned(codes + i + half + j);
      }
    }
  } else if (half == 16) {
    if constexpr (V % 32 == 0) i = d::unpack_nibbles_shuffled<1, Arch>(in, n, codes);
  } else if (half == 32) {
    if constexpr (V % 64 == 0) i = d::unpack_nibbles_shuffled<2, Arch>(in, n, codes);
  }
  d::unpack_nibbles_bytes<Arch>(in + i / 2, n - i, half, codes + i);
}

}  // namespace simd
}  // namespace qcodec

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
