#pragma once
// The tokens a KV cache keeps exact (attention sinks, the residual window): rows of floats in
// fp32 or fp16, oldest first.
//
// Tokens leave the residual window from the front, a unit at a time, on every append once the
// window is full. Shifting the remaining rows each time made a decode step's append cost the
// whole window: with per-token values and R = 128, 128 rows of 8 heads x 64 fp32 dims, 256 KB
// moved per layer and token (90% of the instructions of filling a 16k-token KIVI-4 cache).
// exact_rows drops a prefix by moving a start offset instead, and compacts once the dropped bytes
// are at least as many as the live ones: the bytes a compaction moves never exceed the bytes
// dropped since the last one, so a drop costs amortized O(bytes dropped).

#include <qcodec/core/assert.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace qcodec::kv {

/// Storage of the tokens a cache keeps exact (sinks and the residual window).
enum class float_format { f32, f16 };

[[nodiscard]] constexpr std::size_t float_bytes(float_format f) noexcept {
  return f == float_format::f16 ? 2 : 4;
}

/// Converts n floats stored in `format` back to fp32.
inline void load_floats(float_format format, const std::uint8_t* src, std::size_t n,
                        float* dst) noexcept {
  if (format == float_format::f16) {
    simd::kernels().convert.f16_to_f32(reinterpret_cast<const std::uint16_t*>(src), n, dst);
  } else {
    std::memcpy(dst, src, n * sizeof(float));
  }
}

/// A queue of bytes holding exact rows: appended at the back, dropped from either end.
class exact_rows {
 public:
  /// Appends n floats, stored in `format`.
  void push(float_format format, const float* x, std::size_t n) {
    const std::size_t at = bytes_.size();
    bytes_.resize(at + n * float_bytes(format));
    if (format == float_format::f16) {
      simd::kernels().convert.f32_to_f16(x, n, reinterpret_cast<std::uint16_t*>(&bytes_[at]));
    } else {
      std::memcpy(&bytes_[at], x, n * sizeof(float));
    }
  }
  /// Removes the oldest `count` bytes (count <= size()).
  void drop_front(std::size_t count) noexcept {
    QCODEC_ASSERT(count <= size(), "exact_rows: dropping more bytes than it holds");
    first_ += count;
    if (first_ >= bytes_.size() - first_) {  // as many dropped bytes as live ones: compact
      bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(first_));
      first_ = 0;
    }
  }
  /// Removes the newest `count` bytes (count <= size()).
  void drop_back(std::size_t count) noexcept {
    QCODEC_ASSERT(count <= size(), "exact_rows: dropping more bytes than it holds");
    bytes_.erase(bytes_.end() - static_cast<std::ptrdiff_t>(count), bytes_.end());
  }

  /// Live bytes (a dropped prefix awaiting compaction, held like spare vector capacity, is not
  /// counted).
  [[nodiscard]] std::size_t size() const noexcept { return bytes_.size() - first_; }
  [[nodiscard]] const std::uint8_t* data() const noexcept { return bytes_.data() + first_; }

 private:
  std::vector<std::uint8_t> bytes_;
  std::size_t first_ = 0;
};

}  // namespace qcodec::kv
