// Q8_1 (quant/block/ggml/q8_1.hpp), the activation format of the offset formats: ggml's encoder
// semantics (s = binary16(d * sum q) with the unrounded d) and qcodec's (Q8_0's codes, s from
// the decoded d).
#include <qcodec/quant/block/ggml/q8_0.hpp>
#include <qcodec/quant/block/ggml/q8_1.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ggml_vectors.hpp"

namespace g = qcodec::ggml;

TEST_CASE("q8_1: ggml's reference encoder", "[ggml][q8_1]") {
  const std::vector<float> x = ggml_vectors::normal(32 * 8, 5, 2.0f);
  std::vector<g::block_q8_1> b(8);
  std::vector<g::block_q8_0> c(8);
  g::quantize_row_q8_1_ref(x.data(), b.data(), 256);
  g::quantize_row_q8_0_ref(x.data(), c.data(), 256);
  for (int i = 0; i < 8; ++i) {
    // the same scale and codes as ggml's Q8_0 encoder ...
    REQUIRE(b[i].d.bits == c[i].d.bits);
    REQUIRE(std::memcmp(b[i].qs, c[i].qs, 32) == 0);
    // ... and s = d * sum(q), with d before rounding to binary16
    float amax = 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      amax = std::fmax(amax, std::fabs(x[i * 32 + j]));
      sum += b[i].qs[j];
    }
    REQUIRE(b[i].s.bits == qcodec::half(static_cast<float>(sum) * (amax / 127.0f)).bits);
  }
}

TEST_CASE("q8_1: qcodec's encoder: Q8_0's codes, s from the decoded scale", "[ggml][q8_1]") {
  for (const float sigma : {1.0f, 1e-5f, 1e7f}) {
    const std::vector<float> x = ggml_vectors::normal(32 * 16, 6, sigma);
    std::vector<g::block_q8_1> b(16);
    std::vector<g::block_q8_0> c(16);
    g::quantize_row_q8_1(x.data(), b.data(), 512);
    g::quantize_row_q8_0(x.data(), c.data(), 512);
    std::vector<float> y(512), z(512);
    g::dequantize_row_q8_1(b.data(), y.data(), 512);
    g::dequantize_row_q8_0(c.data(), z.data(), 512);
    for (int i = 0; i < 16; ++i) {
      REQUIRE(b[i].d.bits == c[i].d.bits);
      REQUIRE(std::memcmp(b[i].qs, c[i].qs, 32) == 0);
      int sum = 0;
      for (int j = 0; j < 32; ++j) sum += b[i].qs[j];
      REQUIRE(b[i].s.bits == qcodec::half(static_cast<float>(sum) * b[i].d.to_float()).bits);
    }
    REQUIRE(std::memcmp(y.data(), z.data(), y.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("q8_1: NaN and infinite inputs encode deterministically", "[ggml][q8_1]") {
  ggml_vectors::check_nonfinite_rows<g::q8_1>();
}
