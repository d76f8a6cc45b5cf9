// The machine's own bandwidth, measured in the same run as every kernel: BM_memcpy copies N
// bytes (N read + N written, reported as N bytes per iteration), BM_stream_read sums N bytes of
// floats. Kernel figures are quoted as a fraction of these at the same working-set size.
#include <qcodec/simd/dispatch.hpp>

#include <cstring>

#include "bench_util.hpp"

namespace {

void BM_memcpy(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  std::vector<char> src(bytes, 1), dst(bytes);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), bytes);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_memcpy)->Apply(qcodec_bench::standard_sizes);

void BM_stream_read(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0)) / sizeof(float);
  const std::vector<float> x = qcodec_bench::normal_floats(n);
  const auto sum = qcodec::simd::kernels().reductions.sum;
  for (auto _ : state) benchmark::DoNotOptimize(sum(x.data(), n));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.SetLabel(qcodec::simd::kernels().arch);
}
BENCHMARK(BM_stream_read)->Apply(qcodec_bench::standard_sizes);

}  // namespace
