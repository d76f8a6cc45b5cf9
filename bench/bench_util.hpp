#pragma once
// Shared by the benchmarks: the sizes every kernel is measured at and seeded inputs.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace qcodec_bench {

/// Working-set sizes in bytes: L1-resident, L2-resident (the size targets are quoted at),
/// and beyond the last-level cache.
inline constexpr std::int64_t l1_bytes = 16 << 10;
inline constexpr std::int64_t l2_bytes = 256 << 10;
inline constexpr std::int64_t dram_bytes = 64 << 20;

/// Registers the three standard working-set sizes as the benchmark's argument (bytes).
inline void standard_sizes(benchmark::internal::Benchmark* b) {
  b->Arg(l1_bytes)->Arg(l2_bytes)->Arg(dram_bytes);
}

inline std::vector<float> normal_floats(std::size_t n, std::uint32_t seed = 1) {
  std::vector<float> v(n);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (float& x : v) x = dist(rng);
  return v;
}

inline std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint32_t seed = 2) {
  std::vector<std::uint8_t> v(n);
  std::mt19937 rng(seed);
  for (auto& x : v) x = static_cast<std::uint8_t>(rng());
  return v;
}

}  // namespace qcodec_bench
