// qcodec_bench_ggml_peer: ggml's own kernels (from the prebuilt CPU libraries of the npm package
// @node-llama-cpp/linux-x64, see ggml_api.hpp) against qcodec's equivalents, on the same data,
// in the same run, then a table of the speed ratios.
//
//   BM_ggml_peer/<op>/<format>/<impl>/<n>     impl: ggml | qcodec; n values (4096, 65536)
//
// ops (every one whose ggml symbol is exported and that qcodec has an equivalent of):
//   quantize_ref  ggml's encoder without importance matrix, as ggml_quantize_chunk runs it
//                 (libggml-base: quantize_row_<f>_ref; for IQ4_NL quantize_iq4_nl, whose scale
//                 search quantize_row_iq4_nl_ref skips), and qcodec's copy of it
//                 (<f>::quantize_row_ref); outputs must be byte-identical
//   quantize      the activation encoders ggml's CPU backend runs before each vec_dot
//                 (libggml-cpu quantize_row_q8_0 / q8_1 / q8_K, SIMD) and qcodec's byte-identical
//                 ones: quantize_row_q8_0_ref / q8_1_ref (scalar; qcodec's SIMD quantize_row_q8_0
//                 rounds against the decoded scale, so its bytes differ) and quantize_row_q8_K
//   dequantize    dequantize_row_<f> (libggml-base; ggml's CPU backend uses these) and qcodec's;
//                 same blocks in, bit-identical floats out
//   vec_dot       ggml_vec_dot_<f>_<q8> (libggml-cpu, SIMD) and qcodec's vec_dot on the same
//                 blocks and activation blocks; results within (blocks + 4) * FLT_EPSILON *
//                 sum |x_i a_i| of each other. Counter ggml_generic_bitexact: 1 when qcodec's
//                 result equals ggml's portable ggml_vec_dot_<f>_<q8>_generic bit for bit.
//   f32_to_f16, f16_to_f32, f32_to_bf16, bf16_to_f32
//                 ggml_cpu_fp32_to_fp16 ... (libggml-cpu, SIMD) and qcodec's convert kernels;
//                 bit-identical outputs
// Each benchmark compares both outputs before timing and fails (SkipWithError) when they differ:
// a speed ratio between different results would mean nothing; the program then exits with 1.
// ggml_generic_bitexact depends on the variant: the compiler contracts ggml's C code into FMAs
// in the variants built with FMA, so it is 1 for every format only with QCODEC_GGML_CPU=x64.
//
// SetBytesProcessed counts the 4 n float bytes (as bench_ggml.cpp), so GB/s compare across ops.
// After the run, the table lists, per op / format / n, both speeds (CPU time, median over
// --benchmark_repetitions) and qcodec / ggml (> 1: qcodec is faster).
#include <qcodec/quant/block/ggml.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "../bench_util.hpp"
#include "ggml_api.hpp"

#ifndef QCODEC_GGML_LIB_DIR
#error "QCODEC_GGML_LIB_DIR (the directory of libggml-base.so) must be defined"
#endif

namespace {

namespace g = qcodec::ggml;
using ggml_peer::dequantize_fn;
using ggml_peer::narrow_fn;
using ggml_peer::quantize_fn;
using ggml_peer::vec_dot_fn;
using ggml_peer::widen_fn;

ggml_peer::cpu_backend cpu;
std::string cpu_label;                     // "libggml-cpu-zen4"
const char* const base_label = "libggml-base";

enum class impl { ggml, qcodec };

const char* qcodec_label() { return qcodec::simd::kernels().arch; }

std::int64_t as_k(std::size_t n) { return static_cast<std::int64_t>(n); }

void set_bytes(benchmark::State& state, std::size_t n) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * as_k(n * sizeof(float)));
}

// Fails the benchmark with a message naming the first difference.
void fail(benchmark::State& state, const std::string& what) { state.SkipWithError(what.c_str()); }

// Number of the `unit`-byte units in which a and b differ, and the first one.
struct diff {
  std::size_t count = 0, first = 0;
};
diff compare_units(const void* a, const void* b, std::size_t units, std::size_t unit) {
  diff d;
  const auto* pa = static_cast<const unsigned char*>(a);
  const auto* pb = static_cast<const unsigned char*>(b);
  for (std::size_t i = units; i-- > 0;)
    if (std::memcmp(pa + i * unit, pb + i * unit, unit) != 0) {
      ++d.count;
      d.first = i;
    }
  return d;
}

std::string differ_message(const diff& d, std::size_t units, const char* unit) {
  return "ggml and qcodec outputs differ in " + std::to_string(d.count) + " of " +
         std::to_string(units) + " " + unit + " (first: " + std::to_string(d.first) + ")";
}

// ---------------------------------------------------------------------------------------------
// float row -> blocks

struct quantize_case {
  quantize_fn ggml, qcodec;
  std::size_t block_values, block_bytes;
  const char* ggml_lib;
};

void bm_quantize(benchmark::State& state, quantize_case c, impl who) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = qcodec_bench::normal_floats(n);
  const std::size_t blocks = n / c.block_values;
  std::vector<unsigned char> yg(blocks * c.block_bytes), yq(yg.size());
  c.ggml(x.data(), yg.data(), as_k(n));
  c.qcodec(x.data(), yq.data(), as_k(n));
  if (const diff d = compare_units(yg.data(), yq.data(), blocks, c.block_bytes); d.count != 0)
    return fail(state, differ_message(d, blocks, "blocks"));
  const quantize_fn f = who == impl::ggml ? c.ggml : c.qcodec;
  for (auto _ : state) {
    f(x.data(), yq.data(), as_k(n));
    benchmark::DoNotOptimize(yq.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
  state.SetLabel(who == impl::ggml ? c.ggml_lib : qcodec_label());
}

// ---------------------------------------------------------------------------------------------
// blocks -> float row

struct dequantize_case {
  quantize_fn encode;  // qcodec's encoder makes the blocks both decoders read
  dequantize_fn ggml, qcodec;
  std::size_t block_values, block_bytes;
};

void bm_dequantize(benchmark::State& state, dequantize_case c, impl who) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = qcodec_bench::normal_floats(n);
  std::vector<unsigned char> q(n / c.block_values * c.block_bytes);
  c.encode(x.data(), q.data(), as_k(n));
  std::vector<float> yg(n), yq(n);
  c.ggml(q.data(), yg.data(), as_k(n));
  c.qcodec(q.data(), yq.data(), as_k(n));
  if (const diff d = compare_units(yg.data(), yq.data(), n, sizeof(float)); d.count != 0)
    return fail(state, differ_message(d, n, "values"));
  const dequantize_fn f = who == impl::ggml ? c.ggml : c.qcodec;
  for (auto _ : state) {
    f(q.data(), yq.data(), as_k(n));
    benchmark::DoNotOptimize(yq.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
  state.SetLabel(who == impl::ggml ? base_label : qcodec_label());
}

// ---------------------------------------------------------------------------------------------
// dot product of a quantized row with a quantized activation row

struct vec_dot_case {
  quantize_fn encode, encode_act;     // qcodec's encoders (any valid blocks will do)
  dequantize_fn decode, decode_act;   // for the tolerance
  vec_dot_fn ggml, ggml_generic, qcodec;
  std::size_t block_values, block_bytes, act_block_bytes;
};

void bm_vec_dot(benchmark::State& state, vec_dot_case c, impl who) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = qcodec_bench::normal_floats(n, 1);
  const std::vector<float> a = qcodec_bench::normal_floats(n, 2);
  const std::size_t blocks = n / c.block_values;
  std::vector<unsigned char> qx(blocks * c.block_bytes), qa(blocks * c.act_block_bytes);
  c.encode(x.data(), qx.data(), as_k(n));
  c.encode_act(a.data(), qa.data(), as_k(n));
  const int ni = static_cast<int>(n);

  float sg = 0.0f, sq = 0.0f, sgen = 0.0f;
  c.ggml(ni, &sg, 0, qx.data(), 0, qa.data(), 0, 1);
  c.qcodec(ni, &sq, 0, qx.data(), 0, qa.data(), 0, 1);
  std::vector<float> xd(n), ad(n);
  c.decode(qx.data(), xd.data(), as_k(n));
  c.decode_act(qa.data(), ad.data(), as_k(n));
  double mag = 0.0;
  for (std::size_t i = 0; i < n; ++i) mag += std::fabs(double{xd[i]} * ad[i]);
  const double tol = (static_cast<double>(blocks) + 4.0) * FLT_EPSILON * mag;
  const double delta = std::fabs(double{sg} - double{sq});
  if (!(delta <= tol))
    return fail(state, "vec_dot: ggml " + std::to_string(sg) + ", qcodec " + std::to_string(sq) +
                           ", difference " + std::to_string(delta) + " > tolerance " +
                           std::to_string(tol));
  if (c.ggml_generic != nullptr) c.ggml_generic(ni, &sgen, 0, qx.data(), 0, qa.data(), 0, 1);

  const vec_dot_fn f = who == impl::ggml ? c.ggml : c.qcodec;
  float s = 0.0f;
  for (auto _ : state) {
    f(ni, &s, 0, qx.data(), 0, qa.data(), 0, 1);
    benchmark::DoNotOptimize(s);
  }
  set_bytes(state, n);
  state.counters["rel_diff"] = mag > 0.0 ? delta / mag : 0.0;
  if (c.ggml_generic != nullptr)
    state.counters["ggml_generic_bitexact"] = std::memcmp(&sgen, &sq, sizeof sq) == 0 ? 1.0 : 0.0;
  state.SetLabel(who == impl::ggml ? cpu_label.c_str() : qcodec_label());
}

// ---------------------------------------------------------------------------------------------
// float <-> 16-bit float rows

struct narrow_case {
  narrow_fn ggml, qcodec;
};

void bm_narrow(benchmark::State& state, narrow_case c, impl who) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = qcodec_bench::normal_floats(n);
  std::vector<std::uint16_t> yg(n), yq(n);
  c.ggml(x.data(), yg.data(), as_k(n));
  c.qcodec(x.data(), yq.data(), as_k(n));
  if (const diff d = compare_units(yg.data(), yq.data(), n, sizeof(std::uint16_t)); d.count != 0)
    return fail(state, differ_message(d, n, "values"));
  const narrow_fn f = who == impl::ggml ? c.ggml : c.qcodec;
  for (auto _ : state) {
    f(x.data(), yq.data(), as_k(n));
    benchmark::DoNotOptimize(yq.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
  state.SetLabel(who == impl::ggml ? cpu_label.c_str() : qcodec_label());
}

struct widen_case {
  narrow_fn make;  // ggml's portable row conversion makes the input
  widen_fn ggml, qcodec;
};

void bm_widen(benchmark::State& state, widen_case c, impl who) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> src = qcodec_bench::normal_floats(n);
  std::vector<std::uint16_t> x(n);
  c.make(src.data(), x.data(), as_k(n));
  std::vector<float> yg(n), yq(n);
  c.ggml(x.data(), yg.data(), as_k(n));
  c.qcodec(x.data(), yq.data(), as_k(n));
  if (const diff d = compare_units(yg.data(), yq.data(), n, sizeof(float)); d.count != 0)
    return fail(state, differ_message(d, n, "values"));
  const widen_fn f = who == impl::ggml ? c.ggml : c.qcodec;
  for (auto _ : state) {
    f(x.data(), yq.data(), as_k(n));
    benchmark::DoNotOptimize(yq.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
  state.SetLabel(who == impl::ggml ? cpu_label.c_str() : qcodec_label());
}

// ---------------------------------------------------------------------------------------------
// qcodec's functions with ggml's signatures (captureless lambdas: a plain indirect call on both
// sides)

template <class F>
quantize_fn qcodec_quantize_ref() {
  return [](const float* x, void* y, std::int64_t k) {
    F::quantize_row_ref(x, static_cast<typename F::block*>(y), k);
  };
}
template <class F>
quantize_fn qcodec_quantize() {
  return [](const float* x, void* y, std::int64_t k) {
    F::quantize_row(x, static_cast<typename F::block*>(y), k);
  };
}
template <class F>
quantize_fn qcodec_quantize_act() {
  return [](const float* x, void* y, std::int64_t k) {
    F::quantize_dot_row(x, static_cast<typename F::dot_block*>(y), k);
  };
}
template <class F>
dequantize_fn qcodec_dequantize() {
  return [](const void* x, float* y, std::int64_t k) {
    F::dequantize_row(static_cast<const typename F::block*>(x), y, k);
  };
}
template <class F>
vec_dot_fn qcodec_vec_dot() {
  return [](int n, float* s, std::size_t, const void* x, std::size_t, const void* y, std::size_t,
            int) {
    F::vec_dot(n, s, static_cast<const typename F::block*>(x),
               static_cast<const typename F::dot_block*>(y));
  };
}

// The Q8 activation format of F (Q8_0, Q8_1 or Q8_K).
template <class F>
using act_format = std::conditional_t<
    std::is_same_v<typename F::dot_block, g::block_q8_0>, g::q8_0,
    std::conditional_t<std::is_same_v<typename F::dot_block, g::block_q8_1>, g::q8_1, g::q8_K>>;

// ---------------------------------------------------------------------------------------------
// registration

std::vector<std::string> skipped;  // ggml symbols this package does not export

template <class Fn>
Fn cpu_symbol(const std::string& name) {
  void* p = cpu.symbol(name.c_str());
  if (p == nullptr) skipped.push_back(name);
  return reinterpret_cast<Fn>(p);
}

template <class Case>
void register_pair(const std::string& op, const std::string& format,
                   void (*bm)(benchmark::State&, Case, impl), const Case& c) {
  for (const impl who : {impl::ggml, impl::qcodec}) {
    const std::string name = "BM_ggml_peer/" + op + "/" + format + "/" +
                             (who == impl::ggml ? "ggml" : "qcodec");
    auto* b = benchmark::RegisterBenchmark(name.c_str(), bm, c, who);
    for (const std::int64_t n : qcodec_bench::row_values) b->Arg(n);
  }
}

template <class F>
void add_quantize_ref(quantize_fn ggml) {
  register_pair("quantize_ref", F::name, bm_quantize,
                quantize_case{ggml, qcodec_quantize_ref<F>(), F::block_values, F::block_bytes,
                              base_label});
}

// ggml's CPU-backend activation encoder against qcodec's encoder `qcodec` of the same format.
template <class F>
void add_quantize_act(quantize_fn qcodec) {
  const auto ggml = cpu_symbol<quantize_fn>(std::string("quantize_row_") + F::name);
  if (ggml == nullptr) return;
  register_pair("quantize", F::name, bm_quantize,
                quantize_case{ggml, qcodec, F::block_values, F::block_bytes, cpu_label.c_str()});
}

template <class F>
void add_dequantize(dequantize_fn ggml) {
  register_pair("dequantize", F::name, bm_dequantize,
                dequantize_case{qcodec_quantize<F>(), ggml, qcodec_dequantize<F>(),
                                F::block_values, F::block_bytes});
}

template <class F>
void add_vec_dot() {
  using A = act_format<F>;
  const std::string sym = std::string("ggml_vec_dot_") + F::name + "_" + A::name;
  const auto ggml = cpu_symbol<vec_dot_fn>(sym);
  if (ggml == nullptr) return;
  const auto generic = cpu_symbol<vec_dot_fn>(sym + "_generic");
  register_pair("vec_dot", F::name, bm_vec_dot,
                vec_dot_case{qcodec_quantize<F>(), qcodec_quantize_act<F>(),
                             qcodec_dequantize<F>(), qcodec_dequantize<A>(), ggml, generic,
                             qcodec_vec_dot<F>(), F::block_values, F::block_bytes,
                             A::block_bytes * F::block_values / A::block_values});
}

template <class F>
void add_format(quantize_fn ggml_ref, dequantize_fn ggml_dequantize) {
  add_quantize_ref<F>(ggml_ref);
  add_dequantize<F>(ggml_dequantize);
  add_vec_dot<F>();
}

const qcodec::simd::convert_kernels& convert() { return qcodec::simd::kernels().convert; }

void register_all() {
  add_format<g::q4_0>(quantize_row_q4_0_ref, dequantize_row_q4_0);
  add_format<g::q4_1>(quantize_row_q4_1_ref, dequantize_row_q4_1);
  add_format<g::q5_0>(quantize_row_q5_0_ref, dequantize_row_q5_0);
  add_format<g::q5_1>(quantize_row_q5_1_ref, dequantize_row_q5_1);
  add_format<g::q8_0>(quantize_row_q8_0_ref, dequantize_row_q8_0);
  add_format<g::iq4_nl>(
      [](const float* x, void* y, std::int64_t k) { quantize_iq4_nl(x, y, 1, k, nullptr); },
      dequantize_row_iq4_nl);
  add_format<g::mxfp4>(quantize_row_mxfp4_ref, dequantize_row_mxfp4);
  add_format<g::q2_K>(quantize_row_q2_K_ref, dequantize_row_q2_K);
  add_format<g::q3_K>(quantize_row_q3_K_ref, dequantize_row_q3_K);
  add_format<g::q4_K>(quantize_row_q4_K_ref, dequantize_row_q4_K);
  add_format<g::q5_K>(quantize_row_q5_K_ref, dequantize_row_q5_K);
  add_format<g::q6_K>(quantize_row_q6_K_ref, dequantize_row_q6_K);
  add_format<g::iq4_xs>(quantize_row_iq4_xs_ref, dequantize_row_iq4_xs);

  // Activation formats: the reference encoders, ggml's CPU encoders, Q8_K's decoder.
  add_quantize_ref<g::q8_1>(quantize_row_q8_1_ref);
  add_quantize_ref<g::q8_K>(quantize_row_q8_K_ref);
  add_quantize_act<g::q8_0>(qcodec_quantize_ref<g::q8_0>());
  add_quantize_act<g::q8_1>(qcodec_quantize_ref<g::q8_1>());
  add_quantize_act<g::q8_K>(qcodec_quantize<g::q8_K>());
  add_dequantize<g::q8_K>(dequantize_row_q8_K);

  // 16-bit floats: ggml's CPU backend converts with these.
  if (const auto f = cpu_symbol<narrow_fn>("ggml_cpu_fp32_to_fp16"))
    register_pair("f32_to_f16", "f16", bm_narrow,
                  narrow_case{f, [](const float* x, std::uint16_t* y, std::int64_t n) {
                                convert().f32_to_f16(x, static_cast<std::size_t>(n), y);
                              }});
  if (const auto f = cpu_symbol<widen_fn>("ggml_cpu_fp16_to_fp32"))
    register_pair("f16_to_f32", "f16", bm_widen,
                  widen_case{ggml_fp32_to_fp16_row, f,
                             [](const std::uint16_t* x, float* y, std::int64_t n) {
                               convert().f16_to_f32(x, static_cast<std::size_t>(n), y);
                             }});
  if (const auto f = cpu_symbol<narrow_fn>("ggml_cpu_fp32_to_bf16"))
    register_pair("f32_to_bf16", "bf16", bm_narrow,
                  narrow_case{f, [](const float* x, std::uint16_t* y, std::int64_t n) {
                                convert().f32_to_bf16(x, static_cast<std::size_t>(n), y);
                              }});
  if (const auto f = cpu_symbol<widen_fn>("ggml_cpu_bf16_to_fp32"))
    register_pair("bf16_to_f32", "bf16", bm_widen,
                  widen_case{ggml_fp32_to_bf16_row, f,
                             [](const std::uint16_t* x, float* y, std::int64_t n) {
                               convert().bf16_to_f32(x, static_cast<std::size_t>(n), y);
                             }});
}

// ---------------------------------------------------------------------------------------------
// the ratio table

// The console output, plus every run's speed kept for the table.
class ratio_reporter : public benchmark::ConsoleReporter {
 public:
  using benchmark::ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      // Iteration runs, or only the aggregates with --benchmark_display_aggregates_only.
      const bool median_aggregate = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
      if (r.run_type != Run::RT_Iteration && !median_aggregate) continue;
      // function_name: BM_ggml_peer/<op>/<format>/<impl>; args: n
      const std::string& f = r.run_name.function_name;
      const std::size_t cut = f.rfind('/');
      const std::string prefix = "BM_ggml_peer/";
      if (cut == std::string::npos || f.compare(0, prefix.size(), prefix) != 0) continue;
      row& w = rows_[{f.substr(prefix.size(), cut - prefix.size()), std::stoll(r.run_name.args)}];
      side& s = f.substr(cut + 1) == "ggml" ? w.ggml : w.qcodec;
      if (r.error_occurred) {
        s.error = r.error_message;
      } else if (const auto it = r.counters.find("bytes_per_second"); it != r.counters.end()) {
        (median_aggregate ? s.median_aggregate : s.bytes_per_second).push_back(it->second.value);
      }
    }
    benchmark::ConsoleReporter::ReportRuns(runs);
  }

  /// Prints the table; returns the number of rows that failed.
  int print_ratios(std::FILE* out) const {
    std::fprintf(out,
                 "\nggml peer comparison: ggml = %s + libggml-base.so (%s), qcodec = %s kernels\n"
                 "GB/s of float data (4 bytes per value) per CPU second, median over "
                 "repetitions; ratio = qcodec / ggml speed (> 1: qcodec faster)\n\n",
                 cpu_label.c_str(), QCODEC_GGML_LIB_DIR, qcodec_label());
    std::fprintf(out, "%-13s %-7s %6s %10s %10s %8s\n", "op", "format", "n", "ggml", "qcodec",
                 "ratio");
    int failed = 0;
    for (const auto& [key, w] : rows_) {
      const std::size_t slash = key.first.find('/');
      const std::string op = key.first.substr(0, slash), format = key.first.substr(slash + 1);
      std::fprintf(out, "%-13s %-7s %6lld ", op.c_str(), format.c_str(),
                   static_cast<long long>(key.second));
      if (!w.ggml.error.empty() || !w.qcodec.error.empty()) {
        ++failed;
        std::fprintf(out, "FAILED: %s\n",
                     (w.ggml.error.empty() ? w.qcodec.error : w.ggml.error).c_str());
      } else if (w.ggml.empty() || w.qcodec.empty()) {
        std::fprintf(out, "(one side filtered out)\n");
      } else {
        const double gs = w.ggml.speed(), qs = w.qcodec.speed();
        std::fprintf(out, "%10.2f %10.2f %7.2fx\n", gs * 1e-9, qs * 1e-9, qs / gs);
      }
    }
    return failed;
  }

 private:
  struct side {
    std::vector<double> bytes_per_second, median_aggregate;
    std::string error;
    bool empty() const { return bytes_per_second.empty() && median_aggregate.empty(); }
    double speed() const {
      return bytes_per_second.empty() ? median_aggregate.back() : median(bytes_per_second);
    }
  };
  struct row {
    side ggml, qcodec;
  };
  static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
  }
  std::map<std::pair<std::string, long long>, row> rows_;  // (op/format, n)
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  std::string error;
  cpu = ggml_peer::load_cpu_backend(QCODEC_GGML_LIB_DIR, error);
  if (cpu.handle == nullptr) {
    std::fprintf(stderr, "qcodec_bench_ggml_peer: %s\n", error.c_str());
    return 1;
  }
  cpu_label = "libggml-cpu-" + cpu.variant;
  std::printf("ggml CPU backend: %s (ggml_backend_score %d; QCODEC_GGML_CPU overrides)\n",
              cpu.path.c_str(), cpu.score);
  register_all();
  for (const std::string& s : skipped)
    std::printf("not exported by this ggml, not compared: %s\n", s.c_str());
  std::fflush(stdout);

  ratio_reporter reporter(isatty(STDOUT_FILENO) != 0 ? benchmark::ConsoleReporter::OO_Color
                                                     : benchmark::ConsoleReporter::OO_None);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const int failed = reporter.print_ratios(stdout);
  benchmark::Shutdown();
  std::fflush(stdout);
  if (failed != 0) {
    std::fprintf(stderr, "qcodec_bench_ggml_peer: %d comparisons failed (outputs differ)\n",
                 failed);
    return 1;
  }
  return 0;
}
