#pragma once
// Blocks of 16 tokens' 4-bit affine codes stored four tokens interleaved, with their parameters
// in front, summed with weights rounded to 8 bits per block: the value sums of kv::token_quads.
//
// Block layout, token_quads_block_bytes(n) bytes (the same size as token_rows.hpp's at 4 bits):
//   bytes [0, 32)    the 16 tokens' scales s_t, binary16
//   bytes [32, 64)   their offsets o_t, binary16
//   bytes [64, ...)  their codes in slices of 32 columns (the last may be narrower): slice m
//                    holds columns [32 m, 32 m + w) with w = min(32, n - 32 m), h = ceil(w / 2)
//                    bytes per token, and starts at byte 64 + 256 m. In it token t's code of
//                    column 32 m + j is in byte 4 h (t / 4) + 4 j' + t % 4: its low nibble for
//                    j < h (j' = j), its high nibble otherwise (j' = j - h; a last odd column
//                    leaves high nibbles zero). A high nibble holds the code XOR 8: as a signed
//                    nibble, code - 8.
// So one 64-byte load of a slice holds four tokens' codes of 32 columns, and its low (high)
// nibbles are 16 columns with the four tokens' codes in one dword: vpdpbusd's operand. The low
// nibbles take one mask; the high ones one mask too, where they lie: x & 0xF0 is 16 (code - 8)
// as signed bytes, vpdpbusd's signed operand, where the codes stored as they are took a shift and
// a mask: q4-blocks-quads decode steps took 0.96-0.99x the time at 4k, 16k/128 and 64k tokens,
// the same at 16k/64, kivi4-q8-quads 0.98-0.99x (0.87x at 64k/128, in the noise there;
// docs/measurements.md).
//
//   token_quad_axpys_u8   for the `count` blocks at `in` (consecutive) and each weight vector
//                         p_g = p[g * ldp, + 16 count):
//     per block u:   w_t = p_g[t] * s_t                     the weights take in the scales
//                    S_u, inv_u: the form of w over the block with the grid 255 (int8_dots.hpp's
//                    form_from: S_u = m / 255, inv_u = 255 / m rounded toward zero, m = max |w_t|)
//                    (S_u, inv_u = 0 where S_u < 2^-122, so that S_u / 16 is exact)
//                    q_t = max(0, w_t * inv_u rounded to an integer in the current mode)
//                    R_u = S_u * float(sum_t q_t)             the rounded weights' sum
//     per chunk of up to 16 blocks, in order:
//                    M: lane t = fma(p_g[16 u + t], fma(7.5, s_t, o_t), lane t) for each block
//                    u in order (from 0), R: lane u = R_u, each summed in token_rows.hpp's order
//                    acc[g * n + i] += b_i = fma(-7.5, R, M), or fma(0.5, R, M) for a column in
//                                      a high nibble (c_i = 8 there, 0 for the others);
//                                      the quiet NaN where M or R is NaN
//                    for each block u:  acc[g * n + i] = fma(S_u, float(sum_t (code_t[i] - c_i)
//                                                            q_t), acc[g * n + i])
// That is sum_t p_t (s_t code_t + o_t), the affine values weighted, each weight p_t s_t off by
// at most max_block / 510 rounding to nearest (a step in directed modes). b is sum_t p_t o_t plus
// 7.5 times the rounding errors' sum, sum_t (w_t - S_u q_t): what those errors would add at the
// middle code 7.5 is taken back, and only the codes' spread around the middle meets the
// rounding; the high nibbles' 8 (the -c_i) comes back in b_i as 8 R. (Without that, the errors'
// mean came through whole: rotated values, whose codes cluster at the middle, put it into one
// output coordinate, 6x the largest error in tests/kv.) Every target returns the oracle's bits. The
// weights are softmax probabilities: a negative weight (after the scales) rounds to 0, so its
// token adds p_t (7.5 s_t + o_t), its value at the middle code, through M, as does every token of a
// block whose S_u is below 2^-122 (its largest weight below about 5e-35). A block whose weights
// hold a NaN or an infinity (after the scales) adds NaN (the same NaN on every target, for an acc
// that holds no NaN).
//
// Why 8 bits per block: the 16-bit weights of token_rows.hpp take vpdpwssd's two codes per lane
// and instruction, the floor of their value sums, which were 39% of a 4-bit decode step at 16k
// tokens and head_dim 64. vpdpbusd takes four (u8 weights by the codes as bytes), and the layout
// above needs no byte shuffles: two masks per 64 bytes. Rounding each weight to 8
// bits of its own block's largest keeps the error far below the 4-bit values' own: a weight is
// off by at most 1/510 of the largest weight among its 16 tokens.
//
// Fast paths: the sums for n a multiple of 32 on AVX-512 VNNI (vpdpbusd) and AVX2 (vpmaddubsw,
// vpmaddwd), generic sums otherwise; the weights' preparation on AVX-512 and AVX2.
// Measured (docs/measurements.md), against token_rows.hpp's sums beside the same keys: 0.68-0.88x
// the time of a decode step from 1k to 64k tokens with VNNI, 0.73-0.91x with the AVX2 kernels.

#include <qcodec/simd/arch.hpp>
#include <qcodec/simd/convert.hpp>
#include <qcodec/simd/int8_dots.hpp>
#include <qcodec/simd/prefetch.hpp>
#include <qcodec/simd/token_blocks.hpp>
#include <qcodec/simd/token_rows.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace qcodec {

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's own AVX-512 intrinsics
#endif

// The layout's arithmetic, templates on the target as kernel helpers are (kernel_table.hpp);
// codecs and tests use the default.
namespace simd {
/// Bytes of one block of n columns (header comment).
template <class Arch = scalar>
constexpr std::size_t token_quads_block_bytes(std::size_t n) noexcept {
  return token_rows_block_bytes<Arch>(n, 4);
}
/// Where token t's code of column i is in a block: byte `byte`, high nibble if `high`.
struct quad_code_place {
  std::size_t byte;
  bool high;
};
template <class Arch = scalar>
constexpr quad_code_place quad_code_at(std::size_t n, std::size_t t, std::size_t i) noexcept {
  const std::size_t m = i / 32, j = i % 32;
  const std::size_t h = ((n - 32 * m < 32 ? n - 32 * m : 32) + 1) / 2;
  const bool high = j >= h;
  return {64 + 256 * m + 4 * h * (t / 4) + 4 * (high ? j - h : j) + t % 4, high};
}
/// The nibble that holds a code (a high nibble holds it XOR 8), and the code a nibble holds.
template <class Arch = scalar>
constexpr unsigned quad_nibble(unsigned code, bool high) noexcept {
  return high ? code ^ 8u : code;
}
/// Token t's code of column i in a block.
template <class Arch = scalar>
constexpr unsigned quad_code(const std::uint8_t* block, std::size_t n, std::size_t t,
                             std::size_t i) noexcept {
  const quad_code_place c = quad_code_at<Arch>(n, t, i);
  return quad_nibble<Arch>(c.high ? block[c.byte] >> 4 : block[c.byte] & 0x0Fu, c.high);
}
}  // namespace simd

namespace simd::detail::token_quads {

inline constexpr std::size_t chunk_blocks = 16;  // blocks whose weights are rounded per pass
inline constexpr std::size_t max_heads = 4;      // weight vectors per pass
inline constexpr float middle_code = 7.5f;       // the 4-bit codes' middle (header)
static_assert(chunk_blocks == block_tokens, "R's lanes are summed as M's");

inline constexpr int high_code = 8;  // c_i of a high nibble's column (header)
// The least S_u kept (header): S_u / 16 is then a normal float, so that the VNNI sums may take
// 16 (code - 8) by S_u / 16 for (code - 8) by S_u.
inline constexpr float least_scale = 0x1p-122f;

// One chunk's rounded weights for up to max_heads weight vectors.
struct chunk_weights {
  alignas(64) std::uint8_t q[max_heads][chunk_blocks * block_tokens];
  alignas(64) float scale[max_heads][chunk_blocks];
  alignas(64) float scale16[max_heads][chunk_blocks];  // S_u / 16
  float offset[max_heads][2];                          // b_i: low, high nibbles' columns
};

// b_i from M's and R's lanes (a chunk's blocks are as many as a block's tokens), in memory or in
// a vector (token_rows::lane_sum). A NaN in either gives b_i the quiet NaN S_u holds for a block
// that is not finite: M and R may hold NaNs of different bits (e.g. an infinite weight on a zero
// scale and offset makes M x86's default NaN, of the other sign), and which NaN fma returns of
// two depends on the order the compiler gives its operands.
template <class Arch, class Lanes>
void set_offsets(Lanes middles, Lanes rounded, float (&offset)[2]) noexcept {
  const float m = token_rows::lane_sum<Arch>(middles), r = token_rows::lane_sum<Arch>(rounded);
  if (std::isnan(m) || std::isnan(r)) {
    offset[0] = offset[1] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  offset[0] = std::fma(-middle_code, r, m);
  offset[1] = std::fma(static_cast<float>(high_code) - middle_code, r, m);
}

// The header's w_t, S_u, q_t and b for the `blocks` blocks at `in` and the weight vectors
// p + g * ldp, g < heads. The scalar form: the oracle's, and the preparation of targets without
// AVX-512 or AVX2.
template <class Arch>
void prepare_scalar(const std::uint8_t* in, std::size_t blocks, std::size_t block_bytes,
                    const float* p, std::size_t ldp, std::size_t heads,
                    chunk_weights& cw) noexcept {
  for (std::size_t g = 0; g < heads; ++g) {
    float middles[block_tokens] = {}, rounded[chunk_blocks] = {};
    for (std::size_t u = 0; u < blocks; ++u) {
      const std::uint8_t* block = in + u * block_bytes;
      const float* pu = p + g * ldp + u * block_tokens;
      float w[block_tokens], m = 0.0f;
      bool finite = true;
      for (std::size_t t = 0; t < block_tokens; ++t) {
        std::uint16_t h[2];
        std::memcpy(&h[0], block + 2 * t, 2);
        std::memcpy(&h[1], block + 32 + 2 * t, 2);
        const float s = cvt::portable_f16_to_f32<Arch>(h[0]);
        w[t] = pu[t] * s;
        const float middle = std::fma(middle_code, s, cvt::portable_f16_to_f32<Arch>(h[1]));
        middles[t] = std::fma(pu[t], middle, middles[t]);
        finite = finite && std::isfinite(w[t]);
        m = std::fmax(m, std::fabs(w[t]));
      }
      int8_dots::int8_form f = int8_dots::form_from<Arch>(m, finite, 255.0f);
      if (f.scale < least_scale) f = {0.0f, 0.0f};
      cw.scale[g][u] = f.scale;
      cw.scale16[g][u] = f.scale * (1.0f / 16.0f);
      std::int32_t total = 0;
      for (std::size_t t = 0; t < block_tokens; ++t) {
        const long q = f.inv == 0.0f ? 0 : std::lrint(w[t] * f.inv);  // in [-255, 255]
        cw.q[g][u * block_tokens + t] = static_cast<std::uint8_t>(q < 0 ? 0 : q);
        total += static_cast<std::int32_t>(q < 0 ? 0 : q);
      }
      rounded[u] = f.scale * static_cast<float>(total);
    }
    set_offsets<Arch>(middles, rounded, cw.offset[g]);
  }
}

#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
// The permute taking dword 4 a + b to dword 4 b + a (a 4x4 transpose of dwords).
template <class Arch>
[[gnu::always_inline]] inline __m512i dword_transpose() noexcept {
  return _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
}

// Lane u: the largest |w| of block u's 16 weights (w: 16 blocks of 16, zeros past `blocks`), as
// bits. The bits of floats without their sign order as the floats do, and NaN and infinities
// come above every finite float: so an integer maximum also says whether the block is finite.
// Four rounds of pairing halves reduce the 16 vectors together (62 instructions, where a
// reduction of each vector on its own took 8 and a store).
template <class Arch>
[[gnu::always_inline]] inline __m512i block_max_bits(const float* w, std::size_t blocks) noexcept {
  const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
  const auto v = [&](std::size_t u) {
    return u < blocks ? _mm512_and_si512(_mm512_load_si512(w + u * block_tokens), magnitude)
                      : _mm512_setzero_si512();
  };
  const auto max_of = [](__m512i x, __m512i y) { return _mm512_max_epu32(x, y); };
  __m512i halves[8], quarters[4], pairs[2];
  for (std::size_t i = 0; i < 8; ++i) {  // lanes 0-7: block 2i, 8-15: block 2i + 1
    const __m512i a = v(2 * i), b = v(2 * i + 1);
    halves[i] = max_of(_mm512_shuffle_i32x4(a, b, 0x44), _mm512_shuffle_i32x4(a, b, 0xEE));
  }
  for (std::size_t i = 0; i < 4; ++i) {  // 128-bit lane k: block 4i + k
    const __m512i a = halves[2 * i], b = halves[2 * i + 1];
    quarters[i] = max_of(_mm512_shuffle_i32x4(a, b, 0x88), _mm512_shuffle_i32x4(a, b, 0xDD));
  }
  for (std::size_t i = 0; i < 2; ++i) {  // 128-bit lane k: blocks 8i + k (0, 1), 8i + 4 + k
    const __m512i a = quarters[2 * i], b = quarters[2 * i + 1];
    pairs[i] = max_of(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
  }
  const __m512 a = _mm512_castsi512_ps(pairs[0]), b = _mm512_castsi512_ps(pairs[1]);
  const __m512i all =  // lane 4k + j: block 4j + k
      max_of(_mm512_castps_si512(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))),
             _mm512_castps_si512(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))));
  return _mm512_permutexvar_epi32(dword_transpose<Arch>(), all);
}

// prepare_scalar's results with AVX-512: a block's 16 weights are one vector, the scales and
// offsets are converted once for every head, and the forms of 16 blocks come from one vector
// division (int8_dots' forms16). Four blocks' rounded weights are packed to bytes together
// (two vpackusdw and a vpackuswb, whose unsigned saturation also takes negatives and NaN's
// INT_MIN to 0), which leaves 128-bit lane i holding quad i (tokens 4 i .. 4 i + 3) of each of
// the four blocks: their sums Q_u come from those bytes (vpmaddubsw and vpmaddwd against ones,
// then 128-bit lanes added), and one dword permute stores the weights in block order.
template <class Arch>
void prepare_avx512(const std::uint8_t* in, std::size_t blocks, std::size_t block_bytes,
                    const float* p, std::size_t ldp, std::size_t heads,
                    chunk_weights& cw) noexcept {
  alignas(64) float w[max_heads][chunk_blocks * block_tokens];
  __m512 middles[max_heads];
  for (auto& v : middles) v = _mm512_setzero_ps();
  for (std::size_t u = 0; u < blocks; ++u) {
    const auto* half = reinterpret_cast<const __m256i*>(in + u * block_bytes);
    const __m512 s = _mm512_cvtph_ps(_mm256_loadu_si256(half));
    const __m512 mid = _mm512_fmadd_ps(_mm512_set1_ps(middle_code), s,
                                       _mm512_cvtph_ps(_mm256_loadu_si256(half + 1)));
    for (std::size_t g = 0; g < heads; ++g) {
      const __m512 pv = _mm512_loadu_ps(p + g * ldp + u * block_tokens);
      _mm512_store_ps(w[g] + u * block_tokens, _mm512_mul_ps(pv, s));
      middles[g] = _mm512_fmadd_ps(pv, mid, middles[g]);
    }
  }
  // Each step below for every head before the next step: the heads' division chains overlap.
  __m512i bits[max_heads];
  for (std::size_t g = 0; g < heads; ++g) bits[g] = block_max_bits<Arch>(w[g], blocks);
  alignas(64) float invs[max_heads][chunk_blocks];
  __m512 scales[max_heads];
  for (std::size_t g = 0; g < heads; ++g) {
    __m512 inv;
    int8_dots::forms16<Arch>(bits[g], 255.0f, inv, scales[g]);
    // (not less: NaN scales stay)
    const __mmask16 kept = _mm512_cmp_ps_mask(scales[g], _mm512_set1_ps(least_scale), _CMP_NLT_UQ);
    scales[g] = _mm512_maskz_mov_ps(kept, scales[g]);
    _mm512_store_ps(invs[g], _mm512_maskz_mov_ps(kept, inv));
    _mm512_store_ps(cw.scale[g], scales[g]);
    _mm512_store_ps(cw.scale16[g], _mm512_mul_ps(scales[g], _mm512_set1_ps(1.0f / 16.0f)));
  }
  const __m512i ones8 = _mm512_set1_epi8(1), ones16 = _mm512_set1_epi16(1);
  for (std::size_t g = 0; g < heads; ++g) {
    __m512i sums[chunk_blocks / 4];  // dword 4 i + j: quad i of block 4 k + j
    for (std::size_t k = 0; k < chunk_blocks / 4; ++k) {
      sums[k] = _mm512_setzero_si512();
      if (4 * k >= blocks) continue;
      __m512i q[4];
      for (std::size_t j = 0; j < 4; ++j) {
        const std::size_t u = 4 * k + j;
        q[j] = u < blocks
                   ? _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_load_ps(w[g] + u * block_tokens),
                                                      _mm512_set1_ps(invs[g][u])))
                   : _mm512_setzero_si512();
      }
      const __m512i bytes =
          _mm512_packus_epi16(_mm512_packus_epi32(q[0], q[1]), _mm512_packus_epi32(q[2], q[3]));
      _mm512_store_si512(cw.q[g] + 64 * k,
                         _mm512_permutexvar_epi32(dword_transpose<Arch>(), bytes));
      sums[k] = _mm512_madd_epi16(_mm512_maddubs_epi16(bytes, ones8), ones16);
    }
    // Lane u: Q_u (the four quads of each block added across the 128-bit lanes).
    const auto pair = [](__m512i a, __m512i b) {
      return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, 0x44), _mm512_shuffle_i32x4(a, b, 0xEE));
    };
    const __m512i x01 = pair(sums[0], sums[1]), x23 = pair(sums[2], sums[3]);
    const __m512i totals = _mm512_add_epi32(_mm512_shuffle_i32x4(x01, x23, 0x88),
                                            _mm512_shuffle_i32x4(x01, x23, 0xDD));
    set_offsets<Arch>(middles[g], _mm512_mul_ps(scales[g], _mm512_cvtepi32_ps(totals)),
                      cw.offset[g]);
  }
}
#endif

// out[i] += b_i for weight vector g (the header's first step of the sums; the VNNI sums add b_i
// to their registers instead).
template <class Arch>
void add_offsets(const chunk_weights& cw, std::size_t g, std::size_t n, float* out) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] += cw.offset[g][quad_code_at<Arch>(n, 0, i).high];
}

// The chunk's sums for `heads` weight vectors, any n: the oracle's, and the fallback.
template <class Arch>
void sums_generic(const std::uint8_t* in, std::size_t blocks, std::size_t block_bytes,
                  std::size_t n, const chunk_weights& cw, std::size_t heads, float* acc) noexcept {
  for (std::size_t g = 0; g < heads; ++g) {
    float* out = acc + g * n;
    add_offsets<Arch>(cw, g, n, out);
    for (std::size_t u = 0; u < blocks; ++u) {
      const std::uint8_t* block = in + u * block_bytes;
      const std::uint8_t* q = cw.q[g] + u * block_tokens;
      for (std::size_t i = 0; i < n; ++i) {
        const std::int32_t c = quad_code_at<Arch>(n, 0, i).high ? high_code : 0;
        std::int32_t sum = 0;
        for (std::size_t t = 0; t < block_tokens; ++t) {
          sum += (static_cast<std::int32_t>(quad_code<Arch>(block, n, t, i)) - c) * q[t];
        }
        out[i] = std::fma(cw.scale[g][u], static_cast<float>(sum), out[i]);
      }
    }
  }
}

// One of the sums below (generic, AVX2 or VNNI) and one of the preparations.
using sums_fn = void (*)(const std::uint8_t*, std::size_t, std::size_t, std::size_t,
                         const chunk_weights&, std::size_t, float*) noexcept;
using prepare_fn = void (*)(const std::uint8_t*, std::size_t, std::size_t, const float*,
                            std::size_t, std::size_t, chunk_weights&) noexcept;

// The header's sums: chunks of 16 blocks, max_heads weight vectors at a time.
template <class Arch, prepare_fn Prepare, sums_fn Sums>
void axpys(const std::uint8_t* in, std::size_t count, std::size_t n, const float* p,
           std::size_t ldp, std::size_t nq, float* acc) noexcept {
  const std::size_t block_bytes = token_quads_block_bytes<Arch>(n);
  chunk_weights cw;
  for (std::size_t u0 = 0; u0 < count; u0 += chunk_blocks) {
    const std::size_t un = std::min(count - u0, chunk_blocks);
    const std::uint8_t* chunk = in + u0 * block_bytes;
    for (std::size_t g0 = 0; g0 < nq; g0 += max_heads) {
      const std::size_t gn = std::min(nq - g0, max_heads);
      Prepare(chunk, un, block_bytes, p + g0 * ldp + u0 * block_tokens, ldp, gn, cw);
      Sums(chunk, un, block_bytes, n, cw, gn, acc + g0 * n);
    }
  }
}

}  // namespace simd::detail::token_quads

namespace ref {

inline void token_quad_axpys_u8(const std::uint8_t* in, std::size_t count, std::size_t n,
                                const float* p, std::size_t ldp, std::size_t nq,
                                float* acc) noexcept {
  namespace d = simd::detail::token_quads;
  d::axpys<simd::scalar, &d::prepare_scalar<simd::scalar>, &d::sums_generic<simd::scalar>>(
      in, count, n, p, ldp, nq, acc);
}

}  // namespace ref

namespace simd {

#if XSIMD_WITH_AVX2 && defined(__FMA__)  // (vfmadd)
namespace detail::token_quads {

// prepare_scalar's results with AVX2, as prepare_avx512 (which see) with a block's 16 weights in
// two vectors; the blocks' maxima are reduced one block at a time. Without it the scalar
// preparation took 57% of a 4-bit decode step at 16k tokens.
template <class Arch>
void prepare_avx2(const std::uint8_t* in, std::size_t blocks, std::size_t block_bytes,
                  const float* p, std::size_t ldp, std::size_t heads, chunk_weights& cw) noexcept {
  alignas(32) float w[max_heads][chunk_blocks * block_tokens];
  alignas(32) std::int32_t bits[max_heads][chunk_blocks] = {};
  __m256 middles[max_heads][2];
  for (auto& a : middles) a[0] = a[1] = _mm256_setzero_ps();
  const __m256i magnitude = _mm256_set1_epi32(0x7FFFFFFF);
  const __m256 middle = _mm256_set1_ps(middle_code);
  for (std::size_t u = 0; u < blocks; ++u) {
    const auto* half = reinterpret_cast<const __m128i*>(in + u * block_bytes);
    const __m256 s[2] = {_mm256_cvtph_ps(_mm_loadu_si128(half)),
                         _mm256_cvtph_ps(_mm_loadu_si128(half + 1))};
    const __m256 mid[2] = {
        _mm256_fmadd_ps(middle, s[0], _mm256_cvtph_ps(_mm_loadu_si128(half + 2))),
        _mm256_fmadd_ps(middle, s[1], _mm256_cvtph_ps(_mm_loadu_si128(half + 3)))};
    for (std::size_t g = 0; g < heads; ++g) {
      __m256i m = _mm256_setzero_si256();
      for (std::size_t k = 0; k < 2; ++k) {
        const __m256 pv = _mm256_loadu_ps(p + g * ldp + u * block_tokens + 8 * k);
        const __m256 wv = _mm256_mul_ps(pv, s[k]);
        _mm256_store_ps(w[g] + u * block_tokens + 8 * k, wv);
        middles[g][k] = _mm256_fmadd_ps(pv, mid[k], middles[g][k]);
        m = _mm256_max_epu32(m, _mm256_and_si256(_mm256_castps_si256(wv), magnitude));
      }
      __m128i x = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
      x = _mm_max_epu32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(1, 0, 3, 2)));
      x = _mm_max_epu32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1)));
      bits[g][u] = _mm_cvtsi128_si32(x);
    }
  }
  const __m256 grid = _mm256_set1_ps(255.0f), zero = _mm256_setzero_ps();
  const __m256 nan = _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN());
  for (std::size_t g = 0; g < heads; ++g) {
    alignas(32) float invs[chunk_blocks];
    for (std::size_t k = 0; k < chunk_blocks; k += 8) {
      const __m256i b = _mm256_load_si256(reinterpret_cast<const __m256i*>(bits[g] + k));
      const __m256 bad = _mm256_castsi256_ps(_mm256_cmpgt_epi32(b, _mm256_set1_epi32(0x7F7FFFFF)));
      const __m256 m = _mm256_castsi256_ps(b);
      __m256 inv = _mm256_div_ps(grid, m);
      const __m256 ok =
          _mm256_cmp_ps(inv, _mm256_set1_ps(std::numeric_limits<float>::max()), _CMP_LT_OQ);
      const __m256 over = _mm256_cmp_ps(_mm256_fmsub_ps(m, inv, grid), zero, _CMP_GT_OQ);
      inv = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(inv),
                                                 _mm256_castps_si256(over)));  // (-1 where over)
      const __m256 scale = _mm256_blendv_ps(_mm256_and_ps(ok, _mm256_div_ps(m, grid)), nan, bad);
      const __m256 tiny = _mm256_cmp_ps(scale, _mm256_set1_ps(least_scale), _CMP_LT_OQ);
      const __m256 kept = _mm256_andnot_ps(tiny, scale);  // (not less: NaN scales stay)
      _mm256_store_ps(invs + k,
                      _mm256_andnot_ps(tiny, _mm256_andnot_ps(bad, _mm256_and_ps(ok, inv))));
      _mm256_store_ps(cw.scale[g] + k, kept);
      _mm256_store_ps(cw.scale16[g] + k, _mm256_mul_ps(kept, _mm256_set1_ps(1.0f / 16.0f)));
    }
    alignas(32) float rounded[chunk_blocks] = {};
    for (std::size_t u = 0; u < blocks; ++u) {
      const __m256 inv = _mm256_set1_ps(invs[u]);
      __m256i q[2];
      for (std::size_t k = 0; k < 2; ++k)
        q[k] =
            _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_load_ps(w[g] + u * block_tokens + 8 * k), inv));
      // Words in order (packs interleaves the halves' 128-bit lanes), then bytes; the unsigned
      // saturations take negatives and NaN's INT_MIN to 0.
      const __m256i words = _mm256_permute4x64_epi64(_mm256_packus_epi32(q[0], q[1]), 0xD8);
      const __m128i bytes =
          _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(cw.q[g] + u * block_tokens), bytes);
      const __m128i total = _mm_sad_epu8(bytes, _mm_setzero_si128());  // two halves' sums
      rounded[u] = cw.scale[g][u] *
                   static_cast<float>(_mm_cvtsi128_si32(total) + _mm_extract_epi32(total, 2));
    }
    alignas(32) float lanes[block_tokens];
    for (std::size_t k = 0; k < 2; ++k) _mm256_store_ps(lanes + 8 * k, middles[g][k]);
    set_offsets<Arch>(lanes, rounded, cw.offset[g]);
  }
}

// The sums below prefetch ahead (as token_blocks' dots): at long contexts pages come from DRAM,
// and without it 4-bit attention took 1.2-1.25x the time at 64k tokens (docs/measurements.md).
// The AVX2 sums prefetch four blocks ahead in their first pass over a chunk; the VNNI sums
// unit_prefetch_distance bytes ahead (simd/prefetch.hpp), each slice's pass its share of every
// block's lines (spread thin, as prefetch.hpp says). Prefetches past the chunk are harmless: they
// never fault.

// AVX2, n a multiple of 32 (generic sums otherwise): per slice and block, the four tokens'
// codes of 32 columns are two 32-byte loads; vpmaddubsw multiplies the u8 weights by the codes
// (the high nibbles' code - 8 by a table, vpshufb) and adds pairs (at most 2 * 255 * 15, no
// saturation), vpmaddwd by ones adds the pairs. Two weight vectors at a time; the float sums stay
// in acc (L1).
template <class Arch>
void sums_avx2(const std::uint8_t* in, std::size_t blocks, std::size_t block_bytes, std::size_t n,
               const chunk_weights& cw, std::size_t heads, float* acc) noexcept {
  if (n % 32 != 0) return sums_generic<Arch>(in, blocks, block_bytes, n, cw, heads, acc);
  for (std::size_t g = 0; g < heads; ++g) add_offsets<Arch>(cw, g, n, acc + g * n);
  const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  const __m256i signed_nibble =  // nibble v as a signed 4-bit number
      _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6,
                       7, -8, -7, -6, -5, -4, -3, -2, -1);
  const auto high = [&](__m256i x) {
    return _mm256_shuffle_epi8(signed_nibble, _mm256_and_si256(_mm256_srli_epi16(x, 4), low4));
  };
  for (std::size_t g0 = 0; g0 < heads; g0 += 2) {
    const std::size_t gn = heads - g0 < 2 ? heads - g0 : 2;
    for (std::size_t m = 0; m < n / 32; ++m)
      for (std::size_t u = 0; u < blocks; ++u) {
        const std::uint8_t* slice = in + u * block_bytes + 64 + 256 * m;
        if (g0 == 0 && m == 0) prefetch_bytes<Arch>(in + (u + 4) * block_bytes, block_bytes);
        __m256i sum[2][4];
        for (auto& a : sum)
          for (auto& v : a) v = _mm256_setzero_si256();
        for (std::size_t quad = 0; quad < 4; ++quad) {
          const auto* x = reinterpret_cast<const __m256i*>(slice + 64 * quad);
          const __m256i x0 = _mm256_loadu_si256(x), x1 = _mm256_loadu_si256(x + 1);
          // Columns 0-7, 8-15 (low nibbles), 16-23, 24-31 (high).
          const __m256i codes[4] = {_mm256_and_si256(x0, low4), _mm256_and_si256(x1, low4),
                                    high(x0), high(x1)};
          for (std::size_t g = 0; g < gn; ++g) {
            std::int32_t four;
            std::memcpy(&four, cw.q[g0 + g] + u * block_tokens + 4 * quad, 4);
            const __m256i wq = _mm256_set1_epi32(four);
            for (std::size_t k = 0; k < 4; ++k)
              sum[g][k] = _mm256_add_epi32(
                  sum[g][k], _mm256_madd_epi16(_mm256_maddubs_epi16(wq, codes[k]), ones));
          }
        }
        for (std::size_t g = 0; g < gn; ++g) {
          const __m256 s = _mm256_set1_ps(cw.scale[g0 + g][u]);
          float* out = acc + (g0 + g) * n + 32 * m;
          for (std::size_t k = 0; k < 4; ++k)
            _mm256_storeu_ps(out + 8 * k, _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(sum[g][k]),
                                                          _mm256_loadu_ps(out + 8 * k)));
        }
      }
  }
}

}  // namespace detail::token_quads
#endif

#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
namespace detail::token_quads {

#define QCODEC_QUADS_VNNI_TARGET __attribute__((target("avx512vnni")))

// AVX-512 VNNI, n a multiple of 32, G weight vectors: per slice, the float sums of its 32
// columns stay in registers across the chunk's blocks; per block and four tokens, one 64-byte
// load, its low and high nibbles (16 columns each; the high ones 16 (code - 8), scaled by
// S_u / 16), and per weight vector one vpdpbusd of each against the broadcast four weights.
template <std::size_t G, class Arch>
QCODEC_QUADS_VNNI_TARGET void sums_vnni_group(const std::uint8_t* in, std::size_t blocks,
                                              std::size_t block_bytes, std::size_t n,
                                              const chunk_weights& cw, float* acc) noexcept {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const std::size_t slices = n / 32;
  for (std::size_t m = 0; m < slices; ++m) {
    // This slice's pass prefetches its share of the lines of every block ahead.
    const line_share share = share_of_lines(block_bytes, m, slices);
    __m512 f[G][2];
    for (std::size_t g = 0; g < G; ++g)
      for (std::size_t k = 0; k < 2; ++k)
        f[g][k] = _mm512_add_ps(_mm512_loadu_ps(acc + g * n + 32 * m + 16 * k),
                                _mm512_set1_ps(cw.offset[g][k]));
    for (std::size_t u = 0; u < blocks; ++u) {
      const std::uint8_t* slice = in + u * block_bytes + 64 + 256 * m;
      prefetch_bytes<Arch>(in + u * block_bytes + unit_prefetch_distance + share.from, share.bytes);
      __m512i sum[G][2];
      for (auto& a : sum)
        for (auto& v : a) v = _mm512_setzero_si512();
      for (std::size_t quad = 0; quad < 4; ++quad) {
        const __m512i x = _mm512_loadu_si512(slice + 64 * quad);
        const __m512i lo = _mm512_and_si512(x, low4);
        const __m512i hi = _mm512_andnot_si512(low4, x);
        for (std::size_t g = 0; g < G; ++g) {
          std::int32_t four;
          std::memcpy(&four, cw.q[g] + u * block_tokens + 4 * quad, 4);
          const __m512i wq = _mm512_set1_epi32(four);
          sum[g][0] = _mm512_dpbusd_epi32(sum[g][0], wq, lo);
          sum[g][1] = _mm512_dpbusd_epi32(sum[g][1], wq, hi);
        }
      }
      for (std::size_t g = 0; g < G; ++g) {
        f[g][0] =
            _mm512_fmadd_ps(_mm512_set1_ps(cw.scale[g][u]), _mm512_cvtepi32_ps(sum[g][0]), f[g][0]);
        f[g][1] = _mm512_fmadd_ps(_mm512_set1_ps(cw.scale16[g][u]), _mm512_cvtepi32_ps(sum[g][1]),
                                  f[g][1]);
      }
    }
    for (std::size_t g = 0; g < G; ++g)
      for (std::size_t k = 0; k < 2; ++k) _mm512_storeu_ps(acc + g * n + 32 * m + 16 * k, f[g][k]);
  }
}

template <class Arch>
void sums_vnni(const std::uint8_t* in, std::size_t blocks, std::size_t block_bytes, std::size_t n,
               const chunk_weights& cw, std::size_t heads, float* acc) noexcept {
  if (n % 32 != 0) return sums_generic<Arch>(in, blocks, block_bytes, n, cw, heads, acc);
  switch (heads) {
    case 1:
      return sums_vnni_group<1, Arch>(in, blocks, block_bytes, n, cw, acc);
    case 2:
      return sums_vnni_group<2, Arch>(in, blocks, block_bytes, n, cw, acc);
    case 3:
      return sums_vnni_group<3, Arch>(in, blocks, block_bytes, n, cw, acc);
    default:
      return sums_vnni_group<4, Arch>(in, blocks, block_bytes, n, cw, acc);
  }
}

#undef QCODEC_QUADS_VNNI_TARGET

}  // namespace detail::token_quads
#endif

/// The entries of a kernel table (see kernel_table.hpp).
struct token_quad_kernels {
  void (*token_quad_axpys_u8)(const std::uint8_t*, std::size_t, std::size_t, const float*,
                              std::size_t, std::size_t, float*) noexcept;
};

template <class Arch>
token_quad_kernels make_token_quad_kernels() noexcept {
  namespace d = detail::token_quads;
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::token_quad_axpys_u8};
  } else {
#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
    if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
      if (cpu_supports_avx512_vnni())
        return {&d::axpys<Arch, &d::prepare_avx512<Arch>, &d::sums_vnni<Arch>>};
      return {&d::axpys<Arch, &d::prepare_avx512<Arch>, &d::sums_avx2<Arch>>};
    }
#endif
#if XSIMD_WITH_AVX2 && defined(__FMA__)
    if constexpr (std::is_base_of_v<xsimd::avx2, Arch>) {
      return {&d::axpys<Arch, &d::prepare_avx2<Arch>, &d::sums_avx2<Arch>>};
    }
#endif
    return {&d::axpys<Arch, &d::prepare_scalar<Arch>, &d::sums_generic<Arch>>};
  }
}

}  // namespace simd

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
}  // namespace qcodec
