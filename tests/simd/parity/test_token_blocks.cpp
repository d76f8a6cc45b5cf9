// token_block_dots_i8 and the 15-bit prepared scores against their oracles, bit for bit (exact
// integer sums, then fixed float operations), on every rounding mode and on special queries; and
// the oracles against the scores of blocks built here from a code matrix by the documented layout.
// Buffers end exactly at the last block's last byte, so AddressSanitizer sees any read past it.
#include <qcodec/core/half.hpp>
#include <qcodec/simd/token_blocks.hpp>

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "../../support/same_bits.hpp"
#include "parity.hpp"

namespace {

namespace simd = qcodec::simd;

struct dots_case {
  unsigned bits;
  std::size_t n, count, nq, offset;
};

// Blocks with random codes and finite scales and offsets of both signs (or, with `special`, one
// token's scale and another's offset set to it); codes[u][t][c] too.
struct blocks {
  std::vector<std::uint8_t> storage;
  const std::uint8_t* in;
  std::vector<std::uint8_t> codes;
  std::vector<float> scale, offset;  // as stored (binary16 values)
};

blocks random_blocks(const dots_case& c, std::mt19937& rng, float special = 0.0f) {
  const std::size_t bytes = simd::token_block_bytes(c.n, c.bits);
  const std::size_t tokens = c.count * simd::block_tokens;
  blocks b{std::vector<std::uint8_t>(c.count * bytes + c.offset), nullptr,
           std::vector<std::uint8_t>(tokens * c.n), std::vector<float>(tokens),
           std::vector<float>(tokens)};
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uint8_t* out = b.storage.data() + c.offset;
  for (std::size_t u = 0; u < c.count; ++u) {
    std::uint8_t* block = out + u * bytes;
    for (std::size_t t = 0; t < simd::block_tokens; ++t) {
      const std::size_t token = u * simd::block_tokens + t;
      const bool odd = special != 0.0f && token % 7 == 3,
                 odd_offset = special != 0.0f && token % 7 == 5;
      const qcodec::half s(odd ? special : 0.1f * std::fabs(normal(rng)));
      const qcodec::half o(odd_offset ? special : normal(rng));
      b.scale[token] = s.to_float();
      b.offset[token] = o.to_float();
      std::memcpy(block + 2 * t, &s.bits, 2);
      std::memcpy(block + 32 + 2 * t, &o.bits, 2);
      // The layout, written out: groups of 4 * per channels, 64 bytes each; dword t of a group
      // holds token t; channel c is byte c % 4 of it, bit field c % (4 per) / 4.
      const std::size_t per = 8 / c.bits;
      for (std::size_t ch = 0; ch < c.n; ++ch) {
        const auto code = static_cast<std::uint8_t>(rng() & ((1u << c.bits) - 1u));
        b.codes[token * c.n + ch] = code;
        const std::size_t byte = 64 + 64 * (ch / (4 * per)) + 4 * t + ch % 4;
        block[byte] =
            static_cast<std::uint8_t>(block[byte] | code << (c.bits * (ch % (4 * per) / 4)));
      }
    }
  }
  b.in = out;
  return b;
}

std::vector<float> random_queries(const dots_case& c, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(c.nq * c.n);
  for (float& x : q) x = normal(rng);
  return q;
}

using dots_kernel = decltype(simd::token_block_kernels::token_block_dots_i8);

// ld = 16 count + 3; the gaps keep their fill.
std::vector<float> scores(dots_kernel kernel, const dots_case& c, const blocks& b,
                          const std::vector<float>& q) {
  const std::size_t ld = c.count * simd::block_tokens + 3;
  std::vector<float> out(c.nq * ld, -7.0f);
  kernel(b.in, c.count, c.n, c.bits, q.data(), c.nq, out.data(), ld);
  return out;
}

using query_kernel = decltype(simd::token_block_kernels::token_block_query);
using prepared_kernel = decltype(simd::token_block_kernels::token_block_dots_prepared);

// The queries prepared by `prepare`, 4 n bytes apart (as in the floats of kv::token_blocks'
// prepared queries; the gaps keep their fill), then scored by `dots`.
std::vector<std::uint8_t> prepared_queries(query_kernel prepare, const dots_case& c,
                                           const std::vector<float>& q) {
  std::vector<std::uint8_t> queries(c.nq * 4 * c.n + 8, 0xA5);
  for (std::size_t g = 0; g < c.nq; ++g) prepare(&q[g * c.n], c.n, &queries[g * 4 * c.n]);
  return queries;
}
std::vector<float> prepared_scores(query_kernel prepare, prepared_kernel dots, const dots_case& c,
                                   const blocks& b, const std::vector<float>& q) {
  const std::vector<std::uint8_t> queries = prepared_queries(prepare, c, q);
  const std::size_t ld = c.count * simd::block_tokens + 3;
  std::vector<float> out(c.nq * ld, -7.0f);
  dots(b.in, c.count, c.n, c.bits, queries.data(), 4 * c.n, c.nq, out.data(), ld);
  return out;
}

// Every form against the oracle: from float queries (the fastest and the base form), and from
// prepared ones (the oracle's and the table's, which prepare the same bytes).
void check(const dots_case& c, const blocks& b, const std::vector<float>& q) {
  INFO("bits=" << c.bits << " n=" << c.n << " count=" << c.count << " nq=" << c.nq
               << " offset=" << c.offset);
  const std::vector<float> want = scores(&qcodec::ref::token_block_dots_i8, c, b, q);
  const auto& kernels = parity::under_test().token_blocks;
  REQUIRE(same_bits(want, scores(kernels.token_block_dots_i8, c, b, q)));
  REQUIRE(same_bits(want, scores(kernels.token_block_dots_i8_base, c, b, q)));
  REQUIRE(prepared_queries(kernels.token_block_query, c, q) ==
          prepared_queries(&qcodec::ref::token_block_query, c, q));
  REQUIRE(same_bits(want, prepared_scores(&qcodec::ref::token_block_query,
                                          &qcodec::ref::token_block_dots_prepared, c, b, q)));
  REQUIRE(same_bits(want, prepared_scores(kernels.token_block_query,
                                          kernels.token_block_dots_prepared, c, b, q)));
}

// Every 8-bit code of the blocks 255: the largest sums.
void saturate_codes(const dots_case& c, blocks& b) {
  const std::size_t bytes = simd::token_block_bytes(c.n, 8);
  for (std::size_t u = 0; u < c.count; ++u)
    std::memset(b.storage.data() + c.offset + u * bytes + 64, 0xFF, bytes - 64);
  std::fill(b.codes.begin(), b.codes.end(), std::uint8_t{255});
}

// 15-bit prepared queries: the table's form and scores (fastest and base) against the oracle's.
void check_i16(const dots_case& c, const blocks& b, const std::vector<float>& q) {
  INFO("i16 bits=" << c.bits << " n=" << c.n << " count=" << c.count << " nq=" << c.nq
                   << " offset=" << c.offset);
  const auto& kernels = parity::under_test().token_blocks;
  REQUIRE(prepared_queries(kernels.token_block_query_i16, c, q) ==
          prepared_queries(&qcodec::ref::token_block_query_i16, c, q));
  const std::vector<float> want = prepared_scores(
      &qcodec::ref::token_block_query_i16, &qcodec::ref::token_block_dots_prepared_i16, c, b, q);
  REQUIRE(same_bits(want, prepared_scores(kernels.token_block_query_i16,
                                          kernels.token_block_dots_prepared_i16, c, b, q)));
  REQUIRE(same_bits(want, prepared_scores(kernels.token_block_query_i16,
                                          kernels.token_block_dots_prepared_i16_base, c, b, q)));
}

// Scores `got` (ld = 16 count + 3) are q' . (s_t code_t + o_t), q' the form of q on `grid` (127:
// int8, 16383: 15 bits), up to float rounding: checked in double against the code matrix the
// blocks were built from; the gaps untouched.
void check_affine_scores(const dots_case& c, const blocks& b, const std::vector<float>& q,
                         const std::vector<float>& got, float grid) {
  const std::size_t n = c.n, ld = c.count * simd::block_tokens + 3;
  for (std::size_t g = 0; g < c.nq; ++g) {
    const float* qg = &q[g * n];
    const auto f = simd::detail::int8_dots::form_of<simd::scalar>(qg, n, grid);
    for (std::size_t t = 0; t < c.count * simd::block_tokens; ++t) {
      double want = 0.0, magnitude = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        const double qi = std::nearbyint(qg[i] * f.inv) * double(f.scale);
        const double k = double(b.scale[t]) * b.codes[t * n + i] + b.offset[t];
        want += qi * k;
        magnitude += std::fabs(qi * k);
      }
      INFO("bits=" << c.bits << " n=" << n << " g=" << g << " t=" << t);
      REQUIRE(std::fabs(got[g * ld + t] - want) <= 1e-5 * magnitude + 1e-6);
    }
    REQUIRE(got[g * ld + c.count * simd::block_tokens] == -7.0f);  // the gap untouched
  }
}

}  // namespace

TEST_CASE("token block dots match their oracle bit for bit", "[parity][token_blocks]") {
  if (!simd::cpu_supports_avx512_vnni()) WARN("no AVX-512 VNNI: the VNNI path is not checked");
  std::mt19937 rng(4);
  // Every n a multiple of 4 (the tails of the int8 query's 16-float steps) up to 64, wider
  // groups, 512 and 1024 (the widest fast paths of 15-bit and int8 queries) and past them (the
  // generic sums, per block); n not a multiple of the group (a partial last group) takes the
  // generic sums too. 15-bit queries too: their fast paths take 8-bit codes (4-bit ones the
  // generic sums).
  for (unsigned bits : {1u, 2u, 4u, 8u})
    for (std::size_t n : {4u,  8u,  12u, 16u, 20u,  24u,  28u,  32u,  36u,   40u,
                          48u, 60u, 64u, 96u, 128u, 256u, 512u, 516u, 1024u, 1056u})
      for (std::size_t count : {0u, 1u, 2u, 3u, 17u})
        for (std::size_t nq : {1u, 2u, 3u, 4u, 5u, 8u}) {
          if (n >= 512 && (count > 3 || nq > 5)) continue;
          const dots_case c{bits, n, count, nq, (n + count + nq) % 3};
          const blocks b = random_blocks(c, rng);
          const std::vector<float> q = random_queries(c, rng);
          check(c, b, q);
          if (bits >= 4) check_i16(c, b, q);
        }
}

TEST_CASE("token block dots: zero, tiny, huge and non-finite queries", "[parity][token_blocks]") {
  std::mt19937 rng(5);
  const float inf = std::numeric_limits<float>::infinity();
  for (std::size_t n : {64u, 128u})
    for (float special : {0.0f, -0.0f, 1e-40f, 3e38f, inf, -inf, std::nanf("")})
      for (unsigned bits : {4u, 8u}) {
        const dots_case c{bits, n, 5, 3, 1};
        const blocks b = random_blocks(c, rng);
        std::vector<float> q = random_queries(c, rng);
        // Query 1: zero or tiny throughout, or one huge or non-finite element.
        for (std::size_t i = 0; i < n; ++i) {
          float& x = q[n + i];
          if (special == 0.0f || std::fabs(special) < 1e-30f)
            x = special * float(i % 3);
          else if (i == 37)
            x = special;
        }
        INFO("special=" << special);
        check(c, b, q);
        if (bits == 8) check_i16(c, b, q);
      }
}

TEST_CASE("token block dots: stored infinities, NaNs and subnormals", "[parity][token_blocks]") {
  std::mt19937 rng(8);
  const float inf = std::numeric_limits<float>::infinity();
  for (float special : {inf, -inf, std::nanf(""), 3e-6f, 65504.0f})
    for (unsigned bits : {4u, 8u}) {
      const dots_case c{bits, 64, 5, 3, 2};
      const blocks b = random_blocks(c, rng, special);
      INFO("special=" << special);
      const std::vector<float> q = random_queries(c, rng);
      check(c, b, q);
      if (bits == 8) check_i16(c, b, q);
    }
}

// With 8-bit codes, n = 1024 and a query of one sign, the integer sums pass 2^24: their
// conversion to float rounds, in the current mode.
TEST_CASE("token block dots: every rounding mode", "[parity][token_blocks]") {
  std::mt19937 rng(6);
  for (int mode : {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO}) {
    INFO("rounding mode " << mode);
    for (const dots_case c :
         {dots_case{1, 64, 9, 4, 0}, dots_case{2, 64, 9, 4, 0}, dots_case{4, 64, 9, 4, 0},
          dots_case{4, 128, 9, 4, 0}, dots_case{8, 1024, 2, 2, 0}}) {
      const blocks b = random_blocks(c, rng);
      std::vector<float> q = random_queries(c, rng);
      if (c.bits == 8) {  // q8 = 127 throughout: sums near 127 * 1024 * 127.5, about 2^24
        for (float& x : q) x = 1.0f;
        std::size_t past = 0;
        for (std::size_t t = 0; t < c.count * simd::block_tokens; ++t) {
          std::size_t sum = 0;
          for (std::size_t i = 0; i < c.n; ++i) sum += 127u * b.codes[t * c.n + i];
          past += sum > (1u << 24) && sum % 2 != 0;
        }
        REQUIRE(past > 0);  // some conversion rounds
      }
      const auto& kernels = parity::under_test().token_blocks;
      std::fesetround(mode);
      const std::vector<float> want = scores(&qcodec::ref::token_block_dots_i8, c, b, q);
      const std::vector<float> got = scores(kernels.token_block_dots_i8, c, b, q);
      const std::vector<float> base = scores(kernels.token_block_dots_i8_base, c, b, q);
      const std::vector<float> prepared =
          prepared_scores(kernels.token_block_query, kernels.token_block_dots_prepared, c, b, q);
      std::fesetround(FE_TONEAREST);
      REQUIRE(same_bits(want, got));
      REQUIRE(same_bits(want, base));
      REQUIRE(same_bits(want, prepared));
    }
  }
}

// The scores are q' . (s_t code_t + o_t), q' the int8 form of q (int8_dots.hpp), up to float
// rounding.
TEST_CASE("token block dots score the affine keys of the layout", "[parity][token_blocks]") {
  std::mt19937 rng(7);
  for (unsigned bits : {1u, 2u, 4u, 8u})
    for (std::size_t n : {64u, 128u}) {
      const dots_case c{bits, n, 4, 3, 0};
      const blocks b = random_blocks(c, rng);
      const std::vector<float> q = random_queries(c, rng);
      check_affine_scores(
          c, b, q, scores(parity::under_test().token_blocks.token_block_dots_i8, c, b, q), 127.0f);
    }
}

// At n = 512 with queries of one sign (q16 = 16383 or -16383) the sums pass 2^24: their
// conversion to float rounds, in the current mode. With every code 255 they are the largest the
// fast paths take, 255 * 16383 * 512 (and the VNNI high bytes' sums times 128, 2^31 - 8.4e6).
TEST_CASE("token block dots of 15-bit queries: every rounding mode", "[parity][token_blocks]") {
  std::mt19937 rng(11);
  const dots_case c{8, 512, 3, 4, 0};
  blocks b = random_blocks(c, rng);
  std::vector<float> q = random_queries(c, rng);
  for (std::size_t i = 0; i < c.n; ++i) {  // queries 0 and 1
    q[i] = 1.0f;
    q[c.n + i] = -1.0f;
  }
  for (int mode : {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO, -1}) {
    if (mode == -1) {  // then the largest sums, to nearest
      saturate_codes(c, b);
      mode = FE_TONEAREST;
    }
    INFO("rounding mode " << mode);
    const auto& kernels = parity::under_test().token_blocks;
    std::fesetround(mode);
    const std::vector<float> want = prepared_scores(
        &qcodec::ref::token_block_query_i16, &qcodec::ref::token_block_dots_prepared_i16, c, b, q);
    const std::vector<float> got = prepared_scores(kernels.token_block_query_i16,
                                                   kernels.token_block_dots_prepared_i16, c, b, q);
    const std::vector<float> base = prepared_scores(
        kernels.token_block_query_i16, kernels.token_block_dots_prepared_i16_base, c, b, q);
    std::fesetround(FE_TONEAREST);
    REQUIRE(same_bits(want, got));
    REQUIRE(same_bits(want, base));
  }
}

// The scores are q' . (s_t code_t + o_t), q' the 15-bit form of q (grid 16383), up to float
// rounding; at n = 1024 every code 255 and a query of one sign, whose sums pass 2^31 (the generic
// sums are 64-bit there).
TEST_CASE("token block dots of 15-bit queries score the affine keys of the layout",
          "[parity][token_blocks]") {
  std::mt19937 rng(12);
  for (std::size_t n : {64u, 128u, 512u, 1024u}) {
    const dots_case c{8, n, 3, 3, 0};
    blocks b = random_blocks(c, rng);
    std::vector<float> q = random_queries(c, rng);
    if (n == 1024) {
      saturate_codes(c, b);
      for (std::size_t i = 0; i < n; ++i) q[i] = 1.0f;
    }
    const auto& kernels = parity::under_test().token_blocks;
    check_affine_scores(c, b, q,
                        prepared_scores(kernels.token_block_query_i16,
                                        kernels.token_block_dots_prepared_i16, c, b, q),
                        16383.0f);
  }
}
