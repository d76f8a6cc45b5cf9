// A consumer program: includes qcodec like an engine would, uses the dispatched kernels and a
// codec chosen by name.
#include <qcodec/qcodec.hpp>

#include <cstdint>
#include <cstdio>
#include <vector>

int main() {
  const float x[5] = {1.0f, -4.0f, 2.5f, 0.0f, 3.0f};
  const auto& k = qcodec::simd::kernels();
  const float m = k.reductions.absmax(x, 5);
  std::printf("qcodec %s, kernels for %s, absmax = %g\n", QCODEC_VERSION_STRING, k.arch, m);

  auto codec = qcodec::make_codec("q8_0");
  if (!codec) return 1;
  std::vector<float> row(64, 0.5f), back(64);
  std::vector<std::uint8_t> bytes((*codec)->encoded_bytes(1, 64));
  (*codec)->encode({row.data(), 1, 64}, bytes);
  if (!(*codec)->decode(bytes, {back.data(), 1, 64})) return 1;
  const float err = back[7] > 0.5f ? back[7] - 0.5f : 0.5f - back[7];
  return m == 4.0f && err < 0.5f / 127 ? 0 : 1;
}
