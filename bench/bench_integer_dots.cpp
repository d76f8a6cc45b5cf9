// BM_integer_dots/<kind>/<bits>/<rows per call>/<head_dim>: one 256-token page of <bits>-bit key
// codes scored against 4 query heads (the query heads of one KV head at GQA 4), in calls of
// <rows per call> rows, laid out as the cache lays them out:
//   i8   code_row_dots_i8 (per-token keys: kv::per_token's scores; rows 4 bytes apart for the
//        token's fp16 scale and offset),
//   i16  code_row_dots_i16 with per-channel scales (KIVI keys: kv::per_channel's scores, one
//        call per unit of 32 tokens; rows back to back).
// Each call makes the queries' integer form and layout once, so 32 rows per call against 256
// shows that per-call cost. The page is 17 KB at most: L1-resident, as in attention, where the
// page is prefetched a block ahead. (On CPUs with AVX-512 VNNI, 4-bit i16 rows take dots4_vnni.)
#include <qcodec/simd/dispatch.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "bench_util.hpp"

namespace {

constexpr std::size_t page_rows = 256, heads = 4;

void bm_integer_dots(benchmark::State& state, bool i16) {
  const auto bits = static_cast<unsigned>(state.range(0));
  const auto per_call = static_cast<std::size_t>(state.range(1));
  const auto d = static_cast<std::size_t>(state.range(2));
  const std::size_t row_bytes = d * bits / 8, stride = i16 ? row_bytes : row_bytes + 4;
  const std::vector<std::uint8_t> codes = qcodec_bench::random_bytes(page_rows * stride);
  const std::vector<float> q = qcodec_bench::normal_floats(heads * d);
  std::vector<float> scales = qcodec_bench::normal_floats(d, 3);
  for (float& s : scales) s = 0.05f + 0.01f * s * s;  // positive
  std::vector<float> out(heads * page_rows);
  const qcodec::simd::kernel_table& k = qcodec::simd::kernels();
  for (auto _ : state) {
    for (std::size_t r = 0; r < page_rows; r += per_call) {
      const std::uint8_t* in = codes.data() + r * stride;
      const std::size_t rows = std::min(per_call, page_rows - r);
      if (i16) {
        k.int16_dots.code_row_dots_i16(in, stride, rows, d, bits, q.data(), scales.data(), heads,
                                       out.data() + r, page_rows);
      } else {
        k.int8_dots.code_row_dots_i8(in, stride, rows, d, bits, q.data(), heads, out.data() + r,
                                     page_rows);
      }
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["rows_per_second"] = benchmark::Counter(
      static_cast<double>(page_rows), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(k.arch);
}

[[maybe_unused]] const int registered = [] {
  auto* i8 = benchmark::RegisterBenchmark("BM_integer_dots/i8", bm_integer_dots, false);
  auto* i16 = benchmark::RegisterBenchmark("BM_integer_dots/i16", bm_integer_dots, true);
  for (const std::int64_t per_call : {32, 256})
    for (const std::int64_t d : {64, 128}) {
      i8->Args({4, per_call, d});  // the int8 form is for 4-bit keys (kv::default_query_format)
      for (const std::int64_t bits : {2, 4}) i16->Args({bits, per_call, d});
    }
  return 0;
}();

}  // namespace
