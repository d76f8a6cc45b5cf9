#pragma once
// Fast Walsh–Hadamard transform and the randomized Hadamard rotation built on it (QuaRot,
// QuIP#, TurboQuant): spreading a vector's energy evenly over its coordinates before
// quantization, so outliers no longer set the scale of a whole group.
//
// Definitions (n a power of two in [1, 65536]; x holds n floats, any alignment):
//   fwht                         x <- H_n x / sqrt(n)
//   randomized_hadamard          x <- H_n D x / sqrt(n)
//   randomized_hadamard_inverse  x <- D H_n x / sqrt(n)
// where H_n is the Sylvester (natural-order) Hadamard matrix, H_1 = [1],
// H_2n = [[H_n, H_n], [H_n, -H_n]], so (H_n)_ij = (-1)^popcount(i & j); H_n / sqrt(n) is
// orthonormal and its own inverse. D is the diagonal of signs given as n bits packed LSB-first
// (bit i is bits[i / 8] >> (i % 8) & 1; set = negate x_i), e.g. from qcodec::fill_sign_bits.
//
// Every target performs the same floating-point operations on the same operands:
//   1. (randomized_hadamard) negate x_i where bit i is set;
//   2. butterfly stages h = 1, 2, 4, ..., n/2: for each pair (j, j + h) with j & h == 0,
//      (a, b) <- (a + b, a - b);
//   3. multiply every element by hadamard_scale[log2 n], the float nearest 1/sqrt(n);
//   4. (randomized_hadamard_inverse) negate x_i where bit i is set.
// Negation is exact and each butterfly rounds once, so SIMD results equal the qcodec::ref
// oracle bit for bit; no step reassociates a sum.
//
// SIMD layout (W = floats per register): the first log2(W) stages run inside one register (lane
// i meets lane i ^ h through a permute, and fma(v, [+1 | -1 per lane], partner) yields a + b in
// the lower lane and a - b in the upper one, exactly: the product by +-1 is exact, so the fma
// rounds the same sum once). One pass over blocks of R registers (R = 16 on AVX-512, 8 on AVX2
// and NEON) does the sign flip, the in-register stages and log2(R) cross-register stages; the
// remaining stages run as passes of radix 8 or less between registers at stride h, the last one
// fused with the scale and the inverse's sign flip. Up to n = 256 on AVX-512 the whole
// transform is one pass over live registers. Beyond 8192 floats, the stages below h = 8192 run
// chunk by chunk while each 32 KiB chunk is L1-resident, and only the remaining stages sweep
// the whole array: n = 65536 (256 KiB, L2-resident) reads and writes it twice.

#include <qcodec/simd/arch.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

// The register-array helpers below must be inlined into their pass for the arrays to live in
// registers; GCC's size heuristics otherwise outline the 16-register versions. Undefined at the
// end of this header.
#if defined(__GNUC__) || defined(__clang__)
#define QCODEC_HADAMARD_INLINE [[gnu::always_inline]] inline
#else
#define QCODEC_HADAMARD_INLINE inline
#endif

namespace qcodec {

/// hadamard_scale[k] is the float nearest 1/sqrt(2^k): exact powers of two for even k, and for
/// odd k float(1/sqrt(2)) * 2^-(k-1)/2, which is that nearest float since scaling by a power of
/// two preserves rounding.
inline constexpr float hadamard_scale[17] = {
    1.0f,       0.70710678118654752440f,  0.5f,       0.35355339059327376220f,
    0.25f,      0.17677669529663688110f,  0.125f,     0.088388347648318440550f,
    0.0625f,    0.044194173824159220275f, 0.03125f,   0.022097086912079610138f,
    0.015625f,  0.011048543456039805069f, 0.0078125f, 0.0055242717280199025344f,
    0.00390625f};

/// Largest transform length the kernels accept.
inline constexpr std::size_t hadamard_max_length = 65536;

namespace ref {

namespace detail {

inline bool hadamard_sign_bit(const std::uint8_t* bits, std::size_t i) noexcept {
  return ((bits[i / 8] >> (i % 8)) & 1u) != 0;
}

// Butterfly stages of the unnormalized Sylvester transform, h = 1, 2, ..., n/2.
inline void hadamard_stages(float* x, std::size_t n) noexcept {
  for (std::size_t h = 1; h < n; h *= 2) {
    for (std::size_t i = 0; i < n; i += 2 * h) {
      for (std::size_t j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
}

}  // namespace detail

/// In-place normalized fast Walsh–Hadamard transform, x <- H_n x / sqrt(n). n is a power of two
/// in [1, 65536] (n == 0 does nothing).
inline void fwht(float* x, std::size_t n) noexcept {
  if (n == 0) return;
  detail::hadamard_stages(x, n);
  const float scale = hadamard_scale[std::countr_zero(n)];
  for (std::size_t i = 0; i < n; ++i) x[i] *= scale;
}

/// x <- H_n D x / sqrt(n), D = diag(sign bits, set = -1), bits packed LSB-first ((n+7)/8 bytes).
inline void randomized_hadamard(float* x, std::size_t n, const std::uint8_t* sign_bits) noexcept {
  for (std::size_t i = 0; i < n; ++i)
    if (detail::hadamard_sign_bit(sign_bits, i)) x[i] = -x[i];
  fwht(x, n);
}

/// Inverse of randomized_hadamard with the same bits: x <- D H_n x / sqrt(n).
inline void randomized_hadamard_inverse(float* x, std::size_t n,
                                        const std::uint8_t* sign_bits) noexcept {
  fwht(x, n);
  for (std::size_t i = 0; i < n; ++i)
    if (detail::hadamard_sign_bit(sign_bits, i)) x[i] = -x[i];
}

}  // namespace ref

namespace simd {

template <class Arch>
void fwht(float* x, std::size_t n) noexcept;
template <class Arch>
void randomized_hadamard(float* x, std::size_t n, const std::uint8_t* sign_bits) noexcept;
template <class Arch>
void randomized_hadamard_inverse(float* x, std::size_t n, const std::uint8_t* sign_bits) noexcept;

/// The Hadamard entries of a kernel table (see kernel_table.hpp); contracts as in qcodec::ref.
struct hadamard_kernels {
  void (*fwht)(float* x, std::size_t n) noexcept;
  void (*randomized_hadamard)(float* x, std::size_t n, const std::uint8_t* sign_bits) noexcept;
  void (*randomized_hadamard_inverse)(float* x, std::size_t n,
                                      const std::uint8_t* sign_bits) noexcept;
};

template <class Arch>
hadamard_kernels make_hadamard_kernels() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::fwht, &ref::randomized_hadamard, &ref::randomized_hadamard_inverse};
  } else {
    return {&fwht<Arch>, &randomized_hadamard<Arch>, &randomized_hadamard_inverse<Arch>};
  }
}

// Names are nested in `wht` so they cannot collide with other kernel modules' helpers.
namespace detail::wht {

// Lane i of the result is lane i ^ H of v (H a power of two below the register width).
template <std::size_t H>
struct xor_lane_index {
  static constexpr std::uint32_t get(std::size_t i, std::size_t) noexcept {
    return static_cast<std::uint32_t>(i ^ H);
  }
};

template <class Arch, std::size_t H>
QCODEC_HADAMARD_INLINE batch<float, Arch> hadamard_partner(const batch<float, Arch>& v,
                                                           xsimd::generic) noexcept {
  return xsimd::swizzle(
      v, xsimd::make_batch_constant<batch<std::uint32_t, Arch>, xor_lane_index<H>>());
}
// Immediate in-lane permutes and 128-bit lane swaps: cheaper than the variable permute
// xsimd's swizzle emits.
#if XSIMD_WITH_AVX2
template <class Arch, std::size_t H>
QCODEC_HADAMARD_INLINE batch<float, Arch> hadamard_partner(const batch<float, Arch>& v,
                                                           xsimd::avx2) noexcept {
  if constexpr (H == 1) {
    return _mm256_permute_ps(v, 0xB1);  // (1, 0, 3, 2)
  } else if constexpr (H == 2) {
    return _mm256_permute_ps(v, 0x4E);  // (2, 3, 0, 1)
  } else {
    static_assert(H == 4);
    return _mm256_permute2f128_ps(v, v, 0x01);  // swap 128-bit halves
  }
}
#endif
#if XSIMD_WITH_AVX512F
// The all-lanes masked forms compile to the plain instructions; the unmasked intrinsics start
// from _mm512_undefined_ps(), which GCC 12 reports as maybe-uninitialized.
template <class Arch, std::size_t H>
QCODEC_HADAMARD_INLINE batch<float, Arch> hadamard_partner(const batch<float, Arch>& v,
                                                           xsimd::avx512f) noexcept {
  constexpr __mmask16 all = 0xFFFF;
  if constexpr (H == 1) {
    return _mm512_mask_permute_ps(v, all, v, 0xB1);
  } else if constexpr (H == 2) {
    return _mm512_mask_permute_ps(v, all, v, 0x4E);
  } else if constexpr (H == 4) {
    return _mm512_mask_shuffle_f32x4(v, all, v, v, 0xB1);  // 128-bit blocks (1, 0, 3, 2)
  } else {
    static_assert(H == 8);
    return _mm512_mask_shuffle_f32x4(v, all, v, v, 0x4E);  // 128-bit blocks (2, 3, 0, 1)
  }
}
#endif

// v with lane i negated where sign bit first + i is set; `first` is a multiple of the register
// width, so the register's bits start on a byte (or, for 4 lanes, nibble) boundary.
template <class Arch>
QCODEC_HADAMARD_INLINE batch<float, Arch> flip_signs(const batch<float, Arch>& v,
                                                     const std::uint8_t* bits, std::size_t first,
                                                     xsimd::generic) noexcept {
  constexpr std::size_t W = batch<float, Arch>::size;
  alignas(64) float lanes[W];
  v.store_aligned(lanes);
  for (std::size_t i = 0; i < W; ++i)
    if ((bits[(first + i) / 8] >> ((first + i) % 8)) & 1u) lanes[i] = -lanes[i];
  return batch<float, Arch>::load_aligned(lanes);
}
#if XSIMD_WITH_AVX2
template <class Arch>
QCODEC_HADAMARD_INLINE batch<float, Arch> flip_signs(const batch<float, Arch>& v,
                                                     const std::uint8_t* bits, std::size_t first,
                                                     xsimd::avx2) noexcept {
  // Shift bit i of the byte to bit 31 of lane i, keep only that bit: the lane's sign mask.
  const __m256i byte = _mm256_set1_epi32(bits[first / 8]);
  const __m256i to_top = _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24);
  const __m256i sign = _mm256_and_si256(_mm256_sllv_epi32(byte, to_top),
                                        _mm256_set1_epi32(std::numeric_limits<int>::min()));
  return _mm256_xor_ps(v, _mm256_castsi256_ps(sign));
}
#endif
#if XSIMD_WITH_AVX512F
template <class Arch>
QCODEC_HADAMARD_INLINE batch<float, Arch> flip_signs(const batch<float, Arch>& v,
                                                     const std::uint8_t* bits, std::size_t first,
                                                     xsimd::avx512f) noexcept {
  std::uint16_t word;  // x86 is little-endian: bit i of the word is sign bit first + i
  std::memcpy(&word, bits + first / 8, sizeof word);
  const __m512i vi = _mm512_castps_si512(v);
  return _mm512_castsi512_ps(_mm512_mask_xor_epi32(
      vi, static_cast<__mmask16>(word), vi, _mm512_set1_epi32(std::numeric_limits<int>::min())));
}
#endif

// Lane i holds +1 where bit H of i is clear (the lane receives a + b) and -1 where it is set
// (a - b), for every in-register stage H = 1, 2, ..., W/2 (row log2 H).
template <std::size_t W>
struct butterfly_sign_table {
  static constexpr std::size_t stages = std::countr_zero(W);
  alignas(64) float rows[stages][W];
};

template <std::size_t W>
constexpr butterfly_sign_table<W> make_butterfly_sign_table() noexcept {
  butterfly_sign_table<W> t{};
  for (std::size_t s = 0; s < t.stages; ++s)
    for (std::size_t i = 0; i < W; ++i) t.rows[s][i] = ((i >> s) & 1u) ? -1.0f : 1.0f;
  return t;
}

template <std::size_t W>
inline constexpr butterfly_sign_table<W> butterfly_signs = make_butterfly_sign_table<W>();

// The loop-invariant registers of a pass, loaded once before its loop: the butterfly signs of
// the in-register stages, the float sign bit, and the scale.
template <class Arch>
struct hadamard_constants {
  static constexpr std::size_t W = batch<float, Arch>::size;
  static constexpr std::size_t stages = butterfly_sign_table<W>::stages;
  batch<float, Arch> signs[stages];
  batch<float, Arch> scale;

  explicit hadamard_constants(float s) noexcept : scale(s) {
    for (std::size_t k = 0; k < stages; ++k)
      signs[k] = batch<float, Arch>::load_aligned(butterfly_signs<W>.rows[k]);
  }
};

// Stages h = H, 2H, ..., W/2 of one register.
template <class Arch, std::size_t H>
QCODEC_HADAMARD_INLINE batch<float, Arch> in_register_stages(
    batch<float, Arch> v, const hadamard_constants<Arch>& c) noexcept {
  if constexpr (H < batch<float, Arch>::size) {
    v = xsimd::fma(v, c.signs[std::countr_zero(H)], hadamard_partner<Arch, H>(v, Arch{}));
    return in_register_stages<Arch, 2 * H>(v, c);
  } else {
    return v;
  }
}

// Calls f(std::integral_constant<std::size_t, I>{}) for I = 0, ..., N - 1, unrolled at compile
// time: arrays of registers indexed only by constants stay in registers (a runtime loop over
// 16 registers is not fully unrolled by GCC, which then keeps the array on the stack).
template <std::size_t N, class F>
QCODEC_HADAMARD_INLINE void static_for(F&& f) noexcept {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (f(std::integral_constant<std::size_t, I>{}), ...);
  }
  (std::make_index_sequence<N>{});
}

// Butterflies between registers v[k] and v[k + d] for d = D, 2D, ..., K/2: when v[k] holds the
// register at element offset k * h, these are stages D h, ..., (K/2) h in that order.
template <class Arch, std::size_t K, std::size_t D = 1>
QCODEC_HADAMARD_INLINE void cross_register_stages(batch<float, Arch> (&v)[K]) noexcept {
  if constexpr (D < K) {
    static_for<K>([&](auto k) {
      if constexpr ((k & D) == 0) {
        const batch<float, Arch> a = v[k], b = v[k + D];
        v[k] = a + b;
        v[k + D] = a - b;
      }
    });
    cross_register_stages<Arch, K, 2 * D>(v);
  }
}

// Scale (and for the inverse, flip) one finished register and store it at element `at`.
template <class Arch, bool Post>
QCODEC_HADAMARD_INLINE void store_final(float* x, std::size_t at, batch<float, Arch> v,
                                        const hadamard_constants<Arch>& c,
                                        const std::uint8_t* bits) noexcept {
  v = v * c.scale;
  if constexpr (Post) v = flip_signs<Arch>(v, bits, at, Arch{});
  v.store_unaligned(x + at);
}

// One pass over consecutive blocks of R registers: optional sign flip, the in-register stages,
// then the cross-register stages h = W, ..., (R/2) W. When Final (n == R * W) the block is the
// whole transform and is also scaled (and flipped for the inverse).
template <class Arch, std::size_t R, bool Pre, bool Final, bool Post>
void hadamard_block_pass(float* x, std::size_t n, const std::uint8_t* bits, float scale) noexcept {
  using B = batch<float, Arch>;
  constexpr std::size_t W = B::size;
  const hadamard_constants<Arch> c(scale);
  for (std::size_t base = 0; base < n; base += R * W) {
    B v[R];
    static_for<R>([&](auto r) {
      B t = B::load_unaligned(x + base + r * W);
      if constexpr (Pre) t = flip_signs<Arch>(t, bits, base + r * W, Arch{});
      v[r] = in_register_stages<Arch, 1>(t, c);
    });
    cross_register_stages<Arch, R>(v);
    static_for<R>([&](auto r) {
      if constexpr (Final) {
        store_final<Arch, Post>(x, base + r * W, v[r], c, bits);
      } else {
        v[r].store_unaligned(x + base + r * W);
      }
    });
  }
}

// Stages h, 2h, ..., (K/2) h (h a multiple of W) in one pass: K registers at stride h.
template <class Arch, std::size_t K, bool Final, bool Post>
void hadamard_cross_pass(float* x, std::size_t n, std::size_t h, const std::uint8_t* bits,
                         float scale) noexcept {
  using B = batch<float, Arch>;
  constexpr std::size_t W = B::size;
  const hadamard_constants<Arch> c(scale);
  for (std::size_t base = 0; base < n; base += K * h) {
    for (std::size_t j = base; j < base + h; j += W) {
      B v[K];
      static_for<K>([&](auto k) { v[k] = B::load_unaligned(x + j + k * h); });
      cross_register_stages<Arch, K>(v);
      static_for<K>([&](auto k) {
        if constexpr (Final) {
          store_final<Arch, Post>(x, j + k * h, v[k], c, bits);
        } else {
          v[k].store_unaligned(x + j + k * h);
        }
      });
    }
  }
}

template <class Arch, std::size_t K, bool Post>
void run_cross_pass(bool final_pass, float* x, std::size_t n, std::size_t h,
                    const std::uint8_t* bits, float scale) noexcept {
  if (final_pass) {
    hadamard_cross_pass<Arch, K, true, Post>(x, n, h, bits, scale);
  } else {
    hadamard_cross_pass<Arch, K, false, false>(x, n, h, bits, scale);
  }
}

// Stages h, 2h, ..., n/2 over x[0, n) in the fewest passes of radix 8 or less (8 registers
// plus temporaries fit even AVX2 and NEON; 16 streams at a power-of-two stride would also
// overflow the ways of an L1 set), the stages spread evenly over the passes (5 as 3 + 2, not
// 3 + 1 + 1). The last pass is the final one (scale, inverse flip) when `finishes` is set.
template <class Arch, bool Post>
void hadamard_cross_stages(float* x, std::size_t n, std::size_t h, bool finishes,
                           const std::uint8_t* bits, float scale) noexcept {
  constexpr int max_radix_log2 = 3;
  int remaining = std::countr_zero(n / h);
  while (remaining > 0) {
    const int passes = (remaining + max_radix_log2 - 1) / max_radix_log2;
    const int radix_log2 = (remaining + passes - 1) / passes;
    remaining -= radix_log2;
    const bool final_pass = finishes && remaining == 0;
    if (radix_log2 == 3) {
      run_cross_pass<Arch, 8, Post>(final_pass, x, n, h, bits, scale);
    } else if (radix_log2 == 2) {
      run_cross_pass<Arch, 4, Post>(final_pass, x, n, h, bits, scale);
    } else {
      run_cross_pass<Arch, 2, Post>(final_pass, x, n, h, bits, scale);
    }
    h <<= radix_log2;
  }
}

// The whole transform: sign flip before the stages when Pre, after the scale when Post.
template <class Arch, bool Pre, bool Post>
void hadamard_apply(float* x, std::size_t n, const std::uint8_t* bits) noexcept {
  using B = batch<float, Arch>;
  constexpr std::size_t W = B::size;
  if (n < W) {
    // Shorter than one register: the oracle's loops, kept here because kernels must not call
    // qcodec::ref.
    if (n == 0) return;
    if constexpr (Pre) {
      for (std::size_t i = 0; i < n; ++i)
        if ((bits[i / 8] >> (i % 8)) & 1u) x[i] = -x[i];
    }
    for (std::size_t h = 1; h < n; h *= 2) {
      for (std::size_t i = 0; i < n; i += 2 * h) {
        for (std::size_t j = i; j < i + h; ++j) {
          const float a = x[j], b = x[j + h];
          x[j] = a + b;
          x[j + h] = a - b;
        }
      }
    }
    const float s = hadamard_scale[std::countr_zero(n)];
    for (std::size_t i = 0; i < n; ++i) {
      x[i] *= s;
      if constexpr (Post) {
        if ((bits[i / 8] >> (i % 8)) & 1u) x[i] = -x[i];
      }
    }
    return;
  }
  const float scale = hadamard_scale[std::countr_zero(n)];
  // Registers per block: as many as stay live together with the temporaries and constants (16
  // of AVX-512's 32 registers, 8 of AVX2's and NEON's 16), so the first sweep does as many
  // stages as possible.
  constexpr std::size_t R = W >= 16 ? 16 : 8;
  switch (n / W) {
    case 1:
      return hadamard_block_pass<Arch, 1, Pre, true, Post>(x, n, bits, scale);
    case 2:
      return hadamard_block_pass<Arch, 2, Pre, true, Post>(x, n, bits, scale);
    case 4:
      return hadamard_block_pass<Arch, 4, Pre, true, Post>(x, n, bits, scale);
    case 8:
      return hadamard_block_pass<Arch, 8, Pre, true, Post>(x, n, bits, scale);
    case 16:
      if constexpr (R == 16)
        return hadamard_block_pass<Arch, 16, Pre, true, Post>(x, n, bits, scale);
      break;
    default:
      break;
  }
  // Past one block of registers: first every stage below h = L1 on chunks of L1 floats, each
  // chunk swept repeatedly while it stays in the L1 cache, then the stages that mix chunks,
  // sweeping the whole array (L2-resident up to 65536 floats) as few times as possible. 8192
  // floats (32 KiB) measured best on Zen 4 (32 KiB L1) among 2 Ki..32 Ki, ~10% ahead of no
  // chunking at n = 65536; radix 16 between registers measured 40% slower than radix 8 there.
  constexpr std::size_t L1 = 8192;
  const std::size_t chunk = n < L1 ? n : L1;
  const bool one_chunk = chunk == n;
  for (std::size_t c = 0; c < n; c += chunk) {
    // fwht passes no bits (a null pointer must not be offset).
    const std::uint8_t* chunk_bits = (Pre || Post) ? bits + c / 8 : nullptr;
    hadamard_block_pass<Arch, R, Pre, false, false>(x + c, chunk, chunk_bits, scale);
    hadamard_cross_stages<Arch, Post>(x + c, chunk, R * W, one_chunk, chunk_bits, scale);
  }
  if (!one_chunk) hadamard_cross_stages<Arch, Post>(x, n, chunk, true, bits, scale);
}

}  // namespace detail::wht

// Kernels are defined out of line and not `inline` (see kernel_table.hpp).

template <class Arch>
void fwht(float* x, std::size_t n) noexcept {
  detail::wht::hadamard_apply<Arch, false, false>(x, n, nullptr);
}

template <class Arch>
void randomized_hadamard(float* x, std::size_t n, const std::uint8_t* sign_bits) noexcept {
  detail::wht::hadamard_apply<Arch, true, false>(x, n, sign_bits);
}

template <class Arch>
void randomized_hadamard_inverse(float* x, std::size_t n, const std::uint8_t* sign_bits) noexcept {
  detail::wht::hadamard_apply<Arch, false, true>(x, n, sign_bits);
}

}  // namespace simd
}  // namespace qcodec

#undef QCODEC_HADAMARD_INLINE
