#include <qcodec/interop/eigen.hpp>

#include <vector>

#include "../support/catch.hpp"

using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

TEST_CASE("to_eigen maps a strided matrix_view without copying", "[eigen]") {
  std::vector<float> storage(3 * 20, 0.0f);
  const qcodec::matrix_view<float> v(storage.data(), 3, 17, 20);  // rows padded to 20
  auto m = qcodec::to_eigen(v);
  static_assert(std::is_same_v<decltype(m)::Scalar, float>);
  CHECK(m.rows() == 3);
  CHECK(m.cols() == 17);
  CHECK(m.data() == storage.data());
  m(2, 1) = 5.0f;
  CHECK(storage[2 * 20 + 1] == 5.0f);
  m.setOnes();
  CHECK(storage[17] == 0.0f);  // padding untouched
  CHECK(storage[19] == 0.0f);

  const qcodec::matrix_view<const float> cv = v;
  const auto cm = qcodec::to_eigen(cv);
  CHECK(cm.sum() == 51.0f);

  const std::span<const float> row = v.row(1);
  CHECK(qcodec::to_eigen(row).sum() == 17.0f);
}

TEST_CASE("view_of views row-major Eigen storage without copying", "[eigen]") {
  row_major a = row_major::Zero(4, 6);
  auto v = qcodec::view_of(a);
  static_assert(std::is_same_v<decltype(v), qcodec::matrix_view<float>>);
  CHECK(v.rows() == 4);
  CHECK(v.cols() == 6);
  v(1, 2) = 3.0f;
  CHECK(a(1, 2) == 3.0f);

  auto block = a.block(1, 1, 2, 3);
  const auto bv = qcodec::view_of(block);
  CHECK(bv.row_stride() == 6);
  CHECK(bv(0, 1) == 3.0f);

  const row_major& ca = a;
  const auto cv = qcodec::view_of(ca);
  static_assert(std::is_same_v<decltype(cv), const qcodec::matrix_view<const float>>);
  CHECK(cv(1, 2) == 3.0f);

  Eigen::MatrixXf col_major = Eigen::MatrixXf::Zero(2, 3);
  col_major(1, 0) = 7.0f;
  const auto tv = qcodec::view_of(col_major.transpose());  // explicitly the transpose
  CHECK(tv.rows() == 3);
  CHECK(tv(0, 1) == 7.0f);

  Eigen::Ref<row_major> ref(a);
  CHECK(qcodec::view_of(ref)(1, 2) == 3.0f);
}
