#pragma once
// matrix_view<T>: a non-owning rows × cols matrix, row-major, with a row stride in elements
// (elements of a row are contiguous; rows may be padded or be rows of a larger matrix).
// The currency of qcodec's APIs, as Eigen's Map is Eigen's: zero-copy to and from Eigen via
// <qcodec/interop/eigen.hpp>.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/strided_span.hpp>

#include <cstddef>
#include <span>
#include <type_traits>

namespace qcodec {

template <class T>
class matrix_view {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;

  constexpr matrix_view() noexcept = default;
  /// rows × cols elements; row r starts at data + r * row_stride (row_stride >= cols).
  constexpr matrix_view(T* data, std::size_t rows, std::size_t cols,
                        std::size_t row_stride) noexcept
      : data_(data), rows_(rows), cols_(cols), row_stride_(row_stride) {
    QCODEC_ASSERT(row_stride >= cols || rows <= 1, "row_stride must be at least cols");
  }
  /// A densely packed rows × cols matrix (row_stride == cols).
  constexpr matrix_view(T* data, std::size_t rows, std::size_t cols) noexcept
      : matrix_view(data, rows, cols, cols) {}
  /// A view of const elements from a view of mutable ones.
  template <class U>
    requires std::is_same_v<const U, T>
  constexpr matrix_view(const matrix_view<U>& other) noexcept  // NOLINT(implicit)
      : data_(other.data()), rows_(other.rows()), cols_(other.cols()),
        row_stride_(other.row_stride()) {}

  [[nodiscard]] constexpr T* data() const noexcept { return data_; }
  [[nodiscard]] constexpr std::size_t rows() const noexcept { return rows_; }
  [[nodiscard]] constexpr std::size_t cols() const noexcept { return cols_; }
  /// Elements from the start of one row to the start of the next.
  [[nodiscard]] constexpr std::size_t row_stride() const noexcept { return row_stride_; }
  [[nodiscard]] constexpr std::size_t size() const noexcept { return rows_ * cols_; }
  [[nodiscard]] constexpr bool empty() const noexcept { return size() == 0; }
  /// True when the rows follow each other without padding (the data is one contiguous block).
  [[nodiscard]] constexpr bool is_contiguous() const noexcept {
    return row_stride_ == cols_ || rows_ <= 1;
  }

  [[nodiscard]] constexpr T& operator()(std::size_t r, std::size_t c) const noexcept {
    QCODEC_ASSERT(r < rows_ && c < cols_, "matrix_view index out of range");
    return data_[r * row_stride_ + c];
  }
  /// Row r as a contiguous span of cols() elements.
  [[nodiscard]] constexpr std::span<T> row(std::size_t r) const noexcept {
    QCODEC_ASSERT(r < rows_, "matrix_view row out of range");
    return {data_ + r * row_stride_, cols_};
  }
  /// Column c as a strided span of rows() elements.
  [[nodiscard]] constexpr strided_span<T> col(std::size_t c) const noexcept {
    QCODEC_ASSERT(c < cols_, "matrix_view column out of range");
    return {data_ + c, rows_, static_cast<std::ptrdiff_t>(row_stride_)};
  }
  /// The n_rows × n_cols block whose top-left element is (r, c).
  [[nodiscard]] constexpr matrix_view block(std::size_t r, std::size_t c, std::size_t n_rows,
                                            std::size_t n_cols) const noexcept {
    QCODEC_ASSERT(r + n_rows <= rows_ && c + n_cols <= cols_, "matrix_view block out of range");
    return {data_ + r * row_stride_ + c, n_rows, n_cols, row_stride_};
  }

 private:
  T* data_ = nullptr;
  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
  std::size_t row_stride_ = 0;
};

}  // namespace qcodec
