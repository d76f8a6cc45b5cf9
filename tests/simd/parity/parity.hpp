#pragma once
// Shared by the parity tests: the target under test (set per binary by CMake), its kernel
// table (instantiated by the per-ISA translation units of qcodec_project_kernels on x86), and
// seeded random inputs with the awkward sizes and alignments kernels must handle.
#include <qcodec/simd/dispatch.hpp>  // declares the per-ISA tables qcodec_project_kernels holds

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "../../support/catch.hpp"

namespace parity {

using arch = qcodec::simd::QCODEC_PARITY_ARCH;

inline const qcodec::simd::kernel_table& under_test() {
  static const qcodec::simd::kernel_table table = qcodec::simd::make_kernel_table<arch>();
  return table;
}

/// Lengths 0..4099: every small length, the lengths around vector and block multiples, and a
/// seeded sample of the rest.
inline std::vector<std::size_t> lengths() {
  std::vector<std::size_t> n;
  for (std::size_t i = 0; i <= 70; ++i) n.push_back(i);
  for (std::size_t m :
       {127u, 128u, 129u, 255u, 256u, 257u, 511u, 1023u, 1024u, 1025u, 4095u, 4096u, 4097u, 4099u})
    n.push_back(m);
  std::mt19937 rng(7);
  for (int i = 0; i < 24; ++i)
    n.push_back(std::uniform_int_distribution<std::size_t>(71, 4099)(rng));
  return n;
}

/// n elements at `offset` elements into an exactly sized buffer filled with `fill`, so that
/// AddressSanitizer sees any access past the range.
template <class T>
struct exact {
  std::vector<T> storage;
  T* data;
  exact(std::size_t n, std::size_t offset, T fill) : storage(n + offset, fill) {
    data = storage.data() + offset;
  }
};

/// Misalignments (in elements) applied to every pointer a test hands to a kernel.
inline constexpr std::size_t offsets[] = {0, 1, 3};

/// `n` values from N(0, sigma) followed by padding, starting `offset` elements into the buffer.
struct floats {
  std::vector<float> storage;
  float* data;
  floats(std::size_t n, std::size_t offset, std::uint32_t seed, float sigma = 1.0f)
      : storage(n + offset + 64) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, sigma);
    for (float& v : storage) v = dist(rng);
    data = storage.data() + offset;
  }
};

/// `n` random bytes below 2^bits, starting `offset` bytes into the buffer.
struct codes {
  std::vector<std::uint8_t> storage;
  std::uint8_t* data;
  codes(std::size_t n, std::size_t offset, std::uint32_t seed, unsigned bits)
      : storage(n + offset + 64) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<unsigned> dist(0, (1u << bits) - 1);
    for (auto& v : storage) v = static_cast<std::uint8_t>(dist(rng));
    data = storage.data() + offset;
  }
};

}  // namespace parity
