// Low-precision float formats (quant/float): BM_quantize_row/<format>/<n> and
// BM_dequantize_row/<format>/<n> over n floats of N(0, 1) data (n = 4096, 65536 values; the
// argument is the value count, SetBytesProcessed counts the 4n float bytes). Formats:
//   fp8_e4m3, fp8_e5m2  float_quantizer<T> with one scale for the row (absmax / max finite):
//                       8 + 32 / n bits per value; table decode
//   mxfp4, mxfp8_e4m3   OCP MX blocks of 32 with an E8M0 scale, qcodec's best-of-two encoder:
//                       4.25 / 8.25 bits per value (mxfp4 here is quant/float/mx.hpp, not ggml's
//                       byte layout of bench_ggml.cpp, whose argument is bytes)
//   mxfp4_spec          MXFP4 with the spec's scale rule (same decoder)
//   nvfp4               16 E2M1 + an E4M3 scale per block and the per-tensor FP32 scale
//                       (computed inside quantize_row): 4.5 + 32 / n bits per value; qcodec's
//                       block-scale search (the default encoder)
//   nvfp4_nvidia        NVFP4 with NVIDIA's block-scale recipe exactly (same decoder)
// Counters: bits_per_value (scales included) and rel_mse = sum (y - x)^2 / sum x^2.
#include <qcodec/quant/float/float_quantizer.hpp>
#include <qcodec/quant/float/mx.hpp>
#include <qcodec/quant/float/nvfp4.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

using namespace qcodec;

template <class T>
struct scaled_fp8 {
  static double bits_per_value(std::size_t n) { return 8.0 + 32.0 / static_cast<double>(n); }
  static std::size_t bytes(std::size_t n) { return n + sizeof(float); }
  static void quantize(const float* x, std::size_t n, std::uint8_t* out) {
    const float_quantizer<T> q;
    const std::span<const float> xs(x, n);
    const auto p = q.fit(xs);
    std::memcpy(out, &p.scale, sizeof(float));
    q.encode(xs, p, std::span<std::uint8_t>(out + 4, n));
  }
  static void dequantize(const std::uint8_t* in, std::size_t n, float* y) {
    float s;
    std::memcpy(&s, in, sizeof(float));
    fp8_to_float<T>(in + 4, n, y);
    for (std::size_t i = 0; i < n; ++i) y[i] *= s;
  }
};

template <class Elem, mx_scale_rule Rule>
struct mx_format {
  static double bits_per_value(std::size_t) { return 8.0 * sizeof(mx_block<Elem>) / 32.0; }
  static std::size_t bytes(std::size_t n) { return n / 32 * sizeof(mx_block<Elem>); }
  static void quantize(const float* x, std::size_t n, std::uint8_t* out) {
    quantize_row_mx<Elem>(x, reinterpret_cast<mx_block<Elem>*>(out), n, Rule);
  }
  static void dequantize(const std::uint8_t* in, std::size_t n, float* y) {
    dequantize_row_mx<Elem>(reinterpret_cast<const mx_block<Elem>*>(in), y, n);
  }
};

template <nvfp4_scale_rule Rule>
struct nvfp4_format {
  static double bits_per_value(std::size_t n) { return 4.5 + 32.0 / static_cast<double>(n); }
  static std::size_t bytes(std::size_t n) { return sizeof(float) + n / 16 * sizeof(nvfp4_block); }
  static void quantize(const float* x, std::size_t n, std::uint8_t* out) {
    const float g = nvfp4_global_scale(x, n);
    std::memcpy(out, &g, sizeof(float));
    quantize_row_nvfp4(x, reinterpret_cast<nvfp4_block*>(out + 4), n, g, Rule);
  }
  static void dequantize(const std::uint8_t* in, std::size_t n, float* y) {
    float g;
    std::memcpy(&g, in, sizeof(float));
    dequantize_row_nvfp4(reinterpret_cast<const nvfp4_block*>(in + 4), y, n, g);
  }
};

template <class F>
double rel_mse(const std::vector<float>& x, const std::vector<std::uint8_t>& b) {
  std::vector<float> y(x.size());
  F::dequantize(b.data(), x.size(), y.data());
  double err = 0.0, sig = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    err += (double{y[i]} - x[i]) * (double{y[i]} - x[i]);
    sig += double{x[i]} * x[i];
  }
  return err / sig;
}

template <class F>
void bm_quantize(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = qcodec_bench::normal_floats(n);
  std::vector<std::uint8_t> b(F::bytes(n));
  for (auto _ : state) {
    F::quantize(x.data(), n, b.data());
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 4);
  state.counters["bits_per_value"] = F::bits_per_value(n);
  state.counters["rel_mse"] = rel_mse<F>(x, b);
  state.SetLabel(simd::kernels().arch);
}

template <class F>
void bm_dequantize(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = qcodec_bench::normal_floats(n);
  std::vector<std::uint8_t> b(F::bytes(n));
  F::quantize(x.data(), n, b.data());
  std::vector<float> y(n);
  for (auto _ : state) {
    F::dequantize(b.data(), n, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 4);
  state.counters["bits_per_value"] = F::bits_per_value(n);
  state.counters["rel_mse"] = rel_mse<F>(x, b);
  state.SetLabel(simd::kernels().arch);
}

template <class F>
void register_format(const std::string& name) {
  benchmark::RegisterBenchmark(("BM_quantize_row/" + name).c_str(), bm_quantize<F>)->Arg(4096)->Arg(65536);
  benchmark::RegisterBenchmark(("BM_dequantize_row/" + name).c_str(), bm_dequantize<F>)->Arg(4096)->Arg(65536);
}

[[maybe_unused]] const int registered = [] {
  register_format<scaled_fp8<fp8_e4m3>>("fp8_e4m3");
  register_format<scaled_fp8<fp8_e5m2>>("fp8_e5m2");
  register_format<mx_format<fp4_e2m1, mx_scale_rule::best_of_two>>("mxfp4");
  register_format<mx_format<fp4_e2m1, mx_scale_rule::spec>>("mxfp4_spec");
  register_format<mx_format<fp8_e4m3, mx_scale_rule::best_of_two>>("mxfp8_e4m3");
  register_format<nvfp4_format<nvfp4_scale_rule::search>>("nvfp4");
  register_format<nvfp4_format<nvfp4_scale_rule::nvidia>>("nvfp4_nvidia");
  return 0;
}();

}  // namespace
