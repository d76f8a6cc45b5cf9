#pragma once
// Blocks of 16 tokens' affine codes laid out for integer dot products without reductions across
// lanes: the scoring kernel of kv::token_blocks (per-token keys stored 16 tokens to a unit).
//
// Block layout, token_block_bytes(n, bits) bytes (bits 1, 2, 4 or 8):
//   bytes [0, 32)    the 16 tokens' scales s_t, binary16
//   bytes [32, 64)   their offsets o_t, binary16
//   bytes [64, ...)  the codes, in groups of 4 * per channels (per = 8 / bits codes a byte) and
//                    64 bytes: code c of token t sits in byte 64 + 64 * (c / (4 per)) + 4 t +
//                    c % 4, bits [bits * (c % (4 per) / 4), + bits). A last, partial group
//                    takes 64 bytes too (kv::token_blocks never has one: head_dim is a multiple
//                    of 4 per there).
// So each bit field of a group's dword t holds token t's codes of 4 consecutive channels, and one
// vpdpbusd against a broadcast dword of the int8 query adds those 4 channels for all 16 tokens.
// Row-major codes (rows.hpp) need a reduction across lanes per token and query instead, and a
// gather of the per-token scales; here both are gone.
//
//   token_block_dots_i8   out[g * ld + 16 u + t] = fma(s_t, a, o_t * b), where
//                         a = f_g.scale * float(sum_c code_ut[c] * q8_g[c]),
//                         b = f_g.scale * float(sum_c q8_g[c])
// for the `count` blocks u of `in` (consecutive) and each query q_g = q[g * n, + n) in its int8
// form (int8_dots.hpp: f_g, q8_g). That is q'_g . (s_t code_ut + o_t), the affine keys scored
// against q' = f_g.scale * q8_g. The integer sums are exact (|sum| <= 255 * 127 * n: n up to
// 66000) and every float operation is fixed, so every target returns the oracle's bits (NaN
// payloads aside, when two operands of one operation are NaN).
//
// The int8 form of a query can be taken once and scored against many calls' blocks:
//
//   token_block_query          out = the prepared query, token_block_query_bytes(n) bytes:
//                              [0, 4) f.scale, [4, 8) b = f.scale * float(sum_c q8[c]) (floats),
//                              [8, 8 + n) q8
//   token_block_dots_prepared  token_block_dots_i8's scores from prepared queries,
//                              `query_stride` bytes apart
//
// so that token_block_dots_prepared(token_block_query(q)) returns token_block_dots_i8(q)'s bits
// (kv::token_blocks prepares its queries once per step: forming them per page call took 5% of a
// 4-bit decode step).
//
// 8-bit codes are as fine as an int8 query, whose rounding then adds as much error as the keys'
// own: they may be scored against the query's 15-bit form instead (int16_dots.hpp's: grid 16383,
// q16 = nearbyint(q * f.inv)), from prepared queries only:
//
//   token_block_query_i16          out = token_block_query_i16_bytes(n) bytes: [0, 4) f.scale,
//                                  [4, 8) b = f.scale * float(sum_c q16[c]), [8, 8 + n) the low
//                                  bytes lo = q16 & 127, [8 + n, 8 + 2 n) the high ones
//                                  hi = q16 >> 7 (int8; q16 = 128 hi + lo)
//   token_block_dots_prepared_i16  the header's scores with q16 for q8 (|sum| <= 255 * 16383 * n
//                                  fits 32 bits for n <= token_block_i16_max_n = 512; beyond, the
//                                  generic sums are 64-bit)
//
// With VNNI each query dword takes two vpdpbusd, one per byte plane, low + 128 high; on AVX2 the
// codes as words meet q16 by vpmaddwd. The query's form (split into its planes there, once per
// step and query) is scalar code on every target.
//
// Fast paths, for n a multiple of 4 per up to 1024 (15-bit queries: 512): AVX-512 VNNI
// (vpdpbusd), and AVX2 (bits 1, 2 and 4: vpmaddubsw + vpmaddwd; 8: vpmaddwd on words), also the
// AVX-512 table's base form without VNNI. Other targets and shapes get the generic sums (scalar
// code).

#include <qcodec/simd/arch.hpp>
#include <qcodec/simd/convert.hpp>
#include <qcodec/simd/int8_dots.hpp>
#include <qcodec/simd/prefetch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace qcodec {

// The layout's arithmetic, templates on the target as kernel helpers are (kernel_table.hpp);
// codecs and tests use the default.
namespace simd {
/// Tokens in one block.
inline constexpr std::size_t block_tokens = 16;
/// Channels in one group of 64 bytes.
template <class Arch = scalar>
constexpr std::size_t token_block_group(unsigned bits) noexcept {
  return 4 * (8 / bits);
}
/// Bytes of one block of n codes of `bits` bits (header comment).
template <class Arch = scalar>
constexpr std::size_t token_block_bytes(std::size_t n, unsigned bits) noexcept {
  const std::size_t group = token_block_group<Arch>(bits);
  return 64 + 64 * ((n + group - 1) / group);
}
/// Where code c of token t lies in a block: byte and bit shift (header comment).
template <class Arch = scalar>
constexpr std::size_t token_block_code_byte(std::size_t t, std::size_t c, unsigned bits) noexcept {
  return 64 + 64 * (c / token_block_group<Arch>(bits)) + 4 * t + c % 4;
}
template <class Arch = scalar>
constexpr unsigned token_block_code_shift(std::size_t c, unsigned bits) noexcept {
  return bits * static_cast<unsigned>(c % token_block_group<Arch>(bits) / 4);
}
/// Bytes of a prepared query of n elements (header comment).
template <class Arch = scalar>
constexpr std::size_t token_block_query_bytes(std::size_t n) noexcept {
  return 8 + n;
}
/// Bytes of a prepared 15-bit query of n elements, and the widest n of 32-bit sums (header).
template <class Arch = scalar>
constexpr std::size_t token_block_query_i16_bytes(std::size_t n) noexcept {
  return 8 + 2 * n;
}
inline constexpr std::size_t token_block_i16_max_n = 512;
static_assert(255ull * 16383 * token_block_i16_max_n < (1ull << 31) &&
                  128ull * 128 * 255 * token_block_i16_max_n < (1ull << 31),
              "15-bit sums, and VNNI's high bytes' sums times 128, fit 32 bits");
}  // namespace simd

namespace simd::detail::token_blocks {

inline constexpr std::size_t max_n = int8_dots::max_n;

// sums[t] += sum_{i < k} code_t[c0 + i] * q8[i] over one block.
template <class Arch>
void chunk_sums(const std::uint8_t* block, std::size_t c0, std::size_t k, unsigned bits,
                const std::int8_t* q8, std::int32_t* sums) noexcept {
  const std::uint32_t mask = (1u << bits) - 1u;
  for (std::size_t t = 0; t < block_tokens; ++t) {
    for (std::size_t i = 0; i < k; ++i) {
      const std::size_t c = c0 + i;
      const std::uint32_t code = std::uint32_t{block[token_block_code_byte<Arch>(t, c, bits)]} >>
                                 token_block_code_shift<Arch>(c, bits);
      sums[t] += static_cast<std::int32_t>(code & mask) * q8[i];
    }
  }
}

// A block's 16 scores from its sums: out[t] = fma(s_t, scale * float(sums[t]), o_t * b) (the
// sums 32- or 64-bit: the same float for the same value).
template <class Arch, class Sum>
void store_scores(const std::uint8_t* block, const Sum* sums, float scale, float b,
                  float* out) noexcept {
  for (std::size_t t = 0; t < block_tokens; ++t) {
    std::uint16_t h[2];
    std::memcpy(&h[0], block + 2 * t, 2);
    std::memcpy(&h[1], block + 32 + 2 * t, 2);
    const float s = cvt::portable_f16_to_f32<Arch>(h[0]);
    const float o = cvt::portable_f16_to_f32<Arch>(h[1]);
    out[t] = std::fma(s, scale * static_cast<float>(sums[t]), o * b);
  }
}

// The header's scores, one token at a time (the oracle with Arch = simd::scalar). The int8 query
// is converted max_n elements at a time: once per call up to max_n, per block beyond.
template <class Arch>
void dots_generic(const std::uint8_t* in, std::size_t count, std::size_t n, unsigned bits,
                  const float* q, std::size_t nq, float* out, std::size_t ld) noexcept {
  std::int8_t q8[max_n];
  std::int32_t sums[block_tokens];
  const std::size_t bytes = token_block_bytes<Arch>(n, bits);
  for (std::size_t g = 0; g < nq; ++g) {
    const float* qg = q + g * n;
    const int8_dots::int8_form f = int8_dots::form_of<Arch>(qg, n);
    const auto q8_of = [&](std::size_t c) {
      return f.inv == 0.0f ? 0 : static_cast<std::int32_t>(std::nearbyint(qg[c] * f.inv));
    };
    std::int32_t q8_sum = 0;
    for (std::size_t c = 0; c < n; ++c) q8_sum += q8_of(c);
    const float b = f.scale * static_cast<float>(q8_sum);
    for (std::size_t u = 0; u < count; ++u) {
      const std::uint8_t* block = in + u * bytes;
      for (std::int32_t& x : sums) x = 0;
      for (std::size_t c0 = 0; c0 < n; c0 += max_n) {
        const std::size_t k = n - c0 < max_n ? n - c0 : max_n;
        if (u == 0 || n > max_n)
          for (std::size_t i = 0; i < k; ++i) q8[i] = static_cast<std::int8_t>(q8_of(c0 + i));
        chunk_sums<Arch>(block, c0, k, bits, q8, sums);
      }
      store_scores<Arch>(block, sums, f.scale, b, out + g * ld + block_tokens * u);
    }
  }
}

// A prepared query's scale and b, and its q8 (header comment).
template <class Arch>
const std::int8_t* read_query(const std::uint8_t* query, float& scale, float& b) noexcept {
  std::memcpy(&scale, query, 4);
  std::memcpy(&b, query + 4, 4);
  return reinterpret_cast<const std::int8_t*>(query + 8);
}

// The same scores from prepared queries.
template <class Arch>
void dots_generic_prepared(const std::uint8_t* in, std::size_t count, std::size_t n, unsigned bits,
                           const std::uint8_t* queries, std::size_t query_stride, std::size_t nq,
                           float* out, std::size_t ld) noexcept {
  std::int32_t sums[block_tokens];
  const std::size_t bytes = token_block_bytes<Arch>(n, bits);
  for (std::size_t g = 0; g < nq; ++g) {
    float scale, b;
    const std::int8_t* q8 = read_query<Arch>(queries + g * query_stride, scale, b);
    for (std::size_t u = 0; u < count; ++u) {
      const std::uint8_t* block = in + u * bytes;
      for (std::int32_t& x : sums) x = 0;
      chunk_sums<Arch>(block, 0, n, bits, q8, sums);
      store_scores<Arch>(block, sums, scale, b, out + g * ld + block_tokens * u);
    }
  }
}

// The header's 15-bit scores from prepared queries, one token at a time (the oracle with
// Arch = simd::scalar, and the fallback), in 64-bit sums.
template <class Arch>
void dots_generic_prepared_i16(const std::uint8_t* in, std::size_t count, std::size_t n,
                               unsigned bits, const std::uint8_t* queries, std::size_t query_stride,
                               std::size_t nq, float* out, std::size_t ld) noexcept {
  const std::uint32_t mask = (1u << bits) - 1u;
  const std::size_t bytes = token_block_bytes<Arch>(n, bits);
  std::int64_t sums[block_tokens];
  for (std::size_t g = 0; g < nq; ++g) {
    float scale, b;
    const std::int8_t* low = read_query<Arch>(queries + g * query_stride, scale, b);
    const std::int8_t* high = low + n;
    for (std::size_t u = 0; u < count; ++u) {
      const std::uint8_t* block = in + u * bytes;
      for (std::size_t t = 0; t < block_tokens; ++t) {
        sums[t] = 0;
        for (std::size_t c = 0; c < n; ++c) {
          const std::int32_t q16 = 128 * high[c] + low[c];
          const std::uint32_t code =
              std::uint32_t{block[token_block_code_byte<Arch>(t, c, bits)]} >>
              token_block_code_shift<Arch>(c, bits);
          sums[t] += static_cast<std::int64_t>(code & mask) * q16;
        }
      }
      store_scores<Arch>(block, sums, scale, b, out + g * ld + block_tokens * u);
    }
  }
}

// q's 15-bit form as token_block_query_i16's bytes, in scalar code (any n).
template <class Arch>
void query_i16_generic(const float* q, std::size_t n, std::uint8_t* out) noexcept {
  const int8_dots::int8_form f = int8_dots::form_of<Arch>(q, n, 16383.0f);
  std::int32_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto v = f.inv == 0.0f ? 0 : static_cast<std::int32_t>(std::nearbyint(q[i] * f.inv));
    out[8 + i] = static_cast<std::uint8_t>(v & 127);
    out[8 + n + i] = static_cast<std::uint8_t>(v >> 7);
    sum += v;
  }
  const float b = f.scale * static_cast<float>(sum);
  std::memcpy(out, &f.scale, 4);
  std::memcpy(out + 4, &b, 4);
}

// q's int8 form into q8, with b = f.scale * sum q8, in scalar code (any n).
template <class Arch>
int8_dots::int8_form int8_query_generic(const float* q, std::size_t n, std::int8_t* q8,
                                        float& b) noexcept {
  const int8_dots::int8_form f = int8_dots::form_of<Arch>(q, n);
  std::int32_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto v = f.inv == 0.0f ? 0 : static_cast<std::int32_t>(std::nearbyint(q[i] * f.inv));
    q8[i] = static_cast<std::int8_t>(v);
    sum += v;
  }
  b = f.scale * static_cast<float>(sum);
  return f;
}

// token_block_query with a form function.
template <class Arch, class Form>
void prepare_query(Form form, const float* q, std::size_t n, std::uint8_t* out) noexcept {
  float b;
  const float scale = form(q, n, reinterpret_cast<std::int8_t*>(out + 8), b).scale;
  std::memcpy(out, &scale, 4);
  std::memcpy(out + 4, &b, 4);
}

// The fast paths' scores of `count` blocks against G = 1-4 queries whose int8 forms qd holds:
// qd[g * n / 4 + m] holds q8_g[4m, 4m + 4) as a dword, scale[g] = f_g.scale and b[g] its b
// (15-bit queries: their high bytes too, 4 n / 4 dwords on: dots_in_fours).
using block_dots_fn = void (*)(const std::uint8_t* in, std::size_t count, std::size_t n,
                               const std::int32_t* qd, const float* scale, const float* b,
                               float* out, std::size_t ld) noexcept;

// Prepared queries four at a time into qd, each four scored by dots[G - 1]: plane p (of Planes:
// the int8 elements, or a 15-bit query's low and high bytes) of query g at qd[(4 p + g) n / 4]. n
// is a multiple of 4 up to max_n / Planes. (A template on Arch, as every kernel helper: each
// target's build has its own copy.)
template <class Arch, std::size_t Planes = 1>
void dots_in_fours(const block_dots_fn (&dots)[4], const std::uint8_t* in, std::size_t count,
                   std::size_t n, const std::uint8_t* queries, std::size_t query_stride,
                   std::size_t nq, float* out, std::size_t ld) noexcept {
  alignas(64) std::int32_t qd[max_n];  // 4 Planes queries' planes of n / 4 dwords
  for (std::size_t g0 = 0; g0 < nq; g0 += 4) {
    const std::size_t gn = nq - g0 < 4 ? nq - g0 : 4;
    float scale[4], b[4];
    for (std::size_t g = 0; g < gn; ++g) {
      const std::int8_t* q8 = read_query<Arch>(queries + (g0 + g) * query_stride, scale[g], b[g]);
      for (std::size_t p = 0; p < Planes; ++p)
        std::memcpy(qd + (4 * p + g) * (n / 4), q8 + p * n, n);
    }
    dots[gn - 1](in, count, n, qd, scale, b, out + g0 * ld, ld);
  }
}

// A target's token_block_query and token_block_dots_prepared.
using query_fn = void (*)(const float* q, std::size_t n, std::uint8_t* out) noexcept;
using prepared_dots_fn = void (*)(const std::uint8_t* in, std::size_t count, std::size_t n,
                                  unsigned bits, const std::uint8_t* queries,
                                  std::size_t query_stride, std::size_t nq, float* out,
                                  std::size_t ld) noexcept;

}  // namespace simd::detail::token_blocks

namespace ref {

inline void token_block_dots_i8(const std::uint8_t* in, std::size_t count, std::size_t n,
                                unsigned bits, const float* q, std::size_t nq, float* out,
                                std::size_t ld) noexcept {
  simd::detail::token_blocks::dots_generic<simd::scalar>(in, count, n, bits, q, nq, out, ld);
}

inline void token_block_query(const float* q, std::size_t n, std::uint8_t* out) noexcept {
  namespace d = simd::detail::token_blocks;
  d::prepare_query<simd::scalar>(&d::int8_query_generic<simd::scalar>, q, n, out);
}

inline void token_block_dots_prepared(const std::uint8_t* in, std::size_t count, std::size_t n,
                                      unsigned bits, const std::uint8_t* queries,
                                      std::size_t query_stride, std::size_t nq, float* out,
                                      std::size_t ld) noexcept {
  simd::detail::token_blocks::dots_generic_prepared<simd::scalar>(in, count, n, bits, queries,
                                                                  query_stride, nq, out, ld);
}

inline void token_block_query_i16(const float* q, std::size_t n, std::uint8_t* out) noexcept {
  simd::detail::token_blocks::query_i16_generic<simd::scalar>(q, n, out);
}

inline void token_block_dots_prepared_i16(const std::uint8_t* in, std::size_t count, std::size_t n,
                                          unsigned bits, const std::uint8_t* queries,
                                          std::size_t query_stride, std::size_t nq, float* out,
                                          std::size_t ld) noexcept {
  simd::detail::token_blocks::dots_generic_prepared_i16<simd::scalar>(in, count, n, bits, queries,
                                                                      query_stride, nq, out, ld);
}

}  // namespace ref

namespace simd {

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's own AVX-512 intrinsics
#endif

#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
namespace detail::token_blocks {

// With AVX-512 VNNI (checked at run time: its own target attribute, as int8_dots.hpp).
#define QCODEC_TB_VNNI_TARGET __attribute__((target("avx512vnni")))

// Group j of a block (64 bytes: 4 * 8 / Bits channels of its 16 tokens) against G queries, into
// acc[g][2 h + k % 2] for bit field k. 4-bit codes' high nibbles are multiplied where they are,
// 16 times the codes (one mask where shifting them down took a shift too, on the pipes vpdpbusd
// runs on: 0.99x the time of a q4-blocks-quads decode step); dots_vnni divides their sum by 16.
// Split (8-bit codes, 15-bit queries): qd holds the queries' low bytes and, 4 qn dwords on, their
// high ones (dots_in_fours' two planes), the high bytes' sums into acc[g][2 h + 1].
template <std::size_t G, unsigned Bits, class Arch, bool Split = false>
[[gnu::always_inline]] QCODEC_TB_VNNI_TARGET inline void group_dots(const std::uint8_t* block,
                                                                    std::size_t j, std::size_t h,
                                                                    const std::int32_t* qd,
                                                                    std::size_t qn,
                                                                    __m512i (&acc)[G][4]) noexcept {
  static_assert(!Split || Bits == 8, "15-bit queries: 8-bit codes");
  constexpr unsigned per = 8 / Bits;
  const __m512i mask = _mm512_set1_epi8(static_cast<char>((1u << Bits) - 1u));
  const __m512i x = _mm512_loadu_si512(block + 64 + 64 * j);
  for (unsigned k = 0; k < per; ++k) {
    __m512i codes = x;
    if constexpr (Bits == 4) {
      codes = k == 0 ? _mm512_and_si512(x, mask) : _mm512_andnot_si512(mask, x);
    } else if constexpr (Bits != 8) {
      codes = _mm512_and_si512(k == 0 ? x : _mm512_srli_epi16(x, static_cast<int>(k * Bits)), mask);
    }
    const std::size_t m = per * j + k, p = 2 * h + k % 2;
    for (std::size_t g = 0; g < G; ++g) {
      acc[g][p] = _mm512_dpbusd_epi32(acc[g][p], codes, _mm512_set1_epi32(qd[g * qn + m]));
      asm("" : "+v"(acc[g][p]));  // else GCC 12 copies every accumulator at every step
      if constexpr (Split) {
        acc[g][p + 1] =
            _mm512_dpbusd_epi32(acc[g][p + 1], codes, _mm512_set1_epi32(qd[(4 + g) * qn + m]));
        asm("" : "+v"(acc[g][p + 1]));
      }
    }
  }
}

// A block_dots_fn (G queries). Four accumulators per query, by bit field and by the group's
// parity (8-bit codes, one field, use two): each chain about a quarter (8 bits: half) of a query's
// vpdpbusd, where two accumulators left vpdpbusd's latency (5 cycles) showing: 0.98-0.99x the time
// of a q4-blocks-quads decode step at head_dim 64 (docs/measurements.md). The high nibbles' sums
// are multiples of 16 (group_dots), divided exactly (|sum| <= 240 * 128 * n). Split: 15-bit
// queries' low and high bytes (group_dots), low + 128 high (|128 high| <= 128 * 128 * 255 * n
// < 2^31 for n <= token_block_i16_max_n).
template <std::size_t G, unsigned Bits, class Arch, bool Split = false>
QCODEC_TB_VNNI_TARGET void dots_vnni(const std::uint8_t* in, std::size_t count, std::size_t n,
                                     const std::int32_t* qd, const float* scale, const float* b,
                                     float* out, std::size_t ld) noexcept {
  const std::size_t bytes = token_block_bytes<Arch>(n, Bits), qn = n / 4;
  const std::size_t groups = n / token_block_group<Arch>(Bits);
  for (std::size_t u = 0; u < count; ++u) {
    const std::uint8_t* block = in + u * bytes;
    // The block ahead (simd/prefetch.hpp) a line or two at a time: its header now, each group's
    // line beside the group.
    const std::uint8_t* ahead = block + unit_prefetch_distance;
    prefetch_bytes<Arch>(ahead, 64);
    __m512i acc[G][4];
    for (auto& a : acc)
      for (auto& v : a) v = _mm512_setzero_si512();
    std::size_t j = 0;
    for (; j + 2 <= groups; j += 2) {
      prefetch_bytes<Arch>(ahead + 64 + 64 * j, 128);
      group_dots<G, Bits, Arch, Split>(block, j, 0, qd, qn, acc);
      group_dots<G, Bits, Arch, Split>(block, j + 1, 1, qd, qn, acc);
    }
    if (j < groups) {
      prefetch_bytes<Arch>(ahead + 64 + 64 * j, 64);
      group_dots<G, Bits, Arch, Split>(block, j, 0, qd, qn, acc);
    }
    const __m512 s = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block)));
    const __m512 o =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 32)));
    for (std::size_t g = 0; g < G; ++g) {
      const __m512i low = _mm512_add_epi32(acc[g][0], acc[g][2]);
      const __m512i high = _mm512_add_epi32(acc[g][1], acc[g][3]);
      const __m512i sum = _mm512_add_epi32(low, Split       ? _mm512_slli_epi32(high, 7)
                                                : Bits == 4 ? _mm512_srai_epi32(high, 4)
                                                            : high);
      const __m512 a = _mm512_mul_ps(_mm512_set1_ps(scale[g]), _mm512_cvtepi32_ps(sum));
      _mm512_storeu_ps(out + g * ld + block_tokens * u,
                       _mm512_fmadd_ps(s, a, _mm512_mul_ps(o, _mm512_set1_ps(b[g]))));
    }
  }
}

// q's int8 form into q8, with b = f.scale * sum q8 (called per page: the scalar loop took a
// quarter of a decode step at head_dim 64). cvtps_epi32 rounds in the current mode, as nearbyint.
template <class Arch>
QCODEC_TB_VNNI_TARGET int8_dots::int8_form int8_query_avx512(const float* q, std::size_t n,
                                                             std::int8_t* q8, float& b) noexcept {
  const int8_dots::int8_form f = int8_dots::form_avx512<Arch>(q, n);
  if (f.inv == 0.0f) {  // zero, tiny or not finite: q8 all zero
    std::memset(q8, 0, n);
    b = f.scale * 0.0f;
    return f;
  }
  const __m512 inv = _mm512_set1_ps(f.inv);
  __m512i sum = _mm512_setzero_si512();
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 k = int8_dots::lanes_from<Arch>(i, n);
    const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, q + i), inv));
    _mm512_mask_cvtepi32_storeu_epi8(q8 + i, k, v);  // |v| <= 127
    sum = _mm512_add_epi32(sum, v);
  }
  b = f.scale * static_cast<float>(_mm512_reduce_add_epi32(sum));
  return f;
}

template <unsigned Bits, class Arch>
void dots_bits(const std::uint8_t* in, std::size_t count, std::size_t n,
               const std::uint8_t* queries, std::size_t query_stride, std::size_t nq, float* out,
               std::size_t ld) noexcept {
  static constexpr block_dots_fn dots[4] = {&dots_vnni<1, Bits, Arch>, &dots_vnni<2, Bits, Arch>,
                                            &dots_vnni<3, Bits, Arch>, &dots_vnni<4, Bits, Arch>};
  dots_in_fours<Arch>(dots, in, count, n, queries, query_stride, nq, out, ld);
}

template <class Arch>
void dots_i16_vnni(const std::uint8_t* in, std::size_t count, std::size_t n,
                   const std::uint8_t* queries, std::size_t query_stride, std::size_t nq,
                   float* out, std::size_t ld) noexcept {
  static constexpr block_dots_fn dots[4] = {
      &dots_vnni<1, 8, Arch, true>, &dots_vnni<2, 8, Arch, true>, &dots_vnni<3, 8, Arch, true>,
      &dots_vnni<4, 8, Arch, true>};
  dots_in_fours<Arch, 2>(dots, in, count, n, queries, query_stride, nq, out, ld);
}

}  // namespace detail::token_blocks

#undef QCODEC_TB_VNNI_TARGET
#endif

#if XSIMD_WITH_AVX2 && defined(__FMA__) && defined(__F16C__)  // (vfmadd, vcvtph2ps)
namespace detail::token_blocks {

// q's int8 form into q8 (n a multiple of 8), with b = f.scale * sum q8, on AVX2.
template <class Arch>
int8_dots::int8_form int8_query_avx2(const float* q, std::size_t n, std::int8_t* q8,
                                     float& b) noexcept {
  const int8_dots::int8_form f = int8_dots::form_avx2<Arch>(q, n);
  if (f.inv == 0.0f) {  // zero, tiny or not finite: q8 all zero
    std::memset(q8, 0, n);
    b = f.scale * 0.0f;
    return f;
  }
  const __m256 inv = _mm256_set1_ps(f.inv);
  __m256i sum = _mm256_setzero_si256();
  for (std::size_t i = 0; i < n; i += 8) {  // cvtps_epi32 rounds in the current mode
    const __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(q + i), inv));
    // |v| <= 127: the saturating packs keep the values; 8 bytes stored as one qword.
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q8 + i), _mm_packs_epi16(w, w));
    sum = _mm256_add_epi32(sum, v);
  }
  alignas(32) std::int32_t k[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(k), sum);
  std::int32_t total = 0;
  for (std::int32_t x : k) total += x;
  b = f.scale * static_cast<float>(total);
  return f;
}

// A block_dots_fn for Bits <= 4 without VNNI: vpmaddubsw's pair sums (codes <= 15 and
// |q8| <= 127: <= 3810) never saturate; two bit fields' are added as 16 bits (<= 7620) and
// vpmaddwd against ones widens them to each token's sum. Tokens 0-7 and 8-15 of a group are its two
// 32-byte halves.
template <std::size_t G, unsigned Bits, class Arch>
void dots_maddubs(const std::uint8_t* in, std::size_t count, std::size_t n, const std::int32_t* qd,
                  const float* scale, const float* b, float* out, std::size_t ld) noexcept {
  static_assert(Bits <= 4, "8-bit pair sums would saturate");
  constexpr unsigned per = 8 / Bits;
  const std::size_t bytes = token_block_bytes<Arch>(n, Bits), qn = n / 4;
  const std::size_t groups = n / token_block_group<Arch>(Bits);
  const __m256i mask = _mm256_set1_epi8(static_cast<char>((1u << Bits) - 1u));
  const __m256i ones = _mm256_set1_epi16(1);
  const auto field = [&](__m256i x, unsigned k) {
    return _mm256_and_si256(k == 0 ? x : _mm256_srli_epi16(x, static_cast<int>(k * Bits)), mask);
  };
  for (std::size_t u = 0; u < count; ++u) {
    const std::uint8_t* block = in + u * bytes;
    __m256i acc[G][2];
    for (auto& a : acc) a[0] = a[1] = _mm256_setzero_si256();
    for (std::size_t j = 0; j < groups; ++j) {
      for (std::size_t h = 0; h < 2; ++h) {
        const __m256i x =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64 + 64 * j + 32 * h));
        for (unsigned k = 0; k < per; k += 2) {
          const __m256i c0 = field(x, k), c1 = field(x, k + 1);
          for (std::size_t g = 0; g < G; ++g) {
            const std::int32_t* qg = qd + g * qn + per * j + k;
            const __m256i pairs =
                _mm256_add_epi16(_mm256_maddubs_epi16(c0, _mm256_set1_epi32(qg[0])),
                                 _mm256_maddubs_epi16(c1, _mm256_set1_epi32(qg[1])));
            acc[g][h] = _mm256_add_epi32(acc[g][h], _mm256_madd_epi16(pairs, ones));
          }
        }
      }
    }
    for (std::size_t h = 0; h < 2; ++h) {
      const __m256 s =
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * h)));
      const __m256 o =
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 32 + 16 * h)));
      for (std::size_t g = 0; g < G; ++g) {
        const __m256 a = _mm256_mul_ps(_mm256_set1_ps(scale[g]), _mm256_cvtepi32_ps(acc[g][h]));
        _mm256_storeu_ps(out + g * ld + block_tokens * u + 8 * h,
                         _mm256_fmadd_ps(s, a, _mm256_mul_ps(o, _mm256_set1_ps(b[g]))));
      }
    }
  }
}

// A block_dots_fn for 8-bit codes without VNNI, where vpmaddubsw's pairs would saturate
// (2 * 255 * 127): four tokens' codes of a group (16 bytes) zero-extended to words, vpmaddwd
// against the query's four values as words, so that each token has two dwords (channels 0-1 and
// 2-3), added once per block (vphaddd). Tokens 0-7, then 8-15: two sums per query. The queries'
// words come from qd's planes once per call (Planes 2: 15-bit queries, q16 = 128 hi + lo;
// |sum| <= 255 * 16383 * n).
template <std::size_t G, class Arch, std::size_t Planes = 1>
void dots_madd8(const std::uint8_t* in, std::size_t count, std::size_t n, const std::int32_t* qd,
                const float* scale, const float* b, float* out, std::size_t ld) noexcept {
  const std::size_t bytes = token_block_bytes<Arch>(n, 8), groups = n / 4;
  alignas(32) std::int16_t words[G][max_n];
  const auto* planes = reinterpret_cast<const std::int8_t*>(qd);
  for (std::size_t g = 0; g < G; ++g)
    for (std::size_t i = 0; i < n; ++i)
      words[g][i] = static_cast<std::int16_t>(planes[g * n + i] +
                                              (Planes == 2 ? 128 * planes[(4 + g) * n + i] : 0));
  for (std::size_t u = 0; u < count; ++u) {
    const std::uint8_t* block = in + u * bytes;
    for (std::size_t h = 0; h < 2; ++h) {
      __m256i acc[G][2];  // acc[g][k]: tokens 8 h + 4 k .. + 3, two dwords each
      for (auto& a : acc) a[0] = a[1] = _mm256_setzero_si256();
      for (std::size_t j = 0; j < groups; ++j) {
        const auto* x = reinterpret_cast<const __m128i*>(block + 64 + 64 * j + 32 * h);
        const __m256i codes[2] = {_mm256_cvtepu8_epi16(_mm_loadu_si128(x)),
                                  _mm256_cvtepu8_epi16(_mm_loadu_si128(x + 1))};
        for (std::size_t g = 0; g < G; ++g) {
          std::int64_t four;  // the query's words of this group, four times
          std::memcpy(&four, words[g] + 4 * j, 8);
          const __m256i q = _mm256_set1_epi64x(four);
          for (std::size_t k = 0; k < 2; ++k)
            acc[g][k] = _mm256_add_epi32(acc[g][k], _mm256_madd_epi16(codes[k], q));
        }
      }
      const __m256 s =
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * h)));
      const __m256 o =
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 32 + 16 * h)));
      for (std::size_t g = 0; g < G; ++g) {
        // hadd: tokens 0, 1, 4, 5 | 2, 3, 6, 7 of the eight; the qword permute orders them.
        const __m256i sum = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[g][0], acc[g][1]), 0xD8);
        const __m256 a = _mm256_mul_ps(_mm256_set1_ps(scale[g]), _mm256_cvtepi32_ps(sum));
        _mm256_storeu_ps(out + g * ld + block_tokens * u + 8 * h,
                         _mm256_fmadd_ps(s, a, _mm256_mul_ps(o, _mm256_set1_ps(b[g]))));
      }
    }
  }
}

template <unsigned Bits, class Arch>
void dots_bits_avx2(const std::uint8_t* in, std::size_t count, std::size_t n,
                    const std::uint8_t* queries, std::size_t query_stride, std::size_t nq,
                    float* out, std::size_t ld) noexcept {
  if constexpr (Bits == 8) {
    static constexpr block_dots_fn dots[4] = {&dots_madd8<1, Arch>, &dots_madd8<2, Arch>,
                                              &dots_madd8<3, Arch>, &dots_madd8<4, Arch>};
    dots_in_fours<Arch>(dots, in, count, n, queries, query_stride, nq, out, ld);
  } else {
    static constexpr block_dots_fn dots[4] = {
        &dots_maddubs<1, Bits, Arch>, &dots_maddubs<2, Bits, Arch>, &dots_maddubs<3, Bits, Arch>,
        &dots_maddubs<4, Bits, Arch>};
    dots_in_fours<Arch>(dots, in, count, n, queries, query_stride, nq, out, ld);
  }
}

template <class Arch>
void dots_i16_avx2(const std::uint8_t* in, std::size_t count, std::size_t n,
                   const std::uint8_t* queries, std::size_t query_stride, std::size_t nq,
                   float* out, std::size_t ld) noexcept {
  static constexpr block_dots_fn dots[4] = {&dots_madd8<1, Arch, 2>, &dots_madd8<2, Arch, 2>,
                                            &dots_madd8<3, Arch, 2>, &dots_madd8<4, Arch, 2>};
  dots_in_fours<Arch, 2>(dots, in, count, n, queries, query_stride, nq, out, ld);
}

}  // namespace detail::token_blocks
#endif

/// token_block_query and token_block_dots_prepared without instructions beyond Arch's (no
/// VNNI): vpmaddubsw on AVX2 and AVX-512 targets for bits 1, 2 and 4, vpmaddwd for 8, the generic
/// sums otherwise.
template <class Arch>
void token_block_query_base(const float* q, std::size_t n, std::uint8_t* out) noexcept {
  namespace d = detail::token_blocks;
#if XSIMD_WITH_AVX2 && defined(__FMA__) && defined(__F16C__)
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch> || std::is_base_of_v<xsimd::avx512bw, Arch>) {
    if (n % 8 == 0) return d::prepare_query<Arch>(&d::int8_query_avx2<Arch>, q, n, out);
  }
#endif
  d::prepare_query<Arch>(&d::int8_query_generic<Arch>, q, n, out);
}
template <class Arch>
void token_block_dots_prepared_base(const std::uint8_t* in, std::size_t count, std::size_t n,
                                    unsigned bits, const std::uint8_t* queries,
                                    std::size_t query_stride, std::size_t nq, float* out,
                                    std::size_t ld) noexcept {
  namespace d = detail::token_blocks;
#if XSIMD_WITH_AVX2 && defined(__FMA__) && defined(__F16C__)  // (vfmadd, vcvtph2ps)
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch> || std::is_base_of_v<xsimd::avx512bw, Arch>) {
    if ((bits == 1 || bits == 2 || bits == 4 || bits == 8) &&
        n % token_block_group<Arch>(bits) == 0 && n <= d::max_n) {
      switch (bits) {
        case 1:
          return d::dots_bits_avx2<1, Arch>(in, count, n, queries, query_stride, nq, out, ld);
        case 2:
          return d::dots_bits_avx2<2, Arch>(in, count, n, queries, query_stride, nq, out, ld);
        case 4:
          return d::dots_bits_avx2<4, Arch>(in, count, n, queries, query_stride, nq, out, ld);
        default:
          return d::dots_bits_avx2<8, Arch>(in, count, n, queries, query_stride, nq, out, ld);
      }
    }
  }
#endif
  d::dots_generic_prepared<Arch>(in, count, n, bits, queries, query_stride, nq, out, ld);
}
/// token_block_dots_prepared_i16 so too: vpmaddwd on AVX2 and AVX-512 targets for 8-bit codes
/// (n a multiple of 4 up to token_block_i16_max_n), the generic sums otherwise.
template <class Arch>
void token_block_dots_prepared_i16_base(const std::uint8_t* in, std::size_t count, std::size_t n,
                                        unsigned bits, const std::uint8_t* queries,
                                        std::size_t query_stride, std::size_t nq, float* out,
                                        std::size_t ld) noexcept {
  namespace d = detail::token_blocks;
#if XSIMD_WITH_AVX2 && defined(__FMA__) && defined(__F16C__)
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch> || std::is_base_of_v<xsimd::avx512bw, Arch>) {
    if (bits == 8 && n % 4 == 0 && n <= token_block_i16_max_n)
      return d::dots_i16_avx2<Arch>(in, count, n, queries, query_stride, nq, out, ld);
  }
#endif
  d::dots_generic_prepared_i16<Arch>(in, count, n, bits, queries, query_stride, nq, out, ld);
}
/// token_block_dots_i8 as a target's Prepare and Dots (the base forms above, or VNNI's below):
/// the queries prepared four at a time on the stack, up to max_n elements.
template <class Arch, detail::token_blocks::query_fn Prepare,
          detail::token_blocks::prepared_dots_fn Dots>
void token_block_dots_i8_with(const std::uint8_t* in, std::size_t count, std::size_t n,
                              unsigned bits, const float* q, std::size_t nq, float* out,
                              std::size_t ld) noexcept {
  namespace d = detail::token_blocks;
  if (n > d::max_n) return d::dots_generic<Arch>(in, count, n, bits, q, nq, out, ld);
  std::uint8_t queries[4 * token_block_query_bytes<Arch>(d::max_n)];
  const std::size_t stride = token_block_query_bytes<Arch>(n);
  for (std::size_t g0 = 0; g0 < nq; g0 += 4) {
    const std::size_t gn = nq - g0 < 4 ? nq - g0 : 4;
    for (std::size_t g = 0; g < gn; ++g) Prepare(q + (g0 + g) * n, n, queries + g * stride);
    Dots(in, count, n, bits, queries, stride, gn, out + g0 * ld, ld);
  }
}

#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
/// The two with AVX-512 VNNI (only on CPUs that have it).
template <class Arch>
void token_block_query_vnni(const float* q, std::size_t n, std::uint8_t* out) noexcept {
  namespace d = detail::token_blocks;
  d::prepare_query<Arch>(&d::int8_query_avx512<Arch>, q, n, out);
}
template <class Arch>
void token_block_dots_prepared_vnni(const std::uint8_t* in, std::size_t count, std::size_t n,
                                    unsigned bits, const std::uint8_t* queries,
                                    std::size_t query_stride, std::size_t nq, float* out,
                                    std::size_t ld) noexcept {
  namespace d = detail::token_blocks;
  const bool whole_groups =
      (bits == 1 || bits == 2 || bits == 4 || bits == 8) && n % token_block_group<Arch>(bits) == 0;
  if (!whole_groups || n > d::max_n) {
    return token_block_dots_prepared_base<Arch>(in, count, n, bits, queries, query_stride, nq, out,
                                                ld);
  }
  switch (bits) {
    case 1:
      return d::dots_bits<1, Arch>(in, count, n, queries, query_stride, nq, out, ld);
    case 2:
      return d::dots_bits<2, Arch>(in, count, n, queries, query_stride, nq, out, ld);
    case 4:
      return d::dots_bits<4, Arch>(in, count, n, queries, query_stride, nq, out, ld);
    default:
      return d::dots_bits<8, Arch>(in, count, n, queries, query_stride, nq, out, ld);
  }
}
template <class Arch>
void token_block_dots_prepared_i16_vnni(const std::uint8_t* in, std::size_t count, std::size_t n,
                                        unsigned bits, const std::uint8_t* queries,
                                        std::size_t query_stride, std::size_t nq, float* out,
                                        std::size_t ld) noexcept {
  if (bits == 8 && n % 4 == 0 && n <= token_block_i16_max_n)
    return detail::token_blocks::dots_i16_vnni<Arch>(in, count, n, queries, query_stride, nq, out,
                                                     ld);
  token_block_dots_prepared_i16_base<Arch>(in, count, n, bits, queries, query_stride, nq, out, ld);
}
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// The entries of a kernel table (see kernel_table.hpp).
struct token_block_kernels {
  /// The fastest form for the running CPU.
  void (*token_block_dots_i8)(const std::uint8_t*, std::size_t, std::size_t, unsigned, const float*,
                              std::size_t, float*, std::size_t) noexcept;
  /// The same results without extensions the table's target does not imply (on AVX-512: without
  /// VNNI), so tests can check both forms on one machine.
  void (*token_block_dots_i8_base)(const std::uint8_t*, std::size_t, std::size_t, unsigned,
                                   const float*, std::size_t, float*, std::size_t) noexcept;
  /// A query's prepared form, and scores from prepared queries (the fastest forms).
  void (*token_block_query)(const float*, std::size_t, std::uint8_t*) noexcept;
  void (*token_block_dots_prepared)(const std::uint8_t*, std::size_t, std::size_t, unsigned,
                                    const std::uint8_t*, std::size_t, std::size_t, float*,
                                    std::size_t) noexcept;
  /// Appended: a query's 15-bit prepared form (scalar code on every target), scores from such
  /// queries (the fastest form), and those scores without VNNI (for tests, as above).
  void (*token_block_query_i16)(const float*, std::size_t, std::uint8_t*) noexcept;
  void (*token_block_dots_prepared_i16)(const std::uint8_t*, std::size_t, std::size_t, unsigned,
                                        const std::uint8_t*, std::size_t, std::size_t, float*,
                                        std::size_t) noexcept;
  void (*token_block_dots_prepared_i16_base)(const std::uint8_t*, std::size_t, std::size_t,
                                             unsigned, const std::uint8_t*, std::size_t,
                                             std::size_t, float*, std::size_t) noexcept;
};

template <class Arch>
token_block_kernels make_token_block_kernels() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::token_block_dots_i8,
            &ref::token_block_dots_i8,
            &ref::token_block_query,
            &ref::token_block_dots_prepared,
            &ref::token_block_query_i16,
            &ref::token_block_dots_prepared_i16,
            &ref::token_block_dots_prepared_i16};
  } else {
    const auto base = &token_block_dots_i8_with<Arch, &token_block_query_base<Arch>,
                                                &token_block_dots_prepared_base<Arch>>;
    const auto query_i16 = &detail::token_blocks::query_i16_generic<Arch>;
    const auto base_i16 = &token_block_dots_prepared_i16_base<Arch>;
#if XSIMD_WITH_AVX512BW && (defined(__GNUC__) || defined(__clang__))
    if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
      if (cpu_supports_avx512_vnni()) {
        return {&token_block_dots_i8_with<Arch, &token_block_query_vnni<Arch>,
                                          &token_block_dots_prepared_vnni<Arch>>,
                base,
                &token_block_query_vnni<Arch>,
                &token_block_dots_prepared_vnni<Arch>,
                query_i16,
                &token_block_dots_prepared_i16_vnni<Arch>,
                base_i16};
      }
    }
#endif
    return {base,
            base,
            &token_block_query_base<Arch>,
            &token_block_dots_prepared_base<Arch>,
            query_i16,
            base_i16,
            base_i16};
  }
}

}  // namespace simd
}  // namespace qcodec
