// 4-bit lookup-table decode throughput. <bytes> is the size of the output (floats for
// lut16_dequantize, int8 for lut16_lookup_i8), and SetBytesProcessed counts those bytes, so
// figures compare directly with BM_memcpy/<bytes> of the same run.
#include <qcodec/simd/dispatch.hpp>
#include <qcodec/simd/lut.hpp>

#include "bench_util.hpp"

namespace {

void sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t bytes : {qcodec_bench::l1_bytes, qcodec_bench::l2_bytes, qcodec_bench::dram_bytes})
    b->Args({4, bytes});
}

void BM_lut16_dequantize(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(1)) / sizeof(float);
  const std::vector<std::uint8_t> packed = qcodec_bench::random_bytes((n + 1) / 2);
  const std::vector<float> table = qcodec_bench::normal_floats(16, 3);
  std::vector<float> y(n);
  const auto decode = qcodec::simd::kernels().lut.lut16_dequantize;
  for (auto _ : state) {
    decode(packed.data(), n, table.data(), 0.5f, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(1));
  state.counters["bits_per_value"] = 4;
  state.SetLabel(qcodec::simd::kernels().arch);
}
BENCHMARK(BM_lut16_dequantize)->Apply(sizes);

void BM_lut16_lookup_i8(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(1));
  const std::vector<std::uint8_t> packed = qcodec_bench::random_bytes((n + 1) / 2);
  std::int8_t table[16];
  for (int k = 0; k < 16; ++k) table[k] = static_cast<std::int8_t>(k * 16 - 120);
  std::vector<std::int8_t> out(n);
  const auto lookup = qcodec::simd::kernels().lut.lut16_lookup_i8;
  for (auto _ : state) {
    lookup(packed.data(), n, table, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(1));
  state.counters["bits_per_value"] = 4;
  state.SetLabel(qcodec::simd::kernels().arch);
}
BENCHMARK(BM_lut16_lookup_i8)->Apply(sizes);

}  // namespace
