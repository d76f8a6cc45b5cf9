#pragma once
// Blocks of 16 tokens' 2-, 4- or 8-bit affine codes (B bits) stored four tokens interleaved, with
// their parameters in front, summed with weights rounded to 8 bits per block (15 at 8-bit codes):
// the value sums of kv::token_quads<B>.
//
// Block layout, token_quads_block_bytes(n, B) bytes (the same size as token_rows.hpp's at B bits):
//   bytes [0, 32)    the 16 tokens' scales s_t, binary16
//   bytes [32, 64)   their offsets o_t, binary16
//   bytes [64, ...)  their codes in slices of C = 16 P columns, P = 8 / B codes to a byte (16, 32
//                    or 64 columns; the last slice may be narrower): slice m holds columns
//                    [C m, C m + w) with w = min(C, n - C m), h = ceil(w / P) bytes per token,
//                    and starts at byte 64 + 256 m. In it token t's code of column C m + j is in
//                    byte 4 h (t / 4) + 4 (j % h) + t % 4, at bits B p.. of it, position
//                    p = j / h (4 bits: the low nibble for j < h, the high one otherwise; a narrow
//                    last slice leaves the top positions of some bytes zero). The top position
//                    p = P - 1 holds the code XOR 2^(B - 1): as a signed B-bit number,
//                    code - 2^(B - 1).
// So one 64-byte load of a slice holds four tokens' codes of C columns, and each position of its
// bytes holds 16 columns with the four tokens' codes in one dword: vpdpbusd's operand. Each
// position takes one mask, where it lies: x & (2^B - 1) << B p is 2^(B p) times the codes, and
// in the top position 2^(8 - B) (code - 2^(B - 1)) as signed bytes, vpdpbusd's signed operand,
// where 4-bit codes stored as they are took a shift and a mask: q4-blocks-quads decode steps took
// 0.96-0.99x the time at 4k, 16k/128 and 64k tokens, the same at 16k/64, kivi4-q8-quads
// 0.98-0.99x (0.87x at 64k/128, in the noise there; docs/measurements.md).
//
//   token_quad_axpys_u8   for the `count` blocks at `in` (consecutive) and each weight vector
//                         p_g = p[g * ldp, + 16 count):
//     per block u:   w_t = p_g[t] * s_t                     the weights take in the scales
//                    S_u, inv_u: the form of w over the block with the grid W (int8_dots.hpp's
//                    form_from: S_u = m / W, inv_u = W / m rounded toward zero, m = max |w_t|);
//                    W = 255, or 32767 at 8-bit codes (q_t two bytes, below)
//                    (S_u, inv_u = 0 where S_u < 2^-122 at 4 bits, 2^-120 at 2, FLT_MIN at 8, so
//                    that S_u 2^(B - 8) is exact)
//                    q_t = max(0, w_t * inv_u rounded to an integer in the current mode)
//                    R_u = S_u * float(sum_t q_t)             the rounded weights' sum
//     per chunk of up to 16 blocks, in order (mid = (2^B - 1) / 2, the codes' middle: 7.5, 1.5,
//     127.5):
//                    M: lane t = fma(p_g[16 u + t], fma(mid, s_t, o_t), lane t) for each block
//                    u in order (from 0), R: lane u = R_u, each summed in token_rows.hpp's order
//                    acc[g * n + i] += b_i = fma(-mid, R, M), or fma(2^(B - 1) - mid, R, M) for a
//                                      column in the top position (c_i = 2^(B - 1) there, 0 for
//                                      the others); the quiet NaN where M or R is NaN
//                    for each block u:  acc[g * n + i] = fma(S_u, float(sum_t (code_t[i] - c_i)
//                                                            q_t), acc[g * n + i])
// That is sum_t p_t (s_t code_t + o_t), the affine values weighted, each weight p_t s_t off by
// at most max_block / 2W rounding to nearest (a step in directed modes). b is sum_t p_t o_t plus
// mid times the rounding errors' sum, sum_t (w_t - S_u q_t): what those errors would add at the
// middle code is taken back, and only the codes' spread around the middle meets the rounding;
// the top position's c_i (the -c_i) comes back in b_i as c_i R. (Without that, the errors' mean
// came through whole: rotated values, whose codes cluster at the middle, put it into one output
// coordinate, 6x the largest error in tests/kv.) Every target returns the oracle's bits. The
// weights are softmax probabilities: a negative weight (after the scales) rounds to 0, so its
// token adds p_t (mid s_t + o_t), its value at the middle code, through M, as does every token of a
// block whose S_u is below the least kept (its largest weight below about 5e-35, 2e-34 at 2 bits,
// 4e-34 at 8). A block whose weights hold a NaN or an infinity (after the scales) adds NaN (the
// same NaN on every target, for an acc that holds no NaN).
//
// Why 8 bits per block: the 16-bit weights of token_rows.hpp take vpdpwssd's two codes per lane
// and instruction, the floor of their value sums, which were 39% of a 4-bit decode step at 16k
// tokens and head_dim 64. vpdpbusd takes four (u8 weights by the codes as bytes), and the layout
// above needs no byte shuffles: P masks per 64 bytes. Rounding each weight to 8 bits of its own
// block's largest keeps the error far below the codes' own: a weight is off by at most 1/510 of
// the largest weight among its 16 tokens. Not so for 8-bit codes: weights as coarse as the codes
// would about double the values' error. There each weight has 15 bits, two bytes (q_t = 256 h_t +
// l_t), each one vpdpbusd operand: two instructions for four codes a lane, as many products per
// instruction as vpdpwssd's, but on the codes as they are stored (words would take a widening or
// shuffles per load; token_rows' 8-bit rows have no fast path at all). 15 bits, not 16, so that
// AVX2's vpmaddwd takes q_t as one signed word.
//
// Fast paths: the sums for n a multiple of C on AVX-512 VNNI (vpdpbusd) and AVX2 (vpmaddubsw,
// vpmaddwd; 8-bit codes: vpmaddwd on words), generic sums otherwise; the weights' preparation on
// AVX-512 and AVX2.
// Measured (docs/measurements.md), 4 bits, against token_rows.hpp's sums beside the same keys:
// 0.68-0.88x the time of a decode step from 1k to 64k tokens with VNNI, 0.73-0.91x with the AVX2
// kernels. 2 bits, KIVI-2 against per_token<2>'s values (summed by rows.hpp's float axpys) beside
// the same keys, at 16k and 64k tokens: 0.56-0.59x with VNNI, 0.95-0.97x with the AVX2 kernels.
// 8 bits, q8b-quads (token_blocks<8> keys) against q8 (per_token<8> keys and values): 0.41-0.68x
// with VNNI, 0.84-1.13x with the AVX2 kernels.

#include <qcodec/simd/arch.hpp>
#include <qcodec/simd/convert.hpp>
#include <qcodec/simd/int8_dots.hpp>
#include <qcodec/simd/prefetch.hpp>
#include <qcodec/simd/rows.hpp>
#include <qcodec/simd/token_blocks.hpp>
#include <qcodec/simd/token_rows.hpp>

#include <algorithm>
#include <array>
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
/// Bytes of one block of n columns of `bits`-bit codes (2, 4 or 8; header comment).
template <class Arch = scalar>
constexpr std::size_t token_quads_block_bytes(std::size_t n, unsigned bits) noexcept {
  return token_rows_block_bytes<Arch>(n, bits);
}
/// Where token t's code of column i is in a block: byte `byte`, from bit `shift`; `top` when
/// that is the byte's top position (which holds the code XOR 2^(bits - 1)).
struct quad_code_place {
  std::size_t byte;
  unsigned shift;
  bool top;
};
template <class Arch = scalar>
constexpr quad_code_place quad_code_at(std::size_t n, unsigned bits, std::size_t t,
                                       std::size_t i) noexcept {
  const std::size_t per_byte = 8 / bits, columns = block_tokens * per_byte;  // per slice
  const std::size_t m = i / columns, j = i % columns;
  const std::size_t w = n - columns * m < columns ? n - columns * m : columns;
  const std::size_t h = (w + per_byte - 1) / per_byte, position = j / h;
  return {64 + 256 * m + 4 * h * (t / 4) + 4 * (j % h) + t % 4,
          static_cast<unsigned>(bits * position), position == per_byte - 1};
}
/// The bits that hold a code (in the top position, the code XOR 2^(bits - 1)), and the code that
/// bits hold.
template <class Arch = scalar>
constexpr unsigned quad_stored(unsigned code, unsigned bits, bool top) noexcept {
  return top ? code ^ (1u << (bits - 1)) : code;
}
/// Token t's code of column i in a block.
template <class Arch = scalar>
constexpr unsigned quad_code(const std::uint8_t* block, std::size_t n, unsigned bits, std::size_t t,
                             std::size_t i) noexcept {
  const quad_code_place c = quad_code_at<Arch>(n, bits, t, i);
  return quad_stored<Arch>((block[c.byte] >> c.shift) & ((1u << bits) - 1), bits, c.top);
}
}  // namespace simd

namespace simd::detail::token_quads {

inline constexpr std::size_t chunk_blocks = 16;  // blocks whose weights are rounded per pass
inline constexpr std::size_t max_heads = 4;      // weight vectors per pass
inline constexpr std::size_t max_positions = 4;  // codes per byte (2-bit codes)
static_assert(chunk_blocks == block_tokens, "R's lanes are summed as M's");

// The codes' middle (header).
constexpr float middle_code(unsigned bits) noexcept {
  return static_cast<float>((1u << bits) - 1) / 2.0f;
}
// c_i of a column in the top position (header).
constexpr int top_code(unsigned bits) noexcept { return 1 << (bits - 1); }
// Whether the rounded weights q_t are two bytes (8-bit codes), and their grid W (header).
constexpr bool two_byte_weights(unsigned bits) noexcept { return bits == 8; }
constexpr float weight_grid(unsigned bits) noexcept {
  return two_byte_weights(bits) ? 32767.0f : 255.0f;
}

// The factor taking S_u to position p's scale, 2^-(bits p): exactly, as S_u is 0, NaN or at
// least least_scale.
constexpr float position_factor(unsigned bits, std::size_t p) noexcept {
  return 1.0f / static_cast<float>(1u << (bits * p));
}
// The least S_u kept (header): the top position's scale, S_u 2^(bits - 8), is then a normal float,
// so that the VNNI sums may take a code in position p where it lies, 2^(bits p) times it, by
// S_u 2^-(bits p). (2^-122 at 4 bits, 2^-120 at 2, FLT_MIN at 8: one position.)
constexpr float least_scale(unsigned bits) noexcept {
  return std::numeric_limits<float>::min() / position_factor(bits, 8 / bits - 1);
}
static_assert(least_scale(4) == 0x1p-122f && least_scale(2) == 0x1p-120f &&
              least_scale(8) == 0x1p-126f);

// One chunk's rounded weights for up to max_heads weight vectors.
struct chunk_weights {
  alignas(64) std::uint8_t q[max_heads][chunk_blocks * block_tokens];       // q_t, its low byte
  alignas(64) std::uint8_t q_high[max_heads][chunk_blocks * block_tokens];  // (two_byte_weights)
  alignas(64) float scale[max_heads][max_positions][chunk_blocks];  // position p: S_u 2^-(bits p)
  float offset[max_heads][2];  // b_i: the other columns', the top position's
};

// b_i from M's and R's lanes (a chunk's blocks are as many as a block's tokens), in memory or in
// a vector (token_rows::lane_sum). A NaN in either gives b_i the quiet NaN S_u holds for a block
// that is not finite: M and R may hold NaNs of different bits (e.g. an infinite weight on a zero
// scale and offset makes M x86's default NaN, of the other sign), and which NaN fma returns of
// two depends on the order the compiler gives its operands.
template <unsigned Bits, class Arch, class Lanes>
void set_offsets(Lanes middles, Lanes rounded, float (&offset)[2]) noexcept {
  const float m = token_rows::lane_sum<Arch>(middles), r = token_rows::lane_sum<Arch>(rounded);
  if (std::isnan(m) || std::isnan(r)) {
    offset[0] = offset[1] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  offset[0] = std::fma(-middle_code(Bits), r, m);
  offset[1] = std::fma(static_cast<float>(top_code(Bits)) - middle_code(Bits), r, m);
}

// The header's w_t, S_u, q_t and b for the `blocks` blocks at `in` and the weight vectors
// p + g * ldp, g < heads. The scalar form: the oracle's, and the preparation of targets without
// AVX-512 or AVX2.
template <unsigned Bits, class Arch>
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
        const float middle = std::fma(middle_code(Bits), s, cvt::portable_f16_to_f32<Arch>(h[1]));
        middles[t] = std::fma(pu[t], middle, middles[t]);
        finite = finite && std::isfinite(w[t]);
        m = std::fmax(m, std::fabs(w[t]));
      }
      int8_dots::int8_form f = int8_dots::form_from<Arch>(m, finite, weight_grid(Bits));
      if (f.scale < least_scale(Bits)) f = {0.0f, 0.0f};
      for (std::size_t k = 0; k < 8 / Bits; ++k)
        cw.scale[g][k][u] = f.scale * position_factor(Bits, k);
      std::int32_t total = 0;
      for (std::size_t t = 0; t < block_tokens; ++t) {
        const long q = f.inv == 0.0f ? 0 : std::lrint(w[t] * f.inv);  // in [-W, W]
        const auto kept = static_cast<std::int32_t>(q < 0 ? 0 : q);
        cw.q[g][u * block_tokens + t] = static_cast<std::uint8_t>(kept & 0xFF);
        if (two_byte_weights(Bits))
          cw.q_high[g][u * block_tokens + t] = static_cast<std::uint8_t>(kept >> 8);
        total += kept;
      }
      rounded[u] = f.scale * static_cast<float>(total);
    }
    set_offsets<Bits, Arch>(middles, rounded, cw.offset[g]);
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
// INT_MIN to 0; 15-bit weights: their words' low and high bytes packed apart), which leaves
// 128-bit lane i holding quad i (tokens 4 i .. 4 i + 3) of each of
// the four blocks: their sums Q_u come from those bytes (vpmaddubsw and vpmaddwd against ones,
// then 128-bit lanes added), and one dword permute stores the weights in block order.
template <unsigned Bits, class Arch>
void prepare_avx512(const std::uint8_t* in, std::size_t blocks, std::size_t block_bytes,
                    const float* p, std::size_t ldp, std::size_t heads,
                    chunk_weights& cw) noexcept {
  alignas(64) float w[max_heads][chunk_blocks * block_tokens];
  __m512 middles[max_heads];
  for (auto& v : middles) v = _mm512_setzero_ps();
  for (std::size_t u = 0; u < blocks; ++u) {
    const auto* half = reinterpret_cast<const __m256i*>(in + u * block_bytes);
    const __m512 s = _mm512_cvtph_ps(_mm256_loadu_si256(half));
    const __m512 mid = _mm512_fmadd_ps(_mm512_set1_ps(middle_code(Bits)), s,
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
    int8_dots::forms16<Arch>(bits[g], weight_grid(Bits), inv, scales[g]);
    // (not less: NaN scales stay)
    const __mmask16 kept =
        _mm512_cmp_ps_mask(scales[g], _mm512_set1_ps(least_scale(Bits)), _CMP_NLT_UQ);
    scales[g] = _mm512_maskz_mov_ps(kept, scales[g]);
    _mm512_store_ps(invs[g], _mm512_maskz_mov_ps(kept, inv));
    for (std::size_t k = 0; k < 8 / Bits; ++k)
      _mm512_store_ps(cw.scale[g][k],
                      _mm512_mul_ps(scales[g], _mm512_set1_ps(position_factor(Bits, k))));
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
      // As 16-bit words (the unsigned saturation takes negatives and NaN's INT_MIN to 0), then
      // bytes; two-byte weights are the words' low and high bytes.
      const __m512i w01 = _mm512_packus_epi32(q[0], q[1]), w23 = _mm512_packus_epi32(q[2], q[3]);
      const auto store_bytes = [&](__m512i bytes, std::uint8_t* to) {  // and their quads' sums
        _mm512_store_si512(to + 64 * k, _mm512_permutexvar_epi32(dword_transpose<Arch>(), bytes));
        return _mm512_madd_epi16(_mm512_maddubs_epi16(bytes, ones8), ones16);
      };
      if constexpr (two_byte_weights(Bits)) {
        const __m512i low = _mm512_set1_epi16(0xFF);
        const __m512i lows = store_bytes(
            _mm512_packus_epi16(_mm512_and_si512(w01, low), _mm512_and_si512(w23, low)), cw.q[g]);
        const __m512i highs =
            store_bytes(_mm512_packus_epi16(_mm512_srli_epi16(w01, 8), _mm512_srli_epi16(w23, 8)),
                        cw.q_high[g]);
        sums[k] = _mm512_add_epi32(lows, _mm512_slli_epi32(highs, 8));
      } else {
        sums[k] = store_bytes(_mm512_packus_epi16(w01, w23), cw.q[g]);
      }
    }
    // Lane u: Q_u (the four quads of each block added across the 128-bit lanes).
    const auto pair = [](__m512i a, __m512i b) {
      return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, 0x44), _mm512_shuffle_i32x4(a, b, 0xEE));
    };
    const __m512i x01 = pair(sums[0], sums[1]), x23 = pair(sums[2], sums[3]);
    const __m512i totals = _mm512_add_epi32(_mm512_shuffle_i32x4(x01, x23, 0x88),
                                            _mm512_shuffle_i32x4(x01, x23, 0xDD));
    set_offsets<Bits, Arch>(middles[g], _mm512_mul_ps(scales[g], _mm512_cvtepi32_ps(totals)),
                            cw.offset[g]);
  }
}
#endif

// out[i] += b_i for weight vector g (the header's first step of the sums; the VNNI sums add b_i
// to their registers instead).
template <unsigned Bits, class Arch>
void add_offsets(const chunk_weights& cw, std::size_t g, std::size_t n, float* out) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] += cw.offset[g][quad_code_at<Arch>(n, Bits, 0, i).top];
}

// The chunk's sums for `heads` weight vectors, any n: the oracle's, and the fallback.
template <unsigned Bits, class Arch>
void sums_generic(const std::uint8_t* in, std::size_t blocks, std::size_t block_bytes,
                  std::size_t n, const chunk_weights& cw, std::size_t heads, float* acc) noexcept {
  for (std::size_t g = 0; g < heads; ++g) {
    float* out = acc + g * n;
    add_offsets<Bits, Arch>(cw, g, n, out);
    for (std::size_t u = 0; u < blocks; ++u) {
      const std::uint8_t* block = in + u * block_bytes;
      std::int32_t q[block_tokens];
      for (std::size_t t = 0; t < block_tokens; ++t) {
        q[t] = cw.q[g][u * block_tokens + t];
        if (two_byte_weights(Bits)) q[t] += 256 * cw.q_high[g][u * block_tokens + t];
      }
      for (std::size_t i = 0; i < n; ++i) {
        const std::int32_t c = quad_code_at<Arch>(n, Bits, 0, i).top ? top_code(Bits) : 0;
        std::int32_t sum = 0;  // |sum| <= 16 * 128 * 32767 at 8 bits
        for (std::size_t t = 0; t < block_tokens; ++t) {
          sum += (static_cast<std::int32_t>(quad_code<Arch>(block, n, Bits, t, i)) - c) * q[t];
        }
        out[i] = std::fma(cw.scale[g][0][u], static_cast<float>(sum), out[i]);
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
template <unsigned Bits, class Arch, prepare_fn Prepare, sums_fn Sums>
void axpys(const std::uint8_t* in, std::size_t count, std::size_t n, const float* p,
           std::size_t ldp, std::size_t nq, float* acc) noexcept {
  const std::size_t block_bytes = token_quads_block_bytes<Arch>(n, Bits);
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

// A kernel table's entry: axpys for `bits`-bit codes (2, 4 or 8) with the preparation and sums
// Kernels names for each width (Kernels::prepare<B>, Kernels::sums<B>).
template <class Arch, class Kernels>
void axpys_of(const std::uint8_t* in, std::size_t count, std::size_t n, unsigned bits,
              const float* p, std::size_t ldp, std::size_t nq, float* acc) noexcept {
  const auto run = [&](auto width) {
    constexpr unsigned B = decltype(width)::value;
    axpys<B, Arch, Kernels::template prepare<B>, Kernels::template sums<B>>(in, count, n, p, ldp,
                                                                            nq, acc);
  };
  if (bits == 2) return run(std::integral_constant<unsigned, 2>{});
  if (bits == 4) return run(std::integral_constant<unsigned, 4>{});
  run(std::integral_constant<unsigned, 8>{});
}

// The portable kernels: the oracle's (Arch = scalar), and the table's on other targets.
template <class Arch>
struct generic_kernels {
  template <unsigned B>
  static constexpr prepare_fn prepare = &prepare_scalar<B, Arch>;
  template <unsigned B>
  static constexpr sums_fn sums = &sums_generic<B, Arch>;
};

}  // namespace simd::detail::token_quads

namespace ref {

inline void token_quad_axpys_u8(const std::uint8_t* in, std::size_t count, std::size_t n,
                                unsigned bits, const float* p, std::size_t ldp, std::size_t nq,
                                float* acc) noexcept {
  namespace d = simd::detail::token_quads;
  d::axpys_of<simd::scalar, d::generic_kernels<simd::scalar>>(in, count, n, bits, p, ldp, nq, acc);
}

}  // namespace ref

namespace simd {

#if XSIMD_WITH_AVX2 && defined(__FMA__)  // (vfmadd)
namespace detail::token_quads {

// prepare_scalar's results with AVX2, as prepare_avx512 (which see) with a block's 16 weights in
// two vectors; the blocks' maxima are reduced one block at a time. Without it the scalar
// preparation took 57% of a 4-bit decode step at 16k tokens.
template <unsigned Bits, class Arch>
void prepare_avx2(const std::uint8_t* in, std::size_t blocks, std::size_t block_bytes,
                  const float* p, std::size_t ldp, std::size_t heads, chunk_weights& cw) noexcept {
  alignas(32) float w[max_heads][chunk_blocks * block_tokens];
  alignas(32) std::int32_t bits[max_heads][chunk_blocks] = {};
  __m256 middles[max_heads][2];
  for (auto& a : middles) a[0] = a[1] = _mm256_setzero_ps();
  const __m256i magnitude = _mm256_set1_epi32(0x7FFFFFFF);
  const __m256 middle = _mm256_set1_ps(middle_code(Bits));
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
  const __m256 grid = _mm256_set1_ps(weight_grid(Bits)), zero = _mm256_setzero_ps();
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
      const __m256 tiny = _mm256_cmp_ps(scale, _mm256_set1_ps(least_scale(Bits)), _CMP_LT_OQ);
      const __m256 kept = _mm256_andnot_ps(tiny, scale);  // (not less: NaN scales stay)
      _mm256_store_ps(invs + k,
                      _mm256_andnot_ps(tiny, _mm256_andnot_ps(bad, _mm256_and_ps(ok, inv))));
      for (std::size_t pos = 0; pos < 8 / Bits; ++pos)
        _mm256_store_ps(cw.scale[g][pos] + k,
                        _mm256_mul_ps(kept, _mm256_set1_ps(position_factor(Bits, pos))));
    }
    alignas(32) float rounded[chunk_blocks] = {};
    for (std::size_t u = 0; u < blocks; ++u) {
      const __m256 inv = _mm256_set1_ps(invs[u]);
      __m256i q[2];
      for (std::size_t k = 0; k < 2; ++k)
        q[k] =
            _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_load_ps(w[g] + u * block_tokens + 8 * k), inv));
      // Words in order (packs interleaves the halves' 128-bit lanes), then bytes; the unsigned
      // saturation takes negatives and NaN's INT_MIN to 0. Two-byte weights are the words' low
      // and high bytes.
      const __m256i words = _mm256_permute4x64_epi64(_mm256_packus_epi32(q[0], q[1]), 0xD8);
      const auto store_bytes = [&](__m256i x, std::uint8_t* to) {  // and their sum
        const __m128i bytes =
            _mm_packus_epi16(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(to + u * block_tokens), bytes);
        const __m128i total = _mm_sad_epu8(bytes, _mm_setzero_si128());  // two halves' sums
        return _mm_cvtsi128_si32(total) + _mm_extract_epi32(total, 2);
      };
      std::int32_t total;
      if constexpr (two_byte_weights(Bits)) {
        total = store_bytes(_mm256_and_si256(words, _mm256_set1_epi16(0xFF)), cw.q[g]) +
                256 * store_bytes(_mm256_srli_epi16(words, 8), cw.q_high[g]);
      } else {
        total = store_bytes(words, cw.q[g]);
      }
      rounded[u] = cw.scale[g][0][u] * static_cast<float>(total);
    }
    alignas(32) float lanes[block_tokens];
    for (std::size_t k = 0; k < 2; ++k) _mm256_store_ps(lanes + 8 * k, middles[g][k]);
    set_offsets<Bits, Arch>(lanes, rounded, cw.offset[g]);
  }
}

// The sums below prefetch ahead (as token_blocks' dots): at long contexts pages come from DRAM,
// and without it 4-bit attention took 1.2-1.25x the time at 64k tokens (docs/measurements.md).
// The AVX2 sums prefetch four blocks ahead in their first pass over a chunk; the VNNI sums
// unit_prefetch_distance bytes ahead (simd/prefetch.hpp), each slice's pass its share of every
// block's lines (spread thin, as prefetch.hpp says). Prefetches past the chunk are harmless: they
// never fault.

// AVX2, n a multiple of C = 16 P (P = 8 / Bits codes per byte; generic sums otherwise): per slice
// and block, the four tokens' codes of C columns are two 32-byte loads; each position shifted down
// and masked (the top one's code - 2^(Bits - 1) by a table, vpshufb) gives 8 columns of each,
// vpmaddubsw multiplies the u8 weights by the codes and adds pairs (at most 2 * 255 * 15, no
// saturation), vpmaddwd by ones adds the pairs. 4 / P weight vectors at a time (their 8 sums of 8
// columns fill the registers); the float sums stay in acc (L1).
template <unsigned Bits, class Arch>
void sums_avx2(const std::uint8_t* in, std::size_t blocks, std::size_t block_bytes, std::size_t n,
               const chunk_weights& cw, std::size_t heads, float* acc) noexcept {
  static_assert(Bits == 2 || Bits == 4, "8-bit codes: sums8_avx2");
  constexpr std::size_t P = 8 / Bits, columns = block_tokens * P, per_pass = 4 / P;
  if (n % columns != 0) return sums_generic<Bits, Arch>(in, blocks, block_bytes, n, cw, heads, acc);
  for (std::size_t g = 0; g < heads; ++g) add_offsets<Bits, Arch>(cw, g, n, acc + g * n);
  // Byte v (of the low 16) as a signed Bits-bit number, in both 128-bit lanes.
  static constexpr auto signed_table = [] {
    std::array<std::int8_t, 32> t{};
    for (std::size_t i = 0; i < 32; ++i) {
      const int v = static_cast<int>(i % 16);
      t[i] = static_cast<std::int8_t>(v < (1 << (Bits - 1)) ? v : v - (1 << Bits));
    }
    return t;
  }();
  const __m256i signed_top =
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(signed_table.data()));
  const __m256i mask = _mm256_set1_epi8((1 << Bits) - 1), ones = _mm256_set1_epi16(1);
  const auto position = [&](__m256i x, std::size_t p) {
    const __m256i codes =
        _mm256_and_si256(p == 0 ? x : _mm256_srli_epi16(x, static_cast<int>(Bits * p)), mask);
    return p == P - 1 ? _mm256_shuffle_epi8(signed_top, codes) : codes;
  };
  for (std::size_t g0 = 0; g0 < heads; g0 += per_pass) {
    const std::size_t gn = heads - g0 < per_pass ? heads - g0 : per_pass;
    for (std::size_t m = 0; m < n / columns; ++m)
      for (std::size_t u = 0; u < blocks; ++u) {
        const std::uint8_t* slice = in + u * block_bytes + 64 + 256 * m;
        if (g0 == 0 && m == 0) prefetch_bytes<Arch>(in + (u + 4) * block_bytes, block_bytes);
        __m256i sum[per_pass][2 * P];  // sum[g][2 p + half]: columns 16 p + 8 half .. + 7
        for (auto& a : sum)
          for (auto& v : a) v = _mm256_setzero_si256();
        for (std::size_t quad = 0; quad < 4; ++quad) {
          const auto* x = reinterpret_cast<const __m256i*>(slice + 64 * quad);
          const __m256i halves[2] = {_mm256_loadu_si256(x), _mm256_loadu_si256(x + 1)};
          __m256i codes[2 * P];
          for (std::size_t k = 0; k < 2 * P; ++k) codes[k] = position(halves[k % 2], k / 2);
          for (std::size_t g = 0; g < gn; ++g) {
            std::int32_t four;
            std::memcpy(&four, cw.q[g0 + g] + u * block_tokens + 4 * quad, 4);
            const __m256i wq = _mm256_set1_epi32(four);
            for (std::size_t k = 0; k < 2 * P; ++k)
              sum[g][k] = _mm256_add_epi32(
                  sum[g][k], _mm256_madd_epi16(_mm256_maddubs_epi16(wq, codes[k]), ones));
          }
        }
        for (std::size_t g = 0; g < gn; ++g) {
          const __m256 s = _mm256_set1_ps(cw.scale[g0 + g][0][u]);
          float* out = acc + (g0 + g) * n + columns * m;
          for (std::size_t k = 0; k < 2 * P; ++k)
            _mm256_storeu_ps(out + 8 * k, _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(sum[g][k]),
                                                          _mm256_loadu_ps(out + 8 * k)));
        }
      }
  }
}

// AVX2, 8-bit codes, n a multiple of 16 (generic sums otherwise): vpmaddubsw's pairs would
// overflow 16 bits (2 * 255 * 128), so per slice, block and four tokens the codes of 4 columns are
// sign-extended to words (the stored code XOR 128 is code - 128) and vpmaddwd multiplies them by
// the weights q_t as words (<= 32767); a column's two dwords (tokens 0-1 and 2-3 of each quad)
// are added once per block (vphaddd). Two weight vectors at a time (8 sums of 4 columns).
template <class Arch>
void sums8_avx2(const std::uint8_t* in, std::size_t blocks, std::size_t block_bytes, std::size_t n,
                const chunk_weights& cw, std::size_t heads, float* acc) noexcept {
  constexpr std::size_t columns = block_tokens, per_pass = 2;
  if (n % columns != 0) return sums_generic<8, Arch>(in, blocks, block_bytes, n, cw, heads, acc);
  for (std::size_t g = 0; g < heads; ++g) add_offsets<8, Arch>(cw, g, n, acc + g * n);
  // The weights as words once, so that each quad's four are one broadcast qword in the loop
  // (converted there, for every slice, they took a quarter of its instructions).
  alignas(32) std::uint16_t words[max_heads][chunk_blocks * block_tokens];
  for (std::size_t g = 0; g < heads; ++g)
    for (std::size_t t = 0; t < blocks * block_tokens; t += 16) {
      const auto* low = reinterpret_cast<const __m128i*>(cw.q[g] + t);
      const auto* high = reinterpret_cast<const __m128i*>(cw.q_high[g] + t);
      _mm256_store_si256(
          reinterpret_cast<__m256i*>(words[g] + t),
          _mm256_or_si256(_mm256_cvtepu8_epi16(_mm_load_si128(low)),
                          _mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm_load_si128(high)), 8)));
    }
  const auto weight_words = [](const std::uint16_t* four) {  // w0 w1 w2 w3, four times
    std::int64_t x;
    std::memcpy(&x, four, 8);
    return _mm256_set1_epi64x(x);
  };
  for (std::size_t g0 = 0; g0 < heads; g0 += per_pass) {
    const std::size_t gn = heads - g0 < per_pass ? heads - g0 : per_pass;
    for (std::size_t m = 0; m < n / columns; ++m)
      for (std::size_t u = 0; u < blocks; ++u) {
        const std::uint8_t* slice = in + u * block_bytes + 64 + 256 * m;
        if (g0 == 0 && m == 0) prefetch_bytes<Arch>(in + (u + 4) * block_bytes, block_bytes);
        __m256i sum[per_pass][4];  // sum[g][k]: columns 4 k .. 4 k + 3, two dwords each
        for (auto& a : sum)
          for (auto& v : a) v = _mm256_setzero_si256();
        for (std::size_t quad = 0; quad < 4; ++quad) {
          const auto* x = reinterpret_cast<const __m128i*>(slice + 64 * quad);
          __m256i codes[4];
          for (std::size_t k = 0; k < 4; ++k)
            codes[k] = _mm256_cvtepi8_epi16(_mm_loadu_si128(x + k));
          for (std::size_t g = 0; g < gn; ++g) {
            const std::size_t t = u * block_tokens + 4 * quad;
            const __m256i w = weight_words(words[g0 + g] + t);
            for (std::size_t k = 0; k < 4; ++k)
              sum[g][k] = _mm256_add_epi32(sum[g][k], _mm256_madd_epi16(codes[k], w));
          }
        }
        for (std::size_t g = 0; g < gn; ++g) {
          const __m256 s = _mm256_set1_ps(cw.scale[g0 + g][0][u]);
          float* out = acc + (g0 + g) * n + columns * m;
          for (std::size_t h = 0; h < 2; ++h) {
            // hadd: columns 0, 1, 4, 5 | 2, 3, 6, 7 of the eight; the qword permute orders them.
            const __m256i eight =
                _mm256_permute4x64_epi64(_mm256_hadd_epi32(sum[g][2 * h], sum[g][2 * h + 1]), 0xD8);
            _mm256_storeu_ps(out + 8 * h, _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(eight),
                                                          _mm256_loadu_ps(out + 8 * h)));
          }
        }
      }
  }
}

// The AVX2 sums of B-bit codes.
template <unsigned B, class Arch>
constexpr sums_fn avx2_sums() noexcept {
  if constexpr (B == 8) {
    return &sums8_avx2<Arch>;
  } else {
    return &sums_avx2<B, Arch>;
  }
}

template <class Arch>
struct avx2_kernels {
  template <unsigned B>
  static constexpr prepare_fn prepare = &prepare_avx2<B, Arch>;
  template <unsigned B>
  static constexpr sums_fn sums = avx2_sums<B, Arch>();
};

}  // namespace detail::token_quads
#endif

#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
namespace detail::token_quads {

#define QCODEC_QUADS_VNNI_TARGET __attribute__((target("avx512vnni")))

// AVX-512 VNNI, n a multiple of 16 P (P = 8 / Bits codes per byte), G weight vectors: per slice,
// the float sums of its 16 P columns stay in registers across the chunk's blocks; per block and
// four tokens, one 64-byte load, each position's codes where they lie (16 columns each; position
// p holds 2^(Bits p) times its codes, the top one 2^(8 - Bits) (code - 2^(Bits - 1)), scaled by
// S_u 2^-(Bits p)), and per weight vector one vpdpbusd of each against the broadcast four weights
// (two at 8 bits: the weights' low and high bytes, added as low + 256 high per block).
// (2-bit codes' sums take twice the registers; in two passes of two weight vectors they took
// 1.00-1.06x the time of KIVI-2 decode steps at 16k/64, 16k/128 and 64k/64.)
template <unsigned Bits, std::size_t G, class Arch>
QCODEC_QUADS_VNNI_TARGET void sums_vnni_group(const std::uint8_t* in, std::size_t blocks,
                                              std::size_t block_bytes, std::size_t n,
                                              const chunk_weights& cw, float* acc) noexcept {
  constexpr std::size_t P = 8 / Bits, columns = block_tokens * P;  // a slice's
  const std::size_t slices = n / columns;
  for (std::size_t m = 0; m < slices; ++m) {
    // This slice's pass prefetches its share of the lines of every block ahead.
    const line_share share = share_of_lines(block_bytes, m, slices);
    __m512 f[G][P];
    for (std::size_t g = 0; g < G; ++g)
      for (std::size_t p = 0; p < P; ++p)
        f[g][p] = _mm512_add_ps(_mm512_loadu_ps(acc + g * n + columns * m + 16 * p),
                                _mm512_set1_ps(cw.offset[g][p == P - 1]));
    for (std::size_t u = 0; u < blocks; ++u) {
      const std::uint8_t* slice = in + u * block_bytes + 64 + 256 * m;
      prefetch_bytes<Arch>(in + u * block_bytes + unit_prefetch_distance + share.from, share.bytes);
      __m512i sum[G][P], high[G];  // high: 8-bit codes by the weights' high bytes
      for (auto& a : sum)
        for (auto& v : a) v = _mm512_setzero_si512();
      for (auto& v : high) v = _mm512_setzero_si512();
      for (std::size_t quad = 0; quad < 4; ++quad) {
        const __m512i x = _mm512_loadu_si512(slice + 64 * quad);
        __m512i codes[P];
        for (std::size_t p = 0; p < P; ++p)
          codes[p] = Bits == 8 ? x
                               : _mm512_and_si512(x, _mm512_set1_epi8(static_cast<char>(
                                                         ((1u << Bits) - 1) << (Bits * p))));
        const std::size_t t = u * block_tokens + 4 * quad;
        for (std::size_t g = 0; g < G; ++g) {
          std::int32_t four;
          std::memcpy(&four, cw.q[g] + t, 4);
          const __m512i wq = _mm512_set1_epi32(four);
          for (std::size_t p = 0; p < P; ++p)
            sum[g][p] = _mm512_dpbusd_epi32(sum[g][p], wq, codes[p]);
          if constexpr (two_byte_weights(Bits)) {
            std::memcpy(&four, cw.q_high[g] + t, 4);
            high[g] = _mm512_dpbusd_epi32(high[g], _mm512_set1_epi32(four), codes[0]);
          }
        }
      }
      if constexpr (two_byte_weights(Bits))
        for (std::size_t g = 0; g < G; ++g)
          sum[g][0] = _mm512_add_epi32(sum[g][0], _mm512_slli_epi32(high[g], 8));
      for (std::size_t g = 0; g < G; ++g)
        for (std::size_t p = 0; p < P; ++p)
          f[g][p] = _mm512_fmadd_ps(_mm512_set1_ps(cw.scale[g][p][u]),
                                    _mm512_cvtepi32_ps(sum[g][p]), f[g][p]);
    }
    for (std::size_t g = 0; g < G; ++g)
      for (std::size_t p = 0; p < P; ++p)
        _mm512_storeu_ps(acc + g * n + columns * m + 16 * p, f[g][p]);
  }
}

template <unsigned Bits, class Arch>
void sums_vnni(const std::uint8_t* in, std::size_t blocks, std::size_t block_bytes, std::size_t n,
               const chunk_weights& cw, std::size_t heads, float* acc) noexcept {
  if (n % (block_tokens * 8 / Bits) != 0)
    return sums_generic<Bits, Arch>(in, blocks, block_bytes, n, cw, heads, acc);
  rows::with_group(heads, [&](auto group) {
    sums_vnni_group<Bits, decltype(group)::value, Arch>(in, blocks, block_bytes, n, cw, acc);
  });
}

// AVX-512's preparation, with the VNNI sums or (AVX-512 without VNNI) the AVX2 ones.
template <class Arch, bool Vnni>
struct avx512_kernels {
  template <unsigned B>
  static constexpr prepare_fn prepare = &prepare_avx512<B, Arch>;
  template <unsigned B>
  static constexpr sums_fn sums = Vnni ? &sums_vnni<B, Arch> : avx2_sums<B, Arch>();
};

#undef QCODEC_QUADS_VNNI_TARGET

}  // namespace detail::token_quads
#endif

/// The entries of a kernel table (see kernel_table.hpp).
struct token_quad_kernels {
  /// (in, count, n, bits, p, ldp, nq, acc): the header's sums of 2-, 4- or 8-bit blocks.
  void (*token_quad_axpys_u8)(const std::uint8_t*, std::size_t, std::size_t, unsigned, const float*,
                              std::size_t, std::size_t, float*) noexcept;
  /// Appended: the same without extensions the table's target does not imply (on AVX-512: the
  /// AVX2 sums, without VNNI), so tests can check both forms on one machine.
  void (*token_quad_axpys_u8_base)(const std::uint8_t*, std::size_t, std::size_t, unsigned,
                                   const float*, std::size_t, std::size_t, float*) noexcept;
};

template <class Arch>
token_quad_kernels make_token_quad_kernels() noexcept {
  namespace d = detail::token_quads;
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::token_quad_axpys_u8, &ref::token_quad_axpys_u8};
  } else {
#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
    if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
      const auto base = &d::axpys_of<Arch, d::avx512_kernels<Arch, false>>;
      if (cpu_supports_avx512_vnni())
        return {&d::axpys_of<Arch, d::avx512_kernels<Arch, true>>, base};
      return {base, base};
    }
#endif
#if XSIMD_WITH_AVX2 && defined(__FMA__)
    if constexpr (std::is_base_of_v<xsimd::avx2, Arch>) {
      return {&d::axpys_of<Arch, d::avx2_kernels<Arch>>, &d::axpys_of<Arch, d::avx2_kernels<Arch>>};
    }
#endif
    return {&d::axpys_of<Arch, d::generic_kernels<Arch>>,
            &d::axpys_of<Arch, d::generic_kernels<Arch>>};
  }
}

}  // namespace simd

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
}  // namespace qcodec
