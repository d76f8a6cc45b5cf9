#include <qcodec/quant/transform/permutation.hpp>

#include <cstdint>
#include <vector>

#include "../../support/catch.hpp"

TEST_CASE("channel_permutation: apply then invert is the identity", "[permutation]") {
  const qcodec::channel_permutation p(std::vector<std::uint32_t>{3, 0, 2, 1});
  const std::vector<float> x = {10.0f, 11.0f, 12.0f, 13.0f};
  std::vector<float> y(4), z(4);
  p.apply(x, y);
  CHECK(y == std::vector<float>{13.0f, 10.0f, 12.0f, 11.0f});
  p.invert(y, z);
  CHECK(z == x);
}

TEST_CASE("channel_permutation: by_magnitude orders channels by RMS, ties by index",
          "[permutation]") {
  // Channel energies over the two rows: c0 2, c1 50, c2 2, c3 8.
  const std::vector<float> calibration = {1.0f, 5.0f, -1.0f, 2.0f, -1.0f, 5.0f, 1.0f, -2.0f};
  const auto p = qcodec::channel_permutation::by_magnitude({calibration.data(), 2, 4});
  CHECK(std::vector<std::uint32_t>(p.order().begin(), p.order().end()) ==
        std::vector<std::uint32_t>{1, 3, 0, 2});
}

TEST_CASE("channel_permutation: is_permutation rejects repeats and out-of-range channels",
          "[permutation]") {
  CHECK(qcodec::channel_permutation::is_permutation(std::vector<std::uint32_t>{2, 0, 1}));
  CHECK(qcodec::channel_permutation::is_permutation(std::vector<std::uint32_t>{}));
  CHECK_FALSE(qcodec::channel_permutation::is_permutation(std::vector<std::uint32_t>{0, 0, 1}));
  CHECK_FALSE(qcodec::channel_permutation::is_permutation(std::vector<std::uint32_t>{0, 3, 1}));
  CHECK(qcodec::channel_permutation(5).order()[4] == 4);
}
