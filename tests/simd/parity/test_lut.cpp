// 4-bit lookup-table decoders against their oracles (bit-exact), over every length and
// misalignment, with exactly sized buffers so AddressSanitizer sees any access past the range.
#include <qcodec/simd/lut.hpp>

#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "../../support/same_bits.hpp"
#include "parity.hpp"

namespace {

parity::exact<std::uint8_t> random_codes(std::size_t n, std::size_t off, std::mt19937& rng) {
  // Every byte random, so the ignored high nibble of an odd-length row is garbage too.
  parity::exact<std::uint8_t> in((n + 1) / 2, off, 0);
  for (std::size_t i = 0; i < (n + 1) / 2; ++i) in.data[i] = static_cast<std::uint8_t>(rng());
  return in;
}

}  // namespace

TEST_CASE("lut16_dequantize matches the oracle bit for bit", "[parity][lut]") {
  const auto& k = parity::under_test().lut;
  for (std::size_t n : parity::lengths()) {
    for (std::size_t off : parity::offsets) {
      std::mt19937 rng(static_cast<std::uint32_t>(n * 31 + off));
      const parity::exact<std::uint8_t> in = random_codes(n, off, rng);
      parity::exact<float> table(16, off, 0.0f);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      for (std::size_t j = 0; j < 16; ++j) table.data[j] = normal(rng);
      // Entries whose product with the scale is special: must come out identically too.
      table.data[(n + 3) % 16] = std::numeric_limits<float>::infinity();
      table.data[(n + 8) % 16] = -0.0f;
      table.data[(n + 11) % 16] = std::numeric_limits<float>::denorm_min();
      const float scale =
          (n % 7 == 0) ? 0.0f : std::uniform_real_distribution<float>(-3.0f, 3.0f)(rng);

      parity::exact<float> want(n, 2 - off % 2, 5.0f), got(n, 2 - off % 2, 5.0f);
      qcodec::ref::lut16_dequantize(in.data, n, table.data, scale, want.data);
      k.lut16_dequantize(in.data, n, table.data, scale, got.data);
      INFO("n=" << n << " offset=" << off << " scale=" << scale);
      REQUIRE(same_bits(want.storage, got.storage));
    }
  }
}

TEST_CASE("lut16_lookup_i8 matches the oracle byte for byte", "[parity][lut]") {
  const auto& k = parity::under_test().lut;
  for (std::size_t n : parity::lengths()) {
    for (std::size_t off : parity::offsets) {
      std::mt19937 rng(static_cast<std::uint32_t>(n * 37 + off));
      const parity::exact<std::uint8_t> in = random_codes(n, off, rng);
      parity::exact<std::int8_t> table(16, (off + 2) % 4, 0);
      for (std::size_t j = 0; j < 16; ++j) table.data[j] = static_cast<std::int8_t>(rng());
      table.data[n % 16] = -128;  // the sign bit must not zero the lane as a pshufb index would
      parity::exact<std::int8_t> want(n, off, 0x5A), got(n, off, 0x5A);
      qcodec::ref::lut16_lookup_i8(in.data, n, table.data, want.data);
      k.lut16_lookup_i8(in.data, n, table.data, got.data);
      INFO("n=" << n << " offset=" << off);
      REQUIRE(want.storage == got.storage);
    }
  }
}
