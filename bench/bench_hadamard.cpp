// Fast Walsh–Hadamard transforms, in place on n floats (time per iteration = one transform;
// BM_hadamard and BM_randomized_hadamard transform one buffer over and over, so each transform
// waits for the previous one's stores: a latency-bound, conservative figure).
// Bytes processed = 4n per transform, so n = 4096 and n = 65536 read against BM_memcpy at
// 16 KiB and 256 KiB. The _scalar variants run the qcodec::ref oracle for the speed-up ratio.
#include <qcodec/core/rng.hpp>
#include <qcodec/simd/dispatch.hpp>

#include "bench_util.hpp"

namespace {

void hadamard_sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t n : {64, 128, 256, 1024, 4096, 65536}) b->Arg(n);
}

void set_counters(benchmark::State& state, std::size_t n, const char* label) {
  const auto iterations = static_cast<std::int64_t>(state.iterations());
  state.SetBytesProcessed(iterations * static_cast<std::int64_t>(n * sizeof(float)));
  state.SetItemsProcessed(iterations * static_cast<std::int64_t>(n));
  state.SetLabel(label);
}

// The transforms are orthonormal, so transforming the same buffer over and over keeps its
// values in range (no drift into subnormals or infinities).
void BM_hadamard(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<float> x = qcodec_bench::normal_floats(n);
  const auto fwht = qcodec::simd::kernels().hadamard.fwht;
  for (auto _ : state) {
    fwht(x.data(), n);
    benchmark::ClobberMemory();
  }
  set_counters(state, n, qcodec::simd::kernels().arch);
}
BENCHMARK(BM_hadamard)->Apply(hadamard_sizes);

void BM_randomized_hadamard(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<float> x = qcodec_bench::normal_floats(n);
  std::vector<std::uint8_t> bits((n + 7) / 8);
  qcodec::fill_sign_bits(1, n, bits.data());
  const auto rht = qcodec::simd::kernels().hadamard.randomized_hadamard;
  for (auto _ : state) {
    rht(x.data(), n, bits.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, qcodec::simd::kernels().arch);
}
BENCHMARK(BM_randomized_hadamard)->Apply(hadamard_sizes);

void BM_randomized_hadamard_inverse(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<float> x = qcodec_bench::normal_floats(n);
  std::vector<std::uint8_t> bits((n + 7) / 8);
  qcodec::fill_sign_bits(1, n, bits.data());
  const auto inverse = qcodec::simd::kernels().hadamard.randomized_hadamard_inverse;
  for (auto _ : state) {
    inverse(x.data(), n, bits.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, qcodec::simd::kernels().arch);
}
BENCHMARK(BM_randomized_hadamard_inverse)->Apply(hadamard_sizes);

// Throughput on independent rows (as when rotating every head of a token): consecutive
// transforms touch different rows of a 16 KiB, L1-resident batch, so one transform's latency no
// longer serialises the next. Time per iteration = one transform.
void BM_randomized_hadamard_rows(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::size_t rows = static_cast<std::size_t>(qcodec_bench::l1_bytes) / (n * sizeof(float));
  std::vector<float> x = qcodec_bench::normal_floats(rows * n);
  std::vector<std::uint8_t> bits((n + 7) / 8);
  qcodec::fill_sign_bits(1, n, bits.data());
  const auto rht = qcodec::simd::kernels().hadamard.randomized_hadamard;
  std::size_t row = 0;
  for (auto _ : state) {
    rht(x.data() + row * n, n, bits.data());
    row = row + 1 == rows ? 0 : row + 1;
    benchmark::ClobberMemory();
  }
  set_counters(state, n, qcodec::simd::kernels().arch);
}
BENCHMARK(BM_randomized_hadamard_rows)->Arg(64)->Arg(128)->Arg(256)->Arg(1024);

void BM_randomized_hadamard_scalar(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<float> x = qcodec_bench::normal_floats(n);
  std::vector<std::uint8_t> bits((n + 7) / 8);
  qcodec::fill_sign_bits(1, n, bits.data());
  for (auto _ : state) {
    qcodec::ref::randomized_hadamard(x.data(), n, bits.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, "scalar");
}
BENCHMARK(BM_randomized_hadamard_scalar)->Apply(hadamard_sizes);

}  // namespace
