#include <qcodec/kv.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "../support/catch.hpp"
#include "kv_test_data.hpp"

namespace kv = qcodec::kv;

namespace {

kv::cache_config config() {
  kv::cache_config c;
  c.layers = 2;
  c.kv_heads = 2;
  c.head_dim = 64;
  c.page_tokens = 128;
  c.max_pages = 16;
  return c;
}

}  // namespace

TEST_CASE("any_cache: every scheme by name computes what its concrete cache computes",
          "[kv][any_cache]") {
  const kv_test::kv_data data = kv_test::make_kv(300, 2, 64, 1);
  const std::vector<float> q = kv_test::make_queries(4 * 64, 2);
  for (const kv::kv_scheme& scheme : kv::kv_schemes()) {
    if (scheme.calibrated) continue;  // test_channel_codebook.cpp
    INFO("scheme " << scheme.name);
    auto c = kv::make_cache(scheme.name, config());
    REQUIRE(c.ok());
    CHECK((*c)->spec() == scheme.name);
    CHECK((*c)->config().residual_tokens == scheme.default_residual);
    const kv::sequence_id s = (*c)->add_sequence();
    REQUIRE((*c)->append(s, 1, data.keys.data(), data.values.data(), 300).ok());
    std::vector<float> out(q.size());
    REQUIRE((*c)->attention(s, 1, q.data(), 4, out.data()).ok());
    CHECK((*c)->length(s, 1) == 300);
    CHECK((*c)->bits_per_value(s) > 0.0);

    // Against exact attention on the original data: every scheme is an approximation of it.
    std::vector<float> keys(2 * 300 * 64), values(keys.size());
    (*c)->decode_layer(s, 1, keys.data(), values.data());
    std::vector<float> want(64);
    kv::reference_attention(keys.data(), values.data(), 300, 64, q.data(), 0.125f, want.data());
    // Schemes that score int8 queries (q4, rot4) differ from this float-query reference by the
    // query's rounding: a few 1e-4 here (kv_parity.hpp checks them exactly, scheme by scheme).
    for (std::size_t i = 0; i < 64; ++i) CHECK(out[i] == Approx(want[i]).margin(1e-3));
  }
  // The concrete type behind "kivi2", bit for bit.
  auto named = kv::make_cache("kivi2", config());
  auto direct = kv::cache<kv::per_channel<2, 32>, kv::per_token<2>>::create([] {
    kv::cache_config c = config();
    c.residual_tokens = 128;
    return c;
  }());
  REQUIRE(named.ok());
  REQUIRE(direct.ok());
  const kv::sequence_id a = (*named)->add_sequence(), b = direct->add_sequence();
  REQUIRE((*named)->append(a, 0, data.keys.data(), data.values.data(), 300).ok());
  REQUIRE(direct->append(b, 0, data.keys.data(), data.values.data(), 300).ok());
  std::vector<float> o1(q.size()), o2(q.size());
  REQUIRE((*named)->attention(a, 0, q.data(), 4, o1.data()).ok());
  REQUIRE(kv::attention(*direct, b, 0, q.data(), 4, o2.data()).ok());
  CHECK(std::memcmp(o1.data(), o2.data(), o1.size() * 4) == 0);
}

TEST_CASE("any_cache: options, canonical specs and errors", "[kv][any_cache]") {
  namespace e = qcodec::codec_errors;
  auto c = kv::make_cache("q4:residual=32,sinks=4", config());
  REQUIRE(c.ok());
  CHECK((*c)->spec() == "q4:sinks=4,residual=32");
  CHECK((*c)->config().sink_tokens == 4);
  CHECK((*c)->config().residual_tokens == 32);
  CHECK((*kv::make_cache("kivi4:residual=128", config()))->spec() == "kivi4");
  CHECK((*kv::make_cache("kivi4:residual=0", config()))->spec() == "kivi4:residual=0");
  auto half = kv::make_cache("q4:residual=8,exact=16", config());
  REQUIRE(half.ok());
  CHECK((*half)->spec() == "q4:exact=16,residual=8");
  CHECK((*half)->config().exact_format == kv::float_format::f16);
  CHECK((*kv::make_cache("q4:exact=32", config()))->spec() == "q4");
  kv::cache_config half_config = config();  // fp16 and 2 sinks by default: "32" and "0" written
  half_config.exact_format = kv::float_format::f16;
  half_config.sink_tokens = 2;
  CHECK((*kv::make_cache("q4", half_config))->spec() == "q4:sinks=2,exact=16");
  const std::string spec = (*kv::make_cache("q4:exact=32,sinks=0", half_config))->spec();
  CHECK(spec == "q4:sinks=0,exact=32");
  CHECK((*kv::make_cache(spec, half_config))->config().exact_format == kv::float_format::f32);
  CHECK(kv::make_cache("q4:exact=8", config()).error().is(e::bad_option));
  CHECK(kv::make_cache("q4:exact=24", config()).error().is(e::bad_option));
  CHECK(kv::make_cache("nope", config()).error().is(e::unknown_codec));
  CHECK(kv::make_cache("q4:bits=3", config()).error().is(e::unknown_option));
  CHECK(kv::make_cache("q4:residual=x", config()).error().is(e::bad_option));
  kv::cache_config odd = config();
  odd.head_dim = 48;
  CHECK(kv::make_cache("rot4", odd).error().is(kv::errors::bad_config));
  CHECK(kv::make_cache("q4", odd).ok());
  odd.head_dim = 36;  // not a multiple of token_blocks<4>'s 8-channel groups
  CHECK(kv::make_cache("q4b", odd).error().is(kv::errors::bad_config));
  CHECK(kv::make_cache("q4", odd).ok());
  odd.head_dim = 4;  // a power of two, still not a multiple of 8
  CHECK(kv::make_cache("rot4b-w16", odd).error().is(kv::errors::bad_config));
  odd.head_dim = 528;  // past token_blocks' 15-bit queries (512); q8 scores the float query there
  CHECK(kv::make_cache("q8b-quads", odd).error().is(kv::errors::bad_config));
  CHECK(kv::make_cache("q8", odd).ok());
  odd.head_dim = 512;
  CHECK(kv::make_cache("q8b-quads", odd).ok());
}

TEST_CASE("any_cache: tiered schemes are mixed caches scored through set_importance",
          "[kv][any_cache][mixed]") {
  namespace e = qcodec::codec_errors;
  const kv_test::kv_data data = kv_test::make_kv(300, 2, 64, 3);
  const std::vector<float> q = kv_test::make_queries(4 * 64, 4);
  // The concrete type behind "mix-q8-kivi2:salient=0.5", bit for bit, with the same scores.
  using q8 = kv::cache<kv::per_token<8>, kv::per_token<8>>;
  using kivi2 = kv::cache<kv::per_channel<2, 32>, kv::per_token<2>>;
  auto named = kv::make_cache("mix-q8-kivi2:salient=0.5", config());
  kv::mixed_config mc;
  mc.base = config();
  mc.base.residual_tokens = 32;
  mc.thresholds = {0.5f};
  auto direct = kv::mixed_cache<q8, kivi2>::create(mc);
  REQUIRE(named.ok());
  REQUIRE(direct.ok());
  CHECK((*named)->tiered());
  CHECK((*named)->salient_threshold() == 0.5f);
  CHECK((*named)->spec() == "mix-q8-kivi2:salient=0.5");
  CHECK((*named)->config().residual_tokens == 32);
  const kv::sequence_id a = (*named)->add_sequence(), b = direct->add_sequence();
  const std::size_t row = 2 * 64;
  for (std::size_t t = 0; t < 300; ++t) {
    const float score = static_cast<float>(t % 3) * 0.4f;  // 0, 0.4, 0.8: a third salient
    REQUIRE((*named)->append(a, 0, &data.keys[t * row], &data.values[t * row], 1).ok());
    REQUIRE(direct->append(b, 0, &data.keys[t * row], &data.values[t * row], 1).ok());
    REQUIRE((*named)->set_importance(a, 0, t, score).ok());
    REQUIRE(direct->set_importance(b, 0, t, score).ok());
  }
  CHECK((*named)->set_importance(a, 0, 0, 1.0f).is(kv::errors::not_in_window));
  CHECK(direct->tier_positions(b, 0, 0).size() == 89);  // t % 3 == 2 among the 268 stored
  std::vector<float> o1(q.size()), o2(q.size());
  REQUIRE((*named)->attention(a, 0, q.data(), 4, o1.data()).ok());
  REQUIRE(kv::attention(*direct, b, 0, q.data(), 4, o2.data()).ok());
  CHECK(std::memcmp(o1.data(), o2.data(), o1.size() * 4) == 0);
  CHECK((*named)->sequence_bytes(a) == direct->sequence_bytes(b));

  // The option: only tiered schemes take it; the default (importance_threshold) is not written.
  CHECK((*kv::make_cache("mix-kivi4-kivi2:salient=4", config()))->spec() == "mix-kivi4-kivi2");
  CHECK((*kv::make_cache("mix-q8-kivi2:residual=8,salient=1e30", config()))->spec() ==
        "mix-q8-kivi2:residual=8,salient=1e+30");
  CHECK(kv::make_cache("q4:salient=4", config()).error().is(e::unknown_option));
  CHECK(kv::make_cache("cb4:salient=4", config()).error().is(e::unknown_option));  // not fitted
  CHECK(kv::make_cache("mix-q8-kivi2:residual=0", config()).error().is(e::bad_option));
  CHECK(kv::make_cache("mix-q8-kivi2:salient=-1", config()).error().is(e::bad_option));
  CHECK(kv::make_cache("mix-q8-kivi2:salient=x", config()).error().is(e::bad_option));
  CHECK(kv::make_cache("mix-q8-kivi2:salient=inf", config()).error().is(e::bad_option));
  CHECK(kv::make_cache("mix-q8-kivi2:sinks=4", config()).error().is(kv::errors::bad_config));
  // Caches without tiers have no scores.
  auto plain = kv::make_cache("q4", config());
  REQUIRE(plain.ok());
  CHECK(!(*plain)->tiered());
  CHECK(std::isnan((*plain)->salient_threshold()));
  CHECK((*plain)->set_importance((*plain)->add_sequence(), 0, 0, 1.0f).is(kv::errors::bad_config));
}
