#include <qcodec/core/rng.hpp>
#include <qcodec/quant/block/blockwise.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "../../support/catch.hpp"
#include "../../support/deterministic.hpp"

using qcodec::scale_format;

static_assert(sizeof(qcodec::blockwise_format<4, 32, scale_format::f16>::block) == 18);
static_assert(sizeof(qcodec::blockwise_format<4, 32, scale_format::f16, true>::block) == 20);
static_assert(sizeof(qcodec::blockwise_format<8, 32, scale_format::e8m0>::block) == 33);
static_assert(sizeof(qcodec::blockwise_format<3, 64, scale_format::f32>::block) == 28);
static_assert(sizeof(qcodec::superblock_format<4>::block) == 144);  // Q4_K's budget
static_assert(qcodec::superblock_format<4>::bits_per_value == 4.5);
static_assert(qcodec::superblock_format<2, 16, 256, 4>::bits_per_value == 2.0 + 0.5 + 0.125);

namespace {

std::vector<float> gaussian(std::size_t n, std::uint64_t seed) {
  qcodec::rng rng(seed);
  std::vector<float> x(n);
  for (float& v : x) v = rng.normal();
  return x;
}

template <class F>
std::vector<float> round_trip(const std::vector<float>& x,
                              std::vector<typename F::block>* blocks_out = nullptr) {
  std::vector<typename F::block> blocks(x.size() / F::block_values);
  F::quantize_row(x.data(), blocks.data(), static_cast<std::int64_t>(x.size()));
  std::vector<float> y(x.size());
  F::dequantize_row(blocks.data(), y.data(), static_cast<std::int64_t>(x.size()));
  if (blocks_out) *blocks_out = blocks;
  return y;
}

double rel_mse(const std::vector<float>& x, const std::vector<float>& y) {
  double e = 0.0, s = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    e += (double(y[i]) - x[i]) * (double(y[i]) - x[i]);
    s += double(x[i]) * x[i];
  }
  return e / s;
}

// The encoder never loses to the textbook choice for the block, with parameters stored the same
// way: absmax onto the most negative level (symmetric), min/max (asymmetric).
template <unsigned Bits, std::size_t N, scale_format S, bool Asym>
void check_never_worse_than_textbook(std::uint64_t seed) {
  using F = qcodec::blockwise_format<Bits, N, S, Asym>;
  INFO("bits=" << Bits << " N=" << N << " asymmetric=" << Asym);
  qcodec::rng rng(seed);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<float> x(N);
    for (float& v : x) v = rng.normal() + (Asym ? 1.5f : 0.0f);
    if (trial % 5 == 0) x[trial % N] *= 8.0f;  // an outlier
    std::vector<typename F::block> blocks;
    (void)round_trip<F>(x, &blocks);
    const qcodec::affine_params chosen = F::params_of(blocks[0]);
    qcodec::affine_params textbook;
    if constexpr (Asym) {
      float lo = x[0], hi = x[0];
      for (float v : x) lo = std::min(lo, v), hi = std::max(hi, v);
      textbook = {qcodec::detail::round_scale<S>((hi - lo) / float((1u << Bits) - 1)),
                  qcodec::detail::round_scale<S>(lo)};
    } else {
      float m = 0.0f;
      for (float v : x) m = std::fabs(v) > std::fabs(m) ? v : m;
      const float h = float(1u << (Bits - 1));
      const float d = qcodec::detail::round_scale<S>(m / -h);
      textbook = {d, -h * d};
    }
    CHECK(qcodec::detail::affine_squared_error(x.data(), N, chosen, Bits) <=
          qcodec::detail::affine_squared_error(x.data(), N, textbook, Bits));
  }
}

// quantize_row's bytes for x, which must not depend on memory it never wrote.
template <class F>
std::vector<typename F::block> encode_deterministic(const std::vector<float>& x) {
  return deterministic_bytes<typename F::block>(
      x.size() / F::block_values, [&](typename F::block* out) {
        F::quantize_row(x.data(), out, static_cast<std::int64_t>(x.size()));
      });
}

// A NaN, +inf or -inf (outside the contract) gives deterministic bytes that decode without
// fault, and the blocks without it encode as they do on their own.
template <class F>
void check_nonfinite_deterministic() {
  const std::size_t n = 512;
  const std::vector<float> base = gaussian(n, 11);
  const std::vector<float> tail(base.begin() + 256, base.end());
  const auto tail_alone = encode_deterministic<F>(tail);
  for (const float special :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
        -std::numeric_limits<float>::infinity()})
    for (const std::size_t at : {std::size_t{0}, std::size_t{5}, std::size_t{200}}) {
      INFO(F::name << " bits/value " << F::bits_per_value << ": " << special << " at " << at);
      std::vector<float> x = base;
      x[at] = special;
      const auto b = encode_deterministic<F>(x);
      std::vector<float> y(n);
      F::dequantize_row(b.data(), y.data(), static_cast<std::int64_t>(n));
      const std::size_t first = 256 / F::block_values;  // the blocks of values 256..511
      REQUIRE(std::memcmp(b.data() + first, tail_alone.data(),
                          tail_alone.size() * sizeof(typename F::block)) == 0);
    }
}

}  // namespace

TEST_CASE("blockwise: scale storage formats", "[blockwise]") {
  using qcodec::detail::round_scale;
  CHECK(round_scale<scale_format::f32>(0.1f) == 0.1f);
  CHECK(round_scale<scale_format::f16>(0.1f) == qcodec::half(0.1f).to_float());
  CHECK(round_scale<scale_format::bf16>(0.1f) == qcodec::bfloat16(0.1f).to_float());
  // E8M0: the nearest power of two by ratio (the geometric midpoint of 2 and 4 is 2.83).
  CHECK(round_scale<scale_format::e8m0>(3.0f) == 4.0f);
  CHECK(round_scale<scale_format::e8m0>(2.8f) == 2.0f);
  CHECK(round_scale<scale_format::e8m0>(1.0f) == 1.0f);
  CHECK(round_scale<scale_format::e8m0>(0.0f) == std::ldexp(1.0f, -127));
  const std::uint8_t nan_byte = 0xFF;
  CHECK(std::isnan(qcodec::detail::load_scale<scale_format::e8m0>(&nan_byte)));
}

TEST_CASE("blockwise: the encoder is never worse than the textbook parameters", "[blockwise]") {
  check_never_worse_than_textbook<4, 32, scale_format::f16, false>(1);
  check_never_worse_than_textbook<3, 64, scale_format::bf16, false>(2);
  check_never_worse_than_textbook<8, 32, scale_format::f32, false>(3);
  check_never_worse_than_textbook<2, 16, scale_format::f16, false>(4);
  check_never_worse_than_textbook<4, 32, scale_format::f16, true>(5);
  check_never_worse_than_textbook<5, 32, scale_format::bf16, true>(6);
  check_never_worse_than_textbook<2, 32, scale_format::f32, true>(7);
}

TEST_CASE("blockwise: E8M0 scales are the best power of two", "[blockwise]") {
  using F = qcodec::blockwise_format<4, 32, scale_format::e8m0>;
  qcodec::rng rng(8);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> x(32);
    for (float& v : x) v = rng.normal() * std::ldexp(1.0f, trial % 9 - 4);
    std::vector<F::block> blocks;
    (void)round_trip<F>(x, &blocks);
    const qcodec::affine_params chosen = F::params_of(blocks[0]);
    int e = 0;
    CHECK(std::frexp(chosen.scale, &e) == 0.5f);  // a power of two
    const double err = qcodec::detail::affine_squared_error(x.data(), 32, chosen, 4);
    for (int k = e - 8; k <= e + 6; ++k) {
      const float d = std::ldexp(1.0f, k);
      CHECK(err <= qcodec::detail::affine_squared_error(x.data(), 32, {d, -8.0f * d}, 4));
    }
  }
}

TEST_CASE("blockwise and superblock: error on Gaussian data", "[blockwise][superblock]") {
  const std::vector<float> x = gaussian(64 * 256, 9);
  const double sym4 = rel_mse(x, round_trip<qcodec::blockwise_format<4, 32>>(x));
  const double asym4 =
      rel_mse(x, round_trip<qcodec::blockwise_format<4, 32, scale_format::f16, true>>(x));
  const double e8m0_4 =
      rel_mse(x, round_trip<qcodec::blockwise_format<4, 32, scale_format::e8m0>>(x));
  const double sym8 = rel_mse(x, round_trip<qcodec::blockwise_format<8, 32>>(x));
  const double super4 = rel_mse(x, round_trip<qcodec::superblock_format<4>>(x));
  const double super2 = rel_mse(x, round_trip<qcodec::superblock_format<2, 16, 256, 4>>(x));
  WARN("relative MSE on N(0,1): 4-bit sym/f16 "
       << sym4 << ", asym/f16 " << asym4 << ", sym/e8m0 " << e8m0_4 << ", 8-bit sym " << sym8
       << ", super 4-bit " << super4 << ", super 2-bit " << super2);
  // References at the same budgets: ggml Q4_0 0.0074, Q4_1 0.0061, Q8_0 2.9e-5, Q4_K about
  // 0.0050, Q2_K about 0.09 on N(0,1) (ggml's own encoders).
  CHECK(sym4 < 0.0074);
  CHECK(asym4 < 0.0061);
  CHECK(e8m0_4 < 0.014);  // power-of-two scales at 4.25 bits (measured 0.0133; MXFP4 0.0124)
  CHECK(sym8 < 2.9e-5);
  CHECK(super4 < 0.0065);
  CHECK(super2 < 0.12);
}

TEST_CASE("blockwise and superblock: constant, zero and tiny blocks; any bytes decode",
          "[blockwise][superblock]") {
  for (const float c : {0.0f, 1.5f, -2.0f, 1e-6f}) {
    INFO("constant " << c);
    const std::vector<float> x(256, c);
    for (float v : round_trip<qcodec::blockwise_format<4, 32, scale_format::f16, true>>(x))
      CHECK(std::fabs(v - c) <= 1e-3f * std::fabs(c) + 1e-7f);
    for (float v : round_trip<qcodec::blockwise_format<4, 32>>(x))
      CHECK(std::fabs(v - c) <= 1e-3f * std::fabs(c) + 1e-7f);
    // The super-block units are fp16: sub-block scales below its range flush toward zero.
    for (float v : round_trip<qcodec::superblock_format<4>>(x)) {
      if (std::fabs(c) > 1e-3f) {
        CHECK(std::fabs(v - c) <= 0.05f * std::fabs(c));
      } else {
        CHECK(std::fabs(v) <= std::fabs(c));
      }
    }
  }
  qcodec::rng rng(10);
  using S = qcodec::superblock_format<4>;
  std::vector<S::block> garbage(4);
  auto* bytes = reinterpret_cast<std::uint8_t*>(garbage.data());
  for (std::size_t i = 0; i < garbage.size() * sizeof(S::block); ++i)
    bytes[i] = static_cast<std::uint8_t>(rng.next_u64());
  std::vector<float> y(4 * 256);
  S::dequantize_row(garbage.data(), y.data(), 4 * 256);  // memory-safe for any bytes
}

TEST_CASE("blockwise and superblock: NaN and infinite inputs encode deterministically",
          "[blockwise][superblock]") {
  check_nonfinite_deterministic<qcodec::blockwise_format<4, 32>>();
  check_nonfinite_deterministic<qcodec::blockwise_format<4, 32, scale_format::f16, true>>();
  check_nonfinite_deterministic<qcodec::blockwise_format<4, 32, scale_format::e8m0>>();
  check_nonfinite_deterministic<qcodec::superblock_format<4>>();
  check_nonfinite_deterministic<qcodec::superblock_format<2, 16, 256, 4>>();
}

TEST_CASE("superblock: huge values saturate the fp16 units instead of overflowing them",
          "[superblock]") {
  // D and Dmin are fp16: sub-block offsets reach down to -65504 * (2^ScaleBits - 1) (sb4:
  // -4126752, sb2: -982560); larger units used to overflow to inf, and the NaN errors left
  // the sub-block indices uninitialised (every value decoded to -inf).
  std::vector<float> x(4 * 256);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 1e7f * std::sin(0.37f * float(i) + 0.1f);
  {
    using F = qcodec::superblock_format<4>;  // "sb4"
    const float floor4 = -65504.0f * 63.0f;
    const auto b = encode_deterministic<F>(x);
    std::vector<float> y(x.size());
    F::dequantize_row(b.data(), y.data(), static_cast<std::int64_t>(x.size()));
    // 1e7 is inside sb4's positive range (65504 * 63 * 15 = 6.2e7): values above the floor
    // keep 4-bit accuracy (measured 0.066 of the largest magnitude), those below it decode
    // to the floor (measured exactly)
    for (std::size_t i = 0; i < x.size(); ++i) {
      INFO("sb4 value " << i << ": " << x[i] << " -> " << y[i]);
      REQUIRE(std::isfinite(y[i]));
      REQUIRE(std::fabs(y[i] - std::max(x[i], floor4)) <= 0.07f * 1e7f);
    }
  }
  {
    using F = qcodec::superblock_format<2, 16, 256, 4>;  // "sb2"
    const float floor2 = -65504.0f * 15.0f, top2 = 65504.0f * 15.0f * 3.0f;
    const auto b = encode_deterministic<F>(x);
    std::vector<float> y(x.size());
    F::dequantize_row(b.data(), y.data(), static_cast<std::int64_t>(x.size()));
    // 1e7 is beyond both ends of sb2's range [-982560, 2947680]: the values saturate, finite,
    // inside the range; those below the floor decode within one Dmin step (65504) of it and
    // the largest ones above 1e6
    float top = -std::numeric_limits<float>::infinity();
    for (std::size_t i = 0; i < x.size(); ++i) {
      INFO("sb2 value " << i << ": " << x[i] << " -> " << y[i]);
      REQUIRE(std::isfinite(y[i]));
      REQUIRE(y[i] >= floor2);
      REQUIRE(y[i] <= top2);
      if (x[i] < floor2) REQUIRE(y[i] <= floor2 + 65504.0f);
      top = std::max(top, y[i]);
    }
    CHECK(top >= 1e6f);
  }
}
