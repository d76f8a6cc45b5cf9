#pragma once
// Rows of codes scored against the int8 form of the query vectors: the integer version of
// code_row_dots (rows.hpp), for attention whose key codec quantizes its queries
// (kv::query_format::i8).
//
//   code_row_dots_i8   out[g * ld + r] = s_g * float(sum_i code_r[i] * q8_g[i])
//
// with rows as in rows.hpp (n codes of `bits` bits, 1..8, packed LSB-first, `stride` bytes
// apart) and, for each float vector q_g = q[g * n, g * n + n), its symmetric int8 form:
//   m = max_i |q_g[i]|,   inv = 127 / m rounded toward zero,   s_g = m / 127,
//   q8_g[i] = round-half-even(q_g[i] * inv)          (|q8| <= 127 in any rounding mode).
// A vector holding a NaN or an infinity scores NaN; a zero vector, or one so small that inv
// overflows (m below about 3.7e-37), scores zero. The sum is an exact integer
// (|sum| <= 255 * 127 * n: n up to 66000), converted to float once and scaled once, so every
// target returns the oracle's bits.
//
// Why: with 4-bit codes, a code times an int8 query element is one byte product. AVX-512 VNNI's
// vpdpbusd does 64 of them per instruction where the float kernel unpacks, converts and then
// does 16 multiply-adds; its integer partial sums also reduce without rounding. CPUs without
// VNNI get the same integers from vpmaddubsw + vpmaddwd (AVX2 registers).

#include <qcodec/simd/arch.hpp>
#include <qcodec/simd/rows.hpp>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace qcodec {

namespace simd::detail::int8_dots {

/// The int8 form of one vector (header comment): q8[i] = nearbyint(q[i] * inv) and scores times
/// `scale`; inv == 0 for a zero or non-finite vector (then q8 is all zero and scale 0 or NaN).
struct int8_form {
  float scale, inv;
};

/// The form from max |q| and whether q is finite; `grid` is the largest integer (127 here,
/// 16383 for int16_dots.hpp's form). inv is grid / m rounded toward zero, so that
/// |q[i] * inv| <= grid however the product rounds: with inv rounded up, m * inv rounded up
/// passes the grid and converts to 128 (16384), which wraps in a byte (in the VNNI split of a
/// 15-bit query).
template <class Arch>
int8_form form_from(float m, bool finite, float grid = 127.0f) noexcept {
  if (!finite) return {std::numeric_limits<float>::quiet_NaN(), 0.0f};
  float inv = grid / m;  // +inf for m == 0
  // Below FLT_MAX: rounding down or toward zero, an overflow gives FLT_MAX, not infinity.
  if (!(inv < std::numeric_limits<float>::max())) return {0.0f, 0.0f};
  // A product of two floats is exact as a double; the float just below inv (positive and
  // normal here: its bits minus one) is <= grid / m.
  if (double{m} * double{inv} > double{grid})
    inv = std::bit_cast<float>(std::bit_cast<std::uint32_t>(inv) - 1u);
  return {m / grid, inv};
}

/// The form of q[0, n) (a template on the target, as kernel helpers are: kernel_table.hpp; the
/// oracle and the kv layer use Arch = simd::scalar).
template <class Arch>
int8_form form_of(const float* q, std::size_t n, float grid = 127.0f) noexcept {
  float m = 0.0f;
  bool finite = true;
  for (std::size_t i = 0; i < n; ++i) {
    finite = finite && std::isfinite(q[i]);
    m = std::fmax(m, std::fabs(q[i]));
  }
  return form_from<Arch>(m, finite, grid);
}

}  // namespace simd::detail::int8_dots

namespace ref {

inline void code_row_dots_i8(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                             std::size_t n, unsigned bits, const float* q, std::size_t nq,
                             float* out, std::size_t ld) noexcept {
  for (std::size_t g = 0; g < nq; ++g) {
    const float* qg = q + g * n;
    const auto f = simd::detail::int8_dots::form_of<simd::scalar>(qg, n);
    for (std::size_t r = 0; r < rows; ++r) {
      const std::uint8_t* row = in + r * stride;
      std::int32_t sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t bit = i * bits;
        std::uint32_t v = std::uint32_t{row[bit / 8]} >> (bit % 8);
        if (bit % 8 + bits > 8) v |= std::uint32_t{row[bit / 8 + 1]} << (8 - bit % 8);
        const auto code = static_cast<std::int32_t>(v & ((1u << bits) - 1));
        const auto q8 =
            f.inv == 0.0f ? 0 : static_cast<std::int32_t>(std::nearbyint(qg[i] * f.inv));
        sum += code * q8;
      }
      out[g * ld + r] = f.scale * static_cast<float>(sum);
    }
  }
}

}  // namespace ref

namespace simd {

// GCC 12 reports its own AVX-512 intrinsics as using uninitialized values (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace detail::int8_dots {

// Longest row the vector paths take (the int8 query copy lives on the stack), as rows.hpp.
inline constexpr std::size_t max_n = 1024;
// How far ahead rows are prefetched (as rows.hpp's column kernels: the loads wait on DRAM
// otherwise).
inline constexpr std::size_t prefetch_distance = 24;

// Any bits, any n: the oracle's sums, with each vector converted once (up to max_n elements at a
// time) and the rows visited in blocks of 64 (their partial sums on the stack).
template <class Arch>
void dots_generic(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                  unsigned bits, const float* q, std::size_t nq, float* out,
                  std::size_t ld) noexcept {
  constexpr std::size_t block = 64;
  std::int8_t q8[max_n];
  std::int32_t sums[block];
  for (std::size_t g = 0; g < nq; ++g) {
    const float* qg = q + g * n;
    const int8_form f = form_of<Arch>(qg, n);
    for (std::size_t r0 = 0; r0 < rows; r0 += block) {
      const std::size_t rn = rows - r0 < block ? rows - r0 : block;
      for (std::size_t r = 0; r < rn; ++r) sums[r] = 0;
      for (std::size_t i0 = 0; i0 < n; i0 += max_n) {
        const std::size_t k = n - i0 < max_n ? n - i0 : max_n;
        for (std::size_t i = 0; i < k; ++i)
          q8[i] = f.inv == 0.0f ? 0 : static_cast<std::int8_t>(std::nearbyint(qg[i0 + i] * f.inv));
        for (std::size_t r = 0; r < rn; ++r) {
          const std::uint8_t* row = in + (r0 + r) * stride;
          for (std::size_t i = 0; i < k; ++i) {
            const std::size_t bit = (i0 + i) * bits;
            std::uint32_t v = std::uint32_t{row[bit / 8]} >> (bit % 8);
            if (bit % 8 + bits > 8) v |= std::uint32_t{row[bit / 8 + 1]} << (8 - bit % 8);
            sums[r] += static_cast<std::int32_t>(v & ((1u << bits) - 1)) * q8[i];
          }
        }
      }
      for (std::size_t r = 0; r < rn; ++r)
        out[g * ld + r0 + r] = f.scale * static_cast<float>(sums[r]);
    }
  }
}

// The 4-bit kernels read a row's bytes as they are: `x & 15` gives the codes at even positions,
// `x >> 4` those at odd ones. The query is split to match, per block of B elements (B / 2 =
// the bytes of one register): qp[B c + j] = q8[B c + 2 j], qp[B c + B / 2 + j] = q8[B c + 2 j + 1].

#if XSIMD_WITH_AVX2
// Floats i .. i + 7 of q[0, n), zeros past n (a last partial 8 through a padded copy).
template <class Arch>
__m256 floats8_avx2(const float* q, std::size_t i, std::size_t n) noexcept {
  if (n - i >= 8) return _mm256_loadu_ps(q + i);
  alignas(32) float t[8] = {};
  for (std::size_t j = 0; i + j < n; ++j) t[j] = q[i + j];
  return _mm256_load_ps(t);
}

// form_of on AVX2 (any n): the maximum and the check for NaNs and infinities 8 lanes at a time.
template <class Arch>
int8_form form_avx2(const float* q, std::size_t n, float grid = 127.0f) noexcept {
  const __m256 sign = _mm256_set1_ps(-0.0f), inf = _mm256_set1_ps(HUGE_VALF);
  __m256 m = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
  for (std::size_t i = 0; i < n; i += 8) {
    const __m256 x = _mm256_andnot_ps(sign, floats8_avx2<Arch>(q, i, n));
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(x, inf, _CMP_NLT_UQ));
    m = _mm256_max_ps(m, x);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float mx = 0.0f;
  for (float v : lanes) mx = mx < v ? v : mx;
  return form_from<Arch>(mx, _mm256_movemask_ps(bad) == 0, grid);
}

// The form and split query on AVX2 (n a multiple of 64, B == 64): xsimd for the float work,
// the narrowing and split in scalar code (a few hundred byte moves per call and vector).
template <class Arch>
int8_form split_query_avx2(const float* q, std::size_t n, std::int8_t* qp) noexcept {
  using F = batch<float, Arch>;
  const int8_form f = form_avx2<Arch>(q, n);
  alignas(32) std::int32_t k[max_n];
  const F inv(f.inv);
  for (std::size_t i = 0; i < n; i += F::size) {
    // inv == 0 with a non-finite q gives NaN here, which converts to INT_MIN: zero as a byte.
    xsimd::nearbyint_as_int(F::load_unaligned(q + i) * inv).store_aligned(k + i);
  }
  for (std::size_t c = 0; c < n; c += 64)
    for (std::size_t j = 0; j < 32; ++j) {
      qp[c + j] = static_cast<std::int8_t>(k[c + 2 * j] & 0xFF);
      qp[c + 32 + j] = static_cast<std::int8_t>(k[c + 2 * j + 1] & 0xFF);
    }
  return f;
}

// Scores of T <= 4 rows of n 4-bit codes (n a multiple of 64) for G <= 4 split vectors qp
// ([G][n], B == 64), 32 bytes of each row per step. vpmaddubsw's pair sums (codes <= 15,
// |q8| <= 127: <= 3810) never saturate, and the 16-bit sums of 4 products of a row and vector
// (<= 7620) are added pairwise across two rows by vphaddw (<= 15240, no overflow) before they
// are widened: one widening and one 32-bit accumulator per two rows, one vphaddd per vector at
// the end. (Widening each row's sums and reducing each accumulator alone took 73 instructions a
// row of 64 codes for 4 vectors under callgrind, with its 16 accumulators in memory; now 55.)
template <std::size_t G, std::size_t T, class Arch>
void maddubs_rows(const std::uint8_t* in, std::size_t stride, std::size_t n, const std::int8_t* qp,
                  const float* scale, float* out, std::size_t ld) noexcept {
  const __m256i low4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
  // acc[g][p], per 128-bit lane: two partial sums of row 2p, then two of row 2p + 1.
  __m256i acc[G][2];
  QCODEC_UNROLL_REGISTERS
  for (std::size_t g = 0; g < G; ++g) acc[g][0] = acc[g][1] = _mm256_setzero_si256();
  for (std::size_t c = 0; c < n; c += 64) {
    __m256i lo[4], hi[4];
    QCODEC_UNROLL_REGISTERS
    for (std::size_t t = 0; t < 4; ++t) {
      if (t >= T) {
        lo[t] = hi[t] = _mm256_setzero_si256();
        continue;
      }
      const __m256i x =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + t * stride + c / 2));
      lo[t] = _mm256_and_si256(x, low4);
      hi[t] = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
    }
    QCODEC_UNROLL_REGISTERS
    for (std::size_t g = 0; g < G; ++g) {
      const __m256i qe = _mm256_load_si256(reinterpret_cast<const __m256i*>(qp + g * n + c));
      const __m256i qo = _mm256_load_si256(reinterpret_cast<const __m256i*>(qp + g * n + c + 32));
      __m256i v[4];
      QCODEC_UNROLL_REGISTERS
      for (std::size_t t = 0; t < 4; ++t) {
        v[t] = t < T ? _mm256_add_epi16(_mm256_maddubs_epi16(lo[t], qe),
                                        _mm256_maddubs_epi16(hi[t], qo))
                     : _mm256_setzero_si256();
      }
      QCODEC_UNROLL_REGISTERS
      for (std::size_t p = 0; p < 2; ++p) {
        acc[g][p] = _mm256_add_epi32(
            acc[g][p], _mm256_madd_epi16(_mm256_hadd_epi16(v[2 * p], v[2 * p + 1]), ones));
      }
    }
  }
  // Per vector, per 128-bit lane: rows 0..3 after one vphaddd; two vectors share the lane fold,
  // the conversion and the scaling.
  QCODEC_UNROLL_REGISTERS
  for (std::size_t g = 0; g < G; g += 2) {
    const __m256i a = _mm256_hadd_epi32(acc[g][0], acc[g][1]);
    const __m256i b = g + 1 < G ? _mm256_hadd_epi32(acc[g + 1][0], acc[g + 1][1]) : a;
    const __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                                          _mm256_permute2x128_si256(a, b, 0x31));
    const float s1 = g + 1 < G ? scale[g + 1] : 0.0f;
    const __m256 f =
        _mm256_mul_ps(_mm256_setr_ps(scale[g], scale[g], scale[g], scale[g], s1, s1, s1, s1),
                      _mm256_cvtepi32_ps(sums));
    if constexpr (T == 4) {
      _mm_storeu_ps(out + g * ld, _mm256_castps256_ps128(f));
      if (g + 1 < G) _mm_storeu_ps(out + (g + 1) * ld, _mm256_extractf128_ps(f, 1));
    } else {
      alignas(32) float v[8];
      _mm256_store_ps(v, f);
      QCODEC_UNROLL_REGISTERS
      for (std::size_t t = 0; t < T; ++t) {
        out[g * ld + t] = v[t];
        if (g + 1 < G) out[(g + 1) * ld + t] = v[4 + t];
      }
    }
  }
}

template <std::size_t G, class Arch>
void maddubs_group(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                   const std::int8_t* qp, const float* scale, float* out, std::size_t ld) noexcept {
  std::size_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    prefetch_rows<Arch>(in + (r + prefetch_distance) * stride, stride, n / 2, 4);
    maddubs_rows<G, 4, Arch>(in + r * stride, stride, n, qp, scale, out + r, ld);
  }
  const std::uint8_t* tail = in + r * stride;
  switch (rows - r) {
    case 1:
      maddubs_rows<G, 1, Arch>(tail, stride, n, qp, scale, out + r, ld);
      break;
    case 2:
      maddubs_rows<G, 2, Arch>(tail, stride, n, qp, scale, out + r, ld);
      break;
    case 3:
      maddubs_rows<G, 3, Arch>(tail, stride, n, qp, scale, out + r, ld);
      break;
    default:
      break;
  }
}
#endif  // XSIMD_WITH_AVX2

#if XSIMD_WITH_AVX512BW
// The lanes of elements [i, n) among i .. i + 15.
template <class Arch>
__mmask16 lanes_from(std::size_t i, std::size_t n) noexcept {
  return static_cast<__mmask16>(n - i >= 16 ? 0xFFFFu : (1u << (n - i)) - 1u);
}

// The form of q[0, n) on AVX-512 (any n).
template <class Arch>
int8_form form_avx512(const float* q, std::size_t n) noexcept {
  __m512 m = _mm512_setzero_ps();
  __mmask16 bad = 0;
  for (std::size_t i = 0; i < n; i += 16) {
    const __m512 x = _mm512_maskz_loadu_ps(lanes_from<Arch>(i, n), q + i);
    bad |= _mm512_fpclass_ps_mask(x, 0x99);  // NaNs and infinities
    m = _mm512_max_ps(m, _mm512_abs_ps(x));
  }
  return form_from<Arch>(_mm512_reduce_max_ps(m), bad == 0);
}

// form_from for 16 maxima at once, given as the bits of the magnitudes (so that bits of at least
// 0x7F800000, a NaN or an infinity, say the lane is not finite): inv and scale lane by lane as
// form_from returns them, from one division. m * inv > grid is tested exactly, as
// fma(m, inv, -grid) > 0, whose sign rounding keeps. A lane that is not finite needs no mask for
// inv: grid / inf is 0, grid / NaN fails the test below FLT_MAX.
template <class Arch>
void forms16(__m512i max_bits, float grid, __m512& inv, __m512& scale) noexcept {
  const __mmask16 bad = _mm512_cmpge_epu32_mask(max_bits, _mm512_set1_epi32(0x7F800000));
  const __m512 m = _mm512_castsi512_ps(max_bits), g = _mm512_set1_ps(grid);
  __m512 v = _mm512_div_ps(g, m);
  const __mmask16 ok =
      _mm512_cmp_ps_mask(v, _mm512_set1_ps(std::numeric_limits<float>::max()), _CMP_LT_OQ);
  const __mmask16 over =
      _mm512_cmp_ps_mask(_mm512_fmsub_ps(m, v, g), _mm512_setzero_ps(), _CMP_GT_OQ);
  v = _mm512_castsi512_ps(_mm512_mask_sub_epi32(_mm512_castps_si512(v), over,
                                                _mm512_castps_si512(v), _mm512_set1_epi32(1)));
  inv = _mm512_maskz_mov_ps(ok, v);
  scale = _mm512_mask_blend_ps(bad, _mm512_maskz_div_ps(ok, m, g),
                               _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN()));
}

// The form and split query on AVX-512 (n == 64 or a multiple of 128; B == 64 or 128), all in
// registers: per 32 elements two permutes, two multiplies, two conversions and two narrowings.
template <std::size_t B, class Arch>
int8_form split_query_avx512(const float* q, std::size_t n, std::int8_t* qp) noexcept {
  const int8_form f = form_avx512<Arch>(q, n);
  const __m512 inv = _mm512_set1_ps(f.inv);
  const auto bytes = [&](__m512 x) {  // NaN (inv == 0, q not finite) converts to a zero byte
    return _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(x, inv)));
  };
  for (std::size_t i = 0; i < n; i += 32) {
    const __m512 a = _mm512_loadu_ps(q + i), b = _mm512_loadu_ps(q + i + 16);
    std::int8_t* block = qp + i / B * B + i % B / 2;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(block),
                     bytes(_mm512_permutex2var_ps(a, rows::split_even<Arch>(), b)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(block + B / 2),
                     bytes(_mm512_permutex2var_ps(a, rows::split_odd<Arch>(), b)));
  }
  return f;
}

// With AVX-512 VNNI (checked at run time: its own target attribute, so that nothing else in this
// translation unit may use VNNI instructions on a CPU without them).
#if defined(__GNUC__) || defined(__clang__)
#define QCODEC_INT8_VNNI_TARGET __attribute__((target("avx512vnni")))
// The row loop's helpers are inlined into it (GCC otherwise calls sum16 with its sixteen
// accumulators spilled to memory).
#define QCODEC_INT8_VNNI_INLINE [[gnu::always_inline]] inline QCODEC_INT8_VNNI_TARGET

// Lane 4 g + t of the result: the lane sum of a[t][g] (four rows, four vectors).
template <class Arch>
QCODEC_INT8_VNNI_INLINE __m512i sum16(const __m512i (&a)[4][4]) noexcept {
  __m512i r[4];
  for (std::size_t g = 0; g < 4; ++g) {
    __m512i u[2];
    for (std::size_t p = 0; p < 2; ++p)  // per 128-bit lane: rows 2p, 2p + 1, 2p, 2p + 1
      u[p] = _mm512_add_epi32(_mm512_unpacklo_epi32(a[2 * p][g], a[2 * p + 1][g]),
                              _mm512_unpackhi_epi32(a[2 * p][g], a[2 * p + 1][g]));
    // per 128-bit lane: rows 0, 1, 2, 3
    r[g] = _mm512_add_epi32(_mm512_unpacklo_epi64(u[0], u[1]), _mm512_unpackhi_epi64(u[0], u[1]));
  }
  const auto fold = [](__m512i x, __m512i y) {  // 128-bit lanes: x0+x1, x2+x3, y0+y1, y2+y3
    return _mm512_add_epi32(_mm512_shuffle_i32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
  };
  return fold(fold(r[0], r[1]), fold(r[2], r[3]));
}

// The same from rows paired in registers: a0[g] lanes 0..7 row 0, 8..15 row 1; a1[g] rows 2, 3
// (the integer form of rows.hpp's dw_sum16).
template <class Arch>
QCODEC_INT8_VNNI_INLINE __m512i sum16_paired(const __m512i (&a0)[4],
                                             const __m512i (&a1)[4]) noexcept {
  __m512i s[4];
  for (std::size_t g = 0; g < 4; ++g)  // 128-bit lanes 0, 1: rows (0, 2); lanes 2, 3: (1, 3)
    s[g] =
        _mm512_add_epi32(_mm512_unpacklo_epi32(a0[g], a1[g]), _mm512_unpackhi_epi32(a0[g], a1[g]));
  const auto pairs = [](__m512i x, __m512i y) {
    return _mm512_add_epi32(_mm512_unpacklo_epi64(x, y), _mm512_unpackhi_epi64(x, y));
  };
  const __m512i v01 = pairs(s[0], s[1]), v23 = pairs(s[2], s[3]);
  const __m512i w = _mm512_add_epi32(_mm512_shuffle_i32x4(v01, v23, _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_i32x4(v01, v23, _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_permutexvar_epi32(
      _mm512_set_epi32(15, 11, 14, 10, 13, 9, 12, 8, 7, 3, 6, 2, 5, 1, 4, 0), w);
}

// Scores of T <= 4 rows for G <= 4 split vectors qp, scaled by s (lane 4 g + t: s_g). n == 64:
// two rows per register, qp [G][128] (each vector's 32 even and 32 odd elements twice); else n
// a multiple of 128 (N = n when known at compile time, else 0), qp [G][n].
template <std::size_t G, std::size_t T, std::size_t N, class Arch>
QCODEC_INT8_VNNI_INLINE void vnni_rows(const std::uint8_t* in, std::size_t stride, std::size_t n_,
                                       const std::int8_t* qp, __m512 s, float* out,
                                       std::size_t ld) noexcept {
  const std::size_t n = N != 0 ? N : n_;
  const __m512i low4 = _mm512_set1_epi8(15);
  __m512i sums;
  if (n == 64) {
    __m512i a[2][4];
    for (auto& ap : a)
      for (auto& v : ap) v = _mm512_setzero_si512();
    for (std::size_t p = 0; p < (T + 1) / 2; ++p) {
      __m512i x = _mm512_zextsi256_si512(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 2 * p * stride)));
      if (2 * p + 1 < T) {
        x = _mm512_inserti64x4(
            x, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + (2 * p + 1) * stride)), 1);
      }
      const __m512i lo = _mm512_and_si512(x, low4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), low4);
      for (std::size_t g = 0; g < G; ++g) {
        a[p][g] = _mm512_dpbusd_epi32(a[p][g], lo, _mm512_load_si512(qp + g * 128));
        a[p][g] = _mm512_dpbusd_epi32(a[p][g], hi, _mm512_load_si512(qp + g * 128 + 64));
      }
    }
    sums = sum16_paired<Arch>(a[0], a[1]);
  } else {
    __m512i a[4][4];
    for (auto& at : a)
      for (auto& v : at) v = _mm512_setzero_si512();
    for (std::size_t i = 0; i < n; i += 128) {
      for (std::size_t t = 0; t < T; ++t) {
        const __m512i x = _mm512_loadu_si512(in + t * stride + i / 2);
        const __m512i lo = _mm512_and_si512(x, low4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), low4);
        for (std::size_t g = 0; g < G; ++g) {
          a[t][g] = _mm512_dpbusd_epi32(a[t][g], lo, _mm512_load_si512(qp + g * n + i));
          a[t][g] = _mm512_dpbusd_epi32(a[t][g], hi, _mm512_load_si512(qp + g * n + i + 64));
        }
      }
    }
    sums = sum16<Arch>(a);
  }
  rows::dw_store<G, T, Arch>(_mm512_mul_ps(s, _mm512_cvtepi32_ps(sums)), out, ld);
}

template <std::size_t G, std::size_t T, class Arch>
QCODEC_INT8_VNNI_INLINE void vnni_block(const std::uint8_t* in, std::size_t stride, std::size_t n,
                                        const std::int8_t* qp, __m512 s, float* out,
                                        std::size_t ld) noexcept {
  if (n == 64) {
    vnni_rows<G, T, 64, Arch>(in, stride, n, qp, s, out, ld);
  } else if (n == 128) {
    vnni_rows<G, T, 128, Arch>(in, stride, n, qp, s, out, ld);
  } else {
    vnni_rows<G, T, 0, Arch>(in, stride, n, qp, s, out, ld);
  }
}

template <std::size_t G, class Arch>
QCODEC_INT8_VNNI_TARGET void vnni_group(const std::uint8_t* in, std::size_t stride,
                                        std::size_t rows, std::size_t n, const std::int8_t* qp,
                                        __m512 s, float* out, std::size_t ld) noexcept {
  std::size_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    prefetch_rows<Arch>(in + (r + prefetch_distance) * stride, stride, n / 2, 4);
    vnni_block<G, 4, Arch>(in + r * stride, stride, n, qp, s, out + r, ld);
  }
  const std::uint8_t* tail = in + r * stride;
  switch (rows - r) {
    case 1:
      vnni_block<G, 1, Arch>(tail, stride, n, qp, s, out + r, ld);
      break;
    case 2:
      vnni_block<G, 2, Arch>(tail, stride, n, qp, s, out + r, ld);
      break;
    case 3:
      vnni_block<G, 3, Arch>(tail, stride, n, qp, s, out + r, ld);
      break;
    default:
      break;
  }
}

// 4-bit rows, n == 64 or a multiple of 128 (<= max_n).
template <class Arch>
QCODEC_INT8_VNNI_TARGET void dots4_vnni(const std::uint8_t* in, std::size_t stride,
                                        std::size_t rows, std::size_t n, const float* q,
                                        std::size_t nq, float* out, std::size_t ld) noexcept {
  alignas(64) std::int8_t qp[4 * max_n];
  const std::size_t qn = n == 64 ? 128 : n;
  for (std::size_t g0 = 0; g0 < nq; g0 += 4) {
    const std::size_t gn = nq - g0 < 4 ? nq - g0 : 4;
    alignas(64) float scale[16] = {};
    for (std::size_t g = 0; g < gn; ++g) {
      std::int8_t* qg = qp + g * qn;
      const int8_form f = split_query_avx512<128, Arch>(q + (g0 + g) * n, n, qg);
      if (n == 64) {  // evens at [0, 32), odds at [64, 96): each repeated for the second row
        std::memcpy(qg + 32, qg, 32);
        std::memcpy(qg + 96, qg + 64, 32);
      }
      for (std::size_t t = 0; t < 4; ++t) scale[4 * g + t] = f.scale;
    }
    const __m512 s = _mm512_load_ps(scale);
    float* og = out + g0 * ld;
    switch (gn) {
      case 1:
        vnni_group<1, Arch>(in, stride, rows, n, qp, s, og, ld);
        break;
      case 2:
        vnni_group<2, Arch>(in, stride, rows, n, qp, s, og, ld);
        break;
      case 3:
        vnni_group<3, Arch>(in, stride, rows, n, qp, s, og, ld);
        break;
      default:
        vnni_group<4, Arch>(in, stride, rows, n, qp, s, og, ld);
        break;
    }
  }
}
#undef QCODEC_INT8_VNNI_INLINE
#undef QCODEC_INT8_VNNI_TARGET
#endif  // GCC or Clang
#endif  // XSIMD_WITH_AVX512BW

#if XSIMD_WITH_AVX2
// 4-bit rows, n a multiple of 64 (<= max_n), without VNNI.
template <class Arch>
void dots4_maddubs(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                   const float* q, std::size_t nq, float* out, std::size_t ld) noexcept {
  alignas(64) std::int8_t qp[4 * max_n];
  for (std::size_t g0 = 0; g0 < nq; g0 += 4) {
    const std::size_t gn = nq - g0 < 4 ? nq - g0 : 4;
    float scale[4] = {};
    for (std::size_t g = 0; g < gn; ++g) {
#if XSIMD_WITH_AVX512BW
      scale[g] = split_query_avx512<64, Arch>(q + (g0 + g) * n, n, qp + g * n).scale;
#else
      scale[g] = split_query_avx2<Arch>(q + (g0 + g) * n, n, qp + g * n).scale;
#endif
    }
    float* og = out + g0 * ld;
    switch (gn) {
      case 1:
        maddubs_group<1, Arch>(in, stride, rows, n, qp, scale, og, ld);
        break;
      case 2:
        maddubs_group<2, Arch>(in, stride, rows, n, qp, scale, og, ld);
        break;
      case 3:
        maddubs_group<3, Arch>(in, stride, rows, n, qp, scale, og, ld);
        break;
      default:
        maddubs_group<4, Arch>(in, stride, rows, n, qp, scale, og, ld);
        break;
    }
  }
}
#endif  // XSIMD_WITH_AVX2

}  // namespace detail::int8_dots

/// code_row_dots_i8 without instructions beyond Arch's (no VNNI).
template <class Arch>
void code_row_dots_i8_base(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                           std::size_t n, unsigned bits, const float* q, std::size_t nq, float* out,
                           std::size_t ld) noexcept {
  namespace d = detail::int8_dots;
#if XSIMD_WITH_AVX2
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch> || std::is_base_of_v<xsimd::avx512bw, Arch>) {
    if (bits == 4 && n % 64 == 0 && n <= d::max_n)
      return d::dots4_maddubs<Arch>(in, stride, rows, n, q, nq, out, ld);
  }
#endif
  d::dots_generic<Arch>(in, stride, rows, n, bits, q, nq, out, ld);
}

#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
/// code_row_dots_i8 with AVX-512 VNNI (only on CPUs that have it).
template <class Arch>
void code_row_dots_i8_vnni(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                           std::size_t n, unsigned bits, const float* q, std::size_t nq, float* out,
                           std::size_t ld) noexcept {
  namespace d = detail::int8_dots;
  if (bits == 4 && (n == 64 || n % 128 == 0) && n <= d::max_n)
    return d::dots4_vnni<Arch>(in, stride, rows, n, q, nq, out, ld);
  code_row_dots_i8_base<Arch>(in, stride, rows, n, bits, q, nq, out, ld);
}
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// The entries of a kernel table (see kernel_table.hpp).
struct int8_dot_kernels {
  /// The fastest form for the running CPU.
  void (*code_row_dots_i8)(const std::uint8_t*, std::size_t, std::size_t, std::size_t, unsigned,
                           const float*, std::size_t, float*, std::size_t) noexcept;
  /// The same results without extensions the table's target does not imply (on AVX-512: without
  /// VNNI), so tests can check both forms on one machine.
  void (*code_row_dots_i8_base)(const std::uint8_t*, std::size_t, std::size_t, std::size_t,
                                unsigned, const float*, std::size_t, float*, std::size_t) noexcept;
};

template <class Arch>
int8_dot_kernels make_int8_dot_kernels() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::code_row_dots_i8, &ref::code_row_dots_i8};
  } else {
#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
    if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
      if (cpu_supports_avx512_vnni())
        return {&code_row_dots_i8_vnni<Arch>, &code_row_dots_i8_base<Arch>};
    }
#endif
    return {&code_row_dots_i8_base<Arch>, &code_row_dots_i8_base<Arch>};
  }
}

}  // namespace simd
}  // namespace qcodec
