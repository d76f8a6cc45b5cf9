#include <qcodec/core/sanitizers.hpp>
#include <qcodec/kv.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../support/catch.hpp"
#include "kv_test_data.hpp"

namespace kv = qcodec::kv;
using kivi_cache = kv::cache<kv::per_channel<2, 32>, kv::per_token<4>>;

namespace {

kv::cache_config config(std::size_t max_pages = 64) {
  kv::cache_config c;
  c.layers = 2;
  c.kv_heads = 2;
  c.head_dim = 32;
  c.page_tokens = 64;
  c.max_pages = max_pages;
  c.sink_tokens = 2;
  c.residual_tokens = 8;
  return c;
}

std::vector<float> attend(const kivi_cache& c, kv::sequence_id s, std::size_t layer) {
  const std::vector<float> q = kv_test::make_queries(4 * 32, 99);
  std::vector<float> out(q.size());
  REQUIRE(kv::attention(c, s, layer, q.data(), 4, out.data()).ok());
  return out;
}

void append_all(kivi_cache& c, kv::sequence_id s, const kv_test::kv_data& d, std::size_t from,
                std::size_t to) {
  const std::size_t row = d.heads * d.dim;
  for (std::size_t l = 0; l < 2; ++l)
    REQUIRE(c.append(s, l, &d.keys[from * row], &d.values[from * row], to - from).ok());
}

}  // namespace

TEST_CASE("kv cache: forked sequences share pages and copy them on write", "[kv][cache]") {
  const kv_test::kv_data a = kv_test::make_kv(300, 2, 32, 1), b = kv_test::make_kv(300, 2, 32, 2);
  auto c = kivi_cache::create(config());
  REQUIRE(c.ok());
  const kv::sequence_id base = c->add_sequence();
  append_all(*c, base, a, 0, 100);
  const std::size_t shared_pages = c->pages_in_use();
  auto fork = c->fork(base);
  REQUIRE(fork.ok());
  CHECK(c->pages_in_use() == shared_pages);  // nothing copied yet

  // Continue both: the base with a's tokens, the fork with b's.
  append_all(*c, base, a, 100, 300);
  append_all(*c, *fork, b, 100, 300);

  // Each equals a sequence built from scratch with the same tokens.
  const kv::sequence_id fresh_a = c->add_sequence();
  append_all(*c, fresh_a, a, 0, 300);
  kv_test::kv_data mixed = a;
  const std::size_t row = 2 * 32;
  std::copy(b.keys.begin() + 100 * row, b.keys.end(), mixed.keys.begin() + 100 * row);
  std::copy(b.values.begin() + 100 * row, b.values.end(), mixed.values.begin() + 100 * row);
  const kv::sequence_id fresh_b = c->add_sequence();
  append_all(*c, fresh_b, mixed, 0, 300);
  for (std::size_t l = 0; l < 2; ++l) {
    CHECK(attend(*c, base, l) == attend(*c, fresh_a, l));
    CHECK(attend(*c, *fork, l) == attend(*c, fresh_b, l));
  }
}

TEST_CASE("kv cache: freed pages are reused and results stay identical", "[kv][cache]") {
  const kv_test::kv_data a = kv_test::make_kv(200, 2, 32, 3);
  auto c = kivi_cache::create(config());
  REQUIRE(c.ok());
  const kv::sequence_id s1 = c->add_sequence();
  append_all(*c, s1, a, 0, 200);
  const std::vector<float> before = attend(*c, s1, 1);
  const std::size_t allocated = c->pages_allocated();
  REQUIRE(c->free_sequence(s1).ok());
  CHECK(c->pages_in_use() == 0);
  const kv::sequence_id s2 = c->add_sequence();
  append_all(*c, s2, a, 0, 200);
  CHECK(c->pages_allocated() == allocated);  // reused, not grown
  CHECK(attend(*c, s2, 1) == before);
  REQUIRE(c->clear(s2).ok());
  CHECK(c->length(s2, 0) == 0);
  CHECK(c->pages_in_use() == 0);
}

TEST_CASE("kv cache: memory accounting matches what is stored", "[kv][cache]") {
  const kv_test::kv_data a = kv_test::make_kv(1000, 2, 32, 4);
  auto c = kivi_cache::create(config(64));
  REQUIRE(c.ok());
  const kv::sequence_id s = c->add_sequence();
  append_all(*c, s, a, 0, 1000);
  // Keys: 2 sinks, then 32-token units while more than 8 + 32 wait: 998 = 31 * 32 + 6 -> 960
  // compressed, 38 in the residual window. Values (per token): 990 compressed, 8 residual.
  const auto keys = c->key_stream(s, 0);
  const auto values = c->value_stream(s, 0);
  CHECK(keys.sinks == 2);
  CHECK(keys.compressed == 960);
  CHECK(keys.tail == 38);
  CHECK(values.compressed == 990);
  CHECK(values.tail == 8);

  // Unit sizes: keys 32 * 4 (scale/offset pairs) + 32 tokens * 32 * 2 bits; values 4 + 16.
  const std::size_t key_unit = 32 * 4 + 32 * 8, value_unit = 4 + 16;
  CHECK(c->keys().unit_bytes() == key_unit);
  CHECK(c->values().unit_bytes() == value_unit);
  const std::size_t page = 2 * 2 * (2 * key_unit + 64 * value_unit);
  CHECK(c->page_bytes() == page);
  const std::size_t pages = (990 + 63) / 64;  // values reach further than keys
  CHECK(c->pages_in_use() == pages);
  CHECK(c->pool_bytes() == pages * page);
  const std::size_t floats = 2 * (2 * 2 * 32 * 2 + (38 + 8) * 2 * 32);  // layers x (sinks + tails)
  CHECK(c->sequence_bytes(s) == pages * (page + sizeof(kv::page_id)) + floats * sizeof(float));
  const double bits = 8.0 * double(c->sequence_bytes(s)) / double(2 * 2 * 1000 * 2 * 32);
  CHECK(c->bits_per_value(s) == Approx(bits));
  // Codec-only budget: keys 2 + 32 / 32 = 3 bits, values 4 + 32 / 32 = 5 bits.
  CHECK(c->codec_bits_per_value() == Approx(4.0));
}

TEST_CASE("kv cache: bad arguments are clear errors", "[kv][cache]") {
  namespace e = kv::errors;
  kv::cache_config bad = config();
  bad.page_tokens = 48;  // not a multiple of the 32-token key groups
  CHECK(kivi_cache::create(bad).error().is(e::bad_config));
  bad = config();
  bad.head_dim = 0;
  CHECK(kivi_cache::create(bad).error().is(e::bad_config));
  CHECK(kivi_cache::create(config(), kv::per_channel<2, 32>(64), kv::per_token<4>(32))
            .error()
            .is(e::bad_config));  // codec head_dim differs from the cache's

  auto c = kivi_cache::create(config(1));
  REQUIRE(c.ok());
  const kv::sequence_id s = c->add_sequence();
  const std::vector<float> k(70 * 64, 1.0f);
  CHECK(c->append(s, 2, k.data(), k.data(), 1).is(e::bad_layer));
  CHECK(c->append(s + 7, 0, k.data(), k.data(), 1).is(e::bad_sequence));
  REQUIRE(c->append(s, 0, k.data(), k.data(), 60).ok());
  // One page holds 64 compressed tokens; the values need a second page.
  CHECK(c->append(s, 0, k.data(), k.data(), 20).is(e::out_of_pages));
  CHECK(c->length(s, 0) == 60);                        // nothing of the failed append was stored
  CHECK(c->append(s, 0, k.data(), k.data(), 4).ok());  // what still fits in the page
  CHECK(c->length(s, 0) == 64);

  std::vector<float> q(4 * 32), out(q.size());
  CHECK(kv::attention(*c, s, 5, q.data(), 4, out.data()).is(e::bad_layer));
  CHECK(kv::attention(*c, s, 0, q.data(), 3, out.data()).is(e::bad_query));  // not GQA-shaped
  CHECK(kv::attention(*c, s, 1, q.data(), 4, out.data()).is(e::bad_query));  // empty layer
  CHECK(kv::attention(*c, s, 0, q.data(), 4, out.data(), 1000).is(e::bad_query));
  CHECK(kv::attention(*c, s, 0, q.data(), 4, out.data(), 1, 2, 1).is(e::bad_head));
  CHECK(kv::attention(*c, s + 7, 0, q.data(), 4, out.data()).is(e::bad_sequence));
  // With positions (a cache holding part of a sequence): an unknown sequence, and positions
  // given alone, are errors too.
  const std::uint32_t positions[] = {0, 1, 2};
  kv::attention_options only_queries;
  only_queries.query_positions = positions;
  CHECK(kv::attention(*c, s, 0, q.data(), 4, out.data(), 1, 0, 2, only_queries).is(e::bad_query));
  kv::attention_options both = only_queries;
  both.token_positions = positions;
  CHECK(kv::attention(*c, s + 7, 0, q.data(), 4, out.data(), 1, 0, 2, both).is(e::bad_sequence));

  kv::cache_config short_config = config();
  short_config.max_tokens = 10;
  auto small = kivi_cache::create(short_config);
  const kv::sequence_id t = small->add_sequence();
  CHECK(small->append(t, 0, k.data(), k.data(), 11).is(e::too_long));
}

TEST_CASE("kv cache: sizes that would wrap are refused, and R near SIZE_MAX keeps all exact",
          "[kv][cache]") {
  namespace e = kv::errors;
  kv::cache_config huge = config();
  huge.page_tokens = std::size_t{1} << 62;  // pages of 2^62 * 20 bytes of values alone
  CHECK(kivi_cache::create(huge).error().is(e::bad_config));
  huge = config();
  huge.layers = std::size_t{1} << 40;
  huge.kv_heads = std::size_t{1} << 40;
  CHECK(kivi_cache::create(huge).error().is(e::bad_config));
  huge = config(std::size_t{1} << 33);  // page ids are 32 bits
  CHECK(kivi_cache::create(huge).error().is(e::bad_config));

  // 8-bit codes with 15-bit queries: integer sums fit 32 bits up to head_dim 514.
  using kivi8 = kv::cache<kv::per_channel<8, 32, kv::query_format::i16>, kv::per_token<8>>;
  kv::cache_config wide = config();
  wide.head_dim = 515;  // (2^31 - 1) / (255 * 16383) = 514.04
  CHECK(kivi8::create(wide).error().is(e::bad_config));
  wide.head_dim = 514;
  CHECK(kivi8::create(wide).ok());

  // R = SIZE_MAX: "never compress" (R + group would wrap to a small number).
  kv::cache_config exact = config(1);
  exact.residual_tokens = static_cast<std::size_t>(-1);
  auto c = kivi_cache::create(exact);
  REQUIRE(c.ok());
  const kv::sequence_id s = c->add_sequence();
  const kv_test::kv_data d = kv_test::make_kv(200, 2, 32, 5);
  append_all(*c, s, d, 0, 200);
  CHECK(c->length(s, 0) == 200);
  CHECK(c->key_stream(s, 0).compressed == 0);
  CHECK(c->value_stream(s, 0).compressed == 0);
  CHECK(c->pages_allocated() == 0);
}

TEST_CASE("kv cache: an append the system has no memory for stores nothing", "[kv][cache]") {
#if QCODEC_HAS_ASAN
  QCODEC_SKIP("AddressSanitizer aborts on an allocation of 2^61 bytes instead of failing it");
#else
  // One page of 2^61 bytes (within the cache's address limit, beyond any machine's memory):
  // the pool may take it, the system refuses it.
  kv::cache_config big = config();
  big.layers = 1;
  big.kv_heads = 1;
  big.sink_tokens = 0;
  big.residual_tokens = 0;
  big.page_tokens = std::size_t{1} << 56;
  auto c = kivi_cache::create(big);
  REQUIRE(c.ok());
  const kv::sequence_id s = c->add_sequence();
  const std::vector<float> row(32, 1.0f);
  CHECK(c->append(s, 0, row.data(), row.data(), 1).is(kv::errors::out_of_pages));
  CHECK(c->length(s, 0) == 0);  // the value unit's page was refused before the token was stored
  CHECK(c->pages_allocated() == 0);
#endif
}

TEST_CASE("kv page memory: slabs of whole pages past 2 MB, one allocation per page below",
          "[kv][cache]") {
  using kv::detail::page_memory;
  constexpr std::size_t page = 8192, per_slab = page_memory::huge_page / page;  // 256
  const bool slabs = QCODEC_KV_PAGE_SLABS != 0;                                 // not under ASan

  page_memory small(page, 10);  // can never reach 2 MB: a page at a time
  CHECK(small.slab_pages() == 1);
  for (int i = 0; i < 10; ++i) REQUIRE(small.allocate() != nullptr);
  CHECK(small.allocate() == nullptr);  // max_pages
  CHECK(small.bytes() == 10 * page);

  page_memory big(page, per_slab + 44);
  CHECK(big.slab_pages() == (slabs ? per_slab : 1));
  std::vector<std::uint8_t*> pages;
  for (std::size_t i = 0; i < per_slab + 44; ++i) {
    std::uint8_t* p = big.allocate();
    REQUIRE(p != nullptr);
    CHECK(std::all_of(p, p + page, [](std::uint8_t b) { return b == 0; }));
    std::memset(p, 0xA5, page);  // each page writable on its own
    pages.push_back(p);
    if (slabs) CHECK(big.bytes() == (i < per_slab ? per_slab : per_slab + 44) * page);
  }
  CHECK(big.allocate() == nullptr);
  CHECK(big.bytes() == (per_slab + 44) * page);  // the last slab holds only the pages left
  if (slabs) {
    CHECK(reinterpret_cast<std::uintptr_t>(pages[0]) % page_memory::huge_page == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(pages[per_slab]) % page_memory::huge_page == 0);
    for (std::size_t i = 1; i < per_slab; ++i) CHECK(pages[i] == pages[i - 1] + page);
  }
  std::sort(pages.begin(), pages.end());
  CHECK(std::adjacent_find(pages.begin(), pages.end(), [](std::uint8_t* a, std::uint8_t* b) {
          return b < a + page;  // overlapping pages
        }) == pages.end());

  page_memory large(3 << 20, 4);  // pages past 2 MB: one a slab, 2 MB-aligned
  CHECK(large.slab_pages() == 1);
  std::uint8_t* p = large.allocate();
  REQUIRE(p != nullptr);
  if (slabs) CHECK(reinterpret_cast<std::uintptr_t>(p) % page_memory::huge_page == 0);
  CHECK(large.bytes() == std::size_t{3} << 20);
}

TEST_CASE("kv cache: a pool that can grow past 2 MB counts its whole slab", "[kv][cache]") {
  const kv_test::kv_data a = kv_test::make_kv(1000, 2, 32, 4);
  auto c = kivi_cache::create(config(1024));  // pages of 8 KB: 256 to a slab
  REQUIRE(c.ok());
  const kv::sequence_id s = c->add_sequence();
  append_all(*c, s, a, 0, 1000);
  CHECK(c->pages_in_use() == 16);
  CHECK(c->pool_bytes() == (QCODEC_KV_PAGE_SLABS ? 256 : 16) * c->page_bytes());
  const kv::sequence_id t = c->add_sequence();  // the slab's next pages
  append_all(*c, t, a, 0, 1000);
  for (std::size_t l = 0; l < 2; ++l) CHECK(attend(*c, s, l) == attend(*c, t, l));
}
