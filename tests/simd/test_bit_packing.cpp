// Bit packing through the dispatched kernel table and the oracle: round trips, layouts worked out
// by hand, ignored high bits and zeroed spare bits.
#include <qcodec/simd/bit_packing.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "../support/catch.hpp"

namespace {

using bytes = std::vector<std::uint8_t>;

bytes random_codes(std::size_t n, unsigned bits, std::uint32_t seed) {
  bytes c(n);
  std::mt19937 rng(seed);
  for (auto& v : c) v = static_cast<std::uint8_t>(rng() & ((1u << bits) - 1u));
  return c;
}

bytes pack_with(const qcodec::simd::packing_kernels& k, const bytes& codes, unsigned bits) {
  bytes out(qcodec::packed_bytes(codes.size(), bits));
  k.pack_bits(codes.data(), codes.size(), bits, out.data());
  return out;
}

bytes unpack_with(const qcodec::simd::packing_kernels& k, const bytes& packed, std::size_t n,
                  unsigned bits) {
  bytes codes(n);
  k.unpack_bits(packed.data(), n, bits, codes.data());
  return codes;
}

const qcodec::simd::packing_kernels& dispatched() { return qcodec::simd::kernels().packing; }

qcodec::simd::packing_kernels oracle() {
  return qcodec::simd::make_packing_kernels<qcodec::simd::scalar>();
}

}  // namespace

TEST_CASE("packed_bytes rounds n * bits up to whole bytes", "[packing]") {
  STATIC_REQUIRE(qcodec::packed_bytes(0, 3) == 0);
  STATIC_REQUIRE(qcodec::packed_bytes(1, 1) == 1);
  STATIC_REQUIRE(qcodec::packed_bytes(8, 3) == 3);
  STATIC_REQUIRE(qcodec::packed_bytes(9, 3) == 4);
  STATIC_REQUIRE(qcodec::packed_bytes(5, 8) == 5);
  STATIC_REQUIRE(qcodec::packed_bytes(3, 5) == 2);
}

TEST_CASE("every width round-trips through the dispatched kernels and the oracle", "[packing]") {
  INFO("dispatched target: " << qcodec::simd::kernels().arch);
  for (unsigned bits = 1; bits <= 8; ++bits) {
    for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 31u, 32u, 33u, 255u, 256u, 1000u, 4099u, 65536u}) {
      INFO("bits=" << bits << " n=" << n);
      const bytes codes = random_codes(n, bits, bits * 1000 + static_cast<std::uint32_t>(n));
      const bytes fast = pack_with(dispatched(), codes, bits);
      const bytes slow = pack_with(oracle(), codes, bits);
      REQUIRE(fast == slow);
      REQUIRE(unpack_with(dispatched(), fast, n, bits) == codes);
      REQUIRE(unpack_with(oracle(), fast, n, bits) == codes);
    }
  }
}

TEST_CASE("sequential layout matches hand-computed bytes", "[packing]") {
  struct known {
    unsigned bits;
    bytes codes, packed;
  };
  // Code i occupies stream bits [i*bits, (i+1)*bits), stream bit k = bit k%8 of byte k/8.
  const known cases[] = {
      // 3 bits {1,2,3,4,5,6,7,0}: sum c_i << 3i = 0x1 + 0x10 + 0xC0 + 0x800 + 0x5000 + 0x30000
      // + 0x1C0000 = 0x1F58D1, i.e. bytes D1 58 1F.
      {3, {1, 2, 3, 4, 5, 6, 7, 0}, {0xD1, 0x58, 0x1F}},
      // 1 bit: bits 0,2,3,7 of byte 0 set -> 0x8D; the ninth code is bit 0 of byte 1.
      {1, {1, 0, 1, 1, 0, 0, 0, 1, 1}, {0x8D, 0x01}},
      // 2 bits {0,1,2,3}: 0 | 1<<2 | 2<<4 | 3<<6 = 0xE4.
      {2, {0, 1, 2, 3}, {0xE4}},
      // 4 bits: the first code is the low nibble.
      {4, {0xA, 0x5, 0xF}, {0x5A, 0x0F}},
      // 5 bits {31, 0, 1}: 31 fills bits 0..4, 1 lands on bit 10 = bit 2 of byte 1.
      {5, {31, 0, 1}, {0x1F, 0x04}},
      // 6 bits {0x3F, 0, 0x3F, 0x15}: 0x3F | 0x3F << 12 | 0x15 << 18 = 0x57F03F.
      {6, {0x3F, 0x00, 0x3F, 0x15}, {0x3F, 0xF0, 0x57}},
      // 7 bits {0x7F, 1}: 0x7F | 1 << 7 = 0xFF, then seven zero bits.
      {7, {0x7F, 0x01}, {0xFF, 0x00}},
      {8, {0x12, 0xFE, 0x00}, {0x12, 0xFE, 0x00}},
  };
  for (const known& c : cases) {
    INFO("bits=" << c.bits);
    CHECK(pack_with(oracle(), c.codes, c.bits) == c.packed);
    CHECK(pack_with(dispatched(), c.codes, c.bits) == c.packed);
    CHECK(unpack_with(oracle(), c.packed, c.codes.size(), c.bits) == c.codes);
    CHECK(unpack_with(dispatched(), c.packed, c.codes.size(), c.bits) == c.codes);
  }
}

TEST_CASE("the bits above the width are ignored when packing", "[packing]") {
  for (unsigned bits = 1; bits <= 8; ++bits) {
    INFO("bits=" << bits);
    const std::size_t n = 1031;  // several vector blocks plus a tail
    bytes noisy = random_codes(n, 8, 77 + bits);
    bytes clean = noisy;
    for (auto& v : clean) v = static_cast<std::uint8_t>(v & ((1u << bits) - 1u));
    REQUIRE(pack_with(dispatched(), noisy, bits) == pack_with(dispatched(), clean, bits));
    REQUIRE(pack_with(oracle(), noisy, bits) == pack_with(oracle(), clean, bits));
    REQUIRE(unpack_with(dispatched(), pack_with(dispatched(), noisy, bits), n, bits) == clean);
  }
}

TEST_CASE("the unused bits of the last byte are written as zero", "[packing]") {
  for (unsigned bits = 1; bits <= 8; ++bits) {
    for (std::size_t n = 1; n <= 80; ++n) {
      const unsigned used = static_cast<unsigned>(n * bits % 8);
      if (used == 0) continue;
      INFO("bits=" << bits << " n=" << n);
      const bytes ones(n, 0xFF);
      for (const auto& k : {dispatched(), oracle()}) {
        bytes out(qcodec::packed_bytes(n, bits), 0xFF);  // stale bits must not survive
        k.pack_bits(ones.data(), n, bits, out.data());
        REQUIRE(out.back() == (1u << used) - 1u);
        // ... and the reader ignores whatever sits there.
        out.back() = 0xFF;
        REQUIRE(unpack_with(k, out, n, bits) ==
                bytes(n, static_cast<std::uint8_t>((1u << bits) - 1u)));
      }
    }
  }
}

TEST_CASE("split nibbles follow ggml's order", "[packing]") {
  // Q4_0 (half = 16): byte j holds value j in its low nibble and value j + 16 in its high one.
  bytes codes(32);
  for (std::size_t j = 0; j < 16; ++j) {
    codes[j] = static_cast<std::uint8_t>(j);
    codes[j + 16] = static_cast<std::uint8_t>(15 - j);
  }
  bytes want(16);
  for (std::size_t j = 0; j < 16; ++j) want[j] = static_cast<std::uint8_t>(j | (15 - j) << 4);
  CHECK(want[0] == 0xF0);
  CHECK(want[1] == 0xE1);
  CHECK(want[15] == 0x0F);
  for (const auto& k : {dispatched(), oracle()}) {
    bytes out(16);
    k.pack_nibbles_split(codes.data(), 32, 16, out.data());
    CHECK(out == want);
    bytes back(32);
    k.unpack_nibbles_split(out.data(), 32, 16, back.data());
    CHECK(back == codes);
  }

  // K-quants (half = 32) over two groups: group g's byte j = c[64g + j] | c[64g + j + 32] << 4.
  const bytes c = random_codes(128, 4, 5);
  for (const auto& k : {dispatched(), oracle()}) {
    bytes out(64);
    k.pack_nibbles_split(c.data(), 128, 32, out.data());
    for (std::size_t g = 0; g < 2; ++g)
      for (std::size_t j = 0; j < 32; ++j)
        REQUIRE(out[32 * g + j] == (c[64 * g + j] | c[64 * g + j + 32] << 4));
    bytes back(128);
    k.unpack_nibbles_split(out.data(), 128, 32, back.data());
    CHECK(back == c);
  }
}

TEST_CASE("split nibbles ignore the high bits of the codes", "[packing]") {
  for (std::size_t half : {16u, 32u, 5u}) {
    INFO("half=" << half);
    const std::size_t n = 2 * half * 9;
    bytes noisy = random_codes(n, 8, 91);
    bytes clean = noisy;
    for (auto& v : clean) v &= 0x0F;
    bytes a(n / 2), b(n / 2);
    dispatched().pack_nibbles_split(noisy.data(), n, half, a.data());
    dispatched().pack_nibbles_split(clean.data(), n, half, b.data());
    CHECK(a == b);
    bytes back(n);
    dispatched().unpack_nibbles_split(a.data(), n, half, back.data());
    CHECK(back == clean);
  }
}
