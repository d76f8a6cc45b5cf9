#pragma once
// strided_span<T>: a non-owning 1-D view of `size` elements spaced `stride` elements apart,
// e.g. one channel (column) of a row-major matrix. Contiguous 1-D data uses std::span.

#include <qcodec/core/assert.hpp>

#include <cstddef>
#include <type_traits>

namespace qcodec {

template <class T>
class strided_span {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;

  constexpr strided_span() noexcept = default;
  /// `size` elements at data[0], data[stride], ..., data[(size - 1) * stride].
  constexpr strided_span(T* data, std::size_t size, std::ptrdiff_t stride) noexcept
      : data_(data), size_(size), stride_(stride) {}
  /// A view of const elements from a view of mutable ones.
  template <class U>
    requires std::is_same_v<const U, T>
  constexpr strided_span(const strided_span<U>& other) noexcept  // NOLINT(implicit)
      : data_(other.data()), size_(other.size()), stride_(other.stride()) {}

  [[nodiscard]] constexpr T* data() const noexcept { return data_; }
  [[nodiscard]] constexpr std::size_t size() const noexcept { return size_; }
  [[nodiscard]] constexpr bool empty() const noexcept { return size_ == 0; }
  /// Distance between consecutive elements, in elements.
  [[nodiscard]] constexpr std::ptrdiff_t stride() const noexcept { return stride_; }

  [[nodiscard]] constexpr T& operator[](std::size_t i) const noexcept {
    QCODEC_ASSERT(i < size_, "strided_span index out of range");
    return data_[static_cast<std::ptrdiff_t>(i) * stride_];
  }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::ptrdiff_t stride_ = 1;
};

}  // namespace qcodec
