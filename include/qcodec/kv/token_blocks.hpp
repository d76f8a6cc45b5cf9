#pragma once
// token_blocks<Bits, Query>: per-token keys (each token's vector quantized on its own with its
// min/max, as per_token) stored 16 tokens to a unit in simd/token_blocks.hpp's layout: the 16 fp16
// scales, the 16 fp16 offsets, then the codes with each dword holding one token's codes of 4
// consecutive channels. Bits 1, 2, 4 or 8; head_dim a multiple of 32 / Bits. Bits per value: Bits +
// 32 / head_dim, as per_token.
//
// The codes are the same as per_token<Bits>'s, and scores are against the same int8 form of the
// query (query_format::i8), but a unit is scored by one kernel call that needs no reduction across
// SIMD lanes and no gather of scales (vpdpbusd adds 4 channels of 16 tokens against a broadcast
// query dword; the scale and offset terms come from two fp16 vectors). That kernel has AVX-512
// VNNI and AVX2 paths; other targets get scalar code, much slower than per_token's.
//
// 8-bit codes may be scored against the query's 15-bit form instead (Query = query_format::i16,
// per_token<8>'s default), head_dim up to 512: an int8 query rounds as coarsely as 8-bit keys. On
// stories260K's K/V/Q (qcodec-eval) attention's error was 1.30e-3 with q8 (per_token<8> keys
// and values), 1.59e-3 with q8b-quads' codecs and int8 queries, 1.30e-3 with 15-bit ones. With
// VNNI each query dword is two vpdpbusd (its low and high bytes): decode steps of q8b-quads took
// the same time as with int8 queries, within the noise (docs/measurements.md).
//
// The price: the cache keeps the newest tokens in full precision until 16 have come (as KIVI's
// per-channel keys, group_tokens = 16). Values belong with per_token, token_rows or token_quads;
// accumulate() here decodes a few tokens at a time and uses the fp32 row kernel, correct but not
// fast.
//
// Measured (docs/measurements.md): 4-bit decode attention with per_token values summed with 16-bit
// weights ran 3.9-6.5x faster than fp32 at 16k and 64k tokens on AVX-512 VNNI, against 3.4-5.2x
// with per_token keys. On stories260K's text KL to the fp32 cache fell from 0.388 (q4) to 0.063
// (q4b): the pending keys kept exact, not the layout (the codes are q4's).

#include <qcodec/core/assert.hpp>
#include <qcodec/kv/stream_codec.hpp>
#include <qcodec/simd/dispatch.hpp>
#include <qcodec/simd/token_blocks.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace qcodec::kv {

template <unsigned Bits, query_format Query = query_format::i8>
class token_blocks {
  static_assert(Bits == 1 || Bits == 2 || Bits == 4 || Bits == 8,
                "token_blocks codes have 1, 2, 4 or 8 bits");
  static_assert(Query == query_format::i8 || (Query == query_format::i16 && Bits == 8),
                "token_blocks scores int8 queries, or 15-bit ones against 8-bit codes");
  static constexpr bool i16 = Query == query_format::i16;

 public:
  static constexpr std::size_t group_tokens = simd::block_tokens;
  /// (15-bit queries: while their sums fit 32 bits.)
  static constexpr std::size_t max_head_dim = i16 ? simd::token_block_i16_max_n : 1024;
  /// A group of channels (32 / Bits) fills one dword per token; kv::cache checks this.
  static constexpr std::size_t head_dim_multiple = 32 / Bits;

  explicit token_blocks(std::size_t head_dim) noexcept : d_(head_dim) {
    QCODEC_ASSERT(head_dim <= max_head_dim, "token_blocks supports head_dim <= 1024 (i16: 512)");
    QCODEC_ASSERT(head_dim % head_dim_multiple == 0,
                  "token_blocks needs head_dim a multiple of 32 / Bits (a group of channels)");
  }

  [[nodiscard]] std::size_t head_dim() const noexcept { return d_; }
  [[nodiscard]] std::size_t unit_bytes() const noexcept {
    return simd::token_block_bytes(d_, Bits);
  }
  [[nodiscard]] std::string name() const {
    return "int" + std::to_string(Bits) + "-token-block16-" + (i16 ? "q16" : "q8");
  }

  /// x: 16 tokens × head_dim, row-major.
  void encode(const float* x, std::uint8_t* unit) const noexcept {
    const simd::kernel_table& k = simd::kernels();
    std::memset(unit + 64, 0, unit_bytes() - 64);
    std::uint8_t packed[max_head_dim];  // one token's codes, LSB-first (at most 8 bits each)
    for (std::size_t t = 0; t < group_tokens; ++t) {
      const float* row = x + t * d_;
      // The codes of per_token<Bits>: its kernel, with the stored (rounded) scale and offset.
      const affine_params a = detail::store_block_params(row, d_, Bits, unit, t);
      k.affine.quantize_pack(row, d_, a, Bits, packed);
      for (std::size_t c = 0; c < d_; ++c) {
        const std::size_t bit = c * Bits;
        const auto code = static_cast<std::uint8_t>((packed[bit / 8] >> (bit % 8)) & mask);
        unit[simd::token_block_code_byte(t, c, Bits)] |=
            static_cast<std::uint8_t>(code << simd::token_block_code_shift(c, Bits));
      }
    }
  }
  /// y: 16 tokens × head_dim.
  void decode(const std::uint8_t* unit, float* y) const noexcept {
    decode_tokens(unit, 0, group_tokens, y);
  }

  /// prepare_query writes the query's int8 form as bytes (simd::token_block_query: its scale, b
  /// and int8 elements, in the head_dim floats of a prepared query), formed once per step rather
  /// than per page; wrappers that take the prepared query for a query in the model's space
  /// (outliers, gear) refuse such codecs. With 15-bit queries, their form so too
  /// (simd::token_block_query_i16).
  static constexpr bool prepares_query_bytes = true;
  void prepare_query(const float* q, float* out) const noexcept {
    static_assert(query_bytes(head_dim_multiple) <= 4 * head_dim_multiple,
                  "the prepared form fits the floats of a query");
    std::uint8_t form[query_bytes(max_head_dim)];  // (q may be out)
    const auto& k = simd::kernels().token_blocks;
    (i16 ? k.token_block_query_i16 : k.token_block_query)(q, d_, form);
    std::memcpy(out, form, query_bytes(d_));
  }
  /// The query scores are exact for: q rounded to its int8 (or 15-bit) form.
  void scored_query(const float* q, float* out) const noexcept {
    detail::round_to_grid(q, d_, i16 ? 16383.0f : 127.0f, out);  // q may be out
  }

  void scores(const std::uint8_t* units, std::size_t count, const float* q, std::size_t nq,
              float* s, std::size_t ld) const noexcept {
    const auto& k = simd::kernels().token_blocks;
    (i16 ? k.token_block_dots_prepared_i16 : k.token_block_dots_prepared)(
        units, count, d_, Bits, reinterpret_cast<const std::uint8_t*>(q), d_ * sizeof(float), nq, s,
        ld);
  }

  void accumulate(const std::uint8_t* units, std::size_t count, const float* p, std::size_t ldp,
                  std::size_t nq, float* acc) const noexcept {
    constexpr std::size_t slice = 4;  // tokens decoded at a time (16 KiB of stack)
    float rows[slice * max_head_dim];
    for (std::size_t u = 0; u < count; ++u) {
      for (std::size_t t0 = 0; t0 < group_tokens; t0 += slice) {
        decode_tokens(units + u * unit_bytes(), t0, slice, rows);
        simd::kernels().rows.f32_row_axpys(reinterpret_cast<const std::uint8_t*>(rows),
                                           d_ * sizeof(float), slice, d_, p + u * group_tokens + t0,
                                           ldp, nq, acc);
      }
    }
  }
  void finish_output(float*) const noexcept {}

 private:
  static constexpr std::uint32_t mask = (1u << Bits) - 1u;

  static constexpr std::size_t query_bytes(std::size_t n) noexcept {
    return i16 ? simd::token_block_query_i16_bytes(n) : simd::token_block_query_bytes(n);
  }

  void decode_tokens(const std::uint8_t* unit, std::size_t t0, std::size_t n,
                     float* y) const noexcept {
    for (std::size_t t = t0; t < t0 + n; ++t) {
      const affine_params a = detail::block_params(unit, t);
      float* row = y + (t - t0) * d_;
      for (std::size_t c = 0; c < d_; ++c) {
        const std::uint32_t code = (std::uint32_t{unit[simd::token_block_code_byte(t, c, Bits)]} >>
                                    simd::token_block_code_shift(c, Bits)) &
                                   mask;
        row[c] = std::fma(static_cast<float>(code), a.scale, a.offset);
      }
    }
  }

  std::size_t d_;
};

}  // namespace qcodec::kv
