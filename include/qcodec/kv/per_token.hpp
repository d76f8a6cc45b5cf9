#pragma once
// per_token<Bits>: each token's vector quantized on its own (the usual value quantizer, KIVI's
// values): asymmetric uniform codes with the token's min/max, scale and offset stored as fp16.
//
// Unit (one token): scale (fp16), offset (fp16), then head_dim codes of Bits bits packed
// LSB-first. Bits per value: Bits + 32 / head_dim.
//
// Attention runs on the codes: scores are decode_dot(codes, q) and values accumulate with
// decode_axpy (simd/affine.hpp), so the cache is never decoded.

#include <qcodec/kv/stream_codec.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace qcodec::kv {

template <unsigned Bits>
class per_token {
  static_assert(Bits >= 1 && Bits <= 8, "per_token codes have 1..8 bits");

 public:
  static constexpr std::size_t group_tokens = 1;
  explicit per_token(std::size_t head_dim) noexcept : d_(head_dim) {}

  [[nodiscard]] std::size_t head_dim() const noexcept { return d_; }
  [[nodiscard]] std::size_t unit_bytes() const noexcept { return 4 + (d_ * Bits + 7) / 8; }
  [[nodiscard]] std::string name() const { return "int" + std::to_string(Bits) + "-token"; }

  void encode(const float* x, std::uint8_t* unit) const noexcept {
    const simd::kernel_table& k = simd::kernels();
    const min_max r = k.reductions.minmax(x, d_);
    detail::store_half_pair((r.max - r.min) / static_cast<float>((1u << Bits) - 1), r.min, unit);
    k.affine.quantize_pack(x, d_, params(unit), Bits, unit + 4);
  }
  void decode(const std::uint8_t* unit, float* y) const noexcept {
    simd::kernels().affine.unpack_dequantize(unit + 4, d_, Bits, params(unit), y);
  }
  void prepare_query(const float* q, float* out) const noexcept {
    std::memmove(out, q, d_ * sizeof(float));  // q may be out
  }
  void scores(const std::uint8_t* unit, const float* q, float* s) const noexcept {
    *s = simd::kernels().affine.decode_dot(unit + 4, d_, Bits, params(unit), q);
  }
  void accumulate(const std::uint8_t* unit, const float* p, float* acc) const noexcept {
    simd::kernels().affine.decode_axpy(unit + 4, d_, Bits, params(unit), p[0], acc);
  }
  void finish_output(float*) const noexcept {}

 private:
  static affine_params params(const std::uint8_t* unit) noexcept {
    affine_params p;
    detail::load_half_pair(unit, p.scale, p.offset);
    return p;
  }
  std::size_t d_;
};

}  // namespace qcodec::kv
