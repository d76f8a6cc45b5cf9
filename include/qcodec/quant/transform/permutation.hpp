#pragma once
// channel_permutation: a fixed reordering of the channels (columns) of a tokens × channels
// matrix, applied to every row before block quantization and undone after decoding.
//
// Why: in block formats (BFP, per-group scales) one outlier channel sets the shared scale of its
// whole block and the ordinary channels next to it lose their precision. Sorting channels by
// magnitude on calibration data (by_magnitude) puts the outliers together in a few blocks, so
// every other block gets a scale that fits its own values. The permutation is data-independent
// at run time: encoders and decoders only gather and scatter.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/matrix_view.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

namespace qcodec {

class channel_permutation {
 public:
  /// The identity on n channels.
  explicit channel_permutation(std::size_t n = 0) : order_(n) {
    std::iota(order_.begin(), order_.end(), std::uint32_t{0});
  }

  /// A permutation from `order`: position i of a permuted row holds channel order[i]. `order`
  /// must be a permutation of 0..n-1 (check untrusted input with is_permutation first).
  explicit channel_permutation(std::vector<std::uint32_t> order) : order_(std::move(order)) {
    QCODEC_ASSERT(is_permutation(order_), "not a permutation of 0..n-1");
  }

  /// Whether `order` holds each of 0..order.size()-1 exactly once.
  [[nodiscard]] static bool is_permutation(std::span<const std::uint32_t> order) {
    std::vector<bool> seen(order.size(), false);
    for (std::uint32_t c : order) {
      if (c >= order.size() || seen[c]) return false;
      seen[c] = true;
    }
    return true;
  }

  /// Channels ordered by decreasing root-mean-square value over the calibration rows (ties by
  /// channel index), so channels of similar magnitude share blocks.
  [[nodiscard]] static channel_permutation by_magnitude(matrix_view<const float> calibration) {
    std::vector<double> energy(calibration.cols(), 0.0);
    for (std::size_t r = 0; r < calibration.rows(); ++r) {
      const std::span<const float> row = calibration.row(r);
      for (std::size_t c = 0; c < row.size(); ++c) {
        energy[c] += static_cast<double>(row[c]) * static_cast<double>(row[c]);
      }
    }
    channel_permutation p(calibration.cols());
    std::stable_sort(p.order_.begin(), p.order_.end(),
                     [&](std::uint32_t a, std::uint32_t b) { return energy[a] > energy[b]; });
    return p;
  }

  [[nodiscard]] std::size_t size() const noexcept { return order_.size(); }
  /// Position i of a permuted row holds channel order()[i].
  [[nodiscard]] std::span<const std::uint32_t> order() const noexcept { return order_; }

  /// out[i] = in[order[i]] (in and out must not overlap).
  void apply(std::span<const float> in, std::span<float> out) const noexcept {
    QCODEC_ASSERT(in.size() == size() && out.size() == size(), "row length mismatch");
    for (std::size_t i = 0; i < order_.size(); ++i) out[i] = in[order_[i]];
  }
  /// out[order[i]] = in[i]: undoes apply (in and out must not overlap).
  void invert(std::span<const float> in, std::span<float> out) const noexcept {
    QCODEC_ASSERT(in.size() == size() && out.size() == size(), "row length mismatch");
    for (std::size_t i = 0; i < order_.size(); ++i) out[order_[i]] = in[i];
  }

 private:
  std::vector<std::uint32_t> order_;
};

}  // namespace qcodec
