#pragma once
// The interface between the KV cache and the codecs of its key and value streams.
//
// A stream codec stores the vectors (head_dim floats) of one KV head for consecutive tokens, in
// units of `group_tokens` tokens: per-token codecs encode each token alone (group_tokens = 1);
// per-channel codecs (KIVI's keys) encode a group of G tokens at once, with parameters per
// channel over the group. A unit is `unit_bytes()` bytes with no alignment requirement.
//
// Besides encode/decode (decode is the reference path), a codec computes what attention needs
// directly on `count` consecutive units (count * group_tokens tokens), for the nq query heads
// that share this KV head, without decoding them:
//   prepare_query(q, q')                  the query in the codec's space, once per step:
//                                         head_dim floats (q may equal q'; token_blocks
//                                         writes the query's int8 form there as bytes), or
//                                         query_floats(codec) for codecs that score through
//                                         per-query tables (coupled_codebook; q != q'); the
//                                         queries of one scores() call are prepared together
//                                         by prepare_queries (below)
//   scores(units, count, q', nq, s, ld)   s[g * ld + t] = q_g . k_t in the codec's space, from
//                                         the nq queries prepared together (prepare_queries
//                                         below: query_floats(codec) apart, unless the codec
//                                         lays them out itself)
//   accumulate(units, count, p, ldp, nq, acc)
//                                         acc[g * head_dim + i] += sum_t p[g * ldp + t] v_t[i],
//                                         in the codec's space
//   finish_output(acc)                    maps one accumulator from the codec's space to the
//                                         model's (the inverse rotation for rotated codecs)
// so that q' . k_t == scores(...) and sum_t p_t v_t == finish_output(accumulate(...)) up to
// rounding, where q' is q (in the codec's space) unless the codec scores against the int8 form
// of the query (query_format::i8). Units of one head are contiguous within a page, so a page is
// one call.

#include <qcodec/core/half.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace qcodec::kv {

// clang-format off
template <class C>
concept StreamCodec = requires(const C& c, const float* x, std::uint8_t* unit,
                               const std::uint8_t* cunit, float* y, const float* q, float* s,
                               const float* p, std::size_t n) {
  { C::group_tokens } -> std::convertible_to<std::size_t>;
  { c.head_dim() } -> std::same_as<std::size_t>;
  { c.unit_bytes() } -> std::same_as<std::size_t>;
  { c.name() } -> std::convertible_to<std::string>;
  { c.encode(x, unit) } noexcept;
  { c.decode(cunit, y) } noexcept;
  { c.prepare_query(q, y) } noexcept;
  { c.scores(cunit, n, q, n, s, n) } noexcept;
  { c.accumulate(cunit, n, p, n, n, y) } noexcept;
  { c.finish_output(y) } noexcept;
};
// clang-format on

/// How a key codec scores: against the float query, or against its int8 form (symmetric, one
/// scale per query vector: simd/int8_dots.hpp). With 4-bit codes the int8 form scores about
/// twice as fast on x86 (integer multiply-adds, VNNI where present), and adds an error well
/// below the 4-bit keys' own: rounding q moves q . k by at most max|q| / 254 * sum_i |k_i|.
/// i16: a 15-bit integer form (simd/int16_dots.hpp): of the scaled query q_c s_c per unit for
/// per-channel keys, whose channel scales differ too much for int8 to be free (per_channel takes
/// i8 too, opt-in: the int8 form of q_c s_c per unit); of the query itself for 8-bit per-token
/// keys, whose own error is below what int8 rounding of q would add (15 bits add at most
/// max|q| / 32766 * sum_i |k_i|).
enum class query_format { f32, i8, i16 };

/// How a value codec sums: with the float weights, or (i16) with each weight vector rounded, per
/// chunk of up to 256 tokens (a default page) and query head, to 16 bits of its largest weight
/// (simd/int16_axpys.hpp). On CPUs with AVX-512 VNNI that sums 4-bit codes of a head_dim
/// multiple of 64 with half the instructions; other CPUs and shapes get scalar integer sums,
/// much slower. Rounding to nearest, each weight moves by at most max_t w_t / 65534, so an output
/// moves by at most (tokens of the chunk) / 65534 times the chunk's largest value range, a bound
/// seldom approached (the roundings' signs vary), and far below 4-bit values' own error.
/// (kv::token_quads goes further, with its own layout: 8 bits per block of 16 tokens.)
enum class weight_format { f32, i16 };

/// What per-token key codecs use unless told: i8 where the integer kernel has its fast paths
/// (4-bit codes), i16 for 8-bit codes, f32 elsewhere.
constexpr query_format default_query_format(unsigned bits) noexcept {
  return bits == 4 ? query_format::i8 : bits == 8 ? query_format::i16 : query_format::f32;
}

/// The query, in the model's space, that codec c's scores are exact for (up to float rounding):
/// q itself, or for a codec that scores against the int8 form of the query, that form (codecs
/// that do define scored_query(q, out)). For reference attention on the decoded cache.
template <class C>
void scored_query(const C& c, const float* q, float* out) noexcept {
  if constexpr (requires { c.scored_query(q, out); }) {
    c.scored_query(q, out);
  } else {
    std::memmove(out, q, c.head_dim() * sizeof(float));
  }
}

/// The G keys of one unit as codec c's scores see them for query q (from scored_query): its
/// decoding, or for a codec whose rounding depends on both q and the unit (per_channel's integer
/// scaled queries), the keys q is scored exactly against (up to float rounding). Wrappers pass
/// it on. For reference attention on the decoded cache.
template <class C>
void scored_decode(const C& c, const std::uint8_t* unit, const float* q, float* y) noexcept {
  if constexpr (requires { c.scored_decode(unit, q, y); }) {
    c.scored_decode(unit, q, y);
  } else {
    c.decode(unit, y);
  }
}

/// Floats of one prepared query (prepare_query's output): head_dim, or for codecs that score
/// through tables built once per query and step, the size they declare as query_floats().
/// Wrappers (rotated, gear, outliers) build their Inner from head_dim, so they never hold such a
/// codec.
template <class C>
[[nodiscard]] std::size_t query_floats(const C& c) noexcept {
  if constexpr (requires { c.query_floats(); }) {
    return c.query_floats();
  } else {
    return c.head_dim();
  }
}

/// The nq queries q[nq][head_dim] prepared for one scores() call into out (nq *
/// query_floats(c) floats): codecs that define prepare_queries(q, nq, out) lay the prepared
/// queries out as their scores() reads them (coupled_codebook interleaves the tables of the
/// query heads of a KV head); for the others, query g's prepare_query is at g * query_floats(c).
template <class C>
void prepare_queries(const C& c, const float* q, std::size_t nq, float* out) noexcept {
  if constexpr (requires { c.prepare_queries(q, nq, out); }) {
    c.prepare_queries(q, nq, out);
  } else {
    const std::size_t floats = query_floats(c);
    for (std::size_t g = 0; g < nq; ++g) c.prepare_query(q + g * c.head_dim(), out + g * floats);
  }
}

namespace detail {

/// q[0, n) rounded onto its integer grid of `grid` steps a side (127: what
/// simd::code_row_dots_i8 scores against; 16383: code_row_dots_i16 without scales):
/// out[i] = nearbyint(q[i] * grid / m) * (m / grid), m = max |q[i]|. A zero or non-finite q is
/// copied unchanged. q may be out.
inline void round_to_grid(const float* q, std::size_t n, float grid, float* out) noexcept {
  const auto f = simd::detail::int8_dots::form_of<simd::scalar>(q, n, grid);
  if (f.inv == 0.0f) {  // zero, too small to scale, or not finite: as the kernel, unchanged
    std::memmove(out, q, n * sizeof(float));
    return;
  }
  for (std::size_t i = 0; i < n; ++i) out[i] = std::nearbyint(q[i] * f.inv) * f.scale;
}

/// The largest head_dim whose 15-bit query sums against codes of `bits` bits fit 32 bits
/// (simd/int16_dots.hpp: |sum| <= (2^bits - 1) * 16383 * n): 514 at 8 bits.
constexpr std::size_t i16_max_head_dim(unsigned bits) noexcept {
  return ((1ull << 31) - 1) / (((1ull << bits) - 1) * 16383ull);
}

/// The largest head_dim a codec takes (kv::cache refuses larger ones with a status): codecs
/// with fixed-size stack buffers declare max_head_dim, wrappers pass their Inner's on; others
/// take any.
template <class Codec>
constexpr std::size_t max_head_dim_of() noexcept {
  if constexpr (requires { Codec::max_head_dim; }) {
    return Codec::max_head_dim;
  } else {
    return static_cast<std::size_t>(-1);
  }
}

/// What head_dim must be a multiple of for a codec (kv::cache refuses others with a status):
/// codecs whose units hold groups of channels declare head_dim_multiple, wrappers pass their
/// Inner's on; others take any.
template <class Codec>
constexpr std::size_t head_dim_multiple_of() noexcept {
  if constexpr (requires { Codec::head_dim_multiple; }) {
    return Codec::head_dim_multiple;
  } else {
    return 1;
  }
}

/// A (scale, offset) pair stored as two binary16 values (4 bytes).
inline void store_half_pair(float a, float b, std::uint8_t* out) noexcept {
  const std::uint16_t h[2] = {half(a).bits, half(b).bits};
  std::memcpy(out, h, 4);
}
inline void load_half_pair(const std::uint8_t* in, float& a, float& b) noexcept {
  std::uint16_t h[2];
  std::memcpy(h, in, 4);
  a = half::from_bits(h[0]).to_float();
  b = half::from_bits(h[1]).to_float();
}

/// The 16-token units of token_blocks and token_rows start with their tokens' binary16 scales
/// (bytes 2t) and offsets (bytes 32 + 2t). Token t's, as floats:
inline affine_params block_params(const std::uint8_t* unit, std::size_t t) noexcept {
  std::uint16_t h[2];
  std::memcpy(&h[0], unit + 2 * t, 2);
  std::memcpy(&h[1], unit + 32 + 2 * t, 2);
  return {half::from_bits(h[0]).to_float(), half::from_bits(h[1]).to_float()};
}
/// Token t's scale and offset for `bits`-bit codes of x[0, n) (its min and max), stored in such
/// a unit; returns them as stored.
inline affine_params store_block_params(const float* x, std::size_t n, unsigned bits,
                                        std::uint8_t* unit, std::size_t t) noexcept {
  const min_max r = simd::kernels().reductions.minmax(x, n);
  const half s((r.max - r.min) / static_cast<float>((1u << bits) - 1)), o(r.min);
  std::memcpy(unit + 2 * t, &s.bits, 2);
  std::memcpy(unit + 32 + 2 * t, &o.bits, 2);
  return {s.to_float(), o.to_float()};
}

/// n (first, second) pairs of binary16 values at `in` (4 bytes each, `stride` bytes apart) as
/// floats: the parameters of consecutive units, converted by one kernel call (a gather on
/// AVX-512, simd/rows.hpp's half_pairs).
inline void load_half_pairs(const std::uint8_t* in, std::size_t stride, std::size_t n, float* first,
                            float* second) noexcept {
  simd::kernels().rows.half_pairs(in, stride, n, first, second);
}

/// Puts the indices of the k largest |x[i]| of x[0, n) first in order[0, n), largest first
/// (ties: lower index first). NaN ranks above every magnitude, infinity included: fabs(NaN)
/// compares false both ways, which would break partial_sort's strict weak order (undefined
/// behaviour), and a NaN set aside exactly cannot poison a quantizer's ranges.
inline void largest_magnitudes(const float* x, std::size_t n, std::size_t k,
                               std::uint32_t* order) noexcept {
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
  std::partial_sort(order, order + k, order + n, [x](std::uint32_t a, std::uint32_t b) {
    const bool na = std::isnan(x[a]), nb = std::isnan(x[b]);
    if (na != nb) return na;  // NaN before everything, infinities included
    const float fa = na ? 0.0f : std::fabs(x[a]), fb = nb ? 0.0f : std::fabs(x[b]);
    return fa > fb || (fa == fb && a < b);
  });
}

/// Calls f(first, count) over [0, total) in chunks of at most `chunk`: codecs that need a
/// scratch row per token keep it on the stack this way.
template <class F>
void for_chunks(std::size_t total, std::size_t chunk, F&& f) {
  for (std::size_t first = 0; first < total; first += chunk) {
    f(first, total - first < chunk ? total - first : chunk);
  }
}

/// Decodes `count` units of a per-token codec c (head_dim <= 4096) a chunk at a time into a stack
/// buffer (in L1) and calls f(rows, first, n) with them as fp32 rows of head_dim floats, so each
/// token is decoded once for all the query heads and the fp32 row kernels do the arithmetic.
template <class Codec, class F>
void for_decoded_chunks(const Codec& c, const std::uint8_t* units, std::size_t count, F&& f) {
  constexpr std::size_t scratch_floats = 4096;  // 16 KiB
  static_assert(Codec::group_tokens == 1, "decoded chunks hold one token per unit");
  static_assert(max_head_dim_of<Codec>() <= scratch_floats, "a decoded row must fit the scratch");
  const std::size_t d = c.head_dim(), unit_bytes = c.unit_bytes();
  for_chunks(count, scratch_floats / d, [&](std::size_t first, std::size_t n) {
    float rows[scratch_floats];
    for (std::size_t t = 0; t < n; ++t) c.decode(units + (first + t) * unit_bytes, &rows[t * d]);
    f(reinterpret_cast<const std::uint8_t*>(rows), first, n);
  });
}

/// accumulate() for per-token codecs that decode to fp32 rows: the rows of each chunk summed
/// by the fp32 row kernel.
template <class Codec>
void accumulate_decoded(const Codec& c, const std::uint8_t* units, std::size_t count,
                        const float* p, std::size_t ldp, std::size_t nq, float* acc) noexcept {
  const std::size_t d = c.head_dim();
  for_decoded_chunks(
      c, units, count, [&](const std::uint8_t* rows, std::size_t t0, std::size_t tn) {
        simd::kernels().rows.f32_row_axpys(rows, d * sizeof(float), tn, d, p + t0, ldp, nq, acc);
      });
}

}  // namespace detail

}  // namespace qcodec::kv
