// Q5_1 (quant/block/ggml/q5_1.hpp): ggml's known answers, qcodec's encoder against ggml's,
// vec_dot against the dot product of the decoded rows, layout and edge rows.
#include <qcodec/quant/block/ggml/q5_1.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ggml_vectors.hpp"

namespace g = qcodec::ggml;

namespace {

// Relative MSE on input_f32.bin: ggml's encoder (the vectors' README) and qcodec's (measured
// 0.00119; the bound below keeps it from regressing).
constexpr double ggml_rel_mse = 0.00174;
constexpr double qcodec_rel_mse_bound = 0.00120;

std::vector<float> levels(const g::block_q5_1& b) {
  const float d = b.d.to_float(), m = b.m.to_float();
  std::vector<float> v;
  for (int l = 0; l < 32; ++l) {
    const volatile float t = static_cast<float>(l) * d;  // rounded, then added: as the decoder
    v.push_back(t + m);
  }
  return v;
}

// Sum over blocks of |m * s| (the offset term of the dot product, whose s is rounded).
double offset_terms(const std::vector<g::block_q5_1>& x, const std::vector<g::q5_1::dot_block>& y) {
  double t = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i)
    t += std::fabs(double{x[i].m.to_float()} * y[i].s.to_float());
  return t;
}

}  // namespace

TEST_CASE("q5_1: ggml's known answers decode and encode bit for bit",
          "[ggml][q5_1][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q5_1);
  ggml_vectors::check_known_answers(*v);
}

TEST_CASE("q5_1: qcodec's encoder has a lower error than ggml's on the known-answer input",
          "[ggml][q5_1][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q5_1);
  const double ours = ggml_vectors::encoder_rel_mse(*v);
  REQUIRE(ours < ggml_rel_mse);
  REQUIRE(ours <= qcodec_rel_mse_bound);
}

TEST_CASE("q5_1: qcodec's encoder has a lower error than ggml's on Gaussian data", "[ggml][q5_1]") {
  REQUIRE(ggml_vectors::gaussian_ratio<g::q5_1>() <= 0.84);
}

TEST_CASE("q5_1: every value decodes to the nearest level of its block", "[ggml][q5_1]") {
  for (const float sigma : {1.0f, 1e-4f, 40.0f})
    for (const std::uint32_t seed : {1u, 2u, 3u})
      ggml_vectors::check_nearest_levels<g::q5_1>(ggml_vectors::normal(32 * 40, seed, sigma),
                                                  levels);
  // heavy tails: a few values far out in otherwise quiet blocks
  std::vector<float> x = ggml_vectors::normal(32 * 40, 4);
  for (std::size_t i = 5; i < x.size(); i += 37) x[i] *= 25.0f;
  ggml_vectors::check_nearest_levels<g::q5_1>(x, levels);
}

TEST_CASE("q5_1: vec_dot is the dot product of the decoded rows", "[ggml][q5_1]") {
  for (const std::size_t n : {32u, 256u, 4096u})
    ggml_vectors::check_vec_dot<g::q5_1>(n, static_cast<std::uint32_t>(n), offset_terms);
}

TEST_CASE("q5_1: edge rows", "[ggml][q5_1]") { ggml_vectors::check_edge_rows<g::q5_1>(); }

TEST_CASE("q5_1: layout: d, m, qh, qs; values d * q + m", "[ggml][q5_1]") {
  g::block_q5_1 b{};
  b.d = qcodec::half(0.5f);
  b.m = qcodec::half(2.0f);
  const std::uint32_t h = 1u << 20;
  std::memcpy(b.qh, &h, sizeof h);
  b.qs[4] = 0x31;  // value 4: 1, value 20: 3 + 16
  float y[32];
  g::dequantize_row_q5_1(&b, y, 32);
  CHECK(y[4] == 2.5f);
  CHECK(y[20] == 11.5f);
  static_assert(g::q5_1::bits_per_value * 32 == sizeof(g::block_q5_1) * 8);
}

TEST_CASE("q5_1: NaN and infinite inputs encode deterministically", "[ggml][q5_1]") {
  ggml_vectors::check_nonfinite_rows<g::q5_1>();
}
