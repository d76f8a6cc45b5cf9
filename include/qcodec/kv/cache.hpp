#pragma once
// kv::cache<KeyCodec, ValueCodec>: a compressed, paged KV cache for several sequences.
//
// Per sequence, layer and KV head, the token axis is split into three parts:
//
//   [0, S)            attention sinks: the first S tokens, kept exact (they draw a large share
//                     of attention and are few);
//   [S, S + Nq)       compressed: units of the codec's group_tokens tokens (1 for per-token
//                     codecs, G for KIVI's per-channel keys) stored in pages;
//   [S + Nq, length)  the residual window, kept exact: tokens wait here until a whole unit can be
//                     compressed, and the most recent R tokens always stay (KIVI keeps recent
//                     tokens exact, where attention is sharpest). A unit is compressed as soon
//                     as R + group_tokens tokens wait.
//
// "Exact" tokens are stored in fp32 or, with cache_config::exact_format = f16, rounded to fp16
// (what engines that keep an fp16 cache hold anyway; half the bytes, which at small head_dim
// and short contexts is a large share of the total). fp16 is for keys and values within fp16's
// range: IEEE rounding turns magnitudes of 65520 and above into infinities (not clamped, as an
// fp16 engine cache would hold them), which attention turns into inf or NaN outputs.
//
// Keys and values have their own codec and so their own Nq. Pages hold page_tokens compressed
// tokens of every layer and head, keys and values (page i covers compressed tokens
// [i * page_tokens, (i + 1) * page_tokens)); a sequence owns a page table. Pages are
// reference-counted: fork() shares a sequence's pages with a new one and copies a page only when
// one of the sharers writes to it, as paged-attention engines do for beam search and prefix
// sharing; free_sequence() returns pages to the pool for reuse. The pool takes its memory from
// the system in slabs of pages on huge pages once it can grow past 2 MB (page_memory.hpp).
//
// Input layout: append() takes the new tokens' keys and values as [token][kv_head][head_dim]
// float arrays (what an engine's K/V projection produces for one layer). Appends to one cache
// are not thread-safe; attention (kv/attention.hpp) on a cache that is not being appended to is.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/result.hpp>
#include <qcodec/core/status.hpp>
#include <qcodec/kv/exact_rows.hpp>
#include <qcodec/kv/page_memory.hpp>
#include <qcodec/kv/rope.hpp>
#include <qcodec/kv/stream_codec.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace qcodec::kv {

namespace errors {
inline constexpr error_id bad_config{errc::invalid_argument, "qcodec.kv.1",
                                     "invalid KV cache configuration"};
inline constexpr error_id bad_sequence{errc::invalid_argument, "qcodec.kv.2", "no such sequence"};
inline constexpr error_id bad_layer{errc::out_of_range, "qcodec.kv.3", "layer out of range"};
inline constexpr error_id out_of_pages{errc::out_of_range, "qcodec.kv.4",
                                       "the KV cache is full (no free page)"};
inline constexpr error_id bad_head{errc::out_of_range, "qcodec.kv.5", "head out of range"};
inline constexpr error_id too_long{errc::out_of_range, "qcodec.kv.6",
                                   "sequence longer than the cache capacity"};
inline constexpr error_id bad_query{errc::invalid_argument, "qcodec.kv.7",
                                    "invalid attention query"};
}  // namespace errors

struct cache_config {
  std::size_t layers = 1;
  std::size_t kv_heads = 1;
  std::size_t head_dim = 128;
  /// Compressed tokens per page; a multiple of both codecs' group_tokens.
  std::size_t page_tokens = 256;
  /// Pool capacity in pages (pages are allocated on first use, up to this many).
  std::size_t max_pages = 1024;
  /// Longest sequence accepted (tokens).
  std::size_t max_tokens = 1u << 20;
  /// First tokens kept exact (attention sinks).
  std::size_t sink_tokens = 0;
  /// Most recent tokens kept exact (KIVI's residual length R).
  std::size_t residual_tokens = 0;
  /// How sink and residual tokens are stored (f16: rounded to fp16 when appended).
  float_format exact_format = float_format::f32;
  /// Whether keys arrive before RoPE (then attention applies it, kv/rope.hpp), and how.
  rope_config rope = {};
};

using sequence_id = std::uint32_t;
using page_id = std::uint32_t;

template <StreamCodec KeyCodec, StreamCodec ValueCodec>
class cache {
 public:
  using key_codec = KeyCodec;
  using value_codec = ValueCodec;

  /// A cache with codecs built from the head dimension, or why the configuration is invalid.
  [[nodiscard]] static result<cache> create(
      const cache_config& config) requires std::constructible_from<KeyCodec, std::size_t> &&
      std::constructible_from<ValueCodec, std::size_t> {
    if (status s = validate(config); !s) return s;  // (before the codecs assert on head_dim)
    return create(config, KeyCodec(config.head_dim), ValueCodec(config.head_dim));
  }
  /// A cache with given codec objects (e.g. rotated codecs with a chosen seed).
  [[nodiscard]] static result<cache> create(const cache_config& config, KeyCodec keys,
                                            ValueCodec values) {
    return create(config, std::vector<KeyCodec>{std::move(keys)},
                  std::vector<ValueCodec>{std::move(values)});
  }
  /// A cache with one codec per stream, [layer][kv_head] (codecs calibrated per head, such as
  /// channel_codebook), or one codec shared by every stream. Units of every stream of a
  /// codec type must have the same size.
  [[nodiscard]] static result<cache> create(const cache_config& config, std::vector<KeyCodec> keys,
                                            std::vector<ValueCodec> values) {
    if (status s = validate(config); !s) return s;
    const std::size_t streams = config.layers * config.kv_heads;  // (validate: no wrap)
    if ((keys.size() != 1 && keys.size() != streams) ||
        (values.size() != 1 && values.size() != streams)) {
      return status::failure(errors::bad_config, "give one codec, or one per layer and KV head (" +
                                                     std::to_string(streams) + ")");
    }
    for (const KeyCodec& k : keys) {
      if (k.head_dim() != config.head_dim || k.unit_bytes() != keys[0].unit_bytes()) {
        return status::failure(errors::bad_config, "key codecs differ from the cache's shape");
      }
    }
    for (const ValueCodec& v : values) {
      if (v.head_dim() != config.head_dim || v.unit_bytes() != values[0].unit_bytes()) {
        return status::failure(errors::bad_config, "value codecs differ from the cache's shape");
      }
    }
    const result<page_layout> layout =
        layout_of(config, keys[0].unit_bytes(), values[0].unit_bytes());
    if (!layout) return layout.error();
    return cache(config, *layout, std::move(keys), std::move(values));
  }

  [[nodiscard]] const cache_config& config() const noexcept { return config_; }
  /// The codecs of the key and value streams of (layer, head).
  [[nodiscard]] const KeyCodec& keys(std::size_t layer = 0, std::size_t head = 0) const noexcept {
    return key_codecs_.size() == 1 ? key_codecs_[0] : key_codecs_[layer * config_.kv_heads + head];
  }
  [[nodiscard]] const ValueCodec& values(std::size_t layer = 0,
                                         std::size_t head = 0) const noexcept {
    return value_codecs_.size() == 1 ? value_codecs_[0]
                                     : value_codecs_[layer * config_.kv_heads + head];
  }

  // ---- sequences -------------------------------------------------------------------------

  /// A new, empty sequence.
  [[nodiscard]] sequence_id add_sequence() {
    for (sequence_id i = 0; i < sequences_.size(); ++i) {
      if (!sequences_[i].live) {
        sequences_[i] = make_sequence();
        return i;
      }
    }
    sequences_.push_back(make_sequence());
    return static_cast<sequence_id>(sequences_.size() - 1);
  }

  /// A new sequence with the same contents as `source`, sharing its pages (copy on write).
  [[nodiscard]] result<sequence_id> fork(sequence_id source) {
    if (!valid(source)) return status::failure(errors::bad_sequence, std::to_string(source));
    const sequence_id id = add_sequence();
    sequences_[id] = sequences_[source];
    for (page_id p : sequences_[id].pages) ++pool_.refs[p];
    return id;
  }

  /// Drops a sequence and returns its pages to the pool once no other sequence shares them.
  status free_sequence(sequence_id s) {
    if (!valid(s)) return status::failure(errors::bad_sequence, std::to_string(s));
    for (page_id p : sequences_[s].pages) release(p);
    sequences_[s] = sequence{};
    return {};
  }

  /// Empties a sequence (keeps its id).
  status clear(sequence_id s) {
    if (!valid(s)) return status::failure(errors::bad_sequence, std::to_string(s));
    for (page_id p : sequences_[s].pages) release(p);
    sequences_[s] = make_sequence();
    return {};
  }

  /// Whether sequence s exists (added and not freed).
  [[nodiscard]] bool contains(sequence_id s) const noexcept { return valid(s); }

  /// Tokens stored for `layer` of sequence s.
  [[nodiscard]] std::size_t length(sequence_id s, std::size_t layer) const noexcept {
    return valid(s) && layer < config_.layers ? sequences_[s].layers[layer].length : 0;
  }

  // ---- appending -------------------------------------------------------------------------

  /// Appends n tokens to `layer` of sequence s. keys and values: [n][kv_heads][head_dim].
  /// All or nothing: when the pool cannot give the pages the tokens need (out_of_pages),
  /// nothing is stored.
  status append(sequence_id s, std::size_t layer, const float* keys, const float* values,
                std::size_t n) {
    if (!valid(s)) return status::failure(errors::bad_sequence, std::to_string(s));
    if (layer >= config_.layers) return status::failure(errors::bad_layer, std::to_string(layer));
    layer_state& ls = sequences_[s].layers[layer];
    if (ls.length + n > config_.max_tokens) {
      return status::failure(errors::too_long, std::to_string(ls.length + n) + " tokens");
    }
    if (status st = reserve_pages(sequences_[s], ls, n); !st) return st;
    const std::size_t row = row_floats();
    for (std::size_t i = 0; i < n; ++i) {
      const bool sink = ls.length < config_.sink_tokens;
      store_exact(sink ? ls.key_sinks : ls.key_tail, keys + i * row, row);
      store_exact(sink ? ls.value_sinks : ls.value_tail, values + i * row, row);
      ++ls.length;
      if (status st = compress_ready(s, layer, stream::key); !st) return st;
      if (status st = compress_ready(s, layer, stream::value); !st) return st;
    }
    return {};
  }

  // ---- reading (attention and the reference path) -----------------------------------------

  /// Where the tokens of one stream (keys or values) of a layer live.
  struct stream_view {
    std::size_t sinks;              ///< tokens [0, sinks) in sink_data
    std::size_t compressed;         ///< tokens [sinks, sinks + compressed) in units
    std::size_t tail;               ///< tokens [sinks + compressed, ...) in tail_data
    const std::uint8_t* sink_data;  ///< [sinks][kv_heads][head_dim] in config().exact_format
    const std::uint8_t* tail_data;  ///< [tail][kv_heads][head_dim] in config().exact_format
  };
  [[nodiscard]] stream_view key_stream(sequence_id s, std::size_t layer) const noexcept {
    const layer_state& ls = sequences_[s].layers[layer];
    return {ls.key_sinks.size() / row_bytes(), ls.key_compressed, ls.key_tail.size() / row_bytes(),
            ls.key_sinks.data(), ls.key_tail.data()};
  }
  [[nodiscard]] stream_view value_stream(sequence_id s, std::size_t layer) const noexcept {
    const layer_state& ls = sequences_[s].layers[layer];
    return {ls.value_sinks.size() / row_bytes(), ls.value_compressed,
            ls.value_tail.size() / row_bytes(), ls.value_sinks.data(), ls.value_tail.data()};
  }
  /// Converts n exact values (sink_data or tail_data of a stream_view) to floats.
  void load_exact(const std::uint8_t* src, std::size_t n, float* dst) const noexcept {
    load_floats(config_.exact_format, src, n, dst);
  }

  /// The key unit holding compressed token j (a multiple of the key group) of a head.
  [[nodiscard]] const std::uint8_t* key_unit(sequence_id s, std::size_t layer, std::size_t head,
                                             std::size_t j) const noexcept {
    return unit_address(sequences_[s], layer, head, stream::key, j);
  }
  [[nodiscard]] const std::uint8_t* value_unit(sequence_id s, std::size_t layer, std::size_t head,
                                               std::size_t j) const noexcept {
    return unit_address(sequences_[s], layer, head, stream::value, j);
  }

  /// Decodes every key and value of a layer of sequence s into [kv_heads][length][head_dim]
  /// arrays (the reference path: attention never needs this). Keys are as appended: before
  /// RoPE when config().rope.pre_rope.
  void decode_layer(sequence_id s, std::size_t layer, float* keys_out, float* values_out) const {
    decode_stream(s, layer, stream::key, keys_out);
    decode_stream(s, layer, stream::value, values_out);
  }

  // ---- memory accounting -------------------------------------------------------------------

  /// Bytes of one page (all layers and heads, keys and values).
  [[nodiscard]] std::size_t page_bytes() const noexcept { return layout_.page_bytes; }
  /// Pages allocated from the system so far (in use or free for reuse).
  [[nodiscard]] std::size_t pages_allocated() const noexcept { return pool_.pages.size(); }
  /// Pages referenced by at least one sequence.
  [[nodiscard]] std::size_t pages_in_use() const noexcept {
    return pool_.pages.size() - pool_.free.size();
  }
  /// Bytes the pool holds from the system: its pages, and those of its last slab not handed out
  /// yet (pools that can grow past 2 MB take pages in slabs of 2 MB and more: page_memory.hpp).
  [[nodiscard]] std::size_t pool_bytes() const noexcept { return pool_.memory.bytes(); }
  /// Bytes that store sequence s: its pages (shared pages counted in full), its exact sink and
  /// residual tokens, and its page table.
  [[nodiscard]] std::size_t sequence_bytes(sequence_id s) const noexcept {
    if (!valid(s)) return 0;
    const sequence& seq = sequences_[s];
    std::size_t bytes = seq.pages.size() * (layout_.page_bytes + sizeof(page_id));
    for (const layer_state& ls : seq.layers) {
      bytes +=
          ls.key_sinks.size() + ls.value_sinks.size() + ls.key_tail.size() + ls.value_tail.size();
    }
    return bytes;
  }
  /// Bits per stored value of sequence s, everything counted (sequence_bytes over the
  /// 2 * layers * kv_heads * head_dim * length values it holds). Unused space in the last page
  /// counts too, so short sequences pay for their partial page.
  [[nodiscard]] double bits_per_value(sequence_id s) const noexcept {
    std::size_t values = 0;
    for (std::size_t l = 0; l < config_.layers; ++l) values += 2 * length(s, l) * row_floats();
    return values == 0 ? 0.0
                       : 8.0 * static_cast<double>(sequence_bytes(s)) / static_cast<double>(values);
  }
  /// Bits per value of the compressed part alone, per codec: unit bytes over unit values.
  [[nodiscard]] double codec_bits_per_value() const noexcept {
    const double k = 8.0 * static_cast<double>(keys().unit_bytes()) /
                     static_cast<double>(KeyCodec::group_tokens * config_.head_dim);
    const double v = 8.0 * static_cast<double>(values().unit_bytes()) /
                     static_cast<double>(ValueCodec::group_tokens * config_.head_dim);
    return (k + v) / 2.0;
  }

 private:
  enum class stream { key, value };

  struct layer_state {
    std::size_t length = 0;
    std::size_t key_compressed = 0, value_compressed = 0;
    // Exact tokens, [token][kv_head][head_dim] in config_.exact_format.
    exact_rows key_sinks, value_sinks;
    exact_rows key_tail, value_tail;
  };
  struct sequence {
    bool live = false;
    std::vector<page_id> pages;
    std::vector<layer_state> layers;
  };
  // Byte offsets inside a page: for each layer and head, the key units then the value units.
  struct page_layout {
    std::size_t key_units = 0, value_units = 0;  // units per page per head
    std::size_t head_bytes = 0;                  // one head's keys + values
    std::size_t key_region = 0;                  // bytes of one head's keys
    std::size_t page_bytes = 0;
  };
  struct page_pool {
    // Owns the pages (page_memory.hpp: slabs on huge pages); sized in the constructor.
    detail::page_memory memory{1, 0};
    std::vector<std::uint8_t*> pages;
    std::vector<std::uint32_t> refs;
    std::vector<page_id> free;
  };

  cache(const cache_config& config, const page_layout& layout, std::vector<KeyCodec> keys,
        std::vector<ValueCodec> values)
      : config_(config),
        key_codecs_(std::move(keys)),
        value_codecs_(std::move(values)),
        layout_(layout) {
    pool_.memory = detail::page_memory(layout_.page_bytes, config.max_pages);
  }

  // The layout of a page, or bad_config when a page would pass PTRDIFF_MAX / 2 bytes (half, so
  // that sums of two such sizes, a head's two regions or page_memory's rounding up to 2 MB,
  // cannot wrap either): page_tokens, layers and kv_heads are not otherwise bounded, and a
  // product that wrapped would make small pages that encoders write past.
  static result<page_layout> layout_of(const cache_config& c, std::size_t key_unit_bytes,
                                       std::size_t value_unit_bytes) {
    constexpr std::size_t limit = std::numeric_limits<std::ptrdiff_t>::max() / 2;
    const auto fits = [](std::size_t a, std::size_t b) { return b == 0 || a <= limit / b; };
    page_layout l;
    l.key_units = c.page_tokens / KeyCodec::group_tokens;
    l.value_units = c.page_tokens / ValueCodec::group_tokens;
    const std::size_t streams = c.layers * c.kv_heads;  // (validate: no wrap)
    if (fits(l.key_units, key_unit_bytes) && fits(l.value_units, value_unit_bytes)) {
      l.key_region = l.key_units * key_unit_bytes;
      l.head_bytes = l.key_region + l.value_units * value_unit_bytes;  // (<= 2 * limit)
      if (fits(streams, l.head_bytes)) {
        l.page_bytes = streams * l.head_bytes;
        return l;
      }
    }
    return status::failure(errors::bad_config, "pages of " + std::to_string(c.page_tokens) +
                                                   " tokens are too large to address");
  }

  static status validate(const cache_config& c) {
    if (c.layers == 0 || c.kv_heads == 0 || c.head_dim == 0) {
      return status::failure(errors::bad_config, "layers, kv_heads and head_dim must be positive");
    }
    if (c.kv_heads > std::numeric_limits<std::size_t>::max() / c.layers) {
      return status::failure(errors::bad_config, "layers * kv_heads overflows");
    }
    if (c.max_pages > std::size_t{std::numeric_limits<page_id>::max()} + 1) {
      return status::failure(errors::bad_config, "max_pages beyond 32-bit page ids");
    }
    if (c.rope.pre_rope && (c.head_dim % 2 != 0 || !(c.rope.theta > 1.0f))) {
      return status::failure(errors::bad_config, "RoPE needs an even head_dim and theta > 1");
    }
    constexpr bool power_of_two_only = requires { KeyCodec::needs_power_of_two_head_dim; }
    || requires { ValueCodec::needs_power_of_two_head_dim; };
    if (power_of_two_only && (c.head_dim & (c.head_dim - 1)) != 0) {
      return status::failure(
          errors::bad_config,
          "rotated codecs need a power-of-two head_dim, got " + std::to_string(c.head_dim));
    }
    // Codec constructors only assert this (in debug builds); their kernels index stack
    // buffers of max_head_dim floats, so a larger head must be refused here.
    constexpr std::size_t max_dim =
        std::min(detail::max_head_dim_of<KeyCodec>(), detail::max_head_dim_of<ValueCodec>());
    if (c.head_dim > max_dim) {
      return status::failure(errors::bad_config,
                             "these codecs take head_dim <= " + std::to_string(max_dim) + ", got " +
                                 std::to_string(c.head_dim));
    }
    // Units holding groups of channels (token_blocks) would be written past their end.
    constexpr std::size_t key_multiple = detail::head_dim_multiple_of<KeyCodec>(),
                          value_multiple = detail::head_dim_multiple_of<ValueCodec>();
    if (c.head_dim % key_multiple != 0 || c.head_dim % value_multiple != 0) {
      return status::failure(errors::bad_config,
                             "these codecs take head_dim a multiple of " +
                                 std::to_string(std::max(key_multiple, value_multiple)) + ", got " +
                                 std::to_string(c.head_dim));
    }
    if (c.page_tokens == 0 || c.page_tokens % KeyCodec::group_tokens != 0 ||
        c.page_tokens % ValueCodec::group_tokens != 0) {
      return status::failure(errors::bad_config,
                             "page_tokens must be a multiple of both codecs' group sizes (" +
                                 std::to_string(KeyCodec::group_tokens) + ", " +
                                 std::to_string(ValueCodec::group_tokens) + ")");
    }
    return {};
  }

  [[nodiscard]] bool valid(sequence_id s) const noexcept {
    return s < sequences_.size() && sequences_[s].live;
  }

  // Fails with out_of_pages when appending n tokens to a layer would need more pages (new
  // ones, or copies of shared ones) than the pool can still give, and otherwise takes the new
  // ones from the system now, so that the append cannot fail part-way (when the system refuses
  // one, those taken before it stay in the pool, free); the units compressed after the append
  // are those of the final tail lengths (compress_ready keeps tail < R + group).
  status reserve_pages(const sequence& seq, const layer_state& ls, std::size_t n) {
    const std::size_t sinks_left =
        ls.length < config_.sink_tokens ? config_.sink_tokens - ls.length : 0;
    const std::size_t to_tail = n - std::min(n, sinks_left);
    std::size_t begin = static_cast<std::size_t>(-1), end = 0;  // compressed tokens written
    const auto written = [&](std::size_t unit_tokens, std::size_t compressed, std::size_t tail) {
      const std::size_t after = tail + to_tail;
      if (!unit_waits(after, unit_tokens)) return;
      begin = std::min(begin, compressed);
      end =
          std::max(end, compressed + (after - config_.residual_tokens) / unit_tokens * unit_tokens);
    };
    written(KeyCodec::group_tokens, ls.key_compressed, ls.key_tail.size() / row_bytes());
    written(ValueCodec::group_tokens, ls.value_compressed, ls.value_tail.size() / row_bytes());
    if (end == 0) return {};
    std::size_t needed = 0;
    for (std::size_t p = begin / config_.page_tokens; p <= (end - 1) / config_.page_tokens; ++p) {
      if (p >= seq.pages.size() || pool_.refs[seq.pages[p]] > 1) ++needed;
    }
    const std::size_t available =
        pool_.free.size() + (config_.max_pages - std::min(config_.max_pages, pool_.pages.size()));
    if (needed > available) {
      return status::failure(errors::out_of_pages, std::to_string(config_.max_pages) + " pages");
    }
    const std::size_t had = pool_.free.size();
    while (pool_.free.size() < needed) {
      if (status st = grow_pool(); !st) return st;
    }
    // The free list is taken from its back: the new pages in the order of memory (lowest first),
    // as they were handed out before they were reserved.
    std::reverse(pool_.free.begin() + static_cast<std::ptrdiff_t>(had), pool_.free.end());
    return {};
  }
  [[nodiscard]] std::size_t row_floats() const noexcept {
    return config_.kv_heads * config_.head_dim;
  }
  [[nodiscard]] std::size_t row_bytes() const noexcept {
    return row_floats() * float_bytes(config_.exact_format);
  }
  void store_exact(exact_rows& store, const float* x, std::size_t n) const {
    store.push(config_.exact_format, x, n);
  }
  [[nodiscard]] sequence make_sequence() const {
    sequence seq;
    seq.live = true;
    seq.layers.resize(config_.layers);
    return seq;
  }

  [[nodiscard]] std::size_t unit_offset(std::size_t layer, std::size_t head, stream which,
                                        std::size_t j) const noexcept {
    const std::size_t in_page = j % config_.page_tokens;
    const std::size_t base = (layer * config_.kv_heads + head) * layout_.head_bytes;
    return which == stream::key ? base + (in_page / KeyCodec::group_tokens) * keys().unit_bytes()
                                : base + layout_.key_region +
                                      (in_page / ValueCodec::group_tokens) * values().unit_bytes();
  }
  [[nodiscard]] const std::uint8_t* unit_address(const sequence& seq, std::size_t layer,
                                                 std::size_t head, stream which,
                                                 std::size_t j) const noexcept {
    return pool_.pages[seq.pages[j / config_.page_tokens]] + unit_offset(layer, head, which, j);
  }

  // A writable page for compressed token j of sequence s: allocated on first use, copied first
  // if another sequence shares it.
  result<std::uint8_t*> writable_page(sequence& seq, std::size_t j) {
    const std::size_t index = j / config_.page_tokens;
    while (seq.pages.size() <= index) {
      result<page_id> p = allocate();
      if (!p) return p.error();
      seq.pages.push_back(*p);
    }
    page_id& p = seq.pages[index];
    if (pool_.refs[p] > 1) {
      result<page_id> copy = allocate();
      if (!copy) return copy.error();
      std::memcpy(pool_.pages[*copy], pool_.pages[p], layout_.page_bytes);
      release(p);
      p = *copy;
    }
    return pool_.pages[p];
  }

  result<page_id> allocate() {
    if (pool_.free.empty()) {
      if (pool_.pages.size() >= config_.max_pages) {
        return status::failure(errors::out_of_pages, std::to_string(config_.max_pages) + " pages");
      }
      if (status st = grow_pool(); !st) return st;
    }
    const page_id p = pool_.free.back();
    pool_.free.pop_back();
    pool_.refs[p] = 1;
    return p;
  }
  // One more page from the system, onto the free list (the caller checked max_pages).
  status grow_pool() {
    std::uint8_t* page = pool_.memory.allocate();
    if (page == nullptr) {
      return status::failure(errors::out_of_pages,
                             "the system refused " + std::to_string(layout_.page_bytes) + " bytes");
    }
    pool_.pages.push_back(page);
    pool_.refs.push_back(0);
    pool_.free.push_back(static_cast<page_id>(pool_.pages.size() - 1));
    return {};
  }

  void release(page_id p) {
    if (--pool_.refs[p] == 0) pool_.free.push_back(p);
  }

  // Whether `tail` exact tokens hold a unit to compress: R + group of them (written so that
  // an R near SIZE_MAX, "never compress", does not wrap).
  [[nodiscard]] bool unit_waits(std::size_t tail, std::size_t group) const noexcept {
    return tail >= group && tail - group >= config_.residual_tokens;
  }
  // Compresses the oldest tail unit of one stream while R + group_tokens tokens wait.
  status compress_ready(sequence_id s, std::size_t layer, stream which) {
    sequence& seq = sequences_[s];
    layer_state& ls = seq.layers[layer];
    const std::size_t group =
        which == stream::key ? KeyCodec::group_tokens : ValueCodec::group_tokens;
    exact_rows& tail = which == stream::key ? ls.key_tail : ls.value_tail;
    std::size_t& compressed = which == stream::key ? ls.key_compressed : ls.value_compressed;
    const std::size_t d = config_.head_dim, value_bytes = float_bytes(config_.exact_format);
    while (unit_waits(tail.size() / row_bytes(), group)) {
      result<std::uint8_t*> page = writable_page(seq, compressed);
      if (!page) return page.error();
      // Gather each head's group (tail rows are [token][head][dim]) and encode it.
      std::vector<float>& scratch = gather_scratch_;
      scratch.resize(group * d);
      for (std::size_t h = 0; h < config_.kv_heads; ++h) {
        for (std::size_t t = 0; t < group; ++t) {
          load_exact(tail.data() + (t * config_.kv_heads + h) * d * value_bytes, d,
                     &scratch[t * d]);
        }
        std::uint8_t* unit = *page + unit_offset(layer, h, which, compressed);
        if (which == stream::key) {
          keys(layer, h).encode(scratch.data(), unit);
        } else {
          values(layer, h).encode(scratch.data(), unit);
        }
      }
      tail.drop_front(group * row_bytes());
      compressed += group;
    }
    return {};
  }

  void decode_stream(sequence_id s, std::size_t layer, stream which, float* out) const {
    const layer_state& ls = sequences_[s].layers[layer];
    const std::size_t d = config_.head_dim, length = ls.length;
    const stream_view v = which == stream::key ? key_stream(s, layer) : value_stream(s, layer);
    const std::size_t group =
        which == stream::key ? KeyCodec::group_tokens : ValueCodec::group_tokens;
    const std::size_t value_bytes = float_bytes(config_.exact_format);
    for (std::size_t h = 0; h < config_.kv_heads; ++h) {
      float* head_out = out + h * length * d;
      for (std::size_t t = 0; t < v.sinks; ++t) {
        load_exact(v.sink_data + (t * config_.kv_heads + h) * d * value_bytes, d, head_out + t * d);
      }
      for (std::size_t j = 0; j < v.compressed; j += group) {
        const std::uint8_t* unit = unit_address(sequences_[s], layer, h, which, j);
        float* dst = head_out + (v.sinks + j) * d;
        if (which == stream::key) {
          keys(layer, h).decode(unit, dst);
        } else {
          values(layer, h).decode(unit, dst);
        }
      }
      for (std::size_t t = 0; t < v.tail; ++t) {
        load_exact(v.tail_data + (t * config_.kv_heads + h) * d * value_bytes, d,
                   head_out + (v.sinks + v.compressed + t) * d);
      }
    }
  }

  cache_config config_;
  std::vector<KeyCodec> key_codecs_;      // one shared, or [layer][kv_head]
  std::vector<ValueCodec> value_codecs_;  // likewise
  page_layout layout_;
  page_pool pool_;
  std::vector<sequence> sequences_;
  std::vector<float> gather_scratch_;
};

}  // namespace qcodec::kv
