// Sums of interleaved table entries against their oracle (bit-exact), over 1 to 4 tables, row
// counts around the four-row loops, several code counts and table sizes, outputs with a leading
// dimension past the rows, and exactly sized buffers so AddressSanitizer sees any access past
// the range.
#include <qcodec/simd/table_sums.hpp>

#include <limits>
#include <random>
#include <vector>

#include "../../support/same_bits.hpp"
#include "parity.hpp"

TEST_CASE("table_sums matches the oracle bit for bit", "[parity][table_sums]") {
  const auto& k = parity::under_test().table_sums;
  for (std::size_t width = 1; width <= 4; ++width) {
    for (const std::size_t entries : {std::size_t{2}, std::size_t{16}, std::size_t{256}}) {
      for (const std::size_t m :
           {std::size_t{1}, std::size_t{3}, std::size_t{16}, std::size_t{33}}) {
        for (std::size_t n = 0; n <= 13; ++n) {
          std::mt19937 rng(
              static_cast<std::uint32_t>(width * 100000 + entries * 1000 + m * 20 + n));
          std::normal_distribution<float> normal(0.0f, 4.0f);
          const std::size_t size = m * entries * width;
          parity::exact<float> tables(size, n % 3, 0.0f);
          for (std::size_t i = 0; i < size; ++i) tables.data[i] = normal(rng);
          // Entries whose sums are special must come out identically too.
          tables.data[(n * 7) % size] = -0.0f;
          if (n % 4 == 1) tables.data[(n * 5) % size] = std::numeric_limits<float>::max();
          parity::exact<std::uint8_t> codes(n * m, n % 2, 0);
          for (std::size_t i = 0; i < n * m; ++i) {
            codes.data[i] = static_cast<std::uint8_t>(rng() % entries);
          }
          const std::size_t ld = n + 3;
          parity::exact<float> want(width * ld, 1, 7.0f), got(width * ld, 1, 7.0f);
          qcodec::ref::table_sums(codes.data, n, m, entries, tables.data, width, want.data, ld);
          k.table_sums(codes.data, n, m, entries, tables.data, width, got.data, ld);
          INFO("tables " << width << ", entries " << entries << ", codes " << m << ", rows " << n);
          REQUIRE(same_bits(want.storage, got.storage));
        }
      }
    }
  }
}

TEST_CASE("table_sums adds the entries its codes select", "[parity][table_sums]") {
  // Table entry (j, c, g) = 1000 g + 10 j + c: the sums are known without the oracle.
  const std::size_t m = 3, entries = 4, n = 6, ld = 8;
  for (std::size_t width = 1; width <= 4; ++width) {
    std::vector<float> tables(m * entries * width);
    for (std::size_t j = 0; j < m; ++j) {
      for (std::size_t c = 0; c < entries; ++c) {
        for (std::size_t g = 0; g < width; ++g) {
          tables[(j * entries + c) * width + g] = float(1000 * g + 10 * j + c);
        }
      }
    }
    std::vector<std::uint8_t> codes(n * m);
    for (std::size_t i = 0; i < codes.size(); ++i)
      codes[i] = static_cast<std::uint8_t>(i % entries);
    std::vector<float> out(width * ld, -1.0f);
    parity::under_test().table_sums.table_sums(codes.data(), n, m, entries, tables.data(), width,
                                               out.data(), ld);
    for (std::size_t g = 0; g < width; ++g) {
      for (std::size_t r = 0; r < n; ++r) {
        float want = 0.0f;
        for (std::size_t j = 0; j < m; ++j) want += float(1000 * g + 10 * j + codes[r * m + j]);
        CHECK(out[g * ld + r] == want);
      }
      CHECK(out[g * ld + n] == -1.0f);  // nothing past the rows
    }
  }
}
