#pragma once
// k-means (Lloyd's algorithm with k-means++ seeding: Arthur & Vassilvitskii, "k-means++: the
// advantages of careful seeding", 2007): k centroids of dim floats minimising the mean weighted
// squared distance of n samples to their nearest centroid,
//
//   mse = 1/n sum_t min_j sum_i w_i (x_ti - c_ji)^2      (w_i = 1 without weights)
//
// Per-dimension weights keep both Lloyd steps exact: the nearest centroid under the weighted
// distance, and the cell's plain mean (the error separates by dimension). For keys, w_i = E[q_i^2]
// makes the distance the expected squared error of the attention score q . k when the query's
// channels are uncorrelated (the diagonal of E[q q^T]).
//
// Seeding: the first centroid is a uniformly random sample, each next one a sample drawn with
// probability proportional to its weighted squared distance to the nearest centroid so far
// (rng(seed): the same seed gives the same centroids). Iterations: assign every sample to its
// nearest centroid (ties to the lower index), move every centroid to its cell's mean; a centroid
// whose cell is empty moves onto the sample that was farthest from its centroid at the last
// assignment. Neither step raises the error, so mse_history never rises (up to float rounding).
// Stops after max_iterations, or once an iteration lowers the error by no more than tolerance
// times the error (at once when the error is 0).
//
// Allocates (std::vector); training time, not a kernel. Centroids are kept [dim][k] while
// training, so the distances to all k centroids are one vectorisable loop per dimension.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/result.hpp>
#include <qcodec/core/rng.hpp>
#include <qcodec/core/status.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace qcodec {

namespace errors {
inline constexpr error_id kmeans_bad_input{errc::invalid_argument, "qcodec.kmeans.1",
                                           "invalid k-means input"};
}  // namespace errors

struct kmeans_options {
  std::size_t max_iterations = 25;
  /// converged once an iteration lowers the error by less than tolerance * error
  double tolerance = 1e-4;
  std::uint64_t seed = 0x6b6d65616e73ULL;
  /// per-dimension weights of the squared distance (dim values >= 0, finite); empty: all 1
  std::span<const float> weights = {};
};

/// Trained centroids.
struct kmeans_fit {
  std::size_t dim = 0, k = 0;
  std::vector<float> centroids;     ///< k x dim, row-major
  double mse = 0.0;                 ///< mean weighted squared distance to the nearest centroid
  std::size_t iterations = 0;       ///< Lloyd iterations performed
  std::vector<double> mse_history;  ///< the error after seeding and after every iteration
};

/// Index of the centroid of `centroids` (k x dim, row-major, k >= 1) nearest to x[0, dim) under
/// the weighted squared distance (weights: dim values, or empty for all 1); ties go to the lower
/// index. The plain loop: the brute-force answer the trainers' vectorised search must give.
[[nodiscard]] inline std::size_t nearest_centroid(std::span<const float> centroids, std::size_t dim,
                                                  const float* x,
                                                  std::span<const float> weights = {}) noexcept {
  QCODEC_ASSERT(dim > 0 && centroids.size() % dim == 0 && !centroids.empty(),
                "nearest_centroid: k >= 1 whole centroids of dim > 0 floats");
  std::size_t best = 0;
  float best_distance = std::numeric_limits<float>::infinity();
  for (std::size_t j = 0; j * dim < centroids.size(); ++j) {
    float distance = 0.0f;
    for (std::size_t i = 0; i < dim; ++i) {
      const float e = x[i] - centroids[j * dim + i];
      distance += (weights.empty() ? 1.0f : weights[i]) * e * e;
    }
    if (distance < best_distance) best_distance = distance, best = j;
  }
  return best;
}

namespace detail {

using minmax_kernel = min_max (*)(const float*, std::size_t) noexcept;

/// The nearest of k centroids stored as dim columns of k floats (coordinate i of centroid j at
/// columns[i * k + j], so the distances to all k are one vectorisable loop per coordinate) and its
/// weighted squared distance; weights: dim floats or null (all 1); distance: k floats of scratch.
/// Ties go to the lower index; if every distance is NaN or +inf (a non-finite or huge x), 0.
/// minmax: the minmax kernel of the running target, looked up once by the caller.
inline std::pair<std::size_t, float> nearest_column(const float* columns, std::size_t dim,
                                                    std::size_t k, const float* weights,
                                                    const float* x, float* distance,
                                                    minmax_kernel minmax) noexcept {
  std::fill(distance, distance + k, 0.0f);
  for (std::size_t i = 0; i < dim; ++i) {
    const float xi = x[i], wi = weights != nullptr ? weights[i] : 1.0f;
    const float* ci = columns + i * k;
    for (std::size_t j = 0; j < k; ++j) {
      const float e = xi - ci[j];
      distance[j] += wi * e * e;
    }
  }
  // The minimum by the (vectorised) minmax kernel, then its first occurrence: a scalar
  // min_element is the larger part of the work for k = 256 and dim 4.
  const float least = minmax(distance, k).min;
  for (std::size_t j = 0; j < k; ++j) {
    if (distance[j] == least) return {j, least};
  }
  return {0, distance[0]};  // every distance NaN (minmax skips NaN)
}

// Centroids as dim columns of k floats, for distances to all of them at once.
class centroid_columns {
 public:
  centroid_columns(std::size_t dim, std::size_t k, std::span<const float> weights)
      : dim_(dim),
        k_(k),
        c_(dim * k),
        w_(dim, 1.0f),
        distance_(k),
        minmax_(simd::kernels().reductions.minmax) {
    if (!weights.empty()) w_.assign(weights.begin(), weights.end());
  }
  void set(std::size_t j, const float* x) noexcept {
    for (std::size_t i = 0; i < dim_; ++i) c_[i * k_ + j] = x[i];
  }
  [[nodiscard]] float get(std::size_t j, std::size_t i) const noexcept { return c_[i * k_ + j]; }
  /// The nearest centroid to x and its distance (ties to the lower index).
  std::pair<std::size_t, float> nearest(const float* x) noexcept {
    return nearest_column(c_.data(), dim_, k_, w_.data(), x, distance_.data(), minmax_);
  }
  /// The weighted squared distance of x to centroid j.
  [[nodiscard]] float distance(const float* x, std::size_t j) const noexcept {
    float d = 0.0f;
    for (std::size_t i = 0; i < dim_; ++i) {
      const float e = x[i] - get(j, i);
      d += w_[i] * e * e;
    }
    return d;
  }

 private:
  std::size_t dim_, k_;
  std::vector<float> c_, w_, distance_;
  minmax_kernel minmax_;
};

}  // namespace detail

/// k centroids for the n = x.size() / dim samples x (n x dim, row-major). Fails for dim == 0,
/// k == 0, fewer samples than k, a size not a multiple of dim, non-finite samples, or weights of
/// the wrong size or with negative or non-finite values.
[[nodiscard]] inline result<kmeans_fit> kmeans(std::span<const float> x, std::size_t dim,
                                               std::size_t k, const kmeans_options& options = {}) {
  if (dim == 0 || k == 0 || x.size() % dim != 0 || x.size() / dim < k) {
    return status::failure(errors::kmeans_bad_input,
                           "k-means needs whole samples of dim > 0 floats, at least k > 0 of them");
  }
  if (!options.weights.empty() && options.weights.size() != dim) {
    return status::failure(errors::kmeans_bad_input, "k-means weights: one per dimension");
  }
  for (const float w : options.weights) {
    if (!(w >= 0.0f && std::isfinite(w))) {
      return status::failure(errors::kmeans_bad_input, "k-means weights must be finite and >= 0");
    }
  }
  for (const float v : x) {
    if (!std::isfinite(v)) return status::failure(errors::kmeans_bad_input, "non-finite sample");
  }
  const std::size_t n = x.size() / dim;
  const auto sample = [&](std::size_t t) { return &x[t * dim]; };
  detail::centroid_columns c(dim, k, options.weights);

  // k-means++ seeding; nearest[t] is sample t's distance to its nearest centroid so far.
  rng random(options.seed);
  std::vector<float> nearest(n, std::numeric_limits<float>::infinity());
  std::size_t chosen = random.uniform_below(n);
  for (std::size_t j = 0;; ++j) {
    c.set(j, sample(chosen));
    double total = 0.0;
    for (std::size_t t = 0; t < n; ++t) {
      nearest[t] = std::min(nearest[t], c.distance(sample(t), j));
      total += nearest[t];
    }
    if (j + 1 == k) break;
    if (total == 0.0) {  // fewer distinct samples than k: any sample (a duplicate centroid)
      chosen = random.uniform_below(n);
      continue;
    }
    const double target = static_cast<double>(random.uniform()) * total;
    double sum = 0.0;
    chosen = n - 1;
    for (std::size_t t = 0; t < n; ++t) {
      sum += nearest[t];
      if (sum > target && nearest[t] > 0.0f) {
        chosen = t;
        break;
      }
    }
  }

  kmeans_fit fit;
  fit.dim = dim;
  fit.k = k;
  std::vector<std::uint32_t> cell(n);
  std::vector<float> distance(n);
  const auto assign = [&] {
    double total = 0.0;
    for (std::size_t t = 0; t < n; ++t) {
      const auto [j, d] = c.nearest(sample(t));
      cell[t] = static_cast<std::uint32_t>(j);
      distance[t] = d;
      total += d;
    }
    return total / static_cast<double>(n);
  };
  fit.mse_history.push_back(assign());
  std::vector<double> sums(k * dim);
  std::vector<std::size_t> counts(k);
  std::vector<float> mean(dim);
  while (fit.iterations < options.max_iterations) {
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0);
    for (std::size_t t = 0; t < n; ++t) {
      ++counts[cell[t]];
      for (std::size_t i = 0; i < dim; ++i) sums[cell[t] * dim + i] += sample(t)[i];
    }
    for (std::size_t j = 0; j < k; ++j) {
      if (counts[j] == 0) continue;
      for (std::size_t i = 0; i < dim; ++i) {
        mean[i] = static_cast<float>(sums[j * dim + i] / static_cast<double>(counts[j]));
      }
      c.set(j, mean.data());
    }
    for (std::size_t j = 0; j < k; ++j) {  // empty cells: onto the farthest sample
      if (counts[j] != 0) continue;
      const std::size_t far = static_cast<std::size_t>(
          std::max_element(distance.begin(), distance.end()) - distance.begin());
      c.set(j, sample(far));
      distance[far] = 0.0f;  // taken: the next empty cell takes another sample
    }
    ++fit.iterations;
    const double previous = fit.mse_history.back();
    fit.mse_history.push_back(assign());
    if (previous - fit.mse_history.back() <= options.tolerance * previous) break;
  }
  fit.mse = fit.mse_history.back();
  fit.centroids.resize(k * dim);
  for (std::size_t j = 0; j < k; ++j) {
    for (std::size_t i = 0; i < dim; ++i) fit.centroids[j * dim + i] = c.get(j, i);
  }
  return fit;
}

}  // namespace qcodec
