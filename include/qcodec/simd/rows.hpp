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
//   f32_*   n little-endian floats;   f16_*   n IEEE binary16 values.
// Each row is read once for all nq vectors, which is what makes compressed attention faster
// than fp32 rather than slower: the decode cost is shared by the query heads of the group.
//
// Exactness: axpys add the rows in order with one fused multiply-add per element, on every
// target, so they equal the qcodec::ref oracle bit for bit. Dots sum lanes in a different order
// than the sequential oracle; they agree within (n + 1) * FLT_EPSILON * sum_i |row_i * q_i|.

#include <qcodec/simd/affine.hpp>
#include <qcodec/simd/arch.hpp>
#include <qcodec/simd/convert.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

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

}  // namespace ref

namespace simd {

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
};

template <class Arch>
row_kernels make_row_kernels() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::code_row_dots, &ref::code_row_axpys, &ref::f32_row_dots,
            &ref::f32_row_axpys, &ref::f16_row_dots,   &ref::f16_row_axpys};
  } else {
    return {&code_row_dots<Arch>, &code_row_axpys<Arch>, &f32_row_dots<Arch>,
            &f32_row_axpys<Arch>, &f16_row_dots<Arch>,   &f16_row_axpys<Arch>};
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
// batch at element i, tail(row, i, n) elements [i, n) with the other lanes zero.
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
  static F<Arch> load(const std::uint8_t* row, std::size_t i) noexcept {
    alignas(64) float v[F<Arch>::size];
    std::memcpy(v, row + 4 * i, sizeof v);
    return F<Arch>::load_aligned(v);
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
    std::uint16_t h[F<Arch>::size];
    std::memcpy(h, row + 2 * i, sizeof h);
    alignas(64) float v[F<Arch>::size];
    cvt::f16_to_f32_block<Arch>(h, v, Arch{});
    return F<Arch>::load_aligned(v);
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
void dots(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
          const float* q, std::size_t nq, float* out, std::size_t ld) noexcept {
  constexpr std::size_t W = F<Arch>::size;
  const std::size_t full = E::full(n);
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
          const F<Arch> c = E::load(row, i);
          for (std::size_t g = 0; g < G; ++g)
            a[g] = packed::fmadd<Arch>(c, F<Arch>::load_unaligned(qg + g * n + i), a[g]);
        }
        for (; i < n; i += W) {
          const std::size_t k = n - i < W ? n - i : W;
          const F<Arch> c = E::tail(row, i, i + k);
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
void axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
           const float* w, std::size_t ldw, std::size_t nq, float* acc) noexcept {
  constexpr std::size_t W = F<Arch>::size;
  const std::size_t full = E::full(n);
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
          const F<Arch> c0 = E::load(row, i), c1 = E::load(row, i + W);
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
          const F<Arch> c = whole ? E::load(row, i) : E::tail(row, i, i + k);
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

}  // namespace detail::rows

template <class Arch>
void code_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                   unsigned bits, const float* q, std::size_t nq, float* out,
                   std::size_t ld) noexcept {
  detail::packed::with_bits<Arch>(bits, [&](auto b) {
    detail::rows::dots<detail::rows::packed_codes<decltype(b)::value, Arch>, Arch>(
        in, stride, rows, n, q, nq, out, ld);
  });
}
template <class Arch>
void code_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                    unsigned bits, const float* w, std::size_t ldw, std::size_t nq,
                    float* acc) noexcept {
  detail::packed::with_bits<Arch>(bits, [&](auto b) {
    detail::rows::axpys<detail::rows::packed_codes<decltype(b)::value, Arch>, Arch>(
        in, stride, rows, n, w, ldw, nq, acc);
  });
}
template <class Arch>
void f32_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                  const float* q, std::size_t nq, float* out, std::size_t ld) noexcept {
  detail::rows::dots<detail::rows::f32_values<Arch>, Arch>(in, stride, rows, n, q, nq, out, ld);
}
template <class Arch>
void f32_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                   const float* w, std::size_t ldw, std::size_t nq, float* acc) noexcept {
  detail::rows::axpys<detail::rows::f32_values<Arch>, Arch>(in, stride, rows, n, w, ldw, nq, acc);
}
template <class Arch>
void f16_row_dots(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                  const float* q, std::size_t nq, float* out, std::size_t ld) noexcept {
  detail::rows::dots<detail::rows::f16_values<Arch>, Arch>(in, stride, rows, n, q, nq, out, ld);
}
template <class Arch>
void f16_row_axpys(const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                   const float* w, std::size_t ldw, std::size_t nq, float* acc) noexcept {
  detail::rows::axpys<detail::rows::f16_values<Arch>, Arch>(in, stride, rows, n, w, ldw, nq, acc);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace simd
}  // namespace qcodec
