// Bit packing throughput. <bytes> is the size of the unpacked uint8 codes (one code per byte),
// and SetBytesProcessed counts those bytes, so figures compare directly with BM_memcpy/<bytes>.
#include <qcodec/simd/bit_packing.hpp>
#include <qcodec/simd/dispatch.hpp>

#include "bench_util.hpp"

namespace {

void widths_and_sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t bits = 1; bits <= 8; ++bits)
    for (std::int64_t bytes :
         {qcodec_bench::l1_bytes, qcodec_bench::l2_bytes, qcodec_bench::dram_bytes})
      b->Args({bits, bytes});
}

void BM_pack_bits(benchmark::State& state) {
  const auto bits = static_cast<unsigned>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1));
  const std::vector<std::uint8_t> codes = qcodec_bench::random_bytes(n);
  std::vector<std::uint8_t> packed(qcodec::packed_bytes(n, bits));
  const auto pack = qcodec::simd::kernels().packing.pack_bits;
  for (auto _ : state) {
    pack(codes.data(), n, bits, packed.data());
    benchmark::DoNotOptimize(packed.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(1));
  state.counters["bits_per_value"] = bits;
  state.SetLabel(qcodec::simd::kernels().arch);
}
BENCHMARK(BM_pack_bits)->Apply(widths_and_sizes);

void BM_unpack_bits(benchmark::State& state) {
  const auto bits = static_cast<unsigned>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1));
  const std::vector<std::uint8_t> packed =
      qcodec_bench::random_bytes(qcodec::packed_bytes(n, bits));
  std::vector<std::uint8_t> codes(n);
  const auto unpack = qcodec::simd::kernels().packing.unpack_bits;
  for (auto _ : state) {
    unpack(packed.data(), n, bits, codes.data());
    benchmark::DoNotOptimize(codes.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(1));
  state.counters["bits_per_value"] = bits;
  state.SetLabel(qcodec::simd::kernels().arch);
}
BENCHMARK(BM_unpack_bits)->Apply(widths_and_sizes);

// ggml Q4_0 order (half = 16): 32 codes <-> 16 bytes.
void BM_unpack_nibbles_split(benchmark::State& state) {
  const auto half = static_cast<std::size_t>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1));
  const std::vector<std::uint8_t> packed = qcodec_bench::random_bytes(n / 2);
  std::vector<std::uint8_t> codes(n);
  const auto unpack = qcodec::simd::kernels().packing.unpack_nibbles_split;
  for (auto _ : state) {
    unpack(packed.data(), n, half, codes.data());
    benchmark::DoNotOptimize(codes.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(1));
  state.counters["bits_per_value"] = 4;
  state.SetLabel(qcodec::simd::kernels().arch);
}
BENCHMARK(BM_unpack_nibbles_split)->Apply([](benchmark::internal::Benchmark* b) {
  for (std::int64_t bytes :
       {qcodec_bench::l1_bytes, qcodec_bench::l2_bytes, qcodec_bench::dram_bytes})
    b->Args({16, bytes});
});

}  // namespace
