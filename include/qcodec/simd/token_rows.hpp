#pragma once
// Blocks of 16 tokens' affine code rows with their parameters in front: the value sums of
// kv::token_rows (per-token values stored 16 tokens to a unit).
//
// Block layout, token_rows_block_bytes(n, bits) bytes (bits 1..8):
//   bytes [0, 32)    the 16 tokens' scales s_t, binary16
//   bytes [32, 64)   their offsets o_t, binary16
//   bytes [64, ...)  their rows of n codes, token t's at 64 + t * token_row_bytes(n, bits)
//                    (ceil(n * bits / 8) bytes), packed LSB-first as rows.hpp's
// The codes are one row per token, as kv::per_token's, whose value sums gather each token's
// parameters from its own unit (a gather across 16 units, 10% of a 4-bit decode step at
// head_dim 64); here a block's 16 scales are one load.
//
//   token_row_axpys_w16   for the `count` blocks at `in` (consecutive), in chunks of up to 16
//                         blocks (256 tokens), and each weight vector p_g = p[g * ldp, + tokens):
//     w_t = p_g[t] * s_t                 the weights take in the scales
//     b   = sum_t p_g[t] * o_t           in a fixed order: lane l sums fma(p_t, o_t, lane) over
//                                        the chunk's tokens t with t % 16 == l, block by block,
//                                        then lanes l + 8, l + 4, l + 2 and l + 1 are added to l
//     acc[g * n + i] = fma(S_g, float(sum_t code_t[i] * w16_t), acc[g * n + i] + b)
// with w16 and S_g the 16-bit form of w over the chunk (int16_axpys.hpp's, whose kernels do the
// sums). That is sum_t p_t (s_t code_t + o_t), the affine values weighted; every target returns
// the oracle's bits (NaN payloads aside). A weight vector holding a NaN or an infinity (after
// the scales) adds NaN.
//
// Fast paths as code_row_axpys_w16's: 4-bit codes with n a multiple of 64 on AVX-512 VNNI, of 32
// on AVX2; generic sums otherwise.

#include <qcodec/simd/affine.hpp>
#include <qcodec/simd/arch.hpp>
#include <qcodec/simd/convert.hpp>
#include <qcodec/simd/int16_axpys.hpp>
#include <qcodec/simd/token_blocks.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace qcodec {

// The layout's arithmetic, templates on the target as kernel helpers are (kernel_table.hpp);
// codecs and tests use the default.
namespace simd {
/// Bytes of one token's row of n codes.
template <class Arch = scalar>
constexpr std::size_t token_row_bytes(std::size_t n, unsigned bits) noexcept {
  return (n * bits + 7) / 8;
}
/// Bytes of one block (header comment).
template <class Arch = scalar>
constexpr std::size_t token_rows_block_bytes(std::size_t n, unsigned bits) noexcept {
  return 64 + block_tokens * token_row_bytes<Arch>(n, bits);
}
}  // namespace simd

namespace simd::detail::token_rows {

// Row r of consecutive blocks, for int16_axpys.hpp's kernels: runs of 16 rows `stride` apart.
template <class Arch>
struct block_rows {
  const std::uint8_t* in;
  std::size_t block_bytes, stride;
  const std::uint8_t* operator()(std::size_t r) const noexcept {
    return in + r / block_tokens * block_bytes + 64 + r % block_tokens * stride;
  }
  std::size_t run(std::size_t) const noexcept { return block_tokens; }
};

// The offset sum b from its 16 lanes, in the header's order (token_quads.hpp's too).
template <class Arch>
float lane_sum(float* lanes) noexcept {
  for (std::size_t step = block_tokens / 2; step > 0; step /= 2)
    for (std::size_t l = 0; l < step; ++l) lanes[l] += lanes[l + step];
  return lanes[0];
}

#if XSIMD_WITH_AVX512F
// lane_sum of a vector's lanes in registers: the same additions in the same order (token_quads'
// AVX-512 preparation stored its two vectors and summed them in memory: 1.01-1.04x the time of a
// q4-blocks-quads decode step, docs/measurements.md).
template <class Arch>
float lane_sum(__m512 v) noexcept {
  const __m256 half = _mm256_add_ps(
      _mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));                   // lanes 0, 1 += lanes 2, 3
  return _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)));  // lane 0 += lane 1
}
#endif

// The weights w[t] = p[t] s_t of `blocks` blocks; returns the offset sum b in the header's order.
template <class Arch>
float scaled_weights(const std::uint8_t* in, std::size_t blocks, std::size_t block_bytes,
                     const float* p, float* w) noexcept {
  float lanes[block_tokens] = {};
  if constexpr (is_scalar_v<Arch>) {
    for (std::size_t u = 0; u < blocks; ++u) {
      for (std::size_t t = 0; t < block_tokens; ++t) {
        std::uint16_t h[2];
        std::memcpy(&h[0], in + u * block_bytes + 2 * t, 2);
        std::memcpy(&h[1], in + u * block_bytes + 32 + 2 * t, 2);
        const float pt = p[u * block_tokens + t];
        w[u * block_tokens + t] = pt * cvt::portable_f16_to_f32<Arch>(h[0]);
        lanes[t] = std::fma(pt, cvt::portable_f16_to_f32<Arch>(h[1]), lanes[t]);
      }
    }
  } else {
    using B = batch<float, Arch>;
    constexpr std::size_t W = B::size, L = block_tokens / W;
    static_assert(block_tokens % W == 0, "a block is whole vectors");
    B sum[L];
    for (auto& v : sum) v = B(0.0f);
    for (std::size_t u = 0; u < blocks; ++u) {
      const auto* half = reinterpret_cast<const std::uint16_t*>(in + u * block_bytes);
      for (std::size_t j = 0; j < L; ++j) {
        const B s = cvt::f16_to_f32_batch<Arch>(half + j * W, Arch{});
        const B o = cvt::f16_to_f32_batch<Arch>(half + block_tokens + j * W, Arch{});
        const B pv = B::load_unaligned(p + u * block_tokens + j * W);
        (pv * s).store_unaligned(w + u * block_tokens + j * W);
        sum[j] = packed::fmadd<Arch>(pv, o, sum[j]);
      }
    }
    for (std::size_t j = 0; j < L; ++j) sum[j].store_unaligned(lanes + j * W);
  }
  return lane_sum<Arch>(lanes);
}

// One of int16_axpys.hpp's sums on block_rows (the generic, AVX2 or VNNI form).
template <class Arch>
using row_sums_fn = void (*)(const block_rows<Arch>&, std::size_t, std::size_t, unsigned,
                             const float*, std::size_t, std::size_t, float*) noexcept;

// The header's sums with Sums: each table's token_row_axpys_w16, and with the generic sums the
// oracle.
template <class Arch, row_sums_fn<Arch> Sums>
void axpys_blocks(const std::uint8_t* in, std::size_t count, std::size_t n, unsigned bits,
                  const float* p, std::size_t ldp, std::size_t nq, float* acc) noexcept {
  constexpr std::size_t chunk = max_w16_rows / block_tokens;  // blocks rounded together
  constexpr std::size_t heads = 4;                            // weight vectors a call (4 KiB)
  const std::size_t block_bytes = token_rows_block_bytes<Arch>(n, bits);
  alignas(64) float w[heads * max_w16_rows];
  for (std::size_t u0 = 0; u0 < count; u0 += chunk) {
    const std::size_t un = count - u0 < chunk ? count - u0 : chunk;
    const block_rows<Arch> rows{in + u0 * block_bytes, block_bytes, token_row_bytes<Arch>(n, bits)};
    for (std::size_t g0 = 0; g0 < nq; g0 += heads) {
      const std::size_t gn = nq - g0 < heads ? nq - g0 : heads;
      for (std::size_t g = 0; g < gn; ++g) {
        const float b = scaled_weights<Arch>(
            rows.in, un, block_bytes, p + (g0 + g) * ldp + u0 * block_tokens, w + g * max_w16_rows);
        float* out = acc + (g0 + g) * n;
        for (std::size_t i = 0; i < n; ++i) out[i] += b;
      }
      Sums(rows, un * block_tokens, n, bits, w, max_w16_rows, gn, acc + g0 * n);
    }
  }
}

}  // namespace simd::detail::token_rows

namespace ref {

inline void token_row_axpys_w16(const std::uint8_t* in, std::size_t count, std::size_t n,
                                unsigned bits, const float* p, std::size_t ldp, std::size_t nq,
                                float* acc) noexcept {
  namespace d = simd::detail;
  using rows = d::token_rows::block_rows<simd::scalar>;
  d::token_rows::axpys_blocks<simd::scalar, &d::int16_axpys::axpys_generic<simd::scalar, rows>>(
      in, count, n, bits, p, ldp, nq, acc);
}

}  // namespace ref

namespace simd {

/// The entries of a kernel table (see kernel_table.hpp).
struct token_row_kernels {
  void (*token_row_axpys_w16)(const std::uint8_t*, std::size_t, std::size_t, unsigned, const float*,
                              std::size_t, std::size_t, float*) noexcept;
};

// The same choice as make_int16_axpy_kernels.
template <class Arch>
token_row_kernels make_token_row_kernels() noexcept {
  namespace d = detail;
  using rows = d::token_rows::block_rows<Arch>;
#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
  if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
    if (cpu_supports_avx512_vnni())
      return {&d::token_rows::axpys_blocks<Arch, &d::int16_axpys::axpys_vnni<Arch, rows>>};
  }
#endif
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::token_row_axpys_w16};
  } else {
#if XSIMD_WITH_AVX2 && defined(__FMA__)
    if constexpr (std::is_base_of_v<xsimd::avx2, Arch> ||
                  std::is_base_of_v<xsimd::avx512bw, Arch>) {
      return {&d::token_rows::axpys_blocks<Arch, &d::int16_axpys::axpys_avx2<Arch, rows>>};
    }
#endif
    return {&d::token_rows::axpys_blocks<Arch, &d::int16_axpys::axpys_generic<Arch, rows>>};
  }
}

}  // namespace simd
}  // namespace qcodec
