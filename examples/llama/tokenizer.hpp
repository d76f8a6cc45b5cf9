#pragma once
// llama2.c's tokenizer: a sentencepiece BPE vocabulary exported as `tokenizer.bin` / `tok512.bin`.
//
// File layout (little-endian): int32 max_token_length, then for each of the model's vocab_size
// tokens: float32 merge score, int32 byte length, that many bytes of the piece (UTF-8, no
// terminator). Ids 0, 1, 2 are <unk>, <s> (BOS), </s> (EOS); ids 3..258 are the byte-fallback
// pieces "<0x00>".."<0xFF>".
//
// Encoding is sentencepiece's BPE as llama2.c runs it: a dummy space before the text, each UTF-8
// code point mapped to its piece (or to its bytes' fallback pieces when it has none), then
// repeatedly merge the adjacent pair whose concatenation is a piece with the highest score.

#include "model.hpp"

#include <qcodec/core/result.hpp>
#include <qcodec/core/status.hpp>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace llama {

class tokenizer {
 public:
  static constexpr int bos = 1;
  static constexpr int eos = 2;

  /// Loads a llama2.c tokenizer with `vocab_size` entries (the model's vocabulary size).
  static qcodec::result<tokenizer> load(const std::string& path, std::size_t vocab_size) {
    qcodec::result<std::vector<char>> bytes = read_file(path);
    if (!bytes) return bytes.error();
    return parse(*bytes, vocab_size, path);
  }

  static qcodec::result<tokenizer> parse(const std::vector<char>& bytes, std::size_t vocab_size,
                                         const std::string& name) {
    const auto fail = [&](const std::string& why) {
      return qcodec::status::failure(errors::bad_tokenizer, name + ": " + why);
    };
    if (vocab_size < 3) return fail("a vocabulary needs at least <unk>, <s> and </s>");
    std::size_t at = 0;
    const auto read_i32 = [&](std::int32_t& x) {
      if (bytes.size() - at < 4) return false;
      std::memcpy(&x, bytes.data() + at, 4);
      at += 4;
      return true;
    };
    std::int32_t max_length = 0;
    if (!read_i32(max_length)) return fail("shorter than its 4-byte header");
    if (max_length <= 0) return fail("max_token_length " + std::to_string(max_length));

    tokenizer t;
    t.pieces_.reserve(vocab_size);
    t.scores_.reserve(vocab_size);
    for (std::size_t id = 0; id < vocab_size; ++id) {
      const std::string where = "token " + std::to_string(id) + " of " + std::to_string(vocab_size);
      std::int32_t score_bits = 0, length = 0;
      if (!read_i32(score_bits) || !read_i32(length)) {
        return fail("ends at " + where + " (is this the model's tokenizer?)");
      }
      if (length < 0 || length > max_length) {
        return fail(where + " has length " + std::to_string(length));
      }
      const auto n = static_cast<std::size_t>(length);
      if (bytes.size() - at < n) return fail("ends inside " + where);
      float score;
      std::memcpy(&score, &score_bits, sizeof score);
      t.scores_.push_back(score);
      t.pieces_.emplace_back(bytes.data() + at, n);
      at += n;
    }
    if (at != bytes.size()) {
      return fail(std::to_string(bytes.size() - at) + " bytes follow the " +
                  std::to_string(vocab_size) + " tokens the model expects");
    }
    for (std::size_t id = t.pieces_.size(); id-- > 0;) {
      t.ids_[t.pieces_[id]] = static_cast<int>(id);  // the lowest id wins for duplicate pieces
    }
    return t;
  }

  [[nodiscard]] std::size_t vocab_size() const noexcept { return pieces_.size(); }
  [[nodiscard]] const std::string& piece(int id) const {
    return pieces_[static_cast<std::size_t>(id)];
  }

  /// Token ids of `text`, with BOS first and/or EOS last if asked.
  [[nodiscard]] std::vector<int> encode(std::string_view text, bool add_bos, bool add_eos) const {
    std::vector<int> tokens;
    if (add_bos) tokens.push_back(bos);
    // sentencepiece's add_dummy_prefix: the text is encoded as if it began with a space, so the
    // first word gets the same piece it would get in the middle of a sentence.
    if (!text.empty()) {
      if (const int space = lookup(" "); space >= 0) tokens.push_back(space);
    }

    // 1. One token per UTF-8 code point, or one per byte for code points not in the vocabulary.
    for (std::size_t i = 0; i < text.size();) {
      std::size_t n = 1;  // bytes of this code point: a lead byte and up to 3 continuations
      while (n < 4 && i + n < text.size() &&
             (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80) {
        ++n;
      }
      if (const int id = lookup(text.substr(i, n)); id >= 0) {
        tokens.push_back(id);
      } else {
        for (std::size_t b = 0; b < n; ++b) {
          const int id_of_byte = static_cast<unsigned char>(text[i + b]) + 3;  // <0xXX> pieces
          if (static_cast<std::size_t>(id_of_byte) < pieces_.size()) tokens.push_back(id_of_byte);
        }
      }
      i += n;
    }

    // 2. BPE: merge the best-scoring adjacent pair until no pair forms a piece.
    std::string pair;
    for (;;) {
      // (As llama2.c: a pair scoring -1e10 or less, or NaN, is never merged.)
      float best_score = -1e10f;
      int best_id = -1;
      std::size_t best_at = 0;
      for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
        pair = piece(tokens[i]);
        pair += piece(tokens[i + 1]);
        const int id = lookup(pair);
        if (id >= 0 && scores_[static_cast<std::size_t>(id)] > best_score) {
          best_score = scores_[static_cast<std::size_t>(id)];
          best_id = id;
          best_at = i;
        }
      }
      if (best_id < 0) break;
      tokens[best_at] = best_id;
      tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(best_at) + 1);
    }
    if (add_eos) tokens.push_back(eos);
    return tokens;
  }

  /// The text a token contributes after `previous`: byte-fallback pieces become their byte, and
  /// the dummy-prefix space of the first word after BOS is dropped.
  [[nodiscard]] std::string decode(int previous, int token) const {
    std::string_view p = piece(token);
    if (previous == bos && !p.empty() && p.front() == ' ') p.remove_prefix(1);
    unsigned byte = 0;
    if (p.size() == 6 && p.substr(0, 3) == "<0x" && p[5] == '>' && hex(p[3], byte) &&
        hex(p[4], byte)) {
      return std::string(1, static_cast<char>(byte));
    }
    return std::string(p);
  }

  /// Whether a decoded piece is worth printing: lone bytes that are control characters (or
  /// halves of a UTF-8 sequence) are dropped, as llama2.c does.
  [[nodiscard]] static bool printable(const std::string& s) {
    if (s.size() != 1) return !s.empty();
    const auto c = static_cast<unsigned char>(s[0]);
    return std::isprint(c) != 0 || std::isspace(c) != 0;
  }

 private:
  tokenizer() = default;

  [[nodiscard]] int lookup(std::string_view s) const {
    const auto it = ids_.find(std::string(s));
    return it == ids_.end() ? -1 : it->second;
  }
  static bool hex(char c, unsigned& value) {
    unsigned digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<unsigned>(c - 'A' + 10);
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else {
      return false;
    }
    value = value * 16 + digit;
    return true;
  }

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> ids_;
};

}  // namespace llama
