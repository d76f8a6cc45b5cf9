// libFuzzer target: the llama2.c checkpoint and tokenizer files that qcodec_llama (MODEL.bin
// TOKENIZER.bin), qcodec_demo and qcodec-eval (--model, --tokenizer) read: untrusted input. The
// first byte picks the file, whose contents follow it (a tokenizer's after two more bytes, the
// vocabulary size minus 3, little-endian):
//   even: a checkpoint (llama::model::parse). One that parses must run forward steps on an fp32
//         cache of its shape: logits or an error, never a crash (its weights may be anything,
//         NaN included, so the logits' values are not checked).
//   odd:  a tokenizer (llama::tokenizer::parse). One that parses must encode a text mixing ASCII,
//         multi-byte UTF-8, a control byte and a byte no UTF-8 holds into ids of its
//         vocabulary, and decode each of them.
#include "../examples/llama/engine.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace {

void check_model(const std::vector<char>& bytes) {
  auto model = llama::model::parse(bytes, "fuzz");
  if (!model.ok()) return;
  auto cache = qcodec::kv::make_cache("fp32", llama::cache_config_for(model->cfg()));
  if (!cache.ok()) return;  // (a shape no cache takes is an error too)
  llama::engine e(*model, **cache);
  for (int token = 0; token < 3; ++token) {
    if (!e.forward(token % static_cast<int>(model->cfg().vocab_size)).ok()) return;
  }
}

void check_tokenizer(const std::vector<char>& bytes, std::size_t vocab_size) {
  auto tok = llama::tokenizer::parse(bytes, vocab_size, "fuzz");
  if (!tok.ok()) return;
  constexpr std::string_view text =
      "Once upon a time, \xC3\xA9t\xC3\xA9 \xE6\x97\xA5 \x01\xFF end.";
  const std::vector<int> ids = tok->encode(text, true, true);
  int previous = llama::tokenizer::bos;
  for (const int id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= vocab_size) __builtin_trap();  // not an id
    (void)llama::tokenizer::printable(tok->decode(previous, id));
    previous = id;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const auto file = [&](std::size_t from) {
    return std::vector<char>(reinterpret_cast<const char*>(data) + from,
                             reinterpret_cast<const char*>(data) + size);
  };
  if (data[0] % 2 == 0) {
    check_model(file(1));
  } else {
    check_tokenizer(file(3), 3 + std::size_t{data[1]} + 256 * std::size_t{data[2]});
  }
  return 0;
}
