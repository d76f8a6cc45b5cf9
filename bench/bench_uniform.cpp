// Uniform scalar quantization (quant/uniform/uniform.hpp) of one row with per_group<128>
// parameters (asymmetric: fp32 scale + offset per group, the KIVI / Q4_1 layout), codes one byte
// each. BM_quantize_row/uniform<b>/<n> fits (min/max) and encodes n floats; BM_dequantize_row
// decodes them. SetBytesProcessed counts the float bytes (n * 4). Counters: bits_per_value
// (b + 64 / 128 for the parameters; the unpacked code bytes would pack to b bits with
// simd/bit_packing.hpp) and rel_mse = sum (decoded - x)^2 / sum x^2 on N(0, 1) data.
// BM_quantize_row_mse/uniform<b>/<n> fits with search_scale instead (clipping + refinement).
#include <qcodec/quant/uniform/scale_search.hpp>
#include <qcodec/quant/uniform/uniform.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

constexpr std::size_t group = 128;

template <class Q, class Fit>
void quantize_row(const Q& q, Fit&& fit, std::span<const float> x,
                  std::vector<typename Q::params_type>& params, std::span<std::uint8_t> sym) {
  for (std::size_t g = 0, i = 0; i < x.size(); ++g, i += group) {
    const std::size_t k = x.size() - i < group ? x.size() - i : group;
    params[g] = fit(x.subspan(i, k));
    q.encode(x.subspan(i, k), params[g], sym.subspan(i, k));
  }
}

template <class Q>
void dequantize_row(const Q& q, std::span<const std::uint8_t> sym,
                    const std::vector<typename Q::params_type>& params, std::span<float> y) {
  for (std::size_t g = 0, i = 0; i < y.size(); ++g, i += group) {
    const std::size_t k = y.size() - i < group ? y.size() - i : group;
    q.decode(sym.subspan(i, k), params[g], y.subspan(i, k));
  }
}

template <class Q>
void set_counters(benchmark::State& state, const std::vector<float>& x,
                  const std::vector<float>& y) {
  double err = 0.0, sig = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = double{y[i]} - x[i];
    err += d * d;
    sig += double{x[i]} * x[i];
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(x.size() * sizeof(float)));
  state.counters["bits_per_value"] = Q::bits + double{Q::metadata_bits} / group;
  state.counters["rel_mse"] = err / sig;
  state.SetLabel(qcodec::simd::kernels().arch);
}

template <unsigned B, bool Search>
void bm_quantize(benchmark::State& state) {
  using Q = qcodec::uniform<B, qcodec::asymmetric>;
  const Q q;
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = qcodec_bench::normal_floats(n);
  std::vector<typename Q::params_type> params((n + group - 1) / group);
  std::vector<std::uint8_t> sym(n);
  const auto fit = [&](std::span<const float> g) {
    if constexpr (Search) {
      return qcodec::search_scale(q, g).params;
    } else {
      return q.fit(g);
    }
  };
  for (auto _ : state) {
    quantize_row(q, fit, x, params, sym);
    benchmark::DoNotOptimize(sym.data());
    benchmark::ClobberMemory();
  }
  std::vector<float> y(n);
  dequantize_row(q, sym, params, y);
  set_counters<Q>(state, x, y);
}

template <unsigned B>
void bm_dequantize(benchmark::State& state) {
  using Q = qcodec::uniform<B, qcodec::asymmetric>;
  const Q q;
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = qcodec_bench::normal_floats(n);
  std::vector<typename Q::params_type> params((n + group - 1) / group);
  std::vector<std::uint8_t> sym(n);
  quantize_row(
      q, [&](std::span<const float> g) { return q.fit(g); }, x, params, sym);
  std::vector<float> y(n);
  for (auto _ : state) {
    dequantize_row(q, sym, params, y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_counters<Q>(state, x, y);
}

template <unsigned B>
void register_width() {
  const std::string name = "uniform<" + std::to_string(B) + ">";
  for (const std::int64_t n : {4096, 65536}) {
    benchmark::RegisterBenchmark(("BM_quantize_row/" + name).c_str(), bm_quantize<B, false>)
        ->Arg(n);
    benchmark::RegisterBenchmark(("BM_dequantize_row/" + name).c_str(), bm_dequantize<B>)->Arg(n);
  }
  benchmark::RegisterBenchmark(("BM_quantize_row_mse/" + name).c_str(), bm_quantize<B, true>)
      ->Arg(4096);
}

const bool registered = [] {
  register_width<2>();
  register_width<4>();
  register_width<8>();
  return true;
}();

}  // namespace
