// Bulk float <-> half / bfloat16 conversion. The argument is the size of the float side in
// bytes (the 16-bit side is half of it), and SetBytesProcessed counts those float bytes, so
// figures compare directly with BM_memcpy of the same size. The *_ref variants run the scalar
// oracles, for the speed-up of the SIMD kernels.
#include <qcodec/simd/dispatch.hpp>

#include <cstdint>
#include <vector>

#include "bench_util.hpp"

namespace {

using narrow_fn = void (*)(const float*, std::size_t, std::uint16_t*) noexcept;
using widen_fn = void (*)(const std::uint16_t*, std::size_t, float*) noexcept;

void run_narrow(benchmark::State& state, narrow_fn convert, const char* label) {
  const auto n = static_cast<std::size_t>(state.range(0)) / sizeof(float);
  const std::vector<float> x = qcodec_bench::normal_floats(n);
  std::vector<std::uint16_t> y(n);
  for (auto _ : state) {
    convert(x.data(), n, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.SetLabel(label);
}

void run_widen(benchmark::State& state, narrow_fn make_input, widen_fn convert, const char* label) {
  const auto n = static_cast<std::size_t>(state.range(0)) / sizeof(float);
  const std::vector<float> src = qcodec_bench::normal_floats(n);
  std::vector<std::uint16_t> x(n);
  make_input(src.data(), n, x.data());
  std::vector<float> y(n);
  for (auto _ : state) {
    convert(x.data(), n, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.SetLabel(label);
}

const qcodec::simd::convert_kernels& k() { return qcodec::simd::kernels().convert; }
const char* arch() { return qcodec::simd::kernels().arch; }

void BM_f32_to_f16(benchmark::State& s) { run_narrow(s, k().f32_to_f16, arch()); }
void BM_f16_to_f32(benchmark::State& s) { run_widen(s, k().f32_to_f16, k().f16_to_f32, arch()); }
void BM_f32_to_bf16(benchmark::State& s) { run_narrow(s, k().f32_to_bf16, arch()); }
void BM_bf16_to_f32(benchmark::State& s) { run_widen(s, k().f32_to_bf16, k().bf16_to_f32, arch()); }
BENCHMARK(BM_f32_to_f16)->Apply(qcodec_bench::standard_sizes);
BENCHMARK(BM_f16_to_f32)->Apply(qcodec_bench::standard_sizes);
BENCHMARK(BM_f32_to_bf16)->Apply(qcodec_bench::standard_sizes);
BENCHMARK(BM_bf16_to_f32)->Apply(qcodec_bench::standard_sizes);

void BM_f32_to_f16_ref(benchmark::State& s) { run_narrow(s, &qcodec::ref::f32_to_f16, "scalar"); }
void BM_f16_to_f32_ref(benchmark::State& s) {
  run_widen(s, &qcodec::ref::f32_to_f16, &qcodec::ref::f16_to_f32, "scalar");
}
void BM_f32_to_bf16_ref(benchmark::State& s) { run_narrow(s, &qcodec::ref::f32_to_bf16, "scalar"); }
void BM_bf16_to_f32_ref(benchmark::State& s) {
  run_widen(s, &qcodec::ref::f32_to_bf16, &qcodec::ref::bf16_to_f32, "scalar");
}
BENCHMARK(BM_f32_to_f16_ref)->Apply(qcodec_bench::standard_sizes);
BENCHMARK(BM_f16_to_f32_ref)->Apply(qcodec_bench::standard_sizes);
BENCHMARK(BM_f32_to_bf16_ref)->Apply(qcodec_bench::standard_sizes);
BENCHMARK(BM_bf16_to_f32_ref)->Apply(qcodec_bench::standard_sizes);

}  // namespace
