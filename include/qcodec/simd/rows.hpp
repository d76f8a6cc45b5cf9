#pragma once
// Many rows against several vectors at once: the inner loops of attention on a compressed KV
// cache, where one KV head serves a group of query heads (GQA) and tokens are rows.
//
//   *_row_dots    out[g * ld + r] = sum_i row_r[i] * q[g * n + i]          (scores)
//   *_row_axpys   acc[g * n + i] += sum_r w[g * ldw + r] * row_r[i]         (value sums)
//
// for rows r in [0, rows) starting every `stride` bytes at `in` (no alignment required) and
// g in [0, nq). A row is n elements of one kind:
//   code_*  n codes of `bits` (1..8) bits packed LSB-first (simd/bit_packing.hpp), as integers
//           (the caller applies scales and offsets: they factor out of both sums);
//   f32_*   n little-endian floats;   f16_*   n IEEE binary16 values;
//   lut_*   n codes of `bits` (1..4) bits packed LSB-first, each read as table[code] from a
//           table of 1 << bits floats (non-uniform codebooks; appended below).
// Each row is read once for all nq vectors, which is what makes compressed attention faster
// than fp32 rather than slower: the decode cost is shared by the query heads of the group.
//
// Exactness: axpys add the rows in order with one fused multiply-add per element, on every
// target, so they equal the qcodec::ref oracle bit for bit. Dots sum lanes in a different order
// than the sequential oracle; they agree within (n + 1) * FLT_EPSILON * sum_i |row_i * q_i|.

#include <qcodec/simd/affine.hpp>
#include <qcodec/simd/arch.hpp>
#include <qcodec/simd/convert.hpp>
#include <qcodec/simd/lut.hpp>
#include <qcodec/simd/prefetch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

namespace qcodec {

namespace ref {

namespace detail {

inline float code_at(const std::uint8_t* row, std::size_t i, unsigned bits) noexcept {
  const std::size_t bit = i * bits;
  std::uint32_t v = std::uint32_t{row[bit / 8]} >> (bit % 8);
  if (bit % 8 + bits > 8) v |= std::uint32_t{row[bit / 8 + 1]} << (8 - bit % 8);
  return static_cast<float>(v & ((1u << bits) - 1));
}
inline float f32_at(const std::uint8_t* row, std::size_t i, unsigned) noexcept {
  float v;
  std::memcpy(&v, row + 4 * i, 4);
  return v;
}
inline float f16_at(const std::uint8_t* row, std::size_t i, unsigned) noexcept {
  std::uint16_t h;
  std::memcpy(&h, row + 2 * i, 2);
  float v;
  ref::f16_to_f32(&h, 1, &v);
  return v;
}

template <class At>
void row_dots(At at, const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
              unsigned bits, const float* q, std::size_t nq, float* out, std::size_t ld) noexcept {
  for (std::size_t g = 0; g < nq; ++g)
    for (std::size_t r = 0; r < rows; ++r) {
      float acc = 0.0f;
      for (std::size_t i = 0; i < n; ++i)
        acc = std::fma(at(in + r * stride, i, bits), q[g * n + i], acc);
      out[g * ld + r] = acc;
    }
}

template <class At>
void row_axpys(At at, const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
               unsigned bits, const float* w, std::size_t ldw, std::size_t nq,
               float* acc) noexcept {
  for (std::size_t g = 0; g < nq; ++g)
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < n; ++i)
        acc[g * n + i] = std::fma(at(in + r * stride, i, bits), w[g * ldw + r], acc[g * n + i]);
}

}  // namespace detail

inline void code_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                          std::size_t n, unsigned bits, const float* q, std::size_t nq, float* out,
                          std::size_t ld) noexcept {
  detail::row_dots(&detail::code_at, in, stride, rows, n, bits, q, nq, out, ld);
}
inline void code_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                           std::size_t n, unsigned bits, const float* w, std::size_t ldw,
                           std::size_t nq, float* acc) noexcept {
  detail::row_axpys(&detail::code_at, in, stride, rows, n, bits, w, ldw, nq, acc);
}
inline void f32_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                         std::size_t n, const float* q, std::size_t nq, float* out,
                         std::size_t ld) noexcept {
  detail::row_dots(&detail::f32_at, in, stride, rows, n, 0, q, nq, out, ld);
}
inline void f32_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                          std::size_t n, const float* w, std::size_t ldw, std::size_t nq,
                          float* acc) noexcept {
  detail::row_axpys(&detail::f32_at, in, stride, rows, n, 0, w, ldw, nq, acc);
}
inline void f16_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                         std::size_t n, const float* q, std::size_t nq, float* out,
                         std::size_t ld) noexcept {
  detail::row_dots(&detail::f16_at, in, stride, rows, n, 0, q, nq, out, ld);
}
inline void f16_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                          std::size_t n, const float* w, std::size_t ldw, std::size_t nq,
                          float* acc) noexcept {
  detail::row_axpys(&detail::f16_at, in, stride, rows, n, 0, w, ldw, nq, acc);
}

// Appended: lut_row_dots / lut_row_axpys, code rows whose `bits`-bit codes (1..4) index
// table[0, 1 << bits): element i of a row is table[code_i] (non-uniform codebooks: TurboQuant's
// Lloyd-Max levels, NF4). Same sums, order and exactness as code_row_*.
inline void lut_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                         std::size_t n, unsigned bits, const float* table, const float* q,
                         std::size_t nq, float* out, std::size_t ld) noexcept {
  for (std::size_t g = 0; g < nq; ++g)
    for (std::size_t r = 0; r < rows; ++r) {
      float acc = 0.0f;
      for (std::size_t i = 0; i < n; ++i)
        acc = std::fma(table[static_cast<std::size_t>(detail::code_at(in + r * stride, i, bits))],
                       q[g * n + i], acc);
      out[g * ld + r] = acc;
    }
}
inline void lut_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows,
                          std::size_t n, unsigned bits, const float* table, const float* w,
                          std::size_t ldw, std::size_t nq, float* acc) noexcept {
  for (std::size_t g = 0; g < nq; ++g)
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < n; ++i)
        acc[g * n + i] =
            std::fma(table[static_cast<std::size_t>(detail::code_at(in + r * stride, i, bits))],
                     w[g * ldw + r], acc[g * n + i]);
}

// Appended: half_pairs, the (first, second) binary16 pairs at the start of n rows `stride`
// bytes apart (the fp16 scale and offset of per-token codes) as floats, exact.
inline void half_pairs(const std::uint8_t* in, std::size_t stride, std::size_t n, float* first,
                       float* second) noexcept {
  for (std::size_t t = 0; t < n; ++t) {
    std::uint16_t h[2];
    std::memcpy(h, in + t * stride, 4);
    ref::f16_to_f32(h, 1, first + t);
    ref::f16_to_f32(h + 1, 1, second + t);
  }
}

// Appended: affine_scores, the scores of affine rows (scale s_t, offset o_t) from their code dots:
// y[t] = fma(s[t], y[t], o[t] * c), c the query's sum. Every target returns these bits (NaN
// payloads aside, when two operands of one operation are NaN). In codec code std::fma, compiled
// without FMA instructions, is a library call per token.
inline void affine_scores(const float* scale, const float* offset, float c, float* y,
                          std::size_t n) noexcept {
  for (std::size_t t = 0; t < n; ++t) y[t] = std::fma(scale[t], y[t], offset[t] * c);
}

}  // namespace ref

namespace simd {

template <class Arch>
void lut_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                  unsigned bits, const float* table, const float* q, std::size_t nq, float* out,
                  std::size_t ld) noexcept;
template <class Arch>
void lut_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                   unsigned bits, const float* table, const float* w, std::size_t ldw,
                   std::size_t nq, float* acc) noexcept;

template <class Arch>
void code_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                   unsigned bits, const float* q, std::size_t nq, float* out,
                   std::size_t ld) noexcept;
template <class Arch>
void code_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                    unsigned bits, const float* w, std::size_t ldw, std::size_t nq,
                    float* acc) noexcept;
template <class Arch>
void f32_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                  const float* q, std::size_t nq, float* out, std::size_t ld) noexcept;
template <class Arch>
void f32_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                   const float* w, std::size_t ldw, std::size_t nq, float* acc) noexcept;
template <class Arch>
void f16_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                  const float* q, std::size_t nq, float* out, std::size_t ld) noexcept;
template <class Arch>
void f16_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                   const float* w, std::size_t ldw, std::size_t nq, float* acc) noexcept;

template <class Arch>
void half_pairs(const std::uint8_t* in, std::size_t stride, std::size_t n, float* first,
                float* second) noexcept;
template <class Arch>
void affine_scores(const float* scale, const float* offset, float c, float* y,
                   std::size_t n) noexcept;

/// The row entries of a kernel table (see kernel_table.hpp).
struct row_kernels {
  void (*code_row_dots)(const std::uint8_t*, std::size_t, std::size_t, std::size_t, unsigned,
                        const float*, std::size_t, float*, std::size_t) noexcept;
  void (*code_row_axpys)(const std::uint8_t*, std::size_t, std::size_t, std::size_t, unsigned,
                         const float*, std::size_t, std::size_t, float*) noexcept;
  void (*f32_row_dots)(const std::uint8_t*, std::size_t, std::size_t, std::size_t, const float*,
                       std::size_t, float*, std::size_t) noexcept;
  void (*f32_row_axpys)(const std::uint8_t*, std::size_t, std::size_t, std::size_t, const float*,
                        std::size_t, std::size_t, float*) noexcept;
  void (*f16_row_dots)(const std::uint8_t*, std::size_t, std::size_t, std::size_t, const float*,
                       std::size_t, float*, std::size_t) noexcept;
  void (*f16_row_axpys)(const std::uint8_t*, std::size_t, std::size_t, std::size_t, const float*,
                        std::size_t, std::size_t, float*) noexcept;
  // Appended: code rows read through a table of up to 16 floats (lut_row_* below).
  void (*lut_row_dots)(const std::uint8_t*, std::size_t, std::size_t, std::size_t, unsigned,
                       const float*, const float*, std::size_t, float*, std::size_t) noexcept;
  void (*lut_row_axpys)(const std::uint8_t*, std::size_t, std::size_t, std::size_t, unsigned,
                        const float*, const float*, std::size_t, std::size_t, float*) noexcept;
  // Appended: the fp16 (scale, offset) pairs heading n rows (half_pairs below).
  void (*half_pairs)(const std::uint8_t*, std::size_t, std::size_t, float*, float*) noexcept;
  // Appended: y[t] = fma(scale[t], y[t], offset[t] * c) (affine_scores below).
  void (*affine_scores)(const float*, const float*, float, float*, std::size_t) noexcept;
};

template <class Arch>
row_kernels make_row_kernels() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::code_row_dots, &ref::code_row_axpys, &ref::f32_row_dots, &ref::f32_row_axpys,
            &ref::f16_row_dots,  &ref::f16_row_axpys,  &ref::lut_row_dots, &ref::lut_row_axpys,
            &ref::half_pairs,    &ref::affine_scores};
  } else {
    return {&code_row_dots<Arch>, &code_row_axpys<Arch>, &f32_row_dots<Arch>, &f32_row_axpys<Arch>,
            &f16_row_dots<Arch>,  &f16_row_axpys<Arch>,  &lut_row_dots<Arch>, &lut_row_axpys<Arch>,
            &half_pairs<Arch>,    &affine_scores<Arch>};
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace detail::rows {

template <class Arch>
using F = batch<float, Arch>;

// How a row's elements become float batches: full(n) leading whole batches, load(row, i) the
// batch at element i, tail(row, i, n) elements [i, n) with the other lanes zero. The loops take
// a reader object: these are stateless, lut_codes (below) carries its table.
template <unsigned Bits, class Arch>
struct packed_codes {
  static std::size_t full(std::size_t n) noexcept {
    return packed::full_batches<Bits, Arch>(n, Arch{});
  }
  static F<Arch> load(const std::uint8_t* row, std::size_t i) noexcept {
    return affine::to_float<Arch>(packed::unpack_batch<Bits, Arch>(row, i, Arch{}));
  }
  static F<Arch> tail(const std::uint8_t* row, std::size_t i, std::size_t n) noexcept {
    return packed::keep_first<Arch>(
        affine::to_float<Arch>(packed::unpack_tail<Bits, Arch>(row, i, n, Arch{})), n - i, Arch{});
  }
};

template <class Arch>
struct f32_values {
  static std::size_t full(std::size_t n) noexcept { return n / F<Arch>::size; }
  // One unaligned load (intrinsics read through may-alias vector types). Not a memcpy into an
  // aligned buffer: GCC may copy it in 16-byte halves, and the 32-byte reload then waits for
  // store forwarding to fail (fp32 attention ran 5x slower on AVX2 that way).
  static F<Arch> load(const std::uint8_t* row, std::size_t i) noexcept {
    return F<Arch>::load_unaligned(reinterpret_cast<const float*>(row + 4 * i));
  }
  static F<Arch> tail(const std::uint8_t* row, std::size_t i, std::size_t n) noexcept {
    alignas(64) float v[F<Arch>::size] = {};
    std::memcpy(v, row + 4 * i, 4 * (n - i));
    return F<Arch>::load_aligned(v);
  }
};

template <class Arch>
struct f16_values {
  static std::size_t full(std::size_t n) noexcept { return n / F<Arch>::size; }
  static F<Arch> load(const std::uint8_t* row, std::size_t i) noexcept {
    return cvt::f16_to_f32_batch<Arch>(reinterpret_cast<const std::uint16_t*>(row + 2 * i), Arch{});
  }
  static F<Arch> tail(const std::uint8_t* row, std::size_t i, std::size_t n) noexcept {
    std::uint16_t h[F<Arch>::size] = {};
    std::memcpy(h, row + 2 * i, 2 * (n - i));
    alignas(64) float v[F<Arch>::size];
    cvt::f16_to_f32_block<Arch>(h, v, Arch{});
    return F<Arch>::load_aligned(v);
  }
};

// Calls f(std::integral_constant<std::size_t, G>) for G = min(4, remaining) query vectors.
template <class Fn>
void with_group(std::size_t remaining, Fn&& f) noexcept {
  switch (remaining) {
    case 1:
      f(std::integral_constant<std::size_t, 1>{});
      break;
    case 2:
      f(std::integral_constant<std::size_t, 2>{});
      break;
    case 3:
      f(std::integral_constant<std::size_t, 3>{});
      break;
    default:
      f(std::integral_constant<std::size_t, 4>{});
      break;
  }
}

template <class E, class Arch>
void dots(const E& e, const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
          const float* q, std::size_t nq, float* out, std::size_t ld) noexcept {
  constexpr std::size_t W = F<Arch>::size;
  const std::size_t full = e.full(n);
  for (std::size_t g0 = 0; g0 < nq; g0 += 4) {
    with_group(nq - g0, [&](auto group) {
      constexpr std::size_t G = decltype(group)::value;
      const float* qg = q + g0 * n;
      for (std::size_t r = 0; r < rows; ++r) {
        const std::uint8_t* row = in + r * stride;
        F<Arch> a[G];
        for (std::size_t g = 0; g < G; ++g) a[g] = F<Arch>(0.0f);
        std::size_t i = 0;
        for (std::size_t b = 0; b < full; ++b, i += W) {
          const F<Arch> c = e.load(row, i);
          for (std::size_t g = 0; g < G; ++g)
            a[g] = packed::fmadd<Arch>(c, F<Arch>::load_unaligned(qg + g * n + i), a[g]);
        }
        for (; i < n; i += W) {
          const std::size_t k = n - i < W ? n - i : W;
          const F<Arch> c = e.tail(row, i, i + k);
          for (std::size_t g = 0; g < G; ++g)
            a[g] =
                packed::fmadd<Arch>(c, packed::load_first<Arch>(qg + g * n + i, k, Arch{}), a[g]);
        }
        for (std::size_t g = 0; g < G; ++g) out[(g0 + g) * ld + r] = reduce_add(a[g]);
      }
    });
  }
}

template <class E, class Arch>
void axpys_tile(const E& e, const std::uint8_t* in, std::size_t stride, std::size_t rows,
                std::size_t n, const float* w, std::size_t ldw, std::size_t nq,
                float* acc) noexcept {
  constexpr std::size_t W = F<Arch>::size;
  const std::size_t full = e.full(n);
  for (std::size_t g0 = 0; g0 < nq; g0 += 4) {
    with_group(nq - g0, [&](auto group) {
      constexpr std::size_t G = decltype(group)::value;
      float* ag = acc + g0 * n;
      const float* wg = w + g0 * ldw;
      // Two batches of every vector's accumulator stay in registers over all rows.
      std::size_t i = 0, b = 0;
      for (; b + 2 <= full; b += 2, i += 2 * W) {
        F<Arch> a0[G], a1[G];
        for (std::size_t g = 0; g < G; ++g) {
          a0[g] = F<Arch>::load_unaligned(ag + g * n + i);
          a1[g] = F<Arch>::load_unaligned(ag + g * n + i + W);
        }
        for (std::size_t r = 0; r < rows; ++r) {
          const std::uint8_t* row = in + r * stride;
          const F<Arch> c0 = e.load(row, i), c1 = e.load(row, i + W);
          for (std::size_t g = 0; g < G; ++g) {
            const F<Arch> weight(wg[g * ldw + r]);
            a0[g] = packed::fmadd<Arch>(c0, weight, a0[g]);
            a1[g] = packed::fmadd<Arch>(c1, weight, a1[g]);
          }
        }
        for (std::size_t g = 0; g < G; ++g) {
          a0[g].store_unaligned(ag + g * n + i);
          a1[g].store_unaligned(ag + g * n + i + W);
        }
      }
      for (; i < n; i += W) {
        const std::size_t k = n - i < W ? n - i : W;
        const bool whole = b < full;
        F<Arch> a[G];
        for (std::size_t g = 0; g < G; ++g)
          a[g] = packed::load_first<Arch>(ag + g * n + i, k, Arch{});
        for (std::size_t r = 0; r < rows; ++r) {
          const std::uint8_t* row = in + r * stride;
          const F<Arch> c = whole ? e.load(row, i) : e.tail(row, i, i + k);
          for (std::size_t g = 0; g < G; ++g)
            a[g] = packed::fmadd<Arch>(c, F<Arch>(wg[g * ldw + r]), a[g]);
        }
        for (std::size_t g = 0; g < G; ++g)
          packed::store_first<Arch>(a[g], ag + g * n + i, k, Arch{});
        ++b;
      }
    });
  }
}

// Rows are taken in tiles of axpy_tile_rows so that the passes over a tile's columns reread it
// from L1 (a page of 256 fp32 rows of 64 is 64 KB); each element still adds the rows in order.
inline constexpr std::size_t axpy_tile_rows = 32;

template <class E, class Arch>
void axpys(const E& e, const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
           const float* w, std::size_t ldw, std::size_t nq, float* acc) noexcept {
  for (std::size_t r0 = 0; r0 < rows; r0 += axpy_tile_rows) {
    const std::size_t tile = rows - r0 < axpy_tile_rows ? rows - r0 : axpy_tile_rows;
    axpys_tile<E, Arch>(e, in + r0 * stride, stride, tile, n, w + r0, ldw, nq, acc);
  }
}

}  // namespace detail::rows

// ---- appended: code rows on AVX-512, 32 columns at a time --------------------------------------
//
// Rows of a multiple of 32 codes (1..4 or 8 bits, or table-indexed) without the generic
// per-batch unpack (a broadcast, a byte shuffle and a variable shift per 16 codes; here 4-bit
// codes and bytes are zero-extended, 1..3-bit codes broadcast and shifted, no byte shuffle) and
// without one horizontal sum per row and vector:
//   * a Columns reader (columns32, after the AVX2 kernels) decodes 32 elements of a row into two
//     registers once for all vectors. 4-bit codes take the nibble split, and the vectors are
//     permuted to match instead of the codes: dots take the query as [even elements | odd
//     elements] per 32 (permuted once per call), axpys keep their accumulators in that order in
//     registers and restore it on store;
//   * dots score four rows at once and reduce their 4 x G accumulators with one transposing
//     sum tree per vector (4 rows -> one 128-bit store), instead of a full reduction per row;
//   * 4-bit dots with n == 64 or a multiple of 128 take the dword layout (code4_dots_dw) instead;
//   * fp32 and fp16 rows of a multiple of 32 take the same kernels (float_columns32).
// Same results as the generic kernels: axpys still add the rows in order with one fused
// multiply-add per element (bit for bit the oracle), dots only sum in another order (within
// the bound above).
namespace detail::rows {

// Longest row the column kernels' dots take (their copy of the query, in the rows' element order,
// lives on the stack).
inline constexpr std::size_t column_dots_max_n = 1024;

// Rows are read once, from memory, with much arithmetic per byte: the hardware prefetcher alone
// leaves the loads of a page waiting on DRAM. The column kernels prefetch this many rows ahead
// (prefetches past the caller's rows are harmless: they never fault).
inline constexpr std::size_t prefetch_ahead_rows = 24;

#if XSIMD_WITH_AVX512BW
// Lanes of (a, b) = elements [0, 32) in natural order <-> (even, odd) = elements 2j, 2j + 1.
template <class Arch>
__m512i split_even() noexcept {
  return _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
}
template <class Arch>
__m512i split_odd() noexcept {
  return _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
}
template <class Arch>
__m512i merge_low() noexcept {  // natural elements 0..15 from (even, odd)
  return _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
}
template <class Arch>
__m512i merge_high() noexcept {  // natural elements 16..31
  return _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
}

// The four horizontal sums of a0..a3, as lanes 0..3.
template <class Arch>
__m128 sum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) noexcept {
  const __m512 t0 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
  const __m512 t1 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
  const __m512d d0 = _mm512_castps_pd(t0), d1 = _mm512_castps_pd(t1);
  const __m512 u = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(d0, d1)),
                                 _mm512_castpd_ps(_mm512_unpackhi_pd(d0, d1)));
  const __m256 y = _mm256_add_ps(_mm512_castps512_ps256(u),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(u), 1)));
  return _mm_add_ps(_mm256_castps256_ps128(y), _mm256_extractf128_ps(y, 1));
}

// Scores of T <= 4 rows for G query vectors qp ([G][n], in the columns' order per 32 elements).
// N: the row length when known at compile time (64 and 128: loops unrolled, accumulators stay
// in registers), else 0 and n at run time.
template <class Columns, std::size_t G, std::size_t T, std::size_t N, class Arch>
void dots32_rows(const Columns& columns, const std::uint8_t* in, std::size_t stride, std::size_t n_,
                 const float* qp, float* out, std::size_t ld) noexcept {
  const std::size_t n = N != 0 ? N : n_;
  __m512 acc[T][G];
  QCODEC_UNROLL_REGISTERS
  for (std::size_t t = 0; t < T; ++t) {
    QCODEC_UNROLL_REGISTERS
    for (std::size_t g = 0; g < G; ++g) acc[t][g] = _mm512_setzero_ps();
  }
  for (std::size_t i = 0; i < n; i += 32) {
    __m512 lo[T], hi[T];
    QCODEC_UNROLL_REGISTERS
    for (std::size_t t = 0; t < T; ++t) columns.decode(in + t * stride, i, lo[t], hi[t]);
    QCODEC_UNROLL_REGISTERS
    for (std::size_t g = 0; g < G; ++g) {
      const __m512 q0 = _mm512_loadu_ps(qp + g * n + i), q1 = _mm512_loadu_ps(qp + g * n + i + 16);
      QCODEC_UNROLL_REGISTERS
      for (std::size_t t = 0; t < T; ++t) {
        acc[t][g] = _mm512_fmadd_ps(lo[t], q0, acc[t][g]);
        acc[t][g] = _mm512_fmadd_ps(hi[t], q1, acc[t][g]);
      }
    }
  }
  for (std::size_t g = 0; g < G; ++g) {
    const __m512 z = _mm512_setzero_ps();
    __m128 s;
    if constexpr (T == 4) {
      s = sum4<Arch>(acc[0][g], acc[1][g], acc[2][g], acc[3][g]);
    } else if constexpr (T == 3) {
      s = sum4<Arch>(acc[0][g], acc[1][g], acc[2][g], z);
    } else if constexpr (T == 2) {
      s = sum4<Arch>(acc[0][g], acc[1][g], z, z);
    } else {
      s = sum4<Arch>(acc[0][g], z, z, z);
    }
    if constexpr (T == 4) {
      _mm_storeu_ps(out + g * ld, s);
    } else {
      alignas(16) float v[4];
      _mm_store_ps(v, s);
      for (std::size_t t = 0; t < T; ++t) out[g * ld + t] = v[t];
    }
  }
}

// Scores on 4-bit rows without any byte shuffle ("dword layout", n == 64 or n a multiple of
// 128). The nibble split (columns32, below) spends one cross-lane shuffle (vpmovzxbd) per 32
// codes and sum4 eight more per row and vector: with 64 codes a row that is as many shuffles as
// FMAs, and dots ran 1.7x slower than axpys (same FMA count). Here a row's bytes are loaded as
// they are: dword lane j holds codes 8j .. 8j + 7, so `(x >> 4k) & 15` is code 8j + k of lane j
// for k = 0..7 (shifts and ands only). The query is permuted to match once per call: block m of
// 128 elements becomes 8 vectors, vector k lane j = q[128 m + 8 j + k]. With n == 64 a row is 32
// bytes: two rows share one register (lanes 0..7 row A, 8..15 row B; the query block is the 64
// elements twice), which also halves the lanes each row's sum is reduced over: 4 rows x 4 vectors
// leave 8 accumulators and one transposing tree (dw_sum16) instead of 16 and four sum4. Measured on
// Zen 5 (rows of one page in cache, 4 vectors): 64 codes 4.1 -> 3.6 ns a row, 128 codes
// 8.1 -> 7.0.
template <class Arch>
__m512i dw_index(std::size_t k) noexcept {  // lane j: 8 (j % 4) + k, into a pair of vectors
  const auto v = [k](int j) { return static_cast<int>(8 * (j % 4) + static_cast<int>(k)); };
  return _mm512_set_epi32(v(15), v(14), v(13), v(12), v(11), v(10), v(9), v(8), v(7), v(6), v(5),
                          v(4), v(3), v(2), v(1), v(0));
}

// q: n natural elements (n == 64 or a multiple of 128) -> qd: max(n, 128) permuted elements.
template <class Arch>
void dw_permute_query(const float* q, std::size_t n, float* qd) noexcept {
  for (std::size_t m = 0; m < (n == 64 ? 1 : n / 128); ++m) {
    __m512 v[8] = {};
    for (std::size_t i = 0; i < (n == 64 ? 4 : 8); ++i) v[i] = _mm512_loadu_ps(q + 128 * m + 16 * i);
    for (std::size_t k = 0; k < 8; ++k) {
      const __m512i idx = dw_index<Arch>(k);
      __m512 o = _mm512_permutex2var_ps(v[0], idx, v[1]);
      if (n == 64) {  // v[4..7] == v[0..3]: lanes 8..15 repeat lanes 0..7
        o = _mm512_mask_mov_ps(o, 0xF0F0, _mm512_permutex2var_ps(v[2], idx, v[3]));
        _mm512_store_ps(qd + 16 * k, o);
        continue;
      }
      o = _mm512_mask_mov_ps(o, 0x00F0, _mm512_permutex2var_ps(v[2], idx, v[3]));
      o = _mm512_mask_mov_ps(o, 0x0F00, _mm512_permutex2var_ps(v[4], idx, v[5]));
      o = _mm512_mask_mov_ps(o, 0xF000, _mm512_permutex2var_ps(v[6], idx, v[7]));
      _mm512_store_ps(qd + 128 * m + 16 * k, o);
    }
  }
}

// Lane 4 g + t of the result: the sum of row t for vector g, from a0[g] whose lanes 0..7 are
// partial sums of row 0 and lanes 8..15 of row 1, and a1[g] likewise for rows 2 and 3 (g < 4).
template <class Arch>
__m512 dw_sum16(const __m512 (&a0)[4], const __m512 (&a1)[4]) noexcept {
  __m512 s[4];
  for (std::size_t g = 0; g < 4; ++g)  // 128-bit lanes 0, 1: rows (0, 2); lanes 2, 3: (1, 3)
    s[g] = _mm512_add_ps(_mm512_unpacklo_ps(a0[g], a1[g]), _mm512_unpackhi_ps(a0[g], a1[g]));
  const auto pairs = [](__m512 x, __m512 y) {  // (x rows 0, 2, y rows 0, 2) per 128-bit lane
    const __m512d dx = _mm512_castps_pd(x), dy = _mm512_castps_pd(y);
    return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(dx, dy)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(dx, dy)));
  };
  const __m512 v01 = pairs(s[0], s[1]), v23 = pairs(s[2], s[3]);
  const __m512 w = _mm512_add_ps(_mm512_shuffle_f32x4(v01, v23, _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_f32x4(v01, v23, _MM_SHUFFLE(3, 1, 3, 1)));
  // w lanes: r0g0 r2g0 r0g1 r2g1 | r1g0 r3g0 r1g1 r3g1 | r0g2 r2g2 r0g3 r2g3 | r1g2 r3g2 ...
  return _mm512_permutexvar_ps(
      _mm512_set_epi32(15, 11, 14, 10, 13, 9, 12, 8, 7, 3, 6, 2, 5, 1, 4, 0), w);
}

// out[g * ld + t] for t < T, g < G from lanes 4 g + t of s.
template <std::size_t G, std::size_t T, class Arch>
void dw_store(__m512 s, float* out, std::size_t ld) noexcept {
  if constexpr (T == 4) {
    _mm_storeu_ps(out, _mm512_castps512_ps128(s));
    if constexpr (G > 1) _mm_storeu_ps(out + ld, _mm512_extractf32x4_ps(s, 1));
    if constexpr (G > 2) _mm_storeu_ps(out + 2 * ld, _mm512_extractf32x4_ps(s, 2));
    if constexpr (G > 3) _mm_storeu_ps(out + 3 * ld, _mm512_extractf32x4_ps(s, 3));
  } else {
    alignas(64) float v[16];
    _mm512_store_ps(v, s);
    for (std::size_t g = 0; g < G; ++g)
      for (std::size_t t = 0; t < T; ++t) out[g * ld + t] = v[4 * g + t];
  }
}

// Code vector k of x (see dw_codes): lane j = (x_j >> 4k) & 15.
template <std::size_t K, class Arch>
__m512 dw_code(__m512i x) noexcept {
  if constexpr (K == 7) {
    return _mm512_cvtepi32_ps(_mm512_srli_epi32(x, 28));
  } else {
    return _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(x, 4 * K), _mm512_set1_epi32(15)));
  }
}

// Calls f(integral_constant<std::size_t, K>) for K = 0..7.
template <class Fn>
void dw_each_k(Fn&& f) noexcept {
  [&]<std::size_t... K>(std::index_sequence<K...>) {
    (f(std::integral_constant<std::size_t, K>{}), ...);
  }(std::make_index_sequence<8>{});
}

// Scores of T <= 8 rows of 64 codes for G <= 4 permuted query vectors qd ([G][128]). The loop
// over k is outermost so that each query vector is loaded once for all the rows.
template <std::size_t G, std::size_t T, class Arch>
void dw64_rows(const std::uint8_t* in, std::size_t stride, const float* qd, float* out,
               std::size_t ld) noexcept {
  constexpr std::size_t P = (T + 1) / 2;  // row pairs
  __m512i x[P];
  for (std::size_t p = 0; p < P; ++p) {
    x[p] = _mm512_zextsi256_si512(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 2 * p * stride)));
    if (2 * p + 1 < T) {
      x[p] = _mm512_inserti64x4(
          x[p], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + (2 * p + 1) * stride)),
          1);
    }
  }
  __m512 a[(P + 1) / 2 * 2][4];
  for (auto& ap : a)
    for (auto& v : ap) v = _mm512_setzero_ps();
  dw_each_k([&](auto kc) {
    constexpr std::size_t k = decltype(kc)::value;
    __m512 qk[G];
    for (std::size_t g = 0; g < G; ++g) qk[g] = _mm512_load_ps(qd + g * 128 + 16 * k);
    for (std::size_t p = 0; p < P; ++p) {
      const __m512 c = dw_code<k, Arch>(x[p]);
      for (std::size_t g = 0; g < G; ++g) a[p][g] = _mm512_fmadd_ps(c, qk[g], a[p][g]);
    }
  });
  const __m512 lo = dw_sum16<Arch>(a[0], a[1]);
  if constexpr (T <= 4) {
    dw_store<G, T, Arch>(lo, out, ld);
  } else {
    dw_store<G, 4, Arch>(lo, out, ld);
    dw_store<G, T - 4, Arch>(dw_sum16<Arch>(a[2], a[3]), out + 4, ld);
  }
}

// Scores of T <= 4 rows of n = 128 M codes (N = n when known at compile time, else 0) for G <= 4
// permuted query vectors qd ([G][n]); k outermost as above.
template <std::size_t G, std::size_t T, std::size_t N, class Arch>
void dw128_rows(const std::uint8_t* in, std::size_t stride, std::size_t n_, const float* qd,
                float* out, std::size_t ld) noexcept {
  const std::size_t n = N != 0 ? N : n_;
  __m512 a[4][G];
  for (std::size_t t = 0; t < 4; ++t)
    for (std::size_t g = 0; g < G; ++g) a[t][g] = _mm512_setzero_ps();
  for (std::size_t m = 0; m < n / 128; ++m) {
    __m512i x[T];
    for (std::size_t t = 0; t < T; ++t) x[t] = _mm512_loadu_si512(in + t * stride + 64 * m);
    dw_each_k([&](auto kc) {
      constexpr std::size_t k = decltype(kc)::value;
      __m512 qk[G];
      for (std::size_t g = 0; g < G; ++g) qk[g] = _mm512_load_ps(qd + g * n + 128 * m + 16 * k);
      for (std::size_t t = 0; t < T; ++t) {
        const __m512 c = dw_code<k, Arch>(x[t]);
        for (std::size_t g = 0; g < G; ++g) a[t][g] = _mm512_fmadd_ps(c, qk[g], a[t][g]);
      }
    });
  }
  alignas(16) float v[4];
  for (std::size_t g = 0; g < G; ++g) {
    const __m128 s = sum4<Arch>(a[0][g], a[1][g], a[2][g], a[3][g]);
    if constexpr (T == 4) {
      _mm_storeu_ps(out + g * ld, s);
    } else {
      _mm_store_ps(v, s);
      for (std::size_t t = 0; t < T; ++t) out[g * ld + t] = v[t];
    }
  }
}

// Whether dots take the dword layout for rows of n codes.
template <class Arch>
constexpr bool dw_layout(std::size_t n) noexcept {
  return n == 64 || (n != 0 && n % 128 == 0);
}

// block(integral_constant<T>, r) over rows [0, rows): blocks of B rows (prefetching ahead),
// then one block of the 1..B-1 left.
template <std::size_t B, class Arch, class Fn>
void dw_blocks(std::size_t rows, std::size_t stride, std::size_t row_bytes, const std::uint8_t* in,
               Fn&& block) noexcept {
  std::size_t r = 0;
  for (; r + B <= rows; r += B) {
    prefetch_rows<Arch>(in + (r + prefetch_ahead_rows) * stride, stride, row_bytes, B);
    block(std::integral_constant<std::size_t, B>{}, r);
  }
  if (r == rows) return;
  [&]<std::size_t... T>(std::index_sequence<T...>) {
    ((rows - r == T + 1 ? block(std::integral_constant<std::size_t, T + 1>{}, r) : void()), ...);
  }(std::make_index_sequence<B - 1>{});
}

template <class Arch>
void code4_dots_dw(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                   const float* q, std::size_t nq, float* out, std::size_t ld) noexcept {
  alignas(64) float qd[4 * column_dots_max_n];
  const std::size_t qn = n == 64 ? 128 : n;
  for (std::size_t g0 = 0; g0 < nq; g0 += 4) {
    with_group(nq - g0, [&](auto group) {
      constexpr std::size_t G = decltype(group)::value;
      for (std::size_t g = 0; g < G; ++g) dw_permute_query<Arch>(q + (g0 + g) * n, n, qd + g * qn);
      float* og = out + g0 * ld;
      if (n == 64) {
        dw_blocks<8, Arch>(rows, stride, n / 2, in, [&](auto t, std::size_t r) {
          dw64_rows<G, decltype(t)::value, Arch>(in + r * stride, stride, qd, og + r, ld);
        });
      } else if (n == 128) {
        dw_blocks<4, Arch>(rows, stride, n / 2, in, [&](auto t, std::size_t r) {
          dw128_rows<G, decltype(t)::value, 128, Arch>(in + r * stride, stride, n, qd, og + r, ld);
        });
      } else {
        dw_blocks<4, Arch>(rows, stride, n / 2, in, [&](auto t, std::size_t r) {
          dw128_rows<G, decltype(t)::value, 0, Arch>(in + r * stride, stride, n, qd, og + r, ld);
        });
      }
    });
  }
}

// Rows of n elements, n a multiple of 32 up to column_dots_max_n.
template <class Arch, class Columns>
void dots32(const Columns& columns, const std::uint8_t* in, std::size_t stride, std::size_t rows,
            std::size_t n, const float* q, std::size_t nq, float* out, std::size_t ld) noexcept {
  alignas(64) float qp[4 * column_dots_max_n];
  for (std::size_t g0 = 0; g0 < nq; g0 += 4) {
    with_group(nq - g0, [&](auto group) {
      constexpr std::size_t G = decltype(group)::value;
      for (std::size_t g = 0; g < G; ++g)
        for (std::size_t i = 0; i < n; i += 32) {
          __m512 lo, hi;
          Columns::load(q + (g0 + g) * n + i, lo, hi);
          _mm512_store_ps(qp + g * n + i, lo);
          _mm512_store_ps(qp + g * n + i + 16, hi);
        }
      float* og = out + g0 * ld;
      const auto run = [&](auto fixed) {
        constexpr std::size_t N = decltype(fixed)::value;
        std::size_t r = 0;
        for (; r + 4 <= rows; r += 4) {
          prefetch_rows<Arch>(in + (r + prefetch_ahead_rows) * stride, stride,
                              Columns::row_bytes(n), 4);
          dots32_rows<Columns, G, 4, N, Arch>(columns, in + r * stride, stride, n, qp, og + r, ld);
        }
        switch (rows - r) {
          case 1:
            dots32_rows<Columns, G, 1, N, Arch>(columns, in + r * stride, stride, n, qp, og + r,
                                                ld);
            break;
          case 2:
            dots32_rows<Columns, G, 2, N, Arch>(columns, in + r * stride, stride, n, qp, og + r,
                                                ld);
            break;
          case 3:
            dots32_rows<Columns, G, 3, N, Arch>(columns, in + r * stride, stride, n, qp, og + r,
                                                ld);
            break;
          default:
            break;
        }
      };
      if (n == 128) {
        run(std::integral_constant<std::size_t, 128>{});
      } else if (n == 64) {
        run(std::integral_constant<std::size_t, 64>{});
      } else {
        run(std::integral_constant<std::size_t, 0>{});
      }
    });
  }
}

// Elements [i, i + 32 K) of G accumulators over all rows, in registers.
template <class Columns, std::size_t G, std::size_t K, class Arch>
void axpys32_columns(const Columns& columns, const std::uint8_t* in, std::size_t stride,
                     std::size_t rows, std::size_t n, std::size_t i, const float* w,
                     std::size_t ldw, float* acc) noexcept {
  __m512 a[G][2 * K];
  QCODEC_UNROLL_REGISTERS
  for (std::size_t g = 0; g < G; ++g) {
    QCODEC_UNROLL_REGISTERS
    for (std::size_t k = 0; k < K; ++k)
      Columns::load(acc + g * n + i + 32 * k, a[g][2 * k], a[g][2 * k + 1]);
  }
  for (std::size_t r = 0; r < rows; ++r) {
    if (i == 0) {
      prefetch_rows<Arch>(in + (r + prefetch_ahead_rows) * stride, stride, Columns::row_bytes(n),
                          1);
    }
    __m512 lo[K], hi[K];
    QCODEC_UNROLL_REGISTERS
    for (std::size_t k = 0; k < K; ++k) columns.decode(in + r * stride, i + 32 * k, lo[k], hi[k]);
    QCODEC_UNROLL_REGISTERS
    for (std::size_t g = 0; g < G; ++g) {
      const __m512 weight = _mm512_set1_ps(w[g * ldw + r]);
      QCODEC_UNROLL_REGISTERS
      for (std::size_t k = 0; k < K; ++k) {
        a[g][2 * k] = _mm512_fmadd_ps(lo[k], weight, a[g][2 * k]);
        a[g][2 * k + 1] = _mm512_fmadd_ps(hi[k], weight, a[g][2 * k + 1]);
      }
    }
  }
  QCODEC_UNROLL_REGISTERS
  for (std::size_t g = 0; g < G; ++g) {
    QCODEC_UNROLL_REGISTERS
    for (std::size_t k = 0; k < K; ++k)
      Columns::store(a[g][2 * k], a[g][2 * k + 1], acc + g * n + i + 32 * k);
  }
}

// Rows of n elements, n a multiple of 32.
template <class Arch, class Columns>
void axpys32(const Columns& columns, const std::uint8_t* in, std::size_t stride, std::size_t rows,
             std::size_t n, const float* w, std::size_t ldw, std::size_t nq, float* acc) noexcept {
  for (std::size_t g0 = 0; g0 < nq; g0 += 4) {
    with_group(nq - g0, [&](auto group) {
      constexpr std::size_t G = decltype(group)::value;
      const float* wg = w + g0 * ldw;
      float* ag = acc + g0 * n;
      std::size_t i = 0;
      for (; i + 64 <= n; i += 64)
        axpys32_columns<Columns, G, 2, Arch>(columns, in, stride, rows, n, i, wg, ldw, ag);
      if (i < n) axpys32_columns<Columns, G, 1, Arch>(columns, in, stride, rows, n, i, wg, ldw, ag);
    });
  }
}
#endif

#if XSIMD_WITH_AVX2
// Code rows on AVX2, 16 elements (columns) at a time: each row's 16 codes are decoded once into
// two registers for all G vectors. 4-bit codes take the nibble split at half the width: 8
// bytes zero-extended to 8 lanes, `& 15` codes 2j and `>> 4` codes 2j + 1 of lane j; dots take
// the query split to match (per 16 elements: even ones, then odd ones; once per call), axpys
// keep their accumulators that way in registers over all rows and restore the order on store.
// Codes of 1..3 bits (16 of them fill 2 Bits bytes) are broadcast and shifted into lanes in
// natural order, bytes (8 bits) zero-extended. The generic loops unpack every 8 codes alone:
// 153 (dots) and 113 (axpys) instructions a row of 64 4-bit codes for 4 vectors under
// callgrind.
//
// A Columns type reads rows: decode(row, i, lo, hi) gives elements [i, i + 16) as floats (the
// codes themselves, code_columns, or their entries in a table, lut_columns) and load / store
// move 16 floats of a vector between memory and that order. Axpys still make one fused
// multiply-add per element and row, rows in order (the oracle bit for bit); dots sum in another
// order (within the bound above).

// Codes 2j (lo) and 2j + 1 (hi) in lane j, from the 8 bytes at p.
template <class Arch>
void nibble_codes16(const std::uint8_t* p, __m256i& lo, __m256i& hi) noexcept {
  const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  lo = _mm256_and_si256(b, _mm256_set1_epi32(15));
  hi = _mm256_srli_epi32(b, 4);
}

// Codes j (lo) and 8 + j (hi) in lane j, from the 2 Bits bytes at p (Bits 1..3): a word
// broadcast, one variable left shift putting code j in the top Bits bits of lane j and one
// right shift bringing it down (16 codes of up to 2 bits share one word).
template <unsigned Bits, class Arch>
void bit_codes16(const std::uint8_t* p, __m256i& lo, __m256i& hi) noexcept {
  static_assert(Bits >= 1 && Bits <= 3);
  // Loads of whole words, each within the 2 Bits bytes (the row may end there). Not one memcpy
  // of 6 bytes into a 64-bit word: stored in pieces, its reload waits for store forwarding to
  // fail (3-bit attention ran 2.5 times slower).
  const auto word = [p](std::size_t at) {
    std::conditional_t<Bits == 1, std::uint16_t, std::uint32_t> w;
    std::memcpy(&w, p + at, sizeof w);
    return std::uint32_t{w};
  };
  constexpr int b = static_cast<int>(Bits);
  // Eight Bits-bit codes starting at bit `first` of w.
  const auto eight = [](std::uint32_t w, int first) {
    const int top = 32 - b - first;  // lane 0's left shift
    const __m256i shifts = _mm256_setr_epi32(top, top - b, top - 2 * b, top - 3 * b, top - 4 * b,
                                             top - 5 * b, top - 6 * b, top - 7 * b);
    const __m256i x = _mm256_set1_epi32(static_cast<std::int32_t>(w));
    return _mm256_srli_epi32(_mm256_sllv_epi32(x, shifts), 32 - b);
  };
  if constexpr (Bits == 3) {
    lo = eight(word(0), 0);
    hi = eight(word(2), 8);  // codes 8..15 from bit 24 of the 6 bytes: bit 8 of bytes 2..5
  } else {
    const std::uint32_t w = word(0);
    lo = eight(w, 0);
    hi = eight(w, 8 * b);
  }
}

// 16 elements at p as (even, odd) and back.
template <class Arch>
void split16(const float* p, __m256& even, __m256& odd) noexcept {
  const __m256 x = _mm256_loadu_ps(p), y = _mm256_loadu_ps(p + 8);
  // shuffle_ps leaves, per 128-bit lane, two of x then two of y: a qword permute orders them.
  const auto order = [](__m256 v) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)));
  };
  even = order(_mm256_shuffle_ps(x, y, _MM_SHUFFLE(2, 0, 2, 0)));
  odd = order(_mm256_shuffle_ps(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
}
template <class Arch>
void merge16(__m256 even, __m256 odd, float* p) noexcept {
  // unpacklo: elements 0..3 | 8..11, unpackhi: 4..7 | 12..15.
  const __m256 a = _mm256_unpacklo_ps(even, odd), b = _mm256_unpackhi_ps(even, odd);
  _mm256_storeu_ps(p, _mm256_permute2f128_ps(a, b, 0x20));
  _mm256_storeu_ps(p + 8, _mm256_permute2f128_ps(a, b, 0x31));
}

// The codes of elements [i, i + 16) of a row of Bits-bit codes (1..4 or 8), and the element
// order they come in: (even, odd) for 4 bits, natural for the others.
template <unsigned Bits, class Arch>
struct columns16 {
  static void codes(const std::uint8_t* row, std::size_t i, __m256i& lo, __m256i& hi) noexcept {
    if constexpr (Bits == 4) {
      nibble_codes16<Arch>(row + i / 2, lo, hi);
    } else if constexpr (Bits == 8) {
      lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + i)));
      hi = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + i + 8)));
    } else {
      bit_codes16<Bits, Arch>(row + i / 8 * Bits, lo, hi);
    }
  }
  static void load(const float* p, __m256& lo, __m256& hi) noexcept {
    if constexpr (Bits == 4) {
      split16<Arch>(p, lo, hi);
    } else {
      lo = _mm256_loadu_ps(p);
      hi = _mm256_loadu_ps(p + 8);
    }
  }
  static void store(__m256 lo, __m256 hi, float* p) noexcept {
    if constexpr (Bits == 4) {
      merge16<Arch>(lo, hi, p);
    } else {
      _mm256_storeu_ps(p, lo);
      _mm256_storeu_ps(p + 8, hi);
    }
  }
};

// The codes as floats (code_row_*).
template <unsigned Bits, class Arch>
struct code_columns : columns16<Bits, Arch> {
  void decode(const std::uint8_t* row, std::size_t i, __m256& lo, __m256& hi) const noexcept {
    __m256i a, b;
    this->codes(row, i, a, b);
    lo = _mm256_cvtepi32_ps(a);
    hi = _mm256_cvtepi32_ps(b);
  }
};

// The codes' entries in a table of 16 floats (lut_row_*): codes of up to 3 bits index the first
// 8 with one permute, 4-bit codes take two permutes and a blend (lut.hpp's lookup16).
template <unsigned Bits, class Arch>
struct lut_columns : columns16<Bits, Arch> {
  static_assert(Bits >= 1 && Bits <= 4);
  explicit lut_columns(const float* padded16) noexcept : table(padded16, 1.0f) {}
  void decode(const std::uint8_t* row, std::size_t i, __m256& lo, __m256& hi) const noexcept {
    __m256i a, b;
    this->codes(row, i, a, b);
    lo = lookup(a);
    hi = lookup(b);
  }

 private:
  __m256 lookup(__m256i idx) const noexcept {
    if constexpr (Bits == 4) {
      return detail::lut::lookup16<Arch>(detail::lut::i32<Arch>(idx), table, Arch{});
    } else {
      return _mm256_permutevar8x32_ps(table.part[0], idx);
    }
  }
  detail::lut::scaled_table16<Arch> table;
};

// Scores of T <= 2 rows for G <= 4 vectors qp ([G][n], in the columns' order). The T x G
// accumulators are reduced by one transposing sum tree: [row 0: vectors 0..3 | row 1: 0..3].
template <class Columns, std::size_t G, std::size_t T, class Arch>
void dots16_avx2_rows(const Columns& columns, const std::uint8_t* in, std::size_t stride,
                      std::size_t n, const float* qp, float* out, std::size_t ld) noexcept {
  __m256 a[2][4];
  QCODEC_UNROLL_REGISTERS
  for (std::size_t t = 0; t < 2; ++t) {
    QCODEC_UNROLL_REGISTERS
    for (std::size_t g = 0; g < 4; ++g) a[t][g] = _mm256_setzero_ps();
  }
  for (std::size_t i = 0; i < n; i += 16) {
    QCODEC_UNROLL_REGISTERS
    for (std::size_t t = 0; t < T; ++t) {
      __m256 lo, hi;
      columns.decode(in + t * stride, i, lo, hi);
      QCODEC_UNROLL_REGISTERS
      for (std::size_t g = 0; g < G; ++g) {
        a[t][g] = _mm256_fmadd_ps(lo, _mm256_loadu_ps(qp + g * n + i), a[t][g]);
        a[t][g] = _mm256_fmadd_ps(hi, _mm256_loadu_ps(qp + g * n + i + 8), a[t][g]);
      }
    }
  }
  // Per 128-bit lane after two hadds: the lane sums of vectors 0..3 of one row.
  const auto row = [&](std::size_t t) {
    return _mm256_hadd_ps(_mm256_hadd_ps(a[t][0], a[t][1]), _mm256_hadd_ps(a[t][2], a[t][3]));
  };
  const __m256 k0 = row(0), k1 = row(1);
  const __m256 sums =
      _mm256_add_ps(_mm256_permute2f128_ps(k0, k1, 0x20), _mm256_permute2f128_ps(k0, k1, 0x31));
  alignas(32) float v[8];
  _mm256_store_ps(v, sums);
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t g = 0; g < G; ++g) out[g * ld + t] = v[4 * t + g];
}

// Rows of n codes, n a multiple of 16 up to column_dots_max_n.
template <class Arch, class Columns>
void dots16_avx2(const Columns& columns, const std::uint8_t* in, std::size_t stride,
                 std::size_t rows, std::size_t n, const float* q, std::size_t nq, float* out,
                 std::size_t ld) noexcept {
  alignas(32) float qp[4 * column_dots_max_n];
  for (std::size_t g0 = 0; g0 < nq; g0 += 4) {
    with_group(nq - g0, [&](auto group) {
      constexpr std::size_t G = decltype(group)::value;
      for (std::size_t g = 0; g < G; ++g) {
        for (std::size_t i = 0; i < n; i += 16) {
          __m256 lo, hi;
          Columns::load(q + (g0 + g) * n + i, lo, hi);
          _mm256_store_ps(qp + g * n + i, lo);
          _mm256_store_ps(qp + g * n + i + 8, hi);
        }
      }
      float* og = out + g0 * ld;
      std::size_t r = 0;
      for (; r + 2 <= rows; r += 2) {
        _mm_prefetch(reinterpret_cast<const char*>(in + (r + prefetch_ahead_rows) * stride),
                     _MM_HINT_T0);
        dots16_avx2_rows<Columns, G, 2, Arch>(columns, in + r * stride, stride, n, qp, og + r, ld);
      }
      if (r < rows) {
        dots16_avx2_rows<Columns, G, 1, Arch>(columns, in + r * stride, stride, n, qp, og + r, ld);
      }
    });
  }
}

// Columns [i, i + 16) of G accumulators over all rows, each row decoded once for all of them.
template <class Columns, std::size_t G, class Arch>
void axpys16_avx2_columns(const Columns& columns, const std::uint8_t* in, std::size_t stride,
                          std::size_t rows, std::size_t n, std::size_t i, const float* w,
                          std::size_t ldw, float* acc) noexcept {
  __m256 a0[G], a1[G];
  QCODEC_UNROLL_REGISTERS
  for (std::size_t g = 0; g < G; ++g) Columns::load(acc + g * n + i, a0[g], a1[g]);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::uint8_t* row = in + r * stride;
    if (i == 0)
      _mm_prefetch(reinterpret_cast<const char*>(row + prefetch_ahead_rows * stride), _MM_HINT_T0);
    __m256 lo, hi;
    columns.decode(row, i, lo, hi);
    QCODEC_UNROLL_REGISTERS
    for (std::size_t g = 0; g < G; ++g) {
      const __m256 weight = _mm256_broadcast_ss(w + g * ldw + r);
      a0[g] = _mm256_fmadd_ps(lo, weight, a0[g]);
      a1[g] = _mm256_fmadd_ps(hi, weight, a1[g]);
    }
  }
  QCODEC_UNROLL_REGISTERS
  for (std::size_t g = 0; g < G; ++g) Columns::store(a0[g], a1[g], acc + g * n + i);
}

// Rows of n codes, n a multiple of 16.
template <class Arch, class Columns>
void axpys16_avx2(const Columns& columns, const std::uint8_t* in, std::size_t stride,
                  std::size_t rows, std::size_t n, const float* w, std::size_t ldw, std::size_t nq,
                  float* acc) noexcept {
  for (std::size_t g0 = 0; g0 < nq; g0 += 4) {
    with_group(nq - g0, [&](auto group) {
      constexpr std::size_t G = decltype(group)::value;
      for (std::size_t i = 0; i < n; i += 16)
        axpys16_avx2_columns<Columns, G, Arch>(columns, in, stride, rows, n, i, w + g0 * ldw, ldw,
                                               acc + g0 * n);
    });
  }
}

#endif

#if XSIMD_WITH_AVX512BW
// Readers of 32 elements for the AVX-512 kernels above (dots32, axpys32), as columns16 is for
// AVX2: decode(row, i, lo, hi) gives elements [i, i + 32) as floats, load / store move 32
// floats of a vector between memory and their order. 4-bit codes take the nibble split (16
// bytes zero-extended, `& 15` codes 2j and `>> 4` codes 2j + 1 of lane j: order (even, odd)),
// bytes are zero-extended and codes of 1..3 bits decoded 16 at a time (natural order). Forced
// inline: GCC 12 called codes() and decode() from the kernels' row loops for 3-bit codes, their
// results going through memory (3-bit attention ran 1.3x slower than the generic loop).
template <unsigned Bits, class Arch>
struct columns32 {
  static constexpr std::size_t row_bytes(std::size_t n) noexcept { return (n * Bits + 7) / 8; }
  [[gnu::always_inline]] static void codes(const std::uint8_t* row, std::size_t i, __m512i& lo,
                                           __m512i& hi) noexcept {
    if constexpr (Bits == 4) {
      const __m512i b =
          _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i / 2)));
      lo = _mm512_and_si512(b, _mm512_set1_epi32(15));
      hi = _mm512_srli_epi32(b, 4);
    } else if constexpr (Bits == 8) {
      lo = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i)));
      hi = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i + 16)));
    } else {
      lo = codes16(row + i / 8 * Bits);
      hi = codes16(row + i / 8 * Bits + 2 * Bits);
    }
  }
  [[gnu::always_inline]] static void load(const float* p, __m512& lo, __m512& hi) noexcept {
    const __m512 x = _mm512_loadu_ps(p), y = _mm512_loadu_ps(p + 16);
    if constexpr (Bits == 4) {
      lo = _mm512_permutex2var_ps(x, split_even<Arch>(), y);
      hi = _mm512_permutex2var_ps(x, split_odd<Arch>(), y);
    } else {
      lo = x;
      hi = y;
    }
  }
  [[gnu::always_inline]] static void store(__m512 lo, __m512 hi, float* p) noexcept {
    if constexpr (Bits == 4) {
      _mm512_storeu_ps(p, _mm512_permutex2var_ps(lo, merge_low<Arch>(), hi));
      _mm512_storeu_ps(p + 16, _mm512_permutex2var_ps(lo, merge_high<Arch>(), hi));
    } else {
      _mm512_storeu_ps(p, lo);
      _mm512_storeu_ps(p + 16, hi);
    }
  }

 private:
  // Codes 0..15 of 1..3 bits from the 2 Bits bytes at p, code j in lane j, as bit_codes16
  // does for AVX2: a left shift puts code j in the top Bits bits of lane j, a right shift brings
  // it down. The codes of up to 2 bits share one word; 3-bit codes 8..15 start at bit 8 of the
  // word at byte 2 (a load never passes the 6 bytes).
  [[gnu::always_inline]] static __m512i codes16(const std::uint8_t* p) noexcept {
    static_assert(Bits >= 1 && Bits <= 3);
    const auto word = [p](std::size_t at) {
      std::conditional_t<Bits == 1, std::uint16_t, std::uint32_t> w;
      std::memcpy(&w, p + at, sizeof w);
      return static_cast<std::int32_t>(w);
    };
    constexpr int b = static_cast<int>(Bits);
    constexpr auto top = [](int j) {  // lane j's left shift
      const int first = Bits == 3 && j >= 8 ? 8 + b * (j - 8) : b * j;
      return 32 - b - first;
    };
    const __m512i shifts =
        _mm512_setr_epi32(top(0), top(1), top(2), top(3), top(4), top(5), top(6), top(7), top(8),
                          top(9), top(10), top(11), top(12), top(13), top(14), top(15));
    __m512i x;
    if constexpr (Bits == 3) {
      x = _mm512_inserti64x4(_mm512_set1_epi32(word(0)), _mm256_set1_epi32(word(2)), 1);
    } else {
      x = _mm512_set1_epi32(word(0));
    }
    return _mm512_srli_epi32(_mm512_sllv_epi32(x, shifts), 32 - b);
  }
};

// The codes as floats (code_row_*).
template <unsigned Bits, class Arch>
struct code_columns32 : columns32<Bits, Arch> {
  [[gnu::always_inline]] void decode(const std::uint8_t* row, std::size_t i, __m512& lo,
                                     __m512& hi) const noexcept {
    __m512i a, b;
    this->codes(row, i, a, b);
    lo = _mm512_cvtepi32_ps(a);
    hi = _mm512_cvtepi32_ps(b);
  }
};

// The codes' entries in a table of 16 floats held in one register (lut_row_*).
template <unsigned Bits, class Arch>
struct lut_columns32 : columns32<Bits, Arch> {
  static_assert(Bits >= 1 && Bits <= 4);
  explicit lut_columns32(const float* padded16) noexcept : table(_mm512_loadu_ps(padded16)) {}
  [[gnu::always_inline]] void decode(const std::uint8_t* row, std::size_t i, __m512& lo,
                                     __m512& hi) const noexcept {
    __m512i a, b;
    this->codes(row, i, a, b);
    lo = _mm512_permutexvar_ps(a, table);
    hi = _mm512_permutexvar_ps(b, table);
  }

 private:
  __m512 table;
};

// fp32 or fp16 elements (f32_row_*, f16_row_*; Half: fp16), natural order: one load, or one
// load and one conversion, per 16. What the column kernels save on float rows: dots end in a
// quarter of a transposing sum tree per row and load the query once per four rows (the generic
// loop reduced each row and vector alone), axpys keep 64 columns of four accumulators in
// registers over all rows and broadcast each weight once per row.
template <bool Half, class Arch>
struct float_columns32 {
  static constexpr std::size_t row_bytes(std::size_t n) noexcept { return (Half ? 2 : 4) * n; }
  [[gnu::always_inline]] void decode(const std::uint8_t* row, std::size_t i, __m512& lo,
                                     __m512& hi) const noexcept {
    if constexpr (Half) {
      const auto* p = reinterpret_cast<const __m256i*>(row + 2 * i);
      lo = _mm512_cvtph_ps(_mm256_loadu_si256(p));
      hi = _mm512_cvtph_ps(_mm256_loadu_si256(p + 1));
    } else {
      const auto* p = reinterpret_cast<const float*>(row + 4 * i);
      lo = _mm512_loadu_ps(p);
      hi = _mm512_loadu_ps(p + 16);
    }
  }
  [[gnu::always_inline]] static void load(const float* p, __m512& lo, __m512& hi) noexcept {
    lo = _mm512_loadu_ps(p);
    hi = _mm512_loadu_ps(p + 16);
  }
  [[gnu::always_inline]] static void store(__m512 lo, __m512 hi, float* p) noexcept {
    _mm512_storeu_ps(p, lo);
    _mm512_storeu_ps(p + 16, hi);
  }
};
#endif

// Calls f(Reader<bits, Arch>{}) if the column kernels take `bits` (1..4 or 8); returns whether
// it did. Reader: code_columns (AVX2) or code_columns32 (AVX-512).
template <template <unsigned, class> class Reader, class Arch, class Fn>
bool with_code_columns(unsigned bits, Fn&& f) noexcept {
  return packed::with_bits<Arch>(bits, [&](auto b) {
    constexpr unsigned B = decltype(b)::value;
    if constexpr (B <= 4 || B == 8) {
      f(Reader<B, Arch>{});
      return true;
    } else {
      return false;
    }
  });
}

}  // namespace detail::rows

template <class Arch>
void code_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                   unsigned bits, const float* q, std::size_t nq, float* out,
                   std::size_t ld) noexcept {
  namespace r = detail::rows;
#if XSIMD_WITH_AVX512BW
  if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
    if (n % 32 == 0 && n <= r::column_dots_max_n) {
      if (bits == 4 && r::dw_layout<Arch>(n)) {
        return r::code4_dots_dw<Arch>(in, stride, rows, n, q, nq, out, ld);
      }
      if (r::with_code_columns<r::code_columns32, Arch>(bits, [&](auto columns) {
            r::dots32<Arch>(columns, in, stride, rows, n, q, nq, out, ld);
          })) {
        return;
      }
    }
  }
#endif
#if XSIMD_WITH_AVX2
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch>) {
    if (n % 16 == 0 && n <= r::column_dots_max_n &&
        r::with_code_columns<r::code_columns, Arch>(bits, [&](auto columns) {
          r::dots16_avx2<Arch>(columns, in, stride, rows, n, q, nq, out, ld);
        })) {
      return;
    }
  }
#endif
  detail::packed::with_bits<Arch>(bits, [&](auto b) {
    r::dots<r::packed_codes<decltype(b)::value, Arch>, Arch>({}, in, stride, rows, n, q, nq, out,
                                                             ld);
  });
}
template <class Arch>
void code_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                    unsigned bits, const float* w, std::size_t ldw, std::size_t nq,
                    float* acc) noexcept {
  namespace r = detail::rows;
#if XSIMD_WITH_AVX512BW
  if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
    if (n % 32 == 0 && r::with_code_columns<r::code_columns32, Arch>(bits, [&](auto columns) {
          r::axpys32<Arch>(columns, in, stride, rows, n, w, ldw, nq, acc);
        })) {
      return;
    }
  }
#endif
#if XSIMD_WITH_AVX2
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch>) {
    if (n % 16 == 0 && r::with_code_columns<r::code_columns, Arch>(bits, [&](auto columns) {
          r::axpys16_avx2<Arch>(columns, in, stride, rows, n, w, ldw, nq, acc);
        })) {
      return;
    }
  }
#endif
  detail::packed::with_bits<Arch>(bits, [&](auto b) {
    r::axpys<r::packed_codes<decltype(b)::value, Arch>, Arch>({}, in, stride, rows, n, w, ldw, nq,
                                                              acc);
  });
}

// Float rows (Half: fp16): on AVX-512 rows of a multiple of 32 elements take the column kernels
// (decode attention on fp32 and fp16 caches 0.68-0.76x and 0.51-0.59x the time), others the
// generic loops. (AVX2's 16-column kernels were slower than its generic loops on float rows:
// fp32 1.06-1.27x the time.)
namespace detail::rows {
template <bool Half, class Arch>
void float_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                    const float* q, std::size_t nq, float* out, std::size_t ld) noexcept {
#if XSIMD_WITH_AVX512BW
  if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
    if (n % 32 == 0 && n <= column_dots_max_n) {
      return dots32<Arch>(float_columns32<Half, Arch>{}, in, stride, rows, n, q, nq, out, ld);
    }
  }
#endif
  using values = std::conditional_t<Half, f16_values<Arch>, f32_values<Arch>>;
  dots<values, Arch>({}, in, stride, rows, n, q, nq, out, ld);
}
template <bool Half, class Arch>
void float_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                     const float* w, std::size_t ldw, std::size_t nq, float* acc) noexcept {
#if XSIMD_WITH_AVX512BW
  if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
    if (n % 32 == 0) {
      return axpys32<Arch>(float_columns32<Half, Arch>{}, in, stride, rows, n, w, ldw, nq, acc);
    }
  }
#endif
  using values = std::conditional_t<Half, f16_values<Arch>, f32_values<Arch>>;
  axpys<values, Arch>({}, in, stride, rows, n, w, ldw, nq, acc);
}
}  // namespace detail::rows

template <class Arch>
void f32_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                  const float* q, std::size_t nq, float* out, std::size_t ld) noexcept {
  detail::rows::float_row_dots<false, Arch>(in, stride, rows, n, q, nq, out, ld);
}
template <class Arch>
void f32_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                   const float* w, std::size_t ldw, std::size_t nq, float* acc) noexcept {
  detail::rows::float_row_axpys<false, Arch>(in, stride, rows, n, w, ldw, nq, acc);
}
template <class Arch>
void f16_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                  const float* q, std::size_t nq, float* out, std::size_t ld) noexcept {
  detail::rows::float_row_dots<true, Arch>(in, stride, rows, n, q, nq, out, ld);
}
template <class Arch>
void f16_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                   const float* w, std::size_t ldw, std::size_t nq, float* acc) noexcept {
  detail::rows::float_row_axpys<true, Arch>(in, stride, rows, n, w, ldw, nq, acc);
}

// ---- appended: rows of table-indexed codes ------------------------------------------------
//
// lut_row_* are code_row_* with the codes looked up in a table of up to 16 floats instead of
// converted: AVX-512 holds the table in one register (vpermps over 16 lanes), AVX2 blends two
// 8-lane permutes, the generic path indexes memory (lut.hpp's lookup16). They run the same
// loops as code_row_* with a reader holding the table (the generic dots/axpys with lut_codes;
// on AVX-512 rows of a multiple of 32 codes, the 32-column kernels with lut_columns32; on AVX2,
// rows of a multiple of 16, the 16-column kernels with lut_columns), so axpys equal the oracle
// bit for bit and dots agree within the same bound.
namespace detail::rows {

template <unsigned Bits, class Arch>
struct lut_codes {
  detail::lut::scaled_table16<Arch> t;
  explicit lut_codes(const float* padded16) noexcept : t(padded16, 1.0f) {}
  std::size_t full(std::size_t n) const noexcept {
    return packed::full_batches<Bits, Arch>(n, Arch{});
  }
  F<Arch> load(const std::uint8_t* row, std::size_t i) const noexcept {
    return detail::lut::lookup16<Arch>(packed::unpack_batch<Bits, Arch>(row, i, Arch{}), t, Arch{});
  }
  F<Arch> tail(const std::uint8_t* row, std::size_t i, std::size_t n) const noexcept {
    return packed::keep_first<Arch>(detail::lut::lookup16<Arch>(unpack_last(row, i, n), t, Arch{}),
                                    n - i, Arch{});
  }

 private:
  // Codes [i, n) at the end of a row. The x86 batch decoder reads `reach` bytes (a power of
  // two) for a `block` of fewer bytes (3 bits: 8 for 6), so with 3-bit codes the last batch of
  // a row lands here (e.g. 80 codes on AVX-512, 72 on AVX2: the column kernels take multiples
  // of 32 and 16);
  // unpack_tail copies it through a zeroed buffer with a variable length. When the row is at
  // least `reach` bytes long, one fixed-size load ending at the row's last byte, shifted down to
  // the batch's first byte, is the same input in a register.
  static packed::i32<Arch> unpack_last(const std::uint8_t* row, std::size_t i,
                                       std::size_t n) noexcept {
#if XSIMD_WITH_AVX2 || XSIMD_WITH_AVX512BW
    if constexpr (std::is_base_of_v<xsimd::avx2, Arch> ||
                  std::is_base_of_v<xsimd::avx512bw, Arch>) {
      constexpr std::size_t W = F<Arch>::size;
      constexpr std::size_t reach = packed::x86_reach<Bits, W>;
      const std::size_t start = i / 8 * Bits, end = packed::code_bytes<Arch>(n, Bits);
      if constexpr (reach == 4 || reach == 8) {
        if (end >= reach) {
          using word = std::conditional_t<reach == 8, std::uint64_t, std::uint32_t>;
          word v;
          std::memcpy(&v, row + end - reach, reach);
          v = static_cast<word>(v >> (8 * (start - (end - reach))));
          std::uint8_t buf[reach];
          std::memcpy(buf, &v, reach);
          return packed::unpack_batch<Bits, Arch>(buf, 0, Arch{});
        }
      }
    }
#endif
    return packed::unpack_tail<Bits, Arch>(row, i, n, Arch{});
  }
};

// Calls f(integral_constant<unsigned, bits>) for bits 1..4 (the codes a 16-entry table covers).
template <class Fn>
void with_lut_bits(unsigned bits, Fn&& f) noexcept {
  switch (bits) {
    case 1:
      f(std::integral_constant<unsigned, 1>{});
      break;
    case 2:
      f(std::integral_constant<unsigned, 2>{});
      break;
    case 3:
      f(std::integral_constant<unsigned, 3>{});
      break;
    case 4:
      f(std::integral_constant<unsigned, 4>{});
      break;
    default:
      break;  // precondition violated: touch nothing
  }
}

// The table padded to 16 entries (codes of fewer bits never reach the padding).
template <class Arch>
void pad_table16(const float* table, unsigned bits, float* padded) noexcept {
  for (std::size_t k = 0; k < 16; ++k) padded[k] = k < (std::size_t{1} << bits) ? table[k] : 0.0f;
}

}  // namespace detail::rows

template <class Arch>
void lut_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                  unsigned bits, const float* table, const float* q, std::size_t nq, float* out,
                  std::size_t ld) noexcept {
  alignas(64) float padded[16];
  detail::rows::pad_table16<Arch>(table, bits, padded);
  detail::rows::with_lut_bits(bits, [&](auto b) {
    constexpr unsigned B = decltype(b)::value;
#if XSIMD_WITH_AVX512BW
    if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
      if (n % 32 == 0 && n <= detail::rows::column_dots_max_n) {
        detail::rows::dots32<Arch>(detail::rows::lut_columns32<B, Arch>(padded), in, stride, rows,
                                   n, q, nq, out, ld);
        return;
      }
    }
#endif
#if XSIMD_WITH_AVX2
    if constexpr (std::is_base_of_v<xsimd::avx2, Arch>) {
      if (n % 16 == 0 && n <= detail::rows::column_dots_max_n) {
        detail::rows::dots16_avx2<Arch>(detail::rows::lut_columns<B, Arch>(padded), in, stride,
                                        rows, n, q, nq, out, ld);
        return;
      }
    }
#endif
    const detail::rows::lut_codes<B, Arch> e(padded);
    detail::rows::dots<decltype(e), Arch>(e, in, stride, rows, n, q, nq, out, ld);
  });
}
template <class Arch>
void lut_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                   unsigned bits, const float* table, const float* w, std::size_t ldw,
                   std::size_t nq, float* acc) noexcept {
  alignas(64) float padded[16];
  detail::rows::pad_table16<Arch>(table, bits, padded);
  detail::rows::with_lut_bits(bits, [&](auto b) {
    constexpr unsigned B = decltype(b)::value;
#if XSIMD_WITH_AVX512BW
    if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
      if (n % 32 == 0) {
        detail::rows::axpys32<Arch>(detail::rows::lut_columns32<B, Arch>(padded), in, stride, rows,
                                    n, w, ldw, nq, acc);
        return;
      }
    }
#endif
#if XSIMD_WITH_AVX2
    if constexpr (std::is_base_of_v<xsimd::avx2, Arch>) {
      if (n % 16 == 0) {
        detail::rows::axpys16_avx2<Arch>(detail::rows::lut_columns<B, Arch>(padded), in, stride,
                                         rows, n, w, ldw, nq, acc);
        return;
      }
    }
#endif
    const detail::rows::lut_codes<B, Arch> e(padded);
    detail::rows::axpys<decltype(e), Arch>(e, in, stride, rows, n, w, ldw, nq, acc);
  });
}

// ---- appended: strided fp16 pairs ---------------------------------------------------------
//
#if XSIMD_WITH_AVX2
namespace detail::rows {
// The 4-byte pairs of rows j .. j + 3 (`stride` bytes apart) as the dwords of one register:
// one 4-byte load each, merged by a tree of unpacks (a gather took twice as long on Zen 5).
template <class Arch>
__m128i four_pairs(const std::uint8_t* in, std::size_t stride, std::size_t j) noexcept {
  const auto pair = [&](std::size_t k) {
    std::int32_t v;
    std::memcpy(&v, in + k * stride, 4);
    return _mm_cvtsi32_si128(v);
  };
  return _mm_unpacklo_epi64(_mm_unpacklo_epi32(pair(j), pair(j + 1)),
                            _mm_unpacklo_epi32(pair(j + 2), pair(j + 3)));
}
}  // namespace detail::rows
#endif

// Per-token codecs keep a (scale, offset) binary16 pair at the head of every row; attention
// needs them as floats for a page of rows at a time. A scalar gather into a buffer plus a
// conversion call cost as much as a third of the 4-bit dots at head_dim 64. AVX-512 and AVX2
// gather 16 or 8 pairs as dwords and convert both halves in registers; other targets gather
// 16-bit halves into a batch and convert it with the batch converter. Exact (same bits as
// ref::half_pairs).

template <class Arch>
void half_pairs(const std::uint8_t* in, std::size_t stride, std::size_t n, float* first,
                float* second) noexcept {
  std::size_t t = 0;
#if XSIMD_WITH_AVX512BW
  if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
    if (stride == 4) {  // contiguous pairs (per-channel parameters): plain loads
      for (; t < n; t += 16) {
        const std::size_t k = n - t < 16 ? n - t : 16;
        const __mmask16 m = static_cast<__mmask16>((1u << k) - 1u);
        const __m512i x = _mm512_maskz_loadu_epi32(m, in + 4 * t);
        _mm512_mask_storeu_ps(first + t, m, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(x)));
        _mm512_mask_storeu_ps(second + t, m,
                              _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(x, 16))));
      }
      return;
    }
    // 16 pairs (four_pairs), both halves converted in registers.
    for (; t + 16 <= n; t += 16) {
      // The pairs are often the first bytes of a page attention touches (values: before the
      // row kernel): ask for the rows 32 ahead so that their misses overlap.
      for (std::size_t j = t + 32; j < t + 48 && j < n; ++j)
        _mm_prefetch(reinterpret_cast<const char*>(in + j * stride), _MM_HINT_T0);
      __m128i q4[4];
      for (std::size_t c = 0; c < 4; ++c)
        q4[c] = detail::rows::four_pairs<Arch>(in, stride, t + 4 * c);
      const __m512i x = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(q4[0]), q4[1], 1)),
          _mm256_inserti128_si256(_mm256_castsi128_si256(q4[2]), q4[3], 1), 1);
      _mm512_storeu_ps(first + t, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(x)));
      _mm512_storeu_ps(second + t,
                       _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(x, 16))));
    }
  }
#endif
#if XSIMD_WITH_AVX2
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch>) {
    // 8 pairs as dwords (one load, or four_pairs twice); one byte shuffle and one qword permute
    // put the 8 first halves in the low 128 bits, the 8 second halves in the high. (Gathering
    // the halves through 16-bit stores into a buffer made each 128-bit reload wait for store
    // forwarding to fail: 11% of 4-bit decode attention at head_dim 64.)
    const __m256i halves = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0,
                                            1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    for (; t + 8 <= n; t += 8) {
      __m256i x;
      if (stride == 4) {  // contiguous pairs (per-channel parameters)
        x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 4 * t));
      } else {
        for (std::size_t j = t + 32; j < t + 40 && j < n; ++j)  // as above: misses overlap
          _mm_prefetch(reinterpret_cast<const char*>(in + j * stride), _MM_HINT_T0);
        x = _mm256_inserti128_si256(
            _mm256_castsi128_si256(detail::rows::four_pairs<Arch>(in, stride, t)),
            detail::rows::four_pairs<Arch>(in, stride, t + 4), 1);
      }
      x = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(x, halves), _MM_SHUFFLE(3, 1, 2, 0));
      _mm256_storeu_ps(first + t, _mm256_cvtph_ps(_mm256_castsi256_si128(x)));
      _mm256_storeu_ps(second + t, _mm256_cvtph_ps(_mm256_extracti128_si256(x, 1)));
    }
  }
#endif
  constexpr std::size_t W = batch<float, Arch>::size;
  for (; t + W <= n; t += W) {
    std::uint16_t h[2][W];
    for (std::size_t j = 0; j < W; ++j) {
      std::memcpy(&h[0][j], in + (t + j) * stride, 2);
      std::memcpy(&h[1][j], in + (t + j) * stride + 2, 2);
    }
    detail::cvt::f16_to_f32_block<Arch>(h[0], first + t, Arch{});
    detail::cvt::f16_to_f32_block<Arch>(h[1], second + t, Arch{});
  }
  for (; t < n; ++t) {
    std::uint16_t h[2];
    std::memcpy(h, in + t * stride, 4);
    first[t] = detail::cvt::portable_f16_to_f32<Arch>(h[0]);
    second[t] = detail::cvt::portable_f16_to_f32<Arch>(h[1]);
  }
}

template <class Arch>
void affine_scores(const float* scale, const float* offset, float c, float* y,
                   std::size_t n) noexcept {
  using F = detail::rows::F<Arch>;
  constexpr std::size_t W = F::size;
  const F cv(c);
  std::size_t t = 0;
  for (; t + W <= n; t += W) {
    const F o = F::load_unaligned(offset + t) * cv;
    detail::packed::fmadd<Arch>(F::load_unaligned(scale + t), F::load_unaligned(y + t), o)
        .store_unaligned(y + t);
  }
  for (; t < n; ++t) y[t] = std::fma(scale[t], y[t], offset[t] * c);  // (FMA in kernel units)
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace simd
}  // namespace qcodec
