#pragma once
// Shared by the uniform quantizer tests: seeded inputs and a loop over bit widths.
#include <qcodec/core/rng.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace uniform_test {

inline std::vector<float> normal(std::size_t n, std::uint64_t seed, float sigma = 1.0f) {
  qcodec::rng g(seed);
  std::vector<float> v(n);
  for (float& x : v) x = sigma * g.normal();
  return v;
}

/// Heavy-tailed: a Student-t-like ratio normal / sqrt(mean of k squared normals), k = 2.
inline std::vector<float> heavy(std::size_t n, std::uint64_t seed) {
  qcodec::rng g(seed);
  std::vector<float> v(n);
  for (float& x : v) {
    const float a = g.normal(), b = g.normal();
    x = g.normal() / std::sqrt(0.5f * (a * a + b * b) + 1e-6f);
  }
  return v;
}

/// Calls f(std::integral_constant<unsigned, B>{}) for B = First..Last.
template <unsigned First, unsigned Last, class F>
void for_bits(F&& f) {
  [&]<unsigned... I>(std::integer_sequence<unsigned, I...>) {
    (f(std::integral_constant<unsigned, First + I>{}), ...);
  }
  (std::make_integer_sequence<unsigned, Last - First + 1>{});
}

}  // namespace uniform_test
