#pragma once
// per_token<Bits, Query, Weights>: each token's vector quantized on its own (the usual value
// quantizer, KIVI's values): asymmetric uniform codes with the token's min/max, scale and offset
// stored as fp16.
//
// Unit (one token): scale (fp16), offset (fp16), then head_dim codes of Bits bits packed
// LSB-first. Bits per value: Bits + 32 / head_dim.
//
// Attention runs on the codes with the row kernels (simd/rows.hpp): scale and offset factor
// out of both the scores and the value sums, so the cache is never decoded. With
// Query = query_format::i8 (stream_codec.hpp; the default for 4-bit codes), keys are scored
// against the int8 form of the query (simd/int8_dots.hpp: integer dot products). On
// stories260K's 200-token text that changed KL to the fp32 cache from 0.2136 to 0.2130 (q4) and
// 0.1051 to 0.1057 (rot4): the query's rounding is far below the 4-bit keys' error. With
// Query = query_format::i16 (the default for 8-bit codes), against its 15-bit form
// (simd/int16_dots.hpp) while the integer sums fit 32 bits (head_dim <= i16_max_head_dim, 514
// at 8 bits), against the float query beyond.
//
// With Weights = weight_format::i16 (stream_codec.hpp; opt-in), values are summed with each
// page's weights rounded to 16 bits (simd/int16_axpys.hpp: integer sums, vpdpwssd on AVX-512
// VNNI, scalar elsewhere). 4-bit decode attention on AVX-512 VNNI took 0.82-0.89x the time (q4)
// and 0.87-0.91x (KIVI-4) at 16k and 64k tokens (docs/measurements.md); on stories260K's text KL to
// the fp32 cache moved from 0.3878 to 0.3810 (q4), 0.2942 to 0.2951 (rot4), 0.000091 to 0.000091
// (kivi4).

#include <qcodec/kv/stream_codec.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace qcodec::kv {

template <unsigned Bits, query_format Query = default_query_format(Bits),
          weight_format Weights = weight_format::f32>
class per_token {
  static_assert(Bits >= 1 && Bits <= 8, "per_token codes have 1..8 bits");

 public:
  static constexpr std::size_t group_tokens = 1;
  /// The largest head_dim whose 15-bit query sums fit 32 bits (514 at 8 bits): beyond it an
  /// i16 codec scores the float query.
  static constexpr std::size_t i16_max_head_dim = detail::i16_max_head_dim(Bits);
  explicit per_token(std::size_t head_dim) noexcept : d_(head_dim) {}

  [[nodiscard]] std::size_t head_dim() const noexcept { return d_; }
  [[nodiscard]] std::size_t unit_bytes() const noexcept { return 4 + (d_ * Bits + 7) / 8; }
  [[nodiscard]] std::string name() const {
    return "int" + std::to_string(Bits) + "-token" +
           (Query == query_format::i8    ? "-q8"
            : Query == query_format::i16 ? "-q16"
                                         : "") +
           (Weights == weight_format::i16 ? "-w16" : "");
  }

  void encode(const float* x, std::uint8_t* unit) const noexcept {
    const simd::kernel_table& k = simd::kernels();
    const min_max r = k.reductions.minmax(x, d_);
    detail::store_half_pair((r.max - r.min) / static_cast<float>((1u << Bits) - 1), r.min, unit);
    k.affine.quantize_pack(x, d_, params(unit), Bits, unit + 4);
  }
  void decode(const std::uint8_t* unit, float* y) const noexcept {
    simd::kernels().affine.unpack_dequantize(unit + 4, d_, Bits, params(unit), y);
  }
  // i8, i16: the query rounded onto its integer grid here, so that the offset term in scores
  // and the integer kernel (which quantizes it again, getting the same integers) see the same q'.
  void prepare_query(const float* q, float* out) const noexcept {
    kv::scored_query(*this, q, out);  // q may be out
  }
  /// The integer form of q that scores are exact for (kv::scored_query); q itself past
  /// i16_max_head_dim.
  void scored_query(const float* q, float* out) const noexcept
      requires(Query != query_format::f32) {
    if (integer_query()) {
      detail::round_to_grid(q, d_, Query == query_format::i8 ? 127.0f : 16383.0f, out);
    } else {
      std::memmove(out, q, d_ * sizeof(float));
    }
  }
  // q . (s_t c_t + o_t) = s_t (q . c_t) + o_t sum(q): one row-dot kernel call on the codes,
  // sum(q) once per call and head.
  void scores(const std::uint8_t* units, std::size_t count, const float* q, std::size_t nq,
              float* s, std::size_t ld) const noexcept {
    const simd::kernel_table& k = simd::kernels();
    if (Query == query_format::i16 && integer_query()) {
      k.int16_dots.code_row_dots_i16(units + 4, unit_bytes(), count, d_, Bits, q, nullptr, nq, s,
                                     ld);
    } else {
      (Query == query_format::i8 ? k.int8_dots.code_row_dots_i8 : k.rows.code_row_dots)(
          units + 4, unit_bytes(), count, d_, Bits, q, nq, s, ld);
    }
    constexpr std::size_t heads = 8;
    detail::for_chunks(nq, heads, [&](std::size_t g0, std::size_t gn) {
      float q_sum[heads];
      // (A kernel: a plain loop is a chain of d dependent additions, per page and head.)
      for (std::size_t g = 0; g < gn; ++g) q_sum[g] = k.reductions.sum(q + (g0 + g) * d_, d_);
      detail::for_chunks(count, chunk_tokens, [&](std::size_t t0, std::size_t tn) {
        float scale[chunk_tokens], offset[chunk_tokens];
        detail::load_half_pairs(units + t0 * unit_bytes(), unit_bytes(), tn, scale, offset);
        for (std::size_t g = 0; g < gn; ++g)
          k.rows.affine_scores(scale, offset, q_sum[g], s + (g0 + g) * ld + t0, tn);
      });
    });
  }
  // sum_t p_t (s_t c_t + o_t) = sum_t (p_t s_t) c_t + sum_t p_t o_t: the weights absorb the
  // scales (chunks of a whole default page, 256 tokens, and 8 heads on the stack: per-chunk
  // work, the offset sums and the row kernel's accumulator loads, is per page), the offsets add
  // once per head and chunk.
  void accumulate(const std::uint8_t* units, std::size_t count, const float* p, std::size_t ldp,
                  std::size_t nq, float* acc) const noexcept {
    constexpr std::size_t heads = 8;
    detail::for_chunks(count, chunk_tokens, [&](std::size_t t0, std::size_t tn) {
      float scale[chunk_tokens], offset[chunk_tokens], weights[heads * chunk_tokens];
      detail::load_half_pairs(units + t0 * unit_bytes(), unit_bytes(), tn, scale, offset);
      detail::for_chunks(nq, heads, [&](std::size_t g0, std::size_t gn) {
        for (std::size_t g = 0; g < gn; ++g) {
          const float* pg = p + (g0 + g) * ldp + t0;
          for (std::size_t t = 0; t < tn; ++t) weights[g * chunk_tokens + t] = pg[t] * scale[t];
          const float offset_sum = simd::kernels().reductions.dot(pg, offset, tn);
          float* row = acc + (g0 + g) * d_;
          for (std::size_t i = 0; i < d_; ++i) row[i] += offset_sum;
        }
        const simd::kernel_table& k = simd::kernels();
        const auto axpys = Weights == weight_format::i16 ? k.int16_axpys.code_row_axpys_w16
                                                         : k.rows.code_row_axpys;
        axpys(units + t0 * unit_bytes() + 4, unit_bytes(), tn, d_, Bits, weights, chunk_tokens, gn,
              acc + g0 * d_);
      });
    });
  }
  void finish_output(float*) const noexcept {}

 private:
  static constexpr std::size_t chunk_tokens = 256;  // 10 KB of stack in accumulate
  static_assert(chunk_tokens <= simd::max_w16_rows, "a chunk is one 16-bit-weight kernel call");

  bool integer_query() const noexcept {
    return Query == query_format::i8 || (Query == query_format::i16 && d_ <= i16_max_head_dim);
  }

  static affine_params params(const std::uint8_t* unit) noexcept {
    affine_params p;
    detail::load_half_pair(unit, p.scale, p.offset);
    return p;
  }
  std::size_t d_;
};

}  // namespace qcodec::kv
