// code_row_dots_i8 and code_row_dots_i16 (each in both forms: the fastest for this CPU, and the
// one without VNNI) against their oracles, bit for bit (the sums are exact integers, converted
// and scaled once). Buffers end exactly at the last row's last byte, so AddressSanitizer sees
// any read past it.
#include <qcodec/simd/convert.hpp>
#include <qcodec/simd/int16_dots.hpp>
#include <qcodec/simd/int8_dots.hpp>

#include <algorithm>
#include <array>
#include <cfenv>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "../../support/same_bits.hpp"
#include "parity.hpp"

namespace {

struct dots_case {
  unsigned bits;
  std::size_t n, rows, nq, pad, offset;
};

// Both kernels called as code_row_dots_i16 is: int8 takes no per-element scales (c == nullptr).
using dots_kernel =
    std::function<void(const std::uint8_t*, std::size_t, std::size_t, std::size_t, unsigned,
                       const float*, const float*, std::size_t, float*, std::size_t)>;

dots_kernel without_scales(decltype(qcodec::simd::int8_dot_kernels::code_row_dots_i8) kernel) {
  return [kernel](const std::uint8_t* in, std::size_t stride, std::size_t rows, std::size_t n,
                  unsigned bits, const float* q, const float*, std::size_t nq, float* out,
                  std::size_t ld) { kernel(in, stride, rows, n, bits, q, nq, out, ld); };
}

// One integer form: its oracle, its two table entries, the largest integer of its grid and
// whether it takes per-element scales.
struct integer_dots {
  const char* name;
  dots_kernel oracle;
  dots_kernel forms[2];
  int grid;
  bool scaled;
};

// Built on first use, not during static initialization: the table's kernels are compiled for
// the target, and the gate (parity_gate.cpp) must first check that this CPU has it.
const std::array<integer_dots, 2>& kinds() {
  static const std::array<integer_dots, 2> all = {{
      {"int8",
       without_scales(&qcodec::ref::code_row_dots_i8),
       {without_scales(parity::under_test().int8_dots.code_row_dots_i8),
        without_scales(parity::under_test().int8_dots.code_row_dots_i8_base)},
       127,
       false},
      {"int16",
       &qcodec::ref::code_row_dots_i16,
       {parity::under_test().int16_dots.code_row_dots_i16,
        parity::under_test().int16_dots.code_row_dots_i16_base},
       16383,
       true},
  }};
  return all;
}

std::vector<float> scores(const dots_kernel& kernel, const dots_case& c, const std::uint8_t* in,
                          std::size_t stride, const std::vector<float>& q, const float* scales) {
  const std::size_t ld = c.rows + 2;
  std::vector<float> out(c.nq * ld, 9.0f);
  kernel(in, stride, c.rows, c.n, c.bits, q.data(), scales, c.nq, out.data(), ld);
  return out;
}

// `scales`: per-element scales for the kinds that take them (else none).
void check(const integer_dots& kind, const dots_case& c, const std::vector<float>& q,
           std::mt19937& rng, const std::vector<float>& scales = {}) {
  const std::size_t bytes = (c.n * c.bits + 7) / 8, stride = bytes + c.pad;
  const std::size_t total = c.rows == 0 ? 0 : (c.rows - 1) * stride + bytes;
  std::vector<std::uint8_t> storage(total + c.offset);
  std::uint8_t* in = storage.data() + c.offset;
  for (std::size_t i = 0; i < total; ++i) in[i] = static_cast<std::uint8_t>(rng());
  const float* sc = kind.scaled && !scales.empty() ? scales.data() : nullptr;
  INFO(kind.name << " bits=" << c.bits << " n=" << c.n << " rows=" << c.rows << " nq=" << c.nq
                 << " pad=" << c.pad << " offset=" << c.offset << " scaled=" << (sc != nullptr));
  const std::vector<float> want = scores(kind.oracle, c, in, stride, q, sc);
  for (const dots_kernel& kernel : kind.forms)
    REQUIRE(same_bits(want, scores(kernel, c, in, stride, q, sc)));
}

// Per-channel scales as KIVI keys have them: mostly small, a few channels 10-100x larger.
std::vector<float> channel_scales(std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> small(0.01f, 0.1f), large(1.0f, 10.0f);
  std::vector<float> c(n);
  for (std::size_t i = 0; i < n; ++i) c[i] = i % 17 == 3 ? large(rng) : small(rng);
  return c;
}

// Puts back round-to-nearest when a test that changed the mode ends (also on a failed REQUIRE).
struct restore_rounding {
  ~restore_rounding() { std::fesetround(FE_TONEAREST); }
};

std::vector<float> normal_queries(std::size_t count, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(count);
  for (float& v : q) v = normal(rng);
  return q;
}

}  // namespace

TEST_CASE("integer code row dots match their oracles bit for bit", "[parity][integer_dots]") {
  std::mt19937 rng(42);
  const std::size_t dims[] = {1, 7, 16, 33, 63, 64, 65, 96, 128, 192, 256, 320, 384, 512, 1024};
  for (const integer_dots& kind : kinds())
    for (std::size_t n : dims)
      for (std::size_t rows : {0u, 1u, 2u, 3u, 4u, 5u, 15u, 16u, 17u, 32u, 70u})
        for (std::size_t nq : {1u, 3u, 4u, 5u, 8u})
          for (std::size_t pad : {0u, 3u})
            for (unsigned bits = 1; bits <= 8; ++bits) {
              if (bits != 2 && bits != 4 && bits != 8 && (rows > 5 || nq > 4 || n > 256))
                continue;  // generic paths: fewer
              if (bits == 8 && kind.grid * 255.0 * double(n) >= 2147483648.0)
                continue;  // sums past 32 bits are outside the contract
              const dots_case c{bits, n, rows, nq, pad, (n + rows + nq) % 3};
              check(kind, c, normal_queries(nq * n, rng), rng);
              if (kind.scaled)
                check(kind, c, normal_queries(nq * n, rng), rng, channel_scales(n, rng));
            }
}

TEST_CASE("integer code row dots: zero, huge, tiny and non-finite queries",
          "[parity][integer_dots]") {
  std::mt19937 rng(7);
  const float inf = std::numeric_limits<float>::infinity();
  for (const integer_dots& kind : kinds())
    for (unsigned bits : {2u, 4u, 8u})
      for (std::size_t n : {64u, 128u, 256u, 100u})
        for (float special : {0.0f, 3e38f, 1e-40f, 1e-38f, inf, -inf, std::nanf("")}) {
          std::vector<float> q = normal_queries(3 * n, rng);
          // Vector 1: zero, or small, or (1e-38) so small that grid / max overflows.
          for (std::size_t i = 0; i < n; ++i)
            q[n + i] = special == 0.0f     ? 0.0f
                       : special == 1e-38f ? q[n + i] * 1e-39f
                                           : q[n + i] * 1e-3f;
          q[n + n / 2] = special;  // vector 1 holds the special value
          const dots_case c{bits, n, 9, 3, 1, 0};
          check(kind, c, q, rng);
          // And what the values mean: NaN scores for a non-finite vector, zeros for a zero one.
          const std::size_t bytes = n * bits / 8 + 1;
          std::vector<std::uint8_t> in(9 * bytes, 0x5A);
          for (const dots_kernel& kernel : kind.forms) {
            const std::vector<float> got = scores(kernel, c, in.data(), bytes, q, nullptr);
            for (std::size_t r = 0; r < 9; ++r) {
              if (!std::isfinite(special)) CHECK(std::isnan(got[11 + r]));
              if (special == 0.0f || special == 1e-38f) CHECK(got[11 + r] == 0.0f);
              CHECK(std::isfinite(got[r]));
            }
          }
        }
}

TEST_CASE("integer code row dots: a query on the grid is scored exactly",
          "[parity][integer_dots]") {
  // q = k s with integers |k| <= grid (one of them -grid): quantizing gives k back, so the score
  // is s' sum(code k) with s' within an ulp or two of s.
  std::mt19937 rng(3);
  for (const integer_dots& kind : kinds())
    for (unsigned bits : {2u, 4u, 8u})
      for (std::size_t n : {64u, 128u, 96u}) {
        std::uniform_int_distribution<int> integer(-kind.grid, kind.grid);
        const float s = 0.0173f;
        std::vector<int> k(n);
        std::vector<float> q(n);
        for (std::size_t i = 0; i < n; ++i) k[i] = i == 5 ? -kind.grid : integer(rng);
        for (std::size_t i = 0; i < n; ++i) q[i] = static_cast<float>(k[i]) * s;
        const std::size_t bytes = n * bits / 8;
        std::vector<std::uint8_t> in(4 * bytes);
        for (auto& b : in) b = static_cast<std::uint8_t>(rng());
        std::vector<float> out(4);
        for (const dots_kernel& kernel : kind.forms) {
          kernel(in.data(), bytes, 4, n, bits, q.data(), nullptr, 1, out.data(), 4);
          for (std::size_t r = 0; r < 4; ++r) {
            long sum = 0;
            for (std::size_t i = 0; i < n; ++i) {
              const unsigned byte = in[r * bytes + i * bits / 8];
              const unsigned code = (byte >> (i * bits % 8)) & ((1u << bits) - 1);
              sum += static_cast<long>(code) * k[i];
            }
            const double want = static_cast<double>(sum) * s;
            CHECK(std::fabs(out[r] - want) <=
                  4 * std::numeric_limits<float>::epsilon() * std::fabs(want) + 1e-30);
          }
        }
      }
}

TEST_CASE("int16 code row dots with per-element scales score the products q * c",
          "[parity][integer_dots]") {
  std::mt19937 rng(11);
  const integer_dots& kind = kinds()[1];
  for (unsigned bits : {2u, 4u, 8u})
    for (std::size_t n : {64u, 128u, 100u}) {
      const dots_case c{bits, n, 33, 4, 0, 0};
      const std::vector<float> q = normal_queries(4 * n, rng), scales = channel_scales(n, rng);
      std::vector<float> products(q.size());
      for (std::size_t i = 0; i < q.size(); ++i) products[i] = q[i] * scales[i % n];
      const std::size_t bytes = n * bits / 8;
      std::vector<std::uint8_t> in(c.rows * bytes);
      for (auto& b : in) b = static_cast<std::uint8_t>(rng());
      for (const dots_kernel& kernel : kind.forms) {
        CHECK(same_bits(scores(kernel, c, in.data(), bytes, q, scales.data()),
                        scores(kernel, c, in.data(), bytes, products, nullptr)));
      }
    }
}

TEST_CASE("int16 code row dots: special values in any vector of 1..7, with and without scales",
          "[parity][integer_dots]") {
  // The AVX2 path finds the forms of up to four vectors together (query_forms): every position
  // in a group, groups of 1..4 and a second group; scales that are not finite or make a finite
  // q infinite; and maxima at the edge where grid / max stops being finite.
  std::mt19937 rng(13);
  const integer_dots& kind = kinds()[1];
  const float inf = std::numeric_limits<float>::infinity();
  const float edge = 16383.0f / std::numeric_limits<float>::max();
  const float maxima[] = {0.0f, edge, std::nextafter(edge, 0.0f), std::nextafter(edge, 1.0f)};
  for (unsigned bits : {2u, 4u, 8u})
    for (std::size_t n : {64u, 128u})
      for (std::size_t nq : {1u, 2u, 4u, 6u, 7u})
        for (std::size_t k = 0; k < nq; ++k) {
          const dots_case c{bits, n, 5, nq, 0, 0};
          INFO("vector " << k);
          for (float special : {inf, -inf, std::nanf("")}) {
            std::vector<float> q = normal_queries(nq * n, rng);
            q[k * n + n / 2] = special;
            check(kind, c, q, rng);
            check(kind, c, q, rng, channel_scales(n, rng));
          }
          for (float m : maxima) {  // vector k's largest magnitude is m
            std::vector<float> q = normal_queries(nq * n, rng);
            for (std::size_t i = 0; i < n; ++i) q[k * n + i] = i % 2 == 0 ? m : -m / 2;
            check(kind, c, q, rng);
          }
          for (float scale : {inf, std::nanf(""), 4.0f}) {
            std::vector<float> q = normal_queries(nq * n, rng), scales = channel_scales(n, rng);
            scales[5] = scale;
            q[k * n + 5] = 3e38f;  // times 4: an infinity
            check(kind, c, q, rng, scales);
          }
        }
}

#if defined(__x86_64__) || defined(__i386__)
TEST_CASE("integer code row dots match their oracle in every rounding mode",
          "[parity][integer_dots]") {
  // Both round with the current mode (std::nearbyint, vcvtps2dq); no check of the forms may
  // depend on it (x - x is -0 when rounding down), and no mode may round the largest element
  // past the grid (rounding up, 127 or 16383 became 128 or 16384: a byte wraps to -128, and the
  // high byte of a VNNI split saturates).
  restore_rounding restore;
  std::mt19937 rng(17);
  for (const integer_dots& kind : kinds())
    for (int mode : {FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO}) {
      REQUIRE(std::fesetround(mode) == 0);
      for (unsigned bits : {2u, 4u, 8u})
        for (std::size_t n : {64u, 128u})
          for (std::size_t nq : {1u, 4u, 5u}) {
            INFO("mode " << mode);
            const dots_case c{bits, n, 17, nq, 0, 0};
            check(kind, c, normal_queries(nq * n, rng), rng);
            if (kind.scaled)
              check(kind, c, normal_queries(nq * n, rng), rng, channel_scales(n, rng));
          }
    }
}
#endif

TEST_CASE("int16 code row dots reach 32-bit sums at the longest rows without overflow",
          "[parity][integer_dots]") {
  // Every 8-bit code 255 against q = -1 (q15 = -16383): the sum -255 * 16383 * n is within 2^31
  // of zero for n <= 514 (per_token's i16_max_head_dim), the vector path at 512, the generic
  // loop at 514. An overflow would wrap (vector) or trip UBSan (generic).
  const integer_dots& kind = kinds()[1];
  for (std::size_t n : {512u, 514u}) {
    const dots_case c{8, n, 3, 1, 0, 0};
    const std::vector<std::uint8_t> in(3 * n, 255);
    const std::vector<float> q(n, -1.0f);
    const float want = (1.0f / 16383.0f) * static_cast<float>(-255 * 16383 * std::int32_t(n));
    INFO("n=" << n);
    for (const dots_kernel& kernel : {kind.oracle, kind.forms[0], kind.forms[1]}) {
      const std::vector<float> got = scores(kernel, c, in.data(), n, q, nullptr);
      for (std::size_t r = 0; r < 3; ++r) CHECK(got[r] == want);
    }
  }
}

namespace {

// Bytes of one of kv::per_channel's units of `rows` rows of n bits-bit codes (below), unpadded.
std::size_t channel_unit_bytes(std::size_t rows, std::size_t n, unsigned bits) {
  return 4 * n + rows * ((n * bits + 7) / 8);
}

// kv::per_channel's units: n binary16 (scale, offset) pairs (KIVI-like scales: a few channels
// 10-100x larger, offsets of either sign), then `rows` rows of random codes, `pad` bytes after
// each unit. The buffer ends at the last unit's last byte.
std::vector<std::uint8_t> channel_units(std::size_t count, std::size_t rows, std::size_t n,
                                        unsigned bits, std::size_t pad, std::mt19937& rng) {
  const std::size_t unit_bytes = channel_unit_bytes(rows, n, bits) + pad;
  std::vector<std::uint8_t> units(count == 0 ? 0 : count * unit_bytes - pad);
  for (auto& b : units) b = static_cast<std::uint8_t>(rng());
  std::uniform_real_distribution<float> offset(-2.0f, 2.0f);
  for (std::size_t u = 0; u < count; ++u) {
    const std::vector<float> scales = channel_scales(n, rng);
    for (std::size_t i = 0; i < n; ++i) {
      const float pair[2] = {scales[i], offset(rng)};
      std::uint16_t h[2];
      qcodec::ref::f32_to_f16(pair, 2, h);
      std::memcpy(units.data() + u * unit_bytes + 4 * i, h, 4);
    }
  }
  return units;
}

using unit_kernel = qcodec::simd::int16_dot_kernels::channel_units_fn;

std::vector<float> unit_scores(unit_kernel kernel, const std::vector<std::uint8_t>& units,
                               std::size_t unit_bytes, std::size_t count, std::size_t rows,
                               std::size_t n, unsigned bits, bool blocked,
                               const std::vector<float>& q, std::size_t nq) {
  const std::size_t ld = count * rows + 3;
  std::vector<float> out(nq * ld, 9.0f);
  kernel(units.data(), unit_bytes, count, rows, n, bits, blocked, q.data(), nq, out.data(), ld);
  return out;
}

// channel_unit_dots_i16 or channel_unit_dots_i8: the oracle, the two kernels under test, the grid.
struct unit_form {
  const char* name;
  unit_kernel oracle, fast, base;
  double grid;
};

std::vector<unit_form> unit_forms() {
  const auto& k = parity::under_test().int16_dots;
  return {{"i16", &qcodec::ref::channel_unit_dots_i16, k.channel_unit_dots_i16,
           k.channel_unit_dots_i16_base, 16383.0},
          {"i8", &qcodec::ref::channel_unit_dots_i8, k.channel_unit_dots_i8,
           k.channel_unit_dots_i8_base, 127.0}};
}

}  // namespace

TEST_CASE("channel unit dots match their oracle bit for bit", "[parity][integer_dots]") {
  std::mt19937 rng(19);
  for (const unit_form& form : unit_forms())
    for (unsigned bits = 1; bits <= 8; ++bits)
      for (std::size_t n : {1u, 16u, 40u, 64u, 128u, 192u, 512u, 1024u})
        for (std::size_t rows : {1u, 16u, 32u, 37u, 48u})
          for (std::size_t count : {0u, 1u, 3u})
            for (std::size_t nq : {1u, 3u, 4u, 5u, 8u}) {
              if (bits == 8 && form.grid * 255.0 * double(n) >= 2147483648.0) continue;
              if (bits != 2 && bits != 4 && (rows > 16 || nq > 4)) continue;  // generic: fewer
              const std::size_t pad = (n + rows) % 3;
              const std::size_t unit_bytes = channel_unit_bytes(rows, n, bits) + pad;
              const std::vector<std::uint8_t> units = channel_units(count, rows, n, bits, pad, rng);
              const std::vector<float> q = normal_queries(nq * n, rng);
              namespace d = qcodec::simd::detail::int16_dots;
              for (bool blocked : {false, true}) {  // the same bytes read as blocked rows
                if (blocked && !d::blockable_rows<qcodec::simd::scalar>(bits, n, rows)) continue;
                INFO(form.name << " bits=" << bits << " n=" << n << " rows=" << rows
                               << " count=" << count << " nq=" << nq << " blocked=" << blocked);
                const std::vector<float> want = unit_scores(form.oracle, units, unit_bytes, count,
                                                            rows, n, bits, blocked, q, nq);
                for (unit_kernel kernel : {form.fast, form.base})
                  REQUIRE(same_bits(want, unit_scores(kernel, units, unit_bytes, count, rows, n,
                                                      bits, blocked, q, nq)));
              }
            }
}

TEST_CASE("channel unit dots: special values in any vector and in the scales, any rounding",
          "[parity][integer_dots]") {
  // The VNNI path (2- and 4-bit codes, n a multiple of 64) reduces the maxima of up to four vectors
  // together and finds their forms in one division: every position in groups of 1..4 and in a
  // second group; non-finite queries; products that overflow or meet a non-finite fp16 scale;
  // maxima at the edge where grid / max stops being finite; every rounding mode (the split
  // rounds in the current one, as the oracle's nearbyint).
  std::mt19937 rng(29);
  const float inf = std::numeric_limits<float>::infinity();
  const std::size_t rows = 32, count = 2;
  namespace d = qcodec::simd::detail::int16_dots;
  // Channel c's scale in both units: the VNNI path finds the first unit's forms before its loop
  // over the units, the second's in it.
  const auto set_scale = [&](std::vector<std::uint8_t>& units, unsigned bits, std::size_t n,
                             std::size_t c, float scale) {
    std::uint16_t h;
    qcodec::ref::f32_to_f16(&scale, 1, &h);
    for (std::size_t u = 0; u < count; ++u)
      std::memcpy(units.data() + u * channel_unit_bytes(rows, n, bits) + 4 * c, &h, 2);
  };
  const auto check = [&](const unit_form& form, const std::vector<std::uint8_t>& units,
                         unsigned bits, std::size_t n, const std::vector<float>& q, std::size_t nq,
                         std::size_t vector, bool finite) {
    for (bool blocked : {false, true}) {
      INFO(form.name << " bits=" << bits << " n=" << n << " nq=" << nq << " vector=" << vector
                     << " blocked=" << blocked);
      const std::size_t unit_bytes = channel_unit_bytes(rows, n, bits);
      const std::vector<float> want =
          unit_scores(form.oracle, units, unit_bytes, count, rows, n, bits, blocked, q, nq);
      for (unit_kernel kernel : {form.fast, form.base})
        REQUIRE(same_bits(
            want, unit_scores(kernel, units, unit_bytes, count, rows, n, bits, blocked, q, nq)));
      if (!finite) CHECK(std::isnan(want[vector * (count * rows + 3)]));  // NaN scores
    }
  };
  restore_rounding restore;
  for (const unit_form& form : unit_forms())
    for (int mode : {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO}) {
      REQUIRE(std::fesetround(mode) == 0);
      INFO("mode " << mode);
      const float edge = static_cast<float>(form.grid) / std::numeric_limits<float>::max();
      const float maxima[] = {0.0f, edge, std::nextafter(edge, 0.0f), std::nextafter(edge, 1.0f)};
      for (unsigned bits : {2u, 4u})
        for (std::size_t n : {64u, 128u})
          for (std::size_t nq : {1u, 2u, 4u, 6u, 7u})
            for (std::size_t v = 0; v < nq; ++v) {
              for (float special : {inf, -inf, std::nanf("")}) {
                std::vector<float> q = normal_queries(nq * n, rng);
                q[v * n + n / 2] = special;
                check(form, channel_units(count, rows, n, bits, 0, rng), bits, n, q, nq, v, false);
              }
              for (float m : maxima) {  // vector v's largest product is m (the scales all 1)
                std::vector<std::uint8_t> units = channel_units(count, rows, n, bits, 0, rng);
                for (std::size_t c = 0; c < n; ++c) set_scale(units, bits, n, c, 1.0f);
                std::vector<float> q = normal_queries(nq * n, rng);
                for (std::size_t i = 0; i < n; ++i) q[v * n + i] = i % 2 == 0 ? m : -m / 2;
                check(form, units, bits, n, q, nq, v, true);
              }
              for (float scale : {inf, std::nanf(""), 4.0f}) {
                std::vector<std::uint8_t> units = channel_units(count, rows, n, bits, 0, rng);
                set_scale(units, bits, n, 5, scale);
                std::vector<float> q = normal_queries(nq * n, rng);
                // Times 4: an infinity (rounding down or toward zero, FLT_MAX).
                q[v * n + 5] = 3e38f;
                check(form, units, bits, n, q, nq, v,
                      scale == 4.0f && (mode == FE_DOWNWARD || mode == FE_TOWARDZERO));
              }
            }
    }
}

TEST_CASE("channel unit dots: a scaled query on the grid is scored exactly",
          "[parity][integer_dots]") {
  // Scales 1, offsets 0 and q = k s with integers |k| <= grid (one of them -grid): the form gives
  // k back, so a score is s' sum(code k) with s' within an ulp or two of s. Pins each form's grid.
  std::mt19937 rng(31);
  namespace d = qcodec::simd::detail::int16_dots;
  const std::size_t rows = 32, count = 2, nq = 3;
  for (const unit_form& form : unit_forms())
    for (unsigned bits : {2u, 4u, 8u})
      for (std::size_t n : {64u, 128u}) {
        const int grid = static_cast<int>(form.grid);
        if (bits == 8 && form.grid * 255.0 * double(n) >= 2147483648.0) continue;
        const std::size_t row_bytes = n * bits / 8, unit_bytes = channel_unit_bytes(rows, n, bits);
        std::vector<std::uint8_t> units = channel_units(count, rows, n, bits, 0, rng);
        for (std::size_t u = 0; u < count; ++u)
          for (std::size_t c = 0; c < n; ++c) {
            const float pair[2] = {1.0f, 0.0f};
            std::uint16_t h[2];
            qcodec::ref::f32_to_f16(pair, 2, h);
            std::memcpy(units.data() + u * unit_bytes + 4 * c, h, 4);
          }
        std::uniform_int_distribution<int> integer(-grid, grid);
        const float s = 0.0173f;
        std::vector<int> k(nq * n);
        std::vector<float> q(nq * n);
        for (std::size_t i = 0; i < nq * n; ++i) k[i] = i % n == 5 ? -grid : integer(rng);
        for (std::size_t i = 0; i < nq * n; ++i) q[i] = static_cast<float>(k[i]) * s;
        for (bool blocked : {false, true}) {
          if (blocked && !d::blockable_rows<qcodec::simd::scalar>(bits, n, rows)) continue;
          for (unit_kernel kernel : {form.fast, form.base}) {
            INFO(form.name << " bits=" << bits << " n=" << n << " blocked=" << blocked);
            const std::vector<float> got =
                unit_scores(kernel, units, unit_bytes, count, rows, n, bits, blocked, q, nq);
            for (std::size_t u = 0; u < count; ++u)
              for (std::size_t t = 0; t < rows; ++t) {
                const std::uint8_t* codes = units.data() + u * unit_bytes + 4 * n;
                std::uint8_t plain[128];
                const std::uint8_t* row = codes + t * row_bytes;
                if (blocked) {
                  d::unblock_row<qcodec::simd::scalar>(codes, n, bits, t, plain);
                  row = plain;
                }
                for (std::size_t g = 0; g < nq; ++g) {
                  long sum = 0;
                  for (std::size_t c = 0; c < n; ++c) {
                    const unsigned code =
                        (row[c * bits / 8] >> (c * bits % 8)) & ((1u << bits) - 1);
                    sum += static_cast<long>(code) * k[g * n + c];
                  }
                  const double want = static_cast<double>(sum) * s;
                  CHECK(std::fabs(got[g * (count * rows + 3) + u * rows + t] - want) <=
                        4 * std::numeric_limits<float>::epsilon() * std::fabs(want) + 1e-30);
                }
              }
          }
        }
      }
}

TEST_CASE("channel unit dots score q . (scale * code + offset) per channel",
          "[parity][integer_dots]") {
  // Against the decoded keys in double: the 15-bit (8-bit) query moves each term by at most
  // max_c |q_c s_c| / 32766 (/ 254) times the code, and the float sums add a few ulps.
  std::mt19937 rng(23);
  for (const unit_form& form : unit_forms())
    for (unsigned bits : {2u, 4u, 8u})
      for (std::size_t n : {64u, 128u, 100u}) {
        const std::size_t rows = 32, count = 2, nq = 4, row_bytes = (n * bits + 7) / 8;
        const std::size_t unit_bytes = channel_unit_bytes(rows, n, bits);
        const std::vector<std::uint8_t> units = channel_units(count, rows, n, bits, 0, rng);
        const std::vector<float> q = normal_queries(nq * n, rng);
        namespace d = qcodec::simd::detail::int16_dots;
        // 2- and 4-bit rows at n = 64 and 128 read as blocked (blockable_rows), others plain.
        const bool blocked = d::blockable_rows<qcodec::simd::scalar>(bits, n, rows);
        for (unit_kernel kernel : {form.fast, form.base}) {
          INFO(form.name << " bits=" << bits << " n=" << n);
          const std::vector<float> got =
              unit_scores(kernel, units, unit_bytes, count, rows, n, bits, blocked, q, nq);
          for (std::size_t u = 0; u < count; ++u) {
            const std::uint8_t* unit = units.data() + u * unit_bytes;
            float scale[128], offset[128];
            qcodec::ref::half_pairs(unit, 4, n, scale, offset);
            for (std::size_t g = 0; g < nq; ++g) {
              double largest = 0.0;
              for (std::size_t c = 0; c < n; ++c)
                largest = std::max(largest, std::fabs(double(q[g * n + c]) * scale[c]));
              for (std::size_t t = 0; t < rows; ++t) {
                std::uint8_t plain[64];
                const std::uint8_t* row = unit + 4 * n + t * row_bytes;
                if (blocked) {
                  d::unblock_row<qcodec::simd::scalar>(unit + 4 * n, n, bits, t, plain);
                  row = plain;
                }
                double want = 0.0, magnitude = 0.0;
                for (std::size_t c = 0; c < n; ++c) {
                  const std::size_t bit = c * bits;
                  unsigned v = unsigned{row[bit / 8]} >> (bit % 8);
                  if (bit % 8 + bits > 8) v |= unsigned{row[bit / 8 + 1]} << (8 - bit % 8);
                  const double key = double(scale[c]) * (v & ((1u << bits) - 1)) + offset[c];
                  want += double(q[g * n + c]) * key;
                  magnitude += std::fabs(double(q[g * n + c]) * key);
                }
                const double bound = largest / (2.0 * form.grid) * ((1u << bits) - 1) * double(n) +
                                     4.0 * double(n) * 6e-8 * magnitude;
                CHECK(std::fabs(got[g * (count * rows + 3) + u * rows + t] - want) <= bound);
              }
            }
          }
        }
      }
}

TEST_CASE("blocked rows: dword k of row r of a 16-row block at byte 64 k + 4 r",
          "[parity][integer_dots]") {
  namespace d = qcodec::simd::detail::int16_dots;
  using scalar = qcodec::simd::scalar;
  CHECK(d::blockable_rows<scalar>(4, 64, 32));
  CHECK(d::blockable_rows<scalar>(4, 1024, 16));
  CHECK(d::blockable_rows<scalar>(2, 64, 32));
  CHECK_FALSE(d::blockable_rows<scalar>(4, 96, 32));  // n not a multiple of 64
  CHECK_FALSE(d::blockable_rows<scalar>(4, 64, 24));  // a partial block
  CHECK_FALSE(d::blockable_rows<scalar>(3, 64, 32));  // only 2- and 4-bit rows
  CHECK_FALSE(d::blockable_rows<scalar>(8, 64, 32));
  std::mt19937 rng(29);
  const std::size_t n = 128, rows = 32;
  for (unsigned bits : {2u, 4u}) {
    const std::size_t row_bytes = n * bits / 8;
    std::vector<std::uint8_t> plain(rows * row_bytes), blocked(rows * row_bytes, 0);
    for (auto& b : plain) b = static_cast<std::uint8_t>(rng());
    for (std::size_t r = 0; r < rows; ++r)
      d::block_row<scalar>(plain.data() + r * row_bytes, n, bits, r, blocked.data());
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t k = 0; k < row_bytes / 4; ++k)
        REQUIRE(std::memcmp(blocked.data() + r / 16 * 16 * row_bytes + 64 * k + 4 * (r % 16),
                            plain.data() + r * row_bytes + 4 * k, 4) == 0);
    std::vector<std::uint8_t> row(row_bytes);
    for (std::size_t r = 0; r < rows; ++r) {
      d::unblock_row<scalar>(blocked.data(), n, bits, r, row.data());
      REQUIRE(std::memcmp(row.data(), plain.data() + r * row_bytes, row_bytes) == 0);
    }
  }
}
