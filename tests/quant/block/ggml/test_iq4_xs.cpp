// IQ4_XS (quant/block/ggml/iq4_xs.hpp): ggml's known answers, qcodec's encoder against ggml's,
// vec_dot against the dot product of the decoded rows, layout and edge rows.
#include <qcodec/quant/block/ggml/iq4_xs.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ggml_vectors.hpp"

namespace g = qcodec::ggml;

namespace {

// Relative MSE on input_f32.bin: ggml's encoder (the vectors' README) and the bound qcodec's
// keeps (below 1x of ggml's; measured 0.933x).
constexpr double ggml_rel_mse = 0.00635;
constexpr double qcodec_ratio_bound = 0.948;

std::vector<float> levels(const g::block_iq4_xs& b, int s) {
  const float dl = b.d.to_float() * static_cast<float>(g::detail::iq4_xs_scale(b, s) - 32);
  std::vector<float> v;
  for (int q = 0; q < 16; ++q) v.push_back(dl * static_cast<float>(g::kvalues_iq4nl[q]));
  return v;
}

}  // namespace

TEST_CASE("iq4_xs: ggml's known answers decode bit for bit", "[ggml][iq4_xs][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::iq4_xs);
  ggml_vectors::check_known_answers(*v);
}

TEST_CASE("iq4_xs: qcodec's encoder has a lower error than ggml's on the known-answer input",
          "[ggml][iq4_xs][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::iq4_xs);
  const double ours = ggml_vectors::encoder_rel_mse(*v);
  INFO("iq4_xs: qcodec " << ours << " vs ggml " << ggml_rel_mse);
  REQUIRE(ours < ggml_rel_mse);
  REQUIRE(ours <= qcodec_ratio_bound * ggml_rel_mse);
}

TEST_CASE("iq4_xs: qcodec's encoder has a lower error than ggml's on Gaussian data", "[ggml][iq4_xs]") {
  // measured 0.933x
  REQUIRE(ggml_vectors::gaussian_ratio<g::iq4_xs>() <= 0.948);
}

TEST_CASE("iq4_xs: every value decodes to the nearest level of its sub-block", "[ggml][iq4_xs]") {
  for (const float sigma : {1.0f, 1e-4f, 40.0f})
    for (const std::uint32_t seed : {1u, 2u})
      ggml_vectors::check_nearest_levels_k<g::iq4_xs>(ggml_vectors::normal(256 * 6, seed, sigma), 32,
                                                    levels);
  // heavy tails: a few values far out in otherwise quiet blocks
  std::vector<float> x = ggml_vectors::normal(256 * 6, 4);
  for (std::size_t i = 5; i < x.size(); i += 37) x[i] *= 25.0f;
  ggml_vectors::check_nearest_levels_k<g::iq4_xs>(x, 32, levels);
}

TEST_CASE("iq4_xs: vec_dot is the dot product of the decoded rows", "[ggml][iq4_xs]") {
  for (const std::size_t n : {256u, 4096u})
    ggml_vectors::check_vec_dot_k<g::iq4_xs>(n, static_cast<std::uint32_t>(n));
}

TEST_CASE("iq4_xs: edge rows", "[ggml][iq4_xs]") { ggml_vectors::check_edge_rows<g::iq4_xs>(); }

TEST_CASE("iq4_xs: layout: 6-bit scales split in scales_l / scales_h, IQ4_NL nibbles",
          "[ggml][iq4_xs]") {
  g::block_iq4_xs b{};
  b.d = qcodec::half(0.5f);
  int ls[8] = {1, 1, 1, 1, 1, 1, 1, -20};
  g::detail::iq4_xs_set_scales(ls, b);
  CHECK(g::detail::iq4_xs_scale(b, 7) == 12);
  for (auto& v : b.qs) v = 0x88;  // level 1 everywhere
  b.qs[0] = 0xF0;                 // value 0: level -127, value 16: 113
  b.qs[16 * 7 + 3] = 0x08;        // value 224 + 19 = 243: level -127
  float y[256];
  g::dequantize_row_iq4_xs(&b, y, 256);
  CHECK(y[0] == -63.5f);
  CHECK(y[16] == 56.5f);
  CHECK(y[243] == 1270.0f);
  CHECK(y[1] == 0.5f);
  static_assert(g::iq4_xs::bits_per_value * 256 == sizeof(g::block_iq4_xs) * 8);
}

TEST_CASE("iq4_xs: NaN and infinite inputs encode deterministically", "[ggml][iq4_xs]") {
  ggml_vectors::check_nonfinite_rows<g::iq4_xs>();
}
