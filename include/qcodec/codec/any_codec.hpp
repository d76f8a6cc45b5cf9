#pragma once
// any_codec: a tensor codec chosen at run time (from a spec string, codec/registry.hpp), for
// engines and tools that pick formats from configuration. Compile-time users instantiate the
// policy types directly and pay no virtual call.
//
// A codec encodes a rows × cols float matrix (row-major, any row stride) into a contiguous byte
// stream of encoded_bytes(rows, cols) bytes and decodes it back. Rows are encoded one after the
// other, so a stream of R rows is the concatenation of R one-row streams whenever the codec
// keeps no per-tensor state (all registered block formats): ggml rows are exactly GGUF rows.

#include <qcodec/core/matrix_view.hpp>
#include <qcodec/core/status.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace qcodec {

class any_codec {
 public:
  virtual ~any_codec() = default;

  /// The canonical spec of this codec (name and every option that differs from the default).
  [[nodiscard]] virtual std::string spec() const = 0;
  /// Whether a rows × cols matrix can be encoded (e.g. cols a multiple of the block size); the
  /// failure says why.
  [[nodiscard]] virtual status check_shape(std::size_t rows, std::size_t cols) const = 0;
  /// Size of the encoding of a rows × cols matrix; check_shape(rows, cols) must succeed.
  [[nodiscard]] virtual std::size_t encoded_bytes(std::size_t rows, std::size_t cols) const = 0;
  /// Bits per value of a rows × cols matrix, every stored bit (scales, zero points) included.
  [[nodiscard]] double bits_per_value(std::size_t rows, std::size_t cols) const {
    return rows * cols == 0 ? 0.0
                            : 8.0 * static_cast<double>(encoded_bytes(rows, cols)) /
                                  static_cast<double>(rows * cols);
  }
  /// Encodes x into out (out.size() == encoded_bytes(x.rows(), x.cols())).
  virtual void encode(matrix_view<const float> x, std::span<std::uint8_t> out) const = 0;
  /// Decodes `in` into y. The bytes may be untrusted: a size that does not match y's shape is
  /// an error, and every bit pattern of the right size decodes without undefined behaviour.
  [[nodiscard]] virtual status decode(std::span<const std::uint8_t> in,
                                      matrix_view<float> y) const = 0;
};

}  // namespace qcodec
