#pragma once
// Parameter fitting for uniform<Bits, Mode, Rounding> (quant/uniform/uniform.hpp).
//
//   fit_absmax(q, x)      levels cover [-max|x|, max|x|] (every mode)
//   fit_minmax(q, x)      levels cover [min x, max x] (symmetric modes: max(|min|, |max|), i.e.
//                         the same as absmax; this is uniform::fit)
//   search_scale(q, x, w, options)
//                         the parameters with the least weighted squared error
//                         sum_i w_i (x_i - decode(encode(x_i)))^2 among
//                           1. the absmax and min/max fits,
//                           2. a grid of clipping ratios r in [min_ratio, 1): the range fit of
//                              [r * min, r * max] (symmetric: [-r * m, r * m], m = max |x|;
//                              min, max over the elements of positive weight; the grid search
//                              of GPTQ's / AWQ's clipping, Frantar et al. 2022, Lin et al. 2023),
//                           3. alternating refinement from the best of those: with the codes
//                              fixed, the weighted least-squares (scale, offset) (symmetric
//                              modes: scale alone, s = sum w x d / sum w d^2 with d the code's
//                              level in steps), then re-encode; repeated while the error drops
//                              (Lloyd's alternation restricted to uniform levels).
//                         Every candidate is evaluated with the same encode/decode, so the
//                         result is never worse than the absmax or min/max fit on the data it
//                         fits (the guarantee the tests check). Weights are per element
//                         importances (w_i >= 0, e.g. squared activations of a weight's input
//                         channel); an empty span means all ones.
//   mse_fitted<Q>         Q with fit(x) = search_scale(...).params, and fit(x, w) for weights:
//                         a Quantizer policy like Q itself.
//
// Errors are evaluated with round-to-nearest-even encodes even when Q rounds stochastically (the
// search picks the levels; stochastic rounding then dithers between them). No allocation:
// encode/decode run on stack chunks of 256 elements. Cost: (3 + grid_points + 2 * refinements)
// encode + decode passes over x.

#include <qcodec/core/assert.hpp>
#include <qcodec/quant/concepts.hpp>
#include <qcodec/quant/uniform/uniform.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

namespace qcodec {

/// Knobs of search_scale.
struct scale_search_options {
  /// Clipping ratios tried besides 1: r_k = 1 - k (1 - min_ratio) / grid_points, k
  /// = 1..grid_points.
  unsigned grid_points = 32;
  float min_ratio = 0.25f;
  /// Least-squares refinement rounds at most (each one encode pass and one evaluation).
  unsigned refinements = 6;
};

/// Parameters and their weighted sum of squared errors.
template <class Params>
struct scale_search_result {
  Params params;
  double error;
};

/// sum_i w_i (x_i - y_i)^2 with y = q.decode(q.encode(x, p), p), in double; an empty w means all
/// ones. Any Quantizer (a stochastic one draws from its generator).
template <Quantizer Q>
[[nodiscard]] double quantization_error(const Q& q, std::span<const float> x,
                                        std::span<const float> w,
                                        const typename Q::params_type& p) noexcept {
  QCODEC_ASSERT(w.empty() || w.size() == x.size(),
                "[qcodec.scale_search.1] weights and x differ in length");
  constexpr std::size_t chunk = 256, lanes = 8;
  std::uint8_t sym[chunk];
  float y[chunk];
  // Eight partial sums in a fixed order: the compiler can vectorise them (one sequential double
  // sum would cost an add latency per element), and the result is still deterministic.
  double acc[lanes] = {};
  for (std::size_t i = 0; i < x.size(); i += chunk) {
    const std::size_t k = x.size() - i < chunk ? x.size() - i : chunk;
    q.encode(x.subspan(i, k), p, std::span<std::uint8_t>(sym, k));
    q.decode(std::span<const std::uint8_t>(sym, k), p, std::span<float>(y, k));
    if (w.empty()) {
      for (std::size_t j = 0; j < k; ++j) {
        const double d = double{x[i + j]} - double{y[j]};
        acc[j % lanes] += d * d;
      }
    } else {
      for (std::size_t j = 0; j < k; ++j) {
        const double d = double{x[i + j]} - double{y[j]};
        acc[j % lanes] += double{w[i + j]} * d * d;
      }
    }
  }
  double err = 0.0;
  for (const double a : acc) err += a;
  return err;
}

/// Levels covering [-max|x|, max|x|].
template <unsigned Bits, class Mode, class Rounding>
[[nodiscard]] auto fit_absmax(const uniform<Bits, Mode, Rounding>&,
                              std::span<const float> x) noexcept {
  const float m = simd::kernels().reductions.absmax(x.data(), x.size());
  return uniform<Bits, Mode, Rounding>::from_range(-m, m);
}

/// Levels covering [min x, max x] (the symmetric modes widen it to absmax).
template <unsigned Bits, class Mode, class Rounding>
[[nodiscard]] auto fit_minmax(const uniform<Bits, Mode, Rounding>& q,
                              std::span<const float> x) noexcept {
  return q.fit(x);
}

namespace detail {

// Weighted least-squares parameters for fixed codes: symmetric modes fit x ~= s * d with
// d = q - centre (+ 1/2 without zero); asymmetric fits x ~= s * q + o. Returns false when the
// system is degenerate or gives a non-positive or non-finite scale.
template <unsigned Bits, class Mode>
bool least_squares_params(std::span<const float> x, std::span<const float> w,
                          const typename uniform<Bits, Mode>::params_type& p,
                          typename uniform<Bits, Mode>::params_type& out) noexcept {
  using U = uniform<Bits, Mode>;
  const U q;
  constexpr std::size_t chunk = 256;
  std::uint8_t sym[chunk];
  double sw = 0.0, sq = 0.0, sqq = 0.0, sx = 0.0, sxq = 0.0;
  const double shift = std::is_same_v<Mode, symmetric>           ? double{U::centre}
                       : std::is_same_v<Mode, symmetric_no_zero> ? double{U::centre} - 0.5
                                                                 : 0.0;
  for (std::size_t i = 0; i < x.size(); i += chunk) {
    const std::size_t k = x.size() - i < chunk ? x.size() - i : chunk;
    q.encode(x.subspan(i, k), p, std::span<std::uint8_t>(sym, k));
    for (std::size_t j = 0; j < k; ++j) {
      const double wi = w.empty() ? 1.0 : double{w[i + j]};
      const double d = static_cast<double>(sym[j]) - shift;
      const double xi = x[i + j];
      sw += wi;
      sq += wi * d;
      sqq += wi * d * d;
      sx += wi * xi;
      sxq += wi * xi * d;
    }
  }
  double s = 0.0, o = 0.0;
  if constexpr (std::is_same_v<Mode, asymmetric>) {
    const double det = sw * sqq - sq * sq;
    if (!(det > 1e-12 * sw * sqq)) return false;
    s = (sw * sxq - sq * sx) / det;
    o = (sqq * sx - sq * sxq) / det;
  } else {
    if (!(sqq > 0.0)) return false;
    s = sxq / sqq;
  }
  if (!(s > 0.0) || !std::isfinite(s) || !std::isfinite(o)) return false;
  if (s > double{std::numeric_limits<float>::max()}) return false;
  out = U::make_params(static_cast<float>(s), static_cast<float>(o));
  return true;
}

}  // namespace detail

/// The least weighted squared error parameters found by the search described in the file
/// comment; never worse than fit_absmax or fit_minmax on x (under nearest rounding).
/// x: the group; w: empty or one weight >= 0 per element.
template <unsigned Bits, class Mode, class Rounding>
[[nodiscard]] auto search_scale(const uniform<Bits, Mode, Rounding>&, std::span<const float> x,
                                std::span<const float> w = {},
                                const scale_search_options& options = {}) noexcept
    -> scale_search_result<typename uniform<Bits, Mode, Rounding>::params_type> {
  using U = uniform<Bits, Mode>;  // nearest rounding: the search evaluates deterministic codes
  using P = typename U::params_type;
  QCODEC_ASSERT(w.empty() || w.size() == x.size(),
                "[qcodec.scale_search.1] weights and x differ in length");
  const U q;
  if (x.empty()) return {q.fit(x), 0.0};

  scale_search_result<P> best{q.fit(x), 0.0};
  best.error = quantization_error(q, x, w, best.params);
  const auto consider = [&](const P& p) {
    const double e = quantization_error(q, x, w, p);
    if (e < best.error) best = {p, e};
  };
  consider(fit_absmax(q, x));

  // The grid spans the elements that carry weight (all of them without weights): an element of
  // weight 0 must not stretch the clipping range.
  float lo = 0.0f, hi = 0.0f;
  bool any = false;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!w.empty() && !(w[i] > 0.0f)) continue;
    lo = !any || x[i] < lo ? x[i] : lo;
    hi = !any || x[i] > hi ? x[i] : hi;
    any = true;
  }
  const float m = std::fmax(std::fabs(lo), std::fabs(hi));
  const unsigned g = options.grid_points;
  for (unsigned k = 1; k <= g; ++k) {
    const float r =
        1.0f - static_cast<float>(k) * (1.0f - options.min_ratio) / static_cast<float>(g);
    if constexpr (std::is_same_v<Mode, asymmetric>) {
      consider(U::from_range(r * lo, r * hi));
    } else {
      consider(U::from_range(-r * m, r * m));
    }
  }

  for (unsigned it = 0; it < options.refinements; ++it) {
    P p{};
    if (!detail::least_squares_params<Bits, Mode>(x, w, best.params, p)) break;
    const double e = quantization_error(q, x, w, p);
    if (!(e < best.error)) break;
    best = {p, e};
  }
  return best;
}

/// Q (a uniform<...>) whose fit is search_scale: a Quantizer policy with the same codes and
/// params_type, plus fit(x, w) for per-element weights.
template <class Q>
class mse_fitted : public Q {
 public:
  using params_type = typename Q::params_type;

  constexpr mse_fitted() noexcept = default;
  explicit constexpr mse_fitted(Q base, scale_search_options options = {}) noexcept
      : Q(base), options_(options) {}

  [[nodiscard]] params_type fit(std::span<const float> x) const noexcept {
    return search_scale(static_cast<const Q&>(*this), x, {}, options_).params;
  }
  [[nodiscard]] params_type fit(std::span<const float> x, std::span<const float> w) const noexcept {
    return search_scale(static_cast<const Q&>(*this), x, w, options_).params;
  }
  [[nodiscard]] const scale_search_options& options() const noexcept { return options_; }

 private:
  scale_search_options options_{};
};

}  // namespace qcodec
