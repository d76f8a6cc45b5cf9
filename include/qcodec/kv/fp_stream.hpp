#pragma once
// Full-precision streams: fp32 (the reference, 32 bits per value) and fp16 (16 bits per value),
// one token per unit.

#include <qcodec/core/half.hpp>
#include <qcodec/kv/stream_codec.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace qcodec::kv {

/// Vectors stored as float32, little-endian: unit = head_dim * 4 bytes.
class fp32_stream {
 public:
  static constexpr std::size_t group_tokens = 1;
  explicit fp32_stream(std::size_t head_dim) noexcept : d_(head_dim) {}

  [[nodiscard]] std::size_t head_dim() const noexcept { return d_; }
  [[nodiscard]] std::size_t unit_bytes() const noexcept { return d_ * sizeof(float); }
  [[nodiscard]] std::string name() const { return "fp32"; }

  void encode(const float* x, std::uint8_t* unit) const noexcept {
    std::memcpy(unit, x, d_ * sizeof(float));
  }
  void decode(const std::uint8_t* unit, float* y) const noexcept {
    std::memcpy(y, unit, d_ * sizeof(float));
  }
  void prepare_query(const float* q, float* out) const noexcept {
    std::memmove(out, q, d_ * sizeof(float));  // q may be out
  }
  void scores(const std::uint8_t* units, std::size_t count, const float* q, std::size_t nq,
              float* s, std::size_t ld) const noexcept {
    simd::kernels().rows.f32_row_dots(units, unit_bytes(), count, d_, q, nq, s, ld);
  }
  void accumulate(const std::uint8_t* units, std::size_t count, const float* p, std::size_t ldp,
                  std::size_t nq, float* acc) const noexcept {
    simd::kernels().rows.f32_row_axpys(units, unit_bytes(), count, d_, p, ldp, nq, acc);
  }
  void finish_output(float*) const noexcept {}

 private:
  std::size_t d_;
};

/// Vectors stored as IEEE binary16 (round to nearest even): unit = head_dim * 2 bytes.
class fp16_stream {
 public:
  static constexpr std::size_t group_tokens = 1;
  explicit fp16_stream(std::size_t head_dim) noexcept : d_(head_dim) {}

  [[nodiscard]] std::size_t head_dim() const noexcept { return d_; }
  [[nodiscard]] std::size_t unit_bytes() const noexcept { return d_ * 2; }
  [[nodiscard]] std::string name() const { return "fp16"; }

  void encode(const float* x, std::uint8_t* unit) const noexcept {
    std::uint16_t h[max_dim];
    for (std::size_t start = 0; start < d_; start += max_dim) {
      const std::size_t n = d_ - start < max_dim ? d_ - start : max_dim;
      simd::kernels().convert.f32_to_f16(x + start, n, h);
      std::memcpy(unit + 2 * start, h, 2 * n);
    }
  }
  void decode(const std::uint8_t* unit, float* y) const noexcept {
    std::uint16_t h[max_dim];
    for (std::size_t start = 0; start < d_; start += max_dim) {
      const std::size_t n = d_ - start < max_dim ? d_ - start : max_dim;
      std::memcpy(h, unit + 2 * start, 2 * n);
      simd::kernels().convert.f16_to_f32(h, n, y + start);
    }
  }
  void prepare_query(const float* q, float* out) const noexcept {
    std::memmove(out, q, d_ * sizeof(float));  // q may be out
  }
  void scores(const std::uint8_t* units, std::size_t count, const float* q, std::size_t nq,
              float* s, std::size_t ld) const noexcept {
    simd::kernels().rows.f16_row_dots(units, unit_bytes(), count, d_, q, nq, s, ld);
  }
  void accumulate(const std::uint8_t* units, std::size_t count, const float* p, std::size_t ldp,
                  std::size_t nq, float* acc) const noexcept {
    simd::kernels().rows.f16_row_axpys(units, unit_bytes(), count, d_, p, ldp, nq, acc);
  }
  void finish_output(float*) const noexcept {}

 private:
  static constexpr std::size_t max_dim = 256;  // converted in chunks of this many values
  std::size_t d_;
};

}  // namespace qcodec::kv
