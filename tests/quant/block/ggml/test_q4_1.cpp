// Q4_1 (quant/block/ggml/q4_1.hpp): ggml's known answers, qcodec's encoder against ggml's,
// vec_dot against the dot product of the decoded rows, layout and edge rows.
#include <qcodec/quant/block/ggml/q4_1.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ggml_vectors.hpp"

namespace g = qcodec::ggml;

namespace {

// Relative MSE on input_f32.bin: ggml's encoder (the vectors' README) and qcodec's (measured
// 0.00548; the bound below keeps it from regressing).
constexpr double ggml_rel_mse = 0.00718;
constexpr double qcodec_rel_mse_bound = 0.0055;

std::vector<float> levels(const g::block_q4_1& b) {
  const float d = b.d.to_float(), m = b.m.to_float();
  std::vector<float> v;
  for (int l = 0; l < 16; ++l) {
    const volatile float t = static_cast<float>(l) * d;  // rounded, then added: as the decoder
    v.push_back(t + m);
  }
  return v;
}

// Sum over blocks of |m * s| (the offset term of the dot product, whose s is rounded).
double offset_terms(const std::vector<g::block_q4_1>& x, const std::vector<g::q4_1::dot_block>& y) {
  double t = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i)
    t += std::fabs(double{x[i].m.to_float()} * y[i].s.to_float());
  return t;
}

}  // namespace

TEST_CASE("q4_1: ggml's known answers decode and encode bit for bit",
          "[ggml][q4_1][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q4_1);
  ggml_vectors::check_known_answers(*v);
}

TEST_CASE("q4_1: qcodec's encoder has a lower error than ggml's on the known-answer input",
          "[ggml][q4_1][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q4_1);
  const double ours = ggml_vectors::encoder_rel_mse(*v);
  REQUIRE(ours < ggml_rel_mse);
  REQUIRE(ours <= qcodec_rel_mse_bound);
}

TEST_CASE("q4_1: qcodec's encoder has a lower error than ggml's on Gaussian data", "[ggml][q4_1]") {
  REQUIRE(ggml_vectors::gaussian_ratio<g::q4_1>() <= 0.84);
}

TEST_CASE("q4_1: every value decodes to the nearest level of its block", "[ggml][q4_1]") {
  for (const float sigma : {1.0f, 1e-4f, 40.0f})
    for (const std::uint32_t seed : {1u, 2u, 3u})
      ggml_vectors::check_nearest_levels<g::q4_1>(ggml_vectors::normal(32 * 40, seed, sigma),
                                                  levels);
  // heavy tails: a few values far out in otherwise quiet blocks
  std::vector<float> x = ggml_vectors::normal(32 * 40, 4);
  for (std::size_t i = 5; i < x.size(); i += 37) x[i] *= 25.0f;
  ggml_vectors::check_nearest_levels<g::q4_1>(x, levels);
}

TEST_CASE("q4_1: vec_dot is the dot product of the decoded rows", "[ggml][q4_1]") {
  for (const std::size_t n : {32u, 256u, 4096u})
    ggml_vectors::check_vec_dot<g::q4_1>(n, static_cast<std::uint32_t>(n), offset_terms);
}

TEST_CASE("q4_1: edge rows", "[ggml][q4_1]") { ggml_vectors::check_edge_rows<g::q4_1>(); }

TEST_CASE("q4_1: layout: d, m, then codes as in Q4_0; values d * q + m", "[ggml][q4_1]") {
  g::block_q4_1 b{};
  b.d = qcodec::half(0.25f);
  b.m = qcodec::half(-1.0f);
  b.qs[3] = 0xF2;  // value 3: code 2, value 19: code 15
  float y[32];
  g::dequantize_row_q4_1(&b, y, 32);
  CHECK(y[3] == -0.5f);
  CHECK(y[19] == 2.75f);
  CHECK(y[0] == -1.0f);
  static_assert(g::q4_1::bits_per_value * 32 == sizeof(g::block_q4_1) * 8);
}

TEST_CASE("q4_1: NaN and infinite inputs encode deterministically", "[ggml][q4_1]") {
  ggml_vectors::check_nonfinite_rows<g::q4_1>();
}
