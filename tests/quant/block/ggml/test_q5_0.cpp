// Q5_0 (quant/block/ggml/q5_0.hpp): ggml's known answers, qcodec's encoder against ggml's,
// vec_dot against the dot product of the decoded rows, layout and edge rows.
#include <qcodec/quant/block/ggml/q5_0.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ggml_vectors.hpp"

namespace g = qcodec::ggml;

namespace {

// Relative MSE on input_f32.bin: ggml's encoder (the vectors' README) and qcodec's (measured
// 0.00208; the bound below keeps it from regressing).
constexpr double ggml_rel_mse = 0.00223;
constexpr double qcodec_rel_mse_bound = 0.00210;

std::vector<float> levels(const g::block_q5_0& b) {
  const float d = b.d.to_float();
  std::vector<float> v;
  for (int l = 0; l < 32; ++l) v.push_back(static_cast<float>(l - 16) * d);
  return v;
}

// No offset term in this format's dot product.
double offset_terms(const std::vector<g::block_q5_0>&, const std::vector<g::q5_0::dot_block>&) {
  return 0.0;
}

}  // namespace

TEST_CASE("q5_0: ggml's known answers decode and encode bit for bit",
          "[ggml][q5_0][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q5_0);
  ggml_vectors::check_known_answers(*v);
}

TEST_CASE("q5_0: qcodec's encoder has a lower error than ggml's on the known-answer input",
          "[ggml][q5_0][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q5_0);
  const double ours = ggml_vectors::encoder_rel_mse(*v);
  REQUIRE(ours < ggml_rel_mse);
  REQUIRE(ours <= qcodec_rel_mse_bound);
}

TEST_CASE("q5_0: qcodec's encoder has a lower error than ggml's on Gaussian data", "[ggml][q5_0]") {
  REQUIRE(ggml_vectors::gaussian_ratio<g::q5_0>() <= 0.91);
}

TEST_CASE("q5_0: every value decodes to the nearest level of its block", "[ggml][q5_0]") {
  for (const float sigma : {1.0f, 1e-4f, 40.0f})
    for (const std::uint32_t seed : {1u, 2u, 3u})
      ggml_vectors::check_nearest_levels<g::q5_0>(ggml_vectors::normal(32 * 40, seed, sigma),
                                                  levels);
  // heavy tails: a few values far out in otherwise quiet blocks
  std::vector<float> x = ggml_vectors::normal(32 * 40, 4);
  for (std::size_t i = 5; i < x.size(); i += 37) x[i] *= 25.0f;
  ggml_vectors::check_nearest_levels<g::q5_0>(x, levels);
}

TEST_CASE("q5_0: vec_dot is the dot product of the decoded rows", "[ggml][q5_0]") {
  for (const std::size_t n : {32u, 256u, 4096u})
    ggml_vectors::check_vec_dot<g::q5_0>(n, static_cast<std::uint32_t>(n), offset_terms);
}

TEST_CASE("q5_0: edge rows", "[ggml][q5_0]") { ggml_vectors::check_edge_rows<g::q5_0>(); }

TEST_CASE("q5_0: layout: the fifth bit of value i is bit i of the little-endian qh",
          "[ggml][q5_0]") {
  g::block_q5_0 b{};
  b.d = qcodec::half(1.0f);
  for (auto& q : b.qs) q = 0x00;
  const std::uint32_t h = (1u << 0) | (1u << 17) | (1u << 31);
  std::memcpy(b.qh, &h, sizeof h);
  b.qs[1] = 0x0F;  // value 1: low bits 15, value 17: low bits 0 (+ fifth bit)
  float y[32];
  g::dequantize_row_q5_0(&b, y, 32);
  CHECK(y[0] == 0.0f);   // 16 - 16
  CHECK(y[1] == -1.0f);  // 15 - 16
  CHECK(y[17] == 0.0f);  // 16 - 16
  CHECK(y[31] == 0.0f);
  CHECK(y[16] == -16.0f);
  static_assert(g::q5_0::bits_per_value * 32 == sizeof(g::block_q5_0) * 8);
}

TEST_CASE("q5_0: NaN and infinite inputs encode deterministically", "[ggml][q5_0]") {
  ggml_vectors::check_nonfinite_rows<g::q5_0>();
}
