// Known answers for the 4-bit lookup-table decoders through the dispatched kernel table:
// NF4 (QLoRA) float decode and ggml's IQ4_NL int8 table, plus the portable fallback.
#include <qcodec/simd/dispatch.hpp>
#include <qcodec/simd/lut.hpp>

#include <cstring>
#include <random>
#include <vector>

#include "../support/catch.hpp"
#include "../support/same_bits.hpp"

namespace simd = qcodec::simd;

namespace {

// NormalFloat4 levels (Dettmers et al., "QLoRA", 2023), as bitsandbytes stores them.
constexpr float nf4[16] = {-1.0f,
                           -0.6961928009986877f,
                           -0.5250730514526367f,
                           -0.39491748809814453f,
                           -0.28444138169288635f,
                           -0.18477343022823334f,
                           -0.09105003625154495f,
                           0.0f,
                           0.07958029955625534f,
                           0.16093020141124725f,
                           0.24611230194568634f,
                           0.33791524171829224f,
                           0.44070982933044434f,
                           0.5626170039176941f,
                           0.7229568362236023f,
                           1.0f};

// ggml's IQ4_NL non-linear int8 levels (kvalues_iq4nl).
constexpr std::int8_t iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                   1,    13,   25,  38,  53,  69,  89,  113};

}  // namespace

TEST_CASE("the scalar table holds the lookup oracles", "[lut]") {
  const simd::kernel_table scalar = simd::make_kernel_table<simd::scalar>();
  CHECK(scalar.lut.lut16_dequantize == &qcodec::ref::lut16_dequantize);
  CHECK(scalar.lut.lut16_lookup_i8 == &qcodec::ref::lut16_lookup_i8);
}

TEST_CASE("NF4 codes decode to the scaled table entries", "[lut]") {
  const auto& k = simd::kernels().lut;
  // Codes 0, 1, 7, 15, 14 (low nibble first); the last high nibble (8) is not a code.
  const std::uint8_t in[3] = {0x10, 0xF7, 0x8E};
  float y[5];
  k.lut16_dequantize(in, 5, nf4, 2.0f, y);
  CHECK(y[0] == -2.0f);
  CHECK(y[1] == -1.3923856019973755f);
  CHECK(y[2] == 0.0f);
  CHECK(y[3] == 2.0f);
  CHECK(y[4] == 1.4459136724472046f);
  k.lut16_dequantize(in, 5, nf4, -0.5f, y);
  CHECK(y[0] == 0.5f);
  CHECK(y[1] == 0.34809640049934387f);
  CHECK(y[3] == -0.5f);
  CHECK(y[4] == -0.36147841811180115f);

  // Every code at every position of a row longer than several vectors.
  std::vector<std::uint8_t> packed(150);
  for (std::size_t j = 0; j < packed.size(); ++j)
    packed[j] = static_cast<std::uint8_t>((j * 7 + 3) % 16 | ((j * 11 + 5) % 16) << 4);
  std::vector<float> out(2 * packed.size() - 1);  // odd length: the last high nibble is ignored
  k.lut16_dequantize(packed.data(), out.size(), nf4, 0.75f, out.data());
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::size_t code = i % 2 ? (i / 2 * 11 + 5) % 16 : (i / 2 * 7 + 3) % 16;
    INFO("i=" << i);
    REQUIRE(out[i] == nf4[code] * 0.75f);
  }
}

TEST_CASE("int8 lookups return the table entry of every code", "[lut]") {
  const auto& k = simd::kernels().lut;
  const std::uint8_t in[4] = {0x10, 0x32, 0xFE, 0x8F};  // codes 0,1,2,3,14,15,15 (+ ignored 8)
  std::int8_t out[7];
  k.lut16_lookup_i8(in, 7, iq4nl, out);
  const std::int8_t want[7] = {-127, -104, -83, -65, 89, 113, 113};
  CHECK(std::memcmp(out, want, sizeof want) == 0);

  std::mt19937 rng(3);
  for (std::size_t n : {1u, 31u, 32u, 33u, 64u, 65u, 127u, 1000u, 1001u}) {
    std::vector<std::uint8_t> packed((n + 1) / 2);
    for (auto& b : packed) b = static_cast<std::uint8_t>(rng());
    std::vector<std::int8_t> got(n);
    k.lut16_lookup_i8(packed.data(), n, iq4nl, got.data());
    for (std::size_t i = 0; i < n; ++i) {
      INFO("n=" << n << " i=" << i);
      REQUIRE(got[i] == iq4nl[(packed[i / 2] >> (i % 2 * 4)) & 15]);
    }
  }
}

#if XSIMD_WITH_SSE2
TEST_CASE("the portable lookup fallback matches the oracles", "[lut]") {
  std::mt19937 rng(9);
  for (std::size_t n = 0; n <= 70; ++n) {
    std::vector<std::uint8_t> packed((n + 1) / 2);
    for (auto& b : packed) b = static_cast<std::uint8_t>(rng());
    std::vector<float> yw(n), yg(n);
    qcodec::ref::lut16_dequantize(packed.data(), n, nf4, 1.7f, yw.data());
    simd::lut16_dequantize<xsimd::sse2>(packed.data(), n, nf4, 1.7f, yg.data());
    std::vector<std::int8_t> bw(n), bg(n);
    qcodec::ref::lut16_lookup_i8(packed.data(), n, iq4nl, bw.data());
    simd::lut16_lookup_i8<xsimd::sse2>(packed.data(), n, iq4nl, bg.data());
    INFO("n=" << n);
    REQUIRE(same_bits(yw, yg));
    REQUIRE(bw == bg);
  }
}
#endif
