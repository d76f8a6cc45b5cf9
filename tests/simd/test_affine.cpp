// Properties of the affine quantizer through the dispatched kernel table: the packed layout,
// the round-trip error bound, half-to-even ties, clamping, and the fused decoders against
// decode-then-compute. Plus the portable fallback (what NEON runs) against the oracles.
#include <qcodec/simd/affine.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "../support/catch.hpp"
#include "../support/same_bits.hpp"

namespace simd = qcodec::simd;
using qcodec::affine_params;

namespace {

constexpr float eps = std::numeric_limits<float>::epsilon();
constexpr float inf = std::numeric_limits<float>::infinity();

std::size_t code_bytes(std::size_t n, unsigned bits) { return (n * bits + 7) / 8; }

// The stream built bit by bit from the layout's definition: code i at stream bits
// [i * bits, (i + 1) * bits), stream bit k = bit (k % 8) of byte k / 8.
std::vector<std::uint8_t> pack_by_definition(const std::vector<unsigned>& codes, unsigned bits) {
  std::vector<std::uint8_t> out(code_bytes(codes.size(), bits), 0);
  for (std::size_t i = 0; i < codes.size(); ++i)
    for (unsigned b = 0; b < bits; ++b)
      if ((codes[i] >> b) & 1u) {
        const std::size_t k = i * bits + b;
        out[k / 8] = static_cast<std::uint8_t>(out[k / 8] | (1u << (k % 8)));
      }
  return out;
}

std::vector<float> codes_of(const std::vector<std::uint8_t>& packed, std::size_t n, unsigned bits) {
  std::vector<float> q(n);
  simd::kernels().affine.unpack_dequantize(packed.data(), n, bits, {1.0f, 0.0f}, q.data());
  return q;
}

std::vector<std::uint8_t> encode(const std::vector<float>& x, affine_params p, unsigned bits) {
  std::vector<std::uint8_t> out(code_bytes(x.size(), bits));
  simd::kernels().affine.quantize_pack(x.data(), x.size(), p, bits, out.data());
  return out;
}

}  // namespace

TEST_CASE("the scalar table holds the affine oracles", "[affine]") {
  const simd::kernel_table scalar = simd::make_kernel_table<simd::scalar>();
  CHECK(scalar.affine.quantize_pack == &qcodec::ref::quantize_pack);
  CHECK(scalar.affine.unpack_dequantize == &qcodec::ref::unpack_dequantize);
  CHECK(scalar.affine.decode_dot == &qcodec::ref::decode_dot);
  CHECK(scalar.affine.decode_axpy == &qcodec::ref::decode_axpy);
}

TEST_CASE("codes are packed back to back, least significant bit first", "[affine]") {
  const affine_params identity{1.0f, 0.0f};  // inv = 1, bias = -0: x = q encodes to q exactly
  // 3 bits: sum of code_i << 3i = 0x1F58D1, stored little-endian.
  CHECK(encode({1, 2, 3, 4, 5, 6, 7, 0}, identity, 3) ==
        std::vector<std::uint8_t>{0xD1, 0x58, 0x1F});
  // 4 bits: byte j = code 2j | code 2j+1 << 4; an odd count leaves the last high nibble zero.
  CHECK(encode({3, 12, 15, 0, 9}, identity, 4) == std::vector<std::uint8_t>{0xC3, 0x0F, 0x09});
  // 1 bit: stream bit k is bit k % 8 of byte k / 8.
  CHECK(encode({1, 0, 1, 1, 0, 0, 0, 1, 1}, identity, 1) == std::vector<std::uint8_t>{0x8D, 0x01});
  // 7 bits across byte boundaries: 127 | 1 << 7 | 64 << 14 = 0x1000FF in 21 bits.
  CHECK(encode({127, 1, 64}, identity, 7) == std::vector<std::uint8_t>{0xFF, 0x00, 0x10});

  std::mt19937 rng(5);
  for (unsigned bits = 1; bits <= 8; ++bits) {
    for (std::size_t n : {1u, 7u, 8u, 9u, 31u, 64u, 129u, 1000u}) {
      std::vector<unsigned> codes(n);
      std::vector<float> x(n);
      for (std::size_t i = 0; i < n; ++i) {
        codes[i] = std::uniform_int_distribution<unsigned>(0, (1u << bits) - 1)(rng);
        x[i] = static_cast<float>(codes[i]);
      }
      INFO("bits=" << bits << " n=" << n);
      const std::vector<std::uint8_t> packed = encode(x, identity, bits);
      REQUIRE(packed == pack_by_definition(codes, bits));
      REQUIRE(codes_of(packed, n, bits) == x);
    }
  }
}

TEST_CASE("round trip error is at most scale/2 inside the code range", "[affine]") {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (unsigned bits = 1; bits <= 8; ++bits) {
    const float max_code = static_cast<float>((1u << bits) - 1);
    for (affine_params p :
         {affine_params{0.1f, 0.0f}, affine_params{0.37f, -5.0f}, affine_params{1e-3f, -0.2f},
          affine_params{2.5f, 100.0f}, affine_params{0.013f, -1.0f}}) {
      const std::size_t n = 1003;
      std::vector<float> x(n);
      for (float& v : x) v = p.offset + p.scale * max_code * u(rng);
      x[0] = p.offset;  // both ends of the range
      x[1] = std::fma(p.scale, max_code, p.offset);
      std::vector<float> y(n);
      simd::kernels().affine.unpack_dequantize(encode(x, p, bits).data(), n, bits, p, y.data());
      for (std::size_t i = 0; i < n; ++i) {
        // Exact arithmetic gives |y - x| <= scale / 2. Float adds: 1/scale and -offset/scale
        // rounded (<= eps relative each), one rounding in the encode fma and one in the decode
        // fma, i.e. a few eps of (|x| + |offset| + scale * max_code).
        const float slack =
            4.0f * eps * (std::fabs(x[i]) + std::fabs(p.offset) + p.scale * max_code);
        INFO("bits=" << bits << " scale=" << p.scale << " offset=" << p.offset << " x=" << x[i]
                     << " y=" << y[i]);
        REQUIRE(std::fabs(y[i] - x[i]) <= p.scale / 2 + slack);
      }
    }
  }
}

TEST_CASE("exact ties round half to even", "[affine]") {
  // scale 1, offset 0: fma(x, 1, -0) = x exactly, so x = k + 0.5 is an exact tie.
  CHECK(codes_of(encode({0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 13.5f, 14.5f, -0.5f}, {1.0f, 0.0f}, 4),
                 9, 4) == std::vector<float>{0, 2, 2, 4, 4, 6, 14, 14, 0});
  // scale 1/4, offset -1: inv = 4 and bias = 4 are exact and x = -1 + (k + 0.5) / 4 is
  // representable, so t = 4x + 4 = k + 0.5 exactly. 7.5 rounds to 8 and clamps to 7.
  std::vector<float> x;
  for (int k = 0; k < 8; ++k) x.push_back(-1.0f + (static_cast<float>(k) + 0.5f) * 0.25f);
  CHECK(codes_of(encode(x, {0.25f, -1.0f}, 3), 8, 3) == std::vector<float>{0, 2, 2, 4, 4, 6, 6, 7});
  // The same ties through every tail position of a long row (lanes 0..W-1, main loop and tail).
  std::vector<float> ties(77), want(77);
  for (std::size_t i = 0; i < ties.size(); ++i) {
    ties[i] = static_cast<float>(i % 16) + 0.5f;
    const float r = static_cast<float>(i % 16 + (i % 2));  // k + 0.5 -> the even neighbour
    want[i] = r > 31.0f ? 31.0f : r;
  }
  CHECK(codes_of(encode(ties, {1.0f, 0.0f}, 5), ties.size(), 5) == want);
}

TEST_CASE("encoding clamps: NaN and -inf to 0, +inf and large values to the top code", "[affine]") {
  const std::vector<float> x = {std::numeric_limits<float>::quiet_NaN(),
                                inf,
                                -inf,
                                1e30f,
                                -1e30f,
                                2.0f,
                                1e6f,
                                -3.0f,
                                16.49f,
                                16.5f};
  for (unsigned bits : {1u, 2u, 4u, 8u}) {
    const float top = static_cast<float>((1u << bits) - 1);
    const float two = top < 2.0f ? top : 2.0f;
    const float c16 = top < 16.0f ? top : 16.0f;
    INFO("bits=" << bits);
    CHECK(codes_of(encode(x, {1.0f, 0.0f}, bits), x.size(), bits) ==
          std::vector<float>{0, top, 0, top, 0, two, top, 0, c16, c16});
  }
  // scale 0: inv = 0, every finite x encodes to 0 and decodes to the offset.
  std::vector<float> y(4);
  simd::kernels().affine.unpack_dequantize(
      encode({-5.0f, 0.0f, 7.0f, 1e20f}, {0.0f, 3.0f}, 4).data(), 4, 4, {0.0f, 3.0f}, y.data());
  CHECK(y == std::vector<float>{3.0f, 3.0f, 3.0f, 3.0f});
}

TEST_CASE("decode_dot equals the dot product of the decoded vector", "[affine]") {
  std::mt19937 rng(23);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (unsigned bits = 1; bits <= 8; ++bits) {
    for (std::size_t n : {0u, 1u, 15u, 64u, 128u, 1000u, 4099u}) {
      std::vector<std::uint8_t> packed(code_bytes(n, bits));
      for (auto& b : packed) b = static_cast<std::uint8_t>(rng());
      std::vector<float> v(n), d(n);
      for (float& e : v) e = normal(rng);
      // Symmetric codes (offset = -scale * 2^(bits-1)): decoded values cancel in the sum.
      const affine_params p{0.02f, -0.02f * static_cast<float>(1u << (bits - 1))};
      simd::kernels().affine.unpack_dequantize(packed.data(), n, bits, p, d.data());
      double want = 0.0, abs_sum = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        want += double{d[i]} * v[i];
        abs_sum += std::fabs(double{d[i]} * v[i]);
      }
      const float got = simd::kernels().affine.decode_dot(packed.data(), n, bits, p, v.data());
      INFO("bits=" << bits << " n=" << n);
      REQUIRE(std::fabs(got - want) <= static_cast<double>(n + 1) * eps * abs_sum);
    }
  }
}

TEST_CASE("decode_axpy equals decode then axpy, bit for bit", "[affine]") {
  std::mt19937 rng(29);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (unsigned bits = 1; bits <= 8; ++bits) {
    for (std::size_t n : {1u, 13u, 64u, 128u, 1001u}) {
      std::vector<std::uint8_t> packed(code_bytes(n, bits));
      for (auto& b : packed) b = static_cast<std::uint8_t>(rng());
      const affine_params p{0.5f * std::fabs(normal(rng)), normal(rng)};
      const float a = normal(rng);
      std::vector<float> y(n), d(n);
      for (float& e : y) e = normal(rng);
      std::vector<float> want = y;
      simd::kernels().affine.unpack_dequantize(packed.data(), n, bits, p, d.data());
      for (std::size_t i = 0; i < n; ++i) want[i] = std::fma(d[i], a, want[i]);
      simd::kernels().affine.decode_axpy(packed.data(), n, bits, p, a, y.data());
      INFO("bits=" << bits << " n=" << n);
      REQUIRE(same_bits(want, y));
    }
  }
}

#if XSIMD_WITH_SSE2
// The xsimd::generic code path (per-lane reads and writes, 4-lane batches that start mid-byte
// for odd widths) is what NEON and any other target run; SSE2 is always there to host it.
TEST_CASE("the portable fallback matches the oracles", "[affine]") {
  using arch = xsimd::sse2;
  std::mt19937 rng(31);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (unsigned bits = 1; bits <= 8; ++bits) {
    for (std::size_t n = 0; n <= 67; n += (n < 20 ? 1 : 7)) {
      const affine_params p{0.3f, -2.0f};
      std::vector<float> x(n);
      for (float& e : x) e = normal(rng);
      if (n > 3) x[3] = std::numeric_limits<float>::quiet_NaN();
      const std::size_t bytes = code_bytes(n, bits);
      std::vector<std::uint8_t> want(bytes), got(bytes);
      qcodec::ref::quantize_pack(x.data(), n, p, bits, want.data());
      simd::quantize_pack<arch>(x.data(), n, p, bits, got.data());
      INFO("bits=" << bits << " n=" << n);
      REQUIRE(want == got);

      for (auto& b : got) b = static_cast<std::uint8_t>(rng());
      std::vector<float> yw(n), yg(n), v(n);
      for (float& e : v) e = normal(rng);
      qcodec::ref::unpack_dequantize(got.data(), n, bits, p, yw.data());
      simd::unpack_dequantize<arch>(got.data(), n, bits, p, yg.data());
      REQUIRE(same_bits(yw, yg));

      std::vector<float> aw = v, ag = v;
      qcodec::ref::decode_axpy(got.data(), n, bits, p, -1.5f, aw.data());
      simd::decode_axpy<arch>(got.data(), n, bits, p, -1.5f, ag.data());
      REQUIRE(same_bits(aw, ag));

      double abs_sum = 0.0;
      for (std::size_t i = 0; i < n; ++i) abs_sum += std::fabs(double{yw[i]} * v[i]);
      REQUIRE(std::fabs(simd::decode_dot<arch>(got.data(), n, bits, p, v.data()) -
                        qcodec::ref::decode_dot(got.data(), n, bits, p, v.data())) <=
              static_cast<double>(n + 1) * eps * abs_sum);
    }
  }
}
#endif
