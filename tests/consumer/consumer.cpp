// A consumer program: includes qcodec like an engine would and uses the dispatched kernels.
#include <qcodec/qcodec.hpp>

#include <cstdio>

int main() {
  const float x[5] = {1.0f, -4.0f, 2.5f, 0.0f, 3.0f};
  const auto& k = qcodec::simd::kernels();
  const float m = k.reductions.absmax(x, 5);
  std::printf("qcodec %s, kernels for %s, absmax = %g\n", QCODEC_VERSION_STRING, k.arch, m);
  return m == 4.0f ? 0 : 1;
}
