#include <qcodec/simd/hadamard.hpp>

#include <cstring>
#include <random>
#include <vector>

#include "parity.hpp"

namespace {

// Every power of two the kernels accept, plus 0 (a no-op).
std::vector<std::size_t> hadamard_lengths() {
  std::vector<std::size_t> n{0};
  for (std::size_t p = 1; p <= qcodec::hadamard_max_length; p *= 2) n.push_back(p);
  return n;
}

// Exactly (n + 7) / 8 random bytes, unused high bits included: kernels must read no further and
// must ignore bits beyond n. A vector of the exact size lets AddressSanitizer see an overread.
std::vector<std::uint8_t> random_sign_bits(std::size_t n, std::uint32_t seed) {
  std::vector<std::uint8_t> bits((n + 7) / 8);
  std::mt19937 rng(seed);
  for (auto& b : bits) b = static_cast<std::uint8_t>(rng());
  return bits;
}

enum class op { fwht, forward, inverse };

void run(op which, const qcodec::simd::hadamard_kernels& k, float* x, std::size_t n,
         const std::uint8_t* bits) {
  switch (which) {
    case op::fwht:
      return k.fwht(x, n);
    case op::forward:
      return k.randomized_hadamard(x, n, bits);
    case op::inverse:
      return k.randomized_hadamard_inverse(x, n, bits);
  }
}

void oracle(op which, float* x, std::size_t n, const std::uint8_t* bits) {
  switch (which) {
    case op::fwht:
      return qcodec::ref::fwht(x, n);
    case op::forward:
      return qcodec::ref::randomized_hadamard(x, n, bits);
    case op::inverse:
      return qcodec::ref::randomized_hadamard_inverse(x, n, bits);
  }
}

}  // namespace

TEST_CASE("Hadamard kernels match the oracle bit for bit", "[parity][hadamard]") {
  const auto& k = parity::under_test().hadamard;
  for (op which : {op::fwht, op::forward, op::inverse}) {
    for (std::size_t n : hadamard_lengths()) {
      for (std::size_t off : parity::offsets) {
        INFO("op=" << static_cast<int>(which) << " n=" << n << " offset=" << off);
        const auto seed = static_cast<std::uint32_t>(n * 5 + off + 100 * static_cast<int>(which));
        parity::floats want(n, off, seed), got(n, off, seed);
        const std::vector<std::uint8_t> bits = random_sign_bits(n, seed);
        oracle(which, want.data, n, bits.data());
        run(which, k, got.data, n, bits.data());
        // The whole buffer: the transformed range and the untouched padding around it.
        REQUIRE(std::memcmp(want.storage.data(), got.storage.data(),
                            want.storage.size() * sizeof(float)) == 0);
      }
    }
  }
}

TEST_CASE("Hadamard kernels are exact on awkward values", "[parity][hadamard]") {
  // Signed zeros, subnormals and values whose sums round: any reordering or FMA contraction of
  // the butterflies would change some bit here.
  const auto& k = parity::under_test().hadamard;
  for (std::size_t n : {std::size_t{16}, std::size_t{128}, std::size_t{1024}}) {
    std::vector<float> base(n);
    std::mt19937 rng(static_cast<std::uint32_t>(n));
    for (std::size_t i = 0; i < n; ++i) {
      switch (i % 5) {
        case 0:
          base[i] = (i % 2) ? -0.0f : 0.0f;
          break;
        case 1:
          base[i] = 1e-41f * static_cast<float>(1 + rng() % 7);
          break;
        case 2:
          base[i] = 1.0f + 0x1.0p-23f * static_cast<float>(rng() % 4);
          break;
        case 3:
          base[i] = -3e7f + static_cast<float>(rng() % 1000);
          break;
        default:
          base[i] = std::ldexp(static_cast<float>(rng() % 1000), -12);
          break;
      }
    }
    const std::vector<std::uint8_t> bits = random_sign_bits(n, 3);
    for (op which : {op::fwht, op::forward, op::inverse}) {
      INFO("op=" << static_cast<int>(which) << " n=" << n);
      std::vector<float> want = base, got = base;
      oracle(which, want.data(), n, bits.data());
      run(which, k, got.data(), n, bits.data());
      REQUIRE(std::memcmp(want.data(), got.data(), n * sizeof(float)) == 0);
    }
  }
}
