// The portable path of code_row_dots_i16 (what NEON and SSE targets run): 2- and 4-bit rows
// through the float row kernel in exact 64-element chunks, other widths through the generic
// loop; bit for bit the oracle. (The x86 kernels have their parity tests in parity/.)
#include <qcodec/simd/int16_dots.hpp>

#include <random>
#include <vector>

#include "../support/catch.hpp"
#include "../support/same_bits.hpp"

#if XSIMD_WITH_SSE2
TEST_CASE("the portable int16 code row dots match the oracle", "[int16_dots]") {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> scale(0.01f, 5.0f);
  for (unsigned bits : {1u, 2u, 3u, 4u})
    for (std::size_t n : {64u, 100u, 128u, 192u, 512u})
      for (std::size_t rows : {0u, 1u, 5u, 70u})
        for (std::size_t nq : {1u, 3u, 5u})
          for (const bool scaled : {false, true}) {
            const std::size_t bytes = (n * bits + 7) / 8, stride = bytes + 3;
            // Exactly sized, so that AddressSanitizer sees a read past the last row.
            std::vector<std::uint8_t> in(rows == 0 ? 0 : (rows - 1) * stride + bytes);
            for (auto& b : in) b = static_cast<std::uint8_t>(rng());
            std::vector<float> q(nq * n), c(n);
            for (float& v : q) v = normal(rng);
            for (float& v : c) v = scale(rng);
            const float* cs = scaled ? c.data() : nullptr;
            const std::size_t ld = rows + 2;
            std::vector<float> want(nq * ld, 9.0f), got(want);
            qcodec::ref::code_row_dots_i16(in.data(), stride, rows, n, bits, q.data(), cs, nq,
                                           want.data(), ld);
            qcodec::simd::code_row_dots_i16_base<xsimd::sse2>(in.data(), stride, rows, n, bits,
                                                              q.data(), cs, nq, got.data(), ld);
            INFO("bits=" << bits << " n=" << n << " rows=" << rows << " nq=" << nq
                         << " scaled=" << scaled);
            REQUIRE(same_bits(want, got));
          }
}
#endif
