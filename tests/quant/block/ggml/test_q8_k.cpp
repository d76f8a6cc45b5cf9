// Q8_K (quant/block/ggml/q8_k.hpp): ggml's encoder rules (scale from the largest magnitude,
// codes within -127..127, block sums), decoding, layout.
#include <qcodec/quant/block/ggml/q8_k.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "ggml_vectors.hpp"

namespace g = qcodec::ggml;

TEST_CASE("q8_K: codes, scale and block sums follow ggml's encoder", "[ggml][q8_K]") {
  std::vector<float> x = ggml_vectors::normal(256 * 4, 7, 2.0f);
  x[300] = -9.0f;  // block 1's largest magnitude: ggml maps it to code -127 (iscale = -127 / max)
  std::vector<g::block_q8_K> b(4);
  g::quantize_row_q8_K(x.data(), b.data(), 1024);
  CHECK(b[1].qs[300 - 256] == -127);
  CHECK(b[1].d == 1.0f / (-127.0f / -9.0f));
  std::vector<float> y(1024);
  g::dequantize_row_q8_K(b.data(), y.data(), 1024);
  for (int i = 0; i < 4; ++i) {
    float amax = 0.0f;
    for (int j = 0; j < 256; ++j) amax = std::fmax(amax, std::fabs(x[256 * i + j]));
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += b[i].qs[16 * j + l];
      REQUIRE(b[i].bsums[j] == s);
    }
    for (int j = 0; j < 256; ++j) {
      REQUIRE(b[i].qs[j] >= -127);
      REQUIRE(y[256 * i + j] == b[i].d * static_cast<float>(b[i].qs[j]));
      // rounding to the nearest of 255 levels: half a step, plus float slack
      REQUIRE(std::fabs(y[256 * i + j] - x[256 * i + j]) <= amax / 127.0f * 0.5001f);
    }
  }
}

TEST_CASE("q8_K: an all-zero block has d = 0 and zero codes", "[ggml][q8_K]") {
  std::vector<float> x(256, 0.0f);
  g::block_q8_K b;
  g::quantize_row_q8_K(x.data(), &b, 256);
  CHECK(b.d == 0.0f);
  for (int j = 0; j < 256; ++j) REQUIRE(b.qs[j] == 0);
  for (int j = 0; j < 16; ++j) REQUIRE(b.bsums[j] == 0);
  static_assert(g::q8_K::bits_per_value * 256 == sizeof(g::block_q8_K) * 8);
}

TEST_CASE("q8_K: NaN and infinite inputs encode deterministically", "[ggml][q8_K]") {
  ggml_vectors::check_nonfinite_rows<g::q8_K>();
}
