// Q4_K (quant/block/ggml/q4_k.hpp): ggml's known answers, qcodec's encoder against ggml's,
// vec_dot against the dot product of the decoded rows, layout and edge rows.
#include <qcodec/quant/block/ggml/q4_k.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ggml_vectors.hpp"

namespace g = qcodec::ggml;

namespace {

// Relative MSE on input_f32.bin: ggml's encoder (the vectors' README) and the bound qcodec's
// keeps (below 1x of ggml's; measured 0.963x).
constexpr double ggml_rel_mse = 0.00542;
constexpr double qcodec_ratio_bound = 0.978;

std::vector<float> levels(const g::block_q4_K& b, int s) {
  std::uint8_t sc, m;
  g::detail::get_scale_min_k4(s, b.scales, sc, m);
  const float dl = b.d.to_float() * sc, ml = b.dmin.to_float() * m;
  std::vector<float> v;
  for (int q = 0; q < 16; ++q) v.push_back(dl * static_cast<float>(q) - ml);
  return v;
}

}  // namespace

TEST_CASE("q4_K: ggml's known answers decode bit for bit", "[ggml][q4_K][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q4_K);
  ggml_vectors::check_known_answers(*v);
}

TEST_CASE("q4_K: qcodec's encoder has a lower error than ggml's on the known-answer input",
          "[ggml][q4_K][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q4_K);
  const double ours = ggml_vectors::encoder_rel_mse(*v);
  INFO("q4_K: qcodec " << ours << " vs ggml " << ggml_rel_mse);
  REQUIRE(ours < ggml_rel_mse);
  REQUIRE(ours <= qcodec_ratio_bound * ggml_rel_mse);
}

TEST_CASE("q4_K: qcodec's encoder has a lower error than ggml's on Gaussian data", "[ggml][q4_K]") {
  // measured 0.970x
  REQUIRE(ggml_vectors::gaussian_ratio<g::q4_K>() <= 0.985);
}

TEST_CASE("q4_K: every value decodes to the nearest level of its sub-block", "[ggml][q4_K]") {
  for (const float sigma : {1.0f, 1e-4f, 40.0f})
    for (const std::uint32_t seed : {1u, 2u})
      ggml_vectors::check_nearest_levels_k<g::q4_K>(ggml_vectors::normal(256 * 6, seed, sigma), 32,
                                                    levels);
  // heavy tails: a few values far out in otherwise quiet blocks
  std::vector<float> x = ggml_vectors::normal(256 * 6, 4);
  for (std::size_t i = 5; i < x.size(); i += 37) x[i] *= 25.0f;
  ggml_vectors::check_nearest_levels_k<g::q4_K>(x, 32, levels);
}

TEST_CASE("q4_K: vec_dot is the dot product of the decoded rows", "[ggml][q4_K]") {
  for (const std::size_t n : {256u, 4096u})
    ggml_vectors::check_vec_dot_k<g::q4_K>(n, static_cast<std::uint32_t>(n));
}

TEST_CASE("q4_K: edge rows", "[ggml][q4_K]") { ggml_vectors::check_edge_rows<g::q4_K>(); }

TEST_CASE("q4_K: layout: value 64 c + l low nibble of qs[32 c + l], 6-bit scales and mins",
          "[ggml][q4_K]") {
  g::block_q4_K b{};
  b.d = qcodec::half(0.5f);
  b.dmin = qcodec::half(0.25f);
  std::uint8_t ls[8] = {1, 1, 1, 1, 1, 40, 1, 1}, lm[8] = {0, 0, 0, 0, 0, 0, 0, 33};
  g::detail::set_scales_mins_k4(ls, lm, b.scales);
  b.qs[0] = 0x3F;       // value 0: 15, value 32: 3
  b.qs[64 + 1] = 0x20;  // value 128 + 32 + 1 = 161 (sub-block 5): 2
  float y[256];
  g::dequantize_row_q4_K(&b, y, 256);
  CHECK(y[0] == 7.5f);
  CHECK(y[32] == 1.5f);
  CHECK(y[161] == 40.0f);
  CHECK(y[255] == -8.25f);
  static_assert(g::q4_K::bits_per_value * 256 == sizeof(g::block_q4_K) * 8);
}

TEST_CASE("q4_K: NaN and infinite inputs encode deterministically", "[ggml][q4_K]") {
  ggml_vectors::check_nonfinite_rows<g::q4_K>();
}
