#pragma once
// tensor4_view<T>: a non-owning [layer, head, token, dim] tensor, the shape of a KV cache or of
// K/V/Q dumps. The dim axis is contiguous (one head vector is a span); the other three axes
// have strides in elements, so views of padded buffers or of one layer of a larger tensor work.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/matrix_view.hpp>

#include <array>
#include <cstddef>
#include <span>
#include <type_traits>

namespace qcodec {

template <class T>
class tensor4_view {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  /// Extents in [layer, head, token, dim] order.
  using extents_type = std::array<std::size_t, 4>;
  /// Strides (elements) of the layer, head and token axes; dim has stride 1.
  using strides_type = std::array<std::size_t, 3>;

  constexpr tensor4_view() noexcept = default;
  /// A view with explicit strides for the layer, head and token axes.
  constexpr tensor4_view(T* data, extents_type extents, strides_type strides) noexcept
      : data_(data), extents_(extents), strides_(strides) {
    QCODEC_ASSERT(strides[2] >= extents[3] || extents[2] <= 1, "token stride below head_dim");
  }
  /// A densely packed [layers, heads, tokens, dim] tensor (row-major, as .npy stores it).
  constexpr tensor4_view(T* data, extents_type extents) noexcept
      : tensor4_view(data, extents,
                     {extents[1] * extents[2] * extents[3], extents[2] * extents[3], extents[3]}) {}
  /// A view of const elements from a view of mutable ones.
  template <class U>
    requires std::is_same_v<const U, T>
  constexpr tensor4_view(const tensor4_view<U>& other) noexcept  // NOLINT(implicit)
      : data_(other.data()), extents_(other.extents()), strides_(other.strides()) {}

  [[nodiscard]] constexpr T* data() const noexcept { return data_; }
  [[nodiscard]] constexpr const extents_type& extents() const noexcept { return extents_; }
  [[nodiscard]] constexpr const strides_type& strides() const noexcept { return strides_; }
  [[nodiscard]] constexpr std::size_t layers() const noexcept { return extents_[0]; }
  [[nodiscard]] constexpr std::size_t heads() const noexcept { return extents_[1]; }
  [[nodiscard]] constexpr std::size_t tokens() const noexcept { return extents_[2]; }
  [[nodiscard]] constexpr std::size_t dim() const noexcept { return extents_[3]; }
  [[nodiscard]] constexpr std::size_t size() const noexcept {
    return extents_[0] * extents_[1] * extents_[2] * extents_[3];
  }

  [[nodiscard]] constexpr T& operator()(std::size_t layer, std::size_t head, std::size_t token,
                                        std::size_t d) const noexcept {
    QCODEC_ASSERT(d < extents_[3], "tensor4_view dim index out of range");
    return vector(layer, head, token).data()[d];
  }
  /// The dim-element vector of one token of one head.
  [[nodiscard]] constexpr std::span<T> vector(std::size_t layer, std::size_t head,
                                              std::size_t token) const noexcept {
    QCODEC_ASSERT(layer < extents_[0] && head < extents_[1] && token < extents_[2],
                  "tensor4_view index out of range");
    return {data_ + layer * strides_[0] + head * strides_[1] + token * strides_[2], extents_[3]};
  }
  /// One head of one layer as a tokens × dim matrix.
  [[nodiscard]] constexpr matrix_view<T> matrix(std::size_t layer, std::size_t head) const noexcept {
    QCODEC_ASSERT(layer < extents_[0] && head < extents_[1], "tensor4_view index out of range");
    return {data_ + layer * strides_[0] + head * strides_[1], extents_[2], extents_[3],
            strides_[2]};
  }

 private:
  T* data_ = nullptr;
  extents_type extents_{};
  strides_type strides_{};
};

}  // namespace qcodec
