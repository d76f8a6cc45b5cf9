#include <qcodec/core/tensor4_view.hpp>

#include <numeric>
#include <vector>

#include "../support/catch.hpp"

TEST_CASE("tensor4_view indexes [layer, head, token, dim] row-major", "[views]") {
  // 2 layers, 3 heads, 4 tokens, head_dim 5, densely packed as in a .npy file.
  std::vector<int> storage(2 * 3 * 4 * 5);
  std::iota(storage.begin(), storage.end(), 0);
  const qcodec::tensor4_view<int> t(storage.data(), {2, 3, 4, 5});
  CHECK(t.layers() == 2);
  CHECK(t.heads() == 3);
  CHECK(t.tokens() == 4);
  CHECK(t.dim() == 5);
  CHECK(t.size() == storage.size());
  CHECK(t.strides() == qcodec::tensor4_view<int>::strides_type{60, 20, 5});
  CHECK(t(1, 2, 3, 4) == 119);
  CHECK(t(1, 0, 2, 1) == 60 + 10 + 1);

  const auto v = t.vector(0, 1, 2);
  REQUIRE(v.size() == 5);
  CHECK(v[0] == 20 + 10);

  const auto m = t.matrix(1, 1);
  CHECK(m.rows() == 4);
  CHECK(m.cols() == 5);
  CHECK(m(3, 4) == 60 + 20 + 15 + 4);
}

TEST_CASE("tensor4_view with explicit strides views a sub-tensor", "[views]") {
  // Heads 1..2 of a [1, 4, 3, 2] tensor whose tokens are padded to 4 elements.
  std::vector<int> storage(1 * 4 * 3 * 4);
  std::iota(storage.begin(), storage.end(), 0);
  const qcodec::tensor4_view<const int> t(storage.data() + 12, {1, 2, 3, 2}, {48, 12, 4});
  CHECK(t(0, 0, 0, 0) == 12);
  CHECK(t(0, 1, 2, 1) == 12 + 12 + 8 + 1);
  CHECK(t.matrix(0, 1).row_stride() == 4);
}
