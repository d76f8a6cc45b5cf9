#pragma once
// Lloyd–Max scalar quantizer design (S. P. Lloyd, "Least squares quantization in PCM", 1957/1982;
// J. Max, "Quantizing for minimum distortion", 1960): k reconstruction levels minimising the
// mean squared error for a distribution, by alternating the two optimality conditions
//
//   thresholds  t_j = (l_j + l_{j+1}) / 2                  (nearest-level cells)
//   levels      l_j = E[X | t_{j-1} < X <= t_j]  = ∫ x f / ∫ f over the cell   (centroids)
//
// until no level moves by more than `tolerance` times the span of the levels. Each iteration
// never increases the MSE (both steps minimise it for the other's fixed value); the MSE of every
// visited level set is recorded in `mse_history`.
//
//   lloyd_max_samples   an empirical distribution: samples with optional non-negative weights
//                       (the cell integrals are sums; exact, so it stops when the cells stop
//                       changing)
//   lloyd_max_density   an analytic density on [lo, hi]; the cell integrals are computed by
//                       composite 8-point Gauss–Legendre quadrature (24 panels per cell, cells
//                       split at 0 so Laplace's kink sits on a panel edge). Densities need not be
//                       normalised. Provided: gaussian_density, laplace_density,
//                       uniform_density, and sphere_marginal_density (one coordinate of a
//                       uniformly random unit vector in R^d: f(x) ∝ (1 - x^2)^((d-3)/2) on
//                       [-1, 1], the codebook of TurboQuant, Zandieh et al. 2025,
//                       arXiv:2504.19874).
//
// Initial levels: `options.init` when given (k ascending values), otherwise the quantiles
// (j + 1/2) / k of the distribution. Failure (`result` holds a status): k == 0, no samples or
// zero total weight, a bad `init`, or no convergence within `max_iterations`
// ([qcodec.lloyd_max.2]).
//
// Allocates (std::vector); not a kernel. Training time, not inference time.

#include <qcodec/core/result.hpp>
#include <qcodec/core/status.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace qcodec {

namespace errors {
inline constexpr error_id lloyd_max_bad_input{errc::invalid_argument, "qcodec.lloyd_max.1",
                                              "invalid Lloyd-Max input"};
inline constexpr error_id lloyd_max_no_convergence{errc::no_convergence, "qcodec.lloyd_max.2",
                                                   "Lloyd-Max did not converge"};
}  // namespace errors

struct lloyd_max_options {
  std::size_t max_iterations = 10000;
  /// converged when no level moves by more than tolerance * (max level - min level)
  double tolerance = 1e-10;
  /// initial levels (k ascending values); empty: quantiles of the distribution
  std::span<const double> init = {};
};

/// A converged Lloyd–Max quantizer.
struct lloyd_max_fit {
  std::vector<double> levels;       ///< k ascending reconstruction levels
  std::vector<double> thresholds;   ///< k - 1 cell boundaries (midpoints of the levels)
  double mse = 0.0;                 ///< mean squared error of `levels` (per unit weight / mass)
  std::size_t iterations = 0;       ///< level updates performed
  std::vector<double> mse_history;  ///< MSE of the initial and of every updated level set
};

/// N(0, sigma^2), support truncated at +-12 sigma (the tails beyond hold < 1e-32).
struct gaussian_density {
  double sigma = 1.0;
  [[nodiscard]] double operator()(double x) const noexcept {
    const double z = x / sigma;
    return std::exp(-0.5 * z * z);
  }
  [[nodiscard]] double lo() const noexcept { return -12.0 * sigma; }
  [[nodiscard]] double hi() const noexcept { return 12.0 * sigma; }
};

/// Laplace with scale b (variance 2 b^2; the default has unit variance), support truncated at
/// +-50 b (tails < 2e-22).
struct laplace_density {
  double b = 0.70710678118654752440;
  [[nodiscard]] double operator()(double x) const noexcept { return std::exp(-std::fabs(x) / b); }
  [[nodiscard]] double lo() const noexcept { return -50.0 * b; }
  [[nodiscard]] double hi() const noexcept { return 50.0 * b; }
};

/// Uniform on [a, b].
struct uniform_density {
  double a = -1.0, b = 1.0;
  [[nodiscard]] double operator()(double) const noexcept { return 1.0; }
  [[nodiscard]] double lo() const noexcept { return a; }
  [[nodiscard]] double hi() const noexcept { return b; }
};

/// One coordinate of a uniformly random point on the unit sphere S^{d-1} in R^d, d >= 3:
/// f(x) ∝ (1 - x^2)^((d - 3) / 2) on [-1, 1] (variance 1 / d; close to N(0, 1/d) for large d).
struct sphere_marginal_density {
  std::size_t d = 128;
  [[nodiscard]] double operator()(double x) const noexcept {
    const double u = 1.0 - x * x;
    return u <= 0.0 ? 0.0 : std::pow(u, (static_cast<double>(d) - 3.0) / 2.0);
  }
  [[nodiscard]] double lo() const noexcept { return -1.0; }
  [[nodiscard]] double hi() const noexcept { return 1.0; }
};

namespace detail::lm {

// 8-point Gauss–Legendre nodes and weights on [-1, 1] (positive half; symmetric).
inline constexpr double gl_x[4] = {0.18343464249564980494, 0.52553240991632898582,
                                   0.79666647741362673959, 0.96028985649753623168};
inline constexpr double gl_w[4] = {0.36268378337836198297, 0.31370664587788728734,
                                   0.22238103445337447054, 0.10122853629037625915};
inline constexpr int panels = 24;

struct moments {
  double m0 = 0, m1 = 0, m2 = 0;  // ∫ f, ∫ (x - c) f, ∫ (x - c)^2 f
};

// Moments about c of f over [a, b] (a <= b), split at 0.
template <class Density>
moments cell_moments(const Density& f, double a, double b, double c) {
  moments m;
  auto piece = [&](double lo, double hi) {
    if (!(hi > lo)) return;
    const double h = (hi - lo) / panels;
    for (int p = 0; p < panels; ++p) {
      const double mid = lo + (p + 0.5) * h, r = 0.5 * h;
      for (int i = 0; i < 4; ++i)
        for (const double s : {-1.0, 1.0}) {
          const double x = mid + s * r * gl_x[i];
          const double w = gl_w[i] * r * f(x);
          const double d = x - c;
          m.m0 += w;
          m.m1 += w * d;
          m.m2 += w * d * d;
        }
    }
  };
  if (a < 0.0 && b > 0.0) {
    piece(a, 0.0);
    piece(0.0, b);
  } else {
    piece(a, b);
  }
  return m;
}

inline status check_init(std::span<const double> init, std::size_t k) {
  if (init.size() != k) return status::failure(errors::lloyd_max_bad_input, "init must hold k levels");
  for (std::size_t j = 0; j < k; ++j) {
    if (!std::isfinite(init[j])) return status::failure(errors::lloyd_max_bad_input, "init not finite");
    if (j > 0 && !(init[j] > init[j - 1]))
      return status::failure(errors::lloyd_max_bad_input, "init must be strictly ascending");
  }
  return {};
}

inline std::vector<double> midpoints(const std::vector<double>& l) {
  std::vector<double> t(l.size() - 1);
  for (std::size_t j = 0; j + 1 < l.size(); ++j) t[j] = 0.5 * (l[j] + l[j + 1]);
  return t;
}

// The common iteration: `cells(levels, thresholds, out)` fills per-cell moments about each
// level; returns the fit or a no-convergence status.
template <class Cells>
result<lloyd_max_fit> iterate(std::vector<double> levels, double total, const lloyd_max_options& opt,
                              Cells cells) {
  const std::size_t k = levels.size();
  lloyd_max_fit fit;
  std::vector<moments> m(k);
  for (std::size_t it = 0;; ++it) {
    const std::vector<double> t = midpoints(levels);
    cells(levels, t, m);
    double d = 0.0;
    for (const moments& c : m) d += c.m2;
    fit.mse_history.push_back(d / total);
    if (it == opt.max_iterations) {
      return status::failure(errors::lloyd_max_no_convergence,
                             std::to_string(it) + " iterations, MSE " + std::to_string(d / total));
    }
    double move = 0.0;
    for (std::size_t j = 0; j < k; ++j) {
      if (m[j].m0 > 0.0) {
        const double delta = m[j].m1 / m[j].m0;
        levels[j] += delta;
        move = std::max(move, std::fabs(delta));
      }
    }
    fit.iterations = it + 1;
    const double span = k > 1 ? levels.back() - levels.front() : 1.0;
    if (move <= opt.tolerance * (span > 0.0 ? span : 1.0)) {
      fit.thresholds = midpoints(levels);
      cells(levels, fit.thresholds, m);
      d = 0.0;
      for (const moments& c : m) d += c.m2;
      fit.mse = d / total;
      fit.mse_history.push_back(fit.mse);
      fit.levels = std::move(levels);
      return fit;
    }
  }
}

}  // namespace detail::lm

/// Lloyd–Max levels for the density f (see the header comment). Density: callable
/// double -> double >= 0, with lo() and hi() bounding its support.
template <class Density>
[[nodiscard]] result<lloyd_max_fit> lloyd_max_density(const Density& f, std::size_t k,
                                                      const lloyd_max_options& opt = {}) {
  namespace lm = detail::lm;
  if (k == 0) return status::failure(errors::lloyd_max_bad_input, "k must be at least 1");
  const double lo = f.lo(), hi = f.hi();
  if (!(hi > lo)) return status::failure(errors::lloyd_max_bad_input, "empty support");
  // cumulative mass on a fine grid: the total and the quantile initialisation
  constexpr int grid = 4096;
  std::vector<double> cdf(grid + 1, 0.0);
  for (int g = 0; g < grid; ++g) {
    const double a = lo + (hi - lo) * g / grid, b = lo + (hi - lo) * (g + 1) / grid;
    cdf[static_cast<std::size_t>(g) + 1] = cdf[static_cast<std::size_t>(g)] + lm::cell_moments(f, a, b, 0.0).m0;
  }
  const double total = cdf.back();
  if (!(total > 0.0) || !std::isfinite(total))
    return status::failure(errors::lloyd_max_bad_input, "density has no mass");
  std::vector<double> levels(k);
  if (!opt.init.empty()) {
    if (status s = lm::check_init(opt.init, k); !s.ok()) return s;
    levels.assign(opt.init.begin(), opt.init.end());
  } else {
    for (std::size_t j = 0; j < k; ++j) {
      const double target = total * (static_cast<double>(j) + 0.5) / static_cast<double>(k);
      const auto it = std::lower_bound(cdf.begin(), cdf.end(), target);
      const auto g = static_cast<std::size_t>(std::max<std::ptrdiff_t>(it - cdf.begin(), 1));
      const double frac = (target - cdf[g - 1]) / std::max(cdf[g] - cdf[g - 1], 1e-300);
      levels[j] = lo + (hi - lo) * (static_cast<double>(g - 1) + frac) / grid;
    }
  }
  return lm::iterate(std::move(levels), total, opt,
                     [&](const std::vector<double>& l, const std::vector<double>& t,
                         std::vector<lm::moments>& m) {
                       for (std::size_t j = 0; j < l.size(); ++j) {
                         const double a = j == 0 ? lo : std::clamp(t[j - 1], lo, hi);
                         const double b = j + 1 == l.size() ? hi : std::clamp(t[j], lo, hi);
                         m[j] = lm::cell_moments(f, a, b, l[j]);
                       }
                     });
}

/// Lloyd–Max levels for the empirical distribution of x (weights w: empty for all ones, else
/// one non-negative weight per sample). See the header comment.
[[nodiscard]] inline result<lloyd_max_fit> lloyd_max_samples(std::span<const float> x,
                                                             std::span<const float> w,
                                                             std::size_t k,
                                                             const lloyd_max_options& opt = {}) {
  namespace lm = detail::lm;
  if (k == 0) return status::failure(errors::lloyd_max_bad_input, "k must be at least 1");
  if (!w.empty() && w.size() != x.size())
    return status::failure(errors::lloyd_max_bad_input, "one weight per sample");
  std::vector<std::pair<double, double>> s;  // (value, weight), sorted by value
  s.reserve(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double wi = w.empty() ? 1.0 : double{w[i]};
    if (!std::isfinite(x[i]) || !(wi >= 0.0) || !std::isfinite(wi))
      return status::failure(errors::lloyd_max_bad_input, "samples and weights must be finite, weights >= 0");
    if (wi > 0.0) s.emplace_back(x[i], wi);
  }
  std::sort(s.begin(), s.end());
  double total = 0.0;
  for (const auto& p : s) total += p.second;
  if (s.empty() || !(total > 0.0)) return status::failure(errors::lloyd_max_bad_input, "no samples");
  std::vector<double> levels(k);
  if (!opt.init.empty()) {
    if (status st = lm::check_init(opt.init, k); !st.ok()) return st;
    levels.assign(opt.init.begin(), opt.init.end());
  } else {
    double acc = 0.0;
    std::size_t i = 0;
    for (std::size_t j = 0; j < k; ++j) {
      const double target = total * (static_cast<double>(j) + 0.5) / static_cast<double>(k);
      while (i + 1 < s.size() && acc + s[i].second < target) acc += s[i++].second;
      levels[j] = s[i].first;
    }
    bool ascending = true;
    for (std::size_t j = 1; j < k; ++j) ascending = ascending && levels[j] > levels[j - 1];
    if (!ascending) {  // repeated values: start from an even spread over the range instead
      const double a = s.front().first, b = s.back().first;
      for (std::size_t j = 0; j < k; ++j)
        levels[j] = a + (b - a) * (static_cast<double>(j) + 0.5) / static_cast<double>(k);
    }
  }
  return lm::iterate(std::move(levels), total, opt,
                     [&](const std::vector<double>& l, const std::vector<double>& t,
                         std::vector<lm::moments>& m) {
                       std::size_t i = 0;
                       for (std::size_t j = 0; j < l.size(); ++j) {
                         lm::moments c;
                         // cell j: (t[j-1], t[j]]; the last cell takes the rest
                         for (; i < s.size() && (j + 1 == l.size() || s[i].first <= t[j]); ++i) {
                           const double d = s[i].first - l[j];
                           c.m0 += s[i].second;
                           c.m1 += s[i].second * d;
                           c.m2 += s[i].second * d * d;
                         }
                         m[j] = c;
                       }
                     });
}

}  // namespace qcodec
