#pragma once
// A Llama-architecture model in llama2.c's legacy `.bin` checkpoint format.
//
// File layout (all little-endian):
//   header   seven int32: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
//            max_seq_len. A negative vocab_size means the output classifier is a separate
//            matrix stored at the end; a positive one means it is tied to the token embedding.
//   weights  float32 arrays, row-major "out x in" matrices (y = W x), in this order:
//              token_embedding [vocab][dim]
//              rms_att         [layers][dim]
//              wq              [layers][n_heads * head_dim][dim]
//              wk, wv          [layers][n_kv_heads * head_dim][dim]
//              wo              [layers][dim][n_heads * head_dim]
//              rms_ffn         [layers][dim]
//              w1, w3          [layers][hidden][dim]    (gate and up projections)
//              w2              [layers][dim][hidden]    (down projection)
//              rms_final       [dim]
//              two legacy RoPE tables of max_seq_len * head_dim / 2 floats each (skipped: the
//              engine computes RoPE itself)
//              wcls            [vocab][dim]             (only when not tied)
//
// The file is untrusted input: every count is checked against the file size before anything
// is read, and a malformed file gives a status naming the problem, never a crash.

#include <qcodec/core/result.hpp>
#include <qcodec/core/status.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace llama {

static_assert(std::endian::native == std::endian::little,
              "the llama2.c formats are little-endian; this loader reads them in place");

namespace errors {
inline constexpr qcodec::error_id cannot_read{qcodec::errc::io_error, "llama.1",
                                              "cannot read file"};
inline constexpr qcodec::error_id bad_model{qcodec::errc::corrupt_data, "llama.2",
                                            "malformed llama2.c model file"};
inline constexpr qcodec::error_id bad_tokenizer{qcodec::errc::corrupt_data, "llama.3",
                                                "malformed llama2.c tokenizer file"};
inline constexpr qcodec::error_id bad_token{qcodec::errc::out_of_range, "llama.4",
                                            "token id out of range"};
inline constexpr qcodec::error_id too_long{qcodec::errc::out_of_range, "llama.5",
                                           "position beyond the model's max_seq_len"};
inline constexpr qcodec::error_id cache_mismatch{qcodec::errc::invalid_argument, "llama.7",
                                                 "the KV cache's shape is not the model's"};
inline constexpr qcodec::error_id too_short{qcodec::errc::invalid_argument, "llama.6",
                                            "text too short to evaluate"};
inline constexpr qcodec::error_id step_interrupted{
    qcodec::errc::invalid_argument, "llama.8",
    "an earlier step failed after appending to the cache: reset() first"};
}  // namespace errors

/// The whole contents of a file, or why it could not be read.
inline qcodec::result<std::vector<char>> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return qcodec::status::failure(errors::cannot_read, path);
  const std::streamoff size = in.tellg();
  if (size < 0) return qcodec::status::failure(errors::cannot_read, path);
  std::vector<char> bytes(static_cast<std::size_t>(size));
  in.seekg(0);
  if (!in.read(bytes.data(), size)) return qcodec::status::failure(errors::cannot_read, path);
  return bytes;
}

struct config {
  std::size_t dim = 0;         ///< residual stream width
  std::size_t hidden_dim = 0;  ///< SwiGLU hidden width
  std::size_t n_layers = 0;
  std::size_t n_heads = 0;     ///< query heads
  std::size_t n_kv_heads = 0;  ///< key/value heads (GQA: n_heads is a multiple)
  std::size_t vocab_size = 0;
  std::size_t max_seq_len = 0;
  bool shared_classifier = true;  ///< output classifier tied to the token embedding
  float norm_eps = 1e-5f;         ///< RMSNorm epsilon (llama2.c's constant)
  float rope_theta = 10000.0f;    ///< RoPE base (llama2.c's constant)

  [[nodiscard]] std::size_t head_dim() const noexcept { return dim / n_heads; }
  [[nodiscard]] std::size_t kv_dim() const noexcept { return n_kv_heads * head_dim(); }
};

/// Weights of one transformer block; pointers into model::storage_.
struct layer_weights {
  const float* rms_att;  ///< [dim]
  const float* wq;       ///< [n_heads * head_dim][dim]
  const float* wk;       ///< [kv_dim][dim]
  const float* wv;       ///< [kv_dim][dim]
  const float* wo;       ///< [dim][n_heads * head_dim]
  const float* rms_ffn;  ///< [dim]
  const float* w1;       ///< [hidden][dim]
  const float* w2;       ///< [dim][hidden]
  const float* w3;       ///< [hidden][dim]
};

class model {
 public:
  /// Loads and validates a llama2.c legacy `.bin` checkpoint.
  static qcodec::result<model> load(const std::string& path) {
    qcodec::result<std::vector<char>> bytes = read_file(path);
    if (!bytes) return bytes.error();
    return parse(*bytes, path);
  }

  /// Parses a checkpoint already in memory (`name` is only used in error messages).
  static qcodec::result<model> parse(const std::vector<char>& bytes, const std::string& name) {
    const auto fail = [&](const std::string& why) {
      return qcodec::status::failure(errors::bad_model, name + ": " + why);
    };
    constexpr std::size_t header_bytes = 7 * sizeof(std::int32_t);
    if (bytes.size() < header_bytes) return fail("shorter than the 28-byte header");
    std::int32_t h[7];
    std::memcpy(h, bytes.data(), header_bytes);

    // Each dimension must be positive and at most 2^20, so that no array size below (a
    // product of at most three dimensions, < 2^60) nor their sum (13 arrays) overflows.
    constexpr std::int64_t limit = std::int64_t{1} << 20;
    const char* names[7] = {"dim",        "hidden_dim", "n_layers",   "n_heads",
                            "n_kv_heads", "vocab_size", "max_seq_len"};
    std::size_t v[7];
    for (int i = 0; i < 7; ++i) {
      std::int64_t x = h[i];
      if (i == 5) x = x < 0 ? -x : x;  // the sign of vocab_size is the "not tied" flag
      if (x <= 0 || x > limit) {
        return fail(std::string("header field ") + names[i] + " = " + std::to_string(h[i]) +
                    " is out of range");
      }
      v[i] = static_cast<std::size_t>(x);
    }
    config c;
    c.dim = v[0];
    c.hidden_dim = v[1];
    c.n_layers = v[2];
    c.n_heads = v[3];
    c.n_kv_heads = v[4];
    c.vocab_size = v[5];
    c.max_seq_len = v[6];
    c.shared_classifier = h[5] > 0;
    if (c.dim % c.n_heads != 0) return fail("dim is not a multiple of n_heads");
    if (c.n_heads % c.n_kv_heads != 0) return fail("n_heads is not a multiple of n_kv_heads");
    if (c.head_dim() % 2 != 0) return fail("head_dim is odd (RoPE rotates pairs)");

    // Float counts of every array, in file order; the total must match the file exactly.
    const std::size_t d = c.dim, L = c.n_layers, hid = c.hidden_dim, kv = c.kv_dim();
    const std::size_t q_dim = c.n_heads * c.head_dim();
    const std::size_t rope_tables = c.max_seq_len * c.head_dim();  // two tables of half that
    const std::size_t counts[] = {
        c.vocab_size * d,                            // token_embedding
        L * d,                                       // rms_att
        L * q_dim * d,                               // wq
        L * kv * d,                                  // wk
        L * kv * d,                                  // wv
        L * d * q_dim,                               // wo
        L * d,                                       // rms_ffn
        L * hid * d,                                 // w1
        L * d * hid,                                 // w2
        L * hid * d,                                 // w3
        d,                                           // rms_final
        rope_tables,                                 // legacy freq_cis_real + freq_cis_imag
        c.shared_classifier ? 0 : c.vocab_size * d,  // wcls
    };
    std::size_t floats = 0;
    for (std::size_t n : counts) floats += n;
    const std::size_t file_floats = (bytes.size() - header_bytes) / sizeof(float);
    if (floats != file_floats || (bytes.size() - header_bytes) % sizeof(float) != 0) {
      return fail("the header describes " + std::to_string(floats) +
                  " float32 weights, but the file holds " + std::to_string(file_floats) +
                  " after its header (" + std::to_string(bytes.size()) + " bytes)");
    }

    model m;
    m.config_ = c;
    m.storage_.resize(floats);
    std::memcpy(m.storage_.data(), bytes.data() + header_bytes, floats * sizeof(float));
    const float* p = m.storage_.data();
    const auto take = [&p](std::size_t n) {
      const float* start = p;
      p += n;
      return start;
    };
    m.token_embedding_ = take(counts[0]);
    const float* rms_att = take(counts[1]);
    const float* wq = take(counts[2]);
    const float* wk = take(counts[3]);
    const float* wv = take(counts[4]);
    const float* wo = take(counts[5]);
    const float* rms_ffn = take(counts[6]);
    const float* w1 = take(counts[7]);
    const float* w2 = take(counts[8]);
    const float* w3 = take(counts[9]);
    m.rms_final_ = take(counts[10]);
    take(counts[11]);
    m.classifier_ = c.shared_classifier ? m.token_embedding_ : take(counts[12]);
    for (std::size_t l = 0; l < L; ++l) {
      m.layers_.push_back({rms_att + l * d, wq + l * q_dim * d, wk + l * kv * d, wv + l * kv * d,
                           wo + l * d * q_dim, rms_ffn + l * d, w1 + l * hid * d, w2 + l * d * hid,
                           w3 + l * hid * d});
    }
    return m;
  }

  [[nodiscard]] const config& cfg() const noexcept { return config_; }
  [[nodiscard]] const layer_weights& layer(std::size_t l) const noexcept { return layers_[l]; }
  /// [vocab][dim]
  [[nodiscard]] const float* token_embedding() const noexcept { return token_embedding_; }
  /// [dim]
  [[nodiscard]] const float* rms_final() const noexcept { return rms_final_; }
  /// [vocab][dim]; the token embedding itself when tied.
  [[nodiscard]] const float* classifier() const noexcept { return classifier_; }

  // The layer table points into storage_; a vector's buffer survives a move, not a copy.
  model(model&&) noexcept = default;
  model& operator=(model&&) noexcept = default;
  model(const model&) = delete;
  model& operator=(const model&) = delete;

 private:
  model() = default;

  config config_;
  std::vector<float> storage_;  // every array of the file after the header, in file order
  std::vector<layer_weights> layers_;
  const float* token_embedding_ = nullptr;
  const float* rms_final_ = nullptr;
  const float* classifier_ = nullptr;
};

}  // namespace llama
