// libFuzzer target: decoding untrusted bytes with every registered codec. The first two bytes
// pick the codec and the shape (rows 0-3 and cols 0, 16, 32, 256 or 4096: empty rows and matrices,
// one block, partial super-blocks, which a codec may refuse); the rest is the stream, decoded
// with the shape it claims (a wrong size must be an error, any bytes of the right size must
// decode without UB).
#include <qcodec/codec/registry.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const auto codecs = qcodec::codec_registry();
  const qcodec::codec_entry& entry = codecs[data[0] % codecs.size()];
  auto codec = qcodec::make_codec(entry.name);
  if (!codec.ok()) return 0;
  constexpr std::size_t widths[] = {0, 16, 32, 256, 4096};
  const std::size_t rows = data[1] % 4;
  const std::size_t cols = widths[data[1] / 4 % 5];
  std::vector<float> y(rows * cols);
  const qcodec::status s = (*codec)->decode({data + 2, size - 2}, {y.data(), rows, cols});
  if (!(*codec)->check_shape(rows, cols).ok()) {
    if (s.ok()) __builtin_trap();  // a shape the codec refuses never decodes
    return 0;
  }
  // Exactly the streams of the right size decode.
  if (s.ok() != (size - 2 == (*codec)->encoded_bytes(rows, cols))) __builtin_trap();
  return 0;
}
