// token_row_axpys_w16 against its oracle, bit for bit (exact integer sums and a fixed order of
// float operations), on every rounding mode; and against the affine values summed in double
// within the error of the rounded weights. Buffers end exactly at the last block's last byte,
// so AddressSanitizer sees any read past it.
#include <qcodec/simd/token_rows.hpp>

#include <cfenv>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "../../support/same_bits.hpp"
#include "parity.hpp"
#include "token_units.hpp"

namespace {

using qcodec::simd::block_tokens;

struct rows_case {
  unsigned bits;
  std::size_t n, count, nq, offset;
};

parity::units_buffer random_blocks(const rows_case& c, std::mt19937& rng) {
  return parity::random_units(qcodec::simd::token_rows_block_bytes(c.n, c.bits), c.count, c.offset,
                              rng);
}

// Softmax-like weights; ldp = tokens + 1.
std::vector<float> random_weights(const rows_case& c, std::mt19937& rng) {
  return parity::softmax_like_weights(c.nq, c.count * block_tokens, rng);
}

using rows_kernel = decltype(qcodec::simd::token_row_kernels::token_row_axpys_w16);

std::vector<float> sums(rows_kernel kernel, const rows_case& c, const parity::units_buffer& b,
                        const std::vector<float>& p) {
  std::vector<float> acc(c.nq * c.n + 1);
  for (std::size_t i = 0; i < acc.size(); ++i) acc[i] = 0.25f * float(i % 7) - 0.5f;
  kernel(b.in, c.count, c.n, c.bits, p.data(), c.count * block_tokens + 1, c.nq, acc.data());
  return acc;
}

void check(const rows_case& c, const std::vector<float>& p, const parity::units_buffer& b) {
  INFO("bits=" << c.bits << " n=" << c.n << " count=" << c.count << " nq=" << c.nq
               << " offset=" << c.offset);
  const std::vector<float> want = sums(&qcodec::ref::token_row_axpys_w16, c, b, p);
  const std::vector<float> got = sums(parity::under_test().token_rows.token_row_axpys_w16, c, b, p);
  REQUIRE(same_bits(want, got));
}

}  // namespace

TEST_CASE("token row axpys match their oracle bit for bit", "[parity][token_rows]") {
  std::mt19937 rng(4);
  for (std::size_t n : {16u, 64u, 100u, 128u, 256u})
    for (std::size_t count : {0u, 1u, 2u, 15u, 16u, 17u, 33u})
      for (std::size_t nq : {1u, 2u, 3u, 4u, 5u, 8u})
        for (unsigned bits = 1; bits <= 8; ++bits) {
          if (bits != 4 && (count > 2 || nq > 4 || n > 128)) continue;  // oracle paths: fewer
          const rows_case c{bits, n, count, nq, (n + count + nq) % 3};
          const parity::units_buffer b = random_blocks(c, rng);
          check(c, random_weights(c, rng), b);
        }
}

TEST_CASE("token row axpys: zero, huge, tiny and non-finite weights", "[parity][token_rows]") {
  std::mt19937 rng(5);
  const float inf = std::numeric_limits<float>::infinity();
  for (std::size_t n : {64u, 128u, 100u})
    for (float special : {0.0f, 3e38f, 1e-40f, 1e-38f, inf, -inf, std::nanf("")}) {
      const rows_case c{4, n, 3, 3, 1};
      const parity::units_buffer b = random_blocks(c, rng);
      std::vector<float> p = random_weights(c, rng);
      parity::make_special(p, c.count * block_tokens, special);
      INFO("special=" << special);
      check(c, p, b);
    }
}

TEST_CASE("token row axpys: every rounding mode", "[parity][token_rows]") {
  std::mt19937 rng(6);
  for (int mode : {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO}) {
    INFO("rounding mode " << mode);
    for (std::size_t n : {64u, 128u}) {
      const rows_case c{4, n, 5, 4, 0};
      const parity::units_buffer b = random_blocks(c, rng);
      const std::vector<float> p = random_weights(c, rng);
      std::fesetround(mode);
      const std::vector<float> want = sums(&qcodec::ref::token_row_axpys_w16, c, b, p);
      const std::vector<float> got =
          sums(parity::under_test().token_rows.token_row_axpys_w16, c, b, p);
      std::fesetround(FE_TONEAREST);
      REQUIRE(same_bits(want, got));
    }
  }
}

// What the sums stand for: sum_t p_t (s_t code_t + o_t), each weight p_t s_t off by at most
// max_t |p_t s_t| / 65534 within its chunk of 256 tokens (plus float rounding).
TEST_CASE("token row axpys are the weighted affine values within the weights' rounding",
          "[parity][token_rows]") {
  std::mt19937 rng(7);
  for (unsigned bits : {2u, 4u, 8u})
    for (std::size_t count : {1u, 16u, 20u}) {
      const rows_case c{bits, 128, count, 4, 0};
      const parity::units_buffer b = random_blocks(c, rng);
      const std::vector<float> p = random_weights(c, rng);
      const std::vector<float> got =
          sums(parity::under_test().token_rows.token_row_axpys_w16, c, b, p);
      const std::size_t bytes = qcodec::simd::token_rows_block_bytes(c.n, bits);
      const std::size_t tokens = count * block_tokens,
                        row = qcodec::simd::token_row_bytes(c.n, bits);
      const double top = double((1u << bits) - 1);
      for (std::size_t g = 0; g < c.nq; ++g) {
        std::vector<double> want(c.n);
        for (std::size_t i = 0; i < c.n; ++i) want[i] = 0.25 * double((g * c.n + i) % 7) - 0.5;
        double bound = 0.0, total = 0.0;
        for (std::size_t t0 = 0; t0 < tokens; t0 += 256) {  // the chunks' rounding
          double m = 0.0;
          const std::size_t tn = std::min<std::size_t>(256, tokens - t0);
          for (std::size_t t = t0; t < t0 + tn; ++t) {
            const std::uint8_t* block = b.in + t / block_tokens * bytes;
            const double s = parity::unit_param(block, t % block_tokens, false);
            const double o = parity::unit_param(block, t % block_tokens, true);
            const double pt = p[g * (tokens + 1) + t];
            m = std::max(m, pt * s);
            total += pt * (s * top + std::fabs(o));
            const std::uint8_t* codes = block + 64 + t % block_tokens * row;
            for (std::size_t i = 0; i < c.n; ++i) {
              const std::size_t bit = i * bits;
              std::uint32_t v = std::uint32_t{codes[bit / 8]} >> (bit % 8);
              if (bit % 8 + bits > 8) v |= std::uint32_t{codes[bit / 8 + 1]} << (8 - bit % 8);
              want[i] += pt * (s * double(v & ((1u << bits) - 1)) + o);
            }
          }
          bound += double(tn) * top * m / 65534.0;
        }
        bound += 4.0 * double(tokens + 1) * 0x1p-24 * (total + 1.0);  // float rounding
        for (std::size_t i = 0; i < c.n; ++i) {
          INFO("bits=" << bits << " count=" << count << " g=" << g << " i=" << i);
          REQUIRE(std::fabs(want[i] - double(got[g * c.n + i])) <= bound);
        }
      }
    }
}
