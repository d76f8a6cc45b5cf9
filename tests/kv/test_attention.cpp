#include <qcodec/kv.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "../support/catch.hpp"
#include "kv_parity.hpp"
#include "kv_test_data.hpp"

namespace kv = qcodec::kv;
using kv_test::check_all;
using kv_test::check_reference_parity;
using kv_test::filled_cache;
using kv_test::group;
using kv_test::head_dim;
using kv_test::kv_heads;
using kv_test::layers;
using kv_test::q_heads;
using kv_test::small_config;

using fp32_cache = kv::cache<kv::fp32_stream, kv::fp32_stream>;
using fp16_cache = kv::cache<kv::fp16_stream, kv::fp16_stream>;
using q8_cache = kv::cache<kv::per_token<8>, kv::per_token<8>>;
using q4_cache = kv::cache<kv::per_token<4>, kv::per_token<4>>;
using kivi2_cache = kv::cache<kv::per_channel<2, 32>, kv::per_token<2>>;
using kivi4_cache = kv::cache<kv::per_channel<4, 32>, kv::per_token<4>>;
using kivi4_q8_cache =
    kv::cache<kv::per_channel<4, 32, kv::query_format::i8>, kv::per_token<4>>;  // opt-in int8
using rotated4_cache = kv::cache<kv::rotated<kv::per_token<4>>, kv::rotated<kv::per_token<4>>>;
using channel_values_cache = kv::cache<kv::per_token<4>, kv::per_channel<4, 16>>;
using q4_float_query_cache = kv::cache<kv::per_token<4, kv::query_format::f32>, kv::per_token<4>>;
using q8_float_query_cache = kv::cache<kv::per_token<8, kv::query_format::f32>, kv::per_token<8>>;
using q4_blocks_cache = kv::cache<kv::token_blocks<4>, kv::per_token<4>>;
using rotated4_blocks_cache =
    kv::cache<kv::rotated<kv::token_blocks<4>>, kv::rotated<kv::per_token<4>>>;
using blocks_cache = kv::cache<kv::token_blocks<2>, kv::token_blocks<8>>;  // values too
using q8_blocks_cache = kv::cache<kv::token_blocks<8, kv::query_format::i16>, kv::per_token<8>>;

TEMPLATE_TEST_CASE("attention on the compressed cache equals the reference on its decoding",
                   "[kv][attention]", fp32_cache, fp16_cache, q8_cache, q4_cache, kivi2_cache,
                   kivi4_cache, kivi4_q8_cache, rotated4_cache, channel_values_cache,
                   q4_float_query_cache, q4_blocks_cache, rotated4_blocks_cache, blocks_cache,
                   q8_blocks_cache) {
  check_all<TestType>(1, 0, 0);
  check_all<TestType>(37, 0, 0);
  check_all<TestType>(300, 4, 0);
  check_all<TestType>(300, 0, 32);
  check_all<TestType>(333, 5, 20);
  check_all<TestType>(250, 150, 8);  // more sinks than a page (64) holds: several sink blocks
  check_all<TestType>(333, 5, 20, kv::float_format::f16);  // exact tokens stored in fp16
}

// Attention's online softmax raises its shift only for scores more than a headroom (16) above it,
// and then rescales what it has accumulated. Here channel 0 of every key rises with the token up
// to token 200 and falls after it, and the queries read channel 0 alone (so that scores are exact
// in float, whatever their size): scaled scores climb by 64 * slope a page, 6.4 (weights above
// 1, a raise every third page), 19.2 (a raise and a rescale every page) or 96 (past float's
// range unless raised). The sinks' and the compressed tokens' sums are rescaled, and the peak,
// not the last page, dominates the result.
TEMPLATE_TEST_CASE("attention: scores rising past the softmax shift's headroom", "[kv][attention]",
                   fp32_cache, q4_cache, kivi4_cache, kivi4_q8_cache, q4_blocks_cache) {
  for (const float slope : {0.1f, 0.3f, 1.5f}) {
    kv_test::kv_data data = kv_test::make_kv(300, kv_heads, head_dim, 31);
    for (std::size_t t = 0; t < data.tokens; ++t) {
      const float rise = static_cast<float>(t < 200 ? t : 400 - t);
      for (std::size_t h = 0; h < kv_heads; ++h)
        data.keys[(t * kv_heads + h) * head_dim] = slope * rise;
    }
    constexpr std::size_t n_queries = 5;
    std::vector<float> q(n_queries * q_heads * head_dim, 0.0f);
    for (std::size_t row = 0; row < n_queries * q_heads; ++row) {
      q[row * head_dim] = 8.0f;  // times the default scale 1/8
    }
    INFO("slope " << slope);
    kv::sequence_id seq = 0;
    const TestType c = filled_cache<TestType>(small_config(3, 20), data, seq);
    check_reference_parity(c, seq, 0, q);
  }
}

// Same codes (the query format does not touch encoding), scored against the integer form of
// the query or the query itself: the outputs differ, by far less than the keys' own rounding
// moves them (relative MSE below `fraction` of theirs).
template <class IntegerQueryCache, class FloatQueryCache>
void check_query_rounding_only(double fraction = 0.01) {
  const kv_test::kv_data data = kv_test::make_kv(300, kv_heads, head_dim, 21);
  const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 22);
  kv::sequence_id si = 0, sf = 0;
  const auto integer_query = filled_cache<IntegerQueryCache>(data, 0, 0, si);
  const auto float_query = filled_cache<FloatQueryCache>(data, 0, 0, sf);
  std::vector<float> oi(q.size()), of(q.size());
  REQUIRE(kv::attention(integer_query, si, 0, q.data(), q_heads, oi.data()).ok());
  REQUIRE(kv::attention(float_query, sf, 0, q.data(), q_heads, of.data()).ok());
  double diff = 0.0, ref = 0.0;
  for (std::size_t i = 0; i < q.size(); ++i) {
    diff += std::pow(double(oi[i]) - of[i], 2);
    ref += std::pow(double(of[i]), 2);
  }
  const double exact_error = kv_test::error_against_exact(data, q, of);
  INFO("relative MSE integer vs float query " << diff / ref << ", float query vs exact "
                                              << exact_error);
  CHECK(diff > 0.0);
  CHECK(diff / ref < fraction * exact_error);
}

TEST_CASE("int8 queries move 4-bit attention by the query's rounding only", "[kv][attention]") {
  static_assert(kv::default_query_format(4) == kv::query_format::i8);
  check_query_rounding_only<q4_cache, q4_float_query_cache>();
}

TEST_CASE("int8 scaled queries move KIVI-4 attention by the query's rounding only",
          "[kv][attention]") {
  // Per unit q_c s_c on the int8 grid of its largest channel: the small channels move most, and
  // the outputs by more than with int8 per-token keys (here 2.3% of the keys' own relative MSE,
  // against 0.0002% with the 15-bit default).
  using kivi4_float_query_cache =
      kv::cache<kv::per_channel<4, 32, kv::query_format::f32>, kv::per_token<4>>;
  check_query_rounding_only<kivi4_cache, kivi4_float_query_cache>();
  check_query_rounding_only<kivi4_q8_cache, kivi4_float_query_cache>(0.05);
}

TEST_CASE("15-bit queries move 8-bit attention by the query's rounding only", "[kv][attention]") {
  static_assert(kv::default_query_format(8) == kv::query_format::i16);
  check_query_rounding_only<q8_cache, q8_float_query_cache>();
}

// Same codes again (the weight format does not touch encoding either), values summed with
// 16-bit or float weights: within the weights' rounding, each weight off by at most 1 / 65534 of
// its page's largest, so an output by at most (tokens / 65534) times the largest value range
// (rotated values: their range, at most 2 sqrt(d) max |v|, times sqrt(d) for the inverse
// rotation); and by far less than the 4-bit values' own rounding moves attention.
using w16_values = kv::per_token<4, kv::query_format::i8, kv::weight_format::i16>;
using q4_w16_cache = kv::cache<kv::per_token<4>, w16_values>;
using kivi4_w16_cache = kv::cache<kv::per_channel<4, 32>, w16_values>;
using rotated4_w16_cache = kv::cache<kv::rotated<kv::per_token<4>>, kv::rotated<w16_values>>;

TEMPLATE_TEST_CASE("16-bit weights move 4-bit attention by the weights' rounding only",
                   "[kv][attention]", (std::pair<q4_w16_cache, q4_cache>),
                   (std::pair<kivi4_w16_cache, kivi4_cache>),
                   (std::pair<rotated4_w16_cache, rotated4_cache>)) {
  using rounded_cache = typename TestType::first_type;
  using float_cache = typename TestType::second_type;
  REQUIRE(kv::per_token<4>(64).name() + "-w16" == w16_values(64).name());
  for (auto [sinks, residual] : {std::pair<std::size_t, std::size_t>{0, 0}, {5, 20}}) {
    INFO("sinks " << sinks << " residual " << residual);
    const kv_test::kv_data data = kv_test::make_kv(300, kv_heads, head_dim, 23);
    const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 24);
    kv::sequence_id sr = 0, sf = 0;
    const auto rounded = filled_cache<rounded_cache>(data, sinks, residual, sr);
    const auto exact = filled_cache<float_cache>(data, sinks, residual, sf);
    std::vector<float> orounded(q.size()), ofloat(q.size());
    REQUIRE(kv::attention(rounded, sr, 0, q.data(), q_heads, orounded.data()).ok());
    REQUIRE(kv::attention(exact, sf, 0, q.data(), q_heads, ofloat.data()).ok());
    std::vector<float> keys(kv_heads * data.tokens * head_dim), values(keys.size());
    exact.decode_layer(sf, 0, keys.data(), values.data());
    double max_range = 0.0, max_abs = 0.0;
    for (std::size_t t = 0; t < kv_heads * data.tokens; ++t) {
      const auto [lo, hi] = std::minmax_element(&values[t * head_dim], &values[(t + 1) * head_dim]);
      max_range = std::max(max_range, double(*hi) - *lo);
      max_abs = std::max({max_abs, std::fabs(double(*lo)), std::fabs(double(*hi))});
    }
    const bool rotated = std::is_same_v<rounded_cache, rotated4_w16_cache>;
    const double bound =
        double(data.tokens) / 65534.0 * (rotated ? 2.0 * double(head_dim) * max_abs : max_range);
    double diff = 0.0, ref = 0.0, max_diff = 0.0;
    for (std::size_t i = 0; i < q.size(); ++i) {
      diff += std::pow(double(orounded[i]) - ofloat[i], 2);
      ref += std::pow(double(ofloat[i]), 2);
      max_diff = std::max(max_diff, std::fabs(double(orounded[i]) - ofloat[i]));
    }
    const double exact_error = kv_test::error_against_exact(data, q, ofloat);
    INFO("relative MSE 16-bit vs float weights " << diff / ref << ", float weights vs exact "
                                                 << exact_error << "; largest difference "
                                                 << max_diff << ", bound " << bound);
    CHECK(diff > 0.0);
    CHECK(max_diff <= bound);
    CHECK(diff / ref < 1e-4 * exact_error);
  }
}

// token_rows<4> holds per_token<4>'s codes 16 tokens to a unit and sums them as per_token's
// 16-bit weights do (the weights taking in the scales, rounded over the same page); only the
// offsets' sums add in another order. With 288 = 18 * 16 values compressed by both (312 tokens,
// 4 sinks, 20 residual), the two caches decode alike and attend alike up to float rounding.
TEST_CASE("token_rows values are per_token's with 16-bit weights, 16 tokens to a unit",
          "[kv][attention]") {
  using rows_cache = kv::cache<kv::token_blocks<4>, kv::token_rows<4>>;
  using w16_cache = kv::cache<kv::token_blocks<4>, w16_values>;
  const kv_test::kv_data data = kv_test::make_kv(312, kv_heads, head_dim, 31);
  const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 32);
  kv::sequence_id sr = 0, sw = 0;
  const auto rows = filled_cache<rows_cache>(data, 4, 20, sr);
  const auto w16 = filled_cache<w16_cache>(data, 4, 20, sw);
  std::vector<float> keys(kv_heads * data.tokens * head_dim), values(keys.size());
  std::vector<float> keys_w16(keys.size()), values_w16(keys.size());
  rows.decode_layer(sr, 1, keys.data(), values.data());
  w16.decode_layer(sw, 1, keys_w16.data(), values_w16.data());
  CHECK(values == values_w16);
  CHECK(values != data.values);  // (compressed)
  std::vector<float> orows(q.size()), ow16(q.size());
  REQUIRE(kv::attention(rows, sr, 1, q.data(), q_heads, orows.data()).ok());
  REQUIRE(kv::attention(w16, sw, 1, q.data(), q_heads, ow16.data()).ok());
  for (std::size_t i = 0; i < q.size(); ++i) CHECK(orows[i] == Approx(ow16[i]).margin(1e-6));
  CHECK(rows.bits_per_value(sr) == Approx(w16.bits_per_value(sw)).epsilon(0.02));

  // As keys (correct, not fast): scores are the query against the decoding.
  const kv::token_rows<4> codec(head_dim);
  std::vector<std::uint8_t> unit(codec.unit_bytes());
  codec.encode(data.values.data(), unit.data());  // 16 vectors
  std::vector<float> decoded(16 * head_dim), scores(2 * 16);
  codec.decode(unit.data(), decoded.data());
  codec.scores(unit.data(), 1, q.data(), 2, scores.data(), 16);
  for (std::size_t g = 0; g < 2; ++g)
    for (std::size_t t = 0; t < 16; ++t) {
      double want = 0.0;
      for (std::size_t i = 0; i < head_dim; ++i)
        want += double(q[g * head_dim + i]) * decoded[t * head_dim + i];
      CHECK(scores[g * 16 + t] == Approx(want).margin(1e-4));
    }
}

// token_quads<B> holds per_token<B>'s codes too, four tokens interleaved, and sums them with
// 8-bit weights per block of 16 tokens (15-bit at B = 8): the same decoding as token_rows<B>, and
// attention moved by the weights' rounding only (each weight off by at most 1/510 of its block's
// largest, 1/65534 at B = 8, the error's mean taken back at the middle code), far less than the
// values' own rounding moves it. Without that correction, 7e-5 and 4e-5 here (rotated: one output
// coordinate takes the whole mean), and 1.7e-3 and 6.1e-3 at the largest, against 1e-5 and 9.5e-4
// with it.
using q4_rows_cache = kv::cache<kv::token_blocks<4>, kv::token_rows<4>>;
using q4_quads_cache = kv::cache<kv::token_blocks<4>, kv::token_quads<4>>;
using rotated_rows_cache =
    kv::cache<kv::rotated<kv::token_blocks<4>>, kv::rotated<kv::token_rows<4>>>;
using rotated_quads_cache =
    kv::cache<kv::rotated<kv::token_blocks<4>>, kv::rotated<kv::token_quads<4>>>;
using kivi4_rows_cache = kv::cache<kv::per_channel<4, 32>, kv::token_rows<4>>;
using kivi4_quads_cache = kv::cache<kv::per_channel<4, 32>, kv::token_quads<4>>;
using kivi2_rows_cache = kv::cache<kv::per_channel<2, 32>, kv::token_rows<2>>;
using kivi2_quads_cache = kv::cache<kv::per_channel<2, 32>, kv::token_quads<2>>;
using q8_rows_cache = kv::cache<kv::token_blocks<8, kv::query_format::i16>, kv::token_rows<8>>;
using q8_blocks_quads_cache =
    kv::cache<kv::token_blocks<8, kv::query_format::i16>, kv::token_quads<8>>;

TEMPLATE_TEST_CASE("token_quads values are per_token's, summed with weights rounded per 16 tokens",
                   "[kv][attention]", (std::pair<q4_quads_cache, q4_rows_cache>),
                   (std::pair<rotated_quads_cache, rotated_rows_cache>),
                   (std::pair<kivi4_quads_cache, kivi4_rows_cache>),
                   (std::pair<kivi2_quads_cache, kivi2_rows_cache>),
                   (std::pair<q8_blocks_quads_cache, q8_rows_cache>)) {
  using quads_cache = typename TestType::first_type;
  using rows_cache = typename TestType::second_type;
  const kv_test::kv_data data = kv_test::make_kv(312, kv_heads, head_dim, 33);
  const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 34);
  kv::sequence_id sr = 0, sq = 0;
  const auto rows = filled_cache<rows_cache>(data, 4, 20, sr);
  const auto quads = filled_cache<quads_cache>(data, 4, 20, sq);
  std::vector<float> keys(kv_heads * data.tokens * head_dim), values(keys.size());
  std::vector<float> keys_quads(keys.size()), values_quads(keys.size());
  rows.decode_layer(sr, 1, keys.data(), values.data());
  quads.decode_layer(sq, 1, keys_quads.data(), values_quads.data());
  CHECK(values == values_quads);
  CHECK(quads.bits_per_value(sq) == rows.bits_per_value(sr));

  std::vector<float> orows(q.size()), oquads(q.size());
  REQUIRE(kv::attention(rows, sr, 0, q.data(), q_heads, orows.data()).ok());
  REQUIRE(kv::attention(quads, sq, 0, q.data(), q_heads, oquads.data()).ok());
  double diff = 0.0, ref = 0.0, max_diff = 0.0;
  for (std::size_t i = 0; i < q.size(); ++i) {
    diff += std::pow(double(oquads[i]) - orows[i], 2);
    ref += std::pow(double(orows[i]), 2);
    max_diff = std::max(max_diff, std::fabs(double(oquads[i]) - orows[i]));
  }
  const double exact_error = kv_test::error_against_exact(data, q, orows);
  INFO("relative MSE quads vs rows " << diff / ref << ", rows (16-bit weights) vs exact "
                                     << exact_error << "; largest difference " << max_diff);
  CHECK(diff > 0.0);
  CHECK(diff / ref < 2e-3 * exact_error);  // (3e-4, 8e-4, KIVI-4 6e-4, KIVI-2 5e-5, 8-bit 7e-5)
}

TEMPLATE_TEST_CASE("token_quads<B> decodes as token_rows<B> at any head_dim", "[kv][attention]",
                   (std::integral_constant<unsigned, 2>), (std::integral_constant<unsigned, 4>),
                   (std::integral_constant<unsigned, 8>)) {
  // Narrow last slices (100: 36 and 4 columns), and head_dims past the codec's 256-column pieces.
  constexpr unsigned bits = TestType::value;
  for (std::size_t dim : {8u, 100u, 320u}) {
    INFO("bits " << bits << ", head_dim " << dim);
    const kv_test::kv_data data = kv_test::make_kv(16, 1, dim, 35);
    const kv::token_quads<bits> quads(dim);
    const kv::token_rows<bits> rows(dim);
    REQUIRE(quads.unit_bytes() == rows.unit_bytes());
    std::vector<std::uint8_t> unit_quads(quads.unit_bytes()), unit_rows(rows.unit_bytes());
    quads.encode(data.values.data(), unit_quads.data());
    rows.encode(data.values.data(), unit_rows.data());
    std::vector<float> from_quads(16 * dim), from_rows(16 * dim);
    quads.decode(unit_quads.data(), from_quads.data());
    rows.decode(unit_rows.data(), from_rows.data());
    CHECK(from_quads == from_rows);
  }
}

TEMPLATE_TEST_CASE("token_quads as keys: scores are the query against the decoding",
                   "[kv][attention]", kv::token_quads<2>, kv::token_quads<4>, kv::token_quads<8>) {
  // (Correct, not fast: keys belong in token_blocks.)
  const kv_test::kv_data data = kv_test::make_kv(16, kv_heads, head_dim, 33);
  const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 34);
  const TestType codec(head_dim);
  std::vector<std::uint8_t> unit(codec.unit_bytes());
  codec.encode(data.values.data(), unit.data());  // 16 vectors
  std::vector<float> decoded(16 * head_dim), scores(2 * 16);
  codec.decode(unit.data(), decoded.data());
  codec.scores(unit.data(), 1, q.data(), 2, scores.data(), 16);
  for (std::size_t g = 0; g < 2; ++g)
    for (std::size_t t = 0; t < 16; ++t) {
      double want = 0.0;
      for (std::size_t i = 0; i < head_dim; ++i)
        want += double(q[g * head_dim + i]) * decoded[t * head_dim + i];
      CHECK(scores[g * 16 + t] == Approx(want).margin(1e-4));
    }
}

TEST_CASE("8-bit per-token keys score the float query past head_dim 514", "[kv][attention]") {
  // 255 * 16383 * 514 < 2^31 <= 255 * 16383 * 515: wider 15-bit sums could overflow, so the
  // codec scores the query itself there (and scored_query says so): the same outputs, bit for
  // bit, as 8-bit keys that always score the float query.
  STATIC_REQUIRE(kv::per_token<8>::i16_max_head_dim == 514);
  const auto outputs = [](auto cache_type, std::size_t dim) {
    using Cache = typename decltype(cache_type)::type;
    kv::cache_config c = small_config(0, 0);
    c.head_dim = dim;
    kv::sequence_id s = 0;
    const Cache cache = filled_cache<Cache>(c, kv_test::make_kv(70, kv_heads, dim, 6), s);
    const std::vector<float> q = kv_test::make_queries(q_heads * dim, 7);
    std::vector<float> out(q.size()), rounded(dim);
    REQUIRE(kv::attention(cache, s, 0, q.data(), q_heads, out.data()).ok());
    kv::scored_query(cache.keys(0, 0), q.data(), rounded.data());
    return std::pair{out, rounded == std::vector<float>(q.begin(), q.begin() + dim)};
  };
  for (std::size_t dim : {514u, 520u}) {
    INFO("head_dim " << dim);
    const auto [integer_query, unrounded] = outputs(std::type_identity<q8_cache>{}, dim);
    const auto [float_query, float_unrounded] =
        outputs(std::type_identity<q8_float_query_cache>{}, dim);
    CHECK(float_unrounded);
    CHECK(unrounded == (dim > 514));
    CHECK((integer_query == float_query) == (dim > 514));
  }
}

TEMPLATE_TEST_CASE("fp16 exact tokens are the appended tokens rounded to fp16", "[kv][cache]",
                   fp32_cache, kivi2_cache) {
  const kv_test::kv_data data = kv_test::make_kv(150, kv_heads, head_dim, 11);
  kv_test::kv_data rounded = data;
  for (float& x : rounded.keys) x = float(qcodec::half(x));
  for (float& x : rounded.values) x = float(qcodec::half(x));
  kv::sequence_id s16 = 0, s32 = 0;
  const TestType f16 =
      filled_cache<TestType>(small_config(3, 40, kv::float_format::f16), data, s16);
  const TestType f32 = filled_cache<TestType>(small_config(3, 40), rounded, s32);
  // Same compressed units (for KIVI, the codec sees fp16-rounded tokens either way) and same
  // exact tokens; the fp16 window holds half the bytes.
  std::vector<float> k1(kv_heads * 150 * head_dim), v1(k1.size()), k2(k1.size()), v2(k1.size());
  f16.decode_layer(s16, 0, k1.data(), v1.data());
  f32.decode_layer(s32, 0, k2.data(), v2.data());
  CHECK(std::memcmp(k1.data(), k2.data(), k1.size() * 4) == 0);
  CHECK(std::memcmp(v1.data(), v2.data(), v1.size() * 4) == 0);
  const auto exact_tokens = [](const auto& view) { return view.sinks + view.tail; };
  const std::size_t exact_values =
      layers * (exact_tokens(f16.key_stream(s16, 0)) + exact_tokens(f16.value_stream(s16, 0))) *
      kv_heads * head_dim;
  CHECK(f32.sequence_bytes(s32) - f16.sequence_bytes(s16) == exact_values * 2);

  const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 12);
  std::vector<float> o1(q.size()), o2(q.size());
  REQUIRE(kv::attention(f16, s16, 1, q.data(), q_heads, o1.data()).ok());
  REQUIRE(kv::attention(f32, s32, 1, q.data(), q_heads, o2.data()).ok());
  for (std::size_t i = 0; i < q.size(); ++i) CHECK(o1[i] == Approx(o2[i]).margin(1e-6));
}

TEMPLATE_TEST_CASE("appending one token at a time equals appending in one batch", "[kv][cache]",
                   q4_cache, kivi2_cache, rotated4_cache, blocks_cache) {
  const kv_test::kv_data data = kv_test::make_kv(150, kv_heads, head_dim, 3);
  kv::sequence_id batch_seq = 0;
  const TestType batch = filled_cache<TestType>(data, 2, 16, batch_seq);
  auto single = TestType::create(small_config(2, 16));
  REQUIRE(single.ok());
  const kv::sequence_id seq = single->add_sequence();
  const std::size_t row = kv_heads * head_dim;
  for (std::size_t t = 0; t < data.tokens; ++t)
    for (std::size_t l = 0; l < layers; ++l)
      REQUIRE(single->append(seq, l, &data.keys[t * row], &data.values[t * row], 1).ok());

  std::vector<float> k1(kv_heads * 150 * head_dim), v1(k1.size()), k2(k1.size()), v2(k1.size());
  batch.decode_layer(batch_seq, 1, k1.data(), v1.data());
  single->decode_layer(seq, 1, k2.data(), v2.data());
  CHECK(std::memcmp(k1.data(), k2.data(), k1.size() * 4) == 0);
  CHECK(std::memcmp(v1.data(), v2.data(), v1.size() * 4) == 0);

  const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 5);
  std::vector<float> o1(q.size()), o2(q.size());
  REQUIRE(kv::attention(batch, batch_seq, 1, q.data(), q_heads, o1.data()).ok());
  REQUIRE(kv::attention(*single, seq, 1, q.data(), q_heads, o2.data()).ok());
  CHECK(std::memcmp(o1.data(), o2.data(), o1.size() * 4) == 0);
}

// token_blocks stores per_token's codes in another layout and scores them against the same int8
// query (its offset term from the integer query sum, per_token's from the float one): with every
// token in whole blocks, attention differs only by float rounding.
TEST_CASE("token blocks hold per_token's codes and score them alike", "[kv][attention]") {
  const kv_test::kv_data data = kv_test::make_kv(320, kv_heads, head_dim, 23);
  const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 24);
  kv::sequence_id sb = 0, st = 0;
  const auto blocks = filled_cache<q4_blocks_cache>(data, 0, 0, sb);
  const auto tokens = filled_cache<q4_cache>(data, 0, 0, st);
  REQUIRE(blocks.key_stream(sb, 0).tail == 0);
  std::vector<float> k1(kv_heads * 320 * head_dim), v1(k1.size()), k2(k1.size()), v2(k1.size());
  blocks.decode_layer(sb, 0, k1.data(), v1.data());
  tokens.decode_layer(st, 0, k2.data(), v2.data());
  CHECK(std::memcmp(k1.data(), k2.data(), k1.size() * 4) == 0);
  CHECK(blocks.sequence_bytes(sb) == tokens.sequence_bytes(st));
  std::vector<float> o1(q.size()), o2(q.size());
  REQUIRE(kv::attention(blocks, sb, 0, q.data(), q_heads, o1.data()).ok());
  REQUIRE(kv::attention(tokens, st, 0, q.data(), q_heads, o2.data()).ok());
  for (std::size_t i = 0; i < q.size(); ++i) CHECK(o1[i] == Approx(o2[i]).margin(1e-5));
}

TEST_CASE("attention over a range of heads equals its part of the whole", "[kv][attention]") {
  const kv_test::kv_data data = kv_test::make_kv(200, kv_heads, head_dim, 4);
  kv::sequence_id seq = 0;
  const kivi4_cache c = filled_cache<kivi4_cache>(data, 0, 32, seq);
  const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 6);
  std::vector<float> whole(q.size()), split(q.size());
  REQUIRE(kv::attention(c, seq, 0, q.data(), q_heads, whole.data()).ok());
  REQUIRE(kv::attention(c, seq, 0, q.data(), q_heads, split.data(), 1, 0, 1).ok());
  REQUIRE(kv::attention(c, seq, 0, q.data(), q_heads, split.data(), 1, 1, 2).ok());
  CHECK(std::memcmp(whole.data(), split.data(), whole.size() * 4) == 0);
}

TEST_CASE("compression error against exact attention is what the bits imply", "[kv][attention]") {
  const kv_test::kv_data data = kv_test::make_kv(512, kv_heads, head_dim, 9);
  const std::vector<float> q = kv_test::make_queries(q_heads * head_dim, 10);
  auto output_error = [&]<class Cache>() { return kv_test::attention_error<Cache>(data, q); };
  const double e_fp16 = output_error.template operator()<fp16_cache>();
  const double e_q8 = output_error.template operator()<q8_cache>();
  const double e_q4 = output_error.template operator()<q4_cache>();
  const double e_rot4 = output_error.template operator()<rotated4_cache>();
  const double e_kivi4 = output_error.template operator()<kivi4_cache>();
  const double e_kivi4_q8 = output_error.template operator()<kivi4_q8_cache>();
  const double e_kivi2 = output_error.template operator()<kivi2_cache>();
  WARN("attention output relative MSE: fp16 "
       << e_fp16 << ", int8 " << e_q8 << ", int4 " << e_q4 << ", rotated int4 " << e_rot4
       << ", KIVI-4 " << e_kivi4 << " (int8 queries " << e_kivi4_q8 << "), KIVI-2 " << e_kivi2);
  CHECK(e_fp16 < 1e-6);
  CHECK(e_q8 < e_q4);
  CHECK(e_rot4 < e_q4);      // the rotation spreads the outlier channels
  CHECK(e_kivi4 < e_q4);     // per-channel keys isolate them
  CHECK(e_kivi4 < e_kivi2);  // fewer bits, more error (2-bit values are the noisy part)
  CHECK(e_kivi4_q8 < e_q4);  // int8 scaled queries: far less than per-token keys' own error
}
