// Q3_K (quant/block/ggml/q3_k.hpp): ggml's known answers, qcodec's encoder against ggml's,
// vec_dot against the dot product of the decoded rows, layout and edge rows.
#include <qcodec/quant/block/ggml/q3_k.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ggml_vectors.hpp"

namespace g = qcodec::ggml;

namespace {

// Relative MSE on input_f32.bin: ggml's encoder (the vectors' README) and the bound qcodec's
// keeps (below 1x of ggml's; measured 0.903x).
constexpr double ggml_rel_mse = 0.0241;
constexpr double qcodec_ratio_bound = 0.918;

std::vector<float> levels(const g::block_q3_K& b, int s) {
  int sc[16];
  g::detail::unpack_q3_K_scales(b.scales, sc);
  const float dl = b.d.to_float() * static_cast<float>(sc[s] - 32);
  std::vector<float> v;
  for (int q = -4; q < 4; ++q) v.push_back(dl * static_cast<float>(q));
  return v;
}

}  // namespace

TEST_CASE("q3_K: ggml's known answers decode bit for bit", "[ggml][q3_K][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q3_K);
  ggml_vectors::check_known_answers(*v);
}

TEST_CASE("q3_K: qcodec's encoder has a lower error than ggml's on the known-answer input",
          "[ggml][q3_K][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::q3_K);
  const double ours = ggml_vectors::encoder_rel_mse(*v);
  INFO("q3_K: qcodec " << ours << " vs ggml " << ggml_rel_mse);
  REQUIRE(ours < ggml_rel_mse);
  REQUIRE(ours <= qcodec_ratio_bound * ggml_rel_mse);
}

TEST_CASE("q3_K: qcodec's encoder has a lower error than ggml's on Gaussian data", "[ggml][q3_K]") {
  // measured 0.905x
  REQUIRE(ggml_vectors::gaussian_ratio<g::q3_K>() <= 0.92);
}

TEST_CASE("q3_K: every value decodes to the nearest level of its sub-block", "[ggml][q3_K]") {
  for (const float sigma : {1.0f, 1e-4f, 40.0f})
    for (const std::uint32_t seed : {1u, 2u})
      ggml_vectors::check_nearest_levels_k<g::q3_K>(ggml_vectors::normal(256 * 6, seed, sigma), 16,
                                                    levels);
  // heavy tails: a few values far out in otherwise quiet blocks
  std::vector<float> x = ggml_vectors::normal(256 * 6, 4);
  for (std::size_t i = 5; i < x.size(); i += 37) x[i] *= 25.0f;
  ggml_vectors::check_nearest_levels_k<g::q3_K>(x, 16, levels);
}

TEST_CASE("q3_K: vec_dot is the dot product of the decoded rows", "[ggml][q3_K]") {
  for (const std::size_t n : {256u, 4096u})
    ggml_vectors::check_vec_dot_k<g::q3_K>(n, static_cast<std::uint32_t>(n));
}

TEST_CASE("q3_K: edge rows", "[ggml][q3_K]") { ggml_vectors::check_edge_rows<g::q3_K>(); }

TEST_CASE("q3_K: layout: low bits as Q2_K, third bit 4 h + s of hmask[l], packed scales",
          "[ggml][q3_K]") {
  g::block_q3_K b{};
  b.d = qcodec::half(0.5f);
  int ls[16];
  for (int j = 0; j < 16; ++j) ls[j] = 32 + (j == 9 ? -2 : 1);
  g::detail::pack_q3_K_scales(ls, b.scales);
  b.qs[0] = 0x03;          // value 0: low bits 3
  b.hmask[0] = 0x01;       // value 0: third bit set -> code 7 -> +3
  b.qs[32 + 4] = 2 << 2;   // value 128 + 32 + 4 = 164 (sub-block 10): low bits 2, no third bit
  b.hmask[16 + 3] = 0x10;  // value 128 + 16 + 3 = 147 (sub-block 9): third bit, low 0 -> 0
  float y[256];
  g::dequantize_row_q3_K(&b, y, 256);
  CHECK(y[0] == 1.5f);
  CHECK(y[164] == -1.0f);
  CHECK(y[147] == 0.0f);
  CHECK(y[146] == 4.0f);   // sub-block 9 scale -2 * 0.5, code -4
  CHECK(y[1] == -2.0f);
  static_assert(g::q3_K::bits_per_value * 256 == sizeof(g::block_q3_K) * 8);
}

TEST_CASE("q3_K: NaN and infinite inputs encode deterministically", "[ggml][q3_K]") {
  ggml_vectors::check_nonfinite_rows<g::q3_K>();
}
