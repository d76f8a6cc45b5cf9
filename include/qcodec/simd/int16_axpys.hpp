#pragma once
// Rows of codes summed with weights rounded to 16 bits: the integer version of code_row_axpys
// (rows.hpp), for the value sums of attention whose value codec rounds its weights
// (kv::weight_format::i16).
//
//   code_row_axpys_w16   acc[g * n + i] = fma(s_g, float(sum_r code_r[i] * w16_g[r]),
//                                             acc[g * n + i])
//
// with rows as in rows.hpp (n codes of `bits` bits, 1..8, packed LSB-first, `stride` bytes
// apart), at most max_w16_rows of them, and for each weight vector w_g = w[g * ldw, + rows) its
// 16-bit form (int8_dots.hpp's form with the grid 32767):
//   m = max_r |w_g[r]|,   inv = 32767 / m rounded toward zero,   s_g = m / 32767,
//   w16_g[r] = w_g[r] * inv rounded to an integer in the current rounding mode (half to even
//              by default).
// Rounding to nearest, each weight is off by at most half a step, m / 65534 (a step in directed
// modes), plus float rounding of inv and s_g. A vector holding a NaN or an infinity adds NaN; a
// zero vector, or one so small that inv overflows (m below about 1e-34), adds zero. The sums are
// exact integers (|sum| <= 255 * 32767 * 256), converted and scaled once, so every target
// returns the oracle's bits.
//
// Why: with float weights the value sums of 4-bit codes cost one multiply-add per code and query
// head, the float kernels' floor. AVX-512 VNNI's vpdpwssd multiplies and adds two codes (two
// rows) per lane and instruction, half the instructions; the code unpacking is shared by the
// heads as before. That fast path takes 4-bit rows of a multiple of 64 codes on CPUs with VNNI.
// AVX2 (and AVX-512 without VNNI) does the same with vpmaddwd and an add, for 4-bit rows of a
// multiple of 32 codes: without it, scalar integer sums made 4-bit decode attention with 16-bit
// weights 28-60x slower there than with VNNI, 5x slower than fp32. Other CPUs and shapes get
// the scalar sums (much slower than code_row_axpys: this form is for x86 CPUs).

#include <qcodec/simd/arch.hpp>
#include <qcodec/simd/int8_dots.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace qcodec {

namespace simd {
/// The most rows one code_row_axpys_w16 call takes (its integer sums fit 32 bits at 8 bits; the
/// AVX-512 path keeps this many rounded weights per vector on the stack).
inline constexpr std::size_t max_w16_rows = 256;
/// The largest integer weight (the 16-bit grid).
inline constexpr float w16_grid = 32767.0f;
}  // namespace simd

namespace simd::detail::int16_axpys {

// Where row r starts, for the kernels below: rows `stride` bytes apart (code_row_axpys_w16).
// token_rows.hpp passes its blocks' rows the same way: runs of run(rows) rows `stride` apart,
// each starting where operator() says. A template on the target, as kernel helpers are
// (kernel_table.hpp).
template <class Arch>
struct strided_rows {
  const std::uint8_t* in;
  std::size_t stride;
  const std::uint8_t* operator()(std::size_t r) const noexcept { return in + r * stride; }
  std::size_t run(std::size_t rows) const noexcept { return rows; }  // one run
};

// Any bits, n and rows: the header's sums, a block of columns at a time (each weight rounded once
// per block). The oracle runs it with Arch = simd::scalar, the tables without a faster path with
// their own.
template <class Arch, class Rows>
void axpys_generic(const Rows& row_at, std::size_t rows, std::size_t n, unsigned bits,
                   const float* w, std::size_t ldw, std::size_t nq, float* acc) noexcept {
  constexpr std::size_t block = 256;
  std::int32_t sums[block];
  for (std::size_t g = 0; g < nq; ++g) {
    const float* wg = w + g * ldw;
    const int8_dots::int8_form f = int8_dots::form_of<Arch>(wg, rows, w16_grid);
    for (std::size_t i0 = 0; i0 < n; i0 += block) {
      const std::size_t k = n - i0 < block ? n - i0 : block;
      for (std::size_t i = 0; i < k; ++i) sums[i] = 0;
      for (std::size_t r = 0; r < rows; ++r) {
        const auto w16 =
            f.inv == 0.0f ? 0 : static_cast<std::int32_t>(std::nearbyint(wg[r] * f.inv));
        const std::uint8_t* row = row_at(r);
        for (std::size_t i = 0; i < k; ++i) {
          const std::size_t bit = (i0 + i) * bits;
          std::uint32_t v = std::uint32_t{row[bit / 8]} >> (bit % 8);
          if (bit % 8 + bits > 8) v |= std::uint32_t{row[bit / 8 + 1]} << (8 - bit % 8);
          sums[i] += static_cast<std::int32_t>(v & ((1u << bits) - 1)) * w16;
        }
      }
      for (std::size_t i = 0; i < k; ++i) {
        float& out = acc[g * n + i0 + i];
        out = std::fma(f.scale, static_cast<float>(sums[i]), out);
      }
    }
  }
}

template <class Arch>
void code_row_axpys_w16_generic(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                                std::size_t n, unsigned bits, const float* w, std::size_t ldw,
                                std::size_t nq, float* acc) noexcept {
  axpys_generic<Arch>(strided_rows<Arch>{in, stride}, rows, n, bits, w, ldw, nq, acc);
}

}  // namespace simd::detail::int16_axpys

namespace ref {

inline void code_row_axpys_w16(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                               std::size_t n, unsigned bits, const float* w, std::size_t ldw,
                               std::size_t nq, float* acc) noexcept {
  simd::detail::int16_axpys::code_row_axpys_w16_generic<simd::scalar>(in, stride, rows, n, bits, w,
                                                                      ldw, nq, acc);
}

}  // namespace ref

namespace simd {

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's own AVX-512 intrinsics
#endif

#if XSIMD_WITH_AVX2 && defined(__FMA__)  // (vfmadd)
namespace detail::int16_axpys {

// The 16-bit form of one weight vector into q (the header's: cvtps rounds in the current mode,
// as nearbyint), one zero past its rows; returns its scale.
template <class Arch>
float weights16_avx2(const float* w, std::size_t rows, std::int16_t* q) noexcept {
  const int8_dots::int8_form f = int8_dots::form_avx2<Arch>(w, rows, w16_grid);
  q[rows] = 0;
  if (f.inv == 0.0f) {  // zero, tiny or not finite: all zero
    std::memset(q, 0, rows * sizeof(std::int16_t));
    return f.scale;
  }
  const __m256 inv = _mm256_set1_ps(f.inv);
  for (std::size_t r = 0; r < rows; r += 8) {
    // |x| <= 32767 (zeros past the rows)
    const __m256i x =
        _mm256_cvtps_epi32(_mm256_mul_ps(int8_dots::floats8_avx2<Arch>(w, r, rows), inv));
    const __m128i words =
        _mm_packs_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    if (rows - r >= 8) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + r), words);
    } else {
      alignas(16) std::int16_t t[8];
      _mm_store_si128(reinterpret_cast<__m128i*>(t), words);
      std::memcpy(q + r, t, (rows - r) * sizeof(std::int16_t));
    }
  }
  return f.scale;
}

// 4-bit codes, 32 columns from column c0, G <= 2 weight vectors (four accumulators each and four
// code vectors fit AVX2's 16 registers). As the VNNI form below: two rows' 16 bytes interleaved
// and widened to words put the two rows' codes of one column in one dword lane, and vpmaddwd
// against the broadcast weight pair adds both rows' products there (at most 2 * 15 * 32767).
// Lane j of the low (high) nibbles holds column 2j (2j + 1) of bytes 0-7, then of bytes 8-15.
template <std::size_t G, class Arch, class Rows>
void axpys4_columns32_avx2(const Rows& row_at, std::size_t rows, std::size_t c0,
                           const std::int16_t* wq, const float* s, std::size_t n,
                           float* acc) noexcept {
  __m256i sum[G][4];
  for (auto& a : sum)
    for (auto& v : a) v = _mm256_setzero_si256();
  const __m256i low4 = _mm256_set1_epi16(0x000F);
  const std::size_t run = row_at.run(rows), stride = row_at.stride;
  // Runs of rows `stride` apart (all but the last of an even number of rows); an odd last row
  // pairs with zeros and the weight pair (w, 0), as in the VNNI form.
  for (std::size_t r0 = 0; r0 < rows; r0 += run) {
    const std::uint8_t* base = row_at(r0) + c0 / 2;
    const std::size_t rn = rows - r0 < run ? rows - r0 : run;
    const auto row = [&](std::size_t r) {
      return _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + r * stride));
    };
    for (std::size_t r = 0; r < rn; r += 2) {
      const __m128i r0w = row(r), r1w = r + 1 < rn ? row(r + 1) : _mm_setzero_si128();
      const __m256i u = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(r0w, r1w));  // bytes 0-7
      const __m256i v = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(r0w, r1w));  // bytes 8-15
      const __m256i codes[4] = {_mm256_and_si256(u, low4), _mm256_srli_epi16(u, 4),
                                _mm256_and_si256(v, low4), _mm256_srli_epi16(v, 4)};
      for (std::size_t g = 0; g < G; ++g) {
        std::int32_t pair;
        std::memcpy(&pair, wq + g * (max_w16_rows + 2) + r0 + r, 4);
        const __m256i wp = _mm256_set1_epi32(pair);
        for (std::size_t k = 0; k < 4; ++k)
          sum[g][k] = _mm256_add_epi32(sum[g][k], _mm256_madd_epi16(codes[k], wp));
      }
    }
  }
  // Pairing low- and high-nibble lanes gives columns [0-3 | 8-11] and [4-7 | 12-15] (then 16
  // more); one 128-bit permute per 8 columns puts them in order.
  for (std::size_t g = 0; g < G; ++g) {
    const __m256 sg = _mm256_set1_ps(s[g]);
    float* out = acc + g * n + c0;
    for (std::size_t h = 0; h < 2; ++h) {
      const __m256i p = _mm256_unpacklo_epi32(sum[g][2 * h], sum[g][2 * h + 1]);
      const __m256i q = _mm256_unpackhi_epi32(sum[g][2 * h], sum[g][2 * h + 1]);
      const __m256i cols[2] = {_mm256_permute2x128_si256(p, q, 0x20),
                               _mm256_permute2x128_si256(p, q, 0x31)};
      for (std::size_t k = 0; k < 2; ++k) {
        float* o = out + 16 * h + 8 * k;
        _mm256_storeu_ps(o, _mm256_fmadd_ps(sg, _mm256_cvtepi32_ps(cols[k]), _mm256_loadu_ps(o)));
      }
    }
  }
}

// The sums on AVX2 for any rows: 4-bit rows of a multiple of 32 codes; the generic sums
// otherwise.
template <class Arch, class Rows>
void axpys_avx2(const Rows& row_at, std::size_t rows, std::size_t n, unsigned bits, const float* w,
                std::size_t ldw, std::size_t nq, float* acc) noexcept {
  if (bits != 4 || n % 32 != 0 || rows > max_w16_rows)  // (past it, the weights' buffer)
    return axpys_generic<Arch>(row_at, rows, n, bits, w, ldw, nq, acc);
  alignas(32) std::int16_t wq[2 * (max_w16_rows + 2)];
  float s[2];
  for (std::size_t g0 = 0; g0 < nq; g0 += 2) {
    const std::size_t gn = nq - g0 < 2 ? nq - g0 : 2;
    for (std::size_t g = 0; g < gn; ++g)
      s[g] = weights16_avx2<Arch>(w + (g0 + g) * ldw, rows, wq + g * (max_w16_rows + 2));
    for (std::size_t c0 = 0; c0 < n; c0 += 32) {
      if (gn == 2) {
        axpys4_columns32_avx2<2, Arch>(row_at, rows, c0, wq, s, n, acc + g0 * n);
      } else {
        axpys4_columns32_avx2<1, Arch>(row_at, rows, c0, wq, s, n, acc + g0 * n);
      }
    }
  }
}

}  // namespace detail::int16_axpys

/// code_row_axpys_w16 with AVX2: 4-bit rows of a multiple of 32 codes; the generic sums
/// otherwise.
template <class Arch>
void code_row_axpys_w16_avx2(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                             std::size_t n, unsigned bits, const float* w, std::size_t ldw,
                             std::size_t nq, float* acc) noexcept {
  namespace d = detail::int16_axpys;
  d::axpys_avx2<Arch>(d::strided_rows<Arch>{in, stride}, rows, n, bits, w, ldw, nq, acc);
}
#endif

#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
namespace detail::int16_axpys {

// With AVX-512 VNNI (checked at run time: its own target attribute, as int8_dots.hpp).
#define QCODEC_W16_VNNI_TARGET __attribute__((target("avx512vnni")))
#define QCODEC_W16_VNNI_INLINE [[gnu::always_inline]] inline QCODEC_W16_VNNI_TARGET

// The 16-bit forms of G weight vectors, vector g at wq + g * (max_w16_rows + 2), one zero past
// its rows (an odd last row pairs with it); returns the scales s_g in s.
template <std::size_t G, class Arch>
void weights16(const float* w, std::size_t ldw, std::size_t rows, std::int16_t* wq,
               float* s) noexcept {
  for (std::size_t g = 0; g < G; ++g) {
    const float* wg = w + g * ldw;
    const auto lanes = [&](std::size_t r) {  // rows r .. r + 15 that exist
      return static_cast<__mmask16>(rows - r >= 16 ? 0xFFFFu : (1u << (rows - r)) - 1u);
    };
    __m512 m = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (std::size_t r = 0; r < rows; r += 16) {
      const __mmask16 k = lanes(r);
      const __m512 x = _mm512_maskz_loadu_ps(k, wg + r);
      bad |= _mm512_fpclass_ps_mask(x, 0x99);  // NaNs and infinities
      m = _mm512_max_ps(m, _mm512_abs_ps(x));
    }
    const int8_dots::int8_form f =
        int8_dots::form_from<Arch>(_mm512_reduce_max_ps(m), bad == 0, w16_grid);
    s[g] = f.scale;
    const __m512 inv = _mm512_set1_ps(f.inv);
    std::int16_t* q = wq + g * (max_w16_rows + 2);
    for (std::size_t r = 0; r < rows; r += 16) {
      // |w * inv| <= 32767; NaN (w not finite, inv == 0) converts to INT_MIN, whose low half is 0.
      const __mmask16 k = lanes(r);
      const __m512i x = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, wg + r), inv));
      _mm512_mask_cvtepi32_storeu_epi16(q + r, k, x);
    }
    q[rows] = 0;
  }
}

// 4-bit codes, 64 columns from column c0, G <= 4 weight vectors. Two rows at a time: their 32
// bytes interleaved (vpunpck{l,h}bw) and widened to words (vpmovzxbw) put the two rows' codes of
// one column in one dword lane, so one vpdpwssd against the broadcast weight pair adds both rows
// for 16 columns. Lanes of lo (hi) nibbles hold even (odd) columns; they are put back in order
// once, at the end.
template <std::size_t G, class Arch, class Rows>
QCODEC_W16_VNNI_INLINE void axpys4_columns64(const Rows& row_at, std::size_t rows, std::size_t c0,
                                             const std::int16_t* wq, const float* s, std::size_t n,
                                             float* acc) noexcept {
  __m512i sum[G][4];
  for (auto& a : sum)
    for (auto& v : a) v = _mm512_setzero_si512();
  const __m512i low4 = _mm512_set1_epi16(0x000F);
  const std::size_t run = row_at.run(rows), stride = row_at.stride;
  // Runs of rows `stride` apart (all but the last of an even number of rows). One loop body for
  // every pair (a second copy for an odd last row made GCC copy and spill the accumulators at
  // each step): an odd last row pairs with zeros and the weight pair (w, 0).
  for (std::size_t r0 = 0; r0 < rows; r0 += run) {
    const std::uint8_t* base = row_at(r0) + c0 / 2;
    const std::size_t rn = rows - r0 < run ? rows - r0 : run;
    const auto row = [&](std::size_t r) {
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + r * stride));
    };
    for (std::size_t r = 0; r < rn; r += 2) {
      _mm_prefetch(reinterpret_cast<const char*>(base + (r + 24) * stride), _MM_HINT_T0);
      const __m256i r0w = row(r), r1w = r + 1 < rn ? row(r + 1) : _mm256_setzero_si256();
      const __m512i u = _mm512_cvtepu8_epi16(_mm256_unpacklo_epi8(r0w, r1w));  // bytes 0-7, 16-23
      const __m512i v = _mm512_cvtepu8_epi16(_mm256_unpackhi_epi8(r0w, r1w));  // 8-15, 24-31
      const __m512i codes[4] = {_mm512_and_si512(u, low4), _mm512_srli_epi16(u, 4),
                                _mm512_and_si512(v, low4), _mm512_srli_epi16(v, 4)};
      for (std::size_t g = 0; g < G; ++g) {
        std::int32_t pair;
        std::memcpy(&pair, wq + g * (max_w16_rows + 2) + r0 + r, 4);
        const __m512i wp = _mm512_set1_epi32(pair);
        for (std::size_t k = 0; k < 4; ++k) {
          sum[g][k] = _mm512_dpwssd_epi32(sum[g][k], codes[k], wp);
          asm("" : "+v"(sum[g][k]));
        }
      }
    }
  }

  // Lane j of u holds byte b = j < 8 ? j : j + 8 (columns 2b, 2b + 1); of v, b + 8. Pairing lo
  // and hi lanes gives columns [0-3 | 8-11 | 32-35 | 40-43] and [4-7 | 12-15 | 36-39 | 44-47]
  // (u), 16 more (v); one two-source qword permute per 16 columns puts them in order.
  const __m512i first = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
  const __m512i second = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
  for (std::size_t g = 0; g < G; ++g) {
    const __m512 sg = _mm512_set1_ps(s[g]);
    float* out = acc + g * n + c0;
    for (std::size_t h = 0; h < 2; ++h) {  // u: columns 0-15, 32-47; v: 16-31, 48-63
      const __m512i p = _mm512_unpacklo_epi32(sum[g][2 * h], sum[g][2 * h + 1]);
      const __m512i q = _mm512_unpackhi_epi32(sum[g][2 * h], sum[g][2 * h + 1]);
      const __m512i lo = _mm512_permutex2var_epi64(p, first, q);
      const __m512i hi = _mm512_permutex2var_epi64(p, second, q);
      float* o = out + 16 * h;
      _mm512_storeu_ps(o, _mm512_fmadd_ps(sg, _mm512_cvtepi32_ps(lo), _mm512_loadu_ps(o)));
      _mm512_storeu_ps(o + 32,
                       _mm512_fmadd_ps(sg, _mm512_cvtepi32_ps(hi), _mm512_loadu_ps(o + 32)));
    }
  }
}

template <std::size_t G, class Arch, class Rows>
QCODEC_W16_VNNI_TARGET void axpys4_group(const Rows& row_at, std::size_t rows, std::size_t n,
                                         const float* w, std::size_t ldw, float* acc) noexcept {
  alignas(64) std::int16_t wq[G * (max_w16_rows + 2)];
  float s[G];
  weights16<G, Arch>(w, ldw, rows, wq, s);
  for (std::size_t c0 = 0; c0 < n; c0 += 64)
    axpys4_columns64<G, Arch>(row_at, rows, c0, wq, s, n, acc);
}

// The sums with VNNI for any rows: 4-bit rows of a multiple of 64 codes; the generic sums
// otherwise.
template <class Arch, class Rows>
void axpys_vnni(const Rows& row_at, std::size_t rows, std::size_t n, unsigned bits, const float* w,
                std::size_t ldw, std::size_t nq, float* acc) noexcept {
  if (bits != 4 || n % 64 != 0 || rows > max_w16_rows)  // (past it, the weights' buffer)
    return axpys_generic<Arch>(row_at, rows, n, bits, w, ldw, nq, acc);
  std::size_t g = 0;
  for (; g + 4 <= nq; g += 4) axpys4_group<4, Arch>(row_at, rows, n, w + g * ldw, ldw, acc + g * n);
  switch (nq - g) {
    case 1:
      return axpys4_group<1, Arch>(row_at, rows, n, w + g * ldw, ldw, acc + g * n);
    case 2:
      return axpys4_group<2, Arch>(row_at, rows, n, w + g * ldw, ldw, acc + g * n);
    case 3:
      return axpys4_group<3, Arch>(row_at, rows, n, w + g * ldw, ldw, acc + g * n);
    default:
      return;
  }
}

}  // namespace detail::int16_axpys

/// code_row_axpys_w16 with AVX-512 VNNI (only on CPUs that have it): 4-bit rows of a multiple of
/// 64 codes; the generic sums otherwise.
template <class Arch>
void code_row_axpys_w16_vnni(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                             std::size_t n, unsigned bits, const float* w, std::size_t ldw,
                             std::size_t nq, float* acc) noexcept {
  namespace d = detail::int16_axpys;
  d::axpys_vnni<Arch>(d::strided_rows<Arch>{in, stride}, rows, n, bits, w, ldw, nq, acc);
}
#undef QCODEC_W16_VNNI_INLINE
#undef QCODEC_W16_VNNI_TARGET
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// The entries of a kernel table (see kernel_table.hpp).
struct int16_axpy_kernels {
  void (*code_row_axpys_w16)(const std::uint8_t*, std::size_t, std::size_t, std::size_t, unsigned,
                             const float*, std::size_t, std::size_t, float*) noexcept;
};

template <class Arch>
int16_axpy_kernels make_int16_axpy_kernels() noexcept {
#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
  if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
    if (cpu_supports_avx512_vnni()) return {&code_row_axpys_w16_vnni<Arch>};
  }
#endif
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::code_row_axpys_w16};
  } else {
#if XSIMD_WITH_AVX2 && defined(__FMA__)
    if constexpr (std::is_base_of_v<xsimd::avx2, Arch> ||
                  std::is_base_of_v<xsimd::avx512bw, Arch>) {
      return {&code_row_axpys_w16_avx2<Arch>};
    }
#endif
    return {&detail::int16_axpys::code_row_axpys_w16_generic<Arch>};
  }
}

}  // namespace simd
}  // namespace qcodec
