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
// quality, so the registered cq schemes store them): prepare_query builds the query's
// inner-product table once per step,
// T[m][c] = q_m . C_m[c] (query_floats() = head_dim / Channels * 2^Bits floats: 16 KiB for
// head_dim 64 and 4c8b), and a token's score is head_dim / Channels lookups and additions.
// Values are decoded a chunk at a time and summed by the fp32 row kernels.

#include <qcodec/core/assert.hpp>
#include <qcodec/core/result.hpp>
#include <qcodec/core/status.hpp>
#include <qcodec/kv/channel_codebook.hpp>
#include <qcodec/kv/stream_codec.hpp>
#include <qcodec/quant/vq/product_quantizer.hpp>
#include <qcodec/simd/bit_packing.hpp>
#include <qcodec/simd/dispatch.hpp>

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
  /// A prepared query is its inner-product table: head_dim / Channels * 2^Bits floats.
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
  void prepare_query(const float* q, float* table) const noexcept {
    QCODEC_ASSERT(q != table, "coupled_codebook: a query's table cannot replace it");
    pq_.inner_product_table(q, table);
  }
  /// s[g * ld + t] = sum_m tables_g[m][code_tm]: four tokens at a time, so that four chains of
  /// dependent additions are in flight.
  void scores(const std::uint8_t* units, std::size_t count, const float* tables, std::size_t nq,
              float* s, std::size_t ld) const noexcept {
    const std::size_t m_codes = codes();
    for_code_chunks(units, count, [&](const std::uint8_t* c, std::size_t t0, std::size_t tn) {
      for (std::size_t g = 0; g < nq; ++g) {
        const float* table = tables + g * m_codes * centroids;
        float* sg = s + g * ld + t0;
        std::size_t t = 0;
        for (; t + 4 <= tn; t += 4) {
          const std::uint8_t* c0 = c + t * m_codes;
          float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
          for (std::size_t m = 0; m < m_codes; ++m) {
            const float* tm = table + m * centroids;
            s0 += tm[c0[m]];
            s1 += tm[c0[m_codes + m]];
            s2 += tm[c0[2 * m_codes + m]];
            s3 += tm[c0[3 * m_codes + m]];
          }
          sg[t] = s0, sg[t + 1] = s1, sg[t + 2] = s2, sg[t + 3] = s3;
        }
        for (; t < tn; ++t) {
          float sum = 0.0f;
          for (std::size_t m = 0; m < m_codes; ++m) {
            sum += table[m * centroids + c[t * m_codes + m]];
          }
          sg[t] = sum;
        }
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
