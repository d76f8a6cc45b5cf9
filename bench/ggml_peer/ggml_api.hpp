#pragma once
// The part of ggml's C API the peer benchmark calls: prototypes declared here (no ggml header or
// source is used), and a loader for ggml's CPU backend.
//
// libggml-base.so (reference encoders, decoders, fp16 / bf16 rows) is linked directly.
// libggml-cpu-<variant>.so (the SIMD vec_dot kernels, activation quantizers and conversions) is
// one of a dozen builds of the same code for different x86 feature sets, all exporting the same
// names, so it cannot be linked: load_cpu_backend() dlopens every variant next to the base
// library, asks each for its ggml_backend_score() (0 when the CPU lacks a feature the variant
// was built for) and keeps the highest, as ggml's own ggml_backend_load_best() does. Setting
// QCODEC_GGML_CPU to a path or a variant name ("zen4", "haswell", ...) forces one.
//
// Pointer parameters are declared void* / std::uint16_t*: ggml's block structs have the layout
// of qcodec's (common.hpp, k_common.hpp), and C linkage does not encode parameter types.
#include <cstddef>
#include <cstdint>
#include <string>

extern "C" {
// libggml-base.so (ggml-quants.h, ggml.h)
void quantize_row_q4_0_ref(const float* x, void* y, std::int64_t k);
void quantize_row_q4_1_ref(const float* x, void* y, std::int64_t k);
void quantize_row_q5_0_ref(const float* x, void* y, std::int64_t k);
void quantize_row_q5_1_ref(const float* x, void* y, std::int64_t k);
void quantize_row_q8_0_ref(const float* x, void* y, std::int64_t k);
void quantize_row_q8_1_ref(const float* x, void* y, std::int64_t k);
void quantize_row_mxfp4_ref(const float* x, void* y, std::int64_t k);
// quantize_row_iq4_nl_ref skips the scale search (ntry -1); ggml_quantize_chunk, and qcodec's
// reference copy, run quantize_iq4_nl's (ntry 7).
std::size_t quantize_iq4_nl(const float* src, void* dst, std::int64_t nrows, std::int64_t n_per_row,
                            const float* imatrix);
void quantize_row_q2_K_ref(const float* x, void* y, std::int64_t k);
void quantize_row_q3_K_ref(const float* x, void* y, std::int64_t k);
void quantize_row_q4_K_ref(const float* x, void* y, std::int64_t k);
void quantize_row_q5_K_ref(const float* x, void* y, std::int64_t k);
void quantize_row_q6_K_ref(const float* x, void* y, std::int64_t k);
void quantize_row_q8_K_ref(const float* x, void* y, std::int64_t k);
void quantize_row_iq4_xs_ref(const float* x, void* y, std::int64_t k);

void dequantize_row_q4_0(const void* x, float* y, std::int64_t k);
void dequantize_row_q4_1(const void* x, float* y, std::int64_t k);
void dequantize_row_q5_0(const void* x, float* y, std::int64_t k);
void dequantize_row_q5_1(const void* x, float* y, std::int64_t k);
void dequantize_row_q8_0(const void* x, float* y, std::int64_t k);
void dequantize_row_mxfp4(const void* x, float* y, std::int64_t k);
void dequantize_row_iq4_nl(const void* x, float* y, std::int64_t k);
void dequantize_row_q2_K(const void* x, float* y, std::int64_t k);
void dequantize_row_q3_K(const void* x, float* y, std::int64_t k);
void dequantize_row_q4_K(const void* x, float* y, std::int64_t k);
void dequantize_row_q5_K(const void* x, float* y, std::int64_t k);
void dequantize_row_q6_K(const void* x, float* y, std::int64_t k);
void dequantize_row_q8_K(const void* x, float* y, std::int64_t k);
void dequantize_row_iq4_xs(const void* x, float* y, std::int64_t k);

void ggml_fp32_to_fp16_row(const float* x, std::uint16_t* y, std::int64_t n);
void ggml_fp32_to_bf16_row(const float* x, std::uint16_t* y, std::int64_t n);
}

namespace ggml_peer {

// Signatures of the libggml-cpu functions, looked up by name.
using quantize_fn = void (*)(const float* x, void* y, std::int64_t k);
using dequantize_fn = void (*)(const void* x, float* y, std::int64_t k);
/// ggml_vec_dot_<type>_<vec_dot_type>(n, s, bs, x, bx, y, by, nrc): one dot product when nrc = 1.
using vec_dot_fn = void (*)(int n, float* s, std::size_t bs, const void* x, std::size_t bx,
                            const void* y, std::size_t by, int nrc);
using narrow_fn = void (*)(const float* x, std::uint16_t* y, std::int64_t n);
using widen_fn = void (*)(const std::uint16_t* x, float* y, std::int64_t n);

/// The CPU backend variant in use.
struct cpu_backend {
  void* handle = nullptr;
  std::string path;
  std::string variant;  // "zen4" for libggml-cpu-zen4.so
  int score = 0;
  /// The address of an exported function, or nullptr.
  void* symbol(const char* name) const;
};

/// Loads the best variant found in `dir` (or the one QCODEC_GGML_CPU names) and runs its
/// ggml_cpu_init(). On failure returns a backend without handle and sets `error`.
cpu_backend load_cpu_backend(const std::string& dir, std::string& error);

}  // namespace ggml_peer
