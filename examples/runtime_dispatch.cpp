// Runtime dispatch in a header-only library: one binary that runs the best kernels the CPU
// offers (AVX-512, AVX2, or the portable scalar code) without being compiled for that CPU.
//
// With CMake, one line gives a program runtime dispatch:
//
//   add_executable(my_engine main.cpp)
//   target_link_libraries(my_engine PRIVATE qcodec::qcodec)
//   qcodec_add_kernel_dispatch(my_engine)
//
// and a project with several programs compiles the kernels once in a static library instead:
//
//   qcodec_add_kernel_library(my_kernels)      # links qcodec::qcodec
//   target_link_libraries(my_engine PRIVATE my_kernels)
//   target_link_libraries(my_tool PRIVATE my_kernels)
//
// (this example links qcodec's own such library, qcodec_project_kernels). Either way, one
// generated source per instruction set is compiled with that set's flags (-mavx2 -mfma -mf16c,
// or -mavx512f -mavx512cd -mavx512dq -mavx512bw ...) and contains only
//
//   #include <qcodec/simd/kernel_table.hpp>
//   QCODEC_INSTANTIATE_KERNEL_TABLE(avx2)      // resp. avx512
//
// and QCODEC_DISPATCH_AVX2=1 and QCODEC_DISPATCH_AVX512=1 are defined for every translation unit
// of the program. Without CMake, do the same by hand: compile those two files with those flags,
// and pass the two definitions to every translation unit. Everything else (this file included)
// is compiled for the baseline CPU.
#include <qcodec/simd/dispatch.hpp>

#include <cstdio>
#include <vector>

int main() {
  namespace simd = qcodec::simd;
  std::printf("compiled-in targets:");
#if QCODEC_DISPATCH_AVX512
  std::printf(" %s%s", simd::avx512::name(),
              simd::cpu_supports<simd::avx512>() ? "" : " (unsupported here)");
#endif
#if QCODEC_DISPATCH_AVX2
  std::printf(" %s%s", simd::avx2::name(),
              simd::cpu_supports<simd::avx2>() ? "" : " (unsupported here)");
#endif
  std::printf(" scalar\n");

  // Fetch the table once per high-level operation, then call through it in the inner loops.
  const simd::kernel_table& k = simd::kernels();
  std::printf("running: %s\n", k.arch);

  std::vector<float> row(4096);
  for (std::size_t i = 0; i < row.size(); ++i) row[i] = static_cast<float>(i % 17) - 8.0f;
  std::printf("absmax = %g, sum = %g, dot = %g\n",
              static_cast<double>(k.reductions.absmax(row.data(), row.size())),
              static_cast<double>(k.reductions.sum(row.data(), row.size())),
              static_cast<double>(k.reductions.dot(row.data(), row.data(), row.size())));
  return 0;
}
