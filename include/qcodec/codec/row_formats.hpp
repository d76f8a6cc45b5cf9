#pragma once
// Adapters that give the registry (codec/registry.hpp) the formats whose headers lack ggml's row
// interface:
//
//   mx_row_format<Elem>   OCP MX blocks (quant/float/mx.hpp) as a BlockFormat: 32 values per
//                         block, qcodec's MX layout (E8M0 byte, then the codes in element
//                         order, 4-bit codes two per byte LSB first). Registered as "mx_fp4",
//                         "mx_fp8_e4m3", "mx_fp8_e5m2"; ggml's MXFP4 (split-halves layout) stays
//                         "mxfp4". Bits per value 4.25 / 8.25 / 8.25.
//   nvfp4_codec           NVFP4 (quant/float/nvfp4.hpp) with the per-tensor FP32 scale taken per
//                         row, so rows stay independent (any_codec's contract). Row layout:
//                         global (fp32, little-endian IEEE bytes), then cols / 16 nvfp4_blocks
//                         of 9 bytes: 4.5 + 32 / cols bits per value.

#include <qcodec/codec/any_codec.hpp>
#include <qcodec/codec/spec.hpp>
#include <qcodec/quant/float/mx.hpp>
#include <qcodec/quant/float/nvfp4.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace qcodec {

/// OCP MX blocks with ggml's row interface (see the file comment).
template <class Elem>
struct mx_row_format {
  using block = mx_block<Elem>;
  static constexpr std::size_t block_values = mx_block_size;
  static constexpr std::size_t block_bytes = sizeof(block);
  static constexpr double bits_per_value = 8.0 * block_bytes / static_cast<double>(block_values);
  static constexpr const char* name = std::is_same_v<Elem, fp4_e2m1>   ? "mx_fp4"
                                      : std::is_same_v<Elem, fp8_e4m3> ? "mx_fp8_e4m3"
                                                                       : "mx_fp8_e5m2";
  /// x: k floats (k a multiple of 32) -> k / 32 blocks, best_of_two scale rule.
  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    quantize_row_mx<Elem>(x, y, static_cast<std::size_t>(k));
  }
  /// Any bytes decode without undefined behaviour (E8M0 0xFF decodes to NaN).
  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    dequantize_row_mx<Elem>(x, y, static_cast<std::size_t>(k));
  }
};

/// NVFP4 with one FP32 global scale per row (see the file comment).
class nvfp4_codec final : public any_codec {
 public:
  [[nodiscard]] std::string spec() const override { return "nvfp4"; }

  [[nodiscard]] status check_shape(std::size_t rows, std::size_t cols) const override {
    if (cols % nvfp4_block_size != 0) {
      return status::failure(
          codec_errors::bad_shape,
          "nvfp4 needs rows whose length is a multiple of 16, got " + std::to_string(cols));
    }
    // A row of no values still stores its scale: so many rows of 0 columns that their bytes
    // would wrap size_t (a shape no memory backs, but decode's check must not wrap).
    if (rows > std::numeric_limits<std::size_t>::max() / row_bytes(cols)) {
      return status::failure(codec_errors::bad_shape,
                             "nvfp4: " + std::to_string(rows) + " rows overflow the encoding size");
    }
    return {};
  }

  [[nodiscard]] std::size_t encoded_bytes(std::size_t rows, std::size_t cols) const override {
    return rows * row_bytes(cols);
  }

  void encode(matrix_view<const float> x, std::span<std::uint8_t> out) const override {
    QCODEC_ASSERT(check_shape(x.rows(), x.cols()).ok(), "shape not encodable");
    QCODEC_ASSERT(out.size() == encoded_bytes(x.rows(), x.cols()), "output size mismatch");
    const std::size_t nb = x.cols() / nvfp4_block_size;
    std::vector<nvfp4_block> blocks(x.rows() == 0 ? 0 : nb);
    for (std::size_t r = 0; r < x.rows(); ++r) {
      const float* row = x.row(r).data();
      const float global = nvfp4_global_scale(row, x.cols());
      quantize_row_nvfp4(row, blocks.data(), x.cols(), global);
      std::uint8_t* p = out.data() + r * row_bytes(x.cols());
      std::memcpy(p, &global, sizeof global);
      if (nb != 0) std::memcpy(p + sizeof global, blocks.data(), nb * sizeof(nvfp4_block));
    }
  }

  [[nodiscard]] status decode(std::span<const std::uint8_t> in,
                              matrix_view<float> y) const override {
    if (status s = check_shape(y.rows(), y.cols()); !s) return s;
    if (in.size() != encoded_bytes(y.rows(), y.cols())) {
      return status::failure(codec_errors::size_mismatch,
                             "nvfp4: expected " + std::to_string(encoded_bytes(y.rows(), y.cols())) +
                                 " bytes, got " + std::to_string(in.size()));
    }
    const std::size_t nb = y.cols() / nvfp4_block_size;
    std::vector<nvfp4_block> blocks(y.rows() == 0 ? 0 : nb);
    for (std::size_t r = 0; r < y.rows(); ++r) {
      const std::uint8_t* p = in.data() + r * row_bytes(y.cols());
      float global = 0.0f;  // any bit pattern is a float (NaN / inf / negative decode as such)
      std::memcpy(&global, p, sizeof global);
      if (nb != 0) std::memcpy(blocks.data(), p + sizeof global, nb * sizeof(nvfp4_block));
      dequantize_row_nvfp4(blocks.data(), y.row(r).data(), y.cols(), global);
    }
    return {};
  }

 private:
  static constexpr std::size_t row_bytes(std::size_t cols) noexcept {
    return sizeof(float) + cols / nvfp4_block_size * sizeof(nvfp4_block);
  }
};

}  // namespace qcodec
