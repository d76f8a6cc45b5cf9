// token_quad_axpys_u8 (the fastest form and the base one, without VNNI on AVX-512) against its
// oracle, bit for bit (exact integer sums and a fixed order of float operations), on every
// rounding mode; the layout against a plain row-major reading; and
// the sums against the affine values summed in double within the error of the rounded weights.
// Buffers end exactly at the last block's last byte, so AddressSanitizer sees any read past it.
#include <qcodec/simd/token_quads.hpp>

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "../../support/same_bits.hpp"
#include "parity.hpp"
#include "token_units.hpp"

namespace {

using qcodec::simd::block_tokens;

struct quads_case {
  unsigned bits;
  std::size_t n, count, nq, offset;
};

// (Random codes in the unused positions of a narrow last slice too: the sums must ignore them.)
parity::units_buffer random_blocks(const quads_case& c, std::mt19937& rng) {
  return parity::random_units(qcodec::simd::token_quads_block_bytes(c.n, c.bits), c.count, c.offset,
                              rng);
}

// Softmax-like weights; ldp = tokens + 1.
std::vector<float> random_weights(const quads_case& c, std::mt19937& rng) {
  return parity::softmax_like_weights(c.nq, c.count * block_tokens, rng);
}

using quads_kernel = decltype(qcodec::simd::token_quad_kernels::token_quad_axpys_u8);

std::vector<float> sums(quads_kernel kernel, const quads_case& c, const parity::units_buffer& b,
                        const std::vector<float>& p) {
  std::vector<float> acc(c.nq * c.n + 1);
  for (std::size_t i = 0; i < acc.size(); ++i) acc[i] = 0.25f * float(i % 7) - 0.5f;
  kernel(b.in, c.count, c.n, c.bits, p.data(), c.count * block_tokens + 1, c.nq, acc.data());
  return acc;
}

void check(const quads_case& c, const std::vector<float>& p, const parity::units_buffer& b) {
  INFO("bits=" << c.bits << " n=" << c.n << " count=" << c.count << " nq=" << c.nq
               << " offset=" << c.offset);
  const std::vector<float> want = sums(&qcodec::ref::token_quad_axpys_u8, c, b, p);
  const auto& kernels = parity::under_test().token_quads;
  REQUIRE(same_bits(want, sums(kernels.token_quad_axpys_u8, c, b, p)));
  REQUIRE(same_bits(want, sums(kernels.token_quad_axpys_u8_base, c, b, p)));
}

}  // namespace

TEST_CASE("token quad layout: every code has its own bits", "[parity][token_quads]") {
  for (unsigned bits : {2u, 4u, 8u})
    for (std::size_t n : {1u, 2u, 3u, 8u, 31u, 32u, 33u, 63u, 64u, 65u, 100u, 128u}) {
      const std::size_t bytes = qcodec::simd::token_quads_block_bytes(n, bits);
      std::set<std::pair<std::size_t, unsigned>> places;
      for (std::size_t t = 0; t < block_tokens; ++t)
        for (std::size_t i = 0; i < n; ++i) {
          const auto c = qcodec::simd::quad_code_at(n, bits, t, i);
          CHECK(c.byte >= 64);
          CHECK(c.byte < bytes);
          CHECK(c.shift % bits == 0);
          CHECK(c.shift < 8);
          CHECK(c.top == (c.shift == 8 - bits));  // (8 bits: every code)
          places.insert({c.byte, c.shift});
        }
      CHECK(places.size() == block_tokens * n);  // no two codes share bits
      CHECK(bytes == 64 + block_tokens * ((n * bits + 7) / 8));
    }
  // 4 bits: slices of 32 columns; four tokens' low nibbles are columns 0-15, high nibbles 16-31.
  using qcodec::simd::quad_code_at;
  CHECK(quad_code_at(64, 4, 5, 3).byte == 64 + 64 + 4 * 3 + 1);
  CHECK(quad_code_at(64, 4, 5, 3).shift == 0);
  CHECK(quad_code_at(64, 4, 5, 19).byte == 64 + 64 + 4 * 3 + 1);
  CHECK(quad_code_at(64, 4, 5, 19).shift == 4);
  CHECK(quad_code_at(64, 4, 0, 32).byte == 64 + 256);
  // 2 bits: slices of 64 columns; position p of four tokens' bytes is columns 16 p .. 16 p + 15.
  CHECK(quad_code_at(128, 2, 5, 3).byte == 64 + 64 + 4 * 3 + 1);
  CHECK(quad_code_at(128, 2, 5, 3).shift == 0);
  CHECK(quad_code_at(128, 2, 5, 35).byte == 64 + 64 + 4 * 3 + 1);
  CHECK(quad_code_at(128, 2, 5, 35).shift == 4);
  CHECK(quad_code_at(128, 2, 5, 51).shift == 6);
  CHECK(quad_code_at(128, 2, 0, 64).byte == 64 + 256);
  // A narrow last slice: at n = 100 slice 1 holds 36 columns, h = 9 bytes per token, and its
  // column 27 is the top position of byte 0.
  CHECK(quad_code_at(100, 2, 5, 64 + 27).byte == 64 + 256 + 4 * 9 * 1 + 0 + 1);
  CHECK(quad_code_at(100, 2, 5, 64 + 27).shift == 6);
  CHECK(quad_code_at(100, 2, 5, 64 + 27).top);
  // 8 bits: slices of 16 columns, a byte per code.
  CHECK(quad_code_at(64, 8, 5, 3).byte == 64 + 64 + 4 * 3 + 1);
  CHECK(quad_code_at(64, 8, 5, 19).byte == 64 + 256 + 64 + 4 * 3 + 1);
  CHECK(quad_code_at(64, 8, 5, 19).shift == 0);
}

TEST_CASE("token quad axpys match their oracle bit for bit", "[parity][token_quads]") {
  std::mt19937 rng(4);
  for (unsigned bits : {2u, 4u, 8u})
    for (std::size_t n : {8u, 32u, 64u, 96u, 100u, 128u, 192u, 256u})
      for (std::size_t count : {0u, 1u, 2u, 15u, 16u, 17u, 33u})
        for (std::size_t nq : {1u, 2u, 3u, 4u, 5u, 8u}) {
          const quads_case c{bits, n, count, nq, (n + count + nq) % 3};
          const parity::units_buffer b = random_blocks(c, rng);
          check(c, random_weights(c, rng), b);
        }
}

TEST_CASE("token quad axpys: zero, huge, tiny, negative and non-finite weights",
          "[parity][token_quads]") {
  std::mt19937 rng(5);
  const float inf = std::numeric_limits<float>::infinity();
  for (unsigned bits : {2u, 4u, 8u})
    for (std::size_t n : {64u, 128u, 100u})
      // (1e-34, 1e-33 and 1e-32: blocks whose S_u falls below 2^-122, 2^-120 or FLT_MIN (4, 2
      // or 8 bits) and blocks just above it)
      for (float special :
           {0.0f, 3e38f, 1e-40f, 1e-38f, 1e-34f, 1e-33f, 1e-32f, -1.0f, inf, -inf, std::nanf("")}) {
        const quads_case c{bits, n, 3, 3, 1};
        const parity::units_buffer b = random_blocks(c, rng);
        std::vector<float> p = random_weights(c, rng);
        parity::make_special(p, c.count * block_tokens, special);
        INFO("special=" << special);
        check(c, p, b);
      }
}

// inf * 0: a token whose weight is infinite and whose scale and offset are zero makes w_t and
// its middle value NaN, so M and R are both NaN; every target must return the same NaN.
TEST_CASE("token quad axpys: an infinite weight on a zero scale and offset",
          "[parity][token_quads]") {
  std::mt19937 rng(8);
  const float inf = std::numeric_limits<float>::infinity();
  for (unsigned bits : {2u, 4u, 8u})
    for (std::size_t n : {64u, 128u, 100u}) {
      const quads_case c{bits, n, 3, 3, 1};
      parity::units_buffer b = random_blocks(c, rng);
      // Token 20 (block 1, token 4): binary16 zero scale and offset.
      std::uint8_t* block =
          b.storage.data() + c.offset + qcodec::simd::token_quads_block_bytes(n, bits);
      for (std::size_t at : {2 * 4, 32 + 2 * 4}) block[at] = block[at + 1] = 0;
      std::vector<float> p = random_weights(c, rng);
      parity::make_special(p, c.count * block_tokens, inf);  // vector 1's token 20
      check(c, p, b);
    }
}

// (Weights of one size besides softmax-like ones: at 8 bits many q_t near 32767 a block, whose
// integer sums then pass 2^24 and round as floats.)
TEST_CASE("token quad axpys: every rounding mode", "[parity][token_quads]") {
  std::mt19937 rng(6);
  for (int mode : {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO}) {
    INFO("rounding mode " << mode);
    for (unsigned bits : {2u, 4u, 8u})
      for (std::size_t n : {64u, 96u, 128u})
        for (bool even : {false, true}) {
          const quads_case c{bits, n, 5, 4, 0};
          const parity::units_buffer b = random_blocks(c, rng);
          std::vector<float> p = random_weights(c, rng);
          if (even) std::fill(p.begin(), p.end(), 1.0f);
          std::fesetround(mode);
          const std::vector<float> want = sums(&qcodec::ref::token_quad_axpys_u8, c, b, p);
          const auto& kernels = parity::under_test().token_quads;
          const std::vector<float> got = sums(kernels.token_quad_axpys_u8, c, b, p);
          const std::vector<float> base = sums(kernels.token_quad_axpys_u8_base, c, b, p);
          std::fesetround(FE_TONEAREST);
          REQUIRE(same_bits(want, got));
          REQUIRE(same_bits(want, base));
        }
  }
}

// What the sums stand for: sum_t p_t (s_t code_t + o_t), each weight p_t s_t off by at most
// max |p_t s_t| / 2W over its block of 16 tokens (W = 255, 32767 at 8 bits; plus float rounding).
TEST_CASE("token quad axpys are the weighted affine values within the weights' rounding",
          "[parity][token_quads]") {
  std::mt19937 rng(7);
  for (unsigned bits : {2u, 4u, 8u})
    for (std::size_t n : {64u, 100u})
      for (std::size_t count : {1u, 16u, 20u}) {
        const quads_case c{bits, n, count, 4, 0};
        const double top = double((1u << bits) - 1);
        const parity::units_buffer b = random_blocks(c, rng);
        const std::vector<float> p = random_weights(c, rng);
        const std::vector<float> got =
            sums(parity::under_test().token_quads.token_quad_axpys_u8, c, b, p);
        const std::size_t bytes = qcodec::simd::token_quads_block_bytes(c.n, bits);
        const std::size_t tokens = count * block_tokens;
        for (std::size_t g = 0; g < c.nq; ++g) {
          std::vector<double> want(c.n);
          for (std::size_t i = 0; i < c.n; ++i) want[i] = 0.25 * double((g * c.n + i) % 7) - 0.5;
          double bound = 0.0, total = 0.0;
          for (std::size_t u = 0; u < count; ++u) {
            const std::uint8_t* block = b.in + u * bytes;
            double m = 0.0;
            for (std::size_t t = 0; t < block_tokens; ++t) {
              const double s = parity::unit_param(block, t, false);
              const double o = parity::unit_param(block, t, true);
              const double pt = p[g * (tokens + 1) + u * block_tokens + t];
              m = std::max(m, pt * s);
              total += pt * (s * top + std::fabs(o));
              for (std::size_t i = 0; i < c.n; ++i)
                want[i] += pt * (s * double(qcodec::simd::quad_code(block, c.n, bits, t, i)) + o);
            }
            bound += double(block_tokens) * top * m / (bits == 8 ? 65534.0 : 510.0);
          }
          bound += 4.0 * double(tokens + 1) * 0x1p-24 * (total + 1.0);  // float rounding
          for (std::size_t i = 0; i < c.n; ++i) {
            INFO("bits=" << bits << " n=" << n << " count=" << count << " g=" << g << " i=" << i);
            REQUIRE(std::fabs(want[i] - double(got[g * c.n + i])) <= bound);
          }
        }
      }
}
