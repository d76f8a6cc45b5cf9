#pragma once
// Picks the kernel table once per process; high-level calls fetch it once and pass its
// function pointers down (dispatch is hoisted out of every row loop).
//
// Two ways to build, chosen by the program (never mixed within one program):
//
// * Static (default): every translation unit is compiled for the same CPU (e.g. -march=native);
//   kernels() returns the table for that target.
//
// * Runtime dispatch (xsimd's per-ISA translation-unit pattern): the program compiles one extra
//   translation unit per target with that target's flags, each containing only
//       #include <qcodec/simd/kernel_table.hpp>

#include <cstdlib>
#include <cstring>
//       QCODEC_INSTANTIATE_KERNEL_TABLE(avx2)   // or avx512
//   and defines QCODEC_DISPATCH_AVX2=1 / QCODEC_DISPATCH_AVX512=1 for *all* its translation
//   units. CMake users get exactly this from `qcodec_add_kernel_dispatch(target)`. kernels() then
//   returns the best table the CPU supports, falling back to the scalar oracles. In this mode the
//   fallback never depends on the including unit's flags, so kernels() is the same function in
//   every translation unit (one definition rule).
//
// The environment variable QCODEC_ISA caps the choice, to run (measure, test) another target's
// kernels on one machine: `avx2` takes the AVX2 table even where AVX-512 is supported (with
// runtime dispatch), `scalar` the scalar oracles (either build); other values, or none, change
// nothing. It is read once, with the table.

#include <qcodec/simd/kernel_table.hpp>

#include <cstdlib>
#include <cstring>

#if !defined(QCODEC_DISPATCH_AVX2)
#define QCODEC_DISPATCH_AVX2 0
#endif
#if !defined(QCODEC_DISPATCH_AVX512)
#define QCODEC_DISPATCH_AVX512 0
#endif

namespace qcodec::simd {

#if QCODEC_DISPATCH_AVX2
extern template kernel_table make_kernel_table<avx2>() noexcept;
#endif
#if QCODEC_DISPATCH_AVX512
extern template kernel_table make_kernel_table<avx512>() noexcept;
#endif

namespace detail {

/// The most a program lets kernels() pick (QCODEC_ISA, above).
enum class isa_cap { best, avx2, scalar };

inline isa_cap isa_cap_from(const char* value) noexcept {
  if (value == nullptr) return isa_cap::best;
  if (std::strcmp(value, "avx2") == 0) return isa_cap::avx2;
  if (std::strcmp(value, "scalar") == 0) return isa_cap::scalar;
  return isa_cap::best;
}

inline kernel_table select_kernel_table(isa_cap cap) noexcept {
  if (cap == isa_cap::scalar) return make_kernel_table<scalar>();
#if QCODEC_DISPATCH_AVX2 || QCODEC_DISPATCH_AVX512
#if QCODEC_DISPATCH_AVX512
  if (cap == isa_cap::best && cpu_supports<avx512>()) return make_kernel_table<avx512>();
#endif
#if QCODEC_DISPATCH_AVX2
  if (cpu_supports<avx2>()) return make_kernel_table<avx2>();
#endif
  return make_kernel_table<scalar>();
#else
  return make_kernel_table<native_arch>();
#endif
}

}  // namespace detail

/// The kernels for this CPU (up to QCODEC_ISA), chosen on first use (thread-safe) and fixed for
/// the process.
[[nodiscard]] inline const kernel_table& kernels() noexcept {
  static const kernel_table table =
      detail::select_kernel_table(detail::isa_cap_from(std::getenv("QCODEC_ISA")));
  return table;
}

}  // namespace qcodec::simd
