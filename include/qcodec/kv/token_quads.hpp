#pragma once
// token_quads<Bits>: 2-, 4- or 8-bit per-token values (each token's vector quantized on its own
// with its min/max: per_token<Bits>'s codes) stored 16 tokens to a unit in simd/token_quads.hpp's
// layout: the 16 fp16 scales, the 16 fp16 offsets, then the codes with four tokens interleaved.
// Bits per value: Bits + 32 / head_dim, as per_token<Bits>.
//
// Values are summed with each block's weights (after taking in the scales) rounded to 8 bits of
// the block's largest (simd::token_quad_axpys_u8): vpdpbusd multiplies four tokens' codes per
// lane and instruction where the 16-bit weights of token_rows<Bits> and per_token<Bits, ..., i16>
// take two. A weight moves by at most 1/510 of the largest weight among its 16 tokens, and what
// those moves add at the middle code is taken back (simd/token_quads.hpp): attention moves by
// 3e-4 (rotated: 8e-4) of the 4-bit values' own relative MSE in tests/kv, 5e-5 of the 2-bit ones'.
// 8-bit codes take 15-bit weights (two bytes, two vpdpbusd; 8 bits would be as coarse as the
// codes): a weight moves by at most 1/65534 of the block's largest, 7e-5 of the values' own error
// in tests/kv.
//
// Measured (docs/measurements.md), against token_rows<4> beside the same keys: 0.68-0.88x the time
// of a decode step from 1k to 64k tokens with AVX-512 VNNI, 0.73-0.91x with the AVX2 kernels.
// KIVI-2 with 2-bit token_quads values against per_token<2> ones: 0.56-0.59x at 16k and 64k
// tokens with VNNI, 0.95-0.97x with the AVX2 kernels.
// 8 bits, q8b-quads (with token_blocks<8, i16> keys) against q8: 0.41-0.68x the time at 16k and
// 64k tokens with VNNI, 0.84-1.13x with the AVX2 kernels.
//
// The fast sums take whole slices of columns (simd/token_quads.hpp): head_dim a multiple of 32 for
// 4-bit codes, of 64 for 2-bit ones, of 16 for 8-bit ones; other head_dims are summed by the
// generic loop, far slower.
//
// As token_rows: the cache keeps the newest tokens in full precision until 16 have come
// (group_tokens = 16), and scores() is correct but not fast (keys belong in token_blocks).

#include <qcodec/kv/stream_codec.hpp>
#include <qcodec/simd/dispatch.hpp>
#include <qcodec/simd/token_quads.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace qcodec::kv {

template <unsigned Bits>
class token_quads {
  static_assert(Bits == 2 || Bits == 4 || Bits == 8, "token_quads holds 2-, 4- or 8-bit codes");

 public:
  static constexpr std::size_t group_tokens = simd::block_tokens;

  explicit token_quads(std::size_t head_dim) noexcept : d_(head_dim) {}

  [[nodiscard]] std::size_t head_dim() const noexcept { return d_; }
  [[nodiscard]] std::size_t unit_bytes() const noexcept {
    return simd::token_quads_block_bytes(d_, Bits);
  }
  [[nodiscard]] std::string name() const {
    return "int" + std::to_string(Bits) + "-token-quads16-" + (Bits == 8 ? "u16" : "u8");
  }

  /// x: 16 tokens × head_dim, row-major.
  void encode(const float* x, std::uint8_t* unit) const noexcept {
    std::memset(unit + 64, 0, unit_bytes() - 64);  // (a head_dim may leave positions unused)
    for (std::size_t t = 0; t < group_tokens; ++t) {
      // per_token<Bits>'s codes: its kernel, with the stored (rounded) scale and offset.
      const affine_params a = detail::store_block_params(x + t * d_, d_, Bits, unit, t);
      for_pieces([&](std::size_t i0, std::size_t len, std::uint8_t* packed) {
        simd::kernels().affine.quantize_pack(x + t * d_ + i0, len, a, Bits, packed);
        for (std::size_t i = 0; i < len; ++i) {
          const simd::quad_code_place c = simd::quad_code_at(d_, Bits, t, i0 + i);
          const unsigned stored = simd::quad_stored(packed_code(packed, i), Bits, c.top);
          unit[c.byte] = static_cast<std::uint8_t>(unit[c.byte] | stored << c.shift);
        }
      });
    }
  }
  /// y: 16 tokens × head_dim.
  void decode(const std::uint8_t* unit, float* y) const noexcept {
    for (std::size_t t = 0; t < group_tokens; ++t) {
      for_pieces([&](std::size_t i0, std::size_t len, std::uint8_t* buffer) {
        dequantize_piece(unit, t, i0, len, buffer, y + t * d_ + i0);
      });
    }
  }

  void prepare_query(const float* q, float* out) const noexcept {
    std::memmove(out, q, d_ * sizeof(float));
  }
  // q . (s_t c_t + o_t), from the decoding, a token at a time.
  void scores(const std::uint8_t* units, std::size_t count, const float* q, std::size_t nq,
              float* s, std::size_t ld) const noexcept {
    const simd::kernel_table& k = simd::kernels();
    for (std::size_t u = 0; u < count; ++u)
      for (std::size_t t = 0; t < group_tokens; ++t) {
        for (std::size_t g = 0; g < nq; ++g) s[g * ld + u * group_tokens + t] = 0.0f;
        for_pieces([&](std::size_t i0, std::size_t len, std::uint8_t* buffer) {
          float v[piece];
          dequantize_piece(units + u * unit_bytes(), t, i0, len, buffer, v);
          for (std::size_t g = 0; g < nq; ++g)
            s[g * ld + u * group_tokens + t] += k.reductions.dot(q + g * d_ + i0, v, len);
        });
      }
  }
  void accumulate(const std::uint8_t* units, std::size_t count, const float* p, std::size_t ldp,
                  std::size_t nq, float* acc) const noexcept {
    simd::kernels().token_quads.token_quad_axpys_u8(units, count, d_, Bits, p, ldp, nq, acc);
  }
  void finish_output(float*) const noexcept {}

 private:
  static constexpr std::size_t piece = 256;  // columns per step of the codecs' reorderings

  // Token t's values of columns [i0, i0 + len) (len <= piece), through `buffer`: its codes a
  // byte each, then the affine kernel.
  void dequantize_piece(const std::uint8_t* unit, std::size_t t, std::size_t i0, std::size_t len,
                        std::uint8_t* buffer, float* out) const noexcept {
    for (std::size_t i = 0; i < len; ++i)
      buffer[i] = static_cast<std::uint8_t>(simd::quad_code(unit, d_, Bits, t, i0 + i));
    simd::kernels().affine.unpack_dequantize(buffer, len, 8, detail::block_params(unit, t), out);
  }

  // Code i of codes packed LSB-first (Bits divides 8: no code straddles two bytes).
  static unsigned packed_code(const std::uint8_t* packed, std::size_t i) noexcept {
    return (packed[i * Bits / 8] >> (i * Bits % 8)) & ((1u << Bits) - 1);
  }

  // f(i0, len, buffer of `piece` bytes) for pieces [i0, i0 + len) of head_dim.
  template <class F>
  void for_pieces(F&& f) const noexcept {
    std::uint8_t buffer[piece];
    for (std::size_t i0 = 0; i0 < d_; i0 += piece) f(i0, std::min(piece, d_ - i0), buffer);
  }

  std::size_t d_;
};

}  // namespace qcodec::kv
