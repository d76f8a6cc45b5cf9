// Row kernels (many rows against several vectors) against their oracles: axpys bit for bit,
// dots within the documented summation bound. Buffers end exactly at the last row's last byte,
// so AddressSanitizer sees any read past it.
#include <qcodec/simd/rows.hpp>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "parity.hpp"

namespace {

enum class kind { code, f32, f16 };

struct row_case {
  kind k;
  unsigned bits;  // code rows only
  std::size_t n, rows, nq, pad, offset;
};

std::size_t row_bytes(const row_case& c) {
  switch (c.k) {
    case kind::code:
      return (c.n * c.bits + 7) / 8;
    case kind::f32:
      return 4 * c.n;
    case kind::f16:
      return 2 * c.n;
  }
  return 0;
}

void check(const row_case& c, std::mt19937& rng) {
  const auto& k = parity::under_test().rows;
  const std::size_t stride = row_bytes(c) + c.pad;
  const std::size_t total = c.rows == 0 ? 0 : (c.rows - 1) * stride + row_bytes(c);
  std::vector<std::uint8_t> storage(total + c.offset);
  std::uint8_t* in = storage.data() + c.offset;
  for (std::size_t i = 0; i < total; ++i) in[i] = static_cast<std::uint8_t>(rng());
  // Float rows: finite values (random bytes would include NaN and huge exponents).
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::size_t r = 0; r < c.rows; ++r)
    for (std::size_t i = 0; i < c.n; ++i) {
      const float v = normal(rng);
      if (c.k == kind::f32) std::memcpy(in + r * stride + 4 * i, &v, 4);
      if (c.k == kind::f16) {
        std::uint16_t h;
        qcodec::ref::f32_to_f16(&v, 1, &h);
        std::memcpy(in + r * stride + 2 * i, &h, 2);
      }
    }
  std::vector<float> q(c.nq * c.n), w(c.nq * (c.rows + 2));
  for (float& v : q) v = normal(rng);
  for (float& v : w) v = normal(rng);
  const std::size_t ld = c.rows + 2, ldw = c.rows + 2;

  std::vector<float> want(c.nq * ld, 9.0f), got(c.nq * ld, 9.0f);
  std::vector<float> acc_want(c.nq * c.n), acc_got;
  for (float& v : acc_want) v = normal(rng);
  acc_got = acc_want;
  switch (c.k) {
    case kind::code:
      qcodec::ref::code_row_dots(in, stride, c.rows, c.n, c.bits, q.data(), c.nq, want.data(), ld);
      k.code_row_dots(in, stride, c.rows, c.n, c.bits, q.data(), c.nq, got.data(), ld);
      qcodec::ref::code_row_axpys(in, stride, c.rows, c.n, c.bits, w.data(), ldw, c.nq,
                                  acc_want.data());
      k.code_row_axpys(in, stride, c.rows, c.n, c.bits, w.data(), ldw, c.nq, acc_got.data());
      break;
    case kind::f32:
      qcodec::ref::f32_row_dots(in, stride, c.rows, c.n, q.data(), c.nq, want.data(), ld);
      k.f32_row_dots(in, stride, c.rows, c.n, q.data(), c.nq, got.data(), ld);
      qcodec::ref::f32_row_axpys(in, stride, c.rows, c.n, w.data(), ldw, c.nq, acc_want.data());
      k.f32_row_axpys(in, stride, c.rows, c.n, w.data(), ldw, c.nq, acc_got.data());
      break;
    case kind::f16:
      qcodec::ref::f16_row_dots(in, stride, c.rows, c.n, q.data(), c.nq, want.data(), ld);
      k.f16_row_dots(in, stride, c.rows, c.n, q.data(), c.nq, got.data(), ld);
      qcodec::ref::f16_row_axpys(in, stride, c.rows, c.n, w.data(), ldw, c.nq, acc_want.data());
      k.f16_row_axpys(in, stride, c.rows, c.n, w.data(), ldw, c.nq, acc_got.data());
      break;
  }
  INFO("kind=" << int(c.k) << " bits=" << c.bits << " n=" << c.n << " rows=" << c.rows
               << " nq=" << c.nq << " pad=" << c.pad << " offset=" << c.offset);
  REQUIRE(std::memcmp(acc_want.data(), acc_got.data(), acc_want.size() * 4) == 0);
  for (std::size_t g = 0; g < c.nq; ++g)
    for (std::size_t r = 0; r < ld; ++r) {
      if (r >= c.rows) {
        REQUIRE(got[g * ld + r] == 9.0f);  // untouched
        continue;
      }
      // Bound: (n + 1) eps sum |row_i q_i|, reading elements as the oracle does.
      double magnitude = 0.0;
      for (std::size_t i = 0; i < c.n; ++i) {
        const std::uint8_t* row = in + r * stride;
        const float e = c.k == kind::code  ? qcodec::ref::detail::code_at(row, i, c.bits)
                        : c.k == kind::f32 ? qcodec::ref::detail::f32_at(row, i, 0)
                                           : qcodec::ref::detail::f16_at(row, i, 0);
        magnitude += std::fabs(double(e) * q[g * c.n + i]);
      }
      REQUIRE(std::fabs(got[g * ld + r] - want[g * ld + r]) <= double(c.n + 1) * FLT_EPSILON * magnitude);
    }
}

}  // namespace

TEST_CASE("row dots and axpys match their oracles", "[parity][rows]") {
  std::mt19937 rng(42);
  const std::size_t dims[] = {1, 2, 7, 8, 15, 16, 17, 31, 33, 48, 64, 65, 96, 128, 129, 200, 256};
  for (std::size_t n : dims)
    for (std::size_t rows : {0u, 1u, 3u, 17u})
      for (std::size_t nq : {1u, 2u, 3u, 4u, 5u, 8u})
        for (std::size_t pad : {0u, 3u}) {
          const std::size_t offset = (n + rows + nq) % 3;
          for (unsigned bits = 1; bits <= 8; ++bits)
            check({kind::code, bits, n, rows, nq, pad, offset}, rng);
          check({kind::f32, 0, n, rows, nq, pad, offset}, rng);
          check({kind::f16, 0, n, rows, nq, pad, offset}, rng);
        }
}

// Appended: rows of table-indexed codes (lut_row_dots / lut_row_axpys) against their oracles,
// with random (sign-mixed, non-uniform) tables of 1 << bits entries: axpys bit for bit, dots
// within (n + 1) eps sum_i |table[code_i] q_i|.
namespace {

void check_lut(unsigned bits, std::size_t n, std::size_t rows, std::size_t nq, std::size_t pad,
               std::size_t offset, std::mt19937& rng) {
  const auto& k = parity::under_test().rows;
  const std::size_t bytes = (n * bits + 7) / 8, stride = bytes + pad;
  const std::size_t total = rows == 0 ? 0 : (rows - 1) * stride + bytes;
  std::vector<std::uint8_t> storage(total + offset);
  std::uint8_t* in = storage.data() + offset;
  for (std::size_t i = 0; i < total; ++i) in[i] = static_cast<std::uint8_t>(rng());
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // Exactly 1 << bits entries, so reading past the table is an ASan error.
  std::vector<float> table(std::size_t{1} << bits);
  for (float& v : table) v = normal(rng);
  std::vector<float> q(nq * n), w(nq * (rows + 2));
  for (float& v : q) v = normal(rng);
  for (float& v : w) v = normal(rng);
  const std::size_t ld = rows + 2, ldw = rows + 2;
  std::vector<float> want(nq * ld, 9.0f), got(nq * ld, 9.0f);
  std::vector<float> acc_want(nq * n), acc_got;
  for (float& v : acc_want) v = normal(rng);
  acc_got = acc_want;
  qcodec::ref::lut_row_dots(in, stride, rows, n, bits, table.data(), q.data(), nq, want.data(),
                            ld);
  k.lut_row_dots(in, stride, rows, n, bits, table.data(), q.data(), nq, got.data(), ld);
  qcodec::ref::lut_row_axpys(in, stride, rows, n, bits, table.data(), w.data(), ldw, nq,
                             acc_want.data());
  k.lut_row_axpys(in, stride, rows, n, bits, table.data(), w.data(), ldw, nq, acc_got.data());
  INFO("lut bits=" << bits << " n=" << n << " rows=" << rows << " nq=" << nq << " pad=" << pad
                   << " offset=" << offset);
  REQUIRE(std::memcmp(acc_want.data(), acc_got.data(), acc_want.size() * 4) == 0);
  for (std::size_t g = 0; g < nq; ++g)
    for (std::size_t r = 0; r < ld; ++r) {
      if (r >= rows) {
        REQUIRE(got[g * ld + r] == 9.0f);
        continue;
      }
      double magnitude = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        const auto code =
            static_cast<std::size_t>(qcodec::ref::detail::code_at(in + r * stride, i, bits));
        magnitude += std::fabs(double(table[code]) * q[g * n + i]);
      }
      REQUIRE(std::fabs(got[g * ld + r] - want[g * ld + r]) <=
              double(n + 1) * FLT_EPSILON * magnitude);
    }
}

}  // namespace

TEST_CASE("lut row dots and axpys match their oracles", "[parity][rows][lut]") {
  std::mt19937 rng(7);
  const std::size_t dims[] = {1, 2, 7, 8, 15, 16, 17, 31, 33, 48, 64, 65, 96, 128, 129, 200, 256};
  for (std::size_t n : dims)
    for (std::size_t rows : {0u, 1u, 3u, 17u})
      for (std::size_t nq : {1u, 2u, 3u, 4u, 5u, 8u})
        for (std::size_t pad : {0u, 3u})
          for (unsigned bits = 1; bits <= 4; ++bits)
            check_lut(bits, n, rows, nq, pad, (n + rows + nq + bits) % 3, rng);
}

// Appended: the AVX-512 kernels take rows of a multiple of 32 1..4- and 8-bit codes and of
// table-indexed codes (lut_row_*) 32 columns at a time, dots in blocks of four rows with 1..3
// left over; the 4-bit dots take rows of 64 codes two to a register and rows of 128 M codes
// whole ("dword layout"). The AVX2 kernels take the same rows 16 columns at a time, dots in
// pairs of rows with one left over. Every row count 0..13 and a few larger, every group size to
// two groups of four, strides with and without padding; and rows of the longest length the dots
// take whole (1024) and a step longer for each width (1040, 1056: axpys only).
namespace {

// Calls f(n, rows, nq, pad) for the block shapes above.
template <class Fn>
void for_each_block_shape(Fn&& f) {
  for (std::size_t n : {16u, 32u, 48u, 64u, 96u, 128u, 192u, 256u, 384u})
    for (std::size_t rows : {0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 10u, 11u, 12u, 13u, 31u, 64u})
      for (std::size_t nq = 1; nq <= 9; ++nq)
        for (std::size_t pad : {0u, 4u, 5u}) f(n, rows, nq, pad);
  for (std::size_t n : {1024u, 1040u, 1056u})
    for (std::size_t rows : {1u, 2u, 5u})
      for (std::size_t nq : {1u, 4u, 5u}) f(n, rows, nq, std::size_t{3});
}

}  // namespace

TEST_CASE("1- to 4- and 8-bit row kernels on every block shape", "[parity][rows][columns]") {
  std::mt19937 rng(11);
  for (unsigned bits : {1u, 2u, 3u, 4u, 8u}) {
    for_each_block_shape([&](std::size_t n, std::size_t rows, std::size_t nq, std::size_t pad) {
      check({kind::code, bits, n, rows, nq, pad, (rows + nq) % 3}, rng);
      if (bits <= 4) check_lut(bits, n, rows, nq, pad, (rows + nq + bits) % 3, rng);
    });
  }
}

// Appended: fp32 and fp16 rows take the AVX-512 column kernels too (float_columns32), on the
// same shapes.
TEST_CASE("float row kernels on every block shape", "[parity][rows][columns]") {
  std::mt19937 rng(13);
  for (kind k : {kind::f32, kind::f16}) {
    for_each_block_shape([&](std::size_t n, std::size_t rows, std::size_t nq, std::size_t pad) {
      check({k, 0, n, rows, nq, pad, (rows + nq) % 3}, rng);
    });
  }
}

// Appended: half_pairs (the fp16 scale/offset pair heading each of n rows) against its oracle,
// bit for bit, on random bit patterns (subnormals, infinities and NaNs included); the buffer ends
// at the last pair's last byte. Counts cover whole gathers of 16, masked tails and none.
TEST_CASE("half pairs match their oracle", "[parity][rows][half_pairs]") {
  const auto& k = parity::under_test().rows;
  std::mt19937 rng(5);
  for (std::size_t stride : {4u, 5u, 8u, 20u, 36u, 64u, 68u, 132u, 1027u, 1028u})
    for (std::size_t n : {0u, 1u, 2u, 7u, 15u, 16u, 17u, 31u, 32u, 33u, 64u, 100u, 256u}) {
      const std::size_t offset = (stride + n) % 3;
      std::vector<std::uint8_t> storage(offset + (n == 0 ? 0 : (n - 1) * stride + 4));
      for (auto& b : storage) b = static_cast<std::uint8_t>(rng());
      const std::uint8_t* in = storage.data() + offset;
      std::vector<float> want(2 * n + 2, 9.0f), got(2 * n + 2, 9.0f);
      qcodec::ref::half_pairs(in, stride, n, want.data(), want.data() + n + 1);
      k.half_pairs(in, stride, n, got.data(), got.data() + n + 1);
      INFO("stride=" << stride << " n=" << n);
      REQUIRE(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
      REQUIRE(got[n] == 9.0f);  // untouched past each output
      REQUIRE(got[2 * n + 1] == 9.0f);
    }
}

// Appended: affine_scores, y = fma(scale, y, offset * c), bit for bit against its oracle on
// random bit patterns (NaNs, infinities and subnormals included) and plain values, every length
// across whole batches and tails; nothing past n is written. Where both results are NaN their
// payloads may differ (which NaN operand propagates is the instruction's choice).
TEST_CASE("affine scores match their oracle", "[parity][rows][affine_scores]") {
  const auto& k = parity::under_test().rows;
  std::mt19937 rng(6);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (bool bit_patterns : {false, true})
    for (std::size_t n = 0; n <= 70; ++n) {
      const auto value = [&] {
        if (!bit_patterns) return normal(rng);
        const std::uint32_t bits = static_cast<std::uint32_t>(rng());
        float v;
        std::memcpy(&v, &bits, 4);
        return v;
      };
      std::vector<float> scale(n), offset(n), want(n + 1, 9.0f);
      for (std::size_t t = 0; t < n; ++t)
        scale[t] = value(), offset[t] = value(), want[t] = value();
      std::vector<float> got = want;
      const float c = value();
      qcodec::ref::affine_scores(scale.data(), offset.data(), c, want.data(), n);
      k.affine_scores(scale.data(), offset.data(), c, got.data(), n);
      INFO("n=" << n << " bit patterns=" << bit_patterns);
      for (std::size_t t = 0; t < n; ++t) {
        INFO("t=" << t << " want=" << want[t] << " got=" << got[t]);
        REQUIRE((std::memcmp(&want[t], &got[t], 4) == 0 ||
                 (std::isnan(want[t]) && std::isnan(got[t]))));
      }
      REQUIRE(got[n] == 9.0f);
    }
}
