// Q2_K (quant/block/ggml/q2_k.hpp): ggml's known answers, qcodec's encoder against ggml's,
// vec_dot against the dot product of the decoded rows, layout and edge rows.
#include <qcodec/quant/block/ggml/q2_k.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ggml_vectors.hpp"

namespace g = qcodec::ggml;

namespace {

// Relative MSE on input_f32.bin: ggml's encoder (the vectors' README) and the bound qcodec's
// keeps (0.9x of ggml's; measured 0.837x).
constexpr double ggml_rel_mse = 0.0822;
constexpr double qcodec_ratio_bound = 0.9;

std::vector<float> levels(const g::block_q2_K& b, int s) {
  const float dl = b.d.to_float() * static_cast<float>(b.scales[s] & 0xF);
  const float ml = b.dmin.to_float() * static_cast<float>(b.scales[s] >> 4);
  std::vector<float> v;
  for (int q = 0; q < 4; ++q) v.push_back(dl * static_cast<float>(q) - ml);
  return v;
}

}  // namespace

TEST_CASE("q2_K: ggml's known answers decode bit for bit", "[ggml][q2_K][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q2_K);
  ggml_vectors::check_known_decode(*v);
  // qcodec's copy of ggml's reference encoder reproduces every block (nearest_int keeps its
  // argument unfused, as ggml's C code computes it).
  const std::size_t same = ggml_vectors::ref_blocks_matching(*v);
  CHECK(same == 8);
}

TEST_CASE("q2_K: qcodec's encoder has a lower error than ggml's on the known-answer input",
          "[ggml][q2_K][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q2_K);
  const double ours = ggml_vectors::encoder_rel_mse(*v);
  INFO("q2_K: qcodec " << ours << " vs ggml " << ggml_rel_mse);
  REQUIRE(ours < ggml_rel_mse);
  REQUIRE(ours <= qcodec_ratio_bound * ggml_rel_mse);
}

TEST_CASE("q2_K: qcodec's encoder has a lower error than ggml's on Gaussian data", "[ggml][q2_K]") {
  // measured 0.781x
  REQUIRE(ggml_vectors::gaussian_ratio<g::q2_K>() <= 0.9);
}

TEST_CASE("q2_K: every value decodes to the nearest level of its sub-block", "[ggml][q2_K]") {
  for (const float sigma : {1.0f, 1e-4f, 40.0f})
    for (const std::uint32_t seed : {1u, 2u})
      ggml_vectors::check_nearest_levels_k<g::q2_K>(ggml_vectors::normal(256 * 6, seed, sigma), 16,
                                                    levels);
  // heavy tails: a few values far out in otherwise quiet blocks
  std::vector<float> x = ggml_vectors::normal(256 * 6, 4);
  for (std::size_t i = 5; i < x.size(); i += 37) x[i] *= 25.0f;
  ggml_vectors::check_nearest_levels_k<g::q2_K>(x, 16, levels);
}

TEST_CASE("q2_K: vec_dot is the dot product of the decoded rows", "[ggml][q2_K]") {
  for (const std::size_t n : {256u, 4096u})
    ggml_vectors::check_vec_dot_k<g::q2_K>(n, static_cast<std::uint32_t>(n));
}

TEST_CASE("q2_K: edge rows", "[ggml][q2_K]") {
  // four levels per 16 values: a step is about a sigma, and the ends of a sub-block's range
  // may be clipped by up to 0.6 steps, so allow one sigma besides half of each value
  ggml_vectors::check_edge_rows_coarse<g::q2_K>(1.0f);
}

TEST_CASE("q2_K: layout: value 128 h + 32 s + l is bits 2 s of qs[32 h + l]; sub-block scales",
          "[ggml][q2_K]") {
  g::block_q2_K b{};
  b.d = qcodec::half(0.5f);
  b.dmin = qcodec::half(0.25f);
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<std::uint8_t>(1 | (j == 5 ? 4 << 4 : 0));
  b.qs[0] = 0x03 | (2 << 2);  // value 0: code 3, value 32: code 2
  b.qs[32 + 7] = 1 << 6;      // value 128 + 96 + 7 = 231: code 1
  float y[256];
  g::dequantize_row_q2_K(&b, y, 256);
  CHECK(y[0] == 1.5f);
  CHECK(y[32] == 1.0f);
  CHECK(y[231] == 0.5f);
  CHECK(y[1] == 0.0f);
  CHECK(y[5 * 16 + 3] == -1.0f);  // sub-block 5: min 4 * 0.25
  static_assert(g::q2_K::bits_per_value * 256 == sizeof(g::block_q2_K) * 8);
}

TEST_CASE("q2_K: NaN and infinite inputs encode deterministically", "[ggml][q2_K]") {
  ggml_vectors::check_nonfinite_rows<g::q2_K>();
}
