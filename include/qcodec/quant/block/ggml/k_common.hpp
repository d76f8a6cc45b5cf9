#pragma once
// Shared by qcodec's ggml-compatible K-quant formats (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K,
// IQ4_XS): the block structs (ggml's names, field order and byte layout), the packing of their
// sub-block scales, ggml's rounding helper, and the building blocks of qcodec's encoders.
//
// Provenance: ggml (https://github.com/ggml-org/ggml), `ggml-common.h` (block_q2_K ...
// block_iq4_xs), `ggml-quants.c` (reference encoders and decoders) and `ggml-cpu/quants.c`
// (ggml_vec_dot_<t>_q8_K_generic), release 0.21.
//
// All formats here have super-blocks of qk_k = 256 values (ggml's QK_K) split into sub-blocks
// of 16 or 32 values whose scales (and, for Q2_K / Q4_K / Q5_K, offsets) are small integers
// times one or two binary16 super-block scales. Dot products pair them with Q8_K.
//
// qcodec's encoders (detail::kq) all follow the same plan, minimising the plain squared error:
//  1. prescale the super-block by a power of two (exact) so that sums neither overflow nor
//     underflow;
//  2. fit every sub-block on its own: a few candidate scales around the one that maps the
//     extreme value(s) to the end level(s), each followed by rounding and a least-squares
//     refit of (scale, offset), then one or two round-and-refit iterations from the best;
//  3. quantize the sub-block scales (and offsets) to the format's integers with a small
//     search for the super-block scale weighted by the error each sub-block scale causes;
//  4. round the super-block scales to binary16 and, for every sub-block, try the integer
//     scales (and offsets) next to the rounded ones, re-rounding the codes against the
//     actually decoded sub-block scales, and keep the one with the smallest error.

#include <qcodec/core/half.hpp>
#include <qcodec/quant/block/ggml/common.hpp>
#include <qcodec/simd/ggml_kernels.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace qcodec::ggml {

/// Values per super-block of the K-quant formats (ggml's QK_K).
inline constexpr std::int64_t qk_k = 256;

/// Q2_K: 16 sub-blocks of 16 values; x = d * (sc & 15) * q - dmin * (sc >> 4), q in 0..3.
/// 84 bytes per 256 values = 2.625 bits per value.
struct block_q2_K {
  std::uint8_t scales[16];  ///< per sub-block: 4-bit scale (low nibble), 4-bit min (high)
  std::uint8_t qs[64];      ///< codes, 2 bits each (see dequantize_row_q2_K for the order)
  half d;                   ///< super-block scale of the scales
  half dmin;                ///< super-block scale of the mins
};

/// Q3_K: 16 sub-blocks of 16 values; x = d * (s - 32) * (q - 4), s 6-bit, q in 0..7 (low two
/// bits in qs, third bit in hmask). 110 bytes per 256 values = 3.4375 bits per value.
struct block_q3_K {
  std::uint8_t hmask[32];   ///< third bit of the codes: bit b of byte l is value 32 b + l
  std::uint8_t qs[64];      ///< low two bits of the codes
  std::uint8_t scales[12];  ///< 16 6-bit scales (biased by 32), packed
  half d;                   ///< super-block scale
};

/// Q4_K: 8 sub-blocks of 32 values; x = d * sc * q - dmin * m, sc and m 6-bit, q in 0..15.
/// 144 bytes per 256 values = 4.5 bits per value.
struct block_q4_K {
  half d;                   ///< super-block scale of the scales
  half dmin;                ///< super-block scale of the mins
  std::uint8_t scales[12];  ///< 8 6-bit scales and 8 6-bit mins, packed (get_scale_min_k4)
  std::uint8_t qs[128];     ///< codes, two per byte
};

/// Q5_K: Q4_K with a fifth code bit; q in 0..31. 176 bytes per 256 values = 5.5 bits per value.
struct block_q5_K {
  half d;                   ///< super-block scale of the scales
  half dmin;                ///< super-block scale of the mins
  std::uint8_t scales[12];  ///< as in Q4_K
  std::uint8_t qh[32];      ///< fifth bits: bit b of byte l is value 32 b + l
  std::uint8_t qs[128];     ///< low four bits, two per byte
};

/// Q6_K: 16 sub-blocks of 16 values; x = d * sc * (q - 32), sc int8, q in 0..63.
/// 210 bytes per 256 values = 6.5625 bits per value.
struct block_q6_K {
  std::uint8_t ql[128];     ///< low four bits of the codes
  std::uint8_t qh[64];      ///< high two bits of the codes
  std::int8_t scales[16];   ///< sub-block scales
  half d;                   ///< super-block scale
};

/// Q8_K: the activation format of the K-quants: x = d * q, one float scale per 256 values,
/// plus the sums of each group of 16 codes (used for the offset terms of Q2_K / Q4_K / Q5_K).
/// 292 bytes per 256 values = 9.125 bits per value.
struct block_q8_K {
  float d;                  ///< scale
  std::int8_t qs[256];      ///< codes
  std::int16_t bsums[16];   ///< sum of qs[16 j .. 16 j + 15]
};

/// IQ4_XS: 8 sub-blocks of 32 values; x = d * (s - 32) * kvalues_iq4nl[q], s 6-bit.
/// 136 bytes per 256 values = 4.25 bits per value.
struct block_iq4_xs {
  half d;                    ///< super-block scale
  std::uint16_t scales_h;    ///< high two bits of the 8 scales (bits 2 ib, 2 ib + 1)
  std::uint8_t scales_l[4];  ///< low four bits of the scales, two per byte
  std::uint8_t qs[128];      ///< level indices, two per byte as IQ4_NL (per 32-value sub-block)
};

static_assert(sizeof(block_q2_K) == 84 && alignof(block_q2_K) == 2);
static_assert(sizeof(block_q3_K) == 110 && alignof(block_q3_K) == 2);
static_assert(sizeof(block_q4_K) == 144 && alignof(block_q4_K) == 2);
static_assert(sizeof(block_q5_K) == 176 && alignof(block_q5_K) == 2);
static_assert(sizeof(block_q6_K) == 210 && alignof(block_q6_K) == 2);
static_assert(sizeof(block_q8_K) == 292 && alignof(block_q8_K) == 4);
static_assert(sizeof(block_iq4_xs) == 136 && alignof(block_iq4_xs) == 2);
static_assert(std::is_trivially_copyable_v<block_q2_K> && std::is_trivially_copyable_v<block_q3_K> &&
              std::is_trivially_copyable_v<block_q4_K> && std::is_trivially_copyable_v<block_q5_K> &&
              std::is_trivially_copyable_v<block_q6_K> && std::is_trivially_copyable_v<block_q8_K> &&
              std::is_trivially_copyable_v<block_iq4_xs>);
static_assert(std::is_standard_layout_v<block_q2_K> && std::is_standard_layout_v<block_q6_K> &&
              std::is_standard_layout_v<block_q8_K> && std::is_standard_layout_v<block_iq4_xs>);

namespace detail {

/// ggml's nearest_int: round to nearest, ties to even, for |v| <= 2^22. v is kept a rounded
/// float: inlined into nearest_int(a * b), GCC would otherwise fuse the product into this add
/// and round differently from ggml (Q2_K, Q4_K, Q5_K reference encoders).
[[nodiscard]] inline int nearest_int(float v) noexcept {
  const float val = unfused<simd::scalar>(v) + 12582912.0f;
  std::int32_t i;
  std::memcpy(&i, &val, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

/// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j of Q4_K / Q5_K.
inline void get_scale_min_k4(int j, const std::uint8_t* q, std::uint8_t& d,
                             std::uint8_t& m) noexcept {
  if (j < 4) {
    d = static_cast<std::uint8_t>(q[j] & 63);
    m = static_cast<std::uint8_t>(q[j + 4] & 63);
  } else {
    d = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

/// The inverse of get_scale_min_k4 for all 8 sub-blocks (ls, lm in 0..63).
inline void set_scales_mins_k4(const std::uint8_t* ls, const std::uint8_t* lm,
                               std::uint8_t* q) noexcept {
  for (int j = 0; j < 12; ++j) q[j] = 0;
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      q[j] = ls[j];
      q[j + 4] = lm[j];
    } else {
      q[j + 4] = static_cast<std::uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      q[j - 4] = static_cast<std::uint8_t>(q[j - 4] | ((ls[j] >> 4) << 6));
      q[j] = static_cast<std::uint8_t>(q[j] | ((lm[j] >> 4) << 6));
    }
  }
}

/// The 16 biased (0..63) 6-bit scales of a Q3_K block.
inline void unpack_q3_K_scales(const std::uint8_t* s, int* out) noexcept {
  for (int j = 0; j < 16; ++j) {
    const int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
    out[j] = lo | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4);
  }
}

/// Packs 16 biased (0..63) scales the way ggml's quantize_row_q3_K_ref does.
inline void pack_q3_K_scales(const int* l, std::uint8_t* s) noexcept {
  for (int j = 0; j < 12; ++j) s[j] = 0;
  for (int j = 0; j < 16; ++j) {
    const int v = l[j];
    if (j < 8) {
      s[j] = static_cast<std::uint8_t>(v & 0xF);
    } else {
      s[j - 8] = static_cast<std::uint8_t>(s[j - 8] | ((v & 0xF) << 4));
    }
    s[j % 4 + 8] = static_cast<std::uint8_t>(s[j % 4 + 8] | ((v >> 4) << (2 * (j / 4))));
  }
}

/// Orders of the code arrays: L[256] (one code per value, in value order) to ggml's layouts.
inline void pack_2bit_k(const std::uint8_t* L, std::uint8_t* qs) noexcept {
  for (int j = 0; j < 256; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 2) |
                                                (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

namespace kq {

// ---------------------------------------------------------------------------------------------
// qcodec's encoder building blocks. Values are prescaled (|x| in [1, 2) for the super-block's
// largest magnitude), so sums stay well inside float's range.
//
// A sub-block (16 or 32 values) is held in one or two 16-float vectors (GCC / Clang vector
// extensions: one register with AVX-512, split by the compiler into two AVX2 or four SSE
// registers elsewhere), so every candidate costs a handful of vector instructions and no
// round trip through memory (auto-vectorised loops over small arrays stalled on store
// forwarding when the sums read them back).

using vf = float __attribute__((vector_size(64)));
using vf8 = float __attribute__((vector_size(32)));
using vf4 = float __attribute__((vector_size(16)));

// Vectors are passed by reference and results written through references: a vector
// parameter or return value by value would have a different ABI with and without AVX-512
// (GCC and Clang warn about it, -Wpsabi).

inline void load16(vf& r, const float* p) noexcept { std::memcpy(&r, p, sizeof r); }

/// Sum of the 16 lanes in a fixed tree order.
[[nodiscard]] inline float hsum(const vf& a) noexcept {
  const vf8 b = __builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7) +
                __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15);
  const vf4 c = __builtin_shufflevector(b, b, 0, 1, 2, 3) + __builtin_shufflevector(b, b, 4, 5, 6, 7);
  return (c[0] + c[2]) + (c[1] + c[3]);
}

/// hsum of four vectors at once, each with exactly hsum's additions (so bit-identical
/// results), sharing the shuffles: a refit needs three or two sums of one candidate, and
/// one reduction tree for all of them takes about the time of a single hsum.
inline void hsum4(const vf& a, const vf& b, const vf& c, const vf& d, vf4& r) noexcept {
  // lanes 0..7: a[i] + a[i + 8], lanes 8..15: the same for b (resp. c, d)
  const vf p = __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
               __builtin_shufflevector(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  const vf q = __builtin_shufflevector(c, d, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
               __builtin_shufflevector(c, d, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  // lanes 4 k .. 4 k + 3: hsum's c of vector k
  const vf t = __builtin_shufflevector(p, q, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
               __builtin_shufflevector(p, q, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  r = (__builtin_shufflevector(t, t, 0, 4, 8, 12) + __builtin_shufflevector(t, t, 2, 6, 10, 14)) +
      (__builtin_shufflevector(t, t, 1, 5, 9, 13) + __builtin_shufflevector(t, t, 3, 7, 11, 15));
}

[[nodiscard]] inline float hmin(const vf& a) noexcept {
  float m = a[0];
  for (int j = 1; j < 16; ++j) m = a[j] < m ? a[j] : m;
  return m;
}
[[nodiscard]] inline float hmax(const vf& a) noexcept {
  float m = a[0];
  for (int j = 1; j < 16; ++j) m = a[j] > m ? a[j] : m;
  return m;
}

/// r = round(clamp(v, lo, hi)): round to nearest (current rounding mode, ties to even) by
/// adding and subtracting 1.5 * 2^23 (|lo|, |hi| <= 2^22). A NaN lane (from a NaN or infinite
/// input) gives lo, so codes are always integers that convert to int (vals::to_bytes); for
/// every other v the result is unchanged (v == lo differs at most in the sign of a zero, which
/// the rounding drops).
inline void clamp_round(vf& r, const vf& v, float lo, float hi) noexcept {
  constexpr float magic = 12582912.0f;
  vf c = v > lo ? v : lo;
  c = c > hi ? hi : c;
  const vf t = c + magic;
  r = t - magic;
}

/// clamp(v, lo, hi), NaN to lo (callers convert the rounded result to int).
[[nodiscard]] inline float clampf(float v, float lo, float hi) noexcept {
  v = v >= lo ? v : lo;
  return v > hi ? hi : v;
}

[[nodiscard]] inline float rnd(float v) noexcept { return round_nearest<simd::scalar>(v); }

/// A sub-block of n (16 or 32) values in m = n / 16 vectors.
template <int n>
struct vals {
  static constexpr int m = n / 16;
  vf v[m];
  vals() = default;
  explicit vals(const float* x) noexcept {
    for (int k = 0; k < m; ++k) load16(v[k], x + 16 * k);
  }
  /// Writes the (integer-valued, never NaN: clamp_round) lanes as bytes plus `bias`.
  void to_bytes(std::uint8_t* out, int bias) const noexcept {
    for (int k = 0; k < m; ++k)
      for (int j = 0; j < 16; ++j)
        out[16 * k + j] = static_cast<std::uint8_t>(static_cast<int>(v[k][j]) + bias);
  }
};

template <int n>
[[nodiscard]] inline float vsum(const vals<n>& a) noexcept {
  if constexpr (n == 32) {
    return hsum(a.v[0] + a.v[1]);
  } else {
    return hsum(a.v[0]);
  }
}

/// x ~= s * q + b with q in 0..nmax and b <= 0 (the formats store m = -b >= 0).
struct affine {
  float s;
  float b;
};

/// Sub-block statistics that do not depend on the codes.
template <int n>
struct stats {
  float sx;
  float sx2;
  float mn;
  float mx;
  explicit stats(const vals<n>& x) noexcept {
    vf s1 = x.v[0], s2 = x.v[0] * x.v[0], lo = x.v[0], hi = x.v[0];
    for (int k = 1; k < vals<n>::m; ++k) {
      s1 += x.v[k];
      s2 += x.v[k] * x.v[k];
      lo = x.v[k] < lo ? x.v[k] : lo;
      hi = x.v[k] > hi ? x.v[k] : hi;
    }
    vf4 r;
    hsum4(s1, s2, s1, s2, r);
    sx = r[0];
    sx2 = r[1];
    mn = hmin(lo);
    mx = hmax(hi);
  }
};

/// Codes of x under x ~= s * q + b: q = clamp(round((x - b) * is), 0, nmax).
template <int n, int nmax>
inline void affine_codes(const vals<n>& x, float is, float b, vals<n>& q) noexcept {
  for (int k = 0; k < vals<n>::m; ++k)
    clamp_round(q.v[k], (x.v[k] - b) * is, 0.0f, static_cast<float>(nmax));
}

/// Least-squares (s, b <= 0) for given codes; returns the squared error of the fit.
template <int n>
inline float affine_refit(const vals<n>& x, const vals<n>& q, const stats<n>& st,
                          affine& f) noexcept {
  vf a = q.v[0], b2 = q.v[0] * q.v[0], c = q.v[0] * x.v[0];
  for (int k = 1; k < vals<n>::m; ++k) {
    a += q.v[k];
    b2 += q.v[k] * q.v[k];
    c += q.v[k] * x.v[k];
  }
  vf4 r;
  hsum4(a, b2, c, c, r);
  const float sq = r[0], sq2 = r[1], sqx = r[2];
  const float nn = static_cast<float>(n);
  const float D = nn * sq2 - sq * sq;
  float s = 0.0f, b = st.sx / nn;
  if (D > 0.0f) {
    s = (nn * sqx - st.sx * sq) / D;
    b = (sq2 * st.sx - sq * sqx) / D;
  }
  if (b > 0.0f) {
    b = 0.0f;
    s = sq2 > 0.0f ? sqx / sq2 : 0.0f;
  }
  if (s < 0.0f) s = 0.0f;
  f = {s, b};
  return st.sx2 - 2.0f * s * sqx - 2.0f * b * st.sx + s * s * sq2 + 2.0f * s * b * sq +
         nn * b * b;
}

/// Sub-block fit for the offset formats: candidate ranges that place the minimum at level
/// -a and the maximum at level nmax + c for a, c in `as` (clipping both ends by up to a
/// fraction of a step), each rounded and refitted by least squares; then `iters`
/// round-and-refit steps from the best.
template <int n, int nmax, int na>
inline affine affine_search(const vals<n>& x, const stats<n>& st, const float (&as)[na],
                            int iters) noexcept {
  const float mn = st.mn < 0.0f ? st.mn : 0.0f;
  if (!(st.mx > mn)) return {0.0f, mn};
  vals<n> q;
  affine best{0.0f, mn};
  float best_err = st.sx2 - 2.0f * mn * st.sx + static_cast<float>(n) * mn * mn;
  const float range = st.mx - mn;
  // all candidates first, then the selection in the same order: no data-dependent branch
  // between the independent candidates, so they overlap in the pipeline
  affine fs[na * na];
  float es[na * na];
  for (int i = 0; i < na; ++i)
    for (int k = 0; k < na; ++k) {
      const float s = range / (static_cast<float>(nmax) + as[i] + as[k]);
      float b = mn + as[i] * s;
      b = b > 0.0f ? 0.0f : b;
      affine_codes<n, nmax>(x, 1.0f / s, b, q);
      es[na * i + k] = affine_refit<n>(x, q, st, fs[na * i + k]);
    }
  for (int c = 0; c < na * na; ++c)
    if (es[c] < best_err) {
      best_err = es[c];
      best = fs[c];
    }
  for (int it = 0; it < iters && best.s > 0.0f; ++it) {
    affine_codes<n, nmax>(x, 1.0f / best.s, best.b, q);
    affine f;
    const float e = affine_refit<n>(x, q, st, f);
    if (!(e < best_err)) break;
    best_err = e;
    best = f;
  }
  return best;
}

/// Squared error of a sub-block decoded as ds * q - dm, with codes re-rounded for exactly
/// these ds, dm (written to q).
template <int n, int nmax>
inline float affine_eval(const vals<n>& x, float ds, float dm, vals<n>& q) noexcept {
  const float is = ds > 0.0f ? 1.0f / ds : 0.0f;
  affine_codes<n, nmax>(x, is, -dm, q);
  vf e = {};
  for (int k = 0; k < vals<n>::m; ++k) {
    const vf d = (ds * q.v[k] - dm) - x.v[k];
    e += d * d;
  }
  return hsum(e);
}

/// Symmetric sub-block fit: x ~= d * l, l in [-N, N - 1]; candidates map the largest-magnitude
/// value to -N - t or N - 1 - t, each rounded and refitted; then `iters` refit steps (for
/// N >= 16: nine candidates -N - 4 .. -N + 4, each with its own refit step). Scored by the
/// least-squares fit (sum l x)^2 / sum l^2. Returns d (signed).
template <int n, int N>
inline float sym_search(const vals<n>& x, int iters) noexcept {
  vf lo = x.v[0], hi = x.v[0];
  for (int k = 1; k < vals<n>::m; ++k) {
    lo = x.v[k] < lo ? x.v[k] : lo;
    hi = x.v[k] > hi ? x.v[k] : hi;
  }
  const float mn = hmin(lo), mx = hmax(hi);
  const float ext = mx >= -mn ? mx : mn;  // the largest magnitude (the maximum on a tie)
  if (!(ext != 0.0f)) return 0.0f;
  const float fN = static_cast<float>(N);
  float best = -1.0f, best_d = 0.0f;
  const auto fit = [&](float id, float& lx, float& l2) {
    vf a = {}, b = {};
    for (int k = 0; k < vals<n>::m; ++k) {
      vf l;
      clamp_round(l, x.v[k] * id, -fN, fN - 1.0f);
      a += l * x.v[k];
      b += l * l;
    }
    vf4 r;
    hsum4(a, b, a, b, r);
    lx = r[0];
    l2 = r[1];
  };
  // two candidates' unreduced sums (a: sum l x, b: sum l^2), reduced together by one hsum4
  const auto fitv = [&](float id, vf& a, vf& b) {
    a = vf{};
    b = vf{};
    for (int k = 0; k < vals<n>::m; ++k) {
      vf l;
      clamp_round(l, x.v[k] * id, -fN, fN - 1.0f);
      a += l * x.v[k];
      b += l * l;
    }
  };
  const auto fit2 = [&](float id0, float id1, float& lx0, float& l20, float& lx1, float& l21) {
    vf a0, b0, a1, b1;
    fitv(id0, a0, b0);
    fitv(id1, a1, b1);
    vf4 r;
    hsum4(a0, b0, a1, b1, r);
    lx0 = r[0];
    l20 = r[1];
    lx1 = r[2];
    l21 = r[3];
  };
  const auto keep = [&](float lx, float l2) {
    if (l2 > 0.0f && lx * lx > best * l2) {
      best = lx * lx / l2;
      best_d = lx / l2;
    }
  };
  // The candidates are computed first and kept (in the original order) afterwards: no
  // data-dependent branch between independent fits, so they overlap in the pipeline.
  if constexpr (N >= 16) {
    // many levels: the error is a rugged function of the scale; try the extreme at every
    // level from -N + 4 to -N - 4 (under-using or clipping the range), each with one refit
    float lx1[10], l21[10], lx2[10], l22[10], id[10];
    for (int c = 0; c < 10; ++c) id[c] = -(fN + static_cast<float>(c - 4)) / ext;  // 10: spare
    for (int c = 0; c < 10; c += 2) fit2(id[c], id[c + 1], lx1[c], l21[c], lx1[c + 1], l21[c + 1]);
    for (int c = 0; c < 10; ++c) {
      const bool ok = l21[c] > 0.0f && lx1[c] != 0.0f;
      id[c] = ok ? l21[c] / lx1[c] : 0.0f;
    }
    for (int c = 0; c < 10; c += 2) fit2(id[c], id[c + 1], lx2[c], l22[c], lx2[c + 1], l22[c + 1]);
    for (int c = 0; c < 9; ++c) {
      keep(lx1[c], l21[c]);
      if (!(l21[c] > 0.0f) || lx1[c] == 0.0f) continue;
      keep(lx2[c], l22[c]);
    }
    return best_d;
  }
  const float cands[10] = {-fN - 0.75f, -fN - 0.5f, -fN - 0.25f, -fN, -fN + 0.25f, -fN + 0.5f,
                           fN - 1.5f, fN - 1.25f, fN - 1.0f, fN - 0.75f};
  float lxs[10], l2s[10];
  for (int c = 0; c < 10; c += 2)
    fit2(cands[c] / ext, cands[c + 1] / ext, lxs[c], l2s[c], lxs[c + 1], l2s[c + 1]);
  for (int c = 0; c < 10; ++c) keep(lxs[c], l2s[c]);
  for (int it = 0; it < iters && best_d != 0.0f; ++it) {
    float lx, l2;
    fit(1.0f / best_d, lx, l2);
    if (!(l2 > 0.0f && lx * lx > best * l2)) break;
    keep(lx, l2);
  }
  return best_d;
}

/// Squared error of a symmetric sub-block decoded as ds * l for l in [-N, N - 1], codes
/// re-rounded against ds (written to l).
template <int n, int N>
inline float sym_eval(const vals<n>& x, float ds, vals<n>& l) noexcept {
  const float fN = static_cast<float>(N);
  const float is = ds != 0.0f ? 1.0f / ds : 0.0f;
  vf e = {};
  for (int k = 0; k < vals<n>::m; ++k) {
    clamp_round(l.v[k], x.v[k] * is, -fN, fN - 1.0f);
    const vf d = ds * l.v[k] - x.v[k];
    e += d * d;
  }
  return hsum(e);
}

/// Integer levels l[j] in [lo, hi] and a scale d with v[j] ~= d * l[j], minimising
/// sum w[j] (v[j] - d l[j])^2 over a few candidate scales (each refitted). Returns d.
template <int m>
inline float quantize_scales(const float* v, const float* w, int lo, int hi) noexcept {
  float amax = 0.0f, ext = 0.0f;
  for (int j = 0; j < m; ++j) {
    const float a = std::fabs(v[j]);
    if (a > amax) {
      amax = a;
      ext = v[j];
    }
  }
  if (!(amax > 0.0f)) return 0.0f;
  // the extreme maps to the end level of its sign, or slightly inside
  const float end = ext < 0.0f ? static_cast<float>(lo) : static_cast<float>(hi);
  const float alt = ext < 0.0f ? -static_cast<float>(hi) : -static_cast<float>(lo);
  const float cands[8] = {end, end * 0.97f, end * 0.94f, end * 0.9f, end * 1.03f,
                          alt, alt * 0.96f, alt * 0.92f};
  // The per-value work (products, clamping, rounding, the division by each candidate's d)
  // runs on one vector of up to 16 lanes; the sums stay scalar and sequential (the same
  // results as the plain loops, which the compiler cannot vectorise without reordering sums).
  static_assert(m <= 16);
  const float flo = static_cast<float>(lo), fhi = static_cast<float>(hi);
  vf vv = {}, wv = {};
  std::memcpy(&vv, v, sizeof(float) * m);
  std::memcpy(&wv, w, sizeof(float) * m);
  const vf wvv = wv * vv;
  float best_err = INFINITY, best_d = ext / end;
  for (const float c : cands) {
    const float id = c / ext;
    float swl = 0.0f, swll = 0.0f;
    vf l;
    clamp_round(l, vv * id, flo, fhi);
    const vf wl = wv * l;
    for (int j = 0; j < m; ++j) {
      swl += wvv[j] * l[j];
      swll += wl[j] * l[j];
    }
    if (!(swll > 0.0f)) continue;
    const float d = swl / swll;
    vf q;
    clamp_round(q, vv / d, flo, fhi);
    const vf r = vv - d * q;
    const vf wr = wv * r;
    float err = 0.0f;
    for (int j = 0; j < m; ++j) err += wr[j] * r[j];
    if (err < best_err) {
      best_err = err;
      best_d = d;
    }
  }
  return best_d;
}

/// Power-of-two prescaling of a super-block: xs = x * up, |xs| < 2 for the largest value.
struct superblock {
  float up = 1.0f;    ///< xs = x * up
  float down = 1.0f;  ///< x = xs * down
  bool zero = true;   ///< every value below tiny_block in magnitude
  float xs[256];
  explicit superblock(const float* x) noexcept {
    float amax = 0.0f;
    for (int j = 0; j < 256; ++j) {
      const float a = std::fabs(x[j]);
      amax = a > amax ? a : amax;
    }
    if (!(amax >= tiny_block)) {
      for (float& v : xs) v = 0.0f;
      return;
    }
    zero = false;
    const prescale<simd::scalar> ps = prescale_for<simd::scalar>(amax);
    up = ps.up;
    down = ps.down;
    for (int j = 0; j < 256; ++j) xs[j] = x[j] * up;
  }
  /// A prescaled super-block scale as binary16 (clamped to the largest finite binary16).
  [[nodiscard]] half to_half(float d) const noexcept {
    const float r = d * down;
    return half(r > half_max ? half_max : (r < -half_max ? -half_max : r));
  }
};

}  // namespace kq
}  // namespace detail
}  // namespace qcodec::ggml
