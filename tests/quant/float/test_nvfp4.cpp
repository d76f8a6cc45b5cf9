// NVFP4 (quant/float/nvfp4.hpp): NVIDIA's scale recipe, every decoded value the nearest point of
// the block grid (or clipped at 6 d), the error bound |x - y| <= d, the policy.
#include <qcodec/quant/concepts.hpp>
#include <qcodec/quant/float/nvfp4.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "../../support/catch.hpp"

using namespace qcodec;

static_assert(Quantizer<nvfp4_quantizer>);

namespace {
std::vector<float> normal(std::size_t n, std::uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}
}  // namespace

TEST_CASE("nvfp4: global scale is absmax / (6 * 448)", "[float][nvfp4]") {
  const float x[4] = {1.0f, -2688.0f, 3.0f, 0.0f};
  CHECK(nvfp4_global_scale(x, 4) == 1.0f);
  const float z[2] = {0.0f, 0.0f};
  CHECK(nvfp4_global_scale(z, 2) == 1.0f);
  const float y[1] = {26.88f};
  CHECK(nvfp4_global_scale(y, 1) == 26.88f / 2688.0f);
}

TEST_CASE("nvfp4: NVIDIA's recipe: nearest block grid points, within d", "[float][nvfp4]") {
  for (const float sigma : {1.0f, 1e-3f, 1e4f}) {
    auto x = normal(16 * 256, 3, sigma);
    for (std::size_t i = 7; i < x.size(); i += 61) x[i] *= 8.0f;  // outliers
    const float g = nvfp4_global_scale(x.data(), x.size());
    std::vector<nvfp4_block> b(x.size() / 16);
    std::vector<float> y(x.size());
    quantize_row_nvfp4(x.data(), b.data(), x.size(), g, nvfp4_scale_rule::nvidia);
    dequantize_row_nvfp4(b.data(), y.data(), x.size(), g);
    double err = 0, sig = 0;
    for (std::size_t blk = 0; blk < b.size(); ++blk) {
      float amax = 0;
      for (std::size_t j = 0; j < 16; ++j) amax = std::fmax(amax, std::fabs(x[16 * blk + j]));
      CHECK(b[blk].scale == fp8_e4m3(amax / (6.0f * g)).bits);
      const float d = fp8_e4m3::from_bits(b[blk].scale).to_float() * g;
      const bool normal_scale = b[blk].scale >= 0x08;  // E4M3 normal: the bound below holds
      for (std::size_t j = 0; j < 16; ++j) {
        const std::size_t i = 16 * blk + j;
        double best = 1e300;
        for (const float v : e2m1_values) best = std::fmin(best, std::fabs(double{v * d} - x[i]));
        const double e = std::fabs(double{y[i]} - x[i]);
        CHECK(e <= best * (1 + 1e-6));  // nearest (x / d is rounded once)
        if (normal_scale) CHECK(e <= double{d});
        err += e * e;
        sig += double{x[i]} * x[i];
      }
    }
    INFO("sigma " << sigma << " rel mse " << err / sig);
    CHECK(err / sig < 0.012);
  }
}

TEST_CASE("nvfp4: the scale search is never worse than NVIDIA's recipe, block by block",
          "[float][nvfp4]") {
  double total[2] = {0, 0}, sig = 0;
  for (const std::uint32_t seed : {1u, 2u, 3u}) {
    auto x = normal(16 * 512, seed, 0.5f);
    if (seed == 3)
      for (std::size_t i = 0; i < x.size(); i += 29) x[i] *= 10.0f;
    const float g = nvfp4_global_scale(x.data(), x.size());
    std::vector<nvfp4_block> a(x.size() / 16), b(x.size() / 16);
    std::vector<float> ya(x.size()), yb(x.size());
    quantize_row_nvfp4(x.data(), a.data(), x.size(), g, nvfp4_scale_rule::nvidia);
    quantize_row_nvfp4(x.data(), b.data(), x.size(), g);  // search (the default)
    dequantize_row_nvfp4(a.data(), ya.data(), x.size(), g);
    dequantize_row_nvfp4(b.data(), yb.data(), x.size(), g);
    for (std::size_t blk = 0; blk < a.size(); ++blk) {
      double ea = 0, eb = 0;
      for (std::size_t j = 16 * blk; j < 16 * blk + 16; ++j) {
        ea += (double{ya[j]} - x[j]) * (double{ya[j]} - x[j]);
        eb += (double{yb[j]} - x[j]) * (double{yb[j]} - x[j]);
        sig += double{x[j]} * x[j];
        // still the nearest grid point of its block
        const float d = fp8_e4m3::from_bits(b[blk].scale).to_float() * g;
        double best = 1e300;
        for (const float v : e2m1_values) best = std::fmin(best, std::fabs(double{v * d} - x[j]));
        CHECK(std::fabs(double{yb[j]} - x[j]) <= best * (1 + 1e-6));
      }
      CHECK(eb <= ea);
      CHECK(std::abs(int{b[blk].scale} - int{a[blk].scale}) <= 1);
      total[0] += ea;
      total[1] += eb;
    }
  }
  INFO("nvidia " << total[0] / sig << " search " << total[1] / sig);
  CHECK(total[1] < 0.97 * total[0]);
}

TEST_CASE("nvfp4: decode is e2m1 * (scale * global), layout LSB first", "[float][nvfp4]") {
  nvfp4_block b{};
  b.scale = fp8_e4m3(1.5f).bits;
  b.q[0] = 0x7A;  // element 0: code 10 (-1), element 1: code 7 (6)
  float y[16];
  dequantize_row_nvfp4(&b, y, 16, 0.25f);
  CHECK(y[0] == -1.0f * 1.5f * 0.25f);
  CHECK(y[1] == 6.0f * 1.5f * 0.25f);
  CHECK(y[2] == 0.0f);
}

TEST_CASE("nvfp4: the policy equals the row functions", "[float][nvfp4]") {
  const auto x = normal(16 * 32, 12, 2.0f);
  nvfp4_quantizer q;
  q.global = nvfp4_global_scale(x.data(), x.size());
  std::vector<nvfp4_block> b(32);
  std::vector<float> y(x.size()), yq(16);
  quantize_row_nvfp4(x.data(), b.data(), x.size(), q.global);
  dequantize_row_nvfp4(b.data(), y.data(), x.size(), q.global);
  std::uint8_t sym[16];
  for (std::size_t i = 0; i < 32; ++i) {
    const std::span<const float> g(x.data() + 16 * i, 16);
    const auto p = q.fit(g);
    CHECK(p.scale == b[i].scale);
    q.encode(g, p, sym);
    q.decode(sym, p, yq);
    for (std::size_t j = 0; j < 16; ++j) CHECK(yq[j] == y[16 * i + j]);
  }
}
