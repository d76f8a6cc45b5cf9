#pragma once
// uniform<Bits, Mode, Rounding>: uniform scalar quantization of a group of floats, one code byte
// per element (Bits = 1..8 significant bits; pack them with simd/bit_packing.hpp).
//
// Every mode is an affine map from a code q in [q_min, q_max] to a level; with c = 2^(Bits-1):
//
//   mode                 levels (decode)                 codes used        params     bits/value
//   symmetric            scale * (q - c)                 1 .. 2^Bits - 1   scale      Bits + 32/n
//                        = 0, +-scale, ..., +-(c-1)*scale (2^Bits - 1 levels, 0 exact; the
//                        int8 "-127..127" convention; code 0 is never produced. Bits >= 2: at
//                        1 bit the only level would be 0, use symmetric_no_zero or binary)
//   symmetric_no_zero    scale * (q - c + 1/2)           0 .. 2^Bits - 1   scale      Bits + 32/n
//                        = +-scale/2, +-3*scale/2, ..., +-(c - 1/2)*scale (2^Bits levels, none is
//                        0: every code carries information; 1 bit gives sign * scale/2)
//   asymmetric           scale * q + offset              0 .. 2^Bits - 1   scale,     Bits + 64/n
//                        (offset = the group minimum with the min/max fit; 0 is not       offset
//                        exactly representable in general)
//
// where n is the group size sharing one params_type (fp32 fields; see quant/grouping.hpp).
//
// fit(x) is the range fit: symmetric modes map max|x| to the outermost level, asymmetric maps
// [min x, max x] onto [0, 2^Bits - 1]. Better (clipped, least-squares) parameters come from
// quant/uniform/scale_search.hpp. The round trip error is at most scale / 2 (+ float rounding)
// for every x within half a step of the levels' range, [level(q_min) - scale/2,
// level(q_max) + scale/2]; the range fit puts every element of the group inside
// [level(q_min), level(q_max)].
//
// Rounding (the Rounding parameter):
//   round_to_nearest_even  the nearest level. asymmetric: t = fma(x, 1/scale, -offset/scale)
//                          rounded half to even and clamped, exactly the affine kernel of
//                          simd/affine.hpp (which it runs). Symmetric modes round |x| / scale
//                          (symmetric: half to even; symmetric_no_zero: a tie |x| = k * scale
//                          goes to the level farther from zero) and attach the sign, so the code
//                          of -x mirrors the code of x bit for bit: q(-x) = 2c - q(x)
//                          (symmetric), q(-x) = 2c - 1 - q(x) (symmetric_no_zero, x != 0).
//                          The decoded levels mirror exactly too: level(mirror q) = -level(q).
//   stochastic_rounding    q = floor(t) + [u < t - floor(t)], clamped, with t the code-space
//                          position of x (x / scale + c, x / scale + c - 1/2, or
//                          (x - offset) / scale, as one fma) and u uniform in [0, 1) from a
//                          seeded qcodec::rng (24-bit draws): E[decode(encode(x))] = x (up to
//                          float rounding of t) for every x in [level(q_min), level(q_max)]
//                          (Gupta et al., "Deep learning with limited numerical precision", 2015).
//                          The generator lives in the quantizer (mutable): the same seed and the
//                          same sequence of encode calls give the same codes; a quantizer with
//                          stochastic rounding must not be shared between threads (copy it).
//
// encode/decode are noexcept and allocation-free. Non-finite inputs: NaN encodes to a valid code
// (q_max in the symmetric modes, q_min otherwise), +-inf to the outermost codes. Float's range
// bounds the parameters: a group whose range fit needs a scale or offset beyond FLT_MAX (an
// asymmetric range wider than FLT_MAX; symmetric, max |x| above about FLT_MAX * (c - 1) / c, which
// is FLT_MAX / 2 at 2 bits; symmetric_no_zero at 1 bit, above FLT_MAX / 2) gets an infinite one
// and decodes to infinities or NaN, not to values within scale / 2.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/rng.hpp>
#include <qcodec/core/rounding.hpp>
#include <qcodec/simd/affine.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

namespace qcodec {

// ---- modes ---------------------------------------------------------------------------------

/// Levels scale * (q - 2^(Bits-1)), q in [1, 2^Bits - 1]: symmetric around an exact zero.
struct symmetric {
  static constexpr const char* name() noexcept { return "symmetric"; }
};
/// Levels scale * (q - 2^(Bits-1) + 1/2), q in [0, 2^Bits - 1]: symmetric, no level at zero.
struct symmetric_no_zero {
  static constexpr const char* name() noexcept { return "symmetric_no_zero"; }
};
/// Levels scale * q + offset, q in [0, 2^Bits - 1].
struct asymmetric {
  static constexpr const char* name() noexcept { return "asymmetric"; }
};

template <class M>
concept UniformMode = std::is_same_v<M, symmetric> || std::is_same_v<M, symmetric_no_zero> ||
    std::is_same_v<M, asymmetric>;

// ---- rounding policies -----------------------------------------------------------------------

/// Deterministic rounding to the nearest level (ties to the even code; see the file comment).
struct round_to_nearest_even {
  static constexpr bool is_stochastic = false;
  static constexpr const char* name() noexcept { return "nearest"; }
};

/// Unbiased stochastic rounding driven by a seeded qcodec::rng (see the file comment).
class stochastic_rounding {
 public:
  static constexpr bool is_stochastic = true;
  static constexpr const char* name() noexcept { return "stochastic"; }

  // Not constexpr on purpose: GCC 12 copies a constant-initialized const object with a mutable
  // member from its initial value, so a copy of a used `const` quantizer would restart the stream.
  explicit stochastic_rounding(std::uint64_t seed = 0) noexcept : gen_(seed) {}
  /// Restarts the stream: the next encode draws exactly what a fresh rounding(seed) would.
  void reseed(std::uint64_t seed) const noexcept { gen_ = rng(seed); }
  /// A uniform float in [0, 1) (advances the stream).
  float draw() const noexcept { return gen_.uniform(); }

 private:
  mutable rng gen_;
};

// ---- parameters ------------------------------------------------------------------------------

/// One scale per group (the symmetric modes); trivially copyable.
struct scale_params {
  float scale;
};

namespace detail {

// Code-space position of x: t = x * inv + bias, with the affine kernel's exact definitions
// (inv = 1 / scale or 0, bias = -offset * inv).
struct code_map {
  float inv;
  float bias;
};

inline code_map make_code_map(affine_params p) noexcept {
  const float inv = p.scale != 0.0f ? 1.0f / p.scale : 0.0f;
  return {inv, -p.offset * inv};
}

// Stochastic rounding of t into [q_min, q_max]. floor and t - floor(t) are exact for |t| < 2^23,
// so P(round up) = (t - floor t) up to the 2^-24 resolution of the draw.
inline void encode_stochastic(const float* x, std::size_t n, float inv, float bias, float q_min,
                              float q_max, const stochastic_rounding& r,
                              std::uint8_t* sym) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const float t = std::fma(x[i], inv, bias);
    const float f = std::floor(t);
    float q = f + (r.draw() < t - f ? 1.0f : 0.0f);
    q = q > q_min ? q : q_min;  // NaN -> q_min
    q = q < q_max ? q : q_max;
    sym[i] = static_cast<std::uint8_t>(q);
  }
}

// The encoders below vectorise at any SSE level in GCC 12 and Clang 14 when written as they are:
// round first (nearbyint_small, core/rounding.hpp) and clamp after (GCC moves an addition after
// a clamp to a constant into the branches, and then cannot vectorise), the sign of x a factor or
// a choice between integers (a choice between two float results stays a branch). Encoding 64K
// values in a program built without -march flags took 14-24x (symmetric) the time of a
// -march=native build while every element called libm's nearbyintf or floorf; now 2.2-3.3x.

// Symmetric, nearest: q = c + sign(x) * clamp(nearbyint(|x| * inv), 1 - c, c - 1) (the lower
// bound only matters for a negative scale, which mirrors the levels). Rounding |x| makes the
// codes of x and -x mirror images bit for bit (rounding x * inv + c through the affine kernel
// would not: 1 / scale * scale is not always 1, which shifts the ties).
inline void encode_symmetric(const float* x, std::size_t n, float inv, float c,
                             std::uint8_t* sym) noexcept {
  const float k_max = c - 1.0f;
  for (std::size_t i = 0; i < n; ++i) {
    float a = nearbyint_small(std::fabs(x[i]) * inv);
    a = a < k_max ? a : k_max;  // NaN -> k_max (then the sign test below picks the side)
    a = a > -k_max ? a : -k_max;
    const float sign = x[i] < 0.0f ? -1.0f : 1.0f;  // c +- a, exact: small integers
    sym[i] = static_cast<std::uint8_t>(static_cast<int>(c + sign * a));
  }
}

// Symmetric without zero, nearest: level index k = clamp(floor(|x| * inv), -c, c - 1) on |x|'s
// side (a negative k only for a negative scale), q = c + k for x >= 0 (and for -0.0), c - 1 - k
// for x < 0. A tie (|x| * inv an integer k >= 1, halfway between levels (k - 1/2) and (k + 1/2)
// scale) goes away from zero; the codes of x and -x are mirror images: q(-x) = 2c - 1 - q(x) for
// x != 0. The floor is the rounding r above, minus one where r > |x| * inv and r is inside the
// clamp (outside it the clamp's bound is the answer either way).
inline void encode_no_zero(const float* x, std::size_t n, float inv, float c,
                           std::uint8_t* sym) noexcept {
  const float k_max = c - 1.0f;
  const int centre = static_cast<int>(c);
  for (std::size_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]) * inv;
    const float r = nearbyint_small(a);
    float f = r < k_max ? r : k_max;  // NaN -> k_max
    f = f > -c ? f : -c;
    const int k = static_cast<int>(f) - (((r > a) & (r <= k_max) & (r > -c)) ? 1 : 0);
    sym[i] = static_cast<std::uint8_t>(x[i] < 0.0f ? centre - 1 - k : centre + k);
  }
}

// Symmetric without zero, decode: scale * (q - (c - 1/2)). q - (c - 1/2) is an exact small
// half-integer, so each level is the correctly rounded product and level(-) = -level(+) exactly.
inline void decode_no_zero(const std::uint8_t* sym, std::size_t n, float scale, float c,
                           float* y) noexcept {
  const float centre = c - 0.5f;
  for (std::size_t i = 0; i < n; ++i) y[i] = scale * (static_cast<float>(sym[i]) - centre);
}

// Clamps codes in place to [q_min, q_max] (after the affine kernel's 8-bit [0, 255] clamp this
// equals clamping nearbyint(t) to [q_min, q_max] directly).
inline void clamp_codes(std::uint8_t* sym, std::size_t n, std::uint8_t q_min,
                        std::uint8_t q_max) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t q = sym[i] > q_min ? sym[i] : q_min;
    sym[i] = q < q_max ? q : q_max;
  }
}

}  // namespace detail

/// Uniform scalar quantizer; see the file comment for modes, rounding and error bounds.
/// Models qcodec::Quantizer: fit(x) -> params_type, encode(x, p, sym), decode(sym, p, y) with
/// x, sym, y of equal length (one code byte per element).
template <unsigned Bits, UniformMode Mode = symmetric, class Rounding = round_to_nearest_even>
class uniform {
  static_assert(Bits >= 1 && Bits <= 8, "qcodec::uniform: Bits must be in 1..8");
  static_assert(!(std::is_same_v<Mode, symmetric> && Bits == 1),
                "qcodec::uniform<1, symmetric> has the single level 0: use symmetric_no_zero "
                "(levels +-scale/2) or qcodec::binary for 1-bit codes");
  static_assert(std::is_same_v<Rounding, round_to_nearest_even> ||
                    std::is_same_v<Rounding, stochastic_rounding>,
                "qcodec::uniform: Rounding is round_to_nearest_even or stochastic_rounding");

 public:
  using mode_type = Mode;
  using rounding_type = Rounding;
  using params_type =
      std::conditional_t<std::is_same_v<Mode, asymmetric>, affine_params, scale_params>;

  static constexpr unsigned bits = Bits;
  static constexpr unsigned symbol_bits = Bits;
  /// Bits of params_type per group (fp32 fields).
  static constexpr unsigned metadata_bits = 8 * sizeof(params_type);
  /// c = 2^(Bits-1), the code of level 0 (symmetric) or the first code above 0 (no_zero).
  static constexpr unsigned centre = 1u << (Bits - 1);
  static constexpr std::uint8_t q_min = std::is_same_v<Mode, symmetric> ? 1 : 0;
  static constexpr std::uint8_t q_max = static_cast<std::uint8_t>((1u << Bits) - 1);
  /// The outermost level in units of scale: max |level| / scale for the symmetric modes,
  /// (max level - min level) / scale for asymmetric.
  static constexpr float span_steps =
      std::is_same_v<Mode, symmetric>           ? static_cast<float>(centre - 1)
      : std::is_same_v<Mode, symmetric_no_zero> ? static_cast<float>(centre) - 0.5f
                                                : static_cast<float>(q_max);

  constexpr uniform() noexcept = default;
  explicit constexpr uniform(Rounding rounding) noexcept : rounding_(rounding) {}

  [[nodiscard]] const Rounding& rounding() const noexcept { return rounding_; }

  /// Parameters whose levels cover [lo, hi] (lo <= hi): symmetric modes use max(|lo|, |hi|).
  /// An empty or all-zero range gives scale 0 (every code decodes to 0, or to lo).
  [[nodiscard]] static params_type from_range(float lo, float hi) noexcept {
    if constexpr (std::is_same_v<Mode, asymmetric>) {
      return affine_params{(hi - lo) / span_steps, lo};
    } else {
      const float m = std::fmax(std::fabs(lo), std::fabs(hi));
      return scale_params{m / span_steps};
    }
  }

  /// Parameters from a scale and, for asymmetric, an offset (ignored by the symmetric modes).
  [[nodiscard]] static constexpr params_type make_params(float scale,
                                                         float offset = 0.0f) noexcept {
    if constexpr (std::is_same_v<Mode, asymmetric>) {
      return affine_params{scale, offset};
    } else {
      (void)offset;
      return scale_params{scale};
    }
  }

  /// The decode map: level(q) = scale * q + offset.
  [[nodiscard]] static constexpr affine_params to_affine(const params_type& p) noexcept {
    if constexpr (std::is_same_v<Mode, asymmetric>) {
      return p;
    } else if constexpr (std::is_same_v<Mode, symmetric>) {
      return {p.scale, -p.scale * static_cast<float>(centre)};
    } else {
      return {p.scale, -p.scale * (static_cast<float>(centre) - 0.5f)};
    }
  }

  /// Range fit: absmax (symmetric modes) or min/max (asymmetric) of x, through the reduction
  /// kernels (simd/reductions.hpp; NaN elements are skipped). Empty or all-NaN x: scale 0.
  [[nodiscard]] params_type fit(std::span<const float> x) const noexcept {
    if constexpr (std::is_same_v<Mode, asymmetric>) {
      const min_max r = simd::kernels().reductions.minmax(x.data(), x.size());
      return r.min <= r.max ? from_range(r.min, r.max) : from_range(0.0f, 0.0f);
    } else {
      const float m = simd::kernels().reductions.absmax(x.data(), x.size());
      return from_range(-m, m);
    }
  }

  /// sym[i] = code of x[i] under p, in [q_min, q_max]. x.size() == sym.size().
  void encode(std::span<const float> x, const params_type& p,
              std::span<std::uint8_t> sym) const noexcept {
    QCODEC_ASSERT(x.size() == sym.size(), "[qcodec.uniform.1] encode: x and sym differ in length");
    const std::size_t n = x.size() < sym.size() ? x.size() : sym.size();
    if (n == 0) return;
    if constexpr (Rounding::is_stochastic) {
      float inv = 0.0f, bias = 0.0f;
      if constexpr (std::is_same_v<Mode, asymmetric>) {
        const detail::code_map m = detail::make_code_map(p);
        inv = m.inv;
        bias = m.bias;
      } else {
        // Exact centres (c, c - 1/2) rather than -offset * inv, so that t = x / scale + centre.
        inv = p.scale != 0.0f ? 1.0f / p.scale : 0.0f;
        bias = std::is_same_v<Mode, symmetric> ? static_cast<float>(centre)
                                               : static_cast<float>(centre) - 0.5f;
      }
      detail::encode_stochastic(x.data(), n, inv, bias, static_cast<float>(q_min),
                                static_cast<float>(q_max), rounding_, sym.data());
    } else if constexpr (std::is_same_v<Mode, asymmetric>) {
      simd::kernels().affine.quantize_pack(x.data(), n, p, 8, sym.data());
      if constexpr (Bits < 8) detail::clamp_codes(sym.data(), n, q_min, q_max);
    } else {
      const float inv = p.scale != 0.0f ? 1.0f / p.scale : 0.0f;
      if constexpr (std::is_same_v<Mode, symmetric>) {
        detail::encode_symmetric(x.data(), n, inv, static_cast<float>(centre), sym.data());
      } else {
        detail::encode_no_zero(x.data(), n, inv, static_cast<float>(centre), sym.data());
      }
    }
  }

  /// y[i] = level(sym[i]) under p. sym.size() == y.size(); codes outside [q_min, q_max] decode
  /// to the affine extension of the levels (no undefined behaviour for any byte).
  void decode(std::span<const std::uint8_t> sym, const params_type& p,
              std::span<float> y) const noexcept {
    QCODEC_ASSERT(sym.size() == y.size(), "[qcodec.uniform.2] decode: sym and y differ in length");
    const std::size_t n = sym.size() < y.size() ? sym.size() : y.size();
    if (n == 0) return;
    if constexpr (std::is_same_v<Mode, symmetric_no_zero>) {
      detail::decode_no_zero(sym.data(), n, p.scale, static_cast<float>(centre), y.data());
    } else {
      // 8-bit codes are the bytes themselves: fma(q, scale, offset); for symmetric,
      // fma(q, s, -c * s) rounds s * (q - c) once (c * s is exact), so levels are exact mirrors.
      simd::kernels().affine.unpack_dequantize(sym.data(), n, 8, to_affine(p), y.data());
    }
  }

 private:
  [[no_unique_address]] Rounding rounding_{};
};

namespace ref {

/// Scalar oracle of uniform<Bits, Mode, round_to_nearest_even>::encode, written from the
/// definitions in the file comment (no kernels).
template <unsigned Bits, class Mode>
void uniform_encode(const float* x, std::size_t n,
                    const typename uniform<Bits, Mode>::params_type& p,
                    std::uint8_t* sym) noexcept {
  using Q = uniform<Bits, Mode>;
  const float c = static_cast<float>(Q::centre);
  for (std::size_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<Mode, asymmetric>) {
      const float inv = p.scale != 0.0f ? 1.0f / p.scale : 0.0f;
      const float t = std::fma(x[i], inv, -p.offset * inv);
      float r = std::nearbyint(t);
      if (!(r >= 0.0f)) r = 0.0f;
      if (r > static_cast<float>(Q::q_max)) r = static_cast<float>(Q::q_max);
      sym[i] = static_cast<std::uint8_t>(r);
    } else {
      const float inv = p.scale != 0.0f ? 1.0f / p.scale : 0.0f;
      const float a = std::fabs(x[i]) * inv;
      const bool neg = x[i] < 0.0f;
      if constexpr (std::is_same_v<Mode, symmetric>) {
        float k = std::nearbyint(a);
        if (!(k <= c - 1.0f)) k = c - 1.0f;
        if (k < 1.0f - c) k = 1.0f - c;  // a negative scale
        sym[i] = static_cast<std::uint8_t>(neg ? c - k : c + k);
      } else {
        float k = std::floor(a);
        if (!(k <= c - 1.0f)) k = c - 1.0f;
        if (k < -c) k = -c;  // a negative scale
        sym[i] = static_cast<std::uint8_t>(neg ? c - 1.0f - k : c + k);
      }
    }
  }
}

/// Scalar oracle of the decode: the level of each code, rounded once to float (symmetric modes:
/// scale * (q - centre) is exact in double before that rounding).
template <unsigned Bits, class Mode>
void uniform_decode(const std::uint8_t* sym, std::size_t n,
                    const typename uniform<Bits, Mode>::params_type& p, float* y) noexcept {
  using Q = uniform<Bits, Mode>;
  const double c = Q::centre;
  for (std::size_t i = 0; i < n; ++i) {
    const double q = sym[i];
    if constexpr (std::is_same_v<Mode, asymmetric>) {
      y[i] = std::fma(static_cast<float>(sym[i]), p.scale, p.offset);  // one rounding
    } else if constexpr (std::is_same_v<Mode, symmetric>) {
      // scale * (q - c) rounded once (exact in double first); fma(q, scale, -c * scale) is the
      // same number, except that scale 0 gives +0 for every code where the product gives -0
      const float level = static_cast<float>(double{p.scale} * (q - c));
      const float q_f = static_cast<float>(sym[i]);
      y[i] = level == 0.0f ? std::fma(q_f, p.scale, -p.scale * static_cast<float>(c)) : level;
    } else {
      y[i] = static_cast<float>(double{p.scale} * (q - c + 0.5));
    }
  }
}

}  // namespace ref

}  // namespace qcodec
