// Q6_K (quant/block/ggml/q6_k.hpp): ggml's known answers, qcodec's encoder against ggml's,
// vec_dot against the dot product of the decoded rows, layout and edge rows.
#include <qcodec/quant/block/ggml/q6_k.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ggml_vectors.hpp"

namespace g = qcodec::ggml;

namespace {

// Relative MSE on input_f32.bin: ggml's encoder (the vectors' README) and the bound qcodec's
// keeps (below 1x of ggml's; measured 0.913x).
constexpr double ggml_rel_mse = 0.00032;
constexpr double qcodec_ratio_bound = 0.928;

std::vector<float> levels(const g::block_q6_K& b, int s) {
  const float dl = b.d.to_float() * static_cast<float>(b.scales[s]);
  std::vector<float> v;
  for (int q = -32; q < 32; ++q) v.push_back(dl * static_cast<float>(q));
  return v;
}

}  // namespace

TEST_CASE("q6_K: ggml's known answers decode bit for bit", "[ggml][q6_K][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q6_K);
  ggml_vectors::check_known_answers(*v);
}

TEST_CASE("q6_K: qcodec's encoder has a lower error than ggml's on the known-answer input",
          "[ggml][q6_K][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q6_K);
  const double ours = ggml_vectors::encoder_rel_mse(*v);
  INFO("q6_K: qcodec " << ours << " vs ggml " << ggml_rel_mse);
  REQUIRE(ours < ggml_rel_mse);
  REQUIRE(ours <= qcodec_ratio_bound * ggml_rel_mse);
}

TEST_CASE("q6_K: qcodec's encoder has a lower error than ggml's on Gaussian data", "[ggml][q6_K]") {
  // measured 0.868x
  REQUIRE(ggml_vectors::gaussian_ratio<g::q6_K>() <= 0.9);
}

TEST_CASE("q6_K: every value decodes to the nearest level of its sub-block", "[ggml][q6_K]") {
  for (const float sigma : {1.0f, 1e-4f, 40.0f})
    for (const std::uint32_t seed : {1u, 2u})
      ggml_vectors::check_nearest_levels_k<g::q6_K>(ggml_vectors::normal(256 * 6, seed, sigma), 16,
                                                    levels);
  // heavy tails: a few values far out in otherwise quiet blocks
  std::vector<float> x = ggml_vectors::normal(256 * 6, 4);
  for (std::size_t i = 5; i < x.size(); i += 37) x[i] *= 25.0f;
  ggml_vectors::check_nearest_levels_k<g::q6_K>(x, 16, levels);
}

TEST_CASE("q6_K: vec_dot is the dot product of the decoded rows", "[ggml][q6_K]") {
  for (const std::size_t n : {256u, 4096u})
    ggml_vectors::check_vec_dot_k<g::q6_K>(n, static_cast<std::uint32_t>(n));
}

TEST_CASE("q6_K: edge rows", "[ggml][q6_K]") { ggml_vectors::check_edge_rows<g::q6_K>(); }

TEST_CASE("q6_K: layout: ql nibbles and qh bit pairs", "[ggml][q6_K]") {
  g::block_q6_K b{};
  b.d = qcodec::half(0.5f);
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<std::int8_t>(j == 14 ? -2 : 1);
  for (auto& v : b.ql) v = 0;
  for (auto& v : b.qh) v = 0xAA;  // high bits 2 -> codes 32 + low bits: value 0 decodes to 0
  b.ql[0] = 0x05;           // value 0: low bits 5 -> code 37 -> 5
  b.ql[64 + 32 + 2] = 0x30; // value 128 + 96 + 2 = 226 (sub-block 14): low 3 -> 35 -> 3
  b.qh[32 + 2] = 0x2A;      // value 226: high bits 0 -> code 3 -> -29
  float y[256];
  g::dequantize_row_q6_K(&b, y, 256);
  CHECK(y[0] == 2.5f);
  CHECK(y[226] == 29.0f);
  CHECK(y[1] == 0.0f);
  static_assert(g::q6_K::bits_per_value * 256 == sizeof(g::block_q6_K) * 8);
}

TEST_CASE("q6_K: NaN and infinite inputs encode deterministically", "[ggml][q6_K]") {
  ggml_vectors::check_nonfinite_rows<g::q6_K>();
}
