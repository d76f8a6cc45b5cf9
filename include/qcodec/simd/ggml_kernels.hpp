#pragma once
// Kernels of qcodec's ggml-compatible block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL,
// MXFP4 and the activation formats Q8_0 / Q8_1): dequantize_row, vec_dot, and qcodec's own
// encoders (quantize_row). The block structs and their layouts are in
// quant/block/ggml/common.hpp; the public API is in quant/block/ggml/<format>.hpp.
//
// Shapes: a row of k values (k a multiple of 32) is k / 32 consecutive blocks; float arrays are
// contiguous and may be unaligned. vec_dot(n, s, x, y) writes to *s the dot product of the
// n-value rows x and y.
//
// Exact definitions (every target returns the oracle's bits; parity tests compare with memcmp):
//
//   dequantize_row  ggml's dequantize_row_<fmt>: y = float(q - zero) * d, y = float(q) * d + m
//                   (a rounded multiply, then an add: never fused), y = d * float(level).
//   vec_dot         ggml's generic (scalar) ggml_vec_dot_<fmt>_<q8>: per block an exact integer
//                   sum of code products, then the same float operations in the same order,
//                   accumulated block after block into one float. The kernels compute the
//                   integer sums with SIMD (int16 lanes, vpmaddwd) and keep the float part scalar
//                   and in order, so they match the oracle bit for bit (ggml's own SIMD paths
//                   reassociate the float sum and do not match its generic code).
//   quantize_row    qcodec's encoders, defined by the oracles (ref::quantize_row_<fmt>, the
//                   algorithms in detail::sym_encode, offset_encode, iq4nl_encode, mxfp4_encode,
//                   q8_encode). Sums over a block follow detail::fold16's canonical order and
//                   rounding to integers uses the current rounding mode, so SIMD encoders of any
//                   width reproduce them exactly.
//
// FMA contraction: GCC contracts a * b + c into an FMA in C++ by default (-ffp-contract=fast in
// every C++ mode, -std=c++20 included), across statements and through vector intrinsics.
// Wherever ggml's arithmetic or target parity needs an unfused multiply-add, the product goes
// through detail::unfused (an empty asm); intended fusions are written as explicit fma.
//
// Inputs must be finite: NaN or infinity in x give unspecified (but memory-safe) blocks.
//
// Kernel structure (x86): decoders and dot products work block by block (AVX-512: a block is
// two registers; AVX2: four). The Q8_0 / Q8_1 encoders handle 16 blocks per group (AVX-512) so
// that one transposed reduction, two divisions and one binary16 conversion serve all of them,
// computing the next group's scales before the current group's codes. The Q4_0 / Q5_0 scale
// search on AVX-512 transposes 16 blocks (one block per lane), so that its sums, selection and
// scale arithmetic are vertical, and interleaves successive groups the same way; on AVX2 it runs
// in phases over groups of 8. The Q4_1, Q5_1, IQ4_NL and MXFP4 encoders are the oracles'
// algorithms written as templates on the target (compiled with its flags and vectorised by the
// compiler). Other targets (NEON) run the scalar templates.

#include <qcodec/quant/block/ggml/common.hpp>
#include <qcodec/simd/arch.hpp>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

namespace qcodec::ggml {

namespace detail {

// ---------------------------------------------------------------------------------------------
// Scalar building blocks, templates on the target (kernels may call them; the oracles use the
// `simd::scalar` instantiation). No std::min / std::max: their instantiations are shared by all
// translation units, whatever the flags (kernel_table.hpp rules).

template <class Arch>
constexpr float f16_to_f32(half h) noexcept {
  return simd::detail::cvt::portable_f16_to_f32<Arch>(h.bits);
}
template <class Arch>
constexpr half f32_to_f16(float f) noexcept {
  return half::from_bits(simd::detail::cvt::portable_f32_to_f16<Arch>(f));
}

template <class Arch>
constexpr float clampf(float v, float lo, float hi) noexcept {
  const float a = v > lo ? v : lo;
  return a < hi ? a : hi;
}

/// Largest finite binary16 value: encoders clamp scales to it, so that huge inputs saturate
/// instead of producing infinite scales.
inline constexpr float half_max = 65504.0f;

/// Power-of-two rescaling of a block whose largest magnitude is `amax` (normal, >= 2^-100):
/// x * up lies in [1, 2) * sign for the largest element (or [2, 4) when amax >= 2^127), and
/// down = 1 / up exactly. Encoders search on x * up so that their float sums neither overflow
/// nor lose precision, whatever the magnitude of the input; being a power of two, the scaling
/// changes no rounding.
template <class Arch>
struct prescale {
  float up;
  float down;
};
template <class Arch>
constexpr prescale<Arch> prescale_for(float amax) noexcept {
  std::uint32_t be = std::bit_cast<std::uint32_t>(amax) >> 23;  // biased exponent, 27..254
  be = be < 253u ? be : 253u;
  return {std::bit_cast<float>((254u - be) << 23), std::bit_cast<float>(be << 23)};
}

/// Below this block magnitude every encoder emits a zero block: any binary16 scale for it
/// underflows to zero anyway.
inline constexpr float tiny_block = 0x1p-100f;

/// Index of the IQ4_NL level nearest to v (ties to the larger level): ggml's best_index_int8,
/// a branch-free binary search on exact midpoints (2v against the integer sums of neighbours).
template <class Arch>
constexpr int iq4nl_index(float v) noexcept {
  const float v2 = v + v;
  int idx = 0;
  for (int step = 8; step > 0; step >>= 1) {
    const int j = idx + step;
    idx = v2 >= static_cast<float>(kvalues_iq4nl[j - 1] + kvalues_iq4nl[j]) ? j : idx;
  }
  return idx;
}

/// IQ4_NL level index and level of v by counting the midpoints below 2v: the same index as
/// iq4nl_index (the levels are sorted), in a form compilers vectorise (no table-indexed loads).
template <class Arch>
constexpr int iq4nl_index_count(float v) noexcept {
  const float v2 = v + v;
  int idx = 0;
  for (int j = 1; j < 16; ++j)
    idx += v2 >= static_cast<float>(kvalues_iq4nl[j - 1] + kvalues_iq4nl[j]);
  return idx;
}
template <class Arch>
constexpr float iq4nl_level(float v) noexcept {
  const float v2 = v + v;
  int q = kvalues_iq4nl[0];
  for (int j = 1; j < 16; ++j)
    q += v2 >= static_cast<float>(kvalues_iq4nl[j - 1] + kvalues_iq4nl[j])
             ? kvalues_iq4nl[j] - kvalues_iq4nl[j - 1]
             : 0;
  return static_cast<float>(q);
}

/// MXFP4 code of v, given m = |v| / d in table units (d = 2^(e - 128)): the nearest of the 16
/// table values, ties to the smaller magnitude, and +0 for zero, exactly as ggml's linear
/// search picks. Written as compare counts so that compilers vectorise it.
template <class Arch>
constexpr int mxfp4_index(float m) noexcept {
  // midpoints between the magnitudes 0, 1, 2, 3, 4, 6, 8, 12
  return (m > 0.5f) + (m > 1.5f) + (m > 2.5f) + (m > 3.5f) + (m > 5.0f) + (m > 7.0f) + (m > 10.0f);
}
/// The magnitude (in table units) that mxfp4_index(m) picks.
template <class Arch>
constexpr float mxfp4_magnitude(float m) noexcept {
  return static_cast<float>((m > 0.5f) + (m > 1.5f) + (m > 2.5f) + (m > 3.5f) + 2 * (m > 5.0f) +
                            2 * (m > 7.0f) + 4 * (m > 10.0f));
}
/// |v| * 2^(128 - e) = |v| / e8m0_half(e), exactly (split in two factors so that e = 0, whose
/// inverse 2^128 is not a float, needs no special case; both products are exact because the
/// result stays below 2^24 and above the subnormals wherever it matters for the comparisons).
template <class Arch>
constexpr float mxfp4_units(float v, int e) noexcept {
  const float a = v < 0.0f ? -v : v;
  const float f1 =
      std::bit_cast<float>(static_cast<std::uint32_t>(191 - e / 2) << 23);  // 2^(64 - e/2)
  const float f2 = std::bit_cast<float>(static_cast<std::uint32_t>(191 - (e - e / 2)) << 23);
  return a * f1 * f2;
}

// ---------------------------------------------------------------------------------------------
// qcodec's encoders. Each returns the block's decoded-space parameters and its codes; the
// format functions pack them. Shared by the oracles and, for the formats without a SIMD
// encoder, by the kernels (instantiated for the kernel's target).

/// Symmetric formats (Q4_0: N = 8, Q5_0: N = 16): x[i] ~= d * l[i], l in [-N, N - 1].
///
/// Search: with m the largest-magnitude value (the maximum if max >= -min, else the minimum),
/// try the scales that map m to -N, -N - 1/2 (clipping it) and N - 1; for each, round
/// every value to its level (clamped) and score the codes by their least-squares fit
/// (sum l x)^2 / sum l^2; keep the best, with d = sum l x / sum l^2. Then round d to binary16
/// and re-round every value to its nearest level under the decoded d, so that no value is
/// further from its decoding than it has to be. Sums use fold16's order on the prescaled block.
template <class Arch, int N>
struct sym_search {
  static constexpr int count = 3;
  static constexpr float candidates[count] = {-static_cast<float>(N), -static_cast<float>(N) - 0.5f,
                                              static_cast<float>(N) - 1.0f};
};

/// The scale of a symmetric block from its extreme `ext` (signed) and the prescaled values;
/// returns the chosen d in the input's units (before binary16 rounding).
template <class Arch, int N>
float sym_fit(const float* x, float amax, float ext) noexcept {
  const prescale<Arch> ps = prescale_for<Arch>(amax);
  float xs[32];
  for (int j = 0; j < 32; ++j) xs[j] = x[j] * ps.up;
  const float inv = 1.0f / (ext * ps.up);
  float best = 0.0f, best_lx = 0.0f, best_l2 = 1.0f;
  for (int c = 0; c < sym_search<Arch, N>::count; ++c) {
    const float id = sym_search<Arch, N>::candidates[c] * inv;
    float l[32];
    // nearbyint (current rounding mode, sign of zero kept) is what vroundps / vrndscaleps do
    for (int j = 0; j < 32; ++j)
      l[j] = std::nearbyint(
          clampf<Arch>(xs[j] * id, -static_cast<float>(N), static_cast<float>(N - 1)));
    float a[16], b[16];
    for (int j = 0; j < 16; ++j) {
      a[j] = std::fma(l[j], xs[j], l[j + 16] * xs[j + 16]);
      b[j] = std::fma(l[j], l[j], l[j + 16] * l[j + 16]);
    }
    const float lx = fold16<Arch>(a);
    const float l2 = fold16<Arch>(b);  // >= 49: the extreme always lands on |l| >= N - 1
    const float score = lx * lx / l2;
    if (c == 0 || score > best) {
      best = score;
      best_lx = lx;
      best_l2 = l2;
    }
  }
  return best_lx / best_l2 * ps.down;
}

/// Encodes one symmetric block: writes l[i] + N (0..2N-1) to q[i], returns the scale.
template <class Arch, int N>
half sym_encode(const float* x, std::uint8_t* q) noexcept {
  float mx = x[0], mn = x[0];
  for (int j = 1; j < 32; ++j) {
    mx = x[j] > mx ? x[j] : mx;
    mn = x[j] < mn ? x[j] : mn;
  }
  const float amax = mx >= -mn ? mx : -mn;
  const float ext = mx >= -mn ? mx : mn;
  float d = 0.0f;
  if (amax >= tiny_block) d = clampf<Arch>(sym_fit<Arch, N>(x, amax, ext), -half_max, half_max);
  const half dh = f32_to_f16<Arch>(d);
  const float dd = f16_to_f32<Arch>(dh);
  const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float l = round_nearest<Arch>(
        clampf<Arch>(x[j] * id, -static_cast<float>(N), static_cast<float>(N - 1)));
    q[j] = static_cast<std::uint8_t>(static_cast<int>(l) + N);
  }
  return dh;
}

/// Offset formats (Q4_1: NMAX = 15, Q5_1: NMAX = 31): x[i] ~= d * l[i] + m, l in [0, NMAX].
///
/// Search: for the scales (NMAX + t) / (max - min), t in {-1/2, 0, 1/2}, round (x - min) to
/// levels and fit d and m jointly by least squares; keep the fit with the smallest squared
/// error, then run one more round-and-refit step from it (kept if better). Finally round d and
/// m to binary16 and re-round every value to its nearest level under the decoded d and m.
template <class Arch, int NMAX>
struct offset_fit {
  float d;
  float m;
  float err;
  bool ok;
};

// Inlined so that the independent candidate fits of a block overlap (each alone is a chain of
// dependent reductions and divisions).
template <class Arch, int NMAX>
[[gnu::always_inline]] inline offset_fit<Arch, NMAX> offset_try(const float* xs, float sx, float m0,
                                                                float id) noexcept {
  float l[32];
  for (int j = 0; j < 32; ++j) {
    const float t = (xs[j] - m0) * id;
    l[j] = round_nearest<Arch>(clampf<Arch>(t, 0.0f, static_cast<float>(NMAX)));
  }
  float a[16], b[16], c[16];
  for (int j = 0; j < 16; ++j) {
    a[j] = l[j] + l[j + 16];
    b[j] = std::fma(l[j], l[j], l[j + 16] * l[j + 16]);  // integers: exact
    c[j] = std::fma(l[j], xs[j], l[j + 16] * xs[j + 16]);
  }
  const float sl = fold16<Arch>(a), sl2 = fold16<Arch>(b), slx = fold16<Arch>(c);
  const float det = std::fma(32.0f, sl2, -(sl * sl));  // exact: integers below 2^24
  if (!(det > 0.0f)) return {0.0f, 0.0f, 0.0f, false};
  const float d = std::fma(32.0f, slx, -(sx * sl)) / det;
  const float m = std::fma(sl2, sx, -(sl * slx)) / det;
  float e[16];
  for (int j = 0; j < 16; ++j) {
    const float r0 = std::fma(d, l[j], m) - xs[j];
    const float r1 = std::fma(d, l[j + 16], m) - xs[j + 16];
    e[j] = std::fma(r0, r0, r1 * r1);
  }
  return {d, m, fold16<Arch>(e), true};
}

template <class Arch, int NMAX>
void offset_encode(const float* x, half& dh, half& mh, std::uint8_t* q) noexcept {
  float mx = x[0], mn = x[0];
  for (int j = 1; j < 32; ++j) {
    mx = x[j] > mx ? x[j] : mx;
    mn = x[j] < mn ? x[j] : mn;
  }
  const float amax = mx >= -mn ? mx : -mn;
  float d = 0.0f, m = mn;
  if (mx > mn && amax >= tiny_block) {
    const prescale<Arch> ps = prescale_for<Arch>(amax);
    float xs[32], a[16];
    for (int j = 0; j < 32; ++j) xs[j] = x[j] * ps.up;
    for (int j = 0; j < 16; ++j) a[j] = xs[j] + xs[j + 16];
    const float sx = fold16<Arch>(a);
    const float mns = mn * ps.up;
    const float range = mx * ps.up - mns;
    offset_fit<Arch, NMAX> best{range / NMAX, mns, 0.0f, false};
    const float nmax = static_cast<float>(NMAX);
    const offset_fit<Arch, NMAX> fits[3] = {
        offset_try<Arch, NMAX>(xs, sx, mns, (nmax - 0.5f) / range),
        offset_try<Arch, NMAX>(xs, sx, mns, nmax / range),
        offset_try<Arch, NMAX>(xs, sx, mns, (nmax + 0.5f) / range)};
    for (const offset_fit<Arch, NMAX>& f : fits)
      if (f.ok && (!best.ok || f.err < best.err)) best = f;
    if (best.ok && best.d > 0.0f) {
      const offset_fit<Arch, NMAX> f = offset_try<Arch, NMAX>(xs, sx, best.m, 1.0f / best.d);
      if (f.ok && f.err < best.err) best = f;
    }
    d = best.d * ps.down;
    m = best.m * ps.down;
  }
  dh = f32_to_f16<Arch>(clampf<Arch>(d, -half_max, half_max));
  mh = f32_to_f16<Arch>(clampf<Arch>(m, -half_max, half_max));
  const float dd = f16_to_f32<Arch>(dh);
  const float md = f16_to_f32<Arch>(mh);
  const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float t = (x[j] - md) * id;
    q[j] = static_cast<std::uint8_t>(
        round_nearest<Arch>(clampf<Arch>(t, 0.0f, static_cast<float>(NMAX))));
  }
}

/// IQ4_NL: x[i] ~= d * kvalues_iq4nl[l[i]].
///
/// Search: with m the largest-magnitude value, start from the scales that map m to the levels'
/// ends and beyond (-135, -127, -119 on the negative side, 105, 113, 121 on the positive
/// side); for each, pick every value's nearest level, score by the weighted-free least-squares
/// fit (sum q x)^2 / sum q^2, then take one Lloyd step (refit d, re-pick levels) and score
/// again. Keep the best d, round it to binary16 and re-pick levels under the decoded d.
/// (ggml's encoder weights the fit by x^2, which does not minimise the squared error.)
template <class Arch>
struct iq4nl_search {
  static constexpr float candidates[6] = {-135.0f, -127.0f, -119.0f, 105.0f, 113.0f, 121.0f};
};

template <class Arch>
half iq4nl_encode(const float* x, std::uint8_t* q) noexcept {
  float mx = x[0], mn = x[0];
  for (int j = 1; j < 32; ++j) {
    mx = x[j] > mx ? x[j] : mx;
    mn = x[j] < mn ? x[j] : mn;
  }
  const float amax = mx >= -mn ? mx : -mn;
  const float ext = mx >= -mn ? mx : mn;
  float d = 0.0f;
  if (amax >= tiny_block) {
    const prescale<Arch> ps = prescale_for<Arch>(amax);
    float xs[32];
    for (int j = 0; j < 32; ++j) xs[j] = x[j] * ps.up;
    const float inv = 1.0f / (ext * ps.up);
    float best = -1.0f, best_d = 0.0f;
    for (const float c : iq4nl_search<Arch>::candidates) {
      float id = c * inv;
      for (int step = 0; step < 2; ++step) {
        float a[16], b[16];
        for (int j = 0; j < 16; ++j) {
          const float q0 = iq4nl_level<Arch>(xs[j] * id);
          const float q1 = iq4nl_level<Arch>(xs[j + 16] * id);
          a[j] = std::fma(q0, xs[j], q1 * xs[j + 16]);
          b[j] = std::fma(q0, q0, q1 * q1);
        }
        const float qx = fold16<Arch>(a);
        const float q2 = fold16<Arch>(b);  // integer-valued, exact
        if (!(q2 > 0.0f)) break;
        const float score = qx * qx / q2;
        const float dc = qx / q2;
        if (score > best) {
          best = score;
          best_d = dc;
        }
        if (dc == 0.0f) break;
        id = 1.0f / dc;
      }
    }
    d = clampf<Arch>(best_d * ps.down, -half_max, half_max);
  }
  const half dh = f32_to_f16<Arch>(d);
  const float dd = f16_to_f32<Arch>(dh);
  const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
  for (int j = 0; j < 32; ++j) q[j] = static_cast<std::uint8_t>(iq4nl_index_count<Arch>(x[j] * id));
  return dh;
}

/// MXFP4: x[i] ~= 2^(e - 128) * kvalues_mxfp4[q[i]].
///
/// ggml picks e = floor(log2(amax)) - 2 + 127, so that amax / 2^(e - 127) lies in [4, 8): the
/// largest E2M1 magnitude, 6, then clips every value above 6 * 2^(e - 127). qcodec also tries
/// e + 1 (no clipping, coarser steps) and keeps the exponent with the smaller squared error.
/// (The exponent below only clips more.) Codes are the nearest values, as in ggml.
template <class Arch>
std::uint8_t mxfp4_encode(const float* x, std::uint8_t* q) noexcept {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float a = x[j] < 0.0f ? -x[j] : x[j];
    amax = a > amax ? a : amax;
  }
  int e0 = 0;
  if (amax > 0.0f) {
    // floor(log2(amax)) exactly, subnormals included
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(amax);
    const int be = static_cast<int>(bits >> 23);
    const int lg = be != 0 ? be - 127 : -127 - std::countl_zero(bits << 9);
    e0 = lg - 2 + 127;
    e0 = e0 < 0 ? 0 : (e0 > 254 ? 254 : e0);
  }
  int best_e = e0;
  float best_err = 0.0f;
  const int e_last = e0 < 254 ? e0 + 1 : e0;
  for (int e = e0; e <= e_last; ++e) {
    const float d = e8m0_half<Arch>(static_cast<std::uint8_t>(e));
    float a[16];
    for (int j = 0; j < 16; ++j) {
      // |decoded - x| = |magnitude * d - |x||; magnitude * d is exact
      const float a0 = x[j] < 0.0f ? -x[j] : x[j];
      const float a1 = x[j + 16] < 0.0f ? -x[j + 16] : x[j + 16];
      const float r0 = mxfp4_magnitude<Arch>(mxfp4_units<Arch>(x[j], e)) * d - a0;
      const float r1 = mxfp4_magnitude<Arch>(mxfp4_units<Arch>(x[j + 16], e)) * d - a1;
      a[j] = std::fma(r0, r0, r1 * r1);
    }
    const float err = fold16<Arch>(a);
    if (e == e0 || err < best_err) {
      best_err = err;
      best_e = e;
    }
  }
  for (int j = 0; j < 32; ++j) {
    const int k = mxfp4_index<Arch>(mxfp4_units<Arch>(x[j], best_e));
    q[j] = static_cast<std::uint8_t>(k | (x[j] < 0.0f && k != 0 ? 8 : 0));
  }
  return static_cast<std::uint8_t>(best_e);
}

/// Q8_0 / Q8_1: d = binary16(min(amax / 127, 65504)), q[i] = round(x[i] / decoded d) clamped
/// to [-127, 127]. The same scale as ggml's encoder, but rounding against the scale the decoder
/// will use, so no value decodes further from its input than under ggml's encoder.
template <class Arch>
half q8_encode(const float* x, std::int8_t* q) noexcept {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float a = x[j] < 0.0f ? -x[j] : x[j];
    amax = a > amax ? a : amax;
  }
  float d = amax / 127.0f;
  d = d < half_max ? d : half_max;
  const half dh = f32_to_f16<Arch>(d);
  const float dd = f16_to_f32<Arch>(dh);
  const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
  for (int j = 0; j < 32; ++j)
    q[j] = static_cast<std::int8_t>(round_nearest<Arch>(clampf<Arch>(x[j] * id, -127.0f, 127.0f)));
  return dh;
}

// ---------------------------------------------------------------------------------------------
// Format packing of the encoders above, and the row loops; templates on the target so that the
// kernels of formats without a SIMD encoder are these functions compiled for the target.

template <class Arch>
void pack_nibbles(const std::uint8_t* q, std::uint8_t* qs) noexcept {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<std::uint8_t>(q[j] | (q[j + 16] << 4));
}
template <class Arch>
void pack_fifth_bits(const std::uint8_t* q, std::uint8_t* qh) noexcept {
  std::uint32_t h = 0;
  for (int j = 0; j < 32; ++j) h |= static_cast<std::uint32_t>((q[j] >> 4) & 1u) << j;
  for (int b = 0; b < 4; ++b) qh[b] = static_cast<std::uint8_t>(h >> (8 * b));
}

template <class Arch>
void quantize_q4_0(const float* x, block_q4_0* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) {
    std::uint8_t q[32];
    y[i].d = sym_encode<Arch, 8>(x + i * qk, q);
    pack_nibbles<Arch>(q, y[i].qs);
  }
}
template <class Arch>
void quantize_q5_0(const float* x, block_q5_0* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) {
    std::uint8_t q[32];
    y[i].d = sym_encode<Arch, 16>(x + i * qk, q);
    pack_fifth_bits<Arch>(q, y[i].qh);
    std::uint8_t lo[32];
    for (int j = 0; j < 32; ++j) lo[j] = static_cast<std::uint8_t>(q[j] & 15u);
    pack_nibbles<Arch>(lo, y[i].qs);
  }
}
template <class Arch>
void quantize_q4_1(const float* x, block_q4_1* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) {
    std::uint8_t q[32];
    offset_encode<Arch, 15>(x + i * qk, y[i].d, y[i].m, q);
    pack_nibbles<Arch>(q, y[i].qs);
  }
}
template <class Arch>
void quantize_q5_1(const float* x, block_q5_1* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) {
    std::uint8_t q[32];
    offset_encode<Arch, 31>(x + i * qk, y[i].d, y[i].m, q);
    pack_fifth_bits<Arch>(q, y[i].qh);
    std::uint8_t lo[32];
    for (int j = 0; j < 32; ++j) lo[j] = static_cast<std::uint8_t>(q[j] & 15u);
    pack_nibbles<Arch>(lo, y[i].qs);
  }
}
template <class Arch>
void quantize_iq4_nl(const float* x, block_iq4_nl* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) {
    std::uint8_t q[32];
    y[i].d = iq4nl_encode<Arch>(x + i * qk, q);
    pack_nibbles<Arch>(q, y[i].qs);
  }
}
template <class Arch>
void quantize_mxfp4(const float* x, block_mxfp4* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) {
    std::uint8_t q[32];
    y[i].e = mxfp4_encode<Arch>(x + i * qk, q);
    pack_nibbles<Arch>(q, y[i].qs);
  }
}
template <class Arch>
void quantize_q8_0(const float* x, block_q8_0* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) y[i].d = q8_encode<Arch>(x + i * qk, y[i].qs);
}
template <class Arch>
void quantize_q8_1(const float* x, block_q8_1* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) {
    y[i].d = q8_encode<Arch>(x + i * qk, y[i].qs);
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += y[i].qs[j];
    y[i].s = f32_to_f16<Arch>(static_cast<float>(sum) * f16_to_f32<Arch>(y[i].d));
  }
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// The scalar oracles.

namespace ref {

/// qcodec's Q4_0 encoder (see detail::sym_encode).
inline void quantize_row_q4_0(const float* x, block_q4_0* y, std::int64_t k) noexcept {
  detail::quantize_q4_0<simd::scalar>(x, y, k);
}
/// qcodec's Q4_1 encoder (see detail::offset_encode).
inline void quantize_row_q4_1(const float* x, block_q4_1* y, std::int64_t k) noexcept {
  detail::quantize_q4_1<simd::scalar>(x, y, k);
}
/// qcodec's Q5_0 encoder (see detail::sym_encode).
inline void quantize_row_q5_0(const float* x, block_q5_0* y, std::int64_t k) noexcept {
  detail::quantize_q5_0<simd::scalar>(x, y, k);
}
/// qcodec's Q5_1 encoder (see detail::offset_encode).
inline void quantize_row_q5_1(const float* x, block_q5_1* y, std::int64_t k) noexcept {
  detail::quantize_q5_1<simd::scalar>(x, y, k);
}
/// qcodec's Q8_0 encoder (see detail::q8_encode).
inline void quantize_row_q8_0(const float* x, block_q8_0* y, std::int64_t k) noexcept {
  detail::quantize_q8_0<simd::scalar>(x, y, k);
}
/// qcodec's Q8_1 encoder: Q8_0's, plus s = binary16(float(sum q) * decoded d).
inline void quantize_row_q8_1(const float* x, block_q8_1* y, std::int64_t k) noexcept {
  detail::quantize_q8_1<simd::scalar>(x, y, k);
}
/// qcodec's IQ4_NL encoder (see detail::iq4nl_encode).
inline void quantize_row_iq4_nl(const float* x, block_iq4_nl* y, std::int64_t k) noexcept {
  detail::quantize_iq4_nl<simd::scalar>(x, y, k);
}
/// qcodec's MXFP4 encoder (see detail::mxfp4_encode).
inline void quantize_row_mxfp4(const float* x, block_mxfp4* y, std::int64_t k) noexcept {
  detail::quantize_mxfp4<simd::scalar>(x, y, k);
}

}  // namespace ref

namespace detail {

// The decoders and dot products of ggml's reference code, as templates on the target: the
// oracles are their `simd::scalar` instantiation, and targets without SIMD kernels (NEON, or a
// build without AVX2) run them compiled for the target. Separate statements keep every
// multiply and add unfused, as in ggml's C code compiled without FMA contraction.

template <class Arch>
void scalar_dequantize_row_q4_0(const block_q4_0* x, float* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) {
    const float d = f16_to_f32<Arch>(x[i].d);
    for (int j = 0; j < 16; ++j) {
      y[i * qk + j] = static_cast<float>((x[i].qs[j] & 15) - 8) * d;
      y[i * qk + j + 16] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

template <class Arch>
void scalar_dequantize_row_q4_1(const block_q4_1* x, float* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) {
    const float d = f16_to_f32<Arch>(x[i].d);
    const float m = f16_to_f32<Arch>(x[i].m);
    for (int j = 0; j < 16; ++j) {
      const float v0 = unfused<Arch>(static_cast<float>(x[i].qs[j] & 15) * d);
      const float v1 = unfused<Arch>(static_cast<float>(x[i].qs[j] >> 4) * d);
      y[i * qk + j] = v0 + m;
      y[i * qk + j + 16] = v1 + m;
    }
  }
}

template <class Arch>
void scalar_dequantize_row_q5_0(const block_q5_0* x, float* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) {
    const float d = f16_to_f32<Arch>(x[i].d);
    std::uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof qh);
    for (int j = 0; j < 16; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
      const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
      y[i * qk + j] = static_cast<float>(((x[i].qs[j] & 15) | h0) - 16) * d;
      y[i * qk + j + 16] = static_cast<float>(((x[i].qs[j] >> 4) | h1) - 16) * d;
    }
  }
}

template <class Arch>
void scalar_dequantize_row_q5_1(const block_q5_1* x, float* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) {
    const float d = f16_to_f32<Arch>(x[i].d);
    const float m = f16_to_f32<Arch>(x[i].m);
    std::uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof qh);
    for (int j = 0; j < 16; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
      const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
      const float v0 = unfused<Arch>(static_cast<float>((x[i].qs[j] & 15) | h0) * d);
      const float v1 = unfused<Arch>(static_cast<float>((x[i].qs[j] >> 4) | h1) * d);
      y[i * qk + j] = v0 + m;
      y[i * qk + j + 16] = v1 + m;
    }
  }
}

template <class Arch>
void scalar_dequantize_row_q8_0(const block_q8_0* x, float* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) {
    const float d = f16_to_f32<Arch>(x[i].d);
    for (int j = 0; j < 32; ++j) y[i * qk + j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

template <class Arch>
void scalar_dequantize_row_q8_1(const block_q8_1* x, float* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) {
    const float d = f16_to_f32<Arch>(x[i].d);
    for (int j = 0; j < 32; ++j) y[i * qk + j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

template <class Arch>
void scalar_dequantize_row_iq4_nl(const block_iq4_nl* x, float* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) {
    const float d = f16_to_f32<Arch>(x[i].d);
    for (int j = 0; j < 16; ++j) {
      y[i * qk + j] = d * static_cast<float>(kvalues_iq4nl[x[i].qs[j] & 15]);
      y[i * qk + j + 16] = d * static_cast<float>(kvalues_iq4nl[x[i].qs[j] >> 4]);
    }
  }
}

template <class Arch>
void scalar_dequantize_row_mxfp4(const block_mxfp4* x, float* y, std::int64_t k) noexcept {
  for (std::int64_t i = 0; i < k / qk; ++i) {
    const float d = e8m0_half<Arch>(x[i].e);
    for (int j = 0; j < 16; ++j) {
      y[i * qk + j] = static_cast<float>(kvalues_mxfp4[x[i].qs[j] & 15]) * d;
      y[i * qk + j + 16] = static_cast<float>(kvalues_mxfp4[x[i].qs[j] >> 4]) * d;
    }
  }
}

template <class Arch>
void scalar_vec_dot_q4_0_q8_0(std::int64_t n, float* s, const block_q4_0* x,
                              const block_q8_0* y) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < n / qk; ++i) {
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      sumi += ((x[i].qs[j] & 15) - 8) * y[i].qs[j];
      sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
    }
    const float t = static_cast<float>(sumi) * f16_to_f32<Arch>(x[i].d);
    const float u = unfused<Arch>(t * f16_to_f32<Arch>(y[i].d));
    sumf += u;
  }
  *s = sumf;
}

template <class Arch>
void scalar_vec_dot_q4_1_q8_1(std::int64_t n, float* s, const block_q4_1* x,
                              const block_q8_1* y) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < n / qk; ++i) {
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      sumi += (x[i].qs[j] & 15) * y[i].qs[j];
      sumi += (x[i].qs[j] >> 4) * y[i].qs[j + 16];
    }
    const float dd = f16_to_f32<Arch>(x[i].d) * f16_to_f32<Arch>(y[i].d);
    const float t = unfused<Arch>(dd * static_cast<float>(sumi));
    const float u = unfused<Arch>(f16_to_f32<Arch>(x[i].m) * f16_to_f32<Arch>(y[i].s));
    const float v = t + u;
    sumf += v;
  }
  *s = sumf;
}

template <class Arch>
void scalar_vec_dot_q5_0_q8_0(std::int64_t n, float* s, const block_q5_0* x,
                              const block_q8_0* y) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < n / qk; ++i) {
    std::uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof qh);
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
      const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
      sumi += (((x[i].qs[j] & 15) | h0) - 16) * y[i].qs[j];
      sumi += (((x[i].qs[j] >> 4) | h1) - 16) * y[i].qs[j + 16];
    }
    const float dd = f16_to_f32<Arch>(x[i].d) * f16_to_f32<Arch>(y[i].d);
    const float t = unfused<Arch>(dd * static_cast<float>(sumi));
    sumf += t;
  }
  *s = sumf;
}

template <class Arch>
void scalar_vec_dot_q5_1_q8_1(std::int64_t n, float* s, const block_q5_1* x,
                              const block_q8_1* y) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < n / qk; ++i) {
    std::uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof qh);
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
      const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
      sumi += ((x[i].qs[j] & 15) | h0) * y[i].qs[j];
      sumi += ((x[i].qs[j] >> 4) | h1) * y[i].qs[j + 16];
    }
    const float dd = f16_to_f32<Arch>(x[i].d) * f16_to_f32<Arch>(y[i].d);
    const float t = unfused<Arch>(dd * static_cast<float>(sumi));
    const float u = unfused<Arch>(f16_to_f32<Arch>(x[i].m) * f16_to_f32<Arch>(y[i].s));
    const float v = t + u;
    sumf += v;
  }
  *s = sumf;
}

template <class Arch>
void scalar_vec_dot_q8_0_q8_0(std::int64_t n, float* s, const block_q8_0* x,
                              const block_q8_0* y) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < n / qk; ++i) {
    int sumi = 0;
    for (int j = 0; j < 32; ++j) sumi += x[i].qs[j] * y[i].qs[j];
    const float dd = f16_to_f32<Arch>(x[i].d) * f16_to_f32<Arch>(y[i].d);
    const float t = unfused<Arch>(static_cast<float>(sumi) * dd);
    sumf += t;
  }
  *s = sumf;
}

template <class Arch>
void scalar_vec_dot_iq4_nl_q8_0(std::int64_t n, float* s, const block_iq4_nl* x,
                                const block_q8_0* y) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < n / qk; ++i) {
    const float d = f16_to_f32<Arch>(y[i].d) * f16_to_f32<Arch>(x[i].d);
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      sumi += y[i].qs[j] * kvalues_iq4nl[x[i].qs[j] & 15];
      sumi += y[i].qs[j + 16] * kvalues_iq4nl[x[i].qs[j] >> 4];
    }
    const float t = unfused<Arch>(d * static_cast<float>(sumi));
    sumf += t;
  }
  *s = sumf;
}

template <class Arch>
void scalar_vec_dot_mxfp4_q8_0(std::int64_t n, float* s, const block_mxfp4* x,
                               const block_q8_0* y) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < n / qk; ++i) {
    const float d = f16_to_f32<Arch>(y[i].d) * e8m0_half<Arch>(x[i].e);
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      sumi += y[i].qs[j] * kvalues_mxfp4[x[i].qs[j] & 15];
      sumi += y[i].qs[j + 16] * kvalues_mxfp4[x[i].qs[j] >> 4];
    }
    const float t = unfused<Arch>(d * static_cast<float>(sumi));
    sumf += t;
  }
  *s = sumf;
}

}  // namespace detail

namespace ref {

// ggml's decoders (dequantize_row_<fmt>); for Q8_1, d * q[i] (ggml has no Q8_1 decoder).

inline void dequantize_row_q4_0(const block_q4_0* x, float* y, std::int64_t k) noexcept {
  detail::scalar_dequantize_row_q4_0<simd::scalar>(x, y, k);
}

inline void dequantize_row_q4_1(const block_q4_1* x, float* y, std::int64_t k) noexcept {
  detail::scalar_dequantize_row_q4_1<simd::scalar>(x, y, k);
}

inline void dequantize_row_q5_0(const block_q5_0* x, float* y, std::int64_t k) noexcept {
  detail::scalar_dequantize_row_q5_0<simd::scalar>(x, y, k);
}

inline void dequantize_row_q5_1(const block_q5_1* x, float* y, std::int64_t k) noexcept {
  detail::scalar_dequantize_row_q5_1<simd::scalar>(x, y, k);
}

inline void dequantize_row_q8_0(const block_q8_0* x, float* y, std::int64_t k) noexcept {
  detail::scalar_dequantize_row_q8_0<simd::scalar>(x, y, k);
}

inline void dequantize_row_iq4_nl(const block_iq4_nl* x, float* y, std::int64_t k) noexcept {
  detail::scalar_dequantize_row_iq4_nl<simd::scalar>(x, y, k);
}

inline void dequantize_row_mxfp4(const block_mxfp4* x, float* y, std::int64_t k) noexcept {
  detail::scalar_dequantize_row_mxfp4<simd::scalar>(x, y, k);
}

inline void dequantize_row_q8_1(const block_q8_1* x, float* y, std::int64_t k) noexcept {
  detail::scalar_dequantize_row_q8_1<simd::scalar>(x, y, k);
}

// ggml's generic dot products (ggml_vec_dot_<fmt>_<q8>_generic).

inline void vec_dot_q4_0_q8_0(std::int64_t n, float* s, const block_q4_0* x,
                              const block_q8_0* y) noexcept {
  detail::scalar_vec_dot_q4_0_q8_0<simd::scalar>(n, s, x, y);
}

inline void vec_dot_q4_1_q8_1(std::int64_t n, float* s, const block_q4_1* x,
                              const block_q8_1* y) noexcept {
  detail::scalar_vec_dot_q4_1_q8_1<simd::scalar>(n, s, x, y);
}

inline void vec_dot_q5_0_q8_0(std::int64_t n, float* s, const block_q5_0* x,
                              const block_q8_0* y) noexcept {
  detail::scalar_vec_dot_q5_0_q8_0<simd::scalar>(n, s, x, y);
}

inline void vec_dot_q5_1_q8_1(std::int64_t n, float* s, const block_q5_1* x,
                              const block_q8_1* y) noexcept {
  detail::scalar_vec_dot_q5_1_q8_1<simd::scalar>(n, s, x, y);
}

inline void vec_dot_q8_0_q8_0(std::int64_t n, float* s, const block_q8_0* x,
                              const block_q8_0* y) noexcept {
  detail::scalar_vec_dot_q8_0_q8_0<simd::scalar>(n, s, x, y);
}

inline void vec_dot_iq4_nl_q8_0(std::int64_t n, float* s, const block_iq4_nl* x,
                                const block_q8_0* y) noexcept {
  detail::scalar_vec_dot_iq4_nl_q8_0<simd::scalar>(n, s, x, y);
}

inline void vec_dot_mxfp4_q8_0(std::int64_t n, float* s, const block_mxfp4* x,
                               const block_q8_0* y) noexcept {
  detail::scalar_vec_dot_mxfp4_q8_0<simd::scalar>(n, s, x, y);
}

}  // namespace ref

// ---------------------------------------------------------------------------------------------
// SIMD kernels. One template per entry point; the per-target code lives in overloads of
// detail functions on xsimd's arch tags (AVX-512BW, AVX2 with FMA and F16C, and a generic
// fallback that runs the scalar templates above), chosen by passing `Arch{}`.

namespace kernel {

template <class Arch>
void quantize_row_q4_0(const float* x, block_q4_0* y, std::int64_t k) noexcept;
template <class Arch>
void quantize_row_q4_1(const float* x, block_q4_1* y, std::int64_t k) noexcept;
template <class Arch>
void quantize_row_q5_0(const float* x, block_q5_0* y, std::int64_t k) noexcept;
template <class Arch>
void quantize_row_q5_1(const float* x, block_q5_1* y, std::int64_t k) noexcept;
template <class Arch>
void quantize_row_q8_0(const float* x, block_q8_0* y, std::int64_t k) noexcept;
template <class Arch>
void quantize_row_q8_1(const float* x, block_q8_1* y, std::int64_t k) noexcept;
template <class Arch>
void quantize_row_iq4_nl(const float* x, block_iq4_nl* y, std::int64_t k) noexcept;
template <class Arch>
void quantize_row_mxfp4(const float* x, block_mxfp4* y, std::int64_t k) noexcept;

template <class Arch>
void dequantize_row_q4_0(const block_q4_0* x, float* y, std::int64_t k) noexcept;
template <class Arch>
void dequantize_row_q4_1(const block_q4_1* x, float* y, std::int64_t k) noexcept;
template <class Arch>
void dequantize_row_q5_0(const block_q5_0* x, float* y, std::int64_t k) noexcept;
template <class Arch>
void dequantize_row_q5_1(const block_q5_1* x, float* y, std::int64_t k) noexcept;
template <class Arch>
void dequantize_row_q8_0(const block_q8_0* x, float* y, std::int64_t k) noexcept;
template <class Arch>
void dequantize_row_q8_1(const block_q8_1* x, float* y, std::int64_t k) noexcept;
template <class Arch>
void dequantize_row_iq4_nl(const block_iq4_nl* x, float* y, std::int64_t k) noexcept;
template <class Arch>
void dequantize_row_mxfp4(const block_mxfp4* x, float* y, std::int64_t k) noexcept;

template <class Arch>
void vec_dot_q4_0_q8_0(std::int64_t n, float* s, const block_q4_0* x, const block_q8_0* y) noexcept;
template <class Arch>
void vec_dot_q4_1_q8_1(std::int64_t n, float* s, const block_q4_1* x, const block_q8_1* y) noexcept;
template <class Arch>
void vec_dot_q5_0_q8_0(std::int64_t n, float* s, const block_q5_0* x, const block_q8_0* y) noexcept;
template <class Arch>
void vec_dot_q5_1_q8_1(std::int64_t n, float* s, const block_q5_1* x, const block_q8_1* y) noexcept;
template <class Arch>
void vec_dot_q8_0_q8_0(std::int64_t n, float* s, const block_q8_0* x, const block_q8_0* y) noexcept;
template <class Arch>
void vec_dot_iq4_nl_q8_0(std::int64_t n, float* s, const block_iq4_nl* x,
                         const block_q8_0* y) noexcept;
template <class Arch>
void vec_dot_mxfp4_q8_0(std::int64_t n, float* s, const block_mxfp4* x,
                        const block_q8_0* y) noexcept;

}  // namespace kernel

}  // namespace qcodec::ggml

namespace qcodec::simd {

/// quantize_row / dequantize_row / vec_dot of one ggml format (see ggml_kernels.hpp).
template <class Block, class DotBlock>
struct ggml_format_kernels {
  void (*quantize_row)(const float* x, Block* y, std::int64_t k) noexcept;
  void (*dequantize_row)(const Block* x, float* y, std::int64_t k) noexcept;
  void (*vec_dot)(std::int64_t n, float* s, const Block* x, const DotBlock* y) noexcept;
};

/// quantize_row / dequantize_row of an activation-only format (Q8_1).
template <class Block>
struct ggml_activation_kernels {
  void (*quantize_row)(const float* x, Block* y, std::int64_t k) noexcept;
  void (*dequantize_row)(const Block* x, float* y, std::int64_t k) noexcept;
};

/// The ggml block-format entries of a kernel table (see kernel_table.hpp).
struct ggml_kernels {
  ggml_format_kernels<qcodec::ggml::block_q4_0, qcodec::ggml::block_q8_0> q4_0;
  ggml_format_kernels<qcodec::ggml::block_q4_1, qcodec::ggml::block_q8_1> q4_1;
  ggml_format_kernels<qcodec::ggml::block_q5_0, qcodec::ggml::block_q8_0> q5_0;
  ggml_format_kernels<qcodec::ggml::block_q5_1, qcodec::ggml::block_q8_1> q5_1;
  ggml_format_kernels<qcodec::ggml::block_q8_0, qcodec::ggml::block_q8_0> q8_0;
  ggml_format_kernels<qcodec::ggml::block_iq4_nl, qcodec::ggml::block_q8_0> iq4_nl;
  ggml_format_kernels<qcodec::ggml::block_mxfp4, qcodec::ggml::block_q8_0> mxfp4;
  ggml_activation_kernels<qcodec::ggml::block_q8_1> q8_1;
};

template <class Arch>
ggml_kernels make_ggml_kernels() noexcept {
  namespace g = qcodec::ggml;
  if constexpr (is_scalar_v<Arch>) {
    return {
        {&g::ref::quantize_row_q4_0, &g::ref::dequantize_row_q4_0, &g::ref::vec_dot_q4_0_q8_0},
        {&g::ref::quantize_row_q4_1, &g::ref::dequantize_row_q4_1, &g::ref::vec_dot_q4_1_q8_1},
        {&g::ref::quantize_row_q5_0, &g::ref::dequantize_row_q5_0, &g::ref::vec_dot_q5_0_q8_0},
        {&g::ref::quantize_row_q5_1, &g::ref::dequantize_row_q5_1, &g::ref::vec_dot_q5_1_q8_1},
        {&g::ref::quantize_row_q8_0, &g::ref::dequantize_row_q8_0, &g::ref::vec_dot_q8_0_q8_0},
        {&g::ref::quantize_row_iq4_nl, &g::ref::dequantize_row_iq4_nl,
         &g::ref::vec_dot_iq4_nl_q8_0},
        {&g::ref::quantize_row_mxfp4, &g::ref::dequantize_row_mxfp4, &g::ref::vec_dot_mxfp4_q8_0},
        {&g::ref::quantize_row_q8_1, &g::ref::dequantize_row_q8_1},
    };
  } else {
    namespace kn = qcodec::ggml::kernel;
    return {
        {&kn::quantize_row_q4_0<Arch>, &kn::dequantize_row_q4_0<Arch>,
         &kn::vec_dot_q4_0_q8_0<Arch>},
        {&kn::quantize_row_q4_1<Arch>, &kn::dequantize_row_q4_1<Arch>,
         &kn::vec_dot_q4_1_q8_1<Arch>},
        {&kn::quantize_row_q5_0<Arch>, &kn::dequantize_row_q5_0<Arch>,
         &kn::vec_dot_q5_0_q8_0<Arch>},
        {&kn::quantize_row_q5_1<Arch>, &kn::dequantize_row_q5_1<Arch>,
         &kn::vec_dot_q5_1_q8_1<Arch>},
        {&kn::quantize_row_q8_0<Arch>, &kn::dequantize_row_q8_0<Arch>,
         &kn::vec_dot_q8_0_q8_0<Arch>},
        {&kn::quantize_row_iq4_nl<Arch>, &kn::dequantize_row_iq4_nl<Arch>,
         &kn::vec_dot_iq4_nl_q8_0<Arch>},
        {&kn::quantize_row_mxfp4<Arch>, &kn::dequantize_row_mxfp4<Arch>,
         &kn::vec_dot_mxfp4_q8_0<Arch>},
        {&kn::quantize_row_q8_1<Arch>, &kn::dequantize_row_q8_1<Arch>},
    };
  }
}

}  // namespace qcodec::simd

// GCC 12.2 reports its own AVX-512 intrinsics (the `_mm512_undefined_*()` pass-through operand
// of their unmasked forms) as maybe-uninitialized once they are inlined here (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

// Block loops have small constant trip counts; unrolling them completely lets the compiler keep
// a block (or 16 transposed blocks) in registers and resolve per-candidate choices statically.
#if defined(__clang__)
#define QCODEC_GGML_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define QCODEC_GGML_UNROLL _Pragma("GCC unroll 32")
#else
#define QCODEC_GGML_UNROLL
#endif

namespace qcodec::ggml {

namespace detail {

// ---------------------------------------------------------------------------------------------
// Generic fallback: the scalar templates, compiled for the target.

template <class Arch>
void quantize_q4_0_isa(const float* x, block_q4_0* y, std::int64_t nb, xsimd::generic) noexcept {
  quantize_q4_0<Arch>(x, y, nb * qk);
}
template <class Arch>
void quantize_q5_0_isa(const float* x, block_q5_0* y, std::int64_t nb, xsimd::generic) noexcept {
  quantize_q5_0<Arch>(x, y, nb * qk);
}
template <class Arch>
void quantize_q8_0_isa(const float* x, block_q8_0* y, std::int64_t nb, xsimd::generic) noexcept {
  quantize_q8_0<Arch>(x, y, nb * qk);
}
template <class Arch>
void quantize_q8_1_isa(const float* x, block_q8_1* y, std::int64_t nb, xsimd::generic) noexcept {
  quantize_q8_1<Arch>(x, y, nb * qk);
}

#define QCODEC_GGML_GENERIC_DEQUANT(fmt)                                    \
  template <class Arch>                                                     \
  void dequant_##fmt##_isa(const block_##fmt* x, float* y, std::int64_t nb, \
                           xsimd::generic) noexcept {                       \
    scalar_dequantize_row_##fmt<Arch>(x, y, nb * qk);                       \
  }
QCODEC_GGML_GENERIC_DEQUANT(q4_0)
QCODEC_GGML_GENERIC_DEQUANT(q4_1)
QCODEC_GGML_GENERIC_DEQUANT(q5_0)
QCODEC_GGML_GENERIC_DEQUANT(q5_1)
QCODEC_GGML_GENERIC_DEQUANT(q8_0)
QCODEC_GGML_GENERIC_DEQUANT(q8_1)
QCODEC_GGML_GENERIC_DEQUANT(iq4_nl)
QCODEC_GGML_GENERIC_DEQUANT(mxfp4)
#undef QCODEC_GGML_GENERIC_DEQUANT

#define QCODEC_GGML_GENERIC_DOT(fmt, act)                                       \
  template <class Arch>                                                         \
  void dot_##fmt##_##act##_isa(std::int64_t nb, float* s, const block_##fmt* x, \
                               const block_##act* y, xsimd::generic) noexcept { \
    scalar_vec_dot_##fmt##_##act<Arch>(nb * qk, s, x, y);                       \
  }
QCODEC_GGML_GENERIC_DOT(q4_0, q8_0)
QCODEC_GGML_GENERIC_DOT(q4_1, q8_1)
QCODEC_GGML_GENERIC_DOT(q5_0, q8_0)
QCODEC_GGML_GENERIC_DOT(q5_1, q8_1)
QCODEC_GGML_GENERIC_DOT(q8_0, q8_0)
QCODEC_GGML_GENERIC_DOT(iq4_nl, q8_0)
QCODEC_GGML_GENERIC_DOT(mxfp4, q8_0)
#undef QCODEC_GGML_GENERIC_DOT

#if XSIMD_WITH_AVX2 && defined(__F16C__)

// ---------------------------------------------------------------------------------------------
// Shared by the AVX2 and AVX-512 kernels (both targets include F16C). Templates on the target,
// instantiated only by kernels of that target.

/// binary16 -> float with vcvtph2ps (exact; the same bits as portable_f16_to_f32).
template <class Arch>
inline float h2f(half h) noexcept {
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h.bits)));
}
/// float -> binary16 with vcvtps2ph, round to nearest even (the same bits as
/// portable_f32_to_f16, independent of MXCSR).
template <class Arch>
inline half f2h(float f) noexcept {
  return half::from_bits(static_cast<std::uint16_t>(
      _mm_cvtsi128_si32(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT))));
}

/// The float part of a dot product, shared by the AVX2 and AVX-512 row loops: ggml's order.
template <class Arch>
inline float dot_term_q4_0(int sumi, half dx, half dy) noexcept {
  const float t = static_cast<float>(sumi) * h2f<Arch>(dx);
  return unfused<Arch>(t * h2f<Arch>(dy));
}
template <class Arch>
inline float dot_term_q8_0(int sumi, half dx, half dy) noexcept {
  const float dd = h2f<Arch>(dx) * h2f<Arch>(dy);
  return unfused<Arch>(static_cast<float>(sumi) * dd);
}
template <class Arch>
inline float dot_term_scaled(int sumi, float d) noexcept {  // q5_0, iq4_nl, mxfp4
  return unfused<Arch>(d * static_cast<float>(sumi));
}
template <class Arch>
inline float dot_term_offset(int sumi, half dx, half mx, half dy, half sy) noexcept {
  const float dd = h2f<Arch>(dx) * h2f<Arch>(dy);
  const float t = unfused<Arch>(dd * static_cast<float>(sumi));
  const float u = unfused<Arch>(h2f<Arch>(mx) * h2f<Arch>(sy));
  return t + u;
}

#endif  // XSIMD_WITH_AVX2 && __F16C__

#if XSIMD_WITH_AVX2 && defined(__F16C__)

// ---------------------------------------------------------------------------------------------
// AVX2 (8 lanes): a block is four 8-lane groups, values 0-7, 8-15, 16-23, 24-31.

/// Stores the eight int32 lanes of v (each in -128..127) as int8.
template <class Arch>
inline void store8_i8(__m256i v, void* p, xsimd::avx2) noexcept {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(static_cast<__m128i*>(p), _mm_packs_epi16(w, w));
}
/// Stores the eight int32 lanes of v (each in 0..255) as uint8.
template <class Arch>
inline void store8_u8(__m256i v, void* p, xsimd::avx2) noexcept {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(static_cast<__m128i*>(p), _mm_packus_epi16(w, w));
}

/// Horizontal sum of eight int32 lanes (exact).
template <class Arch>
inline int hsum_i32(__m256i v, xsimd::avx2) noexcept {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

/// Sum of x16 * y16 over 32 int16 lanes (two registers each), exact.
template <class Arch>
inline int dot16(__m256i xa, __m256i xb, __m256i ya, __m256i yb, xsimd::avx2) noexcept {
  return hsum_i32<Arch>(_mm256_add_epi32(_mm256_madd_epi16(xa, ya), _mm256_madd_epi16(xb, yb)),
                        xsimd::avx2{});
}

/// The 32 codes of a block's nibbles as int16: low nibbles (values 0-15), high (16-31).
template <class Arch>
inline void nibbles16(const std::uint8_t* qs, __m256i& lo, __m256i& hi, xsimd::avx2) noexcept {
  const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  lo = _mm256_and_si256(w, _mm256_set1_epi16(15));
  hi = _mm256_srli_epi16(w, 4);
}

/// 16 bits of `bits` as int16 lanes holding 16 (bit set) or 0.
template <class Arch>
inline __m256i bits16_as_16(std::uint32_t bits, xsimd::avx2) noexcept {
  const __m256i sel = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096,
                                        8192, 16384, -32768);
  const __m256i b = _mm256_set1_epi16(static_cast<short>(bits & 0xFFFFu));
  const __m256i on = _mm256_cmpeq_epi16(_mm256_and_si256(b, sel), sel);
  return _mm256_and_si256(on, _mm256_set1_epi16(16));
}

/// 8 bits of `bits` as int32 lanes holding 16 (bit set) or 0.
template <class Arch>
inline __m256i bits8_as_32(std::uint32_t bits, xsimd::avx2) noexcept {
  const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i b = _mm256_set1_epi32(static_cast<int>(bits & 0xFFu));
  const __m256i on = _mm256_cmpeq_epi32(_mm256_and_si256(b, sel), sel);
  return _mm256_and_si256(on, _mm256_set1_epi32(16));
}

/// Codes of a 4-bit block as int32 in the four groups (values 0-7, 8-15, 16-23, 24-31).
template <class Arch>
inline void nibbles32(const std::uint8_t* qs, __m256i (&c)[4], xsimd::avx2) noexcept {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i b0 = _mm256_cvtepu8_epi32(raw);
  const __m256i b1 = _mm256_cvtepu8_epi32(_mm_srli_si128(raw, 8));
  const __m256i m = _mm256_set1_epi32(15);
  c[0] = _mm256_and_si256(b0, m);
  c[1] = _mm256_and_si256(b1, m);
  c[2] = _mm256_srli_epi32(b0, 4);
  c[3] = _mm256_srli_epi32(b1, 4);
}

/// Float table lookup: t[idx] for idx in 0..15 (lo = entries 0-7, hi = 8-15).
template <class Arch>
inline __m256 lookup16(__m256 lo, __m256 hi, __m256i idx, xsimd::avx2) noexcept {
  const __m256 a = _mm256_permutevar8x32_ps(lo, idx);
  const __m256 b = _mm256_permutevar8x32_ps(hi, idx);
  return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

template <class Arch>
void dequant_q4_0_isa(const block_q4_0* x, float* y, std::int64_t nb, xsimd::avx2) noexcept {
  const __m256i eight = _mm256_set1_epi32(8);
  for (std::int64_t i = 0; i < nb; ++i, y += qk) {
    const __m256 d = _mm256_set1_ps(h2f<Arch>(x[i].d));
    __m256i c[4];
    nibbles32<Arch>(x[i].qs, c, xsimd::avx2{});
    for (int g = 0; g < 4; ++g)
      _mm256_storeu_ps(y + 8 * g,
                       _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(c[g], eight)), d));
  }
}

template <class Arch>
void dequant_q4_1_isa(const block_q4_1* x, float* y, std::int64_t nb, xsimd::avx2) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, y += qk) {
    const __m256 d = _mm256_set1_ps(h2f<Arch>(x[i].d));
    const __m256 m = _mm256_set1_ps(h2f<Arch>(x[i].m));
    __m256i c[4];
    nibbles32<Arch>(x[i].qs, c, xsimd::avx2{});
    for (int g = 0; g < 4; ++g)
      _mm256_storeu_ps(y + 8 * g,
                       _mm256_add_ps(unfused<Arch>(_mm256_mul_ps(_mm256_cvtepi32_ps(c[g]), d)), m));
  }
}

template <class Arch>
inline void fifth_bits32(const std::uint8_t* qh, __m256i (&c)[4], xsimd::avx2) noexcept {
  std::uint32_t h;
  std::memcpy(&h, qh, sizeof h);
  for (int g = 0; g < 4; ++g)
    c[g] = _mm256_or_si256(c[g], bits8_as_32<Arch>(h >> (8 * g), xsimd::avx2{}));
}

template <class Arch>
void dequant_q5_0_isa(const block_q5_0* x, float* y, std::int64_t nb, xsimd::avx2) noexcept {
  const __m256i sixteen = _mm256_set1_epi32(16);
  for (std::int64_t i = 0; i < nb; ++i, y += qk) {
    const __m256 d = _mm256_set1_ps(h2f<Arch>(x[i].d));
    __m256i c[4];
    nibbles32<Arch>(x[i].qs, c, xsimd::avx2{});
    fifth_bits32<Arch>(x[i].qh, c, xsimd::avx2{});
    for (int g = 0; g < 4; ++g)
      _mm256_storeu_ps(y + 8 * g,
                       _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(c[g], sixteen)), d));
  }
}

template <class Arch>
void dequant_q5_1_isa(const block_q5_1* x, float* y, std::int64_t nb, xsimd::avx2) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, y += qk) {
    const __m256 d = _mm256_set1_ps(h2f<Arch>(x[i].d));
    const __m256 m = _mm256_set1_ps(h2f<Arch>(x[i].m));
    __m256i c[4];
    nibbles32<Arch>(x[i].qs, c, xsimd::avx2{});
    fifth_bits32<Arch>(x[i].qh, c, xsimd::avx2{});
    for (int g = 0; g < 4; ++g)
      _mm256_storeu_ps(y + 8 * g,
                       _mm256_add_ps(unfused<Arch>(_mm256_mul_ps(_mm256_cvtepi32_ps(c[g]), d)), m));
  }
}

template <class Arch, class Block>
void dequant_q8_isa(const Block* x, float* y, std::int64_t nb, xsimd::avx2) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, y += qk) {
    const __m256 d = _mm256_set1_ps(h2f<Arch>(x[i].d));
    for (int g = 0; g < 4; ++g) {
      const __m128i raw = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x[i].qs + 8 * g));
      _mm256_storeu_ps(y + 8 * g, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(raw)), d));
    }
  }
}
template <class Arch>
void dequant_q8_0_isa(const block_q8_0* x, float* y, std::int64_t nb, xsimd::avx2) noexcept {
  dequant_q8_isa<Arch>(x, y, nb, xsimd::avx2{});
}
template <class Arch>
void dequant_q8_1_isa(const block_q8_1* x, float* y, std::int64_t nb, xsimd::avx2) noexcept {
  dequant_q8_isa<Arch>(x, y, nb, xsimd::avx2{});
}

template <class Arch>
void dequant_iq4_nl_isa(const block_iq4_nl* x, float* y, std::int64_t nb, xsimd::avx2) noexcept {
  alignas(32) float t[16];
  for (int j = 0; j < 16; ++j) t[j] = static_cast<float>(kvalues_iq4nl[j]);
  const __m256 lo = _mm256_load_ps(t), hi = _mm256_load_ps(t + 8);
  for (std::int64_t i = 0; i < nb; ++i, y += qk) {
    const __m256 d = _mm256_set1_ps(h2f<Arch>(x[i].d));
    __m256i c[4];
    nibbles32<Arch>(x[i].qs, c, xsimd::avx2{});
    for (int g = 0; g < 4; ++g)
      _mm256_storeu_ps(y + 8 * g, _mm256_mul_ps(d, lookup16<Arch>(lo, hi, c[g], xsimd::avx2{})));
  }
}

template <class Arch>
void dequant_mxfp4_isa(const block_mxfp4* x, float* y, std::int64_t nb, xsimd::avx2) noexcept {
  alignas(32) float t[16];
  for (int j = 0; j < 16; ++j) t[j] = static_cast<float>(kvalues_mxfp4[j]);
  const __m256 lo = _mm256_load_ps(t), hi = _mm256_load_ps(t + 8);
  for (std::int64_t i = 0; i < nb; ++i, y += qk) {
    const __m256 d = _mm256_set1_ps(e8m0_half<Arch>(x[i].e));
    __m256i c[4];
    nibbles32<Arch>(x[i].qs, c, xsimd::avx2{});
    for (int g = 0; g < 4; ++g)
      _mm256_storeu_ps(y + 8 * g, _mm256_mul_ps(lookup16<Arch>(lo, hi, c[g], xsimd::avx2{}), d));
  }
}

/// The 32 int8 activations of a Q8 block as int16 (values 0-15, 16-31).
template <class Arch>
inline void q8_as16(const std::int8_t* qs, __m256i& a, __m256i& b, xsimd::avx2) noexcept {
  a = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  b = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 16)));
}

template <class Arch>
void dot_q4_0_q8_0_isa(std::int64_t nb, float* s, const block_q4_0* x, const block_q8_0* y,
                       xsimd::avx2) noexcept {
  float sumf = 0.0f;
  const __m256i eight = _mm256_set1_epi16(8);
  for (std::int64_t i = 0; i < nb; ++i) {
    __m256i lo, hi, ya, yb;
    nibbles16<Arch>(x[i].qs, lo, hi, xsimd::avx2{});
    q8_as16<Arch>(y[i].qs, ya, yb, xsimd::avx2{});
    const int sumi = dot16<Arch>(_mm256_sub_epi16(lo, eight), _mm256_sub_epi16(hi, eight), ya, yb,
                                 xsimd::avx2{});
    sumf += dot_term_q4_0<Arch>(sumi, x[i].d, y[i].d);
  }
  *s = sumf;
}

template <class Arch>
void dot_q4_1_q8_1_isa(std::int64_t nb, float* s, const block_q4_1* x, const block_q8_1* y,
                       xsimd::avx2) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < nb; ++i) {
    __m256i lo, hi, ya, yb;
    nibbles16<Arch>(x[i].qs, lo, hi, xsimd::avx2{});
    q8_as16<Arch>(y[i].qs, ya, yb, xsimd::avx2{});
    const int sumi = dot16<Arch>(lo, hi, ya, yb, xsimd::avx2{});
    sumf += dot_term_offset<Arch>(sumi, x[i].d, x[i].m, y[i].d, y[i].s);
  }
  *s = sumf;
}

template <class Arch>
void dot_q5_0_q8_0_isa(std::int64_t nb, float* s, const block_q5_0* x, const block_q8_0* y,
                       xsimd::avx2) noexcept {
  float sumf = 0.0f;
  const __m256i sixteen = _mm256_set1_epi16(16);
  for (std::int64_t i = 0; i < nb; ++i) {
    __m256i lo, hi, ya, yb;
    nibbles16<Arch>(x[i].qs, lo, hi, xsimd::avx2{});
    std::uint32_t h;
    std::memcpy(&h, x[i].qh, sizeof h);
    lo = _mm256_sub_epi16(_mm256_or_si256(lo, bits16_as_16<Arch>(h, xsimd::avx2{})), sixteen);
    hi = _mm256_sub_epi16(_mm256_or_si256(hi, bits16_as_16<Arch>(h >> 16, xsimd::avx2{})), sixteen);
    q8_as16<Arch>(y[i].qs, ya, yb, xsimd::avx2{});
    const int sumi = dot16<Arch>(lo, hi, ya, yb, xsimd::avx2{});
    sumf += dot_term_scaled<Arch>(sumi, h2f<Arch>(x[i].d) * h2f<Arch>(y[i].d));
  }
  *s = sumf;
}

template <class Arch>
void dot_q5_1_q8_1_isa(std::int64_t nb, float* s, const block_q5_1* x, const block_q8_1* y,
                       xsimd::avx2) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < nb; ++i) {
    __m256i lo, hi, ya, yb;
    nibbles16<Arch>(x[i].qs, lo, hi, xsimd::avx2{});
    std::uint32_t h;
    std::memcpy(&h, x[i].qh, sizeof h);
    lo = _mm256_or_si256(lo, bits16_as_16<Arch>(h, xsimd::avx2{}));
    hi = _mm256_or_si256(hi, bits16_as_16<Arch>(h >> 16, xsimd::avx2{}));
    q8_as16<Arch>(y[i].qs, ya, yb, xsimd::avx2{});
    const int sumi = dot16<Arch>(lo, hi, ya, yb, xsimd::avx2{});
    sumf += dot_term_offset<Arch>(sumi, x[i].d, x[i].m, y[i].d, y[i].s);
  }
  *s = sumf;
}

template <class Arch>
void dot_q8_0_q8_0_isa(std::int64_t nb, float* s, const block_q8_0* x, const block_q8_0* y,
                       xsimd::avx2) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < nb; ++i) {
    __m256i xa, xb, ya, yb;
    q8_as16<Arch>(x[i].qs, xa, xb, xsimd::avx2{});
    q8_as16<Arch>(y[i].qs, ya, yb, xsimd::avx2{});
    const int sumi = dot16<Arch>(xa, xb, ya, yb, xsimd::avx2{});
    sumf += dot_term_q8_0<Arch>(sumi, x[i].d, y[i].d);
  }
  *s = sumf;
}

/// Table levels of a 4-bit block as int16 (values 0-15, 16-31): a byte shuffle per nibble.
template <class Arch>
inline void levels16(const std::uint8_t* qs, const std::int8_t* table, __m256i& a, __m256i& b,
                     xsimd::avx2) noexcept {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(table));
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(15);
  a = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(t, _mm_and_si128(raw, m)));
  b = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(t, _mm_and_si128(_mm_srli_epi16(raw, 4), m)));
}

template <class Arch>
void dot_iq4_nl_q8_0_isa(std::int64_t nb, float* s, const block_iq4_nl* x, const block_q8_0* y,
                         xsimd::avx2) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < nb; ++i) {
    __m256i xa, xb, ya, yb;
    levels16<Arch>(x[i].qs, kvalues_iq4nl, xa, xb, xsimd::avx2{});
    q8_as16<Arch>(y[i].qs, ya, yb, xsimd::avx2{});
    const int sumi = dot16<Arch>(xa, xb, ya, yb, xsimd::avx2{});
    sumf += dot_term_scaled<Arch>(sumi, h2f<Arch>(y[i].d) * h2f<Arch>(x[i].d));
  }
  *s = sumf;
}

template <class Arch>
void dot_mxfp4_q8_0_isa(std::int64_t nb, float* s, const block_mxfp4* x, const block_q8_0* y,
                        xsimd::avx2) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < nb; ++i) {
    __m256i xa, xb, ya, yb;
    levels16<Arch>(x[i].qs, kvalues_mxfp4, xa, xb, xsimd::avx2{});
    q8_as16<Arch>(y[i].qs, ya, yb, xsimd::avx2{});
    const int sumi = dot16<Arch>(xa, xb, ya, yb, xsimd::avx2{});
    sumf += dot_term_scaled<Arch>(sumi, h2f<Arch>(y[i].d) * e8m0_half<Arch>(x[i].e));
  }
  *s = sumf;
}

/// Sums of eight 8-lane vectors, each folded in detail::fold16's order (lanes j and j + 4,
/// then j and j + 2, then 0 and 1): out[q] = fold(v[q]).
template <class Arch>
inline void fold8x8(const __m256 (&v)[8], float (&out)[8], xsimd::avx2) noexcept {
  __m256 t[4];
  for (int q = 0; q < 4; ++q)  // [v2q.lo, v2q+1.lo] + [v2q.hi, v2q+1.hi]
    t[q] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * q], v[2 * q + 1], 0x20),
                         _mm256_permute2f128_ps(v[2 * q], v[2 * q + 1], 0x31));
  __m256 w[2];
  for (int q = 0; q < 2; ++q)  // per 128-bit lane: pairs (0, 1) + (2, 3) of t2q and t2q+1
    w[q] = _mm256_add_ps(_mm256_shuffle_ps(t[2 * q], t[2 * q + 1], 0x44),
                         _mm256_shuffle_ps(t[2 * q], t[2 * q + 1], 0xEE));
  alignas(32) float r[2][8];
  for (int q = 0; q < 2; ++q)
    _mm256_store_ps(r[q], _mm256_add_ps(w[q], _mm256_shuffle_ps(w[q], w[q], 0xB1)));
  // w[q] lane 0: v[4q] ; lane 2: v[4q + 2] ; lane 4: v[4q + 1] ; lane 6: v[4q + 3]
  for (int q = 0; q < 2; ++q) {
    out[4 * q + 0] = r[q][0];
    out[4 * q + 1] = r[q][4];
    out[4 * q + 2] = r[q][2];
    out[4 * q + 3] = r[q][6];
  }
}

template <class Arch>
inline float reduce_max8(__m256 v, xsimd::avx2) noexcept {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
template <class Arch>
inline float reduce_min8(__m256 v, xsimd::avx2) noexcept {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

/// detail::sym_encode on AVX2 for up to 8 blocks at a time, in phases: per block the
/// reductions and the candidate sums, across blocks (one lane per block) the prescaling,
/// divisions, selection and binary16 rounding. Block by block, their long dependency chain
/// left the core idle. emit(b, c) receives block b's codes l + N in four int32 groups.
template <class Arch, int N, class Emit>
inline void sym_encode_group(const float* x, int g, half* dh, Emit&& emit, xsimd::avx2) noexcept {
  constexpr int C = sym_search<Arch, N>::count;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 lo = _mm256_set1_ps(-static_cast<float>(N));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(N - 1));
  alignas(32) float mxv[8] = {}, mnv[8] = {};
  for (int b = 0; b < g; ++b) {
    const float* xb = x + b * qk;
    __m256 v[4];
    for (int q = 0; q < 4; ++q) v[q] = _mm256_loadu_ps(xb + 8 * q);
    mxv[b] = reduce_max8<Arch>(_mm256_max_ps(_mm256_max_ps(v[0], v[1]), _mm256_max_ps(v[2], v[3])),
                               xsimd::avx2{});
    mnv[b] = reduce_min8<Arch>(_mm256_min_ps(_mm256_min_ps(v[0], v[1]), _mm256_min_ps(v[2], v[3])),
                               xsimd::avx2{});
  }
  // scales across blocks: amax, extreme, prescale, candidate inverse scales
  const __m256 mx = _mm256_load_ps(mxv), mn = _mm256_load_ps(mnv);
  const __m256 nmn = _mm256_xor_ps(mn, sign);
  const __m256 ge = _mm256_cmp_ps(mx, nmn, _CMP_GE_OQ);
  const __m256 amax = _mm256_blendv_ps(nmn, mx, ge);
  const __m256 ext = _mm256_blendv_ps(mn, mx, ge);
  const __m256 valid = _mm256_cmp_ps(amax, _mm256_set1_ps(tiny_block), _CMP_GE_OQ);
  const __m256i be =
      _mm256_min_epu32(_mm256_srli_epi32(_mm256_castps_si256(amax), 23), _mm256_set1_epi32(253));
  const __m256 up =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_sub_epi32(_mm256_set1_epi32(254), be), 23));
  const __m256 down = _mm256_castsi256_ps(_mm256_slli_epi32(be, 23));
  const __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_mul_ps(ext, up));
  alignas(32) float upv[8], idv[C][8];
  _mm256_store_ps(upv, up);
  for (int c = 0; c < C; ++c)
    _mm256_store_ps(idv[c], _mm256_mul_ps(_mm256_set1_ps(sym_search<Arch, N>::candidates[c]), inv));
  const int valid_bits = _mm256_movemask_ps(valid);
  // candidate sums per block, in fold16's order
  alignas(32) float lx[C][8], l2[C][8];
  for (int c = 0; c < C; ++c)
    for (int b = 0; b < 8; ++b) {
      lx[c][b] = 0.0f;
      l2[c][b] = 1.0f;
    }
  for (int b = 0; b < g; ++b) {
    if (((valid_bits >> b) & 1) == 0) continue;
    const float* xb = x + b * qk;
    const __m256 u = _mm256_set1_ps(upv[b]);
    __m256 xs[4];
    for (int q = 0; q < 4; ++q) xs[q] = _mm256_mul_ps(_mm256_loadu_ps(xb + 8 * q), u);
    __m256 acc[8];
    for (int c = 0; c < 8; ++c) acc[c] = _mm256_setzero_ps();
    for (int c = 0; c < C; ++c) {
      const __m256 id = _mm256_set1_ps(idv[c][b]);
      __m256 l[4];
      for (int q = 0; q < 4; ++q)
        l[q] = _mm256_round_ps(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(xs[q], id), lo), hi),
                               _MM_FROUND_CUR_DIRECTION);
      // a[j] = fma(l[j], xs[j], l[j + 16] * xs[j + 16]) for groups (0, 2) and (1, 3), then
      // a[j] + a[j + 8]
      const __m256 a0 = _mm256_fmadd_ps(l[0], xs[0], _mm256_mul_ps(l[2], xs[2]));
      const __m256 a1 = _mm256_fmadd_ps(l[1], xs[1], _mm256_mul_ps(l[3], xs[3]));
      const __m256 b0 = _mm256_fmadd_ps(l[0], l[0], _mm256_mul_ps(l[2], l[2]));
      const __m256 b1 = _mm256_fmadd_ps(l[1], l[1], _mm256_mul_ps(l[3], l[3]));
      acc[2 * c] = _mm256_add_ps(a0, a1);
      acc[2 * c + 1] = _mm256_add_ps(b0, b1);
    }
    float sums[8];
    fold8x8<Arch>(acc, sums, xsimd::avx2{});
    for (int c = 0; c < C; ++c) {
      lx[c][b] = sums[2 * c];
      l2[c][b] = sums[2 * c + 1];
    }
  }
  // selection (first of equal scores wins), least-squares scale, binary16, decoded inverse
  __m256 blx = _mm256_load_ps(lx[0]), bl2 = _mm256_load_ps(l2[0]);
  __m256 best = _mm256_div_ps(_mm256_mul_ps(blx, blx), bl2);
  for (int c = 1; c < C; ++c) {
    const __m256 cx = _mm256_load_ps(lx[c]), c2 = _mm256_load_ps(l2[c]);
    const __m256 score = _mm256_div_ps(_mm256_mul_ps(cx, cx), c2);
    const __m256 better = _mm256_cmp_ps(score, best, _CMP_GT_OQ);
    best = _mm256_blendv_ps(best, score, better);
    blx = _mm256_blendv_ps(blx, cx, better);
    bl2 = _mm256_blendv_ps(bl2, c2, better);
  }
  __m256 d = _mm256_and_ps(valid, _mm256_mul_ps(_mm256_div_ps(blx, bl2), down));
  d = _mm256_min_ps(_mm256_max_ps(d, _mm256_set1_ps(-half_max)), _mm256_set1_ps(half_max));
  const __m128i dhv = _mm256_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT);
  const __m256 dd = _mm256_cvtph_ps(dhv);
  const __m256 nz = _mm256_cmp_ps(dd, _mm256_setzero_ps(), _CMP_NEQ_OQ);
  alignas(32) float idf[8];
  alignas(16) std::uint16_t dbits[8];
  _mm256_store_ps(idf, _mm256_and_ps(nz, _mm256_div_ps(_mm256_set1_ps(1.0f), dd)));
  _mm_store_si128(reinterpret_cast<__m128i*>(dbits), dhv);
  // codes against the decoded scale
  const __m256i bias = _mm256_set1_epi32(N);
  for (int b = 0; b < g; ++b) {
    const float* xb = x + b * qk;
    const __m256 id = _mm256_set1_ps(idf[b]);
    __m256i c[4];
    for (int q = 0; q < 4; ++q) {
      const __m256 t =
          _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(xb + 8 * q), id), lo), hi);
      c[q] = _mm256_add_epi32(_mm256_cvtps_epi32(t), bias);
    }
    dh[b] = half::from_bits(dbits[b]);
    emit(b, c);
  }
}

template <class Arch>
void quantize_q4_0_isa(const float* x, block_q4_0* y, std::int64_t nb, xsimd::avx2) noexcept {
  for (std::int64_t i0 = 0; i0 < nb; i0 += 8) {
    const int g = nb - i0 < 8 ? static_cast<int>(nb - i0) : 8;
    block_q4_0* yb = y + i0;
    half dh[8];
    sym_encode_group<Arch, 8>(
        x + i0 * qk, g, dh,
        [yb](int b, const __m256i(&c)[4]) {
          store8_u8<Arch>(_mm256_or_si256(c[0], _mm256_slli_epi32(c[2], 4)), yb[b].qs,
                          xsimd::avx2{});
          store8_u8<Arch>(_mm256_or_si256(c[1], _mm256_slli_epi32(c[3], 4)), yb[b].qs + 8,
                          xsimd::avx2{});
        },
        xsimd::avx2{});
    for (int b = 0; b < g; ++b) yb[b].d = dh[b];
  }
}

template <class Arch>
void quantize_q5_0_isa(const float* x, block_q5_0* y, std::int64_t nb, xsimd::avx2) noexcept {
  for (std::int64_t i0 = 0; i0 < nb; i0 += 8) {
    const int g = nb - i0 < 8 ? static_cast<int>(nb - i0) : 8;
    block_q5_0* yb = y + i0;
    half dh[8];
    sym_encode_group<Arch, 16>(
        x + i0 * qk, g, dh,
        [yb](int b, const __m256i(&c)[4]) {
          const __m256i m = _mm256_set1_epi32(15);
          std::uint32_t h = 0;
          for (int q = 0; q < 4; ++q)  // bit 4 of each code -> sign bit -> movemask
            h |= static_cast<std::uint32_t>(
                     _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32(c[q], 27))))
                 << (8 * q);
          std::memcpy(yb[b].qh, &h, sizeof h);
          store8_u8<Arch>(_mm256_or_si256(_mm256_and_si256(c[0], m),
                                          _mm256_slli_epi32(_mm256_and_si256(c[2], m), 4)),
                          yb[b].qs, xsimd::avx2{});
          store8_u8<Arch>(_mm256_or_si256(_mm256_and_si256(c[1], m),
                                          _mm256_slli_epi32(_mm256_and_si256(c[3], m), 4)),
                          yb[b].qs + 8, xsimd::avx2{});
        },
        xsimd::avx2{});
    for (int b = 0; b < g; ++b) yb[b].d = dh[b];
  }
}

/// Q8 encoders on AVX2: groups of up to 8 blocks share the vector scale arithmetic.
template <class Arch, class Block, bool WithSum>
inline void quantize_q8_isa(const float* x, Block* y, std::int64_t nb, xsimd::avx2) noexcept {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  for (std::int64_t i0 = 0; i0 < nb; i0 += 8) {
    const int g = nb - i0 < 8 ? static_cast<int>(nb - i0) : 8;
    alignas(32) float amax[8] = {};
    for (int b = 0; b < g; ++b) {
      const float* xb = x + (i0 + b) * qk;
      __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(xb));
      for (int q = 1; q < 4; ++q)
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(xb + 8 * q)));
      amax[b] = reduce_max8<Arch>(m, xsimd::avx2{});
    }
    __m256 d = _mm256_div_ps(_mm256_load_ps(amax), _mm256_set1_ps(127.0f));
    d = _mm256_min_ps(d, _mm256_set1_ps(half_max));
    const __m128i dh = _mm256_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT);
    const __m256 dd = _mm256_cvtph_ps(dh);
    const __m256 nz = _mm256_cmp_ps(dd, _mm256_setzero_ps(), _CMP_NEQ_OQ);
    alignas(32) float idv[8];
    alignas(32) float ddv[8];
    alignas(16) std::uint16_t dhv[8];
    _mm256_store_ps(idv, _mm256_and_ps(nz, _mm256_div_ps(_mm256_set1_ps(1.0f), dd)));
    _mm256_store_ps(ddv, dd);
    _mm_store_si128(reinterpret_cast<__m128i*>(dhv), dh);
    alignas(32) int sums[8] = {};
    for (int b = 0; b < g; ++b) {
      const float* xb = x + (i0 + b) * qk;
      Block& blk = y[i0 + b];
      const __m256 id = _mm256_set1_ps(idv[b]);
      __m256i acc = _mm256_setzero_si256();
      for (int q = 0; q < 4; ++q) {
        const __m256 t =
            _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(xb + 8 * q), id), lo), hi);
        const __m256i c = _mm256_cvtps_epi32(t);
        if constexpr (WithSum) acc = _mm256_add_epi32(acc, c);
        store8_i8<Arch>(c, blk.qs + 8 * q, xsimd::avx2{});
      }
      blk.d = half::from_bits(dhv[b]);
      if constexpr (WithSum) sums[b] = hsum_i32<Arch>(acc, xsimd::avx2{});
    }
    if constexpr (WithSum) {
      const __m256 sf = _mm256_mul_ps(
          _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(sums))),
          _mm256_load_ps(ddv));
      alignas(16) std::uint16_t sh[8];
      _mm_store_si128(reinterpret_cast<__m128i*>(sh),
                      _mm256_cvtps_ph(sf, _MM_FROUND_TO_NEAREST_INT));
      for (int b = 0; b < g; ++b) y[i0 + b].s = half::from_bits(sh[b]);
    }
  }
}
template <class Arch>
void quantize_q8_0_isa(const float* x, block_q8_0* y, std::int64_t nb, xsimd::avx2) noexcept {
  quantize_q8_isa<Arch, block_q8_0, false>(x, y, nb, xsimd::avx2{});
}
template <class Arch>
void quantize_q8_1_isa(const float* x, block_q8_1* y, std::int64_t nb, xsimd::avx2) noexcept {
  quantize_q8_isa<Arch, block_q8_1, true>(x, y, nb, xsimd::avx2{});
}

#endif  // XSIMD_WITH_AVX2 && __F16C__

#if XSIMD_WITH_AVX512BW && defined(__F16C__)

// ---------------------------------------------------------------------------------------------
// AVX-512 (16 lanes): a block is two registers, values 0-15 and 16-31.

/// Codes of a 4-bit block as int32: low nibbles (values 0-15) and high nibbles (16-31).
template <class Arch>
inline void nibbles32(const std::uint8_t* qs, __m512i& lo, __m512i& hi, xsimd::avx512bw) noexcept {
  const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  lo = _mm512_and_si512(b, _mm512_set1_epi32(15));
  hi = _mm512_srli_epi32(b, 4);
}

template <class Arch>
inline __m512 bcast_h(half h, xsimd::avx512bw) noexcept {
  return _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(h.bits)));
}

template <class Arch>
void dequant_q4_0_isa(const block_q4_0* x, float* y, std::int64_t nb, xsimd::avx512bw) noexcept {
  const __m512i eight = _mm512_set1_epi32(8);
  for (std::int64_t i = 0; i < nb; ++i, y += qk) {
    const __m512 d = bcast_h<Arch>(x[i].d, xsimd::avx512bw{});
    __m512i lo, hi;
    nibbles32<Arch>(x[i].qs, lo, hi, xsimd::avx512bw{});
    _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(lo, eight)), d));
    _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(hi, eight)), d));
  }
}

template <class Arch>
void dequant_q4_1_isa(const block_q4_1* x, float* y, std::int64_t nb, xsimd::avx512bw) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, y += qk) {
    const __m512 d = bcast_h<Arch>(x[i].d, xsimd::avx512bw{});
    const __m512 m = bcast_h<Arch>(x[i].m, xsimd::avx512bw{});
    __m512i lo, hi;
    nibbles32<Arch>(x[i].qs, lo, hi, xsimd::avx512bw{});
    _mm512_storeu_ps(y, _mm512_add_ps(unfused<Arch>(_mm512_mul_ps(_mm512_cvtepi32_ps(lo), d)), m));
    _mm512_storeu_ps(y + 16,
                     _mm512_add_ps(unfused<Arch>(_mm512_mul_ps(_mm512_cvtepi32_ps(hi), d)), m));
  }
}

template <class Arch>
inline void fifth_bits32(const std::uint8_t* qh, __m512i& lo, __m512i& hi,
                         xsimd::avx512bw) noexcept {
  std::uint32_t h;
  std::memcpy(&h, qh, sizeof h);
  const __m512i sixteen = _mm512_set1_epi32(16);
  lo = _mm512_mask_or_epi32(lo, static_cast<__mmask16>(h & 0xFFFFu), lo, sixteen);
  hi = _mm512_mask_or_epi32(hi, static_cast<__mmask16>(h >> 16), hi, sixteen);
}

template <class Arch>
void dequant_q5_0_isa(const block_q5_0* x, float* y, std::int64_t nb, xsimd::avx512bw) noexcept {
  const __m512i sixteen = _mm512_set1_epi32(16);
  for (std::int64_t i = 0; i < nb; ++i, y += qk) {
    const __m512 d = bcast_h<Arch>(x[i].d, xsimd::avx512bw{});
    __m512i lo, hi;
    nibbles32<Arch>(x[i].qs, lo, hi, xsimd::avx512bw{});
    fifth_bits32<Arch>(x[i].qh, lo, hi, xsimd::avx512bw{});
    _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(lo, sixteen)), d));
    _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(hi, sixteen)), d));
  }
}

template <class Arch>
void dequant_q5_1_isa(const block_q5_1* x, float* y, std::int64_t nb, xsimd::avx512bw) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, y += qk) {
    const __m512 d = bcast_h<Arch>(x[i].d, xsimd::avx512bw{});
    const __m512 m = bcast_h<Arch>(x[i].m, xsimd::avx512bw{});
    __m512i lo, hi;
    nibbles32<Arch>(x[i].qs, lo, hi, xsimd::avx512bw{});
    fifth_bits32<Arch>(x[i].qh, lo, hi, xsimd::avx512bw{});
    _mm512_storeu_ps(y, _mm512_add_ps(unfused<Arch>(_mm512_mul_ps(_mm512_cvtepi32_ps(lo), d)), m));
    _mm512_storeu_ps(y + 16,
                     _mm512_add_ps(unfused<Arch>(_mm512_mul_ps(_mm512_cvtepi32_ps(hi), d)), m));
  }
}

template <class Arch, class Block>
void dequant_q8_isa(const Block* x, float* y, std::int64_t nb, xsimd::avx512bw) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, y += qk) {
    const __m512 d = bcast_h<Arch>(x[i].d, xsimd::avx512bw{});
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs + 16));
    _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(a)), d));
    _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)), d));
  }
}
template <class Arch>
void dequant_q8_0_isa(const block_q8_0* x, float* y, std::int64_t nb, xsimd::avx512bw) noexcept {
  dequant_q8_isa<Arch>(x, y, nb, xsimd::avx512bw{});
}
template <class Arch>
void dequant_q8_1_isa(const block_q8_1* x, float* y, std::int64_t nb, xsimd::avx512bw) noexcept {
  dequant_q8_isa<Arch>(x, y, nb, xsimd::avx512bw{});
}

template <class Arch>
void dequant_iq4_nl_isa(const block_iq4_nl* x, float* y, std::int64_t nb,
                        xsimd::avx512bw) noexcept {
  alignas(64) float t[16];
  for (int j = 0; j < 16; ++j) t[j] = static_cast<float>(kvalues_iq4nl[j]);
  const __m512 table = _mm512_load_ps(t);
  for (std::int64_t i = 0; i < nb; ++i, y += qk) {
    const __m512 d = bcast_h<Arch>(x[i].d, xsimd::avx512bw{});
    __m512i lo, hi;
    nibbles32<Arch>(x[i].qs, lo, hi, xsimd::avx512bw{});
    _mm512_storeu_ps(y, _mm512_mul_ps(d, _mm512_permutexvar_ps(lo, table)));
    _mm512_storeu_ps(y + 16, _mm512_mul_ps(d, _mm512_permutexvar_ps(hi, table)));
  }
}

template <class Arch>
void dequant_mxfp4_isa(const block_mxfp4* x, float* y, std::int64_t nb, xsimd::avx512bw) noexcept {
  alignas(64) float t[16];
  for (int j = 0; j < 16; ++j) t[j] = static_cast<float>(kvalues_mxfp4[j]);
  const __m512 table = _mm512_load_ps(t);
  for (std::int64_t i = 0; i < nb; ++i, y += qk) {
    const __m512 d = _mm512_set1_ps(e8m0_half<Arch>(x[i].e));
    __m512i lo, hi;
    nibbles32<Arch>(x[i].qs, lo, hi, xsimd::avx512bw{});
    _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_permutexvar_ps(lo, table), d));
    _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_permutexvar_ps(hi, table), d));
  }
}

/// 32 codes as int16 (values 0-31) from a 4-bit block's nibbles.
template <class Arch>
inline __m512i nibbles16(const std::uint8_t* qs, xsimd::avx512bw) noexcept {
  const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  const __m256i lo = _mm256_and_si256(w, _mm256_set1_epi16(15));
  const __m256i hi = _mm256_srli_epi16(w, 4);
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

template <class Arch>
inline __m512i q8_as16(const std::int8_t* qs, xsimd::avx512bw) noexcept {
  return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs)));
}

template <class Arch>
inline int dot16(__m512i a, __m512i b, xsimd::avx512bw) noexcept {
  return _mm512_reduce_add_epi32(_mm512_madd_epi16(a, b));
}

/// Table levels of a 4-bit block as int16: one byte shuffle for all 32 nibbles.
template <class Arch>
inline __m512i levels16(const std::uint8_t* qs, const std::int8_t* table,
                        xsimd::avx512bw) noexcept {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(table));
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(15);
  const __m256i idx =
      _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m), _mm_and_si128(raw, m));
  const __m256i lv = _mm256_shuffle_epi8(_mm256_set_m128i(t, t), idx);
  return _mm512_cvtepi8_epi16(lv);
}

template <class Arch>
void dot_q4_0_q8_0_isa(std::int64_t nb, float* s, const block_q4_0* x, const block_q8_0* y,
                       xsimd::avx512bw) noexcept {
  float sumf = 0.0f;
  const __m512i eight = _mm512_set1_epi16(8);
  for (std::int64_t i = 0; i < nb; ++i) {
    const __m512i c = _mm512_sub_epi16(nibbles16<Arch>(x[i].qs, xsimd::avx512bw{}), eight);
    const int sumi = dot16<Arch>(c, q8_as16<Arch>(y[i].qs, xsimd::avx512bw{}), xsimd::avx512bw{});
    sumf += dot_term_q4_0<Arch>(sumi, x[i].d, y[i].d);
  }
  *s = sumf;
}

template <class Arch>
void dot_q4_1_q8_1_isa(std::int64_t nb, float* s, const block_q4_1* x, const block_q8_1* y,
                       xsimd::avx512bw) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < nb; ++i) {
    const int sumi = dot16<Arch>(nibbles16<Arch>(x[i].qs, xsimd::avx512bw{}),
                                 q8_as16<Arch>(y[i].qs, xsimd::avx512bw{}), xsimd::avx512bw{});
    sumf += dot_term_offset<Arch>(sumi, x[i].d, x[i].m, y[i].d, y[i].s);
  }
  *s = sumf;
}

template <class Arch>
void dot_q5_0_q8_0_isa(std::int64_t nb, float* s, const block_q5_0* x, const block_q8_0* y,
                       xsimd::avx512bw) noexcept {
  float sumf = 0.0f;
  const __m512i sixteen = _mm512_set1_epi16(16);
  for (std::int64_t i = 0; i < nb; ++i) {
    std::uint32_t h;
    std::memcpy(&h, x[i].qh, sizeof h);
    __m512i c = nibbles16<Arch>(x[i].qs, xsimd::avx512bw{});
    c = _mm512_sub_epi16(_mm512_mask_add_epi16(c, static_cast<__mmask32>(h), c, sixteen), sixteen);
    const int sumi = dot16<Arch>(c, q8_as16<Arch>(y[i].qs, xsimd::avx512bw{}), xsimd::avx512bw{});
    sumf += dot_term_scaled<Arch>(sumi, h2f<Arch>(x[i].d) * h2f<Arch>(y[i].d));
  }
  *s = sumf;
}

template <class Arch>
void dot_q5_1_q8_1_isa(std::int64_t nb, float* s, const block_q5_1* x, const block_q8_1* y,
                       xsimd::avx512bw) noexcept {
  float sumf = 0.0f;
  const __m512i sixteen = _mm512_set1_epi16(16);
  for (std::int64_t i = 0; i < nb; ++i) {
    std::uint32_t h;
    std::memcpy(&h, x[i].qh, sizeof h);
    __m512i c = nibbles16<Arch>(x[i].qs, xsimd::avx512bw{});
    c = _mm512_mask_add_epi16(c, static_cast<__mmask32>(h), c, sixteen);
    const int sumi = dot16<Arch>(c, q8_as16<Arch>(y[i].qs, xsimd::avx512bw{}), xsimd::avx512bw{});
    sumf += dot_term_offset<Arch>(sumi, x[i].d, x[i].m, y[i].d, y[i].s);
  }
  *s = sumf;
}

template <class Arch>
void dot_q8_0_q8_0_isa(std::int64_t nb, float* s, const block_q8_0* x, const block_q8_0* y,
                       xsimd::avx512bw) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < nb; ++i) {
    const int sumi = dot16<Arch>(q8_as16<Arch>(x[i].qs, xsimd::avx512bw{}),
                                 q8_as16<Arch>(y[i].qs, xsimd::avx512bw{}), xsimd::avx512bw{});
    sumf += dot_term_q8_0<Arch>(sumi, x[i].d, y[i].d);
  }
  *s = sumf;
}

template <class Arch>
void dot_iq4_nl_q8_0_isa(std::int64_t nb, float* s, const block_iq4_nl* x, const block_q8_0* y,
                         xsimd::avx512bw) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < nb; ++i) {
    const int sumi = dot16<Arch>(levels16<Arch>(x[i].qs, kvalues_iq4nl, xsimd::avx512bw{}),
                                 q8_as16<Arch>(y[i].qs, xsimd::avx512bw{}), xsimd::avx512bw{});
    sumf += dot_term_scaled<Arch>(sumi, h2f<Arch>(y[i].d) * h2f<Arch>(x[i].d));
  }
  *s = sumf;
}

template <class Arch>
void dot_mxfp4_q8_0_isa(std::int64_t nb, float* s, const block_mxfp4* x, const block_q8_0* y,
                        xsimd::avx512bw) noexcept {
  float sumf = 0.0f;
  for (std::int64_t i = 0; i < nb; ++i) {
    const int sumi = dot16<Arch>(levels16<Arch>(x[i].qs, kvalues_mxfp4, xsimd::avx512bw{}),
                                 q8_as16<Arch>(y[i].qs, xsimd::avx512bw{}), xsimd::avx512bw{});
    sumf += dot_term_scaled<Arch>(sumi, h2f<Arch>(y[i].d) * e8m0_half<Arch>(x[i].e));
  }
  *s = sumf;
}

/// Sums of eight 16-lane vectors, each folded in detail::fold16's order: out[q] = fold(v[q]).
template <class Arch>
inline void fold16x8(const __m512 (&v)[8], float (&out)[8], xsimd::avx512bw) noexcept {
  __m512 t[4];
  for (int q = 0; q < 4; ++q)  // lanes j + (j + 8): [v2q lanes 0-7 | v2q+1 lanes 0-7]
    t[q] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * q], v[2 * q + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * q], v[2 * q + 1], 0xEE));
  __m512 u[2];
  for (int q = 0; q < 2; ++q)  // j + (j + 4): 128-bit blocks (0 + 1) and (2 + 3) of each
    u[q] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * q], t[2 * q + 1], 0x88),
                         _mm512_shuffle_f32x4(t[2 * q], t[2 * q + 1], 0xDD));
  // j + (j + 2): pairs (0, 1) + (2, 3) within each 128-bit block, from u0 and u1
  const __m512 w =
      _mm512_add_ps(_mm512_shuffle_ps(u[0], u[1], 0x44), _mm512_shuffle_ps(u[0], u[1], 0xEE));
  alignas(64) float r[16];
  _mm512_store_ps(r, _mm512_add_ps(w, _mm512_shuffle_ps(w, w, 0xB1)));
  // u0 blocks: v0, v1, v2, v3 ; u1 blocks: v4 .. v7 ; w block k: [vk, vk, vk+4, vk+4]
  for (int q = 0; q < 4; ++q) {
    out[q] = r[4 * q];
    out[q + 4] = r[4 * q + 2];
  }
}

/// 16 x 16 float transpose: r[i] lane j -> r[j] lane i.
template <class Arch>
inline void transpose16(__m512 (&r)[16], xsimd::avx512bw) noexcept {
  __m512 a[16], b[16];
  for (int i = 0; i < 8; ++i) {
    a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // b[4i + c], 128-bit block k: rows 4i..4i+3 of column 4k + c
    const __m512d lo0 = _mm512_castps_pd(a[4 * i]), lo1 = _mm512_castps_pd(a[4 * i + 2]);
    const __m512d hi0 = _mm512_castps_pd(a[4 * i + 1]), hi1 = _mm512_castps_pd(a[4 * i + 3]);
    b[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo0, lo1));
    b[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo0, lo1));
    b[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(hi0, hi1));
    b[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(hi0, hi1));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 e0 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0x88);
    const __m512 e1 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0xDD);
    const __m512 f0 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0x88);
    const __m512 f1 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0xDD);
    r[c] = _mm512_shuffle_f32x4(e0, f0, 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(e0, f0, 0xDD);
    r[4 + c] = _mm512_shuffle_f32x4(e1, f1, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(e1, f1, 0xDD);
  }
}

/// Writes 16 bytes per block from the transposed form: v[j] lane b (0..255 in an int32) is
/// byte j of block b, stored at dst + b * stride, for blocks b < g.
template <class Arch>
inline void store_bytes_transposed(const __m512i (&v)[16], std::uint8_t* dst, std::size_t stride,
                                   int g, xsimd::avx512bw) noexcept {
  // 128-bit block k of s[m], byte 4r + t: byte 4m + r of block 4k + t
  __m512i s[4];
  const __m512i tr = _mm512_set4_epi32(0x0F0B0703, 0x0E0A0602, 0x0D090501, 0x0C080400);
  for (int m = 0; m < 4; ++m) {
    const __m512i p01 = _mm512_packus_epi32(v[4 * m], v[4 * m + 1]);
    const __m512i p23 = _mm512_packus_epi32(v[4 * m + 2], v[4 * m + 3]);
    s[m] = _mm512_shuffle_epi8(_mm512_packus_epi16(p01, p23), tr);  // dword t: block 4k + t
  }
  const __m512i u0 = _mm512_unpacklo_epi32(s[0], s[1]), u1 = _mm512_unpackhi_epi32(s[0], s[1]);
  const __m512i u2 = _mm512_unpacklo_epi32(s[2], s[3]), u3 = _mm512_unpackhi_epi32(s[2], s[3]);
  const __m512i t[4] = {_mm512_unpacklo_epi64(u0, u2), _mm512_unpackhi_epi64(u0, u2),
                        _mm512_unpacklo_epi64(u1, u3), _mm512_unpackhi_epi64(u1, u3)};
  // t[q], 128-bit block k: the 16 bytes of block 4k + q
  for (int q = 0; q < 4; ++q) {
    if (q < g)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (0 + q) * stride),
                       _mm512_castsi512_si128(t[q]));
    if (4 + q < g)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (4 + q) * stride),
                       _mm512_extracti32x4_epi32(t[q], 1));
    if (8 + q < g)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (8 + q) * stride),
                       _mm512_extracti32x4_epi32(t[q], 2));
    if (12 + q < g)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (12 + q) * stride),
                       _mm512_extracti32x4_epi32(t[q], 3));
  }
}

/// Loads up to 16 blocks (g of them; the rest read as zero) transposed: xt[j] lane b = x[b][j].
template <class Arch>
inline void load_blocks_transposed(const float* x, int g, __m512 (&xt)[32],
                                   xsimd::avx512bw) noexcept {
  for (int h = 0; h < 2; ++h) {
    __m512 r[16];
    for (int b = 0; b < 16; ++b)
      r[b] = b < g ? _mm512_loadu_ps(x + b * qk + 16 * h) : _mm512_setzero_ps();
    transpose16<Arch>(r, xsimd::avx512bw{});
    for (int j = 0; j < 16; ++j) xt[16 * h + j] = r[j];
  }
}

/// One candidate of the symmetric search on 16 transposed blocks: levels, fold16 sums and the
/// running selection (first of equal scores wins).
template <class Arch, int N, int Cand>
inline void sym_candidate(const __m512 (&xs)[32], __m512 inv, __mmask16 valid, __m512& best,
                          __m512& blx, __m512& bl2, xsimd::avx512bw) noexcept {
  constexpr float r = sym_search<Arch, N>::candidates[Cand];
  // Clamps that cannot change the rounded level are skipped: with the extreme mapped to r,
  // every |v| <= |r| (1 + 3 eps), so a bound is only needed when |r| reaches past it.
  constexpr bool clamp_lo = r < -static_cast<float>(N);
  constexpr bool clamp_hi = -r > static_cast<float>(N - 1);
  const __m512 lo = _mm512_set1_ps(-static_cast<float>(N));
  const __m512 hi = _mm512_set1_ps(static_cast<float>(N - 1));
  const __m512 id = _mm512_mul_ps(_mm512_set1_ps(r), inv);
  const auto level = [&](__m512 v) {
    if constexpr (clamp_lo) v = _mm512_max_ps(v, lo);
    if constexpr (clamp_hi) v = _mm512_min_ps(v, hi);
    return _mm512_roundscale_ps(v, _MM_FROUND_CUR_DIRECTION);
  };
  __m512 a8[8], b8[8];
  QCODEC_GGML_UNROLL
  for (int j = 0; j < 8; ++j) {
    __m512 a2[2], b2[2];
    QCODEC_GGML_UNROLL
    for (int h = 0; h < 2; ++h) {  // values j + 8h and j + 8h + 16
      const int jj = j + 8 * h;
      const __m512 l0 = level(_mm512_mul_ps(xs[jj], id));
      const __m512 l1 = level(_mm512_mul_ps(xs[jj + 16], id));
      a2[h] = _mm512_fmadd_ps(l0, xs[jj], _mm512_mul_ps(l1, xs[jj + 16]));
      b2[h] = _mm512_fmadd_ps(l0, l0, _mm512_mul_ps(l1, l1));
    }
    a8[j] = _mm512_add_ps(a2[0], a2[1]);
    b8[j] = _mm512_add_ps(b2[0], b2[1]);
  }
  QCODEC_GGML_UNROLL
  for (int w = 4; w >= 1; w /= 2) {
    QCODEC_GGML_UNROLL
    for (int j = 0; j < w; ++j) {
      a8[j] = _mm512_add_ps(a8[j], a8[j + w]);
      b8[j] = _mm512_add_ps(b8[j], b8[j + w]);
    }
  }
  const __m512 lx = a8[0];
  const __m512 l2 = _mm512_mask_mov_ps(_mm512_set1_ps(1.0f), valid, b8[0]);
  const __m512 score = _mm512_div_ps(_mm512_mul_ps(lx, lx), l2);
  if constexpr (Cand == 0) {
    best = score;
    blx = lx;
    bl2 = l2;
  } else {
    const __mmask16 better = _mm512_cmp_ps_mask(score, best, _CMP_GT_OQ);
    best = _mm512_mask_mov_ps(best, better, score);
    blx = _mm512_mask_mov_ps(blx, better, lx);
    bl2 = _mm512_mask_mov_ps(bl2, better, l2);
  }
}

/// detail::sym_encode on AVX-512, 16 blocks at a time with one block per lane: the blocks are
/// transposed so that every reduction, fold16 sum, selection and scale computation is a
/// vertical operation (fold16's order becomes plain adds of whole registers). A group goes
/// through three steps, which the row loop interleaves across groups (prepare and search the
/// next group before writing the codes of the current one) so that the long latency of each
/// group's divisions and binary16 rounding overlaps with independent work.
template <class Arch>
struct sym_group {
  __m512 xt[32];  ///< xt[j] lane b: value j of block b
  __m512 up, down, inv;
  __mmask16 valid;
  __m512 d;  ///< the chosen scale, before rounding to binary16
};

/// Step 1: load, extreme values, prescaling and the inverse of the prescaled extreme.
template <class Arch, int N>
inline void sym_prepare(const float* x, int g, sym_group<Arch>& s, xsimd::avx512bw) noexcept {
  load_blocks_transposed<Arch>(x, g, s.xt, xsimd::avx512bw{});
  // max / min trees (a serial chain of 31 would be pure latency)
  __m512 mxs[16], mns[16];
  QCODEC_GGML_UNROLL
  for (int j = 0; j < 16; ++j) {
    mxs[j] = _mm512_max_ps(s.xt[j], s.xt[j + 16]);
    mns[j] = _mm512_min_ps(s.xt[j], s.xt[j + 16]);
  }
  QCODEC_GGML_UNROLL
  for (int w = 8; w >= 1; w /= 2) {
    QCODEC_GGML_UNROLL
    for (int j = 0; j < w; ++j) {
      mxs[j] = _mm512_max_ps(mxs[j], mxs[j + w]);
      mns[j] = _mm512_min_ps(mns[j], mns[j + w]);
    }
  }
  const __m512 mx = mxs[0], mn = mns[0];
  const __m512 nmn = _mm512_castsi512_ps(
      _mm512_xor_si512(_mm512_castps_si512(mn), _mm512_set1_epi32(static_cast<int>(0x80000000u))));
  const __mmask16 ge = _mm512_cmp_ps_mask(mx, nmn, _CMP_GE_OQ);
  const __m512 amax = _mm512_mask_blend_ps(ge, nmn, mx);
  const __m512 ext = _mm512_mask_blend_ps(ge, mn, mx);
  s.valid = _mm512_cmp_ps_mask(amax, _mm512_set1_ps(tiny_block), _CMP_GE_OQ);
  const __m512i be =
      _mm512_min_epu32(_mm512_srli_epi32(_mm512_castps_si512(amax), 23), _mm512_set1_epi32(253));
  s.up = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_sub_epi32(_mm512_set1_epi32(254), be), 23));
  s.down = _mm512_castsi512_ps(_mm512_slli_epi32(be, 23));
  // invalid lanes (tiny or padding blocks) get a harmless 1 and are zeroed in sym_pick
  s.inv = _mm512_mask_div_ps(_mm512_set1_ps(1.0f), s.valid, _mm512_set1_ps(1.0f),
                             _mm512_mul_ps(ext, s.up));
}

/// Step 2: the candidates, the selection and the least-squares scale.
template <class Arch, int N>
inline void sym_pick(sym_group<Arch>& s, xsimd::avx512bw) noexcept {
  __m512 xs[32];
  QCODEC_GGML_UNROLL
  for (int j = 0; j < 32; ++j) xs[j] = _mm512_mul_ps(s.xt[j], s.up);
  __m512 blx = _mm512_setzero_ps(), bl2 = _mm512_set1_ps(1.0f), best = _mm512_setzero_ps();
  [&]<int... Cs>(std::integer_sequence<int, Cs...>) {
    (sym_candidate<Arch, N, Cs>(xs, s.inv, s.valid, best, blx, bl2, xsimd::avx512bw{}), ...);
  }
  (std::make_integer_sequence<int, sym_search<Arch, N>::count>{});
  const __m512 d = _mm512_maskz_mul_ps(s.valid, _mm512_div_ps(blx, bl2), s.down);
  s.d = _mm512_min_ps(_mm512_max_ps(d, _mm512_set1_ps(-half_max)), _mm512_set1_ps(half_max));
}

/// Step 3: binary16 scales and the codes l + N against the decoded scale, transposed
/// (code[j] lane b: value j of block b).
template <class Arch, int N>
inline void sym_codes(const sym_group<Arch>& s, int g, half* dh, __m512i (&code)[32],
                      xsimd::avx512bw) noexcept {
  const __m256i dhv = _mm512_cvtps_ph(s.d, _MM_FROUND_TO_NEAREST_INT);
  const __m512 dd = _mm512_cvtph_ps(dhv);
  const __mmask16 nz = _mm512_cmp_ps_mask(dd, _mm512_setzero_ps(), _CMP_NEQ_OQ);
  const __m512 idf = _mm512_maskz_div_ps(nz, _mm512_set1_ps(1.0f), dd);
  alignas(32) std::uint16_t dbits[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(dbits), dhv);
  for (int b = 0; b < g; ++b) dh[b] = half::from_bits(dbits[b]);
  const __m512 lo = _mm512_set1_ps(-static_cast<float>(N));
  const __m512 hi = _mm512_set1_ps(static_cast<float>(N - 1));
  const __m512i bias = _mm512_set1_epi32(N);
  QCODEC_GGML_UNROLL
  for (int j = 0; j < 32; ++j) {
    const __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(s.xt[j], idf), lo), hi);
    code[j] = _mm512_add_epi32(_mm512_cvtps_epi32(t), bias);
  }
}

/// The row loop of the symmetric encoders: emit(first block, blocks, scales, codes) packs and
/// stores each group.
template <class Arch, int N, class Emit>
inline void sym_encode_row(const float* x, std::int64_t nb, Emit&& emit, xsimd::avx512bw) noexcept {
  if (nb <= 0) return;
  const auto blocks_at = [nb](std::int64_t i0) {
    return nb - i0 < 16 ? static_cast<int>(nb - i0) : 16;
  };
  sym_group<Arch> st[2];
  sym_prepare<Arch, N>(x, blocks_at(0), st[0], xsimd::avx512bw{});
  sym_pick<Arch, N>(st[0], xsimd::avx512bw{});
  for (std::int64_t i0 = 0, k = 0; i0 < nb; i0 += 16, k ^= 1) {
    if (i0 + 16 < nb) {
      sym_prepare<Arch, N>(x + (i0 + 16) * qk, blocks_at(i0 + 16), st[k ^ 1], xsimd::avx512bw{});
      sym_pick<Arch, N>(st[k ^ 1], xsimd::avx512bw{});
    }
    half dh[16];
    __m512i code[32];
    sym_codes<Arch, N>(st[k], blocks_at(i0), dh, code, xsimd::avx512bw{});
    emit(i0, blocks_at(i0), dh, code);
  }
}

template <class Arch>
void quantize_q4_0_isa(const float* x, block_q4_0* y, std::int64_t nb, xsimd::avx512bw) noexcept {
  sym_encode_row<Arch, 8>(
      x, nb,
      [y](std::int64_t i0, int g, const half* dh, const __m512i(&code)[32]) {
        __m512i bytes[16];
        QCODEC_GGML_UNROLL
        for (int j = 0; j < 16; ++j)
          bytes[j] = _mm512_or_si512(code[j], _mm512_slli_epi32(code[j + 16], 4));
        store_bytes_transposed<Arch>(bytes, y[i0].qs, sizeof(block_q4_0), g, xsimd::avx512bw{});
        for (int b = 0; b < g; ++b) y[i0 + b].d = dh[b];
      },
      xsimd::avx512bw{});
}

template <class Arch>
void quantize_q5_0_isa(const float* x, block_q5_0* y, std::int64_t nb, xsimd::avx512bw) noexcept {
  sym_encode_row<Arch, 16>(
      x, nb,
      [y](std::int64_t i0, int g, const half* dh, const __m512i(&code)[32]) {
        const __m512i m = _mm512_set1_epi32(15);
        __m512i bytes[16];
        __m512i h = _mm512_setzero_si512();
        QCODEC_GGML_UNROLL
        for (int j = 0; j < 32; ++j)
          h = _mm512_or_si512(h, _mm512_slli_epi32(_mm512_srli_epi32(code[j], 4), j));
        QCODEC_GGML_UNROLL
        for (int j = 0; j < 16; ++j)
          bytes[j] = _mm512_or_si512(_mm512_and_si512(code[j], m),
                                     _mm512_slli_epi32(_mm512_and_si512(code[j + 16], m), 4));
        store_bytes_transposed<Arch>(bytes, y[i0].qs, sizeof(block_q5_0), g, xsimd::avx512bw{});
        alignas(64) std::uint32_t hv[16];
        _mm512_store_si512(hv, h);
        for (int b = 0; b < g; ++b) {
          std::memcpy(y[i0 + b].qh, &hv[b], sizeof hv[b]);
          y[i0 + b].d = dh[b];
        }
      },
      xsimd::avx512bw{});
}

/// Lane b of the result = the largest lane of v[b] (a transposed reduction: 46 instructions for
/// 16 registers instead of a 7-step horizontal reduction each).
template <class Arch>
inline __m512 reduce_max16(const __m512 (&v)[16], xsimd::avx512bw) noexcept {
  __m512 t[8], u[4], w[2];
  QCODEC_GGML_UNROLL
  for (int i = 0; i < 8; ++i)  // lanes 0-7: v[2i], lanes 8-15: v[2i + 1]
    t[i] = _mm512_max_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
  QCODEC_GGML_UNROLL
  for (int i = 0; i < 4; ++i)  // 128-bit block q: v[4i + q]
    u[i] = _mm512_max_ps(_mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0xDD));
  QCODEC_GGML_UNROLL
  for (int i = 0; i < 2; ++i)  // block q: lanes 0-1 v[8i + q], lanes 2-3 v[8i + 4 + q]
    w[i] = _mm512_max_ps(_mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0x44),
                         _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0xEE));
  // block q: v[q], v[4 + q], v[8 + q], v[12 + q]
  const __m512 z =
      _mm512_max_ps(_mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xDD));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(order, z);
}

/// The scales of a group of up to 16 Q8 blocks (lane b: block b).
template <class Arch>
struct q8_scales {
  __m512 dd;      ///< decoded scales
  __m512 id;      ///< 1 / decoded scale (0 where it is 0)
  __m256i dh;     ///< binary16 scales
  bool saturate;  ///< no scale was clamped: saturating conversion equals the clamp
};

/// One transposed amax reduction, two divisions and the binary16 rounding for G blocks.
template <class Arch, int G>
inline q8_scales<Arch> q8_group_scales(const float* xg, xsimd::avx512bw) noexcept {
  __m512 m[16];
  QCODEC_GGML_UNROLL
  for (int b = 0; b < 16; ++b)
    m[b] = b < G ? _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xg + b * qk)),
                                 _mm512_abs_ps(_mm512_loadu_ps(xg + b * qk + 16)))
                 : _mm512_setzero_ps();
  const __m512 amax = reduce_max16<Arch>(m, xsimd::avx512bw{});
  const __m512 d =
      _mm512_min_ps(_mm512_div_ps(amax, _mm512_set1_ps(127.0f)), _mm512_set1_ps(half_max));
  q8_scales<Arch> sc;
  sc.dh = _mm512_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT);
  sc.dd = _mm512_cvtph_ps(sc.dh);
  const __mmask16 nz = _mm512_cmp_ps_mask(sc.dd, _mm512_setzero_ps(), _CMP_NEQ_OQ);
  sc.id = _mm512_maskz_div_ps(nz, _mm512_set1_ps(1.0f), sc.dd);
  sc.saturate = _mm512_cmp_ps_mask(amax, _mm512_set1_ps(127.0f * half_max), _CMP_GT_OQ) == 0;
  return sc;
}

/// The codes of G <= 16 Q8 blocks (G a compile-time constant, so the block loop unrolls without
/// per-block tests). Codes are converted with saturation, which gives the oracle's clamp unless
/// a scale was clamped to 65504 (|x / d| can then exceed int32): such groups clamp in float.
template <class Arch, class Block, bool WithSum, int G, bool Saturate>
inline void q8_group_codes(const float* xg, Block* yg, const q8_scales<Arch>& sc,
                           xsimd::avx512bw) noexcept {
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  const __m256i lo8 = _mm256_set1_epi8(-127);
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  alignas(64) float idv[16];
  alignas(32) std::uint16_t dhv[16];
  _mm512_store_ps(idv, sc.id);
  _mm256_store_si256(reinterpret_cast<__m256i*>(dhv), sc.dh);
  alignas(64) int sums[16] = {};
  QCODEC_GGML_UNROLL
  for (int b = 0; b < G; ++b) {
    const float* xb = xg + b * qk;
    Block& blk = yg[b];
    const __m512 id = _mm512_set1_ps(idv[b]);
    __m512 v0 = _mm512_mul_ps(_mm512_loadu_ps(xb), id);
    __m512 v1 = _mm512_mul_ps(_mm512_loadu_ps(xb + 16), id);
    if constexpr (!Saturate) {
      v0 = _mm512_min_ps(_mm512_max_ps(v0, lo), hi);
      v1 = _mm512_min_ps(_mm512_max_ps(v1, lo), hi);
    }
    const __m512i c0 = _mm512_cvtps_epi32(v0), c1 = _mm512_cvtps_epi32(v1);
    // saturating narrowing: 128-bit block k of the packs holds c0[4k..4k+3] in dword 0 and
    // c1[4k..4k+3] in dword 1; one permute restores the order
    const __m512i w = _mm512_packs_epi32(c0, c1);
    const __m512i q = _mm512_permutexvar_epi32(order, _mm512_packs_epi16(w, w));
    const __m256i q8 = _mm256_max_epi8(_mm512_castsi512_si256(q), lo8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(blk.qs), q8);
    blk.d = half::from_bits(dhv[b]);
    if constexpr (WithSum) {  // the stored codes, summed exactly
      const __m256i s16 =
          _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(q8)), _mm256_set1_epi16(1));
      const __m256i t16 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_extracti128_si256(q8, 1)),
                                            _mm256_set1_epi16(1));
      const __m256i t = _mm256_add_epi32(s16, t16);
      __m128i u = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
      u = _mm_add_epi32(u, _mm_unpackhi_epi64(u, u));
      u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 1));
      sums[b] = _mm_cvtsi128_si32(u);
    }
  }
  if constexpr (WithSum) {
    const __m512 sf = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(sums)), sc.dd);
    alignas(32) std::uint16_t sh[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sh),
                       _mm512_cvtps_ph(sf, _MM_FROUND_TO_NEAREST_INT));
    for (int b = 0; b < G; ++b) yg[b].s = half::from_bits(sh[b]);
  }
}

template <class Arch, class Block, bool WithSum, int G>
inline void q8_group_codes(const float* xg, Block* yg, const q8_scales<Arch>& sc,
                           xsimd::avx512bw) noexcept {
  if (sc.saturate)
    q8_group_codes<Arch, Block, WithSum, G, true>(xg, yg, sc, xsimd::avx512bw{});
  else
    q8_group_codes<Arch, Block, WithSum, G, false>(xg, yg, sc, xsimd::avx512bw{});
}

template <class Arch, class Block, bool WithSum, int G = 15>
inline void quantize_q8_tail(const float* xg, Block* yg, int g, xsimd::avx512bw) noexcept {
  if constexpr (G > 0) {
    if (g == G) {
      q8_group_codes<Arch, Block, WithSum, G>(
          xg, yg, q8_group_scales<Arch, G>(xg, xsimd::avx512bw{}), xsimd::avx512bw{});
    } else {
      quantize_q8_tail<Arch, Block, WithSum, G - 1>(xg, yg, g, xsimd::avx512bw{});
    }
  }
}

/// Q8 encoders on AVX-512, 16 blocks per group. The scales of the next group are computed
/// before the codes of the current one, so that the long latency of their reductions and
/// divisions overlaps with independent work.
template <class Arch, class Block, bool WithSum>
inline void quantize_q8_isa(const float* x, Block* y, std::int64_t nb, xsimd::avx512bw) noexcept {
  const std::int64_t full = nb / 16 * 16;
  if (full > 0) {
    q8_scales<Arch> sc = q8_group_scales<Arch, 16>(x, xsimd::avx512bw{});
    for (std::int64_t i0 = 0; i0 < full; i0 += 16) {
      q8_scales<Arch> next = sc;
      if (i0 + 16 < full) next = q8_group_scales<Arch, 16>(x + (i0 + 16) * qk, xsimd::avx512bw{});
      q8_group_codes<Arch, Block, WithSum, 16>(x + i0 * qk, y + i0, sc, xsimd::avx512bw{});
      sc = next;
    }
  }
  quantize_q8_tail<Arch, Block, WithSum>(x + full * qk, y + full, static_cast<int>(nb - full),
                                         xsimd::avx512bw{});
}
template <class Arch>
void quantize_q8_0_isa(const float* x, block_q8_0* y, std::int64_t nb, xsimd::avx512bw) noexcept {
  quantize_q8_isa<Arch, block_q8_0, false>(x, y, nb, xsimd::avx512bw{});
}
template <class Arch>
void quantize_q8_1_isa(const float* x, block_q8_1* y, std::int64_t nb, xsimd::avx512bw) noexcept {
  quantize_q8_isa<Arch, block_q8_1, true>(x, y, nb, xsimd::avx512bw{});
}

#endif  // XSIMD_WITH_AVX512BW && __F16C__

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Entry points (not inline: see kernel_table.hpp).

namespace kernel {

template <class Arch>
void quantize_row_q4_0(const float* x, block_q4_0* y, std::int64_t k) noexcept {
  detail::quantize_q4_0_isa<Arch>(x, y, k / qk, Arch{});
}
template <class Arch>
void quantize_row_q4_1(const float* x, block_q4_1* y, std::int64_t k) noexcept {
  detail::quantize_q4_1<Arch>(x, y, k);
}
template <class Arch>
void quantize_row_q5_0(const float* x, block_q5_0* y, std::int64_t k) noexcept {
  detail::quantize_q5_0_isa<Arch>(x, y, k / qk, Arch{});
}
template <class Arch>
void quantize_row_q5_1(const float* x, block_q5_1* y, std::int64_t k) noexcept {
  detail::quantize_q5_1<Arch>(x, y, k);
}
template <class Arch>
void quantize_row_q8_0(const float* x, block_q8_0* y, std::int64_t k) noexcept {
  detail::quantize_q8_0_isa<Arch>(x, y, k / qk, Arch{});
}
template <class Arch>
void quantize_row_q8_1(const float* x, block_q8_1* y, std::int64_t k) noexcept {
  detail::quantize_q8_1_isa<Arch>(x, y, k / qk, Arch{});
}
template <class Arch>
void quantize_row_iq4_nl(const float* x, block_iq4_nl* y, std::int64_t k) noexcept {
  detail::quantize_iq4_nl<Arch>(x, y, k);
}
template <class Arch>
void quantize_row_mxfp4(const float* x, block_mxfp4* y, std::int64_t k) noexcept {
  detail::quantize_mxfp4<Arch>(x, y, k);
}

template <class Arch>
void dequantize_row_q4_0(const block_q4_0* x, float* y, std::int64_t k) noexcept {
  detail::dequant_q4_0_isa<Arch>(x, y, k / qk, Arch{});
}
template <class Arch>
void dequantize_row_q4_1(const block_q4_1* x, float* y, std::int64_t k) noexcept {
  detail::dequant_q4_1_isa<Arch>(x, y, k / qk, Arch{});
}
template <class Arch>
void dequantize_row_q5_0(const block_q5_0* x, float* y, std::int64_t k) noexcept {
  detail::dequant_q5_0_isa<Arch>(x, y, k / qk, Arch{});
}
template <class Arch>
void dequantize_row_q5_1(const block_q5_1* x, float* y, std::int64_t k) noexcept {
  detail::dequant_q5_1_isa<Arch>(x, y, k / qk, Arch{});
}
template <class Arch>
void dequantize_row_q8_0(const block_q8_0* x, float* y, std::int64_t k) noexcept {
  detail::dequant_q8_0_isa<Arch>(x, y, k / qk, Arch{});
}
template <class Arch>
void dequantize_row_q8_1(const block_q8_1* x, float* y, std::int64_t k) noexcept {
  detail::dequant_q8_1_isa<Arch>(x, y, k / qk, Arch{});
}
template <class Arch>
void dequantize_row_iq4_nl(const block_iq4_nl* x, float* y, std::int64_t k) noexcept {
  detail::dequant_iq4_nl_isa<Arch>(x, y, k / qk, Arch{});
}
template <class Arch>
void dequantize_row_mxfp4(const block_mxfp4* x, float* y, std::int64_t k) noexcept {
  detail::dequant_mxfp4_isa<Arch>(x, y, k / qk, Arch{});
}

template <class Arch>
void vec_dot_q4_0_q8_0(std::int64_t n, float* s, const block_q4_0* x,
                       const block_q8_0* y) noexcept {
  detail::dot_q4_0_q8_0_isa<Arch>(n / qk, s, x, y, Arch{});
}
template <class Arch>
void vec_dot_q4_1_q8_1(std::int64_t n, float* s, const block_q4_1* x,
                       const block_q8_1* y) noexcept {
  detail::dot_q4_1_q8_1_isa<Arch>(n / qk, s, x, y, Arch{});
}
template <class Arch>
void vec_dot_q5_0_q8_0(std::int64_t n, float* s, const block_q5_0* x,
                       const block_q8_0* y) noexcept {
  detail::dot_q5_0_q8_0_isa<Arch>(n / qk, s, x, y, Arch{});
}
template <class Arch>
void vec_dot_q5_1_q8_1(std::int64_t n, float* s, const block_q5_1* x,
                       const block_q8_1* y) noexcept {
  detail::dot_q5_1_q8_1_isa<Arch>(n / qk, s, x, y, Arch{});
}
template <class Arch>
void vec_dot_q8_0_q8_0(std::int64_t n, float* s, const block_q8_0* x,
                       const block_q8_0* y) noexcept {
  detail::dot_q8_0_q8_0_isa<Arch>(n / qk, s, x, y, Arch{});
}
template <class Arch>
void vec_dot_iq4_nl_q8_0(std::int64_t n, float* s, const block_iq4_nl* x,
                         const block_q8_0* y) noexcept {
  detail::dot_iq4_nl_q8_0_isa<Arch>(n / qk, s, x, y, Arch{});
}
template <class Arch>
void vec_dot_mxfp4_q8_0(std::int64_t n, float* s, const block_mxfp4* x,
                        const block_q8_0* y) noexcept {
  detail::dot_mxfp4_q8_0_isa<Arch>(n / qk, s, x, y, Arch{});
}

}  // namespace kernel

}  // namespace qcodec::ggml

#undef QCODEC_GGML_UNROLL

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
