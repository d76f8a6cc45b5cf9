// ggml block-format kernels against their scalar oracles (simd/ggml_kernels.hpp): encoders,
// decoders and dot products must return the oracle's bytes and floats exactly, for every row
// length (whole blocks), misaligned rows, random and adversarial blocks.
#include <qcodec/simd/ggml_kernels.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "parity.hpp"

namespace g = qcodec::ggml;

namespace {

/// Block counts to test: every count up to 40 (the AVX-512 encoders work on groups of 16, the
/// AVX2 ones on 8), around larger group multiples, and a long row.
std::vector<std::size_t> block_counts() {
  std::vector<std::size_t> n;
  for (std::size_t i = 0; i <= 40; ++i) n.push_back(i);
  for (std::size_t m : {47u, 48u, 49u, 63u, 64u, 65u, 128u, 257u}) n.push_back(m);
  return n;
}

/// Float inputs that exercise the encoders: Gaussian rows at several scales (tiny ones whose
/// binary16 scales underflow, huge ones that saturate), with zero, constant, one-hot and
/// all-equal-magnitude blocks mixed in.
std::vector<float> encoder_input(std::size_t n, std::size_t offset, std::uint32_t seed) {
  static constexpr float sigmas[] = {1.0f, 3e3f, 1e-6f, 1e-30f, 1e30f, 7.0f, 0.01f};
  const parity::floats f(n + offset, 0, seed, sigmas[seed % 7]);
  std::vector<float> x(f.data, f.data + n + offset);
  std::mt19937 rng(seed);
  for (std::size_t b = offset; b + 32 <= offset + n; b += 32) {
    switch (rng() % 8) {
      case 0:
        for (std::size_t j = 0; j < 32; ++j) x[b + j] = 0.0f;
        break;
      case 1:
        for (std::size_t j = 0; j < 32; ++j) x[b + j] = -2.5f;
        break;
      case 2:
        for (std::size_t j = 0; j < 32; ++j) x[b + j] = j == 7 ? 3.0f : 0.0f;
        break;
      case 3:
        for (std::size_t j = 0; j < 32; ++j) x[b + j] = (j % 2 ? 1.0f : -1.0f);
        break;
      case 4:
        x[b + rng() % 32] *= 40.0f;
        break;
      default:
        break;
    }
  }
  return x;
}

/// Random blocks: random bytes, with every binary16 field a random finite value (subnormals
/// and negative scales included) and every E8M0 exponent random.
template <class Block>
std::vector<Block> random_blocks(std::size_t nb, std::uint32_t seed) {
  std::vector<Block> b(nb);
  std::mt19937 rng(seed);
  auto* bytes = reinterpret_cast<unsigned char*>(b.data());
  for (std::size_t i = 0; i < nb * sizeof(Block); ++i) bytes[i] = static_cast<unsigned char>(rng());
  const auto finite = [&rng] {
    std::uint16_t h;
    do {
      h = static_cast<std::uint16_t>(rng());
    } while ((h & 0x7C00u) == 0x7C00u);
    return qcodec::half::from_bits(h);
  };
  for (Block& blk : b) {
    if constexpr (requires { blk.d; }) blk.d = finite();
    if constexpr (requires { blk.m; }) blk.m = finite();
    if constexpr (requires { blk.s; }) blk.s = finite();
  }
  return b;
}

template <class Block, class Kernel, class Oracle>
void check_encoder(const char* name, Kernel kernel, Oracle oracle) {
  for (std::size_t nb : block_counts()) {
    for (std::size_t off : parity::offsets) {
      const std::size_t n = nb * 32;
      const std::vector<float> x = encoder_input(n, off, static_cast<std::uint32_t>(nb * 3 + off));
      std::vector<Block> want(nb + 1), got(nb + 1);
      std::memset(want.data(), 0xA5, want.size() * sizeof(Block));
      std::memset(got.data(), 0xA5, got.size() * sizeof(Block));
      oracle(x.data() + off, want.data(), static_cast<std::int64_t>(n));
      kernel(x.data() + off, got.data(), static_cast<std::int64_t>(n));
      for (std::size_t i = 0; i <= nb; ++i) {  // block nb: must be left untouched
        INFO(name << " blocks=" << nb << " offset=" << off << " block " << i);
        REQUIRE(std::memcmp(&want[i], &got[i], sizeof(Block)) == 0);
      }
    }
  }
}

template <class Block, class Kernel, class Oracle>
void check_decoder(const char* name, Kernel kernel, Oracle oracle) {
  for (std::size_t nb : block_counts()) {
    for (std::size_t off : parity::offsets) {
      const auto b = random_blocks<Block>(nb, static_cast<std::uint32_t>(nb * 5 + off));
      const std::size_t n = nb * 32;
      std::vector<float> want(n + off + 16, -7.0f), got(n + off + 16, -7.0f);
      oracle(b.data(), want.data() + off, static_cast<std::int64_t>(n));
      kernel(b.data(), got.data() + off, static_cast<std::int64_t>(n));
      INFO(name << " blocks=" << nb << " offset=" << off);
      REQUIRE(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
    }
  }
}

template <class Block, class Act, class Kernel, class Oracle>
void check_dot(const char* name, Kernel kernel, Oracle oracle) {
  for (std::size_t nb : block_counts()) {
    for (std::uint32_t rep = 0; rep < 3; ++rep) {
      const std::uint32_t seed = static_cast<std::uint32_t>(nb * 7 + rep);
      const auto x = random_blocks<Block>(nb, seed);
      auto y = random_blocks<Act>(nb, seed + 1000);
      if (rep == 2) {  // extreme codes: every int8 activation -128, the ends of every range
        for (Act& a : y) std::memset(a.qs, 0x80, sizeof a.qs);
      }
      float want = 1.0f, got = 2.0f;
      oracle(static_cast<std::int64_t>(nb * 32), &want, x.data(), y.data());
      kernel(static_cast<std::int64_t>(nb * 32), &got, x.data(), y.data());
      INFO(name << " blocks=" << nb << " rep=" << rep << ": " << want << " vs " << got);
      REQUIRE(std::memcmp(&want, &got, sizeof want) == 0);
    }
  }
}

}  // namespace

TEST_CASE("ggml encoders match their oracles byte for byte", "[parity][ggml]") {
  const auto& k = parity::under_test().ggml;
  check_encoder<g::block_q4_0>("q4_0", k.q4_0.quantize_row, &g::ref::quantize_row_q4_0);
  check_encoder<g::block_q4_1>("q4_1", k.q4_1.quantize_row, &g::ref::quantize_row_q4_1);
  check_encoder<g::block_q5_0>("q5_0", k.q5_0.quantize_row, &g::ref::quantize_row_q5_0);
  check_encoder<g::block_q5_1>("q5_1", k.q5_1.quantize_row, &g::ref::quantize_row_q5_1);
  check_encoder<g::block_q8_0>("q8_0", k.q8_0.quantize_row, &g::ref::quantize_row_q8_0);
  check_encoder<g::block_q8_1>("q8_1", k.q8_1.quantize_row, &g::ref::quantize_row_q8_1);
  check_encoder<g::block_iq4_nl>("iq4_nl", k.iq4_nl.quantize_row, &g::ref::quantize_row_iq4_nl);
  check_encoder<g::block_mxfp4>("mxfp4", k.mxfp4.quantize_row, &g::ref::quantize_row_mxfp4);
}

TEST_CASE("ggml decoders match their oracles bit for bit", "[parity][ggml]") {
  const auto& k = parity::under_test().ggml;
  check_decoder<g::block_q4_0>("q4_0", k.q4_0.dequantize_row, &g::ref::dequantize_row_q4_0);
  check_decoder<g::block_q4_1>("q4_1", k.q4_1.dequantize_row, &g::ref::dequantize_row_q4_1);
  check_decoder<g::block_q5_0>("q5_0", k.q5_0.dequantize_row, &g::ref::dequantize_row_q5_0);
  check_decoder<g::block_q5_1>("q5_1", k.q5_1.dequantize_row, &g::ref::dequantize_row_q5_1);
  check_decoder<g::block_q8_0>("q8_0", k.q8_0.dequantize_row, &g::ref::dequantize_row_q8_0);
  check_decoder<g::block_q8_1>("q8_1", k.q8_1.dequantize_row, &g::ref::dequantize_row_q8_1);
  check_decoder<g::block_iq4_nl>("iq4_nl", k.iq4_nl.dequantize_row, &g::ref::dequantize_row_iq4_nl);
  check_decoder<g::block_mxfp4>("mxfp4", k.mxfp4.dequantize_row, &g::ref::dequantize_row_mxfp4);
}

TEST_CASE("ggml dot products match their oracles bit for bit", "[parity][ggml]") {
  const auto& k = parity::under_test().ggml;
  check_dot<g::block_q4_0, g::block_q8_0>("q4_0", k.q4_0.vec_dot, &g::ref::vec_dot_q4_0_q8_0);
  check_dot<g::block_q4_1, g::block_q8_1>("q4_1", k.q4_1.vec_dot, &g::ref::vec_dot_q4_1_q8_1);
  check_dot<g::block_q5_0, g::block_q8_0>("q5_0", k.q5_0.vec_dot, &g::ref::vec_dot_q5_0_q8_0);
  check_dot<g::block_q5_1, g::block_q8_1>("q5_1", k.q5_1.vec_dot, &g::ref::vec_dot_q5_1_q8_1);
  check_dot<g::block_q8_0, g::block_q8_0>("q8_0", k.q8_0.vec_dot, &g::ref::vec_dot_q8_0_q8_0);
  check_dot<g::block_iq4_nl, g::block_q8_0>("iq4_nl", k.iq4_nl.vec_dot,
                                            &g::ref::vec_dot_iq4_nl_q8_0);
  check_dot<g::block_mxfp4, g::block_q8_0>("mxfp4", k.mxfp4.vec_dot, &g::ref::vec_dot_mxfp4_q8_0);
}
