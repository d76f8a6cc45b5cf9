// IQ4_NL (quant/block/ggml/iq4_nl.hpp): ggml's known answers, qcodec's encoder against ggml's,
// vec_dot against the dot product of the decoded rows, layout and edge rows.
#include <qcodec/quant/block/ggml/iq4_nl.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ggml_vectors.hpp"

namespace g = qcodec::ggml;

namespace {

// Relative MSE on input_f32.bin: ggml's encoder (the vectors' README) and qcodec's (measured
// 0.00588; the bound below keeps it from regressing).
constexpr double ggml_rel_mse = 0.00624;
constexpr double qcodec_rel_mse_bound = 0.00590;

std::vector<float> levels(const g::block_iq4_nl& b) {
  const float d = b.d.to_float();
  std::vector<float> v;
  for (const std::int8_t l : g::kvalues_iq4nl) v.push_back(d * static_cast<float>(l));
  return v;
}

// No offset term in this format's dot product.
double offset_terms(const std::vector<g::block_iq4_nl>&, const std::vector<g::iq4_nl::dot_block>&) {
  return 0.0;
}

}  // namespace

TEST_CASE("iq4_nl: ggml's known answers decode and encode bit for bit",
          "[ggml][iq4_nl][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::iq4_nl);
  ggml_vectors::check_known_answers(*v);
}

TEST_CASE("iq4_nl: qcodec's encoder has a lower error than ggml's on the known-answer input",
          "[ggml][iq4_nl][known-answer]") {
  QCODEC_GGML_VECTORS_OR_SKIP(v, g::iq4_nl);
  const double ours = ggml_vectors::encoder_rel_mse(*v);
  REQUIRE(ours < ggml_rel_mse);
  REQUIRE(ours <= qcodec_rel_mse_bound);
}

TEST_CASE("iq4_nl: qcodec's encoder has a lower error than ggml's on Gaussian data",
          "[ggml][iq4_nl]") {
  REQUIRE(ggml_vectors::gaussian_ratio<g::iq4_nl>() <= 0.95);
}

TEST_CASE("iq4_nl: every value decodes to the nearest level of its block", "[ggml][iq4_nl]") {
  for (const float sigma : {1.0f, 1e-4f, 40.0f})
    for (const std::uint32_t seed : {1u, 2u, 3u})
      ggml_vectors::check_nearest_levels<g::iq4_nl>(ggml_vectors::normal(32 * 40, seed, sigma),
                                                    levels);
  // heavy tails: a few values far out in otherwise quiet blocks
  std::vector<float> x = ggml_vectors::normal(32 * 40, 4);
  for (std::size_t i = 5; i < x.size(); i += 37) x[i] *= 25.0f;
  ggml_vectors::check_nearest_levels<g::iq4_nl>(x, levels);
}

TEST_CASE("iq4_nl: vec_dot is the dot product of the decoded rows", "[ggml][iq4_nl]") {
  for (const std::size_t n : {32u, 256u, 4096u})
    ggml_vectors::check_vec_dot<g::iq4_nl>(n, static_cast<std::uint32_t>(n), offset_terms);
}

TEST_CASE("iq4_nl: edge rows", "[ggml][iq4_nl]") { ggml_vectors::check_edge_rows<g::iq4_nl>(); }

TEST_CASE("iq4_nl: layout: nibbles index kvalues_iq4nl", "[ggml][iq4_nl]") {
  g::block_iq4_nl b{};
  b.d = qcodec::half(2.0f);
  b.qs[0] = 0xF0;  // value 0: level 0 (-127), value 16: level 15 (113)
  b.qs[7] = 0x78;  // value 7: level 8 (1), value 23: level 7 (-10)
  float y[32];
  g::dequantize_row_iq4_nl(&b, y, 32);
  CHECK(y[0] == -254.0f);
  CHECK(y[16] == 226.0f);
  CHECK(y[7] == 2.0f);
  CHECK(y[23] == -20.0f);
  static_assert(g::iq4_nl::bits_per_value * 32 == sizeof(g::block_iq4_nl) * 8);
}

TEST_CASE("iq4_nl: NaN and infinite inputs encode deterministically", "[ggml][iq4_nl]") {
  ggml_vectors::check_nonfinite_rows<g::iq4_nl>();
}
