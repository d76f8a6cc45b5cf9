#pragma once
// One table of function pointers per target: every kernel of the library, compiled for one
// instruction set. Each kernel module contributes one member (its own `*_kernels` struct and
// `make_*_kernels<Arch>()`), so adding a kernel touches only its module.
//
// Rules for kernel code (why: see dispatch.hpp):
//   * kernels and their helpers are templates on `Arch` and are not declared `inline`;
//   * a SIMD kernel never calls a `qcodec::ref` function (a non-template inline function
//     compiled with AVX-512 flags could be chosen by the linker for a baseline caller);
//   * kernels are noexcept, allocation-free, and handle every length (tails included).

#include <qcodec/simd/affine.hpp>
#include <qcodec/simd/arch.hpp>
#include <qcodec/simd/bit_packing.hpp>
#include <qcodec/simd/convert.hpp>
#include <qcodec/simd/ggml_kernels.hpp>
#include <qcodec/simd/hadamard.hpp>
#include <qcodec/simd/int16_axpys.hpp>
#include <qcodec/simd/int16_dots.hpp>
#include <qcodec/simd/int8_dots.hpp>
#include <qcodec/simd/lut.hpp>
#include <qcodec/simd/reductions.hpp>
#include <qcodec/simd/rows.hpp>
#include <qcodec/simd/softmax.hpp>
#include <qcodec/simd/table_sums.hpp>
#include <qcodec/simd/token_blocks.hpp>
#include <qcodec/simd/token_quads.hpp>
#include <qcodec/simd/token_rows.hpp>

namespace qcodec::simd {

struct kernel_table {
  const char* arch;  ///< "scalar", "fma3+avx2", "avx512bw", "neon64"
  reduction_kernels reductions;
  packing_kernels packing;
  convert_kernels convert;
  hadamard_kernels hadamard;
  affine_kernels affine;
  lut_kernels lut;
  table_sum_kernels table_sums;
  row_kernels rows;
  int8_dot_kernels int8_dots;
  int16_dot_kernels int16_dots;
  int16_axpy_kernels int16_axpys;
  token_block_kernels token_blocks;
  token_row_kernels token_rows;
  token_quad_kernels token_quads;
  softmax_kernels softmax;
  ggml_kernels ggml;
};

/// The table for `Arch`. Not inline: per-ISA translation units instantiate it explicitly
/// (QCODEC_INSTANTIATE_KERNEL_TABLE) and dispatch.hpp declares those instantiations extern.
template <class Arch>
kernel_table make_kernel_table() noexcept;

template <class Arch>
kernel_table make_kernel_table() noexcept {
  return kernel_table{
      Arch::name(),
      make_reduction_kernels<Arch>(),
      make_packing_kernels<Arch>(),
      make_convert_kernels<Arch>(),
      make_hadamard_kernels<Arch>(),
      make_affine_kernels<Arch>(),
      make_lut_kernels<Arch>(),
      make_table_sum_kernels<Arch>(),
      make_row_kernels<Arch>(),
      make_int8_dot_kernels<Arch>(),
      make_int16_dot_kernels<Arch>(),
      make_int16_axpy_kernels<Arch>(),
      make_token_block_kernels<Arch>(),
      make_token_row_kernels<Arch>(),
      make_token_quad_kernels<Arch>(),
      make_softmax_kernels<Arch>(),
      make_ggml_kernels<Arch>(),
  };
}

}  // namespace qcodec::simd

/// Explicitly instantiate the kernel table for one target, in a translation unit compiled with
/// that target's flags, e.g. `QCODEC_INSTANTIATE_KERNEL_TABLE(avx2)` with `-mavx2 -mfma -mf16c`.
#define QCODEC_INSTANTIATE_KERNEL_TABLE(target)                        \
  namespace qcodec::simd {                                              \
  template kernel_table make_kernel_table<target>() noexcept;           \
  }
