#pragma once
// block_format_codec<Format>: any_codec over a block format with ggml's row interface (the
// ggml-compatible formats of quant/block/ggml). Each row of cols values (cols a multiple of the
// format's block size) is cols / block_values blocks of block_bytes bytes, so the encoding of
// a matrix is byte for byte the rows of a GGUF tensor of that type.

#include <qcodec/codec/any_codec.hpp>
#include <qcodec/codec/spec.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace qcodec {

/// A block format with ggml's row interface (e.g. qcodec::ggml::q4_K).
template <class F>
concept BlockFormat = requires(const float* x, typename F::block* b, float* y, std::int64_t k) {
  requires std::is_trivially_copyable_v<typename F::block>;
  { F::name } -> std::convertible_to<const char*>;
  { F::block_values } -> std::convertible_to<std::size_t>;
  { F::quantize_row(x, b, k) }
  noexcept;
  { F::dequantize_row(b, y, k) }
  noexcept;
}
&&sizeof(typename F::block) == F::block_bytes;

template <BlockFormat Format>
class block_format_codec final : public any_codec {
 public:
  using block = typename Format::block;
  static constexpr std::size_t block_values = Format::block_values;

  /// `spec` names this codec when the format is one instance of a parameterised family
  /// ("bfp:bits=4,block=16"); by default it is the format's name.
  explicit block_format_codec(std::string spec = Format::name) : spec_(std::move(spec)) {}

  [[nodiscard]] std::string spec() const override { return spec_; }

  [[nodiscard]] status check_shape(std::size_t, std::size_t cols) const override {
    if (cols % block_values == 0) return {};
    return status::failure(codec_errors::bad_shape,
                           std::string(Format::name) +
                               " needs rows whose length is a multiple of " +
                               std::to_string(block_values) + ", got " + std::to_string(cols));
  }

  [[nodiscard]] std::size_t encoded_bytes(std::size_t rows, std::size_t cols) const override {
    return rows * (cols / block_values) * sizeof(block);
  }

  void encode(matrix_view<const float> x, std::span<std::uint8_t> out) const override {
    QCODEC_ASSERT(check_shape(x.rows(), x.cols()).ok(), "shape not encodable");
    QCODEC_ASSERT(out.size() == encoded_bytes(x.rows(), x.cols()), "output size mismatch");
    const std::size_t row_blocks = x.cols() / block_values;
    std::vector<block> blocks(x.rows() == 0 ? 0 : row_blocks);  // (no rows: any cols)
    for (std::size_t r = 0; r < x.rows(); ++r) {
      Format::quantize_row(x.row(r).data(), blocks.data(), static_cast<std::int64_t>(x.cols()));
      if (row_blocks != 0) {
        std::memcpy(out.data() + r * row_blocks * sizeof(block), blocks.data(),
                    row_blocks * sizeof(block));
      }
    }
  }

  [[nodiscard]] status decode(std::span<const std::uint8_t> in,
                              matrix_view<float> y) const override {
    if (status s = check_shape(y.rows(), y.cols()); !s) return s;
    if (in.size() != encoded_bytes(y.rows(), y.cols())) {
      return status::failure(codec_errors::size_mismatch,
                             std::to_string(y.rows()) + " x " + std::to_string(y.cols()) + " " +
                                 Format::name + " values need " +
                                 std::to_string(encoded_bytes(y.rows(), y.cols())) +
                                 " bytes, got " + std::to_string(in.size()));
    }
    // Copy each row into aligned blocks: the stream has no alignment guarantee.
    const std::size_t row_blocks = y.cols() / block_values;
    std::vector<block> blocks(y.rows() == 0 ? 0 : row_blocks);  // (no rows: any cols)
    for (std::size_t r = 0; r < y.rows(); ++r) {
      if (row_blocks != 0) {
        std::memcpy(blocks.data(), in.data() + r * row_blocks * sizeof(block),
                    row_blocks * sizeof(block));
      }
      Format::dequantize_row(blocks.data(), y.row(r).data(), static_cast<std::int64_t>(y.cols()));
    }
    return {};
  }

 private:
  std::string spec_;
};

}  // namespace qcodec
