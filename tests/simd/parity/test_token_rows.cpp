// token_row_axpys_w16 against its oracle, bit for bit (exact integer sums and a fixed order of
// float operations), on every rounding mode; and against the affine values summed in double
// within the error of the rounded weights. Buffers end exactly at the last block's last byte,
// so AddressSanitizer sees any read past it.
#include <qcodec/core/half.hpp>
#include <qcodec/simd/token_rows.hpp>

#include <cfenv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "../../support/same_bits.hpp"
#include "parity.hpp"

namespace {

using qcodec::simd::block_tokens;

struct rows_case {
  unsigned bits;
  std::size_t n, count, nq, offset;
};

struct blocks_buffer {
  std::vector<std::uint8_t> storage;
  const std::uint8_t* in;
};

// Random codes, scales in [0, 0.1) and offsets in [-1, 1) as binary16.
blocks_buffer random_blocks(const rows_case& c, std::mt19937& rng) {
  const std::size_t bytes = qcodec::simd::token_rows_block_bytes(c.n, c.bits);
  blocks_buffer b{std::vector<std::uint8_t>(c.count * bytes + c.offset), nullptr};
  std::uniform_real_distribution<float> scale(0.0f, 0.1f), offset(-1.0f, 1.0f);
  for (std::size_t u = 0; u < c.count; ++u) {
    std::uint8_t* block = b.storage.data() + c.offset + u * bytes;
    for (std::size_t i = 64; i < bytes; ++i) block[i] = static_cast<std::uint8_t>(rng());
    for (std::size_t t = 0; t < block_tokens; ++t) {
      const qcodec::half s(scale(rng)), o(offset(rng));
      std::memcpy(block + 2 * t, &s.bits, 2);
      std::memcpy(block + 32 + 2 * t, &o.bits, 2);
    }
  }
  b.in = b.storage.data() + c.offset;
  return b;
}

// Softmax-like weights (positive, spread over decades, a few zeros); ldp = tokens + 1.
std::vector<float> random_weights(const rows_case& c, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> p(c.nq * (c.count * block_tokens + 1), 0.0f);
  for (std::size_t i = 0; i < p.size(); ++i)
    p[i] = i % 11 == 5 ? 0.0f : std::exp(3.0f * normal(rng));
  return p;
}

using rows_kernel = decltype(qcodec::simd::token_row_kernels::token_row_axpys_w16);

std::vector<float> sums(rows_kernel kernel, const rows_case& c, const blocks_buffer& b,
                        const std::vector<float>& p) {
  std::vector<float> acc(c.nq * c.n + 1);
  for (std::size_t i = 0; i < acc.size(); ++i) acc[i] = 0.25f * float(i % 7) - 0.5f;
  kernel(b.in, c.count, c.n, c.bits, p.data(), c.count * block_tokens + 1, c.nq, acc.data());
  return acc;
}

void check(const rows_case& c, const std::vector<float>& p, const blocks_buffer& b) {
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
          const blocks_buffer b = random_blocks(c, rng);
          check(c, random_weights(c, rng), b);
        }
}

TEST_CASE("token row axpys: zero, huge, tiny and non-finite weights", "[parity][token_rows]") {
  std::mt19937 rng(5);
  const float inf = std::numeric_limits<float>::infinity();
  for (std::size_t n : {64u, 128u, 100u})
    for (float special : {0.0f, 3e38f, 1e-40f, 1e-38f, inf, -inf, std::nanf("")}) {
      const rows_case c{4, n, 3, 3, 1};
      const blocks_buffer b = random_blocks(c, rng);
      std::vector<float> p = random_weights(c, rng);
      // Vector 1: zero, or tiny, or one huge or non-finite weight.
      const std::size_t tokens = c.count * block_tokens;
      for (std::size_t t = 0; t < tokens; ++t) {
        float& x = p[(tokens + 1) + t];
        if (special == 0.0f || std::fabs(special) < 1e-30f)
          x = special * float(t % 3);
        else if (t == 20)
          x = special;
      }
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
      const blocks_buffer b = random_blocks(c, rng);
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
      const blocks_buffer b = random_blocks(c, rng);
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
            std::uint16_t h[2];
            std::memcpy(&h[0], block + 2 * (t % block_tokens), 2);
            std::memcpy(&h[1], block + 32 + 2 * (t % block_tokens), 2);
            const double s = qcodec::half::from_bits(h[0]).to_float();
            const double o = qcodec::half::from_bits(h[1]).to_float();
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
