#pragma once
// token_rows<Bits>: per-token values (each token's vector quantized on its own with its min/max:
// per_token<Bits>'s codes) stored 16 tokens to a unit in simd/token_rows.hpp's layout: the 16
// fp16 scales, the 16 fp16 offsets, then the 16 rows of codes. Bits per value: Bits + 32 /
// head_dim, as per_token.
//
// Values are summed with each chunk's weights rounded to 16 bits after taking in the scales
// (simd::token_row_axpys_w16, per_token<Bits, Query, weight_format::i16>'s sums), but the 16
// tokens' scales and offsets are read as two vectors, not gathered from 16 units, and the
// weights, their scales and the offset sums come from one kernel call per page.
//
// The price: the cache keeps the newest tokens in full precision until 16 have come (as
// token_blocks keys; group_tokens = 16). Keys should stay with token_blocks or per_token: scores()
// here is correct but not fast (the float row kernel a unit at a time).
//
// Measured (docs/measurements.md), against per_token values with 16-bit weights beside token_blocks
// keys: 0.89-0.93x the time with the cache in L3 (1024 and 4096 tokens), 0.93-1.04x at 16k and 64k,
// where the values' cache misses, which per_token's gather took first, land in the row kernel.

#include <qcodec/kv/stream_codec.hpp>
#include <qcodec/simd/dispatch.hpp>
#include <qcodec/simd/token_rows.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace qcodec::kv {

template <unsigned Bits>
class token_rows {
  static_assert(Bits >= 1 && Bits <= 8, "token_rows codes have 1..8 bits");

 public:
  static constexpr std::size_t group_tokens = simd::block_tokens;

  explicit token_rows(std::size_t head_dim) noexcept : d_(head_dim) {}

  [[nodiscard]] std::size_t head_dim() const noexcept { return d_; }
  [[nodiscard]] std::size_t unit_bytes() const noexcept {
    return simd::token_rows_block_bytes(d_, Bits);
  }
  [[nodiscard]] std::string name() const {
    return "int" + std::to_string(Bits) + "-token-rows16-w16";
  }

  /// x: 16 tokens × head_dim, row-major.
  void encode(const float* x, std::uint8_t* unit) const noexcept {
    for (std::size_t t = 0; t < group_tokens; ++t) {
      // per_token<Bits>'s codes: its kernel, with the stored (rounded) scale and offset.
      const affine_params a = detail::store_block_params(x + t * d_, d_, Bits, unit, t);
      simd::kernels().affine.quantize_pack(x + t * d_, d_, a, Bits, row(unit, t));
    }
  }
  /// y: 16 tokens × head_dim.
  void decode(const std::uint8_t* unit, float* y) const noexcept {
    for (std::size_t t = 0; t < group_tokens; ++t) {
      simd::kernels().affine.unpack_dequantize(row(unit, t), d_, Bits,
                                               detail::block_params(unit, t), y + t * d_);
    }
  }

  void prepare_query(const float* q, float* out) const noexcept {
    std::memmove(out, q, d_ * sizeof(float));
  }
  // q . (s_t c_t + o_t) = s_t (q . c_t) + o_t sum(q), a unit at a time.
  void scores(const std::uint8_t* units, std::size_t count, const float* q, std::size_t nq,
              float* s, std::size_t ld) const noexcept {
    const simd::kernel_table& k = simd::kernels();
    constexpr std::size_t heads = 8;  // sum(q) once per call and head, 8 heads at a time
    detail::for_chunks(nq, heads, [&](std::size_t g0, std::size_t gn) {
      float q_sum[heads];
      for (std::size_t g = 0; g < gn; ++g) q_sum[g] = k.reductions.sum(q + (g0 + g) * d_, d_);
      for (std::size_t u = 0; u < count; ++u) {
        const std::uint8_t* unit = units + u * unit_bytes();
        float* su = s + g0 * ld + u * group_tokens;
        k.rows.code_row_dots(row(unit, 0), simd::token_row_bytes(d_, Bits), group_tokens, d_, Bits,
                             q + g0 * d_, gn, su, ld);
        float scale[group_tokens], offset[group_tokens];
        for (std::size_t t = 0; t < group_tokens; ++t) {
          const affine_params a = detail::block_params(unit, t);
          scale[t] = a.scale;
          offset[t] = a.offset;
        }
        for (std::size_t g = 0; g < gn; ++g)
          k.rows.affine_scores(scale, offset, q_sum[g], su + g * ld, group_tokens);
      }
    });
  }
  void accumulate(const std::uint8_t* units, std::size_t count, const float* p, std::size_t ldp,
                  std::size_t nq, float* acc) const noexcept {
    simd::kernels().token_rows.token_row_axpys_w16(units, count, d_, Bits, p, ldp, nq, acc);
  }
  void finish_output(float*) const noexcept {}

 private:
  std::uint8_t* row(std::uint8_t* unit, std::size_t t) const noexcept {
    return unit + 64 + t * simd::token_row_bytes(d_, Bits);
  }
  const std::uint8_t* row(const std::uint8_t* unit, std::size_t t) const noexcept {
    return unit + 64 + t * simd::token_row_bytes(d_, Bits);
  }

  std::size_t d_;
};

}  // namespace qcodec::kv
