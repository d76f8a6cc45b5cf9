#pragma once
// Zero-copy adapters between qcodec views and Eigen.
//
//   to_eigen(matrix_view<T>)  -> Eigen::Map of a row-major matrix with the view's row stride
//   to_eigen(std::span<T>)    -> Eigen::Map of a column vector
//   view_of(eigen_matrix)     -> matrix_view over a row-major Eigen matrix, Map or Ref (any
//                                dense expression with direct access and unit inner stride)
//
// Column-major Eigen storage (Eigen's default) is rejected at compile time: a row-major view of
// it would silently be the transpose. Use Eigen::Matrix<T, Dynamic, Dynamic, RowMajor>, or
// view_of(m.transpose()) when the transpose is what you mean.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/matrix_view.hpp>

#include <Eigen/Core>

#include <cstddef>
#include <span>
#include <type_traits>

namespace qcodec {

template <class T>
using eigen_row_major = Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, Eigen::Dynamic,
                                      Eigen::RowMajor>;

/// The view as an Eigen::Map (const-correct: a view of const T gives a read-only map).
template <class T>
[[nodiscard]] auto to_eigen(matrix_view<T> v) noexcept {
  using matrix = std::conditional_t<std::is_const_v<T>, const eigen_row_major<T>,
                                    eigen_row_major<T>>;
  return Eigen::Map<matrix, Eigen::Unaligned, Eigen::OuterStride<>>(
      v.data(), static_cast<Eigen::Index>(v.rows()), static_cast<Eigen::Index>(v.cols()),
      Eigen::OuterStride<>(static_cast<Eigen::Index>(v.row_stride())));
}

/// The span as an Eigen::Map of a column vector.
template <class T>
[[nodiscard]] auto to_eigen(std::span<T> v) noexcept {
  using vector = Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, 1>;
  using mapped = std::conditional_t<std::is_const_v<T>, const vector, vector>;
  return Eigen::Map<mapped>(v.data(), static_cast<Eigen::Index>(v.size()));
}

/// A matrix_view of a row-major Eigen matrix, Map, Ref or block with direct access; const
/// Eigen objects give a view of const elements. The view aliases the Eigen object's storage,
/// which must outlive it.
template <class E>
  requires std::is_base_of_v<Eigen::DenseBase<std::remove_cvref_t<E>>, std::remove_cvref_t<E>>
[[nodiscard]] auto view_of(E&& m) noexcept {
  using derived = std::remove_cvref_t<E>;
  static_assert(bool(derived::Flags & Eigen::DirectAccessBit),
                "view_of needs an Eigen object with direct access to its storage");
  static_assert(bool(derived::Flags & Eigen::RowMajorBit),
                "view_of needs row-major storage (Eigen::RowMajor): a row-major view of a "
                "column-major matrix would be its transpose");
  using T = std::remove_pointer_t<decltype(m.data())>;
  QCODEC_ASSERT(m.innerStride() == 1, "view_of needs unit inner stride");
  return matrix_view<T>(m.data(), static_cast<std::size_t>(m.rows()),
                        static_cast<std::size_t>(m.cols()),
                        static_cast<std::size_t>(m.outerStride()));
}

}  // namespace qcodec
