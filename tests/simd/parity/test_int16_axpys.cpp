// code_row_axpys_w16 against its oracle, bit for bit (the sums are exact integers, converted and
// scaled once), on every rounding mode; and against the float code_row_axpys within the error of
// the rounded weights. Buffers end exactly at the last row's last byte, so AddressSanitizer sees
// any read past it.
#include <qcodec/simd/int16_axpys.hpp>

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "../../support/same_bits.hpp"
#include "parity.hpp"

namespace {

struct axpys_case {
  unsigned bits;
  std::size_t n, rows, nq, pad, offset;
};

struct rows_buffer {
  std::vector<std::uint8_t> storage;
  const std::uint8_t* in;
  std::size_t stride;
};

rows_buffer random_rows(const axpys_case& c, std::mt19937& rng) {
  const std::size_t bytes = (c.n * c.bits + 7) / 8, stride = bytes + c.pad;
  const std::size_t total = c.rows == 0 ? 0 : (c.rows - 1) * stride + bytes;
  rows_buffer b{std::vector<std::uint8_t>(total + c.offset), nullptr, stride};
  for (std::size_t i = 0; i < total; ++i)
    b.storage[c.offset + i] = static_cast<std::uint8_t>(rng());
  b.in = b.storage.data() + c.offset;
  return b;
}

// Softmax-like weights (positive, spread over decades, a few zeros) or signed normal ones;
// ldw = rows + 1.
std::vector<float> random_weights(const axpys_case& c, bool positive, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(c.nq * (c.rows + 1), 0.0f);
  for (std::size_t i = 0; i < w.size(); ++i)
    w[i] = !positive ? normal(rng) : i % 11 == 5 ? 0.0f : std::exp(3.0f * normal(rng));
  return w;
}

using axpys_kernel = decltype(qcodec::simd::int16_axpy_kernels::code_row_axpys_w16);

std::vector<float> sums(axpys_kernel kernel, const axpys_case& c, const rows_buffer& b,
                        const std::vector<float>& w) {
  std::vector<float> acc(c.nq * c.n + 1);
  for (std::size_t i = 0; i < acc.size(); ++i) acc[i] = 0.25f * float(i % 7) - 0.5f;
  kernel(b.in, b.stride, c.rows, c.n, c.bits, w.data(), c.rows + 1, c.nq, acc.data());
  return acc;
}

void check(const axpys_case& c, const std::vector<float>& w, const rows_buffer& b) {
  INFO("bits=" << c.bits << " n=" << c.n << " rows=" << c.rows << " nq=" << c.nq << " pad=" << c.pad
               << " offset=" << c.offset);
  const std::vector<float> want = sums(&qcodec::ref::code_row_axpys_w16, c, b, w);
  const std::vector<float> got = sums(parity::under_test().int16_axpys.code_row_axpys_w16, c, b, w);
  REQUIRE(same_bits(want, got));
}

}  // namespace

TEST_CASE("int16-weight code row axpys match their oracle bit for bit", "[parity][int16_axpys]") {
  if (!qcodec::simd::cpu_supports_avx512_vnni())
    WARN("no AVX-512 VNNI: only the generic integer sums are checked");
  std::mt19937 rng(3);
  for (std::size_t n : {16u, 64u, 100u, 128u, 192u, 256u, 1024u})
    for (std::size_t rows : {0u, 1u, 2u, 3u, 15u, 16u, 17u, 33u, 64u, 255u, 256u})
      for (std::size_t nq : {1u, 2u, 3u, 4u, 5u, 8u})
        for (std::size_t pad : {0u, 3u})
          for (unsigned bits = 1; bits <= 8; ++bits) {
            if (bits != 4 && (rows > 17 || nq > 4 || n > 128)) continue;  // oracle paths: fewer
            if (n == 1024 && (rows > 64 || nq > 4)) continue;
            const axpys_case c{bits, n, rows, nq, pad, (n + rows + nq) % 3};
            const rows_buffer b = random_rows(c, rng);
            check(c, random_weights(c, true, rng), b);
            check(c, random_weights(c, false, rng), b);
          }
}

TEST_CASE("int16-weight code row axpys: zero, huge, tiny and non-finite weights",
          "[parity][int16_axpys]") {
  std::mt19937 rng(8);
  const float inf = std::numeric_limits<float>::infinity();
  for (std::size_t n : {64u, 128u, 100u})
    for (float special : {0.0f, 3e38f, 1e-40f, 1e-38f, inf, -inf, std::nanf("")}) {
      const axpys_case c{4, n, 37, 3, 1, 2};
      const rows_buffer b = random_rows(c, rng);
      std::vector<float> w = random_weights(c, true, rng);
      // Vector 1: zero, or tiny (1e-38: 32767 / max overflows), or one huge or non-finite weight.
      for (std::size_t r = 0; r < c.rows; ++r) {
        float& x = w[(c.rows + 1) + r];
        if (special == 0.0f || std::fabs(special) < 1e-30f)
          x = special * float(r % 3);
        else if (r == 20)
          x = special;
      }
      INFO("special=" << special);
      check(c, w, b);
    }
}

TEST_CASE("int16-weight code row axpys: every rounding mode", "[parity][int16_axpys]") {
  std::mt19937 rng(9);
  for (int mode : {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO}) {
    INFO("rounding mode " << mode);
    for (std::size_t n : {64u, 128u}) {
      const axpys_case c{4, n, 70, 4, 0, 1};
      const rows_buffer b = random_rows(c, rng);
      const std::vector<float> w = random_weights(c, true, rng);
      std::fesetround(mode);
      const std::vector<float> want = sums(&qcodec::ref::code_row_axpys_w16, c, b, w);
      const std::vector<float> got =
          sums(parity::under_test().int16_axpys.code_row_axpys_w16, c, b, w);
      std::fesetround(FE_TONEAREST);
      REQUIRE(same_bits(want, got));
    }
  }
}

// The documented error: each weight is off by at most max |w| / 65534, so each sum by at most
// rows * (2^bits - 1) times that (plus float rounding).
TEST_CASE("int16-weight code row axpys are the float sums within the weights' rounding",
          "[parity][int16_axpys]") {
  std::mt19937 rng(10);
  for (unsigned bits : {2u, 4u, 8u})
    for (std::size_t rows : {1u, 17u, 256u}) {
      const axpys_case c{bits, 128, rows, 4, 0, 0};
      const rows_buffer b = random_rows(c, rng);
      const std::vector<float> w = random_weights(c, true, rng);
      const std::vector<float> got =
          sums(parity::under_test().int16_axpys.code_row_axpys_w16, c, b, w);
      const std::vector<float> want = sums(&qcodec::ref::code_row_axpys, c, b, w);  // float
      for (std::size_t g = 0; g < c.nq; ++g) {
        double m = 0.0, total = 0.0;
        for (std::size_t r = 0; r < rows; ++r) {
          m = std::max(m, double(w[g * (rows + 1) + r]));
          total += w[g * (rows + 1) + r];
        }
        const double top = double((1u << bits) - 1);
        // Plus float rounding: the float sum's `rows` additions, each off by at most 2^-24 of a
        // sum below total * top + |acc| (acc starts below 1).
        const double bound = double(rows) * top * m / 65534.0 +
                             2.0 * double(rows + 1) * 0x1p-24 * (total * top + 1.0);
        for (std::size_t i = 0; i < c.n; ++i) {
          const double x = want[g * c.n + i], y = got[g * c.n + i];
          INFO("bits=" << bits << " rows=" << rows << " g=" << g << " i=" << i);
          REQUIRE(std::fabs(x - y) <= bound);
        }
      }
    }
}
