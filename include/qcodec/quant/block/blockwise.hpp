#pragma once
// Block-wise uniform formats whose per-block parameters are themselves stored at low precision:
//
//   blockwise_format<Bits, N, Scale, Asymmetric>
//       N values per block share a scale d (and, if Asymmetric, an offset m) stored as Scale:
//       fp32, fp16, bf16 or E8M0 (a power of two, as in MX formats).
//         symmetric:   value = d * (q - 2^(Bits-1)),  q in [0, 2^Bits - 1]
//         asymmetric:  value = d * q + m
//       Layout: d (Scale bytes), [m (Scale bytes)], then N codes of Bits bits packed LSB-first.
//       Bits per value: Bits + (1 or 2) * 8 * scale_bytes / N.
//
//   superblock_format<Bits, Sub, Super, ScaleBits>
//       Double quantization as in ggml's K-quants: a super-block of Super values is Super / Sub
//       sub-blocks; sub-block j decodes as value = (D * s_j) * q - (Dmin * t_j), where D and Dmin
//       are fp16 per super-block and s_j, t_j are ScaleBits-bit integers.
//       Layout: D (fp16), Dmin (fp16), the Super / Sub indices s_j then t_j packed LSB-first in
//       ScaleBits bits each, then Super codes of Bits bits packed LSB-first.
//       Bits per value: Bits + 2 * ScaleBits / Sub + 32 / Super (4.5 for <4, 32, 256, 6>, the
//       budget of Q4_K).
//
// Encoders search each block's parameters in floating point (candidate scales that map the
// largest magnitude onto either end of the code range, then least-squares refits of the scale,
// or of scale and offset, given the codes), round them to their storage format, and keep the
// candidate whose codes, re-rounded against the parameters as stored, give the lowest squared
// error. Codes come from the affine kernels (simd/affine.hpp), so encode and decode run at
// kernel speed and every target produces the same bytes.
//
// Inputs must be finite (NaN / infinity give unspecified but deterministic, memory-safe blocks).
// superblock_format's D and Dmin saturate at the largest finite fp16, so its values saturate
// below -65504 * (2^ScaleBits - 1) and above about 65504 * (2^ScaleBits - 1) * (2^Bits - 1).
// Decoding any bytes is memory-safe; non-finite stored scales decode to non-finite values.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/bfloat16.hpp>
#include <qcodec/core/half.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace qcodec {

/// How a block scale (or offset) is stored.
enum class scale_format : std::uint8_t {
  f32,   ///< IEEE binary32, 4 bytes
  f16,   ///< IEEE binary16, 2 bytes
  bf16,  ///< bfloat16, 2 bytes
  e8m0,  ///< a power of two 2^(e - 127), 1 byte (0xFF = NaN), as in OCP MX formats
};

namespace detail {

template <scale_format S>
inline constexpr std::size_t scale_bytes = S == scale_format::f32
                                               ? 4
                                               : (S == scale_format::e8m0 ? 1 : 2);

/// Stores v as S (round to nearest even; E8M0 rounds to the nearest power of two by exponent,
/// positive values only).
template <scale_format S>
inline void store_scale(float v, std::uint8_t* out) noexcept {
  if constexpr (S == scale_format::f32) {
    std::memcpy(out, &v, 4);
  } else if constexpr (S == scale_format::f16) {
    const std::uint16_t b = half(v).bits;
    std::memcpy(out, &b, 2);
  } else if constexpr (S == scale_format::bf16) {
    const std::uint16_t b = bfloat16(v).bits;
    std::memcpy(out, &b, 2);
  } else {
    int e = 0;
    if (v > 0.0f && std::isfinite(v)) {
      std::frexp(v, &e);  // v = f * 2^e, f in [0.5, 1): nearest power of two is 2^(e-1) or 2^e
      const float f = std::ldexp(v, -e);
      e = (f < 0.70710678f ? e - 1 : e) + 127;
    }
    out[0] = static_cast<std::uint8_t>(std::clamp(e, 0, 254));
  }
}

template <scale_format S>
[[nodiscard]] inline float load_scale(const std::uint8_t* in) noexcept {
  if constexpr (S == scale_format::f32) {
    float v;
    std::memcpy(&v, in, 4);
    return v;
  } else if constexpr (S == scale_format::f16 || S == scale_format::bf16) {
    std::uint16_t b;
    std::memcpy(&b, in, 2);
    return S == scale_format::f16 ? half::from_bits(b).to_float()
                                  : bfloat16::from_bits(b).to_float();
  } else {
    return in[0] == 0xFF ? std::numeric_limits<float>::quiet_NaN()
                         : std::ldexp(1.0f, static_cast<int>(in[0]) - 127);
  }
}

template <scale_format S>
[[nodiscard]] inline float round_scale(float v) noexcept {
  std::uint8_t bytes[4];
  store_scale<S>(v, bytes);
  return load_scale<S>(bytes);
}

/// Codes of x under p exactly as the affine kernels compute them (simd/affine.hpp).
struct affine_coder {
  float inv, bias, max_code;
  affine_coder(affine_params p, unsigned bits) noexcept
      : inv(p.scale != 0.0f ? 1.0f / p.scale : 0.0f),
        bias(-p.offset * inv),
        max_code(static_cast<float>((1u << bits) - 1)) {}
  [[nodiscard]] float code(float x) const noexcept {
    const float q = std::nearbyint(std::fma(x, inv, bias));
    return q >= 0.0f ? (q <= max_code ? q : max_code) : 0.0f;
  }
};

/// Squared error of x[0, n) encoded and decoded with p at `bits` bits.
[[nodiscard]] inline double affine_squared_error(const float* x, std::size_t n, affine_params p,
                                                 unsigned bits) noexcept {
  const affine_coder c(p, bits);
  double e = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(std::fma(c.code(x[i]), p.scale, p.offset)) - x[i];
    e += d * d;
  }
  return e;
}

/// Least-squares scale d for value = d * (q - h) with the codes of x under p (p unchanged when
/// the codes carry no information).
[[nodiscard]] inline float refit_symmetric(const float* x, std::size_t n, affine_params p,
                                           unsigned bits, float h) noexcept {
  const affine_coder c(p, bits);
  double sxl = 0.0, sll = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double l = static_cast<double>(c.code(x[i])) - h;
    sxl += x[i] * l;
    sll += l * l;
  }
  return sll > 0.0 ? static_cast<float>(sxl / sll) : p.scale;
}

/// Least-squares (d, m) for value = d * q + m with the codes of x under p; with
/// `offset_at_most_zero` the offset is constrained to m <= 0.
[[nodiscard]] inline affine_params refit_affine(const float* x, std::size_t n, affine_params p,
                                                unsigned bits,
                                                bool offset_at_most_zero = false) noexcept {
  const affine_coder c(p, bits);
  double sq = 0.0, sqq = 0.0, sx = 0.0, sxq = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double q = c.code(x[i]);
    sq += q;
    sqq += q * q;
    sx += x[i];
    sxq += x[i] * q;
  }
  const double nn = static_cast<double>(n), det = nn * sqq - sq * sq;
  if (!(det > 0.0)) return p;
  double d = (nn * sxq - sq * sx) / det;
  double m = (sx - d * sq) / nn;
  if (offset_at_most_zero && m > 0.0) {
    m = 0.0;
    if (sqq > 0.0) d = sxq / sqq;
  }
  if (!(d > 0.0)) return p;
  return {static_cast<float>(d), static_cast<float>(m)};
}

/// The best symmetric scale for x[0, n) at `bits` bits, stored as S (see the header comment).
template <scale_format S>
[[nodiscard]] inline float fit_symmetric_scale(const float* x, std::size_t n,
                                               unsigned bits) noexcept {
  const float h = static_cast<float>(1u << (bits - 1));
  float m = 0.0f;  // the value of largest magnitude, sign kept
  for (std::size_t i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > std::fabs(m)) m = x[i];
  }
  if (m == 0.0f) return round_scale<S>(0.0f);
  float best = 0.0f;
  double best_err = std::numeric_limits<double>::infinity();
  auto consider = [&](float d) {
    d = round_scale<S>(d);
    if (!(std::fabs(d) > 0.0f) || !std::isfinite(d)) return;
    const double e = affine_squared_error(x, n, {d, -h * d}, bits);
    if (e < best_err) {
      best_err = e;
      best = d;
    }
  };
  if constexpr (S == scale_format::e8m0) {
    // A power of two, positive: the nearest ones around |m| / h.
    int e = 0;
    std::frexp(std::fabs(m) / h, &e);
    for (int k = e - 2; k <= e + 1; ++k) consider(std::ldexp(1.0f, k));
  } else {
    // m onto the most negative level (-h) or the most positive one (h - 1), then refits.
    for (const float start : {m / -h, m / (h - 1.0f)}) {
      float d = start;
      consider(d);
      for (int iteration = 0; iteration < 2; ++iteration) {
        d = refit_symmetric(x, n, {d, -h * d}, bits, h);
        consider(d);
      }
    }
  }
  return best;
}

/// The best asymmetric (d, m) for x[0, n) at `bits` bits, each stored as S.
template <scale_format S>
[[nodiscard]] inline affine_params fit_asymmetric(const float* x, std::size_t n, unsigned bits,
                                                  bool offset_at_most_zero = false) noexcept {
  float lo = x[0], hi = x[0];
  for (std::size_t i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (offset_at_most_zero) lo = std::min(lo, 0.0f);
  const float levels = static_cast<float>((1u << bits) - 1);
  affine_params p{(hi - lo) / levels, lo};
  if (!(p.scale > 0.0f)) return {round_scale<S>(0.0f), round_scale<S>(lo)};
  affine_params best{};
  double best_err = std::numeric_limits<double>::infinity();
  auto consider = [&](affine_params c) {
    c = {round_scale<S>(c.scale), round_scale<S>(c.offset)};
    if (!std::isfinite(c.scale) || !std::isfinite(c.offset)) return;
    const double e = affine_squared_error(x, n, c, bits);
    if (e < best_err) {
      best_err = e;
      best = c;
    }
  };
  consider(p);
  for (int iteration = 0; iteration < 3; ++iteration) {
    p = refit_affine(x, n, p, bits, offset_at_most_zero);
    consider(p);
  }
  return best;
}

}  // namespace detail

template <unsigned Bits, std::size_t N, scale_format Scale = scale_format::f16,
          bool Asymmetric = false>
struct blockwise_format {
  static_assert(Bits >= 2 && Bits <= 8, "blockwise formats have 2..8-bit codes");
  static_assert(N > 0 && N * Bits % 8 == 0, "a block's codes fill whole bytes");
  static_assert(!(Asymmetric && Scale == scale_format::e8m0),
                "an E8M0 offset cannot represent a block minimum");

  static constexpr std::size_t parameter_bytes = (Asymmetric ? 2 : 1) * detail::scale_bytes<Scale>;
  struct block {
    std::uint8_t params[parameter_bytes];  ///< d, then m if asymmetric
    std::uint8_t codes[N * Bits / 8];      ///< N codes, LSB-first
  };
  static constexpr std::size_t block_values = N;
  static constexpr std::size_t block_bytes = parameter_bytes + N * Bits / 8;
  static_assert(sizeof(block) == block_bytes);
  static constexpr double bits_per_value = Bits + 8.0 * parameter_bytes / static_cast<double>(N);
  static constexpr const char* name = Asymmetric ? "block_asym" : "block_sym";

  /// The affine parameters block b decodes with.
  [[nodiscard]] static affine_params params_of(const block& b) noexcept {
    const float d = detail::load_scale<Scale>(b.params);
    if constexpr (Asymmetric) {
      return {d, detail::load_scale<Scale>(b.params + detail::scale_bytes<Scale>)};
    } else {
      return {d, -static_cast<float>(1u << (Bits - 1)) * d};
    }
  }

  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    QCODEC_ASSERT(k % static_cast<std::int64_t>(N) == 0, "row length is not a multiple of N");
    const simd::affine_kernels& kernels = simd::kernels().affine;
    for (std::int64_t b = 0; b < k / static_cast<std::int64_t>(N); ++b, x += N) {
      if constexpr (Asymmetric) {
        const affine_params p = detail::fit_asymmetric<Scale>(x, N, Bits);
        detail::store_scale<Scale>(p.scale, y[b].params);
        detail::store_scale<Scale>(p.offset, y[b].params + detail::scale_bytes<Scale>);
      } else {
        detail::store_scale<Scale>(detail::fit_symmetric_scale<Scale>(x, N, Bits), y[b].params);
      }
      kernels.quantize_pack(x, N, params_of(y[b]), Bits, y[b].codes);
    }
  }

  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    QCODEC_ASSERT(k % static_cast<std::int64_t>(N) == 0, "row length is not a multiple of N");
    const simd::affine_kernels& kernels = simd::kernels().affine;
    for (std::int64_t b = 0; b < k / static_cast<std::int64_t>(N); ++b, y += N) {
      kernels.unpack_dequantize(x[b].codes, N, Bits, params_of(x[b]), y);
    }
  }
};

template <unsigned Bits, std::size_t Sub = 32, std::size_t Super = 256, unsigned ScaleBits = 6>
struct superblock_format {
  static_assert(Bits >= 2 && Bits <= 8, "super-block formats have 2..8-bit codes");
  static_assert(ScaleBits >= 2 && ScaleBits <= 8, "sub-block scales have 2..8 bits");
  static_assert(Sub > 0 && Super % Sub == 0, "a super-block is a whole number of sub-blocks");
  static_assert(Sub * Bits % 8 == 0, "a sub-block's codes fill whole bytes");

  static constexpr std::size_t sub_blocks = Super / Sub;
  static constexpr std::size_t index_bytes = (2 * sub_blocks * ScaleBits + 7) / 8;
  struct block {
    std::uint8_t d[2];                     ///< D (fp16): sub-block scale unit
    std::uint8_t dmin[2];                  ///< Dmin (fp16): sub-block offset unit
    std::uint8_t indices[index_bytes];     ///< s_j then t_j, ScaleBits each, LSB-first
    std::uint8_t codes[Super * Bits / 8];  ///< Super codes, LSB-first
  };
  static constexpr std::size_t block_values = Super;
  static constexpr std::size_t block_bytes = 4 + index_bytes + Super * Bits / 8;
  static_assert(sizeof(block) == block_bytes, "no padding in the wire format");
  static constexpr double bits_per_value =
      Bits + (2.0 * ScaleBits) / static_cast<double>(Sub) + 32.0 / static_cast<double>(Super);
  static constexpr const char* name = "superblock";

  static void quantize_row(const float* x, block* y, std::int64_t k) noexcept {
    QCODEC_ASSERT(k % static_cast<std::int64_t>(Super) == 0,
                  "row length is not a multiple of Super");
    const simd::kernel_table& kt = simd::kernels();
    const float max_index = static_cast<float>((1u << ScaleBits) - 1);
    for (std::int64_t b = 0; b < k / static_cast<std::int64_t>(Super); ++b, x += Super) {
      // 1. Each sub-block's own best (d_j, m_j <= 0) in float.
      affine_params sub[sub_blocks];
      float max_d = 0.0f, max_neg_m = 0.0f;
      for (std::size_t j = 0; j < sub_blocks; ++j) {
        sub[j] = detail::fit_asymmetric<scale_format::f32>(x + j * Sub, Sub, Bits, true);
        max_d = std::max(max_d, sub[j].scale);
        max_neg_m = std::max(max_neg_m, -sub[j].offset);
      }
      // 2. Their units, then each sub-block's indices: the rounded ones and their neighbours,
      //    judged by the error of codes re-rounded against the decoded parameters.
      //    The units saturate at the largest finite fp16: an infinite unit would decode every
      //    value of the super-block to +-inf or NaN (inf * 0) and make every candidate's error
      //    NaN. (Values below 65520 round to 65504 anyway, so this changes no finite unit.)
      constexpr float half_max = 65504.0f;
      detail::store_scale<scale_format::f16>(std::min(max_d / max_index, half_max), y[b].d);
      detail::store_scale<scale_format::f16>(std::min(max_neg_m / max_index, half_max), y[b].dmin);
      const float unit_d = detail::load_scale<scale_format::f16>(y[b].d);
      const float unit_m = detail::load_scale<scale_format::f16>(y[b].dmin);
      std::uint8_t s[sub_blocks], t[sub_blocks];
      for (std::size_t j = 0; j < sub_blocks; ++j) {
        const float* xj = x + j * Sub;
        // NaN (from a NaN or infinite input) maps to index 0, never into the integer casts
        auto index = [&](float v, float unit) {
          const float r = unit > 0.0f ? std::nearbyint(v / unit) : 0.0f;
          return r >= 0.0f ? std::min(r, max_index) : 0.0f;
        };
        const float s0 = index(sub[j].scale, unit_d), t0 = index(-sub[j].offset, unit_m);
        // The rounded indices stand when no candidate's error compares (all NaN: a NaN input):
        // the block then still has defined bytes.
        s[j] = static_cast<std::uint8_t>(s0);
        t[j] = static_cast<std::uint8_t>(t0);
        double best = std::numeric_limits<double>::infinity();
        for (float ds = -1.0f; ds <= 1.0f; ds += 1.0f) {
          for (float dt = -1.0f; dt <= 1.0f; dt += 1.0f) {
            const float si = s0 + ds, ti = t0 + dt;
            if (si < 0.0f || si > max_index || ti < 0.0f || ti > max_index) continue;
            const double e =
                detail::affine_squared_error(xj, Sub, {unit_d * si, -unit_m * ti}, Bits);
            if (e < best) {
              best = e;
              s[j] = static_cast<std::uint8_t>(si);
              t[j] = static_cast<std::uint8_t>(ti);
            }
          }
        }
      }
      std::uint8_t indices[2 * sub_blocks];
      std::copy(s, s + sub_blocks, indices);
      std::copy(t, t + sub_blocks, indices + sub_blocks);
      kt.packing.pack_bits(indices, 2 * sub_blocks, ScaleBits, y[b].indices);
      // 3. Codes against the parameters as stored.
      for (std::size_t j = 0; j < sub_blocks; ++j) {
        kt.affine.quantize_pack(x + j * Sub, Sub, {unit_d * s[j], -unit_m * t[j]}, Bits,
                                y[b].codes + j * Sub * Bits / 8);
      }
    }
  }

  static void dequantize_row(const block* x, float* y, std::int64_t k) noexcept {
    QCODEC_ASSERT(k % static_cast<std::int64_t>(Super) == 0,
                  "row length is not a multiple of Super");
    const simd::kernel_table& kt = simd::kernels();
    for (std::int64_t b = 0; b < k / static_cast<std::int64_t>(Super); ++b) {
      std::uint8_t indices[2 * sub_blocks];
      kt.packing.unpack_bits(x[b].indices, 2 * sub_blocks, ScaleBits, indices);
      const float unit_d = detail::load_scale<scale_format::f16>(x[b].d);
      const float unit_m = detail::load_scale<scale_format::f16>(x[b].dmin);
      for (std::size_t j = 0; j < sub_blocks; ++j, y += Sub) {
        const affine_params p{unit_d * static_cast<float>(indices[j]),
                              -unit_m * static_cast<float>(indices[sub_blocks + j])};
        kt.affine.unpack_dequantize(x[b].codes + j * Sub * Bits / 8, Sub, Bits, p, y);
      }
    }
  }
};

}  // namespace qcodec
