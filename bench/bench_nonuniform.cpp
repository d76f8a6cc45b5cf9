// Non-uniform code tables (quant/nonuniform): BM_quantize_row/<format>/<n> and
// BM_dequantize_row/<format>/<n> over n floats of N(0, 1) data (n = 4096, 65536 values; the
// argument is the value count, SetBytesProcessed counts the 4n float bytes). Formats:
//   nf4       code_table<4>(nf4_table), absmax per group of 64 (QLoRA's block size), stored as
//             packed nibbles (simd/lut.hpp layout) + one float scale per group: 4.5 bits/value;
//             decode = decode_packed (the LUT kernel) per group
//   dynamic8  code_table<8>(dynamic_map_8bit()), absmax per group of 256 (bitsandbytes' 8-bit
//             blockwise default): 8.125 bits/value; scalar table decode
// Counters: bits_per_value (scales included) and rel_mse = sum (y - x)^2 / sum x^2.
#include <qcodec/quant/nonuniform/code_table.hpp>
#include <qcodec/quant/nonuniform/tables.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

using namespace qcodec;

template <unsigned Bits, std::size_t Group>
struct table_format {
  code_table<Bits> q;
  static constexpr std::size_t group_bytes = Group * Bits / 8 + sizeof(float);
  static constexpr double bits_per_value = Bits + 32.0 / Group;
  static std::size_t bytes(std::size_t n) { return n / Group * group_bytes; }

  void quantize(const float* x, std::size_t n, std::uint8_t* out) const {
    std::uint8_t sym[Group];
    for (std::size_t g = 0; g < n / Group; ++g, x += Group, out += group_bytes) {
      const std::span<const float> xs(x, Group);
      const auto p = q.fit(xs);
      q.encode(xs, p, sym);
      std::memcpy(out, &p.scale, sizeof(float));
      if constexpr (Bits == 4) {
        for (std::size_t j = 0; j < Group / 2; ++j)
          out[4 + j] = static_cast<std::uint8_t>(sym[2 * j] | sym[2 * j + 1] << 4);
      } else {
        std::memcpy(out + 4, sym, Group);
      }
    }
  }
  void dequantize(const std::uint8_t* in, std::size_t n, float* y) const {
    for (std::size_t g = 0; g < n / Group; ++g, y += Group, in += group_bytes) {
      typename code_table<Bits>::params_type p;
      std::memcpy(&p.scale, in, sizeof(float));
      if constexpr (Bits == 4) {
        q.decode_packed(in + 4, Group, p, y);
      } else {
        q.decode(std::span<const std::uint8_t>(in + 4, Group), p, std::span<float>(y, Group));
      }
    }
  }
};

template <class F>
double rel_mse(const F& f, const std::vector<float>& x, const std::vector<std::uint8_t>& b) {
  std::vector<float> y(x.size());
  f.dequantize(b.data(), x.size(), y.data());
  double err = 0.0, sig = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    err += (double{y[i]} - x[i]) * (double{y[i]} - x[i]);
    sig += double{x[i]} * x[i];
  }
  return err / sig;
}

template <class F>
void bm_quantize(benchmark::State& state, F f) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = qcodec_bench::normal_floats(n);
  std::vector<std::uint8_t> b(F::bytes(n));
  for (auto _ : state) {
    f.quantize(x.data(), n, b.data());
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 4);
  state.counters["bits_per_value"] = F::bits_per_value;
  state.counters["rel_mse"] = rel_mse(f, x, b);
  state.SetLabel(simd::kernels().arch);
}

template <class F>
void bm_dequantize(benchmark::State& state, F f) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = qcodec_bench::normal_floats(n);
  std::vector<std::uint8_t> b(F::bytes(n));
  f.quantize(x.data(), n, b.data());
  std::vector<float> y(n);
  for (auto _ : state) {
    f.dequantize(b.data(), n, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 4);
  state.counters["bits_per_value"] = F::bits_per_value;
  state.counters["rel_mse"] = rel_mse(f, x, b);
  state.SetLabel(simd::kernels().arch);
}

template <class F>
void register_format(const std::string& name, F f) {
  benchmark::RegisterBenchmark(("BM_quantize_row/" + name).c_str(), bm_quantize<F>, f)
      ->Arg(4096)
      ->Arg(65536);
  benchmark::RegisterBenchmark(("BM_dequantize_row/" + name).c_str(), bm_dequantize<F>, f)
      ->Arg(4096)
      ->Arg(65536);
}

[[maybe_unused]] const int registered = [] {
  register_format("nf4", table_format<4, 64>{code_table<4>(nf4_table)});
  register_format("dynamic8", table_format<8, 256>{code_table<8>(dynamic_map_8bit())});
  return 0;
}();

}  // namespace
