// MXFP4 (quant/block/ggml/mxfp4.hpp): ggml's known answers, qcodec's encoder against ggml's,
// vec_dot against the dot product of the decoded rows, layout and edge rows.
#include <qcodec/quant/block/ggml/mxfp4.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ggml_vectors.hpp"

namespace g = qcodec::ggml;

namespace {

// Relative MSE on input_f32.bin: ggml's encoder (the vectors' README) and qcodec's (measured
// 0.01238; the bound below keeps it from regressing).
constexpr double ggml_rel_mse = 0.0149;
constexpr double qcodec_rel_mse_bound = 0.0124;

std::vector<float> levels(const g::block_mxfp4& b) {
  const float d = g::e8m0_to_float_half(b.e);
  std::vector<float> v;
  for (const std::int8_t l : g::kvalues_mxfp4) v.push_back(static_cast<float>(l) * d);
  return v;
}

// No offset term in this format's dot product.
double offset_terms(const std::vector<g::block_mxfp4>&, const std::vector<g::mxfp4::dot_block>&) {
  return 0.0;
}

}  // namespace

TEST_CASE("mxfp4: ggml's known answers decode and encode bit for bit",
          "[ggml][mxfp4][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::mxfp4);
  ggml_vectors::check_known_answers(*v);
}

TEST_CASE("mxfp4: qcodec's encoder has a lower error than ggml's on the known-answer input",
          "[ggml][mxfp4][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::mxfp4);
  const double ours = ggml_vectors::encoder_rel_mse(*v);
  REQUIRE(ours < ggml_rel_mse);
  REQUIRE(ours <= qcodec_rel_mse_bound);
}

TEST_CASE("mxfp4: qcodec's encoder has a lower error than ggml's on Gaussian data",
          "[ggml][mxfp4]") {
  REQUIRE(ggml_vectors::gaussian_ratio<g::mxfp4>() <= 0.96);
}

TEST_CASE("mxfp4: every value decodes to the nearest level of its block", "[ggml][mxfp4]") {
  for (const float sigma : {1.0f, 1e-4f, 40.0f})
    for (const std::uint32_t seed : {1u, 2u, 3u})
      ggml_vectors::check_nearest_levels<g::mxfp4>(ggml_vectors::normal(32 * 40, seed, sigma),
                                                   levels);
  // heavy tails: a few values far out in otherwise quiet blocks
  std::vector<float> x = ggml_vectors::normal(32 * 40, 4);
  for (std::size_t i = 5; i < x.size(); i += 37) x[i] *= 25.0f;
  ggml_vectors::check_nearest_levels<g::mxfp4>(x, levels);
}

TEST_CASE("mxfp4: vec_dot is the dot product of the decoded rows", "[ggml][mxfp4]") {
  for (const std::size_t n : {32u, 256u, 4096u})
    ggml_vectors::check_vec_dot<g::mxfp4>(n, static_cast<std::uint32_t>(n), offset_terms);
}

TEST_CASE("mxfp4: edge rows", "[ggml][mxfp4]") { ggml_vectors::check_edge_rows<g::mxfp4>(); }

TEST_CASE("mxfp4: layout: E8M0 exponent, then E2M1 codes (sign in bit 3)", "[ggml][mxfp4]") {
  CHECK(g::e8m0_to_float_half(127) == 0.5f);
  CHECK(g::e8m0_to_float_half(128) == 1.0f);
  CHECK(g::e8m0_to_float_half(1) == std::ldexp(1.0f, -127));
  CHECK(g::e8m0_to_float_half(0) == std::ldexp(1.0f, -128));
  CHECK(g::e8m0_to_float_half(254) == std::ldexp(1.0f, 126));
  g::block_mxfp4 b{};
  b.e = 128;       // d = 1: table values are twice the E2M1 values
  b.qs[0] = 0xF7;  // value 0: code 7 (+12), value 16: code 15 (-12)
  b.qs[2] = 0x89;  // value 2: code 9 (-1), value 18: code 8 (-0)
  float y[32];
  g::dequantize_row_mxfp4(&b, y, 32);
  CHECK(y[0] == 12.0f);
  CHECK(y[16] == -12.0f);
  CHECK(y[2] == -1.0f);
  CHECK(y[18] == 0.0f);
  static_assert(g::mxfp4::bits_per_value * 32 == sizeof(g::block_mxfp4) * 8);
}

TEST_CASE("mxfp4: NaN and infinite inputs encode deterministically", "[ggml][mxfp4]") {
  ggml_vectors::check_nonfinite_rows<g::mxfp4>();
}
