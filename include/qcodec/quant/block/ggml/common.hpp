#pragma once
// Shared by qcodec's ggml-compatible block formats: the block structs (the wire formats, with
// ggml's names and byte layout), ggml's level tables, the E8M0 scale of MXFP4, and small exact
// helpers used by both the scalar oracles and the SIMD kernels.
//
// Provenance: ggml (https://github.com/ggml-org/ggml), `ggml-common.h` and `ggml-quants.c`,
// release 0.21. Every struct here has exactly ggml's size and field order, so an array of them
// is byte-for-byte a row of a GGUF tensor of that type (little-endian hosts).
//
// Why all block structs live here rather than in their format headers: the kernel module
// (simd/ggml_kernels.hpp) needs them, and the format headers include the dispatcher
// (simd/dispatch.hpp), which includes the kernel module; keeping the structs in this leaf
// header breaks that cycle. Each format header documents its format and includes this file.
//
// Common layout conventions (all formats of this file have 32 values per block):
//   * `qs` holds 4-bit codes two per byte: byte j holds value j in its low nibble and value
//     j + 16 in its high nibble (j = 0..15). 8-bit formats store value j in qs[j].
//   * 5-bit formats keep the fifth bit of value i in bit i of the little-endian 32-bit word `qh`.
//   * Scales are IEEE binary16 (`qcodec::half`) or, for MXFP4, an E8M0 power of two.

#include <qcodec/core/half.hpp>
#include <qcodec/simd/unfused.hpp>

#include <bit>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace qcodec::ggml {

/// Values per block of every format in this file (ggml's QK4_0, QK4_1, QK5_0, QK5_1, QK8_0,
/// QK8_1, QK4_NL, QK_MXFP4).
inline constexpr std::int64_t qk = 32;

/// Q4_0: x[i] = d * (q[i] - 8), q in 0..15. 18 bytes per 32 values = 4.5 bits per value.
struct block_q4_0 {
  half d;               ///< scale
  std::uint8_t qs[16];  ///< codes, two per byte (value j low nibble, j + 16 high nibble)
};

/// Q4_1: x[i] = d * q[i] + m, q in 0..15. 20 bytes per 32 values = 5 bits per value.
struct block_q4_1 {
  half d;               ///< scale
  half m;               ///< offset (the block minimum in ggml's encoder)
  std::uint8_t qs[16];  ///< codes, two per byte
};

/// Q5_0: x[i] = d * (q[i] - 16), q in 0..31. 22 bytes per 32 values = 5.5 bits per value.
struct block_q5_0 {
  half d;               ///< scale
  std::uint8_t qh[4];   ///< fifth bits: bit i of the little-endian word is bit 4 of q[i]
  std::uint8_t qs[16];  ///< low four bits, two per byte
};

/// Q5_1: x[i] = d * q[i] + m, q in 0..31. 24 bytes per 32 values = 6 bits per value.
struct block_q5_1 {
  half d;               ///< scale
  half m;               ///< offset
  std::uint8_t qh[4];   ///< fifth bits, as in block_q5_0
  std::uint8_t qs[16];  ///< low four bits, two per byte
};

/// Q8_0: x[i] = d * q[i], q in -128..127 (ggml's encoders emit -127..127). 34 bytes per 32
/// values = 8.5 bits per value. Also the activation format that Q4_0, Q5_0, Q8_0, IQ4_NL and
/// MXFP4 rows are dotted with.
struct block_q8_0 {
  half d;              ///< scale
  std::int8_t qs[32];  ///< codes, value i in qs[i]
};

/// Q8_1: Q8_0 plus s = d * sum(q[i]), so that dotting it with an offset format (Q4_1, Q5_1)
/// costs one multiply for the offset term. 36 bytes per 32 values = 9 bits per value.
/// Activation format only (ggml never stores weights in it).
struct block_q8_1 {
  half d;              ///< scale
  half s;              ///< d * sum of qs, rounded to binary16
  std::int8_t qs[32];  ///< codes
};

/// IQ4_NL: x[i] = d * kvalues_iq4nl[q[i]], q in 0..15. 18 bytes per 32 values = 4.5 bits.
struct block_iq4_nl {
  half d;               ///< scale
  std::uint8_t qs[16];  ///< level indices, two per byte
};

/// MXFP4 (OCP Microscaling FP4, E2M1 elements with an E8M0 block scale):
/// x[i] = 2^(e - 128) * kvalues_mxfp4[q[i]] (the table holds twice the E2M1 values).
/// 17 bytes per 32 values = 4.25 bits per value.
struct block_mxfp4 {
  std::uint8_t e;       ///< E8M0 exponent (bias 127)
  std::uint8_t qs[16];  ///< E2M1 codes (sign in bit 3), two per byte
};

static_assert(sizeof(block_q4_0) == 18 && alignof(block_q4_0) == 2);
static_assert(sizeof(block_q4_1) == 20 && alignof(block_q4_1) == 2);
static_assert(sizeof(block_q5_0) == 22 && alignof(block_q5_0) == 2);
static_assert(sizeof(block_q5_1) == 24 && alignof(block_q5_1) == 2);
static_assert(sizeof(block_q8_0) == 34 && alignof(block_q8_0) == 2);
static_assert(sizeof(block_q8_1) == 36 && alignof(block_q8_1) == 2);
static_assert(sizeof(block_iq4_nl) == 18 && alignof(block_iq4_nl) == 2);
static_assert(sizeof(block_mxfp4) == 17 && alignof(block_mxfp4) == 1);
static_assert(
    std::is_trivially_copyable_v<block_q4_0> && std::is_trivially_copyable_v<block_q4_1> &&
    std::is_trivially_copyable_v<block_q5_0> && std::is_trivially_copyable_v<block_q5_1> &&
    std::is_trivially_copyable_v<block_q8_0> && std::is_trivially_copyable_v<block_q8_1> &&
    std::is_trivially_copyable_v<block_iq4_nl> && std::is_trivially_copyable_v<block_mxfp4>);
static_assert(std::is_standard_layout_v<block_q4_0> && std::is_standard_layout_v<block_q5_1> &&
              std::is_standard_layout_v<block_q8_1> && std::is_standard_layout_v<block_mxfp4>);

/// IQ4_NL's 16 non-uniform levels (ggml's kvalues_iq4nl), ascending.
inline constexpr std::int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                  1,    13,   25,  38,  53,  69,  89,  113};

/// E2M1 values times two (ggml's kvalues_mxfp4): code bit 3 is the sign, bits 0..2 the
/// magnitude 0, 0.5, 1, 1.5, 2, 3, 4, 6.
inline constexpr std::int8_t kvalues_mxfp4[16] = {0, 1,  2,  3,  4,  6,  8,  12,
                                                  0, -1, -2, -3, -4, -6, -8, -12};

namespace detail {

// Helpers shared by the scalar oracles and the SIMD kernels. They are templates on the target
// tag because kernels may only call templates on their own Arch (kernel_table.hpp rules); the
// oracles use the `simd::scalar` instantiation.

template <class Arch>
[[nodiscard]] constexpr float e8m0_half(std::uint8_t e) noexcept {
  const std::uint32_t bits = e < 2 ? (0x00200000u << e) : (std::uint32_t{e} - 1u) << 23;
  return std::bit_cast<float>(bits);
}

// unfused (simd/unfused.hpp): ggml's reference arithmetic, and bit-exact parity between
// targets, need unfused multiply-adds.
using simd::detail::unfused;

/// Rounds to the nearest integer in the current rounding mode (ties to even by default), for
/// |v| <= 2^22: adding and subtracting 1.5 * 2^23 leaves no fraction bits. Two adds instead
/// of a libm call on targets without SSE4.1, and the same result as `cvtps2dq`, which the
/// kernels use.
template <class Arch>
[[nodiscard]] inline float round_nearest(float v) noexcept {
  constexpr float magic = 12582912.0f;  // 1.5 * 2^23
  const float shifted = v + magic;
  return shifted - magic;
}

/// static_cast<int>(v) (truncation) where that is defined; INT_MIN for NaN and for values
/// outside int's range, which is what x86-64's conversion (cvttss2si) returns. ggml's
/// reference encoders convert such values (from NaN or infinite inputs, or a block range or
/// reciprocal scale that overflows) with the conversion C leaves undefined; this gives their
/// x86-64 result, defined, and the same int for every other value.
template <class Arch>
[[nodiscard]] constexpr int trunc_to_int(float v) noexcept {
  return v >= -2147483648.0f && v < 2147483648.0f ? static_cast<int>(v) : INT_MIN;
}

/// The canonical order in which qcodec's encoders sum 32 per-value terms (so that SIMD kernels
/// of any width reproduce the oracle bit for bit): the caller forms
///   a[j] = fma(u[j], v[j], u[j + 16] * v[j + 16])  (j < 16)
/// and the halves are folded: a[j] += a[j + 8], a[j] += a[j + 4], a[j] += a[j + 2], a[0] + a[1].
/// AVX-512 holds values 0..15 and 16..31 in two registers, AVX2 in four; both fold this way.
template <class Arch>
[[nodiscard]] inline float fold16(const float (&a)[16]) noexcept {
  // written out: a loop here is left rolled and round-trips through the stack
  const float b0 = a[0] + a[8], b1 = a[1] + a[9], b2 = a[2] + a[10], b3 = a[3] + a[11];
  const float b4 = a[4] + a[12], b5 = a[5] + a[13], b6 = a[6] + a[14], b7 = a[7] + a[15];
  const float c0 = b0 + b4, c1 = b1 + b5, c2 = b2 + b6, c3 = b3 + b7;
  const float d0 = c0 + c2, d1 = c1 + c3;
  return d0 + d1;
}

}  // namespace detail

/// 2^(e - 128) = half the E8M0 value 2^(e - 127), exactly (e = 0 and 1 give float
/// subnormals): ggml's GGML_E8M0_TO_FP32_HALF, the factor MXFP4 multiplies its (doubled)
/// table values by. e = 255 (E8M0's NaN) gives 2^127, as in ggml.
[[nodiscard]] constexpr float e8m0_to_float_half(std::uint8_t e) noexcept {
  return detail::e8m0_half<simd::scalar>(e);
}

}  // namespace qcodec::ggml
