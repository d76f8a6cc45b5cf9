#pragma once
// Affine (scale + offset) quantization fused with bit packing, and the fused decoders that
// attention over a compressed KV cache is built from (scores = q . k over quantized keys,
// output += p * v over quantized values).
//
// Model: a group of values shares `affine_params {scale, offset}`; a value is stored as a code
// q in [0, 2^bits - 1], 1 <= bits <= 8, and decodes to scale * q + offset.
//
// Code layout (the same as bit_packing.hpp): codes are packed back to back, least significant
// bit first. Code i occupies stream bits [i * bits, (i + 1) * bits); stream bit k is bit (k % 8)
// of byte k / 8. n codes take (n * bits + 7) / 8 bytes; the unused high bits of the last byte are
// written as zero and ignored when read. So 4-bit byte j holds code 2j | code 2j+1 << 4, and 8
// codes always fill exactly `bits` bytes.
//
// Exact definitions (every target returns these bits; parity tests compare with memcmp):
//
//   encode  inv  = scale != 0 ? 1 / scale : 0        (float division, once per call)
//           bias = -offset * inv                     (float, once per call)
//           q    = clamp(nearbyint(fma(x, inv, bias)), 0, 2^bits - 1)
//           nearbyint rounds half to even; the clamp sends NaN to 0, +inf to 2^bits - 1 and
//           -inf to 0 (with scale == 0 every x encodes to clamp(nearbyint(bias)) = 0 unless
//           offset is not finite).
//   decode  y = fma(float(q), scale, offset)
//   axpy    y[i] = fma(fma(float(q_i), scale, offset), a, y[i])
//   dot     sum_i fma(float(q_i), scale, offset) * v[i]: the kernels sum in float with several
//           vector accumulators, the oracle in double; they agree within
//           (n + 1) * FLT_EPSILON * sum_i |d_i * v_i|.
//
// Multiply-adds are always fused (std::fma in the oracles, FMA instructions in the kernels), so
// GCC's refusal to contract under -std=c++20 cannot make targets disagree.
//
// Kernel structure: the bit width is dispatched once per call to a loop specialised for it. On
// x86 a batch of W codes (W = 8 for AVX2, 16 for AVX-512) spans W * bits / 8 whole bytes; the
// decoder broadcasts those bytes (one load of 1/2/4/8/16 bytes) into every 128-bit lane, a byte
// shuffle places the one or two bytes holding code j in 32-bit lane j, and a per-lane variable
// shift plus a mask extracts it: four instructions for any width, no cross-lane work. 8-bit codes
// are a plain zero-extension. The last batches, whose load would reach past the packed bytes,
// read through a zero-padded stack copy; float tails use masked loads and stores. Other targets
// (NEON, SSE) use a portable per-lane path with the same arithmetic.

#include <qcodec/simd/arch.hpp>

#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace qcodec {

/// Decode parameters of one group: x ~= scale * q + offset, q in [0, 2^bits - 1].
struct affine_params {
  float scale;
  float offset;
};

namespace detail {

/// Bytes taken by n codes of `bits` bits packed back to back.
constexpr std::size_t affine_code_bytes(std::size_t n, unsigned bits) noexcept {
  return (n * bits + 7) / 8;
}

}  // namespace detail

namespace ref {

/// Encodes x[0, n) with `p` into n codes of `bits` (1..8) bits, written packed to
/// out[0, (n * bits + 7) / 8).
inline void quantize_pack(const float* x, std::size_t n, affine_params p, unsigned bits,
                          std::uint8_t* out) noexcept {
  assert(bits >= 1 && bits <= 8);
  const float inv = p.scale != 0.0f ? 1.0f / p.scale : 0.0f;
  const float bias = -p.offset * inv;
  const float max_code = static_cast<float>((1u << bits) - 1);
  std::uint32_t acc = 0;
  unsigned fill = 0;
  for (std::size_t i = 0; i < n; ++i) {
    float r = std::nearbyint(std::fma(x[i], inv, bias));
    r = r > 0.0f ? r : 0.0f;  // NaN fails the comparison and becomes 0
    r = r < max_code ? r : max_code;
    acc |= static_cast<std::uint32_t>(r) << fill;
    for (fill += bits; fill >= 8; fill -= 8, acc >>= 8) *out++ = static_cast<std::uint8_t>(acc);
  }
  if (fill > 0) *out = static_cast<std::uint8_t>(acc);
}

namespace detail {

// Reads codes in stream order (the oracle's own, deliberately naive, bit reader).
class code_reader {
 public:
  code_reader(const std::uint8_t* in, unsigned bits) noexcept : in_(in), bits_(bits) {}
  std::uint32_t next() noexcept {
    while (fill_ < bits_) {
      acc_ |= std::uint32_t{*in_++} << fill_;
      fill_ += 8;
    }
    const std::uint32_t q = acc_ & ((1u << bits_) - 1);
    acc_ >>= bits_;
    fill_ -= bits_;
    return q;
  }

 private:
  const std::uint8_t* in_;
  unsigned bits_;
  std::uint32_t acc_ = 0;
  unsigned fill_ = 0;
};

}  // namespace detail

/// y[i] = fma(float(q_i), scale, offset) for the n codes of `bits` bits packed in
/// in[0, (n * bits + 7) / 8).
inline void unpack_dequantize(const std::uint8_t* in, std::size_t n, unsigned bits,
                              affine_params p, float* y) noexcept {
  assert(bits >= 1 && bits <= 8);
  detail::code_reader r(in, bits);
  for (std::size_t i = 0; i < n; ++i) y[i] = std::fma(static_cast<float>(r.next()), p.scale, p.offset);
}

/// sum_i (scale * q_i + offset) * v[i] over n packed codes (summed in double).
[[nodiscard]] inline float decode_dot(const std::uint8_t* in, std::size_t n, unsigned bits,
                                      affine_params p, const float* v) noexcept {
  assert(bits >= 1 && bits <= 8);
  detail::code_reader r(in, bits);
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i)
    s += double{std::fma(static_cast<float>(r.next()), p.scale, p.offset)} * v[i];
  return static_cast<float>(s);
}

/// y[i] = fma(fma(float(q_i), scale, offset), a, y[i]) over n packed codes.
inline void decode_axpy(const std::uint8_t* in, std::size_t n, unsigned bits, affine_params p,
                        float a, float* y) noexcept {
  assert(bits >= 1 && bits <= 8);
  detail::code_reader r(in, bits);
  for (std::size_t i = 0; i < n; ++i)
    y[i] = std::fma(std::fma(static_cast<float>(r.next()), p.scale, p.offset), a, y[i]);
}

/// Appended: the encode with parameters per element, as unpacked byte codes:
/// codes[i] = clamp(nearbyint(fma(x[i], inv[i], bias[i])), 0, 2^bits - 1) (inv and bias as
/// the header computes them from each element's scale and offset; per-channel keys).
inline void quantize_codes(const float* x, const float* inv, const float* bias, std::size_t n,
                           unsigned bits, std::uint8_t* codes) noexcept {
  const float max_code = static_cast<float>((1u << bits) - 1);
  for (std::size_t i = 0; i < n; ++i) {
    const float q = std::nearbyint(std::fma(x[i], inv[i], bias[i]));
    codes[i] = static_cast<std::uint8_t>(q >= 0.0f ? (q <= max_code ? q : max_code) : 0.0f);
  }
}

}  // namespace ref

// GCC 12 reports its own AVX-512 intrinsics (the `__Y = __Y` self-initialisation inside
// _mm512_undefined_*) as maybe-uninitialized once they are inlined at -O2/-O3 (GCC PR 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace simd {

/// Encodes x[0, n) into packed codes out[0, (n * bits + 7) / 8); see the header comment.
template <class Arch>
void quantize_pack(const float* x, std::size_t n, affine_params p, unsigned bits,
                   std::uint8_t* out) noexcept;
/// Decodes n packed codes from in[0, (n * bits + 7) / 8) to y[0, n).
template <class Arch>
void unpack_dequantize(const std::uint8_t* in, std::size_t n, unsigned bits, affine_params p,
                       float* y) noexcept;
/// Dot product of the n decoded codes with v[0, n).
template <class Arch>
float decode_dot(const std::uint8_t* in, std::size_t n, unsigned bits, affine_params p,
                 const float* v) noexcept;
/// y[0, n) += a * decoded codes (one fused multiply-add per element).
template <class Arch>
void decode_axpy(const std::uint8_t* in, std::size_t n, unsigned bits, affine_params p, float a,
                 float* y) noexcept;
/// Byte codes of x[0, n) with parameters per element (ref::quantize_codes).
template <class Arch>
void quantize_codes(const float* x, const float* inv, const float* bias, std::size_t n,
                    unsigned bits, std::uint8_t* codes) noexcept;

/// The affine entries of a kernel table (see kernel_table.hpp). `bits` is 1..8 for all of them.
struct affine_kernels {
  void (*quantize_pack)(const float* x, std::size_t n, affine_params p, unsigned bits,
                        std::uint8_t* out) noexcept;
  void (*unpack_dequantize)(const std::uint8_t* in, std::size_t n, unsigned bits,
                            affine_params p, float* y) noexcept;
  float (*decode_dot)(const std::uint8_t* in, std::size_t n, unsigned bits, affine_params p,
                      const float* v) noexcept;
  void (*decode_axpy)(const std::uint8_t* in, std::size_t n, unsigned bits, affine_params p,
                      float a, float* y) noexcept;
  // Appended: parameters per element (per-channel keys), unpacked codes.
  void (*quantize_codes)(const float* x, const float* inv, const float* bias, std::size_t n,
                         unsigned bits, std::uint8_t* codes) noexcept;
};

template <class Arch>
affine_kernels make_affine_kernels() noexcept {
  if constexpr (is_scalar_v<Arch>) {
    return {&ref::quantize_pack, &ref::unpack_dequantize, &ref::decode_dot, &ref::decode_axpy,
            &ref::quantize_codes};
  } else {
    return {&quantize_pack<Arch>, &unpack_dequantize<Arch>, &decode_dot<Arch>, &decode_axpy<Arch>,
            &quantize_codes<Arch>};
  }
}

// ---------------------------------------------------------------------------------------------
// Building blocks shared with lut.hpp. Every helper is a template on Arch and dispatches on an
// xsimd arch tag: x86 overloads for `xsimd::avx2` / `xsimd::avx512bw` (guarded by the xsimd
// feature macros), NEON overloads for `xsimd::neon64`, and an `xsimd::generic` fallback that is
// correct for any batch width (W = 4 batches do not start on byte boundaries for odd widths).
namespace detail::packed {

template <class Arch>
using f32 = batch<float, Arch>;
template <class Arch>
using i32 = batch<std::int32_t, Arch>;

template <unsigned Bits>
inline constexpr std::int32_t code_mask = static_cast<std::int32_t>((1u << Bits) - 1);

template <class Arch>
constexpr std::size_t code_bytes(std::size_t n, unsigned bits) noexcept {
  return (n * bits + 7) / 8;
}

inline constexpr std::int32_t iota_i32[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

// Calls f(std::integral_constant<unsigned, bits>{}): the once-per-call width dispatch.
template <class Arch, class F>
decltype(auto) with_bits(unsigned bits, F&& f) noexcept {
  switch (bits) {
    case 1: return f(std::integral_constant<unsigned, 1>{});
    case 2: return f(std::integral_constant<unsigned, 2>{});
    case 3: return f(std::integral_constant<unsigned, 3>{});
    case 4: return f(std::integral_constant<unsigned, 4>{});
    case 5: return f(std::integral_constant<unsigned, 5>{});
    case 6: return f(std::integral_constant<unsigned, 6>{});
    case 7: return f(std::integral_constant<unsigned, 7>{});
    case 8: return f(std::integral_constant<unsigned, 8>{});
    default: {
      // Precondition violated (bits outside 1..8): assert in debug, touch nothing otherwise.
      assert(false && "qcodec: bits must be in 1..8");
      using R = decltype(f(std::integral_constant<unsigned, 8>{}));
      if constexpr (std::is_void_v<R>) {
        return;
      } else {
        return R{};
      }
    }
  }
}

// ---- arithmetic that must be identical on every target ----------------------------------

// Fused multiply-add. xsimd 8.1 fuses on fma3 and NEON but computes x * y + z (two roundings)
// on AVX-512 and on targets without FMA, so those get their own overloads.
template <class Arch>
f32<Arch> fmadd(const f32<Arch>& a, const f32<Arch>& b, const f32<Arch>& c,
                xsimd::generic) noexcept {
  constexpr std::size_t W = f32<Arch>::size;
  alignas(64) float la[W], lb[W], lc[W];
  a.store_aligned(la);
  b.store_aligned(lb);
  c.store_aligned(lc);
  for (std::size_t j = 0; j < W; ++j) la[j] = std::fma(la[j], lb[j], lc[j]);
  return f32<Arch>::load_aligned(la);
}
#if XSIMD_WITH_FMA3_AVX2
template <class Arch>
f32<Arch> fmadd(const f32<Arch>& a, const f32<Arch>& b, const f32<Arch>& c,
                xsimd::fma3<xsimd::avx2>) noexcept {
  return xsimd::fma(a, b, c);
}
#endif
#if XSIMD_WITH_AVX512F
template <class Arch>
f32<Arch> fmadd(const f32<Arch>& a, const f32<Arch>& b, const f32<Arch>& c,
                xsimd::avx512f) noexcept {
  return _mm512_fmadd_ps(a, b, c);
}
#endif
#if XSIMD_WITH_NEON64
template <class Arch>
f32<Arch> fmadd(const f32<Arch>& a, const f32<Arch>& b, const f32<Arch>& c,
                xsimd::neon64) noexcept {
  return vfmaq_f32(c, a, b);
}
#endif
template <class Arch>
f32<Arch> fmadd(const f32<Arch>& a, const f32<Arch>& b, const f32<Arch>& c) noexcept {
  return fmadd<Arch>(a, b, c, Arch{});
}

// The code of t: clamp(nearbyint(t), 0, max_code) as int32, NaN -> 0, rounding half to even.
// Rounding and clamping to the integers 0 and max_code commute, so x86 clamps first with
// max/min (which return their second operand when the first is NaN) and lets the conversion
// round: AVX-512 with an embedded round-to-nearest-even, independent of MXCSR.
template <class Arch>
i32<Arch> to_code(const f32<Arch>& t, const f32<Arch>& max_code, xsimd::generic) noexcept {
  constexpr std::size_t W = f32<Arch>::size;
  alignas(64) float l[W];
  t.store_aligned(l);
  for (std::size_t j = 0; j < W; ++j) l[j] = std::nearbyint(l[j]);
  const f32<Arch> zero(0.0f);
  f32<Arch> r = f32<Arch>::load_aligned(l);
  r = xsimd::select(r > zero, r, zero);
  r = xsimd::select(r < max_code, r, max_code);
  return xsimd::batch_cast<std::int32_t>(r);
}
#if XSIMD_WITH_AVX
template <class Arch>
i32<Arch> to_code(const f32<Arch>& t, const f32<Arch>& max_code, xsimd::avx) noexcept {
  const __m256 r = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(r, _mm256_setzero_ps()), max_code));
}
#endif
#if XSIMD_WITH_AVX512F
template <class Arch>
i32<Arch> to_code(const f32<Arch>& t, const f32<Arch>& max_code, xsimd::avx512f) noexcept {
  const __m512 c = _mm512_min_ps(_mm512_max_ps(t, _mm512_setzero_ps()), max_code);
  return _mm512_cvt_roundps_epi32(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
#endif
#if XSIMD_WITH_NEON64
template <class Arch>
i32<Arch> to_code(const f32<Arch>& t, const f32<Arch>& max_code, xsimd::neon64) noexcept {
  const f32<Arch> zero(0.0f);
  f32<Arch> r = vrndnq_f32(t);
  r = xsimd::select(r > zero, r, zero);  // vmaxq_f32 would propagate NaN
  r = xsimd::select(r < max_code, r, max_code);
  return vcvtq_s32_f32(r);
}
#endif

// ---- float tails: the first k (1 <= k <= W) lanes -----------------------------------------

template <class Arch>
f32<Arch> load_first(const float* p, std::size_t k, xsimd::generic) noexcept {
  alignas(64) float l[f32<Arch>::size] = {};
  std::memcpy(l, p, k * sizeof(float));
  return f32<Arch>::load_aligned(l);
}
template <class Arch>
void store_first(const f32<Arch>& v, float* p, std::size_t k, xsimd::generic) noexcept {
  alignas(64) float l[f32<Arch>::size];
  v.store_aligned(l);
  std::memcpy(p, l, k * sizeof(float));
}
template <class Arch>
i32<Arch> keep_first(const i32<Arch>& v, std::size_t k, xsimd::generic) noexcept {
  const i32<Arch> lane = i32<Arch>::load_unaligned(iota_i32);
  return xsimd::select(lane < i32<Arch>(static_cast<std::int32_t>(k)), v, i32<Arch>(0));
}
template <class Arch>
f32<Arch> keep_first(const f32<Arch>& v, std::size_t k, xsimd::generic) noexcept {
  const f32<Arch> lane = xsimd::batch_cast<float>(i32<Arch>::load_unaligned(iota_i32));
  return xsimd::select(lane < f32<Arch>(static_cast<float>(k)), v, f32<Arch>(0.0f));
}
#if XSIMD_WITH_AVX2
// k ones then zeros, as 32-bit lane masks for vmaskmov.
inline constexpr std::int32_t avx2_lane_window[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                      0,  0,  0,  0,  0,  0,  0,  0};
template <class Arch>
__m256i avx2_first_lanes(std::size_t k) noexcept {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(avx2_lane_window + 8 - k));
}
template <class Arch>
f32<Arch> load_first(const float* p, std::size_t k, xsimd::avx2) noexcept {
  return _mm256_maskload_ps(p, avx2_first_lanes<Arch>(k));
}
template <class Arch>
void store_first(const f32<Arch>& v, float* p, std::size_t k, xsimd::avx2) noexcept {
  _mm256_maskstore_ps(p, avx2_first_lanes<Arch>(k), v);
}
template <class Arch>
i32<Arch> keep_first(const i32<Arch>& v, std::size_t k, xsimd::avx2) noexcept {
  return _mm256_and_si256(v, avx2_first_lanes<Arch>(k));
}
template <class Arch>
f32<Arch> keep_first(const f32<Arch>& v, std::size_t k, xsimd::avx2) noexcept {
  return _mm256_and_ps(v, _mm256_castsi256_ps(avx2_first_lanes<Arch>(k)));
}
#endif
#if XSIMD_WITH_AVX512BW
template <class Arch>
__mmask16 avx512_first_lanes(std::size_t k) noexcept {
  return static_cast<__mmask16>((1u << k) - 1);
}
template <class Arch>
f32<Arch> load_first(const float* p, std::size_t k, xsimd::avx512bw) noexcept {
  return _mm512_maskz_loadu_ps(avx512_first_lanes<Arch>(k), p);
}
template <class Arch>
void store_first(const f32<Arch>& v, float* p, std::size_t k, xsimd::avx512bw) noexcept {
  _mm512_mask_storeu_ps(p, avx512_first_lanes<Arch>(k), v);
}
template <class Arch>
i32<Arch> keep_first(const i32<Arch>& v, std::size_t k, xsimd::avx512bw) noexcept {
  return _mm512_maskz_mov_epi32(avx512_first_lanes<Arch>(k), v);
}
template <class Arch>
f32<Arch> keep_first(const f32<Arch>& v, std::size_t k, xsimd::avx512bw) noexcept {
  return _mm512_maskz_mov_ps(avx512_first_lanes<Arch>(k), v);
}
#endif

// ---- decoding codes ------------------------------------------------------------------------
//
//   full_batches<Bits, Arch>(n)        how many leading batches unpack_batch may decode
//   unpack_batch<Bits, Arch>(in, i)    codes [i, i + W) of the stream at `in` (i % W == 0)
//   unpack_tail<Bits, Arch>(in, i, n)  codes [i, n), n - i <= W; other lanes unspecified
//
// Masked = false leaves bits above the code in each lane (for lookups that ignore them).

// Portable: every lane reads only the one or two bytes holding its code.
template <unsigned Bits, class Arch, bool Masked = true>
i32<Arch> unpack_lanes(const std::uint8_t* in, std::size_t first, std::size_t count) noexcept {
  alignas(64) std::int32_t l[i32<Arch>::size] = {};
  for (std::size_t j = 0; j < count; ++j) {
    const std::size_t bit = (first + j) * Bits;
    const unsigned s = bit % 8;
    std::uint32_t v = std::uint32_t{in[bit / 8]} >> s;
    if (s + Bits > 8) v |= std::uint32_t{in[bit / 8 + 1]} << (8 - s);
    l[j] = static_cast<std::int32_t>(v & static_cast<std::uint32_t>(code_mask<Bits>));
  }
  return i32<Arch>::load_aligned(l);
}

template <unsigned Bits, class Arch>
std::size_t full_batches(std::size_t n, xsimd::generic) noexcept {
  return n / i32<Arch>::size;
}
template <unsigned Bits, class Arch, bool Masked = true>
i32<Arch> unpack_batch(const std::uint8_t* in, std::size_t i, xsimd::generic) noexcept {
  return unpack_lanes<Bits, Arch, Masked>(in, i, i32<Arch>::size);
}
template <unsigned Bits, class Arch, bool Masked = true>
i32<Arch> unpack_tail(const std::uint8_t* in, std::size_t i, std::size_t n,
                      xsimd::generic) noexcept {
  return unpack_lanes<Bits, Arch, Masked>(in, i, n - i);
}

#if XSIMD_WITH_AVX2 || XSIMD_WITH_AVX512BW
// x86: one batch of W codes spans W * Bits / 8 whole bytes, read with one load of
// `x86_reach` bytes (the next power of two; 8-bit codes are zero-extended directly).
template <unsigned Bits, std::size_t W>
inline constexpr std::size_t x86_block = W * Bits / 8;
template <unsigned Bits, std::size_t W>
inline constexpr std::size_t x86_reach = x86_block<Bits, W> <= 1   ? 1
                                         : x86_block<Bits, W> <= 2 ? 2
                                         : x86_block<Bits, W> <= 4 ? 4
                                         : x86_block<Bits, W> <= 8 ? 8
                                                                   : 16;

// Byte-shuffle control and shift that move code j (of a batch) to the bottom of 32-bit lane j,
// given the batch's bytes repeated in every 128-bit lane.
struct spread_table {
  alignas(64) std::int8_t shuffle[64];
  alignas(64) std::int32_t shift[16];
};
template <unsigned Bits>
constexpr spread_table make_spread_table() noexcept {
  spread_table t{};
  for (unsigned j = 0; j < 16; ++j) {
    const unsigned bit = j * Bits, lo = bit / 8, s = bit % 8;
    t.shuffle[4 * j] = static_cast<std::int8_t>(lo);
    t.shuffle[4 * j + 1] = static_cast<std::int8_t>(s + Bits > 8 ? lo + 1 : 0x80);
    t.shuffle[4 * j + 2] = static_cast<std::int8_t>(0x80);
    t.shuffle[4 * j + 3] = static_cast<std::int8_t>(0x80);
    t.shift[j] = static_cast<std::int32_t>(s);
  }
  return t;
}
template <unsigned Bits>
inline constexpr spread_table spread = make_spread_table<Bits>();

template <unsigned Bits, class Arch>
std::size_t x86_full_batches(std::size_t n) noexcept {
  constexpr std::size_t W = i32<Arch>::size;
  constexpr std::size_t block = x86_block<Bits, W>, reach = x86_reach<Bits, W>;
  const std::size_t whole = n / W;
  if constexpr (reach == block) {
    return whole;
  } else {
    const std::size_t bytes = code_bytes<Arch>(n, Bits);
    const std::size_t safe = bytes >= reach ? (bytes - reach) / block + 1 : 0;
    return safe < whole ? safe : whole;
  }
}
#endif

#if XSIMD_WITH_AVX2
template <unsigned Bits, class Arch>
std::size_t full_batches(std::size_t n, xsimd::avx2) noexcept {
  return x86_full_batches<Bits, Arch>(n);
}
template <unsigned Bits, class Arch, bool Masked = true>
i32<Arch> unpack_batch(const std::uint8_t* in, std::size_t i, xsimd::avx2) noexcept {
  const std::uint8_t* p = in + i / 8 * Bits;
  if constexpr (Bits == 8) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  } else {
    constexpr std::size_t reach = x86_reach<Bits, 8>;
    __m256i raw;
    if constexpr (reach == 1) {
      raw = _mm256_set1_epi8(static_cast<char>(*p));
    } else if constexpr (reach == 2) {
      std::uint16_t v;
      std::memcpy(&v, p, sizeof v);
      raw = _mm256_set1_epi16(static_cast<short>(v));
    } else if constexpr (reach == 4) {
      std::uint32_t v;
      std::memcpy(&v, p, sizeof v);
      raw = _mm256_set1_epi32(static_cast<int>(v));
    } else {
      std::uint64_t v;
      std::memcpy(&v, p, sizeof v);
      raw = _mm256_set1_epi64x(static_cast<long long>(v));
    }
    const __m256i x = _mm256_srlv_epi32(
        _mm256_shuffle_epi8(raw, _mm256_load_si256(reinterpret_cast<const __m256i*>(spread<Bits>.shuffle))),
        _mm256_load_si256(reinterpret_cast<const __m256i*>(spread<Bits>.shift)));
    if constexpr (Masked) {
      return _mm256_and_si256(x, _mm256_set1_epi32(code_mask<Bits>));
    } else {
      return x;
    }
  }
}
#endif

#if XSIMD_WITH_AVX512BW
template <unsigned Bits, class Arch>
std::size_t full_batches(std::size_t n, xsimd::avx512bw) noexcept {
  return x86_full_batches<Bits, Arch>(n);
}
template <unsigned Bits, class Arch, bool Masked = true>
i32<Arch> unpack_batch(const std::uint8_t* in, std::size_t i, xsimd::avx512bw) noexcept {
  const std::uint8_t* p = in + i / 8 * Bits;
  if constexpr (Bits == 8) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  } else {
    constexpr std::size_t reach = x86_reach<Bits, 16>;
    __m512i raw;
    if constexpr (reach == 2) {
      std::uint16_t v;
      std::memcpy(&v, p, sizeof v);
      raw = _mm512_set1_epi16(static_cast<short>(v));
    } else if constexpr (reach == 4) {
      std::uint32_t v;
      std::memcpy(&v, p, sizeof v);
      raw = _mm512_set1_epi32(static_cast<int>(v));
    } else if constexpr (reach == 8) {
      std::uint64_t v;
      std::memcpy(&v, p, sizeof v);
      raw = _mm512_set1_epi64(static_cast<long long>(v));
    } else {
      raw = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    }
    const __m512i x =
        _mm512_srlv_epi32(_mm512_shuffle_epi8(raw, _mm512_load_si512(spread<Bits>.shuffle)),
                          _mm512_load_si512(spread<Bits>.shift));
    if constexpr (Masked) {
      return _mm512_and_si512(x, _mm512_set1_epi32(code_mask<Bits>));
    } else {
      return x;
    }
  }
}
#endif

#if XSIMD_WITH_AVX2 || XSIMD_WITH_AVX512BW
// The last batches: their bytes copied into a zeroed buffer the full-batch decoder may read
// `reach` bytes of. (Defined after the unpack_batch overloads it calls.)
template <unsigned Bits, class Arch, bool Masked>
i32<Arch> x86_unpack_tail(const std::uint8_t* in, std::size_t i, std::size_t n) noexcept {
  constexpr std::size_t reach = x86_reach<Bits, i32<Arch>::size>;
  const std::size_t start = i / 8 * Bits, avail = code_bytes<Arch>(n, Bits) - start;
  std::uint8_t buf[16] = {};
  std::memcpy(buf, in + start, avail < reach ? avail : reach);
  return unpack_batch<Bits, Arch, Masked>(buf, 0, Arch{});
}
#endif
#if XSIMD_WITH_AVX2
template <unsigned Bits, class Arch, bool Masked = true>
i32<Arch> unpack_tail(const std::uint8_t* in, std::size_t i, std::size_t n, xsimd::avx2) noexcept {
  return x86_unpack_tail<Bits, Arch, Masked>(in, i, n);
}
#endif
#if XSIMD_WITH_AVX512BW
template <unsigned Bits, class Arch, bool Masked = true>
i32<Arch> unpack_tail(const std::uint8_t* in, std::size_t i, std::size_t n,
                      xsimd::avx512bw) noexcept {
  return x86_unpack_tail<Bits, Arch, Masked>(in, i, n);
}
#endif

// ---- packing codes -------------------------------------------------------------------------
//
//   pack_batch<Bits, Arch>(q, out, i)     writes codes [i, i + W) (i % W == 0 on x86)
//   pack_tail<Bits, Arch>(q, out, i, n)   writes codes [i, n) and zero high bits of the last
//                                         byte; lanes >= n - i of q must be zero
//
// Both write exactly the bytes the codes occupy (never past code_bytes(n, Bits)).

// Portable: appends the codes to the stream, continuing a byte the previous batch started.
template <unsigned Bits, class Arch>
void pack_lanes(const i32<Arch>& q, std::uint8_t* out, std::size_t first,
                std::size_t count) noexcept {
  alignas(64) std::int32_t l[i32<Arch>::size];
  q.store_aligned(l);
  const std::size_t bit = first * Bits;
  std::uint8_t* o = out + bit / 8;
  unsigned fill = bit % 8;
  std::uint32_t acc = fill != 0 ? (*o & ((1u << fill) - 1)) : 0u;
  for (std::size_t j = 0; j < count; ++j) {
    acc |= static_cast<std::uint32_t>(l[j]) << fill;
    for (fill += Bits; fill >= 8; fill -= 8, acc >>= 8) *o++ = static_cast<std::uint8_t>(acc);
  }
  if (fill > 0) *o = static_cast<std::uint8_t>(acc);
}
template <unsigned Bits, class Arch>
void pack_batch(const i32<Arch>& q, std::uint8_t* out, std::size_t i, xsimd::generic) noexcept {
  pack_lanes<Bits, Arch>(q, out, i, i32<Arch>::size);
}
template <unsigned Bits, class Arch>
void pack_tail(const i32<Arch>& q, std::uint8_t* out, std::size_t i, std::size_t n,
               xsimd::generic) noexcept {
  pack_lanes<Bits, Arch>(q, out, i, n - i);
}

#if XSIMD_WITH_AVX2 || XSIMD_WITH_AVX512BW
// Byte shuffle gathering bytes [0, Bits) and [8, 8 + Bits) of a 128-bit register.
struct join_table {
  alignas(16) std::int8_t shuffle[16];
};
template <unsigned Bits>
constexpr join_table make_join_table() noexcept {
  join_table t{};
  for (unsigned j = 0; j < 16; ++j)
    t.shuffle[j] = static_cast<std::int8_t>(j < Bits ? j : j < 2 * Bits ? j - Bits + 8 : 0x80);
  return t;
}
template <unsigned Bits>
inline constexpr join_table join_bytes = make_join_table<Bits>();

// Eight codes (16-bit lanes of `w`, low 128 bits) to one 8*Bits-bit integer, by multiply-adds:
// pairs (Bits -> 2*Bits bits), pairs again (4*Bits), then the two 32-bit halves (8*Bits).
template <unsigned Bits, class Arch>
std::uint64_t x86_join8(__m128i w) noexcept {
  const __m128i d = _mm_madd_epi16(w, _mm_set1_epi32(static_cast<int>(1u | 1u << (16 + Bits))));
  const __m128i e = _mm_madd_epi16(_mm_packus_epi32(d, d),
                                   _mm_set1_epi32(static_cast<int>(1u | 1u << (16 + 2 * Bits))));
  const __m128i v = _mm_or_si128(_mm_and_si128(e, _mm_set_epi32(0, 0, 0, -1)),
                                 _mm_slli_epi64(_mm_srli_epi64(e, 32), 4 * Bits));
  return static_cast<std::uint64_t>(_mm_cvtsi128_si64(v));
}
#endif

#if XSIMD_WITH_AVX2
template <unsigned Bits, class Arch>
void pack_batch(const i32<Arch>& q, std::uint8_t* out, std::size_t i, xsimd::avx2) noexcept {
  std::uint8_t* p = out + i / 8 * Bits;
  const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  if constexpr (Bits == 8) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(w, w));
  } else {
    const std::uint64_t v = x86_join8<Bits, Arch>(w);
    std::memcpy(p, &v, Bits);
  }
}
#endif

#if XSIMD_WITH_AVX512BW
template <unsigned Bits, class Arch>
void pack_batch(const i32<Arch>& q, std::uint8_t* out, std::size_t i, xsimd::avx512bw) noexcept {
  std::uint8_t* p = out + i / 8 * Bits;
  if constexpr (Bits == 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(q));
  } else if constexpr (Bits == 4) {
    // Each 64-bit lane holds codes 2m (low half) and 2m+1: fold the second onto bits 4..7.
    const __m512i pairs = _mm512_or_si512(q, _mm512_srli_epi64(q, 28));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm512_cvtepi64_epi8(pairs));
  } else {
    // x86_join8 on both 128-bit halves at once: codes 0..7 end in qword 0, codes 8..15 in
    // qword 2; bring them together, drop the zero bytes between, store 2 * Bits bytes.
    const __m256i w = _mm512_cvtepi32_epi16(q);
    const __m256i d = _mm256_madd_epi16(w, _mm256_set1_epi32(static_cast<int>(1u | 1u << (16 + Bits))));
    const __m256i e = _mm256_madd_epi16(_mm256_packus_epi32(d, d),
                                        _mm256_set1_epi32(static_cast<int>(1u | 1u << (16 + 2 * Bits))));
    const __m256i v = _mm256_or_si256(_mm256_and_si256(e, _mm256_set1_epi64x(0xFFFFFFFF)),
                                      _mm256_slli_epi64(_mm256_srli_epi64(e, 32), 4 * Bits));
    const __m128i both = _mm256_castsi256_si128(_mm256_permute4x64_epi64(v, 0x08));
    const __m128i packed = _mm_shuffle_epi8(both, _mm_load_si128(reinterpret_cast<const __m128i*>(join_bytes<Bits>.shuffle)));
    _mm512_mask_storeu_epi8(p, (std::uint64_t{1} << (2 * Bits)) - 1, _mm512_zextsi128_si512(packed));
  }
}
#endif

#if XSIMD_WITH_AVX2 || XSIMD_WITH_AVX512BW
// The last, partial batch: packed into a buffer, of which the occupied bytes are copied.
template <unsigned Bits, class Arch>
void x86_pack_tail(const i32<Arch>& q, std::uint8_t* out, std::size_t i, std::size_t n) noexcept {
  const std::size_t start = i / 8 * Bits;
  std::uint8_t buf[16];
  pack_batch<Bits, Arch>(q, buf, 0, Arch{});
  std::memcpy(out + start, buf, code_bytes<Arch>(n, Bits) - start);
}
#endif
#if XSIMD_WITH_AVX2
template <unsigned Bits, class Arch>
void pack_tail(const i32<Arch>& q, std::uint8_t* out, std::size_t i, std::size_t n,
               xsimd::avx2) noexcept {
  x86_pack_tail<Bits, Arch>(q, out, i, n);
}
#endif
#if XSIMD_WITH_AVX512BW
template <unsigned Bits, class Arch>
void pack_tail(const i32<Arch>& q, std::uint8_t* out, std::size_t i, std::size_t n,
               xsimd::avx512bw) noexcept {
  x86_pack_tail<Bits, Arch>(q, out, i, n);
}
#endif

}  // namespace detail::packed

namespace detail::affine {

using packed::f32;
using packed::i32;

template <class Arch>
f32<Arch> to_float(const i32<Arch>& q) noexcept {
  return xsimd::batch_cast<float>(q);
}

template <unsigned Bits, class Arch>
void quantize_pack(const float* x, std::size_t n, affine_params p, std::uint8_t* out) noexcept {
  using F = f32<Arch>;
  constexpr std::size_t W = F::size;
  const float inv_s = p.scale != 0.0f ? 1.0f / p.scale : 0.0f;
  const F inv(inv_s), bias(-p.offset * inv_s);
  const F max_code(static_cast<float>((1u << Bits) - 1));
  const auto encode = [&](const F& v) {
    return packed::to_code<Arch>(packed::fmadd<Arch>(v, inv, bias), max_code, Arch{});
  };
  std::size_t i = 0;
  for (const std::size_t end = n / W * W; i < end; i += W)
    packed::pack_batch<Bits, Arch>(encode(F::load_unaligned(x + i)), out, i, Arch{});
  if (i < n) {
    const std::size_t k = n - i;
    const i32<Arch> q = encode(packed::load_first<Arch>(x + i, k, Arch{}));
    packed::pack_tail<Bits, Arch>(packed::keep_first<Arch>(q, k, Arch{}), out, i, n, Arch{});
  }
}

template <unsigned Bits, class Arch>
void unpack_dequantize(const std::uint8_t* in, std::size_t n, affine_params p, float* y) noexcept {
  using F = f32<Arch>;
  constexpr std::size_t W = F::size;
  const F s(p.scale), o(p.offset);
  const std::size_t full = packed::full_batches<Bits, Arch>(n, Arch{});
  std::size_t i = 0, b = 0;
  for (; b + 2 <= full; b += 2, i += 2 * W) {
    const F d0 = packed::fmadd<Arch>(to_float<Arch>(packed::unpack_batch<Bits, Arch>(in, i, Arch{})), s, o);
    const F d1 = packed::fmadd<Arch>(to_float<Arch>(packed::unpack_batch<Bits, Arch>(in, i + W, Arch{})), s, o);
    d0.store_unaligned(y + i);
    d1.store_unaligned(y + i + W);
  }
  for (; b < full; ++b, i += W)
    packed::fmadd<Arch>(to_float<Arch>(packed::unpack_batch<Bits, Arch>(in, i, Arch{})), s, o)
        .store_unaligned(y + i);
  for (; i < n; i += W) {
    const std::size_t k = n - i < W ? n - i : W;
    const F d = packed::fmadd<Arch>(to_float<Arch>(packed::unpack_tail<Bits, Arch>(in, i, n, Arch{})), s, o);
    packed::store_first<Arch>(d, y + i, k, Arch{});
  }
}

template <unsigned Bits, class Arch>
float decode_dot(const std::uint8_t* in, std::size_t n, affine_params p, const float* v) noexcept {
  using F = f32<Arch>;
  constexpr std::size_t W = F::size;
  const F s(p.scale), o(p.offset);
  const auto decode = [&](std::size_t i) {
    return packed::fmadd<Arch>(to_float<Arch>(packed::unpack_batch<Bits, Arch>(in, i, Arch{})), s, o);
  };
  const std::size_t full = packed::full_batches<Bits, Arch>(n, Arch{});
  F a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);
  std::size_t i = 0, b = 0;
  for (; b + 4 <= full; b += 4, i += 4 * W) {
    a0 = packed::fmadd<Arch>(decode(i), F::load_unaligned(v + i), a0);
    a1 = packed::fmadd<Arch>(decode(i + W), F::load_unaligned(v + i + W), a1);
    a2 = packed::fmadd<Arch>(decode(i + 2 * W), F::load_unaligned(v + i + 2 * W), a2);
    a3 = packed::fmadd<Arch>(decode(i + 3 * W), F::load_unaligned(v + i + 3 * W), a3);
  }
  for (; b < full; ++b, i += W) a0 = packed::fmadd<Arch>(decode(i), F::load_unaligned(v + i), a0);
  for (; i < n; i += W) {
    // Lanes past n must add exactly nothing, even if a decoded value there is not finite.
    const std::size_t k = n - i < W ? n - i : W;
    const F d = packed::keep_first<Arch>(
        packed::fmadd<Arch>(to_float<Arch>(packed::unpack_tail<Bits, Arch>(in, i, n, Arch{})), s, o),
        k, Arch{});
    a1 = packed::fmadd<Arch>(d, packed::load_first<Arch>(v + i, k, Arch{}), a1);
  }
  return qcodec::simd::reduce_add((a0 + a1) + (a2 + a3));
}

template <unsigned Bits, class Arch>
void decode_axpy(const std::uint8_t* in, std::size_t n, affine_params p, float a, float* y) noexcept {
  using F = f32<Arch>;
  constexpr std::size_t W = F::size;
  const F s(p.scale), o(p.offset), va(a);
  const std::size_t full = packed::full_batches<Bits, Arch>(n, Arch{});
  std::size_t i = 0, b = 0;
  for (; b + 2 <= full; b += 2, i += 2 * W) {
    const F d0 = packed::fmadd<Arch>(to_float<Arch>(packed::unpack_batch<Bits, Arch>(in, i, Arch{})), s, o);
    const F d1 = packed::fmadd<Arch>(to_float<Arch>(packed::unpack_batch<Bits, Arch>(in, i + W, Arch{})), s, o);
    packed::fmadd<Arch>(d0, va, F::load_unaligned(y + i)).store_unaligned(y + i);
    packed::fmadd<Arch>(d1, va, F::load_unaligned(y + i + W)).store_unaligned(y + i + W);
  }
  for (; b < full; ++b, i += W) {
    const F d = packed::fmadd<Arch>(to_float<Arch>(packed::unpack_batch<Bits, Arch>(in, i, Arch{})), s, o);
    packed::fmadd<Arch>(d, va, F::load_unaligned(y + i)).store_unaligned(y + i);
  }
  for (; i < n; i += W) {
    const std::size_t k = n - i < W ? n - i : W;
    const F d = packed::fmadd<Arch>(to_float<Arch>(packed::unpack_tail<Bits, Arch>(in, i, n, Arch{})), s, o);
    const F r = packed::fmadd<Arch>(d, va, packed::load_first<Arch>(y + i, k, Arch{}));
    packed::store_first<Arch>(r, y + i, k, Arch{});
  }
}

}  // namespace detail::affine

template <class Arch>
void quantize_pack(const float* x, std::size_t n, affine_params p, unsigned bits,
                   std::uint8_t* out) noexcept {
  detail::packed::with_bits<Arch>(bits, [&](auto b) {
    detail::affine::quantize_pack<decltype(b)::value, Arch>(x, n, p, out);
  });
}

template <class Arch>
void unpack_dequantize(const std::uint8_t* in, std::size_t n, unsigned bits, affine_params p,
                       float* y) noexcept {
  detail::packed::with_bits<Arch>(bits, [&](auto b) {
    detail::affine::unpack_dequantize<decltype(b)::value, Arch>(in, n, p, y);
  });
}

template <class Arch>
float decode_dot(const std::uint8_t* in, std::size_t n, unsigned bits, affine_params p,
                 const float* v) noexcept {
  return detail::packed::with_bits<Arch>(bits, [&](auto b) {
    return detail::affine::decode_dot<decltype(b)::value, Arch>(in, n, p, v);
  });
}

template <class Arch>
void decode_axpy(const std::uint8_t* in, std::size_t n, unsigned bits, affine_params p, float a,
                 float* y) noexcept {
  detail::packed::with_bits<Arch>(bits, [&](auto b) {
    detail::affine::decode_axpy<decltype(b)::value, Arch>(in, n, p, a, y);
  });
}

// In codec code std::nearbyint and std::fma are library calls unless the program is built with
// SSE4.1 and FMA; per-channel keys round every element of a unit, so they take this kernel.
template <class Arch>
void quantize_codes(const float* x, const float* inv, const float* bias, std::size_t n,
                    unsigned bits, std::uint8_t* codes) noexcept {
  using F = detail::packed::f32<Arch>;
  constexpr std::size_t W = F::size;
  const F max_code(static_cast<float>((1u << bits) - 1));
  // Codes [i, i + k) from the batch of t = fma(x, inv, bias) of elements i, i + 1, ...
  const auto store = [&](const F& t, std::size_t i, std::size_t k) {
    alignas(64) std::int32_t q[W];
    detail::packed::to_code<Arch>(t, max_code, Arch{}).store_aligned(q);
    for (std::size_t j = 0; j < k; ++j) codes[i + j] = static_cast<std::uint8_t>(q[j]);
  };
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    store(detail::packed::fmadd<Arch>(F::load_unaligned(x + i), F::load_unaligned(inv + i),
                                      F::load_unaligned(bias + i)),
          i, W);
  }
  if (i < n) {  // the first n - i lanes, as quantize_pack's tail
    const std::size_t k = n - i;
    const auto first = [&](const float* p) {
      return detail::packed::load_first<Arch>(p + i, k, Arch{});
    };
    store(detail::packed::fmadd<Arch>(first(x), first(inv), first(bias)), i, k);
  }
}

}  // namespace simd
}  // namespace qcodec

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
