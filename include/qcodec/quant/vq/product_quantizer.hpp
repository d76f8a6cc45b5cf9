#pragma once
// Product quantization (Jégou, Douze & Schmid, "Product quantization for nearest neighbor
// search", TPAMI 2011): a vector of dim floats is cut into M = dim / sub_dim consecutive
// sub-vectors, and each is replaced by the index of the nearest of the 2^bits centroids of its
// own codebook (k-means on that sub-space). A vector costs M * bits bits, bits / sub_dim per value.
//
// Inner products with a query q need no decoding: the table T[m][c] = q_m . C_m[c] (one per
// query, M * 2^bits floats) turns q . x into M lookups and additions (asymmetric distance
// computation: the query stays exact).
//
// With per-dimension weights, both training and encoding use the weighted squared distance (see
// kmeans.hpp): for attention keys, weights E[q_i^2] make it the expected error of the scores if
// the query's channels are uncorrelated. This is coupled quantization of keys (Zhang et al., "KV
// Cache is 1 Bit Per Channel: Efficient Large Language Model Inference with Coupled
// Quantization", 2024, arXiv:2405.03917): channels quantized jointly, sub_dim at a time, capture
// their dependence, which per-channel scalar codes cannot.
//
// Codes: one byte per sub-vector (M bytes), code m in [0, 2^bits). Packing them is the caller's.

#include <qcodec/core/result.hpp>
#include <qcodec/core/status.hpp>
#include <qcodec/quant/vq/kmeans.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace qcodec {

namespace errors {
inline constexpr error_id product_quantizer_bad_shape{
    errc::invalid_argument, "qcodec.product_quantizer.1", "invalid product quantizer shape"};
}  // namespace errors

/// Not a Quantizer policy (one code per sub-vector, no per-group parameters): trained once, then
/// encode / decode / inner_product_table, FAISS-style.
class product_quantizer {
 public:
  static constexpr unsigned max_bits = 8;

  /// Trains one codebook of 2^bits centroids per sub-space on the n = x.size() / dim samples x
  /// (n x dim, row-major), with optional per-dimension weights (dim values; options.weights is
  /// ignored: each sub-space takes its slice of `weights`). Fails for bits outside 1..8, dim not
  /// a multiple of sub_dim or weights of the wrong size ([qcodec.product_quantizer.1]), and
  /// whatever kmeans() refuses (fewer than 2^bits samples, non-finite ones, ...).
  [[nodiscard]] static result<product_quantizer> train(std::span<const float> x, std::size_t dim,
                                                       std::size_t sub_dim, unsigned bits,
                                                       std::span<const float> weights = {},
                                                       kmeans_options options = {}) {
    if (bits == 0 || bits > max_bits || sub_dim == 0 || dim == 0 || dim % sub_dim != 0 ||
        x.size() % dim != 0) {
      return status::failure(errors::product_quantizer_bad_shape,
                             "bits 1..8, dim a multiple of sub_dim, whole samples");
    }
    if (!weights.empty() && weights.size() != dim) {
      return status::failure(errors::product_quantizer_bad_shape, "one weight per dimension");
    }
    product_quantizer pq;
    pq.dim_ = dim;
    pq.sub_dim_ = sub_dim;
    pq.subspaces_ = dim / sub_dim;
    pq.bits_ = bits;
    pq.weights_.assign(weights.begin(), weights.end());
    const std::size_t n = x.size() / dim, k = pq.centroids();
    std::vector<float> sub(n * sub_dim);
    for (std::size_t m = 0; m < pq.subspaces(); ++m) {
      for (std::size_t t = 0; t < n; ++t) {
        for (std::size_t i = 0; i < sub_dim; ++i) {
          sub[t * sub_dim + i] = x[t * dim + m * sub_dim + i];
        }
      }
      options.weights = pq.sub_weights(m);
      options.seed += 1;  // a different seeding stream per sub-space
      result<kmeans_fit> fit = kmeans(sub, sub_dim, k, options);
      if (!fit) return fit.error();
      pq.codebooks_.insert(pq.codebooks_.end(), fit->centroids.begin(), fit->centroids.end());
      for (std::size_t i = 0; i < sub_dim; ++i) {
        for (std::size_t j = 0; j < k; ++j) pq.columns_.push_back(fit->centroids[j * sub_dim + i]);
      }
      pq.mse_ += fit->mse / static_cast<double>(dim);
    }
    return pq;
  }

  [[nodiscard]] std::size_t dim() const noexcept { return dim_; }
  [[nodiscard]] std::size_t sub_dim() const noexcept { return sub_dim_; }
  [[nodiscard]] unsigned bits() const noexcept { return bits_; }
  /// M: sub-vectors (and codes) per vector.
  [[nodiscard]] std::size_t subspaces() const noexcept { return subspaces_; }
  /// 2^bits centroids per codebook.
  [[nodiscard]] std::size_t centroids() const noexcept { return std::size_t{1} << bits_; }
  /// Mean weighted squared error per value on the training samples.
  [[nodiscard]] double training_mse() const noexcept { return mse_; }
  /// Sub-space m's centroids, 2^bits x sub_dim, row-major.
  [[nodiscard]] std::span<const float> codebook(std::size_t m) const noexcept {
    return {&codebooks_[m * centroids() * sub_dim_], centroids() * sub_dim_};
  }

  /// Every codebook, one after the other: centroid c of sub-space m at
  /// [(m * 2^bits + c) * sub_dim, ... + sub_dim).
  [[nodiscard]] std::span<const float> codebooks() const noexcept { return codebooks_; }

  /// codes[m] = the centroid of sub-space m nearest to x's m-th sub-vector (weighted distance,
  /// ties to the lower index).
  void encode(const float* x, std::uint8_t* codes) const noexcept {
    const std::size_t k = centroids();
    const detail::minmax_kernel minmax = simd::kernels().reductions.minmax;
    float distance[std::size_t{1} << max_bits];
    for (std::size_t m = 0; m < subspaces(); ++m) {
      const std::span<const float> w = sub_weights(m);
      codes[m] = static_cast<std::uint8_t>(
          detail::nearest_column(&columns_[m * sub_dim_ * k], sub_dim_, k,
                                 w.empty() ? nullptr : w.data(), x + m * sub_dim_, distance, minmax)
              .first);
    }
  }
  void decode(const std::uint8_t* codes, float* y) const noexcept {
    for (std::size_t m = 0; m < subspaces(); ++m) {
      const float* c = &codebook(m)[codes[m] * sub_dim_];
      for (std::size_t i = 0; i < sub_dim_; ++i) y[m * sub_dim_ + i] = c[i];
    }
  }
  /// table[m * 2^bits + c] = q_m . C_m[c], the inner products of q's sub-vectors with every
  /// centroid: q . decode(codes) = sum_m table[m * 2^bits + codes[m]] up to float rounding.
  /// With a stride, entry i goes to table[i * stride] (the tables of several queries
  /// interleaved).
  void inner_product_table(const float* q, float* table, std::size_t stride = 1) const noexcept {
    const std::size_t k = centroids();
    for (std::size_t m = 0; m < subspaces(); ++m) {
      const float* qm = q + m * sub_dim_;
      const float* c = codebook(m).data();
      for (std::size_t j = 0; j < k; ++j) {
        float dot = 0.0f;
        for (std::size_t i = 0; i < sub_dim_; ++i) dot += qm[i] * c[j * sub_dim_ + i];
        table[(m * k + j) * stride] = dot;
      }
    }
  }

 private:
  product_quantizer() = default;

  [[nodiscard]] std::span<const float> sub_weights(std::size_t m) const noexcept {
    if (weights_.empty()) return {};
    return {&weights_[m * sub_dim_], sub_dim_};
  }

  std::size_t dim_ = 0, sub_dim_ = 0, subspaces_ = 0;
  unsigned bits_ = 0;
  double mse_ = 0.0;
  std::vector<float> weights_;    // per dimension, or empty
  std::vector<float> codebooks_;  // M codebooks of 2^bits x sub_dim, one after the other
  std::vector<float> columns_;    // the same, each codebook as sub_dim columns (for encode)
};

}  // namespace qcodec
