#pragma once
// Rows of codes scored against a 15-bit integer form of the query vectors: code_row_dots_i8's
// (int8_dots.hpp) finer sibling, for key codecs whose scaled queries have channels of very
// different sizes (kv::per_channel: q_c times the channel's scale), where int8 rounding costs
// accuracy; and kv::per_channel's scores on an int8 form too, for those who trade that accuracy
// for time (channel_unit_dots_i8 below).
//
//   code_row_dots_i16  out[g * ld + r] = s_g * float(sum_i code_r[i] * q15_g[i])
//
// with rows as in rows.hpp (n codes of `bits` bits, 1..8, packed LSB-first, `stride` bytes
// apart) and, for each vector x_g[i] = q[g * n + i] * c[i] (float products; c, per-element
// scales such as per_channel's, may be null for ones):
//   m = max_i |x_g[i]|,   inv = 16383 / m rounded toward zero,   s_g = m / 16383,
//   q15_g[i] = round-half-even(x_g[i] * inv)         (|q15| <= 16383 in any rounding mode)
// A vector holding a NaN or an infinity scores NaN; a zero vector, or one so small that inv
// overflows, scores zero. The sum is an exact integer (|sum| <= 255 * 16383 * n: n up to 514),
// converted to float once and scaled once, so every target returns the oracle's bits.
//
//   channel_unit_dots_i16  out[g * ld + u * rows + t] = code_row_dots_i16's score of row t of
//                          unit u (c = the unit's scales) + sum_i q_g[i] * offset_u[i]
//
// scores kv::per_channel's units, `unit_bytes` apart: n binary16 (scale, offset) pairs, then
// `rows` rows of codes (ceil(n * bits / 8) bytes each), plain or, when `blocked` (allowed for
// blockable_rows below), blocked; n <= 1024. `blocks_rows` in the table says whether the fastest
// form reads blocked rows faster (the VNNI one: no transposes), which kv::per_channel follows. The
// constant term is summed in one order on every target (offset_dot below) and added to the rounded
// product (unfused.hpp), so this kernel too returns the oracle's bits. Fused for 4-bit codes and
// blocked 2-bit codes with VNNI (the pairs converted in registers once for up to four query
// vectors, whose forms take one division, the constant added as the scores are stored), it replaces
// per unit a pair conversion, a float row kernel for the constants and a pass adding them.
//
//   channel_unit_dots_i8   the same on the int8 form of the products: grid 127 for 16383 above
//                          (|q8| <= 127, so x_g[i] moves by up to m / 254, not m / 32766), for
//                          kv::per_channel<..., query_format::i8>
//
// With AVX-512 VNNI and 4-bit codes, 16 rows are scored at once with one row per 32-bit lane:
// an in-register transpose gives each lane four codes of its row, and vpdpbusd multiplies them
// by four bytes of the query, broadcast. q15 = 128 hi + lo (hi signed, lo in [0, 127]) takes two
// such products into two accumulators, combined once at the end; there is no horizontal sum.
// q8 is one such product, and its split packs one byte per element instead of two. Blocked 2-bit
// codes are scored alike: a lane's dword holds 16 codes of its row, four to a byte, and each of the
// four positions in turn is one vpdpbusd operand (4-bit codes: two). So per row they take the same
// multiply-adds as 4-bit codes and half the loads. KIVI-2's key scores (BM_integer_dots/units/2/32
// at head_dim 64 and 128, against plain rows and the vpmaddwd kernel below) took 0.36-0.42x the
// time, 0.24-0.27x with int8 queries.
// Without VNNI (and for plain 2-bit and 8-bit codes), AVX2 multiplies 16-bit codes by the 16-bit
// q15 with vpmaddwd, and 4-bit codes by q8 as bytes with vpmaddubsw. Elsewhere 2- and 4-bit rows go
// through the float row kernel in chunks of 64 elements, whose sums (<= 15 * 16383 * 64 < 2^24)
// are exact in float; other widths take a generic loop.

#include <qcodec/simd/affine.hpp>
#include <qcodec/simd/int8_dots.hpp>
#include <qcodec/simd/prefetch.hpp>
#include <qcodec/simd/rows.hpp>
#include <qcodec/simd/unfused.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace qcodec {

namespace simd {

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace detail::int16_dots {

inline constexpr float grid15 = 16383.0f;
// channel_unit_dots_i8's: the int8 form of int8_dots.hpp, of the products.
inline constexpr float grid8 = 127.0f;
// The grid of the 15-bit form (Wide) or of the int8 one.
constexpr float grid_of(bool wide) noexcept { return wide ? grid15 : grid8; }
// Longest row the vector paths take (the query's integer copy lives on the stack).
inline constexpr std::size_t max_n = 512;
// Longest row whose integer query the generic loop keeps on the stack (per_channel's largest).
inline constexpr std::size_t generic_max_n = 1024;

// Any bits, any n: the definition (the oracle is this loop on simd::scalar).
template <class Arch>
void dots_generic(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                  unsigned bits, const float* q, const float* c, std::size_t nq, float* out,
                  std::size_t ld, float grid) noexcept {
  for (std::size_t g = 0; g < nq; ++g) {
    const float* qg = q + g * n;
    const auto x = [&](std::size_t i) { return c != nullptr ? qg[i] * c[i] : qg[i]; };
    float m = 0.0f;
    bool finite = true;
    for (std::size_t i = 0; i < n; ++i) {
      finite = finite && std::isfinite(x(i));
      m = std::fmax(m, std::fabs(x(i)));
    }
    const int8_dots::int8_form f = int8_dots::form_from<Arch>(m, finite, grid);
    const auto q15_at = [&](std::size_t i) {
      return f.inv == 0.0f ? 0 : static_cast<std::int32_t>(std::nearbyint(x(i) * f.inv));
    };
    // Rounded once per vector when it fits the stack (every length the codecs use), not per row.
    std::int32_t q15[generic_max_n];
    const bool kept = n <= generic_max_n;
    for (std::size_t i = 0; kept && i < n; ++i) q15[i] = q15_at(i);
    for (std::size_t r = 0; r < rows; ++r) {
      const std::uint8_t* row = in + r * stride;
      std::int32_t sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t bit = i * bits;
        std::uint32_t v = std::uint32_t{row[bit / 8]} >> (bit % 8);
        if (bit % 8 + bits > 8) v |= std::uint32_t{row[bit / 8 + 1]} << (8 - bit % 8);
        const auto code = static_cast<std::int32_t>(v & ((1u << bits) - 1));
        sum += code * (kept ? q15[i] : q15_at(i));
      }
      out[g * ld + r] = f.scale * static_cast<float>(sum);
    }
  }
}

// channel_unit_dots_i16's constant term, sum_i q[i] * o[i], in one order on every target: element
// i goes into lane i % 16 by a fused multiply-add (each lane's elements in order, from +0), and
// the 16 lanes are folded by halves (lane l += lane l + 8, then + 4, + 2, + 1), as a 512-bit
// register folds; a narrower target keeps the 16 lanes in two or four registers. (Fused by
// packed::fmadd: xsimd 8.1's fma is two roundings on AVX-512.)
inline constexpr std::size_t offset_lanes = 16;

#if XSIMD_WITH_AVX
// The fold in registers: lanes l and l + 8 already added (fold16), then + 4, + 2, + 1.
template <class Arch>
float fold8(__m256 l8) noexcept {
  const __m128 l4 = _mm_add_ps(_mm256_castps256_ps128(l8), _mm256_extractf128_ps(l8, 1));
  const __m128 l2 = _mm_add_ps(l4, _mm_movehl_ps(l4, l4));
  return _mm_cvtss_f32(_mm_add_ss(l2, _mm_movehdup_ps(l2)));
}
#endif
#if XSIMD_WITH_AVX512DQ
template <class Arch>
float fold16(__m512 lanes) noexcept {
  return fold8<Arch>(
      _mm256_add_ps(_mm512_castps512_ps256(lanes), _mm512_extractf32x8_ps(lanes, 1)));
}
#endif

template <class Arch>
float offset_dot(const float* q, const float* o, std::size_t n) noexcept {
  alignas(64) float lane[offset_lanes] = {};
  std::size_t i = 0;
  if constexpr (!is_scalar_v<Arch>) {
    using F = batch<float, Arch>;
    constexpr std::size_t k = offset_lanes / F::size;
    F acc[k];
    for (F& a : acc) a = F(0.0f);
    for (; i + offset_lanes <= n; i += offset_lanes)
      for (std::size_t j = 0; j < k; ++j)
        acc[j] = packed::fmadd<Arch>(F::load_unaligned(q + i + j * F::size),
                                     F::load_unaligned(o + i + j * F::size), acc[j], Arch{});
    if (i == n) {  // no tail: fold in registers (through memory, a fold cost KIVI-2 5%)
#if XSIMD_WITH_AVX512DQ
      if constexpr (F::size == 16) return fold16<Arch>(acc[0]);
#endif
#if XSIMD_WITH_AVX
      if constexpr (F::size == 8) return fold8<Arch>(acc[0] + acc[1]);
#endif
    }
    for (std::size_t j = 0; j < k; ++j) acc[j].store_aligned(lane + j * F::size);
  }
  for (; i < n; ++i) lane[i % offset_lanes] = std::fma(q[i], o[i], lane[i % offset_lanes]);
  for (std::size_t w = offset_lanes / 2; w >= 1; w /= 2)
    for (std::size_t l = 0; l < w; ++l) lane[l] += lane[l + w];
  return lane[0];
}

// y[i] = y[i] + c for rounded products y (unfused: the add is not merged into their multiply).
template <class Arch>
void add_to_products(float* y, std::size_t n, float c) noexcept {
  std::size_t i = 0;
  if constexpr (!is_scalar_v<Arch>) {
    using F = batch<float, Arch>;
    for (; i + F::size <= n; i += F::size) {
      const typename F::register_type product = F::load_unaligned(y + i);
      (F(unfused<Arch>(product)) + F(c)).store_unaligned(y + i);
    }
  }
  for (; i < n; ++i) y[i] = unfused<Arch>(y[i]) + c;
}

// channel_unit_dots_i16's blocked rows: 2- and 4-bit codes with n a multiple of 64, in units of a
// multiple of 16 rows, may be stored 16 rows to a block, the block's rows interleaved by dwords
// (16 or 8 codes): dword k of row r of the block at byte 64 k + 4 r. The VNNI kernel then loads a
// dword of 16 rows as one register instead of transposing them; other targets would have to
// unblock them (KIVI-4's key scores on AVX2 took 1.2x the time).
template <class Arch>
constexpr bool blockable_rows(unsigned bits, std::size_t n, std::size_t rows) noexcept {
  return (bits == 2 || bits == 4) && n % 64 == 0 && rows % 16 == 0;
}

// The byte of dword k of row r in blocked rows of n codes of `bits` bits (each block 16 rows,
// 2 n bits bytes).
template <class Arch>
constexpr std::size_t blocked_dword(std::size_t n, unsigned bits, std::size_t r,
                                    std::size_t k) noexcept {
  return r / 16 * 2 * n * bits + 64 * k + 4 * (r % 16);
}

// Row r of blocked rows (n codes of `bits` bits each) back in plain order, n bits / 8 bytes at
// `row`.
template <class Arch>
void unblock_row(const std::uint8_t* rows, std::size_t n, unsigned bits, std::size_t r,
                 std::uint8_t* row) noexcept {
  for (std::size_t k = 0; k < n * bits / 32; ++k)
    std::memcpy(row + 4 * k, rows + blocked_dword<Arch>(n, bits, r, k), 4);
}

// unblock_row's inverse: the plain row stored as row r of blocked rows.
template <class Arch>
void block_row(const std::uint8_t* row, std::size_t n, unsigned bits, std::size_t r,
               std::uint8_t* rows) noexcept {
  for (std::size_t k = 0; k < n * bits / 32; ++k)
    std::memcpy(rows + blocked_dword<Arch>(n, bits, r, k), row + 4 * k, 4);
}

// f(rows, stride, r0, rn) for the rows of a unit's codes in plain order: all at once when they
// are not blocked, else unblocked 32 at a time into a buffer (n <= generic_max_n).
template <class Arch, class F>
void with_plain_rows(const std::uint8_t* codes, bool blocked, unsigned bits, std::size_t n,
                     std::size_t rows, F&& f) noexcept {
  const std::size_t row_bytes = (n * bits + 7) / 8;
  if (!blocked) return f(codes, row_bytes, std::size_t{0}, rows);
  constexpr std::size_t chunk = 32;
  alignas(64) std::uint8_t plain[chunk * generic_max_n / 2];
  for (std::size_t r0 = 0; r0 < rows; r0 += chunk) {
    const std::size_t rn = rows - r0 < chunk ? rows - r0 : chunk;
    for (std::size_t r = 0; r < rn; ++r)
      unblock_row<Arch>(codes, n, bits, r0 + r, plain + r * row_bytes);
    f(plain, row_bytes, r0, rn);
  }
}

// channel_unit_dots_i16 (or _i8) as pairs + code_row_dots_i16 (on grid8 for _i8) + constants,
// unit by unit: the portable form (pairs and dots: half_pairs<Arch>, dots_base<Wide, Arch>) and the
// oracle (ref::half_pairs, dots_generic<scalar>) differ only in those two.
template <class Arch, class Pairs, class Dots>
void channel_units_generic(const std::uint8_t* units, std::size_t unit_bytes, std::size_t count,
                           std::size_t rows, std::size_t n, unsigned bits, bool blocked,
                           const float* q, std::size_t nq, float* out, std::size_t ld, Pairs pairs,
                           Dots dots) noexcept {
  float scale[generic_max_n], offset[generic_max_n];
  for (std::size_t u = 0; u < count; ++u) {
    const std::uint8_t* unit = units + u * unit_bytes;
    pairs(unit, 4, n, scale, offset);
    float* ou = out + u * rows;
    with_plain_rows<Arch>(
        unit + 4 * n, blocked, bits, n, rows,
        [&](const std::uint8_t* in, std::size_t stride, std::size_t r0, std::size_t rn) {
          dots(in, stride, rn, n, bits, q, scale, nq, ou + r0, ld);
        });
    for (std::size_t g = 0; g < nq; ++g)
      add_to_products<Arch>(ou + g * ld, rows, offset_dot<Arch>(q + g * n, offset, n));
  }
}

// The products x[i] = q[i] * c[i] (q[i] when c is null), from element i on.
template <class Arch>
batch<float, Arch> products(const float* q, const float* c, std::size_t i) noexcept {
  using F = batch<float, Arch>;
  const F x = F::load_unaligned(q + i);
  return c != nullptr ? x * F::load_unaligned(c + i) : x;
}

// The integer form of the products of one vector (n a multiple of the batch size).
template <class Arch>
int8_dots::int8_form products_form(const float* q, const float* c, std::size_t n,
                                   float grid) noexcept {
  using F = batch<float, Arch>;
  F m(0.0f);
  auto bad = F(0.0f) != F(0.0f);
  for (std::size_t i = 0; i < n; i += F::size) {
    const F x = products<Arch>(q, c, i);
    bad = bad | ~xsimd::isfinite(x);
    m = xsimd::max(m, xsimd::abs(x));
  }
  alignas(64) float lanes[F::size];
  m.store_aligned(lanes);
  float mx = 0.0f;
  for (float v : lanes) mx = mx < v ? v : mx;
  return int8_dots::form_from<Arch>(mx, !xsimd::any(bad), grid);
}

// The integer form of one vector (n a multiple of the batch size, <= max_n): q15 as floats
// (exact), and its scale.
template <class Arch>
int8_dots::int8_form integer_query(const float* q, const float* c, std::size_t n, float grid,
                                   float* q15) noexcept {
  using F = batch<float, Arch>;
  const int8_dots::int8_form f = products_form<Arch>(q, c, n, grid);
  const F inv(f.inv);
  for (std::size_t i = 0; i < n; i += F::size) {
    const F k = f.inv == 0.0f ? F(0.0f) : xsimd::nearbyint(products<Arch>(q, c, i) * inv);
    k.store_unaligned(q15 + i);
  }
  return f;
}

// 2- or 4-bit rows, n a multiple of 64 (<= max_n), through the float row kernel: per 64-element
// chunk the sums are integers below 2^24, so every float operation on them is exact. Up to 4
// vectors per kernel call (the kernel unpacks each row once for all of them).
template <class Arch>
void dots_float_chunks(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                       unsigned bits, const float* q, const float* c, std::size_t nq, float* out,
                       std::size_t ld, float grid) noexcept {
  constexpr std::size_t chunk = 64, block = 64, heads = 4;
  float q15[heads * max_n], chunk_q[heads * chunk], part[heads * block], scale[heads];
  std::int32_t sums[heads * block];
  for (std::size_t g0 = 0; g0 < nq; g0 += heads) {
    const std::size_t gn = nq - g0 < heads ? nq - g0 : heads;
    for (std::size_t g = 0; g < gn; ++g)
      scale[g] = integer_query<Arch>(q + (g0 + g) * n, c, n, grid, q15 + g * n).scale;
    for (std::size_t r0 = 0; r0 < rows; r0 += block) {
      const std::size_t rn = rows - r0 < block ? rows - r0 : block;
      for (std::size_t i = 0; i < gn * block; ++i) sums[i] = 0;
      for (std::size_t i = 0; i < n; i += chunk) {
        const float* qc = q15;  // [gn][chunk]: the vectors themselves when n == chunk
        if (n != chunk) {
          for (std::size_t g = 0; g < gn; ++g)
            std::memcpy(chunk_q + g * chunk, q15 + g * n + i, chunk * sizeof(float));
          qc = chunk_q;
        }
        code_row_dots<Arch>(in + r0 * stride + i * bits / 8, stride, rn, chunk, bits, qc, gn, part,
                            block);
        for (std::size_t g = 0; g < gn; ++g)
          for (std::size_t r = 0; r < rn; ++r)
            sums[g * block + r] += static_cast<std::int32_t>(part[g * block + r]);
      }
      for (std::size_t g = 0; g < gn; ++g)
        for (std::size_t r = 0; r < rn; ++r)
          out[(g0 + g) * ld + r0 + r] = scale[g] * static_cast<float>(sums[g * block + r]);
    }
  }
}

#if XSIMD_WITH_AVX2
// AVX2 (and AVX-512 without VNNI; 2-bit rows and 4-bit rows on the int8 grid further below,
// 2-bit rows with VNNI too), 4- and 8-bit rows, n a multiple of 64: 16-bit codes times 16-bit q15
// with vpmaddwd (pair sums <= 2 * 255 * 16383, no overflow), 64 elements of a row per step. 4 bits:
// a row's 16 words w each hold the codes of elements 4w .. 4w + 3, which shifts turn into four
// vectors of 16-bit codes; the query is stored to match (split_words). 8 bits: 64 bytes
// zero-extended, the query in natural order (natural_words). Against the float chunks above: no
// float conversion of the codes, no float form of the query to convert twice, and half the multiply
// instructions. Instructions of KIVI-4's key scores in a decode step at 16k tokens
// (callgrind): 21.1M -> 11.7M at head_dim 64, 40.1M -> 20.8M at 128.

// The q15 of products [i, i + 8) (as products() forms them) in int32 lanes, rounded half to
// even. Intrinsics, not products<xsimd::avx2>: that one instantiation would be shared by the
// AVX2 and AVX-512 objects, and the linker could keep the copy compiled for AVX-512.
template <class Arch>
__m256i q15_lanes(const float* q, const float* c, std::size_t i, __m256 inv) noexcept {
  const __m256 x = _mm256_loadu_ps(q + i);
  const __m256 p = c != nullptr ? _mm256_mul_ps(x, _mm256_loadu_ps(c + i)) : x;
  return _mm256_cvtps_epi32(_mm256_mul_ps(p, inv));
}

// The (scale, inv) of G <= 4 vectors' products, those of products_form + form_from bit for bit,
// found together: the vectors' maxima side by side and folded into one register, then form_from
// for each. kv::per_channel scores one unit of tokens (KIVI: 32) per call, so this latency counts
// once per unit: found one vector at a time, through memory, it was about twice as long
// (BM_integer_dots/i16).
template <std::size_t G, class Arch>
void query_forms(const float* q, const float* c, std::size_t n, float grid, float* scale,
                 float* inv) noexcept {
  static_assert(G >= 1 && G <= 4);
  const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256 largest = _mm256_set1_ps(std::numeric_limits<float>::max());
  __m256 mg[G], not_finite[G];
  QCODEC_UNROLL_REGISTERS
  for (std::size_t g = 0; g < G; ++g) mg[g] = not_finite[g] = _mm256_setzero_ps();
  for (std::size_t i = 0; i < n; i += 8) {
    // Without scales the products are q itself: q * 1 is exact.
    const __m256 ci = c != nullptr ? _mm256_loadu_ps(c + i) : _mm256_set1_ps(1.0f);
    QCODEC_UNROLL_REGISTERS
    for (std::size_t g = 0; g < G; ++g) {  // the vectors side by side: G chains, not one
      const __m256 a = _mm256_and_ps(_mm256_mul_ps(_mm256_loadu_ps(q + g * n + i), ci), magnitude);
      // |p| > FLT_MAX or unordered: an infinity or a NaN (in any rounding mode, unlike p - p).
      not_finite[g] = _mm256_or_ps(not_finite[g], _mm256_cmp_ps(a, largest, _CMP_NLE_UQ));
      mg[g] = _mm256_max_ps(mg[g], a);
    }
  }
  __m128 m[4] = {_mm_set1_ps(1.0f), _mm_set1_ps(1.0f), _mm_set1_ps(1.0f), _mm_set1_ps(1.0f)};
  bool finite[G];
  QCODEC_UNROLL_REGISTERS
  for (std::size_t g = 0; g < G; ++g) {
    m[g] = _mm_max_ps(_mm256_castps256_ps128(mg[g]), _mm256_extractf128_ps(mg[g], 1));
    finite[g] = _mm256_testz_si256(_mm256_castps_si256(not_finite[g]),
                                   _mm256_castps_si256(not_finite[g])) != 0;
  }
  // Lanes (0, 2) and (1, 3) of each vector's maxima, then the two halves: vector g in lane g.
  const __m128 ab = _mm_max_ps(_mm_unpacklo_ps(m[0], m[1]), _mm_unpackhi_ps(m[0], m[1]));
  const __m128 cd = _mm_max_ps(_mm_unpacklo_ps(m[2], m[3]), _mm_unpackhi_ps(m[2], m[3]));
  alignas(16) float maxima[4];
  _mm_store_ps(maxima, _mm_max_ps(_mm_movelh_ps(ab, cd), _mm_movehl_ps(cd, ab)));
  for (std::size_t g = 0; g < G; ++g) {  // independent divisions now, no longer one chain
    const int8_dots::int8_form f = int8_dots::form_from<Arch>(maxima[g], finite[g], grid);
    scale[g] = f.scale;
    inv[g] = f.inv;
  }
}

// q15 of one vector (form_inv: its inverse from query_forms) in the order the rows use it: per 64
// elements i, four vectors of 16 words, vector k holding element i + 4w + k in word w. A
// non-finite vector's NaN products convert to INT_MIN and saturate to -32768, which its NaN
// scale makes moot.
template <class Arch>
void split_words(const float* q, const float* c, std::size_t n, float form_inv,
                 std::int16_t* words) noexcept {
  const __m256 inv = _mm256_set1_ps(form_inv);
  // Per 8 elements 8m .. 8m + 7: (8m + k, 8m + k + 4) as qword k, then 4 x 4 qword transposes.
  const __m256i pairs = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (std::size_t i = 0; i < n; i += 64) {
    __m256i e[2][4];  // e[h][k]: elements i + 32 h + 4 w + k, w = 0..7, as int32
    QCODEC_UNROLL_REGISTERS
    for (std::size_t h = 0; h < 2; ++h) {
      __m256i p[4];
      QCODEC_UNROLL_REGISTERS
      for (std::size_t j = 0; j < 4; ++j) {
        p[j] = _mm256_permutevar8x32_epi32(q15_lanes<Arch>(q, c, i + 32 * h + 8 * j, inv), pairs);
      }
      const __m256i lo01 = _mm256_unpacklo_epi64(p[0], p[1]),
                    hi01 = _mm256_unpackhi_epi64(p[0], p[1]);
      const __m256i lo23 = _mm256_unpacklo_epi64(p[2], p[3]),
                    hi23 = _mm256_unpackhi_epi64(p[2], p[3]);
      e[h][0] = _mm256_permute2x128_si256(lo01, lo23, 0x20);
      e[h][1] = _mm256_permute2x128_si256(hi01, hi23, 0x20);
      e[h][2] = _mm256_permute2x128_si256(lo01, lo23, 0x31);
      e[h][3] = _mm256_permute2x128_si256(hi01, hi23, 0x31);
    }
    QCODEC_UNROLL_REGISTERS
    for (std::size_t k = 0; k < 4; ++k) {
      const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(e[0][k], e[1][k]), 0xD8);
      _mm256_store_si256(reinterpret_cast<__m256i*>(words + i + 16 * k), w);
    }
  }
}

// The 16-bit codes of 64 elements of a row in four vectors. 4 bits: 16 words, element 4w + k
// of the word w in vector k, by shifts only (no mask register: the row kernel below needs every
// register it can get). 8 bits: 64 bytes, element 16k + j in lane j of vector k (zero-extended).
template <unsigned Bits, class Arch>
void word_codes(const std::uint8_t* p, __m256i (&codes)[4]) noexcept {
  static_assert(Bits == 4 || Bits == 8);
  if constexpr (Bits == 8) {
    QCODEC_UNROLL_REGISTERS
    for (std::size_t k = 0; k < 4; ++k)
      codes[k] =
          _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k)));
  } else {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    codes[0] = _mm256_srli_epi16(_mm256_slli_epi16(x, 12), 12);
    codes[1] = _mm256_srli_epi16(_mm256_slli_epi16(x, 8), 12);
    codes[2] = _mm256_srli_epi16(_mm256_slli_epi16(x, 4), 12);
    codes[3] = _mm256_srli_epi16(x, 12);
  }
}

// q15 of one vector in natural order (8-bit rows: word_codes<8>), from query_forms' inverse.
template <class Arch>
void natural_words(const float* q, const float* c, std::size_t n, float form_inv,
                   std::int16_t* words) noexcept {
  const __m256 inv = _mm256_set1_ps(form_inv);
  for (std::size_t i = 0; i < n; i += 16) {
    // packs interleaves the two halves by 128-bit lane; the qword permute restores the order.
    const __m256i w =
        _mm256_packs_epi32(q15_lanes<Arch>(q, c, i, inv), q15_lanes<Arch>(q, c, i + 8, inv));
    _mm256_store_si256(reinterpret_cast<__m256i*>(words + i), _mm256_permute4x64_epi64(w, 0xD8));
  }
}

// Scores of T <= 2 rows for G <= 4 vectors (words: [G][n], in word_codes' element order). Per
// vector, the two rows' sums of a step are folded into one accumulator by vphaddd (per 128-bit
// lane: two partial sums of row 0, then two of row 1), so 4 accumulators and 8 code registers fit
// the 16 of AVX2. N is n when known at compile time (0 otherwise): with a loop of unknown length
// over the row, GCC 12 kept the accumulators in memory (head_dim 64: 77 instructions a row under
// callgrind; 63 with N = 64, the per-call work included).
template <unsigned Bits, std::size_t G, std::size_t T, std::size_t N, class Arch>
void madd_rows(const std::uint8_t* in, std::size_t stride, std::size_t runtime_n,
               const std::int16_t* words, const float* scale, float* out, std::size_t ld) noexcept {
  const std::size_t n = N != 0 ? N : runtime_n;
  __m256i acc[4];
  QCODEC_UNROLL_REGISTERS
  for (std::size_t g = 0; g < 4; ++g) acc[g] = _mm256_setzero_si256();
  QCODEC_UNROLL_REGISTERS
  for (std::size_t i = 0; i < n; i += 64) {
    __m256i codes[2][4];
    word_codes<Bits, Arch>(in + i * Bits / 8, codes[0]);
    if constexpr (T == 2) word_codes<Bits, Arch>(in + stride + i * Bits / 8, codes[1]);
    QCODEC_UNROLL_REGISTERS
    for (std::size_t g = 0; g < G; ++g) {
      const auto* w = reinterpret_cast<const __m256i*>(words + g * n + i);
      __m256i sum[2];
      QCODEC_UNROLL_REGISTERS
      for (std::size_t t = 0; t < 2; ++t) {
        if (t >= T) {
          sum[t] = _mm256_setzero_si256();
          continue;
        }
        const __m256i(&c)[4] = codes[t];
        sum[t] =
            _mm256_add_epi32(_mm256_add_epi32(_mm256_madd_epi16(c[0], _mm256_load_si256(w)),
                                              _mm256_madd_epi16(c[1], _mm256_load_si256(w + 1))),
                             _mm256_add_epi32(_mm256_madd_epi16(c[2], _mm256_load_si256(w + 2)),
                                              _mm256_madd_epi16(c[3], _mm256_load_si256(w + 3))));
      }
      acc[g] = _mm256_add_epi32(acc[g], _mm256_hadd_epi32(sum[0], sum[1]));
    }
  }
  // Per 128-bit lane after one more vphaddd: vector 2j row 0, row 1, vector 2j + 1 row 0, row 1.
  const __m256i a = _mm256_hadd_epi32(acc[0], acc[1]), b = _mm256_hadd_epi32(acc[2], acc[3]);
  const __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                                        _mm256_permute2x128_si256(a, b, 0x31));
  const __m256 s = _mm256_setr_ps(scale[0], scale[0], scale[1], scale[1], scale[2], scale[2],
                                  scale[3], scale[3]);
  alignas(32) float v[8];
  _mm256_store_ps(v, _mm256_mul_ps(s, _mm256_cvtepi32_ps(sums)));
  for (std::size_t g = 0; g < G; ++g)
    for (std::size_t t = 0; t < T; ++t) out[g * ld + t] = v[2 * g + t];
}

// 2-bit rows the same way, two rows per register. A row's 64 elements are 16 bytes, 8 words w
// each holding the codes of elements 8w .. 8w + 7; row t's go in the low 128 bits, row t + 1's
// in the high. Shifts make eight vectors of 16-bit codes, vector k holding element 8w + k in
// word w of both halves; the query is stored to match, once per half (split_words2). KIVI-2's
// key scores in a decode step at 16k tokens (callgrind), against the float query on the float
// row kernel: 22.1M -> 12.9M instructions at head_dim 64, 37.4M -> 21.5M at 128.

// q15 of one vector for 2-bit rows: per 64 elements, eight vectors of 16 words, vector k holding
// element i + 8w + k in words w and w + 8 (w < 8). The 8 x 8 block of int32 is transposed in
// registers (non-finite vectors as in split_words).
template <class Arch>
void split_words2(const float* q, const float* c, std::size_t n, float form_inv,
                  std::int16_t* words) noexcept {
  const __m256 inv = _mm256_set1_ps(form_inv);
  for (std::size_t i = 0; i < n; i += 64) {
    __m256i e[8];  // e[w]: elements i + 8w .. i + 8w + 7
    QCODEC_UNROLL_REGISTERS
    for (std::size_t w = 0; w < 8; ++w) e[w] = q15_lanes<Arch>(q, c, i + 8 * w, inv);
    __m256i t[8], u[8];
    QCODEC_UNROLL_REGISTERS
    for (std::size_t w = 0; w < 8; w += 2) {
      t[w] = _mm256_unpacklo_epi32(e[w], e[w + 1]);
      t[w + 1] = _mm256_unpackhi_epi32(e[w], e[w + 1]);
    }
    QCODEC_UNROLL_REGISTERS
    for (std::size_t w = 0; w < 8; w += 4) {  // u[w + k], per 128-bit half: element k of e[w..]
      u[w] = _mm256_unpacklo_epi64(t[w], t[w + 2]);
      u[w + 1] = _mm256_unpackhi_epi64(t[w], t[w + 2]);
      u[w + 2] = _mm256_unpacklo_epi64(t[w + 1], t[w + 3]);
      u[w + 3] = _mm256_unpackhi_epi64(t[w + 1], t[w + 3]);
    }
    // Element k of all 8 vectors e (from the low halves of u[k], u[k + 4]; element k + 4 from
    // the high halves), stored as words twice.
    const auto store = [&](std::size_t k, __m256i v) {
      const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(v, v), 0x88);
      _mm256_store_si256(reinterpret_cast<__m256i*>(words + 2 * i + 16 * k), w);
    };
    QCODEC_UNROLL_REGISTERS
    for (std::size_t k = 0; k < 4; ++k) {
      store(k, _mm256_permute2x128_si256(u[k], u[k + 4], 0x20));
      store(k + 4, _mm256_permute2x128_si256(u[k], u[k + 4], 0x31));
    }
  }
}

// An empty asm that takes v in a register and gives it back: additions before it cannot move
// after it. Integer additions are associative, and GCC 12 regrouped the 32 products of
// madd_rows2's step at head_dim 64 so as to compute them all first: about 40 spills and reloads
// per two rows, about 10 with the barrier. It also copied row_blocks' sums at every step and kept
// scale_unit's in memory, without one.
template <class V>
inline void in_order(V& v) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  asm("" : "+v"(v));
#else
  (void)v;
#endif
}

// 16 bytes of a row in the low 128 bits and those of the next row (zeros when T == 1) in the high
// ones, for the kernels below that score two rows per register.
template <std::size_t T, class Arch>
__m256i row_pair(const std::uint8_t* row, std::size_t stride) noexcept {
  const __m128i row0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row));
  const __m128i row1 = T == 2 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + stride))
                              : _mm_setzero_si128();
  return _mm256_inserti128_si256(_mm256_castsi128_si256(row0), row1, 1);
}

// The scores of T <= 2 rows for G <= 4 vectors from acc[g], row 0 in the low 128 bits and row 1
// in the high ones: per 128-bit half after two vphaddd, the sums of vectors 0..3.
template <std::size_t G, std::size_t T, class Arch>
void store_row_pairs(const __m256i (&acc)[4], const float* scale, float* out,
                     std::size_t ld) noexcept {
  const __m256i sums =
      _mm256_hadd_epi32(_mm256_hadd_epi32(acc[0], acc[1]), _mm256_hadd_epi32(acc[2], acc[3]));
  const __m256 s = _mm256_setr_ps(scale[0], scale[1], scale[2], scale[3], scale[0], scale[1],
                                  scale[2], scale[3]);
  alignas(32) float v[8];
  _mm256_store_ps(v, _mm256_mul_ps(s, _mm256_cvtepi32_ps(sums)));
  for (std::size_t g = 0; g < G; ++g)
    for (std::size_t t = 0; t < T; ++t) out[g * ld + t] = v[4 * t + g];
}

// Scores of T <= 2 rows of 2-bit codes for G <= 4 vectors (words: [G][2n], split_words2).
template <std::size_t G, std::size_t T, std::size_t N, class Arch>
void madd_rows2(const std::uint8_t* in, std::size_t stride, std::size_t runtime_n,
                const std::int16_t* words, const float* scale, float* out,
                std::size_t ld) noexcept {
  const std::size_t n = N != 0 ? N : runtime_n;
  __m256i acc[4];
  QCODEC_UNROLL_REGISTERS
  for (std::size_t g = 0; g < 4; ++g) acc[g] = _mm256_setzero_si256();
  QCODEC_UNROLL_REGISTERS
  for (std::size_t i = 0; i < n; i += 64) {
    const __m256i x = row_pair<T, Arch>(in + i / 4, stride);
    // One vector of codes at a time, for every query vector: 7 registers live.
    QCODEC_UNROLL_REGISTERS
    for (std::size_t k = 0; k < 8; ++k) {
      const __m256i codes =
          _mm256_srli_epi16(k == 7 ? x : _mm256_slli_epi16(x, static_cast<int>(14 - 2 * k)), 14);
      QCODEC_UNROLL_REGISTERS
      for (std::size_t g = 0; g < G; ++g) {
        const auto* w = reinterpret_cast<const __m256i*>(words + g * 2 * n + 2 * i + 16 * k);
        acc[g] = _mm256_add_epi32(acc[g], _mm256_madd_epi16(codes, _mm256_load_si256(w)));
        in_order(acc[g]);
      }
    }
  }
  store_row_pairs<G, T, Arch>(acc, scale, out, ld);
}

// The int8 form (grid8) of 4-bit rows without VNNI: vpmaddubsw multiplies a row's codes (u8) by
// the query's bytes (s8) and adds pairs, where the 15-bit form's vpmaddwd takes words. Per 32
// elements a row's 16 bytes give the even elements (low nibbles) and the odd ones (high), and the
// query is split alike (split_bytes4); a register holds two rows, one per 128-bit half, so that
// two vphaddd give both rows' scores. |two products| <= 2 * 15 * 128 (128: the bytes of a vector
// that is not finite, whose scores are NaN anyway), so the pairs' sums and the sum of the even and
// odd ones (<= 7680) fit 16 bits without saturating.

// q8 of one vector for 4-bit rows: per 32 elements, the bytes of the 16 even elements, then of
// the 16 odd ones (non-finite vectors as in split_words: inv == 0, NaN products, whatever bytes).
template <class Arch>
void split_bytes4(const float* q, const float* c, std::size_t n, float form_inv,
                  std::int8_t* bytes) noexcept {
  const __m256 inv = _mm256_set1_ps(form_inv);
  // The packs below leave dword 4L + k holding lanes 4L..4L+3 of e[k]; this puts it at dword
  // 2k + L, in element order.
  const __m256i dwords = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  // In each 128-bit lane: the even bytes, then the odd ones.
  const __m256i deal = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2,
                                        4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  for (std::size_t i = 0; i < n; i += 32) {
    __m256i e[4];
    QCODEC_UNROLL_REGISTERS
    for (std::size_t k = 0; k < 4; ++k) e[k] = q15_lanes<Arch>(q, c, i + 8 * k, inv);
    const __m256i b =
        _mm256_packs_epi16(_mm256_packs_epi32(e[0], e[1]), _mm256_packs_epi32(e[2], e[3]));
    const __m256i dealt = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(b, dwords), deal);
    _mm256_store_si256(reinterpret_cast<__m256i*>(bytes + i),
                       _mm256_permute4x64_epi64(dealt, 0xD8));
  }
}

// Scores of T <= 2 rows of 4-bit codes for G <= 4 vectors (bytes: [G][n], split_bytes4).
template <std::size_t G, std::size_t T, std::size_t N, class Arch>
void maddubs_rows4(const std::uint8_t* in, std::size_t stride, std::size_t runtime_n,
                   const std::int8_t* bytes, const float* scale, float* out,
                   std::size_t ld) noexcept {
  const std::size_t n = N != 0 ? N : runtime_n;
  const __m256i low4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
  __m256i acc[4];
  QCODEC_UNROLL_REGISTERS
  for (std::size_t g = 0; g < 4; ++g) acc[g] = _mm256_setzero_si256();
  QCODEC_UNROLL_REGISTERS
  for (std::size_t i = 0; i < n; i += 32) {
    const __m256i x = row_pair<T, Arch>(in + i / 2, stride);
    const __m256i even = _mm256_and_si256(x, low4);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
    QCODEC_UNROLL_REGISTERS
    for (std::size_t g = 0; g < G; ++g) {
      const auto* b = reinterpret_cast<const __m128i*>(bytes + g * n + i);
      const __m256i pairs =
          _mm256_add_epi16(_mm256_maddubs_epi16(even, _mm256_broadcastsi128_si256(b[0])),
                           _mm256_maddubs_epi16(odd, _mm256_broadcastsi128_si256(b[1])));
      acc[g] = _mm256_add_epi32(acc[g], _mm256_madd_epi16(pairs, ones));
    }
  }
  store_row_pairs<G, T, Arch>(acc, scale, out, ld);
}

// Bits = 2, 4 or 8, n a multiple of 64 (<= max_n); Bytes: 4-bit rows on the int8 grid
// (maddubs_rows4).
template <unsigned Bits, bool Bytes, class Arch>
void dots_madd(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
               const float* q, const float* c, std::size_t nq, float* out, std::size_t ld,
               float grid) noexcept {
  static_assert((Bits == 2 || Bits == 4 || Bits == 8) && (!Bytes || Bits == 4));
  constexpr std::size_t spread = Bits == 2 ? 2 : 1;  // words of query per element
  alignas(32) std::int16_t words[4 * spread * max_n];
  std::int8_t* bytes = reinterpret_cast<std::int8_t*>(words);  // Bytes: [4][n]
  for (std::size_t g0 = 0; g0 < nq; g0 += 4) {
    rows::with_group(nq - g0, [&](auto group) {
      constexpr std::size_t G = decltype(group)::value;
      float scale[4] = {}, inv[4];
      query_forms<G, Arch>(q + g0 * n, c, n, grid, scale, inv);
      for (std::size_t g = 0; g < G; ++g) {
        const float* qg = q + (g0 + g) * n;
        std::int16_t* wg = words + g * spread * n;
        if constexpr (Bytes) {
          split_bytes4<Arch>(qg, c, n, inv[g], bytes + g * n);
        } else if constexpr (Bits == 2) {
          split_words2<Arch>(qg, c, n, inv[g], wg);
        } else if constexpr (Bits == 4) {
          split_words<Arch>(qg, c, n, inv[g], wg);
        } else {
          natural_words<Arch>(qg, c, n, inv[g], wg);
        }
      }
      float* og = out + g0 * ld;
      const auto run = [&](auto length) {
        constexpr std::size_t N = decltype(length)::value;
        const auto step = [&](auto rows_now, std::size_t r) {
          constexpr std::size_t T = decltype(rows_now)::value;
          if constexpr (Bytes) {
            maddubs_rows4<G, T, N, Arch>(in + r * stride, stride, n, bytes, scale, og + r, ld);
          } else if constexpr (Bits == 2) {
            madd_rows2<G, T, N, Arch>(in + r * stride, stride, n, words, scale, og + r, ld);
          } else {
            madd_rows<Bits, G, T, N, Arch>(in + r * stride, stride, n, words, scale, og + r, ld);
          }
        };
        std::size_t r = 0;
        for (; r + 2 <= rows; r += 2) {
          _mm_prefetch(reinterpret_cast<const char*>(in + (r + 24) * stride), _MM_HINT_T0);
          step(std::integral_constant<std::size_t, 2>{}, r);
        }
        if (r < rows) step(std::integral_constant<std::size_t, 1>{}, r);
      };
      if (n == 64) return run(std::integral_constant<std::size_t, 64>{});
      if (n == 128) return run(std::integral_constant<std::size_t, 128>{});
      run(std::integral_constant<std::size_t, 0>{});
    });
  }
}
#endif  // XSIMD_WITH_AVX2

#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
#define QCODEC_INT16_VNNI_TARGET __attribute__((target("avx512vnni")))
#define QCODEC_INT16_VNNI_INLINE [[gnu::always_inline]] inline QCODEC_INT16_VNNI_TARGET

// The bytes of 64 elements' q15 (x, 16 elements each, in order, times inv, converted), into
// hi = q15 >> 7 and lo = q15 & 127 at hi64, lo64, in the order row_blocks reads them: for 4-bit
// codes, per 8 elements 8j..8j+7, the dword of elements 8j, +2, +4, +6 (the low nibbles of a
// row's bytes 4j..4j+3), then that of 8j+1, +3, +5, +7 (the high nibbles); for 2-bit codes, per 16
// elements 16j..16j+15, the dwords of elements 16j + p, +4, +8, +12 (the codes at bits 2p of a
// row's bytes 4j..4j+3) for p = 0..3. The bytes in order, then one byte shuffle (cheaper than a
// permute of every vector of products before). Words first (|q15| <= 16383 fits; the INT_MIN of a
// NaN, inv == 0 for a vector that is not finite, saturates, and that vector's NaN scale makes its
// scores NaN whatever the bytes), then the bytes, which need no saturation but that NaN's: packs
// rather than a byte conversion of each 16 (vpmovdb, slow on AMD: 1.04-1.09x the time of a call for
// 32 rows and 4 vectors, BM_integer_dots/i16/4/32). Not Wide: x times inv is q8, whose bytes go to
// hi64 alone.
template <unsigned Bits, bool Wide, class Arch>
[[gnu::always_inline]] inline void split64(const __m512 (&x)[4], __m512 inv, std::int32_t* hi64,
                                           std::int32_t* lo64) noexcept {
  static_assert(Bits == 2 || Bits == 4);
  __m512i k[4];
  for (std::size_t p = 0; p < 4; ++p) k[p] = _mm512_cvtps_epi32(_mm512_mul_ps(x[p], inv));
  // The packs leave dword 4L + p of the result holding lanes 4L..4L+3 of k[p]; this puts it at
  // dword 4p + L, where the byte conversion of each k[p] in turn would have put it.
  const __m512i dwords = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  // 4 bits: in each 8 bytes, the even elements, then the odd ones. 2 bits: in each 16 bytes, the
  // elements 0 mod 4, then 1 mod 4, 2 mod 4 and 3 mod 4.
  const __m512i positions = Bits == 4
                                ? _mm512_set4_epi32(0x0F0D0B09, 0x0E0C0A08, 0x07050301, 0x06040200)
                                : _mm512_set4_epi32(0x0F0B0703, 0x0E0A0602, 0x0D090501, 0x0C080400);
  const auto store = [&](std::int32_t* to, __m512i bytes) {
    _mm512_storeu_si512(to,
                        _mm512_shuffle_epi8(_mm512_permutexvar_epi32(dwords, bytes), positions));
  };
  const __m512i w01 = _mm512_packs_epi32(k[0], k[1]), w23 = _mm512_packs_epi32(k[2], k[3]);
  if constexpr (!Wide) {  // q8 itself, in hi64
    store(hi64, _mm512_packs_epi16(w01, w23));
    return;
  }
  const __m512i low7 = _mm512_set1_epi16(127);
  const __m512i h = _mm512_packs_epi16(_mm512_srai_epi16(w01, 7), _mm512_srai_epi16(w23, 7));
  const __m512i l = _mm512_packs_epi16(_mm512_and_si512(w01, low7), _mm512_and_si512(w23, low7));
  store(hi64, h);
  store(lo64, l);
}

// The vectors' q15 (gn <= 4 of them, x_g = q_g c) split into bytes hi and lo (split64); vector
// g's bytes start at hi + g * max_n / 4. The vectors' maxima are found first, so that their
// divisions overlap.
template <class Arch>
void split_queries(const float* q, const float* c, std::size_t n, std::size_t gn, std::int32_t* hi,
                   std::int32_t* lo, float* scale) noexcept {
  const auto load = [&](const float* qg, std::size_t i) {
    const __m512 x = _mm512_loadu_ps(qg + i);
    return c != nullptr ? _mm512_mul_ps(x, _mm512_loadu_ps(c + i)) : x;
  };
  float m[4];
  bool finite[4];
  for (std::size_t g = 0; g < gn; ++g) {
    __m512 mg = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (std::size_t i = 0; i < n; i += 16) {
      const __m512 x = load(q + g * n, i);
      bad |= _mm512_fpclass_ps_mask(x, 0x99);  // NaNs and infinities
      mg = _mm512_max_ps(mg, _mm512_abs_ps(x));
    }
    m[g] = _mm512_reduce_max_ps(mg);
    finite[g] = bad == 0;
  }
  for (std::size_t g = 0; g < gn; ++g) {
    const int8_dots::int8_form f = int8_dots::form_from<Arch>(m[g], finite[g], grid15);
    scale[g] = f.scale;
    for (std::size_t i = 0; i < n; i += 64) {
      __m512 x[4];
      for (std::size_t p = 0; p < 4; ++p) x[p] = load(q + g * n, i + 16 * p);
      split64<4, true, Arch>(x, _mm512_set1_ps(f.inv), hi + g * (max_n / 4) + i / 4,
                             lo + g * (max_n / 4) + i / 4);
    }
  }
}

// Lanes 0-3 (and again in each 128-bit lane): the unsigned maxima of the lanes of v[0..3].
template <class Arch>
[[gnu::always_inline]] inline __m512i max4(const __m512i (&v)[4]) noexcept {
  const auto max_of = [](__m512i x, __m512i y) { return _mm512_max_epu32(x, y); };
  // In each 128-bit lane, pairs of lanes folded: (v0, v1, v0, v1), then (v0, v1, v2, v3); then
  // the 128-bit lanes folded.
  const __m512i t01 = max_of(_mm512_unpacklo_epi32(v[0], v[1]), _mm512_unpackhi_epi32(v[0], v[1]));
  const __m512i t23 = max_of(_mm512_unpacklo_epi32(v[2], v[3]), _mm512_unpackhi_epi32(v[2], v[3]));
  const __m512i t = max_of(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
  const __m512i u = max_of(t, _mm512_shuffle_i32x4(t, t, _MM_SHUFFLE(1, 0, 3, 2)));
  return max_of(u, _mm512_shuffle_i32x4(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
}

// fold16 of each of four vectors, lane g for v[g], in fold16's order (so the same bits): lanes
// l and l + 8 added, then + 4, + 2, + 1, the four vectors together.
template <class Arch>
[[gnu::always_inline]] inline __m128 fold4(const __m512 (&v)[4]) noexcept {
  __m512 t[2];
  for (std::size_t p = 0; p < 2; ++p)  // [v[2p] lanes l + (l + 8) | v[2p + 1]'s], l < 8
    t[p] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0xEE));
  // 128-bit block g: v[g]'s l + (l + 4), l < 4
  const __m512 u =
      _mm512_add_ps(_mm512_shuffle_f32x4(t[0], t[1], 0x88), _mm512_shuffle_f32x4(t[0], t[1], 0xDD));
  const __m512 w = _mm512_add_ps(u, _mm512_shuffle_ps(u, u, 0x4E));  // l + (l + 2), l < 2
  const __m512 f = _mm512_add_ps(w, _mm512_shuffle_ps(w, w, 0xB1));  // lane 0 of each block
  // Lane 0 of blocks 0..3 to lanes 0..3.
  return _mm512_castps512_ps128(
      _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), f));
}

// Dword j (of eight: the 32 bytes of 64 elements) of 16 rows, one row per lane. Registers
// hold two rows (k and k + 4, or k + 4 and k + 8); two unpack stages transpose 4 x 4 blocks
// within 128-bit lanes and a lane shuffle puts rows 0..15 in order.
template <class Arch>
QCODEC_INT16_VNNI_INLINE void transpose16(const std::uint8_t* in, std::size_t stride,
                                          __m512i (&col)[8]) noexcept {
  __m512i x[8], t[8], u[8];
  for (std::size_t k = 0; k < 8; ++k) {
    const std::uint8_t* row = in + (k < 4 ? k : k + 4) * stride;
    x[k] = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 4 * stride)), 1);
  }
  for (std::size_t k = 0; k < 8; k += 2) {
    t[k] = _mm512_unpacklo_epi32(x[k], x[k + 1]);
    t[k + 1] = _mm512_unpackhi_epi32(x[k], x[k + 1]);
  }
  // u[k + a], a < 4: 128-bit lanes dword a of rows k..k+3 (low halves), dword a + 4 of them,
  // then the same of the high halves.
  for (std::size_t k = 0; k < 8; k += 4) {
    u[k] = _mm512_unpacklo_epi64(t[k], t[k + 2]);
    u[k + 1] = _mm512_unpackhi_epi64(t[k], t[k + 2]);
    u[k + 2] = _mm512_unpacklo_epi64(t[k + 1], t[k + 3]);
    u[k + 3] = _mm512_unpackhi_epi64(t[k + 1], t[k + 3]);
  }
  for (std::size_t a = 0; a < 4; ++a) {
    col[a] = _mm512_shuffle_i32x4(u[a], u[a + 4], _MM_SHUFFLE(2, 0, 2, 0));
    col[a + 4] = _mm512_shuffle_i32x4(u[a], u[a + 4], _MM_SHUFFLE(3, 1, 3, 1));
  }
}

// The vpdpbusd operands of one dword of 16 rows' codes (one row per lane): position p holds the
// codes at bits Bits p of each byte (4 bits: elements 8j, +2, +4, +6, then 8j+1, +3, +5, +7;
// 2 bits: elements 16j + p, +4, +8, +12), each alone in its byte. Wide: as the codes. Not Wide: the
// high half of the positions 16 times their codes, in a byte's high nibble (4 bits: where they
// lie, one mask where shifting them down took a shift too, on the pipes vpdpbusd runs on; 2 bits:
// position 3 shifted down by 2 with position 1, so that one shift serves both).
template <unsigned Bits, bool Wide, class Arch>
QCODEC_INT16_VNNI_INLINE void code_operands(__m512i x, __m512i (&codes)[8 / Bits]) noexcept {
  const __m512i mask = _mm512_set1_epi8((1 << Bits) - 1);
  if constexpr (Bits == 4) {
    codes[0] = _mm512_and_si512(x, mask);
    codes[1] =
        Wide ? _mm512_and_si512(_mm512_srli_epi16(x, 4), mask) : _mm512_andnot_si512(mask, x);
  } else if constexpr (Wide) {
    for (unsigned p = 0; p < 4; ++p)
      codes[p] = _mm512_and_si512(p == 0 ? x : _mm512_srli_epi16(x, 2 * p), mask);
  } else {  // (the shift's bits from the byte above land in bits 6 and 7, which no mask keeps)
    const __m512i y = _mm512_srli_epi16(x, 2), high = _mm512_slli_epi16(mask, 4);
    codes[0] = _mm512_and_si512(x, mask);
    codes[1] = _mm512_and_si512(y, mask);
    codes[2] = _mm512_and_si512(x, high);
    codes[3] = _mm512_and_si512(y, high);
  }
}

// Scores of B blocks of 16 rows of 2- or 4-bit codes (B = 1, or 2 for blocked rows; `keep` masks
// the rows of each block to store; plain rows are 4-bit) for G <= 4 split vectors, n a multiple of
// 64: per dword of the rows, its code operands against four bytes of each vector's hi and lo (as
// split64 stores them), broadcast once for the B blocks (a unit's 32 rows take half the broadcasts
// of two calls: 0.93-0.99x the time of a KIVI-4 decode step at 16k and 64k tokens). `add`, when
// not null, holds a term per vector added to its scores (channel_unit_dots_i16's and _i8's
// constants). Not Wide: hi holds q8, one product per dword (channel_unit_dots_i8), and lo is not
// read; the operands of the high half of the positions, 16 times their codes, go into a second sum
// (al) divided by 16 at the end: exactly, as that sum is a multiple of 16 (|sum| <= 16 (2^Bits -
// 1) 128 n). So B blocks run 2BG dependency chains of vpdpbusd.
template <unsigned Bits, std::size_t G, std::size_t B, bool Blocked, bool Wide, class Arch>
QCODEC_INT16_VNNI_INLINE void row_blocks(const std::uint8_t* in, std::size_t stride, std::size_t n,
                                         const std::int32_t* hi, const std::int32_t* lo,
                                         const float* scale, const float* add, float* out,
                                         std::size_t ld, __mmask16 keep) noexcept {
  static_assert(B == 1 || (B == 2 && Blocked));
  static_assert(Bits == 4 || (Bits == 2 && Blocked));
  constexpr std::size_t P = 8 / Bits, dwords = 2 * Bits;  // codes per byte, dwords per 64 codes
  __m512i ah[B][G], al[B][G];
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t g = 0; g < G; ++g) ah[b][g] = al[b][g] = _mm512_setzero_si512();
  for (std::size_t i = 0; i < n; i += 64) {
    __m512i col[8];
    if constexpr (!Blocked) transpose16<Arch>(in + i / 2, stride, col);
    for (std::size_t j = 0; j < dwords; ++j) {
      __m512i codes[B][P];
      for (std::size_t b = 0; b < B; ++b) {
        // Blocked: dword i Bits / 32 + j of block b's 16 rows, one register
        const __m512i x =
            Blocked
                ? _mm512_loadu_si512(in + blocked_dword<Arch>(n, Bits, 16 * b, i * Bits / 32 + j))
                : col[j];
        code_operands<Bits, Wide, Arch>(x, codes[b]);
      }
      const std::size_t e = i / 4 + P * j;  // the query's dwords for this dword of the rows
      for (std::size_t g = 0; g < G; ++g) {
        const std::int32_t* hg = hi + g * (max_n / 4);
        for (std::size_t p = 0; p < P; ++p) {
          const __m512i h = _mm512_set1_epi32(hg[e + p]);
          for (std::size_t b = 0; b < B; ++b) {
            __m512i& sum = !Wide && p >= P / 2 ? al[b][g] : ah[b][g];
            sum = _mm512_dpbusd_epi32(sum, codes[b][p], h);
          }
        }
        for (std::size_t b = 0; b < B; ++b) {
          if constexpr (!Wide) in_order(al[b][g]);
          in_order(ah[b][g]);
        }
        if constexpr (Wide) {
          const std::int32_t* lg = lo + g * (max_n / 4);
          for (std::size_t p = 0; p < P; ++p) {
            const __m512i l = _mm512_set1_epi32(lg[e + p]);
            for (std::size_t b = 0; b < B; ++b)
              al[b][g] = _mm512_dpbusd_epi32(al[b][g], codes[b][p], l);
          }
          for (std::size_t b = 0; b < B; ++b) in_order(al[b][g]);
        }
      }
    }
  }
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t g = 0; g < G; ++g) {
      const __m512i sum = Wide ? _mm512_add_epi32(_mm512_slli_epi32(ah[b][g], 7), al[b][g])
                               : _mm512_add_epi32(ah[b][g], _mm512_srai_epi32(al[b][g], 4));
      __m512 score = _mm512_mul_ps(_mm512_set1_ps(scale[g]), _mm512_cvtepi32_ps(sum));
      if (add != nullptr) score = _mm512_add_ps(unfused<Arch>(score), _mm512_set1_ps(add[g]));
      _mm512_mask_storeu_ps(out + g * ld + 16 * b, keep, score);
    }
}

// (N: as channel_unit_group's.)
template <unsigned Bits, std::size_t G, bool Blocked, bool Wide, class Arch, std::size_t N = 0>
QCODEC_INT16_VNNI_TARGET void vnni_group(const std::uint8_t* in, std::size_t stride,
                                         std::size_t rows, std::size_t runtime_n,
                                         const std::int32_t* hi, const std::int32_t* lo,
                                         const float* scale, const float* add, float* out,
                                         std::size_t ld) noexcept {
  const std::size_t n = N != 0 ? N : runtime_n;
  std::size_t r = 0;
  if constexpr (Blocked) {             // two blocks a call
    for (; r + 32 <= rows; r += 32) {  // (channel_unit_group prefetches the units)
      row_blocks<Bits, G, 2, true, Wide, Arch>(in + r * stride, stride, n, hi, lo, scale, add,
                                               out + r, ld, 0xFFFF);
    }
  }
  for (; r + 16 <= rows; r += 16) {
    prefetch_bytes<Arch>(in + (r + 32) * stride, 16 * stride);
    row_blocks<Bits, G, 1, Blocked, Wide, Arch>(in + r * stride, stride, n, hi, lo, scale, add,
                                                out + r, ld, 0xFFFF);
  }
  if constexpr (Bits == 4) {  // (blocked rows come in whole blocks)
    if (r < rows) {  // the last rows (never blocked), copied after zero rows so that 16 are read
      alignas(64) std::uint8_t tail[16 * max_n / 2];
      const std::size_t rn = rows - r, bytes = n / 2;
      std::memset(tail, 0, 16 * bytes);
      for (std::size_t t = 0; t < rn; ++t)
        std::memcpy(tail + t * bytes, in + (r + t) * stride, bytes);
      row_blocks<4, G, 1, false, Wide, Arch>(tail, bytes, n, hi, lo, scale, add, out + r, ld,
                                             static_cast<__mmask16>((1u << rn) - 1));
    }
  }
}

// 4-bit rows, n a multiple of 64 (<= max_n).
template <class Arch>
QCODEC_INT16_VNNI_TARGET void dots4_vnni(const std::uint8_t* in, std::size_t stride,
                                         std::size_t rows, std::size_t n, const float* q,
                                         const float* c, std::size_t nq, float* out,
                                         std::size_t ld) noexcept {
  alignas(64) std::int32_t hi[4 * max_n / 4], lo[4 * max_n / 4];
  for (std::size_t g0 = 0; g0 < nq; g0 += 4) {
    rows::with_group(nq - g0, [&](auto group) {
      constexpr std::size_t G = decltype(group)::value;
      float scale[4] = {};
      split_queries<Arch>(q + g0 * n, c, n, G, hi, lo, scale);
      vnni_group<4, G, false, true, Arch>(in, stride, rows, n, hi, lo, scale, nullptr,
                                          out + g0 * ld, ld);
    });
  }
}

// A unit's forms for G query vectors: lane g of inv and scale is vector g's, and lane g of
// constants its constant term (offset_dot).
struct split_forms {
  __m512 inv, scale;
  __m128 constants;
};

// The first half of one unit's split of G query vectors (split_queries with c = the unit's
// scales): the products x = q c, stored at x + g * n, their forms and the constant terms. The
// unit's pairs are converted once for all the vectors: a word permute gives the scales, then the
// offsets. The vectors' maxima are reduced together and take one division; the constants are
// folded together too.
template <std::size_t G, bool Wide, class Arch>
QCODEC_INT16_VNNI_INLINE split_forms scale_unit(const std::uint8_t* pairs, const float* q,
                                                std::size_t n, float* x) noexcept {
  // Words of 16 pairs: the scales (the even words), then the offsets (the odd words).
  static constexpr auto words = [] {
    std::array<std::uint16_t, 32> w{};
    for (std::size_t j = 0; j < 32; ++j)
      w[j] = static_cast<std::uint16_t>(j < 16 ? 2 * j : 2 * j - 31);
    return w;
  }();
  const __m512i pair_order = _mm512_loadu_si512(words.data());
  const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
  __m512i bits[4];
  __m512 lanes[4];
  for (std::size_t g = 0; g < 4; ++g) {
    bits[g] = _mm512_setzero_si512();
    lanes[g] = _mm512_setzero_ps();
  }
  for (std::size_t i = 0; i < n; i += 16) {
    const __m512i w = _mm512_permutexvar_epi16(pair_order, _mm512_loadu_si512(pairs + 4 * i));
    const __m512 s = _mm512_cvtph_ps(_mm512_castsi512_si256(w));
    const __m512 o = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(w, 1));
    for (std::size_t g = 0; g < G; ++g) {
      const __m512 qg = _mm512_loadu_ps(q + g * n + i);
      const __m512 xg = _mm512_mul_ps(qg, s);
      _mm512_store_ps(x + g * n + i, xg);
      // The bits of |x| order as |x| does, NaN and infinities above every finite float.
      bits[g] = _mm512_max_epu32(bits[g], _mm512_and_si512(_mm512_castps_si512(xg), magnitude));
      lanes[g] = _mm512_fmadd_ps(qg, o, lanes[g]);
      in_order(bits[g]);
      in_order(lanes[g]);
    }
  }
  split_forms f;
  int8_dots::forms16<Arch>(max4<Arch>(bits), grid_of(Wide), f.inv, f.scale);
  f.constants = fold4<Arch>(lanes);
  return f;
}

// The second half: the G products at x split (split64) with their forms' inv.
template <unsigned Bits, std::size_t G, bool Wide, class Arch>
QCODEC_INT16_VNNI_INLINE void split_scaled(const float* x, std::size_t n, __m512 inv,
                                           std::int32_t* hi, std::int32_t* lo) noexcept {
  for (std::size_t g = 0; g < G; ++g) {
    const __m512 inv_g = _mm512_permutexvar_ps(_mm512_set1_epi32(static_cast<int>(g)), inv);
    for (std::size_t i = 0; i < n; i += 64) {
      __m512 xs[4];
      for (std::size_t p = 0; p < 4; ++p) xs[p] = _mm512_load_ps(x + g * n + i + 16 * p);
      split64<Bits, Wide, Arch>(xs, inv_g, hi + g * (max_n / 4) + i / 4,
                                Wide ? lo + g * (max_n / 4) + i / 4 : nullptr);
    }
  }
}

// The `count` units' scores for G query vectors, unit by unit: each unit's split, then its rows
// scored with the constants added as they are stored. The first half of the next unit's split
// (scale_unit, whose maxima and division are a long dependency chain) comes before this unit's
// second half and scores, so that it runs beside them rather than holding them up: 0.89-0.92x
// the time at head_dim 64 (docs/measurements.md). As each unit is read, the bytes
// unit_prefetch_distance past it are prefetched (simd/prefetch.hpp), and the unit two ahead when
// that lies nearer: the first two rely on whatever read the bytes before them (an unprefetched
// first touch of the pairs stalled the split: 9% of a KIVI-4 decode step at 16k tokens under perf;
// without the units two ahead, KIVI-4 with values read by the row kernels, which prefetch less far,
// took 1.15-1.20x the time at 64k/64). N, when not 0, is n as a constant (for blocked rows,
// head_dim 64 and 128 have their own instantiations): the loops over n then unroll, and their
// offsets are constants (0.91-0.92x the time of a call at either, BM_integer_dots/units8/4).
template <unsigned Bits, std::size_t G, bool Blocked, bool Wide, class Arch, std::size_t N = 0>
QCODEC_INT16_VNNI_TARGET void channel_unit_group(const std::uint8_t* units, std::size_t unit_bytes,
                                                 std::size_t count, std::size_t rows,
                                                 std::size_t runtime_n, const float* q, float* out,
                                                 std::size_t ld) noexcept {
  const std::size_t n = N != 0 ? N : runtime_n;
  if (count == 0) return;
  // Two units' products, the second G n floats after the first (max_n apart, their loads and
  // stores would alias modulo 4 KiB; G n is 1 or 2 KiB at G = 4 and head_dim 64 or 128).
  alignas(64) float x[2 * G * max_n];
  alignas(64) std::int32_t hi[G * max_n / 4], lo[Wide ? G * max_n / 4 : 1];
  alignas(64) float scale[16], constant[4];
  split_forms f = scale_unit<G, Wide, Arch>(units, q, n, x);
  // The unit ahead in two halves, the second before the rows are scored (spread thin, as
  // prefetch.hpp says).
  const line_share halves[2] = {share_of_lines(unit_bytes, 0, 2), share_of_lines(unit_bytes, 1, 2)};
  for (std::size_t u = 0; u < count; ++u) {
    const std::uint8_t* unit = units + u * unit_bytes;
    prefetch_bytes<Arch>(unit + unit_prefetch_distance + halves[0].from, halves[0].bytes);
    if (u + 2 < count && (u + 2) * unit_bytes < unit_prefetch_distance)  // (not reached above)
      prefetch_bytes<Arch>(unit + 2 * unit_bytes, unit_bytes);
    float* const this_x = x + (u % 2) * G * n;
    float* const next_x = x + (1 - u % 2) * G * n;
    const split_forms next =
        u + 1 < count ? scale_unit<G, Wide, Arch>(unit + unit_bytes, q, n, next_x) : f;
    split_scaled<Bits, G, Wide, Arch>(this_x, n, f.inv, hi, lo);
    _mm512_store_ps(scale, f.scale);
    _mm_store_ps(constant, f.constants);
    prefetch_bytes<Arch>(unit + unit_prefetch_distance + halves[1].from, halves[1].bytes);
    vnni_group<Bits, G, Blocked, Wide, Arch, N>(unit + 4 * n, n * Bits / 8, rows, n, hi, lo, scale,
                                                constant, out + u * rows, ld);
    f = next;
  }
}

// kv::per_channel's units of 4-bit codes, or of blocked 2-bit codes (channel_unit_dots_i16; not
// Wide, channel_unit_dots_i8), n a multiple of 64 (<= max_n): the query vectors 4 at a time, each
// four over all the units (channel_unit_group; so chunked prefill reads a call's units, one page,
// once per four vectors).
template <unsigned Bits, bool Wide, class Arch>
QCODEC_INT16_VNNI_TARGET void channel_units_vnni(const std::uint8_t* units, std::size_t unit_bytes,
                                                 std::size_t count, std::size_t rows, std::size_t n,
                                                 bool blocked, const float* q, std::size_t nq,
                                                 float* out, std::size_t ld) noexcept {
  for (std::size_t g0 = 0; g0 < nq; g0 += 4) {
    rows::with_group(nq - g0, [&](auto group) {
      constexpr std::size_t G = decltype(group)::value;
      // (Blocked rows are KIVI's at head_dim a multiple of 64; the common two have their own.)
      auto score = n == 64    ? &channel_unit_group<Bits, G, true, Wide, Arch, 64>
                   : n == 128 ? &channel_unit_group<Bits, G, true, Wide, Arch, 128>
                              : &channel_unit_group<Bits, G, true, Wide, Arch>;
      if constexpr (Bits == 4) {
        if (!blocked) score = &channel_unit_group<4, G, false, Wide, Arch>;
      }
      score(units, unit_bytes, count, rows, n, q + g0 * n, out + g0 * ld, ld);
    });
  }
}
#undef QCODEC_INT16_VNNI_INLINE
#undef QCODEC_INT16_VNNI_TARGET
#endif

// code_row_dots_i16 without instructions beyond Arch's (no VNNI), on the 15-bit grid (Wide) or
// the int8 one.
template <bool Wide, class Arch>
void dots_base(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
               unsigned bits, const float* q, const float* c, std::size_t nq, float* out,
               std::size_t ld) noexcept {
  constexpr float grid = grid_of(Wide);
  const bool whole = n % 64 == 0 && n <= max_n;
#if XSIMD_WITH_AVX2
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch> || std::is_base_of_v<xsimd::avx512bw, Arch>) {
    if (whole && bits == 2)
      return dots_madd<2, false, Arch>(in, stride, rows, n, q, c, nq, out, ld, grid);
    if (whole && bits == 4)  // the int8 form as bytes
      return dots_madd<4, !Wide, Arch>(in, stride, rows, n, q, c, nq, out, ld, grid);
    if (whole && bits == 8)
      return dots_madd<8, false, Arch>(in, stride, rows, n, q, c, nq, out, ld, grid);
  }
#endif
  if (whole && (bits == 2 || bits == 4)) {
    return dots_float_chunks<Arch>(in, stride, rows, n, bits, q, c, nq, out, ld, grid);
  }
  dots_generic<Arch>(in, stride, rows, n, bits, q, c, nq, out, ld, grid);
}

}  // namespace detail::int16_dots

/// code_row_dots_i16 without instructions beyond Arch's (no VNNI).
template <class Arch>
void code_row_dots_i16_base(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                            std::size_t n, unsigned bits, const float* q, const float* c,
                            std::size_t nq, float* out, std::size_t ld) noexcept {
  detail::int16_dots::dots_base<true, Arch>(in, stride, rows, n, bits, q, c, nq, out, ld);
}

/// channel_unit_dots_i16 (Wide) or channel_unit_dots_i8 without instructions beyond Arch's (no
/// VNNI).
template <bool Wide, class Arch>
void channel_unit_dots_base(const std::uint8_t* units, std::size_t unit_bytes, std::size_t count,
                            std::size_t rows, std::size_t n, unsigned bits, bool blocked,
                            const float* q, std::size_t nq, float* out, std::size_t ld) noexcept {
  namespace d = detail::int16_dots;
  d::channel_units_generic<Arch>(units, unit_bytes, count, rows, n, bits, blocked, q, nq, out, ld,
                                 &half_pairs<Arch>, &d::dots_base<Wide, Arch>);
}

#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
/// code_row_dots_i16 with AVX-512 VNNI (only on CPUs that have it).
template <class Arch>
void code_row_dots_i16_vnni(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                            std::size_t n, unsigned bits, const float* q, const float* c,
                            std::size_t nq, float* out, std::size_t ld) noexcept {
  namespace d = detail::int16_dots;
  if (bits == 4 && n % 64 == 0 && n <= d::max_n)
    return d::dots4_vnni<Arch>(in, stride, rows, n, q, c, nq, out, ld);
  code_row_dots_i16_base<Arch>(in, stride, rows, n, bits, q, c, nq, out, ld);
}

/// channel_unit_dots_i16 (Wide) or channel_unit_dots_i8 with AVX-512 VNNI (only on CPUs that
/// have it).
template <bool Wide, class Arch>
void channel_unit_dots_vnni(const std::uint8_t* units, std::size_t unit_bytes, std::size_t count,
                            std::size_t rows, std::size_t n, unsigned bits, bool blocked,
                            const float* q, std::size_t nq, float* out, std::size_t ld) noexcept {
  namespace d = detail::int16_dots;
  if (bits == 4 && n % 64 == 0 && n <= d::max_n) {
    return d::channel_units_vnni<4, Wide, Arch>(units, unit_bytes, count, rows, n, blocked, q, nq,
                                                out, ld);
  }
  if (bits == 2 && blocked && d::blockable_rows<Arch>(2, n, rows) && n <= d::max_n) {
    return d::channel_units_vnni<2, Wide, Arch>(units, unit_bytes, count, rows, n, true, q, nq, out,
                                                ld);
  }
  channel_unit_dots_base<Wide, Arch>(units, unit_bytes, count, rows, n, bits, blocked, q, nq, out,
                                     ld);
}
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace simd

namespace ref {

inline void code_row_dots_i16(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                              std::size_t n, unsigned bits, const float* q, const float* c,
                              std::size_t nq, float* out, std::size_t ld) noexcept {
  namespace d = simd::detail::int16_dots;
  d::dots_generic<simd::scalar>(in, stride, rows, n, bits, q, c, nq, out, ld, d::grid15);
}

inline void channel_unit_dots_i16(const std::uint8_t* units, std::size_t unit_bytes,
                                  std::size_t count, std::size_t rows, std::size_t n, unsigned bits,
                                  bool blocked, const float* q, std::size_t nq, float* out,
                                  std::size_t ld) noexcept {
  simd::detail::int16_dots::channel_units_generic<simd::scalar>(units, unit_bytes, count, rows, n,
                                                                bits, blocked, q, nq, out, ld,
                                                                &half_pairs, &code_row_dots_i16);
}

inline void channel_unit_dots_i8(const std::uint8_t* units, std::size_t unit_bytes,
                                 std::size_t count, std::size_t rows, std::size_t n, unsigned bits,
                                 bool blocked, const float* q, std::size_t nq, float* out,
                                 std::size_t ld) noexcept {
  namespace d = simd::detail::int16_dots;
  d::channel_units_generic<simd::scalar>(
      units, unit_bytes, count, rows, n, bits, blocked, q, nq, out, ld, &half_pairs,
      [](auto... args) { d::dots_generic<simd::scalar>(args..., d::grid8); });
}

}  // namespace ref

namespace simd {

/// The entries of a kernel table (see kernel_table.hpp).
struct int16_dot_kernels {
  /// The fastest form for the running CPU.
  void (*code_row_dots_i16)(const std::uint8_t*, std::size_t, std::size_t, std::size_t, unsigned,
                            const float*, const float*, std::size_t, float*, std::size_t) noexcept;
  /// The same results without extensions the table's target does not imply (no VNNI).
  void (*code_row_dots_i16_base)(const std::uint8_t*, std::size_t, std::size_t, std::size_t,
                                 unsigned, const float*, const float*, std::size_t, float*,
                                 std::size_t) noexcept;
  /// kv::per_channel's scores: (units, unit_bytes, count, rows, n, bits, blocked, q, nq, out, ld).
  using channel_units_fn = void (*)(const std::uint8_t*, std::size_t, std::size_t, std::size_t,
                                    std::size_t, unsigned, bool, const float*, std::size_t, float*,
                                    std::size_t) noexcept;
  /// channel_unit_dots_i16 above, the fastest form; and the same results without VNNI.
  channel_units_fn channel_unit_dots_i16, channel_unit_dots_i16_base;
  /// channel_unit_dots_i8 (int8 queries), the fastest form; and the same results without VNNI.
  channel_units_fn channel_unit_dots_i8, channel_unit_dots_i8_base;
  /// Whether channel_unit_dots_i16 and _i8 read blocked rows faster than plain ones.
  bool blocks_rows;
};

template <class Arch>
int16_dot_kernels make_int16_dot_kernels() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::code_row_dots_i16,
            &ref::code_row_dots_i16,
            &ref::channel_unit_dots_i16,
            &ref::channel_unit_dots_i16,
            &ref::channel_unit_dots_i8,
            &ref::channel_unit_dots_i8,
            false};
  } else {
#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
    if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
      if (cpu_supports_avx512_vnni())
        return {&code_row_dots_i16_vnni<Arch>,
                &code_row_dots_i16_base<Arch>,
                &channel_unit_dots_vnni<true, Arch>,
                &channel_unit_dots_base<true, Arch>,
                &channel_unit_dots_vnni<false, Arch>,
                &channel_unit_dots_base<false, Arch>,
                true};
    }
#endif
    return {&code_row_dots_i16_base<Arch>,
            &code_row_dots_i16_base<Arch>,
            &channel_unit_dots_base<true, Arch>,
            &channel_unit_dots_base<true, Arch>,
            &channel_unit_dots_base<false, Arch>,
            &channel_unit_dots_base<false, Arch>,
            false};
  }
}

}  // namespace simd
}  // namespace qcodec
