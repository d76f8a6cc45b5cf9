#include <qcodec/core/matrix_view.hpp>
#include <qcodec/core/strided_span.hpp>

#include <numeric>
#include <vector>

#include "../support/catch.hpp"

TEST_CASE("matrix_view addresses rows with a stride", "[views]") {
  std::vector<int> storage(4 * 6);
  std::iota(storage.begin(), storage.end(), 0);
  const qcodec::matrix_view<int> m(storage.data(), 4, 5, 6);  // one padding element per row
  CHECK(m.rows() == 4);
  CHECK(m.cols() == 5);
  CHECK(m.size() == 20);
  CHECK_FALSE(m.is_contiguous());
  CHECK(m(2, 3) == 15);
  CHECK(m.row(3)[0] == 18);
  CHECK(m.row(3).size() == 5);

  const qcodec::strided_span<int> c = m.col(1);
  REQUIRE(c.size() == 4);
  CHECK(c.stride() == 6);
  CHECK(c[0] == 1);
  CHECK(c[3] == 19);

  const auto b = m.block(1, 2, 2, 3);
  CHECK(b.rows() == 2);
  CHECK(b.cols() == 3);
  CHECK(b.row_stride() == 6);
  CHECK(b(0, 0) == 8);
  CHECK(b(1, 2) == 16);

  m(0, 0) = -1;
  CHECK(storage[0] == -1);

  const qcodec::matrix_view<const int> read_only = m;  // mutable -> const view
  CHECK(read_only(2, 3) == 15);
  const qcodec::strided_span<const int> ro_col = c;
  CHECK(ro_col[1] == 7);
}

TEST_CASE("a dense matrix_view is contiguous", "[views]") {
  float data[6] = {};
  const qcodec::matrix_view<float> m(data, 2, 3);
  CHECK(m.row_stride() == 3);
  CHECK(m.is_contiguous());
  CHECK(qcodec::matrix_view<float>(data, 1, 3, 8).is_contiguous());
  CHECK(qcodec::matrix_view<float>().empty());
}
