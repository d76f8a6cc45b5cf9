// ggml-compatible block formats (quant/block/ggml), named as in the codec registry:
//   BM_quantize_row/<fmt>/<n>      qcodec's encoder (the default of every format)
//   BM_quantize_row_ref/<fmt>/<n>  ggml's reference encoder, for comparison
//   BM_dequantize_row/<fmt>/<n>
//   BM_vec_dot/<fmt>/<n>           the format against its Q8 activation blocks (Q8_0 / Q8_1 /
//                                  Q8_K), both quantized outside the loop
// n is the number of values (4096, 65536: 16 KiB and 256 KiB of floats) and SetBytesProcessed
// counts the 4n float bytes, so figures compare directly with BM_memcpy/16384 and
// BM_memcpy/262144. Counters: bits_per_value (storage, scales included) and rel_mse, the
// relative squared error sum (decoded - x)^2 / sum x^2 on the N(0, 1) row (for
// BM_quantize_row_ref: of ggml's encoder). "mxfp4" is ggml's MXFP4 layout; the OCP layout is
// "mx_fp4" (bench_formats.cpp).
#include <qcodec/quant/block/ggml.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

namespace g = qcodec::ggml;
using qcodec_bench::block_rows;

// ggml's reference encoder, same decoder.
template <class F>
struct block_ref_rows : block_rows<F> {
  void quantize(const float* x, std::size_t n, typename F::block* out) const {
    F::quantize_row_ref(x, out, static_cast<std::int64_t>(n));
  }
};

template <class F>
void bm_vec_dot(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = qcodec_bench::normal_floats(n, 1);
  const std::vector<float> a = qcodec_bench::normal_floats(n, 2);
  std::vector<typename F::block> b(n / F::block_values);
  std::vector<typename F::dot_block> q(n / F::block_values);
  const auto k = static_cast<std::int64_t>(n);
  F::quantize_row(x.data(), b.data(), k);
  F::quantize_dot_row(a.data(), q.data(), k);
  float s = 0.0f;
  for (auto _ : state) {
    F::vec_dot(k, &s, b.data(), q.data());
    benchmark::DoNotOptimize(s);
  }
  qcodec_bench::set_format_counters(state, block_rows<F>{}, x, b);
}

template <class F>
void register_format() {
  const std::string fmt = F::name;
  qcodec_bench::register_row_format(fmt, block_rows<F>{});
  auto* ref = benchmark::RegisterBenchmark(("BM_quantize_row_ref/" + fmt).c_str(),
                                           qcodec_bench::bm_quantize_row<block_ref_rows<F>>,
                                           block_ref_rows<F>{});
  auto* dot = benchmark::RegisterBenchmark(("BM_vec_dot/" + fmt).c_str(), bm_vec_dot<F>);
  for (const std::int64_t n : qcodec_bench::row_values) {
    ref->Arg(n);
    dot->Arg(n);
  }
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
