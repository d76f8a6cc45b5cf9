#include <qcodec/core/rng.hpp>
#include <qcodec/quant/block/bfp.hpp>
#include <qcodec/quant/concepts.hpp>
#include <qcodec/quant/transform/permutation.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../../support/catch.hpp"

static_assert(qcodec::Quantizer<qcodec::bfp<2>>);
static_assert(qcodec::Quantizer<qcodec::bfp<4>>);
static_assert(qcodec::Quantizer<qcodec::bfp<8>>);
static_assert(sizeof(qcodec::bfp_block<8, 32>) == 33);
static_assert(sizeof(qcodec::bfp_block<4, 16>) == 9);
static_assert(qcodec::bfp_format<8, 32>::bits_per_value == 8.25);

namespace {

std::vector<float> gaussian(std::size_t n, std::uint64_t seed, float sigma = 1.0f) {
  qcodec::rng rng(seed);
  std::vector<float> x(n);
  for (float& v : x) v = sigma * rng.normal();
  return x;
}

template <unsigned M, std::size_t N>
std::vector<float> round_trip(const std::vector<float>& x,
                              std::vector<qcodec::bfp_block<M, N>>* blocks_out = nullptr) {
  using format = qcodec::bfp_format<M, N>;
  std::vector<typename format::block> blocks(x.size() / N);
  format::quantize_row(x.data(), blocks.data(), static_cast<std::int64_t>(x.size()));
  std::vector<float> y(x.size());
  format::dequantize_row(blocks.data(), y.data(), static_cast<std::int64_t>(x.size()));
  if (blocks_out) *blocks_out = blocks;
  return y;
}

double squared_error(const std::vector<float>& x, const std::vector<float>& y) {
  double e = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) e += (double(y[i]) - x[i]) * (double(y[i]) - x[i]);
  return e;
}

template <unsigned M, std::size_t N>
void check_error_bound(std::uint64_t seed, float sigma) {
  INFO("M=" << M << " N=" << N << " sigma=" << sigma);
  const std::vector<float> x = gaussian(64 * N, seed, sigma);
  std::vector<qcodec::bfp_block<M, N>> blocks;
  const std::vector<float> y = round_trip<M, N>(x, &blocks);
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const float scale = std::ldexp(1.0f, int(blocks[b].exponent) - 127);
    float absmax = 0.0f;
    for (std::size_t i = 0; i < N; ++i) absmax = std::max(absmax, std::fabs(x[b * N + i]));
    // The exponent is the natural one or the next: the block max lands in the top binade.
    CHECK(absmax >= std::ldexp(scale, int(M) - 3));
    CHECK(absmax < std::ldexp(scale, int(M) - 1) + scale);
    for (std::size_t i = 0; i < N; ++i) {
      // Half a step from rounding; a full step only for a positive maximum clamped at
      // 2^(M-1) - 1 (the encoder keeps that exponent only when it is still the better one).
      const float err = std::fabs(y[b * N + i] - x[b * N + i]);
      CHECK(err <= scale);
      if (x[b * N + i] < std::ldexp(scale, int(M) - 1) - scale) CHECK(err <= 0.5f * scale);
    }
  }
}

}  // namespace

TEST_CASE("bfp: error within one step of the shared exponent, half a step off the maximum",
          "[bfp]") {
  check_error_bound<8, 32>(1, 1.0f);
  check_error_bound<8, 16>(2, 1e-3f);
  check_error_bound<6, 32>(3, 50.0f);
  check_error_bound<4, 16>(4, 1.0f);
  check_error_bound<2, 8>(5, 1.0f);
}

TEST_CASE("bfp: values representable with the block exponent are exact", "[bfp]") {
  std::vector<float> x(32);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::ldexp(float(int(i % 15) - 7), -3);
  CHECK(round_trip<8, 32>(x) == x);
  CHECK(round_trip<4, 32>(x) == x);  // |mantissa| <= 7 fits in 4 bits
}

TEST_CASE("bfp: the encoder is never worse than the natural (spec) exponent", "[bfp]") {
  constexpr unsigned M = 4;
  constexpr std::size_t N = 16;
  qcodec::rng rng(9);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<float> x(N);
    for (float& v : x) v = rng.normal() * (trial % 7 == 0 ? 30.0f : 1.0f);
    if (trial % 3 == 0) x[trial % N] = 7.4f;  // a maximum that rounds past the positive range
    float a = 0.0f;
    for (float v : x) a = std::max(a, std::fabs(v));
    const auto natural = static_cast<std::uint8_t>(qcodec::detail::bfp_natural_exponent(a, M));
    const std::uint8_t chosen = qcodec::detail::bfp_fit_exponent(x.data(), N, M, a);
    CHECK(qcodec::detail::bfp_squared_error(x.data(), N, chosen, M) <=
          qcodec::detail::bfp_squared_error(x.data(), N, natural, M));
    CHECK((chosen == natural || chosen == natural + 1));
  }
}

TEST_CASE("bfp: the Quantizer policy and the row format agree", "[bfp]") {
  const std::vector<float> x = gaussian(8 * 32, 21);
  std::vector<qcodec::bfp_block<6, 32>> blocks;
  const std::vector<float> y = round_trip<6, 32>(x, &blocks);
  const qcodec::bfp<6> q;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const std::span<const float> group(x.data() + 32 * b, 32);
    const auto p = q.fit(group);
    CHECK(p.exponent == blocks[b].exponent);
    std::vector<std::uint8_t> sym(32);
    q.encode(group, p, sym);
    std::vector<float> z(32);
    q.decode(sym, p, z);
    for (std::size_t i = 0; i < 32; ++i) CHECK(z[i] == y[32 * b + i]);
  }
}

TEST_CASE("bfp: zeros, extremes and non-finite input", "[bfp]") {
  std::vector<qcodec::bfp_block<8, 8>> blocks;
  const std::vector<float> zeros(8, 0.0f);
  CHECK(round_trip<8, 8>(zeros, &blocks) == zeros);
  CHECK(blocks[0].exponent == 0);

  std::vector<float> huge(8, 3e38f);
  huge[1] = -3e38f;
  for (float v : round_trip<8, 8>(huge)) CHECK(std::isfinite(v));  // saturates, stays finite

  std::vector<float> tiny(8, 1e-40f);  // below 2^-127: flushes toward zero, no UB
  for (float v : round_trip<8, 8>(tiny)) CHECK(std::fabs(v) <= 1e-38f);

  std::vector<float> bad = gaussian(8, 3);
  bad[2] = std::numeric_limits<float>::quiet_NaN();
  bad[5] = std::numeric_limits<float>::infinity();
  (void)round_trip<8, 8>(bad);  // memory-safe and UB-free (checked under the sanitizers)

  qcodec::bfp_block<8, 8> nan_block{};
  nan_block.exponent = 0xFF;  // reserved in E8M0: NaN
  std::vector<float> y(8);
  qcodec::bfp_format<8, 8>::dequantize_row(&nan_block, y.data(), 8);
  CHECK(std::isnan(y[0]));
}

TEST_CASE("bfp: grouping outlier channels with a permutation lowers the error", "[bfp]") {
  constexpr std::size_t tokens = 64, channels = 128;
  std::vector<float> x = gaussian(tokens * channels, 17);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t c : {5u, 40u, 77u, 120u}) x[t * channels + c] *= 40.0f;  // outliers
  const qcodec::matrix_view<const float> view(x.data(), tokens, channels);
  const auto perm = qcodec::channel_permutation::by_magnitude(view);

  std::vector<float> permuted(x.size()), restored(x.size());
  for (std::size_t t = 0; t < tokens; ++t)
    perm.apply(view.row(t), {&permuted[t * channels], channels});
  const std::vector<float> plain = round_trip<4, 16>(x);
  const std::vector<float> grouped = round_trip<4, 16>(permuted);
  for (std::size_t t = 0; t < tokens; ++t)
    perm.invert({&grouped[t * channels], channels}, {&restored[t * channels], channels});
  // The outliers' own error is about the same either way (their exponent is set by outliers);
  // what the permutation buys is precision for the ordinary channels, which no longer share a
  // block with an outlier: without it, 4 of the 8 blocks of each row do.
  auto ordinary_error = [&](const std::vector<float>& y) {
    double e = 0.0;
    for (std::size_t t = 0; t < tokens; ++t)
      for (std::size_t c = 0; c < channels; ++c) {
        if (c == 5 || c == 40 || c == 77 || c == 120) continue;
        const double d = double(y[t * channels + c]) - x[t * channels + c];
        e += d * d;
      }
    return e;
  };
  const double e_plain = ordinary_error(plain), e_grouped = ordinary_error(restored);
  INFO("ordinary channels' squared error without permutation " << e_plain << ", with "
                                                                 << e_grouped);
  CHECK(e_grouped < 0.5 * e_plain);  // measured: 0.39
  CHECK(squared_error(x, restored) < 1.5 * squared_error(x, plain));
}

// bfp_squared_error and the policy's encoder compute fma(x, inv, bias) and fma(q, scale, offset)
// without std::fma (a libm call where FMA is no instruction), relying on power-of-two scales:
// both must give the affine kernels' codes and values exactly, at every exponent (the subnormal
// scale of e = 0 included) and for tiny, huge and infinite inputs.
TEST_CASE("bfp: the error search and the encoder agree with the affine kernels", "[bfp]") {
  const qcodec::simd::kernel_table& k = qcodec::simd::kernels();
  const float inf = std::numeric_limits<float>::infinity();
  constexpr std::size_t n = 64;
  const auto check = [&]<unsigned M>(const std::vector<float>& x) {
    // Every exponent byte for the encoder (0xFF and those above the largest valid one too),
    // the valid ones for the error search.
    for (int e = 0; e <= 255; e += (e < 8 || e > 240) ? 1 : 7) {
      const auto byte = static_cast<std::uint8_t>(e);
      const qcodec::affine_params p = qcodec::detail::bfp_affine(byte, M);
      std::vector<std::uint8_t> packed((n * M + 7) / 8), codes(n), unpacked(n);
      k.affine.quantize_pack(x.data(), n, p, M, packed.data());
      k.packing.unpack_bits(packed.data(), n, M, unpacked.data());
      INFO("M " << M << " e " << e);
      qcodec::bfp<M>{}.encode(x, {byte}, codes);
      CHECK(codes == unpacked);
      if (e > qcodec::detail::bfp_max_exponent(M)) continue;
      std::vector<float> y(n);
      k.affine.unpack_dequantize(packed.data(), n, M, p, y.data());
      double want = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        const double d = static_cast<double>(y[i]) - x[i];
        want += d * d;
      }
      // Up to the rounding of d * d, which depends on whether the compiler fuses err += d * d.
      const double got = qcodec::detail::bfp_squared_error(x.data(), n, byte, M);
      if (std::isinf(want)) {
        CHECK(got == want);
      } else {
        CHECK(std::fabs(got - want) <= 1e-13 * want);
      }
    }
  };
  for (const float sigma : {1e-40f, 1e-30f, 3e-3f, 1.0f, 7e5f, 1e30f}) {
    std::vector<float> x = gaussian(n, 5, sigma);
    x[3] = 0.0f;
    x[4] = -0.0f;
    x[9] = 1e-45f;  // the smallest subnormal
    x[12] = 0.5f;   // ties at e = 127 (scale 1) and e = 120 (scale 2^-7)
    x[13] = -2.5f;
    x[14] = 3.0f / 256.0f;
    check.operator()<2>(x);
    check.operator()<4>(x);
    check.operator()<7>(x);
    // Errors then overflow or are infinite.
    x[10] = 3e38f;
    x[11] = -inf;
    check.operator()<4>(x);
  }
}
