#pragma once
// Shared by the benchmarks: the sizes every kernel is measured at, seeded inputs, and the one
// table-driven driver of the format benchmarks (register_row_format).
#include <qcodec/simd/dispatch.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
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

/// Row lengths of the format benchmarks, in values: 16 KiB and 256 KiB of floats (L1- and
/// L2-resident float side; compare with BM_memcpy/16384 and BM_memcpy/262144).
inline constexpr std::int64_t row_values[] = {l1_bytes / 4, l2_bytes / 4};

/// sum (y - x)^2 / sum x^2.
inline double rel_mse(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0.0, sig = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = double{y[i]} - x[i];
    err += d * d;
    sig += double{x[i]} * x[i];
  }
  return err / sig;
}

// A row format for register_row_format: a copyable object with
//   using unit = ...;                                     storage element (a block or a byte)
//   std::size_t units(std::size_t n) const;               units holding n values
//   double bits_per_value(std::size_t n) const;           every stored bit of n values / n
//   void quantize(const float* x, std::size_t n, unit* out) const;
//   void dequantize(const unit* in, std::size_t n, float* y) const;

/// Bytes processed (4 n float bytes per iteration) and the counters every format reports:
/// bits_per_value and rel_mse of the format's round trip on the benchmark's N(0, 1) row.
template <class F>
void set_format_counters(benchmark::State& state, const F& f, const std::vector<float>& x,
                         const std::vector<typename F::unit>& q) {
  std::vector<float> y(x.size());
  f.dequantize(q.data(), x.size(), y.data());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(x.size() * sizeof(float)));
  state.counters["bits_per_value"] = f.bits_per_value(x.size());
  state.counters["rel_mse"] = rel_mse(x, y);
  state.SetLabel(qcodec::simd::kernels().arch);
}

template <class F>
void bm_quantize_row(benchmark::State& state, F f) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = normal_floats(n);
  std::vector<typename F::unit> q(f.units(n));
  for (auto _ : state) {
    f.quantize(x.data(), n, q.data());
    benchmark::DoNotOptimize(q.data());
    benchmark::ClobberMemory();
  }
  set_format_counters(state, f, x, q);
}

template <class F>
void bm_dequantize_row(benchmark::State& state, F f) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = normal_floats(n);
  std::vector<typename F::unit> q(f.units(n));
  f.quantize(x.data(), n, q.data());
  std::vector<float> y(n);
  for (auto _ : state) {
    f.dequantize(q.data(), n, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_format_counters(state, f, x, q);
}

/// Registers BM_quantize_row/<name>/<n> and BM_dequantize_row/<name>/<n> for n in row_values.
template <class F>
void register_row_format(const std::string& name, const F& f) {
  auto* q = benchmark::RegisterBenchmark(("BM_quantize_row/" + name).c_str(), bm_quantize_row<F>, f);
  auto* d =
      benchmark::RegisterBenchmark(("BM_dequantize_row/" + name).c_str(), bm_dequantize_row<F>, f);
  for (const std::int64_t n : row_values) {
    q->Arg(n);
    d->Arg(n);
  }
}

/// A format with ggml's row interface (typed blocks: BlockFormat of codec/block_format_codec.hpp)
/// as a row format.
template <class Format>
struct block_rows {
  using unit = typename Format::block;
  std::size_t units(std::size_t n) const { return n / Format::block_values; }
  double bits_per_value(std::size_t) const { return Format::bits_per_value; }
  void quantize(const float* x, std::size_t n, unit* out) const {
    Format::quantize_row(x, out, static_cast<std::int64_t>(n));
  }
  void dequantize(const unit* in, std::size_t n, float* y) const {
    Format::dequantize_row(in, y, static_cast<std::int64_t>(n));
  }
};

}  // namespace qcodec_bench
