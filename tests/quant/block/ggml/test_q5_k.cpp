// Q5_K (quant/block/ggml/q5_k.hpp): ggml's known answers, qcodec's encoder against ggml's,
// vec_dot against the dot product of the decoded rows, layout and edge rows.
#include <qcodec/quant/block/ggml/q5_k.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ggml_vectors.hpp"

namespace g = qcodec::ggml;

namespace {

// Relative MSE on input_f32.bin: ggml's encoder (the vectors' README) and the bound qcodec's
// keeps (0.9x of ggml's; measured 0.771x).
constexpr double ggml_rel_mse = 0.0016;
constexpr double qcodec_ratio_bound = 0.9;

std::vector<float> levels(const g::block_q5_K& b, int s) {
  std::uint8_t sc, m;
  g::detail::get_scale_min_k4(s, b.scales, sc, m);
  const float dl = b.d.to_float() * sc, ml = b.dmin.to_float() * m;
  std::vector<float> v;
  for (int q = 0; q < 32; ++q) v.push_back(dl * static_cast<float>(q) - ml);
  return v;
}

}  // namespace

TEST_CASE("q5_K: ggml's known answers decode bit for bit", "[ggml][q5_K][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q5_K);
  ggml_vectors::check_known_decode(*v);
  // qcodec's copy of ggml's reference encoder reproduces every block (nearest_int keeps its
  // argument unfused, as ggml's C code computes it).
  const std::size_t same = ggml_vectors::ref_blocks_matching(*v);
  CHECK(same == 8);
}

TEST_CASE("q5_K: qcodec's encoder has a lower error than ggml's on the known-answer input",
          "[ggml][q5_K][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q5_K);
  const double ours = ggml_vectors::encoder_rel_mse(*v);
  INFO("q5_K: qcodec " << ours << " vs ggml " << ggml_rel_mse);
  REQUIRE(ours < ggml_rel_mse);
  REQUIRE(ours <= qcodec_ratio_bound * ggml_rel_mse);
}

TEST_CASE("q5_K: qcodec's encoder has a lower error than ggml's on Gaussian data", "[ggml][q5_K]") {
  // measured 0.918x
  REQUIRE(ggml_vectors::gaussian_ratio<g::q5_K>() <= 0.933);
}

TEST_CASE("q5_K: every value decodes to the nearest level of its sub-block", "[ggml][q5_K]") {
  for (const float sigma : {1.0f, 1e-4f, 40.0f})
    for (const std::uint32_t seed : {1u, 2u})
      ggml_vectors::check_nearest_levels_k<g::q5_K>(ggml_vectors::normal(256 * 6, seed, sigma), 32,
                                                    levels);
  // heavy tails: a few values far out in otherwise quiet blocks
  std::vector<float> x = ggml_vectors::normal(256 * 6, 4);
  for (std::size_t i = 5; i < x.size(); i += 37) x[i] *= 25.0f;
  ggml_vectors::check_nearest_levels_k<g::q5_K>(x, 32, levels);
}

TEST_CASE("q5_K: vec_dot is the dot product of the decoded rows", "[ggml][q5_K]") {
  for (const std::size_t n : {256u, 4096u})
    ggml_vectors::check_vec_dot_k<g::q5_K>(n, static_cast<std::uint32_t>(n));
}

TEST_CASE("q5_K: edge rows", "[ggml][q5_K]") { ggml_vectors::check_edge_rows<g::q5_K>(); }

TEST_CASE("q5_K: layout: fifth bit of value 64 c + l at bit 2 c of qh[l]", "[ggml][q5_K]") {
  g::block_q5_K b{};
  b.d = qcodec::half(0.5f);
  b.dmin = qcodec::half(0.25f);
  std::uint8_t ls[8] = {1, 1, 1, 1, 1, 1, 1, 1}, lm[8] = {0, 0, 0, 0, 0, 0, 0, 4};
  g::detail::set_scales_mins_k4(ls, lm, b.scales);
  b.qs[0] = 0x3F;      // value 0: low 15, value 32: low 3
  b.qh[0] = 0x01;      // value 0: +16
  b.qh[3] = 0x80;      // value 192 + 32 + 3 = 227: +16
  float y[256];
  g::dequantize_row_q5_K(&b, y, 256);
  CHECK(y[0] == 15.5f);
  CHECK(y[32] == 1.5f);
  CHECK(y[227] == 7.0f);
  static_assert(g::q5_K::bits_per_value * 256 == sizeof(g::block_q5_K) * 8);
}

TEST_CASE("q5_K: NaN and infinite inputs encode deterministically", "[ggml][q5_K]") {
  ggml_vectors::check_nonfinite_rows<g::q5_K>();
}
