#pragma once
// Codecs that store every value as a float: fp32 (the identity, 32 bits per value), fp16 and
// bf16 (16 bits, round-to-nearest-even through the SIMD conversion kernels). Values are stored
// little-endian, row after row, with no metadata.

#include <qcodec/codec/any_codec.hpp>
#include <qcodec/codec/spec.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace qcodec {

enum class float_storage : std::uint8_t { f32, f16, bf16 };

template <float_storage Storage>
class float_storage_codec final : public any_codec {
 public:
  static constexpr std::size_t value_bytes = Storage == float_storage::f32 ? 4 : 2;

  [[nodiscard]] std::string spec() const override {
    switch (Storage) {
      case float_storage::f32:
        return "fp32";
      case float_storage::f16:
        return "fp16";
      case float_storage::bf16:
        return "bf16";
    }
    return {};
  }
  [[nodiscard]] status check_shape(std::size_t, std::size_t) const override { return {}; }
  [[nodiscard]] std::size_t encoded_bytes(std::size_t rows, std::size_t cols) const override {
    return rows * cols * value_bytes;
  }

  void encode(matrix_view<const float> x, std::span<std::uint8_t> out) const override {
    QCODEC_ASSERT(out.size() == encoded_bytes(x.rows(), x.cols()), "output size mismatch");
    const simd::convert_kernels& k = simd::kernels().convert;
    // A row's halves (none for f32, nor without rows, whatever cols says).
    const std::size_t row_halves = Storage == float_storage::f32 || x.rows() == 0 ? 0 : x.cols();
    std::vector<std::uint16_t> halves(row_halves);
    const std::size_t row_bytes = x.cols() * value_bytes;
    for (std::size_t r = 0; r < x.rows() && row_bytes != 0; ++r) {
      const float* row = x.row(r).data();
      if constexpr (Storage == float_storage::f32) {
        std::memcpy(out.data() + r * row_bytes, row, row_bytes);
      } else {
        (Storage == float_storage::f16 ? k.f32_to_f16 : k.f32_to_bf16)(row, x.cols(),
                                                                       halves.data());
        std::memcpy(out.data() + r * row_bytes, halves.data(), row_bytes);
      }
    }
  }

  [[nodiscard]] status decode(std::span<const std::uint8_t> in,
                              matrix_view<float> y) const override {
    if (in.size() != encoded_bytes(y.rows(), y.cols())) {
      return status::failure(codec_errors::size_mismatch,
                             spec() + ": expected " +
                                 std::to_string(encoded_bytes(y.rows(), y.cols())) +
                                 " bytes, got " + std::to_string(in.size()));
    }
    const simd::convert_kernels& k = simd::kernels().convert;
    // A row's halves (none for f32, nor without rows, whatever cols says).
    const std::size_t row_halves = Storage == float_storage::f32 || y.rows() == 0 ? 0 : y.cols();
    std::vector<std::uint16_t> halves(row_halves);
    const std::size_t row_bytes = y.cols() * value_bytes;
    for (std::size_t r = 0; r < y.rows() && row_bytes != 0; ++r) {
      float* row = y.row(r).data();
      if constexpr (Storage == float_storage::f32) {
        std::memcpy(row, in.data() + r * row_bytes, row_bytes);
      } else {
        std::memcpy(halves.data(), in.data() + r * row_bytes, row_bytes);
        (Storage == float_storage::f16 ? k.f16_to_f32 : k.bf16_to_f32)(halves.data(), y.cols(),
                                                                       row);
      }
    }
    return {};
  }
};

}  // namespace qcodec
