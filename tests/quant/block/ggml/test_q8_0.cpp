// Q8_0 (quant/block/ggml/q8_0.hpp): ggml's known answers, qcodec's encoder against ggml's,
// vec_dot against the dot product of the decoded rows, layout and edge rows.
#include <qcodec/quant/block/ggml/q8_0.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ggml_vectors.hpp"

namespace g = qcodec::ggml;

namespace {

// Relative MSE on input_f32.bin: ggml's encoder (the vectors' README) and qcodec's (measured
// 3.142e-5; the bound below keeps it from regressing).
constexpr double ggml_rel_mse = 3.15e-5;
constexpr double qcodec_rel_mse_bound = 3.145e-5;

std::vector<float> levels(const g::block_q8_0& b) {
  const float d = b.d.to_float();
  std::vector<float> v;
  for (int l = -127; l <= 127; ++l) v.push_back(static_cast<float>(l) * d);
  return v;
}

// No offset term in this format's dot product.
double offset_terms(const std::vector<g::block_q8_0>&, const std::vector<g::q8_0::dot_block>&) {
  return 0.0;
}

}  // namespace

TEST_CASE("q8_0: ggml's known answers decode and encode bit for bit",
          "[ggml][q8_0][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q8_0);
  ggml_vectors::check_known_answers(*v);
}

TEST_CASE("q8_0: qcodec's encoder has a lower error than ggml's on the known-answer input",
          "[ggml][q8_0][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q8_0);
  const double ours = ggml_vectors::encoder_rel_mse(*v);
  REQUIRE(ours < ggml_rel_mse);
  REQUIRE(ours <= qcodec_rel_mse_bound);
}

TEST_CASE("q8_0: qcodec's encoder has a lower error than ggml's on Gaussian data", "[ggml][q8_0]") {
  REQUIRE(ggml_vectors::gaussian_ratio<g::q8_0>() <= 0.9995);
}

TEST_CASE("q8_0: every value decodes to the nearest level of its block", "[ggml][q8_0]") {
  for (const float sigma : {1.0f, 1e-4f, 40.0f})
    for (const std::uint32_t seed : {1u, 2u, 3u})
      ggml_vectors::check_nearest_levels<g::q8_0>(ggml_vectors::normal(32 * 40, seed, sigma),
                                                  levels);
  // heavy tails: a few values far out in otherwise quiet blocks
  std::vector<float> x = ggml_vectors::normal(32 * 40, 4);
  for (std::size_t i = 5; i < x.size(); i += 37) x[i] *= 25.0f;
  ggml_vectors::check_nearest_levels<g::q8_0>(x, levels);
}

TEST_CASE("q8_0: vec_dot is the dot product of the decoded rows", "[ggml][q8_0]") {
  for (const std::size_t n : {32u, 256u, 4096u})
    ggml_vectors::check_vec_dot<g::q8_0>(n, static_cast<std::uint32_t>(n), offset_terms);
}

TEST_CASE("q8_0: edge rows", "[ggml][q8_0]") { ggml_vectors::check_edge_rows<g::q8_0>(); }

TEST_CASE("q8_0: layout: d then one int8 per value", "[ggml][q8_0]") {
  g::block_q8_0 b{};
  b.d = qcodec::half(0.125f);
  b.qs[0] = -128;
  b.qs[31] = 127;
  float y[32];
  g::dequantize_row_q8_0(&b, y, 32);
  CHECK(y[0] == -16.0f);
  CHECK(y[31] == 15.875f);
  static_assert(g::q8_0::bits_per_value * 32 == sizeof(g::block_q8_0) * 8);
}

TEST_CASE("q8_0: no value decodes further from its input than under ggml's encoder",
          "[ggml][q8_0]") {
  // Both encoders store the same scale; qcodec rounds against the decoded one.
  for (const float sigma : {1.0f, 1e-3f, 250.0f}) {
    const std::vector<float> x = ggml_vectors::normal(4096, 17, sigma);
    std::vector<g::block_q8_0> ours(x.size() / 32), ggml(x.size() / 32);
    g::quantize_row_q8_0(x.data(), ours.data(), 4096);
    g::quantize_row_q8_0_ref(x.data(), ggml.data(), 4096);
    const auto yo = ggml_vectors::decode<g::q8_0>(ours), yg = ggml_vectors::decode<g::q8_0>(ggml);
    for (std::size_t i = 0; i < x.size(); ++i) {
      REQUIRE(ours[i / 32].d.bits == ggml[i / 32].d.bits);
      REQUIRE(std::fabs(yo[i] - x[i]) <= std::fabs(yg[i] - x[i]));
    }
  }
}

TEST_CASE("q8_0: NaN and infinite inputs encode deterministically", "[ggml][q8_0]") {
  ggml_vectors::check_nonfinite_rows<g::q8_0>();
}
