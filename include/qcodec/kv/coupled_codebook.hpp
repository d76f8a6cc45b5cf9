#pragma once
// coupled_codebook<Channels, Bits>: coupled quantization of a KV head (CQ: Zhang et al., "KV
// Cache is 1 Bit Per Channel: Efficient Large Language Model Inference with Coupled
// Quantization", 2024, arXiv:2405.03917). Each run of Channels consecutive channels is quantized
// jointly to one of 2^Bits centroids learnt on calibration data (a product quantizer:
// quant/vq/product_quantizer.hpp), Bits / Channels bits per value and no metadata: CQ-4c8b is
// coupled_codebook<4, 8>, 2 bits per value.
//
// Channels of a key head are far from independent (RoPE pairs, correlated outlier channels),
// and a joint codebook spends its levels where the pairs (or quadruples) actually lie, which
// per-channel scalar codes cannot. With the mean squared query per channel as weights (kv_samples
// key_weights), k-means and encoding minimise the error of the attention scores (exactly so for
// uncorrelated query channels); CQ's own centroids weight the error by Fisher information
// instead. Channels coupled are consecutive: with interleaved RoPE (llama2.c, pairs 2i, 2i + 1)
// and Channels even, every rotating pair is in one sub-space; with half-split RoPE it is not.
//
// The codebooks are constants of the cache (head_dim * 2^Bits floats per stream, like the
// model's weights), not counted in the per-sequence bits. Fitting needs at least 2^Bits tokens.
//
// Unit (one token): head_dim / Channels codes of Bits bits, packed LSB-first.
// Attention on the codes, for keys stored after RoPE (rope_config::pre_rope keys are decoded and
// rotated a block at a time by attention(), like every codec's; with CQ they keep far more
// quality, so the registered cq schemes store them): prepare_queries builds each query's
// inner-product table once per step, T[m][c] = q_m . C_m[c] (query_floats() = head_dim /
// Channels * 2^Bits floats: 16 KiB for head_dim 64 and 4c8b), with the tables of four query heads
// interleaved, and a token's score for four heads is head_dim / Channels lookups and additions of
// four floats.
// Values are decoded a chunk at a time and summed by the fp32 row kernels.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/result.hpp>
#include <qcodec/core/status.hpp>
#include <qcodec/kv/channel_codebook.hpp>
#include <qcodec/kv/stream_codec.hpp>
#include <qcodec/quant/vq/product_quantizer.hpp>
#include <qcodec/simd/bit_packing.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>

namespace qcodec::kv {

template <std::size_t Channels, unsigned Bits>
class coupled_codebook {
  static_assert(Channels >= 1 && Channels <= 16, "1..16 channels coupled");
  static_assert(Bits >= 1 && Bits <= 8, "codes of 1..8 bits");

 public:
  static constexpr std::size_t group_tokens = 1;
  static constexpr std::size_t max_head_dim = 1024;

  /// Fits the codebooks to n calibration vectors x[n][head_dim] (n >= 2^Bits), with optional
  /// per-channel weights (for keys, E[q_i^2]: the error of the scores; empty: all 1).
  [[nodiscard]] static result<coupled_codebook> fit(std::span<const float> x, std::size_t head_dim,
                                                    std::span<const float> weights = {}) {
    if (head_dim == 0 || head_dim > max_head_dim || head_dim % Channels != 0) {
      return status::failure(
          errors::bad_calibration,
          "coupled codebooks need head_dim (1..1024) a multiple of " + std::to_string(Channels));
    }
    if (x.size() % head_dim != 0 || x.size() / head_dim < centroids) {
      return status::failure(errors::bad_calibration,
                             "coupled codebooks need whole vectors, at least " +
                                 std::to_string(centroids) + " of them (one per centroid)");
    }
    if (status s = detail::check_channel_weights(weights, head_dim); !s) return s;
    for (const float v : x) {
      if (!std::isfinite(v)) return status::failure(errors::bad_calibration, "non-finite sample");
    }
    result<product_quantizer> pq = product_quantizer::train(x, head_dim, Channels, Bits, weights);
    if (!pq) return pq.error();  // not for inputs checked above
    return coupled_codebook(std::move(*pq));
  }

  [[nodiscard]] std::size_t head_dim() const noexcept { return pq_.dim(); }
  [[nodiscard]] std::size_t unit_bytes() const noexcept { return packed_bytes(codes(), Bits); }
  [[nodiscard]] std::string name() const {
    return "cq-" + std::to_string(Channels) + "c" + std::to_string(Bits) + "b";
  }
  /// The product quantizer (its codebooks) behind the codes.
  [[nodiscard]] const product_quantizer& quantizer() const noexcept { return pq_; }
  /// Floats per prepared query: its inner-product table, head_dim / Channels * 2^Bits floats
  /// (interleaved with those of the queries prepared with it: prepare_queries).
  [[nodiscard]] std::size_t query_floats() const noexcept { return codes() * centroids; }

  void encode(const float* x, std::uint8_t* unit) const noexcept {
    std::uint8_t c[max_codes];
    pq_.encode(x, c);
    simd::kernels().packing.pack_bits(c, codes(), Bits, unit);
  }
  void decode(const std::uint8_t* unit, float* y) const noexcept {
    if constexpr (Bits == 8) {
      decode_codes(unit, y);
    } else {
      std::uint8_t c[max_codes];
      simd::kernels().packing.unpack_bits(unit, codes(), Bits, c);
      decode_codes(c, y);
    }
  }
  /// The tables of nq queries q[nq][head_dim], those of each `interleave` consecutive queries
  /// interleaved (T[m][c][g] for g < interleave; the last group as wide as the queries left), so
  /// that scores() reads a token's partial scores for a whole group with one load per sub-space.
  void prepare_queries(const float* q, std::size_t nq, float* tables) const noexcept {
    QCODEC_ASSERT(q != tables, "coupled_codebook: a query's table cannot replace it");
    const std::size_t d = head_dim(), floats = query_floats();
    for (std::size_t g0 = 0; g0 < nq; g0 += interleave) {
      const std::size_t width = std::min(interleave, nq - g0);
      for (std::size_t g = 0; g < width; ++g) {
        pq_.inner_product_table(q + (g0 + g) * d, tables + g0 * floats + g, width);
      }
    }
  }
  void prepare_query(const float* q, float* table) const noexcept { prepare_queries(q, 1, table); }
  /// s[g * ld + t] = sum_m T_g[m][code_tm] for the nq queries prepared together: per group of
  /// interleaved tables, one simd table_sums call.
  void scores(const std::uint8_t* units, std::size_t count, const float* tables, std::size_t nq,
              float* s, std::size_t ld) const noexcept {
    const auto table_sums = simd::kernels().table_sums.table_sums;
    const std::size_t floats = query_floats(), m_codes = codes();
    for_code_chunks(units, count, [&](const std::uint8_t* c, std::size_t t0, std::size_t tn) {
      for (std::size_t g0 = 0; g0 < nq; g0 += interleave) {
        table_sums(c, tn, m_codes, centroids, tables + g0 * floats, std::min(interleave, nq - g0),
                   s + g0 * ld + t0, ld);
      }
    });
  }
  void accumulate(const std::uint8_t* units, std::size_t count, const float* p, std::size_t ldp,
                  std::size_t nq, float* acc) const noexcept {
    detail::accumulate_decoded(*this, units, count, p, ldp, nq, acc);
  }
  void finish_output(float*) const noexcept {}

 private:
  static constexpr std::size_t centroids = std::size_t{1} << Bits;
  static constexpr std::size_t max_codes = max_head_dim / Channels;

  explicit coupled_codebook(product_quantizer pq) : pq_(std::move(pq)) {}

  [[nodiscard]] std::size_t codes() const noexcept { return pq_.subspaces(); }

  // Consecutive prepared queries whose tables are interleaved (attention's rows: under GQA-4,
  // the query heads of a KV head), whose four partial scores per code are then one 16-byte load
  // and add (simd/table_sums.hpp, which takes groups of 1 to 4).
  static constexpr std::size_t interleave = 4;

  // The product quantizer's decode with the sub-vector's size known: one copy per code.
  void decode_codes(const std::uint8_t* c, float* y) const noexcept {
    const float* books = pq_.codebooks().data();
    const std::size_t n = codes();  // once: y's stores could alias the quantizer's members
    for (std::size_t m = 0; m < n; ++m) {
      std::memcpy(y + m * Channels, books + (m * centroids + c[m]) * Channels,
                  Channels * sizeof(float));
    }
  }

  // Calls f(codes, first, n) over the units in chunks, codes one byte each: 8-bit codes are the
  // units themselves; narrower ones are unpacked into a stack buffer.
  template <class F>
  void for_code_chunks(const std::uint8_t* units, std::size_t count, F&& f) const noexcept {
    if constexpr (Bits == 8) {
      f(units, 0, count);
    } else {
      constexpr std::size_t scratch_bytes = 4096;
      const std::size_t m_codes = codes(), bytes = unit_bytes();
      detail::for_chunks(count, scratch_bytes / m_codes, [&](std::size_t t0, std::size_t tn) {
        std::uint8_t c[scratch_bytes];
        for (std::size_t t = 0; t < tn; ++t) {
          simd::kernels().packing.unpack_bits(units + (t0 + t) * bytes, m_codes, Bits,
                                              c + t * m_codes);
        }
        f(c, t0, tn);
      });
    }
  }

  product_quantizer pq_;
};

}  // namespace qcodec::kv
