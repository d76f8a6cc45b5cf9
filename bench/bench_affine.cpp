// Affine quantize/dequantize throughput. For every benchmark <bytes> is the size of the float
// side (n = bytes / 4 values: the decoded output, the quantizer's input, the dot product's
// vector, the axpy accumulator), and SetBytesProcessed counts those bytes, so figures compare
// directly with BM_memcpy/<bytes> of the same run. The packed side is bits/32 of that.
//
// BM_decode_dot_rows / BM_decode_axpy_rows: the attention access pattern, one call per row of
// <head_dim> values over 4096 rows (scores = q . k_j; out += p_j * v_j), so the per-call cost
// at head_dim 64/128 shows up; bytes again count the float equivalent of the rows.
#include <qcodec/simd/affine.hpp>
#include <qcodec/simd/dispatch.hpp>

#include "bench_util.hpp"

namespace {

constexpr qcodec::affine_params params{0.05f, -0.4f};

std::size_t code_bytes(std::size_t n, unsigned bits) { return (n * bits + 7) / 8; }

void widths_and_sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t bits : {1, 2, 3, 4, 5, 6, 8})
    for (std::int64_t bytes : {qcodec_bench::l1_bytes, qcodec_bench::l2_bytes, qcodec_bench::dram_bytes})
      b->Args({bits, bytes});
}

void finish(benchmark::State& state, unsigned bits, std::int64_t bytes_per_iteration) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * bytes_per_iteration);
  state.counters["bits_per_value"] = bits;
  state.SetLabel(qcodec::simd::kernels().arch);
}

void BM_unpack_dequantize(benchmark::State& state) {
  const auto bits = static_cast<unsigned>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1)) / sizeof(float);
  const std::vector<std::uint8_t> packed = qcodec_bench::random_bytes(code_bytes(n, bits));
  std::vector<float> y(n);
  const auto decode = qcodec::simd::kernels().affine.unpack_dequantize;
  for (auto _ : state) {
    decode(packed.data(), n, bits, params, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  finish(state, bits, state.range(1));
}
BENCHMARK(BM_unpack_dequantize)->Apply(widths_and_sizes);

void BM_quantize_pack(benchmark::State& state) {
  const auto bits = static_cast<unsigned>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1)) / sizeof(float);
  const std::vector<float> x = qcodec_bench::normal_floats(n);
  std::vector<std::uint8_t> packed(code_bytes(n, bits));
  const qcodec::affine_params p{8.0f / static_cast<float>((1u << bits) - 1), -4.0f};
  const auto encode = qcodec::simd::kernels().affine.quantize_pack;
  for (auto _ : state) {
    encode(x.data(), n, p, bits, packed.data());
    benchmark::DoNotOptimize(packed.data());
    benchmark::ClobberMemory();
  }
  finish(state, bits, state.range(1));
}
BENCHMARK(BM_quantize_pack)->Apply(widths_and_sizes);

void BM_decode_dot(benchmark::State& state) {
  const auto bits = static_cast<unsigned>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1)) / sizeof(float);
  const std::vector<std::uint8_t> packed = qcodec_bench::random_bytes(code_bytes(n, bits));
  const std::vector<float> v = qcodec_bench::normal_floats(n);
  const auto dot = qcodec::simd::kernels().affine.decode_dot;
  for (auto _ : state) benchmark::DoNotOptimize(dot(packed.data(), n, bits, params, v.data()));
  finish(state, bits, state.range(1));
}
BENCHMARK(BM_decode_dot)->Apply(widths_and_sizes);

void BM_decode_axpy(benchmark::State& state) {
  const auto bits = static_cast<unsigned>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1)) / sizeof(float);
  const std::vector<std::uint8_t> packed = qcodec_bench::random_bytes(code_bytes(n, bits));
  std::vector<float> y = qcodec_bench::normal_floats(n);
  const auto axpy = qcodec::simd::kernels().affine.decode_axpy;
  for (auto _ : state) {
    // a = 0 keeps y bounded over millions of iterations; the work is the same for any a.
    axpy(packed.data(), n, bits, params, 0.0f, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  finish(state, bits, state.range(1));
}
BENCHMARK(BM_decode_axpy)->Apply(widths_and_sizes);

constexpr std::size_t attention_rows = 4096;

void head_dims(benchmark::internal::Benchmark* b) {
  for (std::int64_t bits : {2, 4, 8})
    for (std::int64_t head_dim : {64, 128}) b->Args({bits, head_dim});
}

void BM_decode_dot_rows(benchmark::State& state) {
  const auto bits = static_cast<unsigned>(state.range(0));
  const auto d = static_cast<std::size_t>(state.range(1));
  const std::size_t row_bytes = code_bytes(d, bits);
  const std::vector<std::uint8_t> keys = qcodec_bench::random_bytes(row_bytes * attention_rows);
  const std::vector<float> q = qcodec_bench::normal_floats(d);
  std::vector<float> scores(attention_rows);
  const auto dot = qcodec::simd::kernels().affine.decode_dot;
  for (auto _ : state) {
    for (std::size_t j = 0; j < attention_rows; ++j)
      scores[j] = dot(keys.data() + j * row_bytes, d, bits, params, q.data());
    benchmark::DoNotOptimize(scores.data());
    benchmark::ClobberMemory();
  }
  finish(state, bits, static_cast<std::int64_t>(attention_rows * d * sizeof(float)));
  state.counters["rows_per_second"] =
      benchmark::Counter(static_cast<double>(attention_rows), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_decode_dot_rows)->Apply(head_dims);

void BM_decode_axpy_rows(benchmark::State& state) {
  const auto bits = static_cast<unsigned>(state.range(0));
  const auto d = static_cast<std::size_t>(state.range(1));
  const std::size_t row_bytes = code_bytes(d, bits);
  const std::vector<std::uint8_t> values = qcodec_bench::random_bytes(row_bytes * attention_rows);
  const std::vector<float> weights = qcodec_bench::normal_floats(attention_rows);
  std::vector<float> out(d);
  const auto axpy = qcodec::simd::kernels().affine.decode_axpy;
  for (auto _ : state) {
    for (std::size_t j = 0; j < attention_rows; ++j)
      axpy(values.data() + j * row_bytes, d, bits, params, weights[j] * 1e-6f, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  finish(state, bits, static_cast<std::int64_t>(attention_rows * d * sizeof(float)));
  state.counters["rows_per_second"] =
      benchmark::Counter(static_cast<double>(attention_rows), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_decode_axpy_rows)->Apply(head_dims);

}  // namespace
