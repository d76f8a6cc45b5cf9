#pragma once
// Instruction-set tags used by qcodec's kernels, and runtime detection of what the CPU offers.
//
// Kernels are function templates on an xsimd architecture tag. qcodec compiles them for a short
// list of targets, named here so the rest of the library never spells an xsimd arch directly:
//
//   scalar  the `qcodec::ref` oracles (portable C++, always available)
//   avx2    x86-64 AVX2 + FMA + F16C              (xsimd::fma3<xsimd::avx2>)
//   avx512  x86-64 AVX-512 F/CD/DQ/BW + FMA + F16C (xsimd::avx512bw)
//   neon    AArch64 Advanced SIMD                  (xsimd::neon64)

#include <qcodec/simd/xsimd_shim.hpp>

#include <type_traits>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

/// Before a loop over a compile-time number of registers (the rows or vectors of a row kernel):
/// GCC 12 unrolls such loops only after scalar replacement, and then keeps a copy of the
/// register arrays in memory, stored on every iteration of the enclosing loop.
#if defined(__GNUC__) && !defined(__clang__)
#define QCODEC_UNROLL_REGISTERS _Pragma("GCC unroll 8")
#else
#define QCODEC_UNROLL_REGISTERS
#endif

namespace qcodec::simd {

/// The portable target: every kernel table entry is the `qcodec::ref` scalar oracle.
struct scalar {
  static constexpr const char* name() noexcept { return "scalar"; }
};

using avx2 = xsimd::fma3<xsimd::avx2>;
using avx512 = xsimd::avx512bw;
using neon = xsimd::neon64;

template <class Arch>
inline constexpr bool is_scalar_v = std::is_same_v<Arch, scalar>;

/// The best target the including translation unit is compiled for (its -m flags).
#if XSIMD_WITH_AVX512BW && XSIMD_WITH_AVX512DQ && XSIMD_WITH_AVX512CD && XSIMD_WITH_FMA3_AVX2 && \
    defined(__F16C__)
using native_arch = avx512;
#elif XSIMD_WITH_FMA3_AVX2 && defined(__F16C__)
using native_arch = avx2;
#elif XSIMD_WITH_NEON64
using native_arch = neon;
#else
using native_arch = scalar;
#endif

/// Whether the running CPU (and OS) can execute kernels compiled for `Arch`.
template <class Arch>
[[nodiscard]] inline bool cpu_supports() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return true;
  } else if constexpr (std::is_same_v<Arch, neon>) {
#if defined(__aarch64__) || defined(_M_ARM64)
    return true;
#else
    return false;
#endif
  } else {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    // __builtin_cpu_supports also checks that the OS saves the wide registers (XCR0),
    // which xsimd 8's cpuid probe does not.
    __builtin_cpu_init();
    // Clang 14's __builtin_cpu_supports does not know "f16c": read CPUID.1:ECX[29] directly.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool has_f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
    const bool has_avx2 =
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c;
    if constexpr (std::is_same_v<Arch, avx2>) {
      return has_avx2;
    } else if constexpr (std::is_same_v<Arch, avx512>) {
      return has_avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
    } else {
      return false;
    }
#else
    return false;
#endif
  }
}

/// Whether the running CPU has AVX-512 VNNI (vpdpbusd), which a few kernels use on top of the
/// avx512 target when present (simd/int8_dots.hpp).
[[nodiscard]] inline bool cpu_supports_avx512_vnni() noexcept {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return cpu_supports<avx512>() && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

}  // namespace qcodec::simd
