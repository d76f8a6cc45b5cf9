#pragma once
// per_channel<Bits, G, Query>: KIVI's key quantizer. A group of G consecutive tokens is quantized
// per channel: each of the head_dim channels gets its own min/max over the G tokens, so the
// outlier channels that real keys have (a few channels 10-100x larger than the rest) only cost
// precision in themselves. Scale and offset per channel are stored as fp16.
//
// Unit (G tokens): head_dim (scale, offset) fp16 pairs, then G rows of head_dim codes of Bits bits
// packed LSB-first (row t = token t; with AVX-512 VNNI, 2- and 4-bit rows at head_dim a multiple
// of 64, G a multiple of 16, are stored 16 to a block, interleaved by dwords: simd/int16_dots.hpp's
// blockable_rows, which the VNNI kernel reads without transposing; the layout stays in memory,
// caches are not serialized). Bits per value: Bits + 32 / G.
//
// Attention on the codes: with k[t][c] = s_c * code[t][c] + o_c,
//   q . k_t = sum_c (q_c s_c) code[t][c] + sum_c q_c o_c
// so per unit the query is scaled and the unit's scores are a row-dot over its codes plus a
// constant; values accumulate as acc_c += s_c * sum_t p_t code[t][c] + o_c sum_t p_t.
//
// Query = query_format::i16 (the default for 2- and 4-bit codes) scores the codes against a 15-bit
// integer form of the scaled query, per unit, and a page's units in one kernel call
// (simd/int16_dots.hpp's channel_unit_dots_i16: with AVX-512 VNNI and 2- or 4-bit codes, 16 tokens
// at once with integer multiply-adds, the constant added as the scores are stored). Each q_c s_c
// moves by at most max_c |q_c s_c| / 32766; kv::scored_decode gives the keys that makes exact.
// query_format::i8 (opt-in) rounds the scaled query to 8 bits instead (channel_unit_dots_i8): one
// multiply-add pass where 15 bits take two, and a cheaper split, but q_c s_c moves by up to
// max_c |q_c s_c| / 254, relative to the unit's largest channel, which costs the small channels
// most. On stories260K (qcodec-eval, KIVI-4), KL to the fp32 cache without a residual window went
// from 0.00342 to 0.00400; with R = 128, 0.000091 and 0.000089. With VNNI the key scores took
// 0.64-0.68x the time (docs/measurements.md). With the AVX2 kernels, vpmaddubsw on bytes where 15
// bits take vpmaddwd on words: 0.68-0.71x the time of the int8 form on words (which took 1.01-1.02x
// the 15-bit form's).
//
// Reference: Liu et al., "KIVI: A Tuning-Free Asymmetric 2bit Quantization for KV Cache" (2024).

#include <qcodec/core/assert.hpp>
#include <qcodec/kv/stream_codec.hpp>
#include <qcodec/simd/dispatch.hpp>
#include <qcodec/simd/int16_dots.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace qcodec::kv {

template <unsigned Bits, std::size_t G,
          query_format Query = Bits == 2 || Bits == 4 ? query_format::i16 : query_format::f32>
class per_channel {
  static_assert(Bits >= 1 && Bits <= 8, "per_channel codes have 1..8 bits");
  static_assert(G >= 1, "a group holds at least one token");

 public:
  static constexpr std::size_t group_tokens = G;
  /// 1024, and with 15-bit queries at most the head_dim whose integer sums fit 32 bits (514 at
  /// 8 bits, above 1024 at 7 bits and fewer). kv::cache refuses larger heads.
  static constexpr std::size_t max_head_dim =
      Query == query_format::i16 ? std::min<std::size_t>(1024, detail::i16_max_head_dim(Bits))
                                 : 1024;

  explicit per_channel(std::size_t head_dim) noexcept : d_(head_dim) {
    QCODEC_ASSERT(head_dim <= max_head_dim,
                  "per_channel supports head_dim <= 1024 (514 for 8-bit codes with 15-bit "
                  "queries, whose sums must fit 32 bits)");
  }

  [[nodiscard]] std::size_t head_dim() const noexcept { return d_; }
  [[nodiscard]] std::size_t unit_bytes() const noexcept { return 4 * d_ + G * row_bytes(); }
  [[nodiscard]] std::string name() const {
    return "int" + std::to_string(Bits) + "-channel/" + std::to_string(G) +
           (Query == query_format::i16  ? "-q16"
            : Query == query_format::i8 ? "-q8"
                                        : "");
  }

  /// x: G tokens × head_dim, row-major.
  void encode(const float* x, std::uint8_t* unit) const noexcept {
    constexpr float max_code = static_cast<float>((1u << Bits) - 1);
    float inv[max_head_dim], bias[max_head_dim], lo[max_head_dim], hi[max_head_dim];
    // Each channel's min and max, NaNs skipped as std::fmin and std::fmax skip them, row by row
    // so that the loop vectorizes: a column at a time through those libm calls, they took half
    // the time of a decode step's append.
    std::copy_n(x, d_, lo);
    std::copy_n(x, d_, hi);
    for (std::size_t t = 1; t < G; ++t) {
      const float* row = x + t * d_;
      for (std::size_t c = 0; c < d_; ++c) {
        // Both comparisons always evaluated (| rather than ||): then baseline x86-64 vectorizes.
        const bool nan = std::isnan(row[c]);
        lo[c] = (nan | (lo[c] < row[c])) ? lo[c] : row[c];
        hi[c] = (nan | (hi[c] > row[c])) ? hi[c] : row[c];
      }
    }
    for (std::size_t c = 0; c < d_; ++c) {
      detail::store_half_pair((hi[c] - lo[c]) / max_code, lo[c], unit + 4 * c);
      float s, o;
      detail::load_half_pair(unit + 4 * c, s, o);
      // The affine kernels' exact arithmetic (simd/affine.hpp), per channel.
      inv[c] = s != 0.0f ? 1.0f / s : 0.0f;
      bias[c] = -o * inv[c];
    }
    const simd::kernel_table& k = simd::kernels();
    std::uint8_t codes[max_head_dim], row[max_head_dim];
    for (std::size_t t = 0; t < G; ++t) {
      k.affine.quantize_codes(x + t * d_, inv, bias, d_, Bits, codes);
      if (blocked_) {
        k.packing.pack_bits(codes, d_, Bits, row);
        simd::detail::int16_dots::block_row<simd::scalar>(row, d_, Bits, t, unit + 4 * d_);
      } else {
        k.packing.pack_bits(codes, d_, Bits, unit + 4 * d_ + t * row_bytes());
      }
    }
  }

  void decode(const std::uint8_t* unit, float* y) const noexcept {
    float scale[max_head_dim], offset[max_head_dim];
    load_scales(unit, scale, offset);
    decode_with(unit, scale, offset, y);
  }

  /// The unit's keys as q's scores see them (kv::scored_decode): with x_c = q_c s_c rounded to
  /// x'_c on the unit's 15-bit (or 8-bit) grid, the scales s'_c = x'_c / q_c.
  void scored_decode(const std::uint8_t* unit, const float* q, float* y) const noexcept
      requires(Query != query_format::f32) {
    namespace d = simd::detail::int16_dots;
    float scale[max_head_dim], offset[max_head_dim], x[max_head_dim];
    load_scales(unit, scale, offset);
    for (std::size_t c = 0; c < d_; ++c) x[c] = q[c] * scale[c];
    const auto f = simd::detail::int8_dots::form_of<simd::scalar>(
        x, d_, d::grid_of(Query == query_format::i16));
    for (std::size_t c = 0; c < d_; ++c) {
      if (f.inv == 0.0f) {  // scores are 0 (zero or tiny x) or NaN (x not finite)
        scale[c] = std::isnan(f.scale) ? f.scale : scale[c];
      } else if (q[c] != 0.0f) {
        scale[c] =
            static_cast<float>(static_cast<double>(std::nearbyint(x[c] * f.inv)) * f.scale / q[c]);
      }
    }
    decode_with(unit, scale, offset, y);
  }

  void prepare_query(const float* q, float* out) const noexcept {
    std::memmove(out, q, d_ * sizeof(float));  // q may be out
  }

  // i16, i8: one kernel call for all the units (simd/int16_dots.hpp's channel_unit_dots_i16,
  // channel_unit_dots_i8). f32:
  // per unit its (scale, offset) pairs converted once, then per chunk of query heads the
  // constant terms (the offsets scored as one row) and the codes' scores against the scaled
  // queries.
  void scores(const std::uint8_t* units, std::size_t count, const float* q, std::size_t nq,
              float* s, std::size_t ld) const noexcept {
    const simd::kernel_table& k = simd::kernels();
    if constexpr (Query != query_format::f32) {
      const auto dots = Query == query_format::i16 ? k.int16_dots.channel_unit_dots_i16
                                                   : k.int16_dots.channel_unit_dots_i8;
      dots(units, unit_bytes(), count, G, d_, Bits, blocked_, q, nq, s, ld);
    } else {
      constexpr std::size_t heads = 4;
      float constant[heads], scale[max_head_dim], offset[max_head_dim],
          scaled[heads * max_head_dim];
      for (std::size_t u = 0; u < count; ++u) {
        const std::uint8_t* unit = units + u * unit_bytes();
        load_scales(unit, scale, offset);
        detail::for_chunks(nq, heads, [&](std::size_t g0, std::size_t gn) {
          const float* qg = q + g0 * d_;
          float* out = s + g0 * ld + u * G;
          k.rows.f32_row_dots(reinterpret_cast<const std::uint8_t*>(offset), 0, 1, d_, qg, gn,
                              constant, 1);
          for (std::size_t g = 0; g < gn; ++g)
            for (std::size_t c = 0; c < d_; ++c) scaled[g * d_ + c] = qg[g * d_ + c] * scale[c];
          // (Rows are blocked only for integer queries.)
          k.rows.code_row_dots(unit + 4 * d_, row_bytes(), G, d_, Bits, scaled, gn, out, ld);
          for (std::size_t g = 0; g < gn; ++g)
            for (std::size_t t = 0; t < G; ++t) out[g * ld + t] += constant[g];
        });
      }
    }
  }

  void accumulate(const std::uint8_t* units, std::size_t count, const float* p, std::size_t ldp,
                  std::size_t nq, float* acc) const noexcept {
    constexpr std::size_t heads = 4;
    float sums[heads * max_head_dim], scale[max_head_dim], offset[max_head_dim];
    for (std::size_t u = 0; u < count; ++u) {
      const std::uint8_t* unit = units + u * unit_bytes();
      load_scales(unit, scale, offset);
      detail::for_chunks(nq, heads, [&](std::size_t g0, std::size_t gn) {
        std::memset(sums, 0, gn * d_ * sizeof(float));
        const float* pu = p + g0 * ldp + u * G;
        with_plain_rows(unit, [&](const std::uint8_t* rows, std::size_t stride, std::size_t r0,
                                  std::size_t rn) {
          simd::kernels().rows.code_row_axpys(rows, stride, rn, d_, Bits, pu + r0, ldp, gn, sums);
        });
        for (std::size_t g = 0; g < gn; ++g) {
          const float p_total = simd::kernels().reductions.sum(pu + g * ldp, G);
          // sums = fma(scale, sums, offset * p_total) by a kernel: std::fma is a libm call in
          // code built without FMA instructions.
          float* sg = sums + g * d_;
          simd::kernels().rows.affine_scores(scale, offset, p_total, sg, d_);
          float* row = acc + (g0 + g) * d_;
          for (std::size_t c = 0; c < d_; ++c) row[c] += sg[c];
        }
      });
    }
  }
  void finish_output(float*) const noexcept {}

 private:
  [[nodiscard]] std::size_t row_bytes() const noexcept { return (d_ * Bits + 7) / 8; }
  // f(rows, stride, r0, rn) over the unit's rows in plain order (unblocked a chunk at a time).
  template <class F>
  void with_plain_rows(const std::uint8_t* unit, F&& f) const noexcept {
    simd::detail::int16_dots::with_plain_rows<simd::scalar>(unit + 4 * d_, blocked_, Bits, d_, G,
                                                            f);
  }
  void decode_with(const std::uint8_t* unit, const float* scale, const float* offset,
                   float* y) const noexcept {
    const simd::packing_kernels& pack = simd::kernels().packing;
    std::uint8_t codes[max_head_dim];
    with_plain_rows(
        unit, [&](const std::uint8_t* rows, std::size_t stride, std::size_t r0, std::size_t rn) {
          for (std::size_t t = r0; t < r0 + rn; ++t) {
            pack.unpack_bits(rows + (t - r0) * stride, d_, Bits, codes);
            for (std::size_t c = 0; c < d_; ++c)
              y[t * d_ + c] = std::fma(static_cast<float>(codes[c]), scale[c], offset[c]);
          }
        });
  }
  // The unit's per-channel (scale, offset) pairs as floats: one kernel call, not d conversions.
  void load_scales(const std::uint8_t* unit, float* scale, float* offset) const noexcept {
    detail::load_half_pairs(unit, 4, d_, scale, offset);
  }
  std::size_t d_;
  // 2- and 4-bit rows at head_dim a multiple of 64 (G a multiple of 16) are stored 16 to a block,
  // interleaved by dwords, when the kernel table's integer dots read them so faster (VNNI).
  bool blocked_ = Query != query_format::f32 && simd::kernels().int16_dots.blocks_rows &&
                  simd::detail::int16_dots::blockable_rows<simd::scalar>(Bits, d_, G);
};

}  // namespace qcodec::kv
