#include <qcodec/kv/exact_rows.hpp>

#include <algorithm>
#include <deque>
#include <random>
#include <vector>

#include "../support/catch.hpp"

namespace kv = qcodec::kv;

TEST_CASE("exact_rows keeps its bytes in order through drops and compactions", "[kv][exact_rows]") {
  // Against a deque of the same bytes: pushes of 1-3 rows of 5 floats, drops of whole rows from
  // the front (as units leave the residual window) and now and then from the back (an undone
  // append), long enough for many compactions.
  constexpr std::size_t row = 5;
  std::mt19937 rng(1);
  for (kv::float_format format : {kv::float_format::f32, kv::float_format::f16}) {
    const std::size_t row_bytes = row * kv::float_bytes(format);
    kv::exact_rows rows;
    std::deque<float> want;
    float next = 0.0f;  // small integers: exact in fp16
    for (int step = 0; step < 3000; ++step) {
      const std::size_t push = rng() % 3 + 1;
      for (std::size_t r = 0; r < push; ++r) {
        float x[row];
        for (float& v : x) v = next = next < 2000.0f ? next + 1.0f : 0.0f;
        rows.push(format, x, row);
        want.insert(want.end(), x, x + row);
      }
      const std::size_t live = want.size() / row;
      const std::size_t front = live > 12 ? rng() % (live - 8) : 0;  // keep 8 or more rows
      rows.drop_front(front * row_bytes);
      want.erase(want.begin(), want.begin() + static_cast<std::ptrdiff_t>(front * row));
      if (step % 7 == 0) {
        rows.drop_back(row_bytes);
        want.erase(want.end() - static_cast<std::ptrdiff_t>(row), want.end());
      }
      REQUIRE(rows.size() == want.size() * kv::float_bytes(format));
      std::vector<float> got(want.size());
      kv::load_floats(format, rows.data(), got.size(), got.data());
      REQUIRE(std::equal(got.begin(), got.end(), want.begin()));
    }
  }
}

TEST_CASE("exact_rows emptied from either end takes rows again", "[kv][exact_rows]") {
  const float x[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  float got[2] = {};
  kv::exact_rows rows;
  rows.push(kv::float_format::f32, x, 4);
  rows.drop_front(16);  // everything: compacted to nothing
  CHECK(rows.size() == 0);
  rows.push(kv::float_format::f32, x + 2, 2);
  kv::load_floats(kv::float_format::f32, rows.data(), 2, got);
  CHECK((got[0] == 3.0f && got[1] == 4.0f));
  rows.push(kv::float_format::f32, x, 2);
  rows.drop_front(4);  // one dropped float and three live ones: not compacted yet
  rows.drop_back(12);
  CHECK(rows.size() == 0);
  rows.push(kv::float_format::f32, x + 1, 2);
  kv::load_floats(kv::float_format::f32, rows.data(), 2, got);
  CHECK((got[0] == 2.0f && got[1] == 3.0f));
}
