// The gate of a per-ISA parity binary. Compiled without the ISA's flags, so nothing runs an
// instruction the CPU lacks before we check: a CPU without the ISA makes the binary exit 77,
// which ctest reports as skipped (SKIP_RETURN_CODE).
#include <qcodec/simd/arch.hpp>

#include <cstdio>

int qcodec_test_gate();
int qcodec_test_gate() {
  using arch = qcodec::simd::QCODEC_PARITY_ARCH;
  if (qcodec::simd::cpu_supports<arch>()) return 0;
  std::printf("skipped: this CPU cannot run %s kernels\n", arch::name());
  return 77;
}
