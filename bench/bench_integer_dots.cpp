// BM_integer_dots/<kind>/<bits>/<rows per call>/<head_dim>: one 256-token page of <bits>-bit key
// codes scored against 4 query heads (the query heads of one KV head at GQA 4), in calls of
// <rows per call> rows, laid out as the cache lays them out:
//   i8   code_row_dots_i8 (per-token keys: kv::per_token's scores; rows 4 bytes apart for the
//        token's fp16 scale and offset),
//   i16  code_row_dots_i16 with per-channel scales (KIVI keys: kv::per_channel's scores until
//        channel_unit_dots_i16, one call per unit of 32 tokens; rows back to back),
//   units  channel_unit_dots_i16 (kv::per_channel's scores: the page's 32-token units, each its
//        fp16 (scale, offset) pairs and then its rows, in one call; constant terms included),
//   units8  the same with int8 scaled queries: channel_unit_dots_i8 (per_channel<..., i8>).
// Each call makes the queries' integer form and layout once, so 32 rows per call against 256
// shows that per-call cost. The page is 17 KB at most: L1-resident, as in attention, where the
// kernels prefetch the units ahead (simd/prefetch.hpp). (On CPUs with AVX-512 VNNI, 4-bit i16 rows
// take dots4_vnni.)
#include <qcodec/simd/convert.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "bench_util.hpp"

namespace {

constexpr std::size_t page_rows = 256, heads = 4;

enum class kind { i8, i16, units, units8 };

void bm_integer_dots(benchmark::State& state, kind form) {
  const bool i16 = form != kind::i8;
  const auto bits = static_cast<unsigned>(state.range(0));
  const auto per_call = static_cast<std::size_t>(state.range(1));
  const auto d = static_cast<std::size_t>(state.range(2));
  const std::size_t row_bytes = d * bits / 8, stride = i16 ? row_bytes : row_bytes + 4;
  const std::vector<std::uint8_t> codes = qcodec_bench::random_bytes(page_rows * stride);
  const std::vector<float> q = qcodec_bench::normal_floats(heads * d);
  std::vector<float> scales = qcodec_bench::normal_floats(d, 3);
  for (float& s : scales) s = 0.05f + 0.01f * s * s;  // positive
  // units: per_call-token units, each the pairs (the scales, offsets -s) and then its rows.
  const std::size_t unit_bytes = 4 * d + per_call * row_bytes, units = page_rows / per_call;
  const bool unit_form = form == kind::units || form == kind::units8;
  std::vector<std::uint8_t> page(unit_form ? units * unit_bytes : 0);
  for (std::size_t u = 0; u < page.size() / unit_bytes; ++u) {
    std::uint8_t* unit = page.data() + u * unit_bytes;
    for (std::size_t c = 0; c < d; ++c) {
      const float pair[2] = {scales[c], -scales[c]};
      std::uint16_t h[2];
      qcodec::ref::f32_to_f16(pair, 2, h);
      std::memcpy(unit + 4 * c, h, 4);
    }
    std::memcpy(unit + 4 * d, codes.data() + u * per_call * row_bytes, per_call * row_bytes);
  }
  std::vector<float> out(heads * page_rows);
  const qcodec::simd::kernel_table& k = qcodec::simd::kernels();
  // As kv::per_channel stores them (random codes either way).
  const bool blocked =
      k.int16_dots.blocks_rows &&
      qcodec::simd::detail::int16_dots::blockable_rows<qcodec::simd::scalar>(bits, d, per_call);
  for (auto _ : state) {
    if (unit_form) {
      const auto dots = form == kind::units ? k.int16_dots.channel_unit_dots_i16
                                            : k.int16_dots.channel_unit_dots_i8;
      dots(page.data(), unit_bytes, units, per_call, d, bits, blocked, q.data(), heads, out.data(),
           page_rows);
    } else {
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
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["rows_per_second"] = benchmark::Counter(
      static_cast<double>(page_rows), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(k.arch);
}

[[maybe_unused]] const int registered = [] {
  auto* i8 = benchmark::RegisterBenchmark("BM_integer_dots/i8", bm_integer_dots, kind::i8);
  auto* i16 = benchmark::RegisterBenchmark("BM_integer_dots/i16", bm_integer_dots, kind::i16);
  auto* units = benchmark::RegisterBenchmark("BM_integer_dots/units", bm_integer_dots, kind::units);
  auto* units8 =
      benchmark::RegisterBenchmark("BM_integer_dots/units8", bm_integer_dots, kind::units8);
  for (const std::int64_t per_call : {32, 256})
    for (const std::int64_t d : {64, 128}) {
      i8->Args({4, per_call, d});  // the int8 form is for 4-bit keys (kv::default_query_format)
      for (const std::int64_t bits : {2, 4}) i16->Args({bits, per_call, d});
    }
  for (const std::int64_t d : {64, 128})
    for (const std::int64_t bits : {2, 4}) {  // KIVI's 32-token units
      units->Args({bits, 32, d});
      units8->Args({bits, 32, d});
    }
  return 0;
}();

}  // namespace
