// ggml-compatible block formats: quantize_row (qcodec's encoder), quantize_row_ref (ggml's
// reference encoder, for comparison), dequantize_row and vec_dot. The argument is the size of
// the float side in bytes (n = bytes / 4 values) and SetBytesProcessed counts those float
// bytes, so figures compare directly with BM_memcpy of the same size. Counters:
// bits_per_value (storage, scales included) and rel_mse, the relative squared error
// sum (decoded - x)^2 / sum x^2 of the benchmarked encoder on the N(0, 1) input.
#include <qcodec/quant/block/ggml.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

namespace g = qcodec::ggml;

template <class F>
double rel_mse(const std::vector<float>& x, const std::vector<typename F::block>& b) {
  std::vector<float> y(x.size());
  F::dequantize_row(b.data(), y.data(), static_cast<std::int64_t>(x.size()));
  double err = 0.0, sig = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = double{y[i]} - x[i];
    err += d * d;
    sig += double{x[i]} * x[i];
  }
  return err / sig;
}

template <class F, bool Ref>
void bm_quantize(benchmark::State& state) {
  const auto n = static_cast<std::int64_t>(state.range(0)) / 4;
  const std::vector<float> x = qcodec_bench::normal_floats(static_cast<std::size_t>(n));
  std::vector<typename F::block> b(static_cast<std::size_t>(n) / F::block_values);
  for (auto _ : state) {
    if constexpr (Ref) {
      F::quantize_row_ref(x.data(), b.data(), n);
    } else {
      F::quantize_row(x.data(), b.data(), n);
    }
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.counters["bits_per_value"] = F::bits_per_value;
  state.counters["rel_mse"] = rel_mse<F>(x, b);
  state.SetLabel(qcodec::simd::kernels().arch);
}

template <class F>
void bm_dequantize(benchmark::State& state) {
  const auto n = static_cast<std::int64_t>(state.range(0)) / 4;
  const std::vector<float> x = qcodec_bench::normal_floats(static_cast<std::size_t>(n));
  std::vector<typename F::block> b(static_cast<std::size_t>(n) / F::block_values);
  F::quantize_row(x.data(), b.data(), n);
  std::vector<float> y(static_cast<std::size_t>(n));
  for (auto _ : state) {
    F::dequantize_row(b.data(), y.data(), n);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.counters["bits_per_value"] = F::bits_per_value;
  state.counters["rel_mse"] = rel_mse<F>(x, b);
  state.SetLabel(qcodec::simd::kernels().arch);
}

template <class F>
void bm_vec_dot(benchmark::State& state) {
  const auto n = static_cast<std::int64_t>(state.range(0)) / 4;
  const std::vector<float> x = qcodec_bench::normal_floats(static_cast<std::size_t>(n), 1);
  const std::vector<float> a = qcodec_bench::normal_floats(static_cast<std::size_t>(n), 2);
  std::vector<typename F::block> b(static_cast<std::size_t>(n) / F::block_values);
  std::vector<typename F::dot_block> q(static_cast<std::size_t>(n) / F::block_values);
  F::quantize_row(x.data(), b.data(), n);
  F::quantize_dot_row(a.data(), q.data(), n);
  float s = 0.0f;
  for (auto _ : state) {
    F::vec_dot(n, &s, b.data(), q.data());
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.counters["bits_per_value"] = F::bits_per_value;
  state.counters["rel_mse"] = rel_mse<F>(x, b);
  state.SetLabel(qcodec::simd::kernels().arch);
}

template <class F>
void register_format() {
  const std::string fmt = F::name;
  benchmark::RegisterBenchmark(("BM_quantize_row/" + fmt).c_str(), bm_quantize<F, false>)
      ->Apply(qcodec_bench::standard_sizes);
  benchmark::RegisterBenchmark(("BM_quantize_row_ref/" + fmt).c_str(), bm_quantize<F, true>)
      ->Apply(qcodec_bench::standard_sizes);
  benchmark::RegisterBenchmark(("BM_dequantize_row/" + fmt).c_str(), bm_dequantize<F>)
      ->Apply(qcodec_bench::standard_sizes);
  benchmark::RegisterBenchmark(("BM_vec_dot/" + fmt).c_str(), bm_vec_dot<F>)
      ->Apply(qcodec_bench::standard_sizes);
}

[[maybe_unused]] const int registered = [] {
  register_format<g::q4_0>();
  register_format<g::q4_1>();
  register_format<g::q5_0>();
  register_format<g::q5_1>();
  register_format<g::q8_0>();
  register_format<g::iq4_nl>();
  register_format<g::mxfp4>();
  register_format<g::q2_K>();
  register_format<g::q3_K>();
  register_format<g::q4_K>();
  register_format<g::q5_K>();
  register_format<g::q6_K>();
  register_format<g::iq4_xs>();
  return 0;
}();

}  // namespace
