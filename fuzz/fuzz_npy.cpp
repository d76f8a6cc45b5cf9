// libFuzzer target: .npy parsing of untrusted bytes. Any input must give an array whose element
// count matches its shape, or an error; never a crash, leak or undefined behaviour.
#include <qcodec/io/npy.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto array = qcodec::io::parse_npy({data, size});
  if (array.ok()) {
    std::size_t count = 1;
    for (std::size_t d : array->shape) count *= d;
    if (count != array->size()) std::abort();
  }
  return 0;
}
