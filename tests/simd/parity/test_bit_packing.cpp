#include <qcodec/simd/bit_packing.hpp>

#include <algorithm>

#include "parity.hpp"

namespace {

constexpr std::uint8_t canary = 0xA5;
constexpr std::size_t guard = 32;

// `size` random bytes starting `offset` bytes into a buffer that ends exactly where they end, so
// that AddressSanitizer reports any read past the range.
struct exact_input {
  std::vector<std::uint8_t> storage;
  const std::uint8_t* data;
  exact_input(std::size_t size, std::size_t offset, std::uint32_t seed) : storage(offset + size) {
    std::mt19937 rng(seed);
    for (auto& v : storage) v = static_cast<std::uint8_t>(rng());
    data = storage.data() + offset;
  }
};

// `size` writable bytes starting `offset` bytes in, surrounded by canaries that must survive.
struct guarded_output {
  std::vector<std::uint8_t> storage;
  std::size_t offset, size;
  guarded_output(std::size_t n, std::size_t off)
      : storage(off + n + guard, canary), offset(off), size(n) {}
  std::uint8_t* data() { return storage.data() + offset; }
  bool canaries_intact() const {
    for (std::size_t i = 0; i < storage.size(); ++i)
      if ((i < offset || i >= offset + size) && storage[i] != canary) return false;
    return true;
  }
};

}  // namespace

TEST_CASE("pack_bits matches the oracle byte for byte", "[parity][packing]") {
  const auto& k = parity::under_test().packing;
  for (unsigned bits = 1; bits <= 8; ++bits) {
    for (std::size_t n : parity::lengths()) {
      for (std::size_t off : parity::offsets) {
        INFO("bits=" << bits << " n=" << n << " offset=" << off);
        // Full random bytes: the high bits above `bits` must be ignored alike.
        const exact_input codes(n, off, static_cast<std::uint32_t>(n * 9 + off * 3 + bits));
        const std::size_t nb = qcodec::packed_bytes(n, bits);
        std::vector<std::uint8_t> want(nb);
        qcodec::ref::pack_bits(codes.data, n, bits, want.data());
        guarded_output got(nb, off);
        k.pack_bits(codes.data, n, bits, got.data());
        REQUIRE(std::equal(want.begin(), want.end(), got.data()));
        REQUIRE(got.canaries_intact());
      }
    }
  }
}

TEST_CASE("unpack_bits matches the oracle byte for byte", "[parity][packing]") {
  const auto& k = parity::under_test().packing;
  for (unsigned bits = 1; bits <= 8; ++bits) {
    for (std::size_t n : parity::lengths()) {
      for (std::size_t off : parity::offsets) {
        INFO("bits=" << bits << " n=" << n << " offset=" << off);
        // Random packed bytes, including set spare bits in the last byte.
        const std::size_t nb = qcodec::packed_bytes(n, bits);
        const exact_input packed(nb, off, static_cast<std::uint32_t>(n * 5 + off * 7 + bits));
        std::vector<std::uint8_t> want(n);
        qcodec::ref::unpack_bits(packed.data, n, bits, want.data());
        guarded_output got(n, off);
        k.unpack_bits(packed.data, n, bits, got.data());
        REQUIRE(std::equal(want.begin(), want.end(), got.data()));
        REQUIRE(got.canaries_intact());
      }
    }
  }
}

TEST_CASE("split-halves nibbles match the oracle byte for byte", "[parity][packing]") {
  const auto& k = parity::under_test().packing;
  // 16 and 32 are ggml's; the others take the whole-vector and byte-loop paths.
  for (std::size_t half : {16u, 32u, 1u, 8u, 48u, 64u}) {
    for (std::size_t n = 0; n <= 4096 + 2 * half; n += 2 * half) {
      for (std::size_t off : parity::offsets) {
        INFO("half=" << half << " n=" << n << " offset=" << off);
        const exact_input codes(n, off, static_cast<std::uint32_t>(n + off * 11 + half));
        std::vector<std::uint8_t> want(n / 2);
        qcodec::ref::pack_nibbles_split(codes.data, n, half, want.data());
        guarded_output got(n / 2, off);
        k.pack_nibbles_split(codes.data, n, half, got.data());
        REQUIRE(std::equal(want.begin(), want.end(), got.data()));
        REQUIRE(got.canaries_intact());

        const exact_input packed(n / 2, off, static_cast<std::uint32_t>(n * 3 + off + half));
        std::vector<std::uint8_t> want_codes(n);
        qcodec::ref::unpack_nibbles_split(packed.data, n, half, want_codes.data());
        guarded_output got_codes(n, off);
        k.unpack_nibbles_split(packed.data, n, half, got_codes.data());
        REQUIRE(std::equal(want_codes.begin(), want_codes.end(), got_codes.data()));
        REQUIRE(got_codes.canaries_intact());
      }
    }
  }
}
