#pragma once
// Shared by the ggml block-format tests: the known-answer vectors produced by ggml 0.21
// (read at run time from QCODEC_SHARED_DIR/data/ggml-vectors; never copied into the repository,
// tests skip with a message when they are absent) and generic checks run for every format.
//
// Vector files (see that directory's README.md): input_f32.bin = 8 rows x 256 floats (N(0,1),
// U(-3,3), N(0,1) with outliers, zeros, constant 1.5, N(0,1) * 1e-6, N(0,1) * 3e3, |N(0,1)|);
// <type>.bin = ggml's encoding of those rows; <type>.dequant_f32.bin = ggml's decoding of it.
#include <qcodec/quant/block/ggml.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "../../../support/catch.hpp"
#include "../../../support/deterministic.hpp"

namespace ggml_vectors {

inline constexpr std::int64_t rows = 8;
inline constexpr std::int64_t cols = 256;
inline constexpr std::int64_t values = rows * cols;

/// The directory holding the vectors, or "" when the build did not say where ../shared is.
inline std::string directory() {
#if defined(QCODEC_SHARED_DIR)
  return std::string(QCODEC_SHARED_DIR) + "/data/ggml-vectors/";
#else
  return {};
#endif
}

/// The bytes of `name` in the vector directory, or nothing when it cannot be read.
inline std::optional<std::vector<unsigned char>> read_file(const std::string& name) {
  const std::string dir = directory();
  if (dir.empty()) return std::nullopt;
  std::FILE* f = std::fopen((dir + name).c_str(), "rb");
  if (f == nullptr) return std::nullopt;
  std::vector<unsigned char> bytes;
  unsigned char buf[4096];
  std::size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + got);
  std::fclose(f);
  return bytes;
}

inline std::vector<float> as_floats(const std::vector<unsigned char>& bytes) {
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

/// One format's vectors: the shared input, ggml's blocks and ggml's decoding of them.
template <class F>
struct vectors {
  std::vector<float> input;
  std::vector<typename F::block> blocks;
  std::vector<float> decoded;
};

/// Loads input_f32.bin, <F::name>.bin and <F::name>.dequant_f32.bin, checking their sizes.
template <class F>
std::optional<vectors<F>> load() {
  const auto in = read_file("input_f32.bin");
  const auto enc = read_file(std::string(F::name) + ".bin");
  const auto dec = read_file(std::string(F::name) + ".dequant_f32.bin");
  if (!in || !enc || !dec) return std::nullopt;
  vectors<F> v;
  v.input = as_floats(*in);
  v.decoded = as_floats(*dec);
  REQUIRE(v.input.size() == static_cast<std::size_t>(values));
  REQUIRE(v.decoded.size() == static_cast<std::size_t>(values));
  REQUIRE(enc->size() == sizeof(typename F::block) * values / F::block_values);
  v.blocks.resize(values / F::block_values);
  std::memcpy(v.blocks.data(), enc->data(), enc->size());
  return v;
}

#define QCODEC_GGML_VECTORS_OR_SKIP(v, F)                                                    \
  const auto v = ::ggml_vectors::load<F>();                                                  \
  if (!v) {                                                                                  \
    QCODEC_SKIP("ggml known-answer vectors not found under '" << ::ggml_vectors::directory() \
                                                              << "'");                       \
  }

/// sum (y - x)^2 / sum x^2, in double.
inline double rel_mse(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0.0, sig = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = double{y[i]} - x[i];
    err += d * d;
    sig += double{x[i]} * x[i];
  }
  return err / sig;
}

template <class F>
std::vector<float> decode(const std::vector<typename F::block>& b) {
  std::vector<float> y(b.size() * F::block_values);
  F::dequantize_row(b.data(), y.data(), static_cast<std::int64_t>(y.size()));
  return y;
}

template <class F>
std::vector<typename F::block> encode(const std::vector<float>& x) {
  std::vector<typename F::block> b(x.size() / F::block_values);
  F::quantize_row(x.data(), b.data(), static_cast<std::int64_t>(x.size()));
  return b;
}

inline std::vector<float> normal(std::size_t n, std::uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

/// Known answers: our decoder on ggml's blocks gives ggml's floats bit for bit, and our copy of
/// ggml's reference encoder gives ggml's blocks byte for byte.
template <class F>
void check_known_answers(const vectors<F>& v) {
  const std::vector<float> y = decode<F>(v.blocks);
  for (std::int64_t i = 0; i < values; ++i) {
    INFO(F::name << " value " << i << " (row " << i / cols << "): " << y[i] << " vs ggml "
                 << v.decoded[i]);
    REQUIRE(std::memcmp(&y[i], &v.decoded[i], sizeof(float)) == 0);
  }
  std::vector<typename F::block> b(v.blocks.size());
  F::quantize_row_ref(v.input.data(), b.data(), values);
  for (std::size_t i = 0; i < b.size(); ++i) {
    INFO(F::name << " block " << i << " (row " << i * F::block_values / cols << ")");
    REQUIRE(std::memcmp(&b[i], &v.blocks[i], sizeof b[i]) == 0);
  }
}

/// qcodec's encoder against ggml's on input_f32.bin: prints both relative errors and returns
/// ours (the caller REQUIREs it against the published figure).
template <class F>
double encoder_rel_mse(const vectors<F>& v) {
  const double ggml = rel_mse(v.input, v.decoded);
  const double ours = rel_mse(v.input, decode<F>(encode<F>(v.input)));
  std::printf("%-6s relative MSE on input_f32.bin: ggml %.4g, qcodec %.4g (%.3fx)\n", F::name, ggml,
              ours, ours / ggml);
  return ours;
}

/// Every value decodes to the representable value (of its block, after encoding) nearest to
/// it: levels(block) lists the block's representable values, computed as the decoder does.
/// `slack` allows for the encoder rounding x / d instead of comparing decoded values (a
/// relative 1e-6 of the block's largest level is ample).
template <class F, class Levels>
void check_nearest_levels(const std::vector<float>& x, Levels levels) {
  const auto b = encode<F>(x);
  const auto y = decode<F>(b);
  for (std::size_t i = 0; i < b.size(); ++i) {
    const std::vector<float> lv = levels(b[i]);
    float top = 0.0f;
    for (float l : lv) top = std::fmax(top, std::fabs(l));
    for (std::size_t j = 0; j < F::block_values; ++j) {
      const std::size_t k = i * F::block_values + j;
      float best = std::numeric_limits<float>::infinity();
      for (float l : lv) best = std::fmin(best, std::fabs(l - x[k]));
      INFO(F::name << " block " << i << " value " << j << ": x " << x[k] << " decoded " << y[k]
                   << ", nearest level at distance " << best);
      REQUIRE(std::fabs(y[k] - x[k]) <= best + 1e-6f * top);
    }
  }
}

/// vec_dot of a quantized row with a quantized activation row is the dot product of the two
/// decoded rows, up to float summation (n blocks, two roundings per block term) and, for the
/// offset formats, the binary16 rounding of the activation block sums y.s (`offset_terms` gives
/// sum over blocks of |m * s|, which carries a relative error of 2^-11).
template <class F, class OffsetTerms>
void check_vec_dot(std::size_t n, std::uint32_t seed, OffsetTerms offset_terms) {
  const std::vector<float> xf = normal(n, seed), af = normal(n, seed + 1, 3.0f);
  const auto xb = encode<F>(xf);
  std::vector<typename F::dot_block> ab(n / F::block_values);
  F::quantize_dot_row(af.data(), ab.data(), static_cast<std::int64_t>(n));
  std::vector<float> xd = decode<F>(xb), ad(n);
  for (std::size_t i = 0; i < ab.size(); ++i)
    for (std::size_t j = 0; j < 32; ++j)
      ad[i * 32 + j] = static_cast<float>(ab[i].qs[j]) * ab[i].d.to_float();
  double exact = 0.0, mag = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    exact += double{xd[i]} * ad[i];
    mag += std::fabs(double{xd[i]} * ad[i]);
  }
  float s = 0.0f;
  F::vec_dot(static_cast<std::int64_t>(n), &s, xb.data(), ab.data());
  const double nb = static_cast<double>(n / F::block_values);
  const double tol = (nb + 4.0) * std::numeric_limits<float>::epsilon() * mag +
                     std::ldexp(1.0, -11) * offset_terms(xb, ab) + 1e-30;
  INFO(F::name << " n=" << n << ": vec_dot " << s << ", dot of decoded rows " << exact
               << ", tolerance " << tol);
  REQUIRE(std::fabs(double{s} - exact) <= tol);
}

/// Rows that stress the encoder: all zeros decode to zeros; a constant row decodes within 7%;
/// tiny rows (scales below binary16's range) decode to values no further from x than twice
/// the row's largest magnitude; large rows stay within half of each value plus a third of sigma;
/// huge rows (beyond the largest binary16 scale) saturate but stay finite.
template <class F>
void check_edge_rows() {
  const std::size_t n = 256;
  {
    const std::vector<float> x(n, 0.0f);
    const auto y = decode<F>(encode<F>(x));
    for (float v : y) REQUIRE(v == 0.0f);
  }
  for (const float c : {1.5f, -0.375f, 1000.0f}) {
    const std::vector<float> x(n, c);
    const auto y = decode<F>(encode<F>(x));
    for (float v : y) {
      INFO(F::name << " constant row " << c << " decodes to " << v);
      REQUIRE(std::fabs(v - c) <= 0.07f * std::fabs(c));
    }
  }
  for (const float sigma : {1e-6f, 1e-30f, 3e3f, 1e30f}) {
    const std::vector<float> x = normal(n, 9, sigma);
    const auto y = decode<F>(encode<F>(x));
    float amax = 0.0f;
    for (float v : x) amax = std::fmax(amax, std::fabs(v));
    for (std::size_t i = 0; i < n; ++i) {
      INFO(F::name << " sigma " << sigma << " value " << i << ": " << x[i] << " -> " << y[i]);
      REQUIRE(std::isfinite(y[i]));
      if (sigma < 1e-3f) REQUIRE(std::fabs(y[i] - x[i]) <= 2.0f * amax + 1e-7f);
      if (sigma == 3e3f) REQUIRE(std::fabs(y[i] - x[i]) <= 0.5f * std::fabs(x[i]) + 0.3f * sigma);
    }
  }
}

/// encode(x) (with `ref`, ggml's reference encoder), whose bytes must not depend on memory it
/// never wrote.
template <class F>
std::vector<typename F::block> encode_deterministic(const std::vector<float>& x, bool ref) {
  const auto n = static_cast<std::int64_t>(x.size());
  return deterministic_bytes<typename F::block>(
      x.size() / F::block_values, [&](typename F::block* out) {
        ref ? F::quantize_row_ref(x.data(), out, n) : F::quantize_row(x.data(), out, n);
      });
}

/// Rows holding a NaN, +inf or -inf (inputs outside every format's contract) encode to
/// unspecified but deterministic bytes, with both encoders (no uninitialised scale or code,
/// no NaN converted to int), that decode without fault; blocks without the special value
/// encode as they do on their own.
template <class F>
void check_nonfinite_rows() {
  const std::size_t n = 512;
  const std::vector<float> base = normal(n, 31);
  const std::vector<float> tail(base.begin() + 256, base.end());
  for (const bool ref : {false, true}) {
    const auto tail_alone = encode_deterministic<F>(tail, ref);
    for (const float special :
         {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
          -std::numeric_limits<float>::infinity()})
      for (const std::size_t at : {std::size_t{0}, std::size_t{5}, std::size_t{200}}) {
        INFO(F::name << (ref ? " reference" : "") << " encoder, " << special << " at " << at);
        std::vector<float> x = base;
        x[at] = special;
        const auto b = encode_deterministic<F>(x, ref);
        (void)decode<F>(b);
        const std::size_t first = 256 / F::block_values;  // the blocks of values 256..511
        REQUIRE(std::memcmp(b.data() + first, tail_alone.data(),
                            tail_alone.size() * sizeof(typename F::block)) == 0);
      }
  }
}

/// qcodec's encoder against ggml's reference encoder on N(0, 1) data (64 Ki values): returns
/// ours / ggml's relative MSE.
template <class F>
double gaussian_ratio() {
  const std::vector<float> x = normal(1 << 16, 2024);
  std::vector<typename F::block> b(x.size() / F::block_values);
  F::quantize_row_ref(x.data(), b.data(), static_cast<std::int64_t>(x.size()));
  const double ggml = rel_mse(x, decode<F>(b));
  const double ours = rel_mse(x, decode<F>(encode<F>(x)));
  std::printf("%-6s relative MSE on N(0,1): ggml %.4g, qcodec %.4g (%.3fx)\n", F::name, ggml, ours,
              ours / ggml);
  return ours / ggml;
}

// ---------------------------------------------------------------------------------------------
// K-quant formats (256-value super-blocks, dotted with Q8_K).

/// Known answers, decoding only: our decoder on ggml's blocks gives ggml's floats bit for bit.
template <class F>
void check_known_decode(const vectors<F>& v) {
  const std::vector<float> y = decode<F>(v.blocks);
  for (std::int64_t i = 0; i < values; ++i) {
    INFO(F::name << " value " << i << " (row " << i / cols << "): " << y[i] << " vs ggml "
                 << v.decoded[i]);
    REQUIRE(std::memcmp(&y[i], &v.decoded[i], sizeof(float)) == 0);
  }
}

/// How many of ggml's blocks our copy of ggml's reference encoder reproduces byte for byte.
template <class F>
std::size_t ref_blocks_matching(const vectors<F>& v) {
  std::vector<typename F::block> b(v.blocks.size());
  F::quantize_row_ref(v.input.data(), b.data(), values);
  std::size_t same = 0;
  for (std::size_t i = 0; i < b.size(); ++i)
    same += std::memcmp(&b[i], &v.blocks[i], sizeof b[i]) == 0 ? 1u : 0u;
  return same;
}

/// Every value decodes to the representable value of its sub-block nearest to it:
/// levels(block, s) lists sub-block s's representable values (computed as the decoder does),
/// `sub` is the sub-block length. `slack` as in check_nearest_levels.
template <class F, class Levels>
void check_nearest_levels_k(const std::vector<float>& x, std::size_t sub, Levels levels) {
  const auto b = encode<F>(x);
  const auto y = decode<F>(b);
  for (std::size_t i = 0; i < b.size(); ++i)
    for (std::size_t s = 0; s < F::block_values / sub; ++s) {
      const std::vector<float> lv = levels(b[i], static_cast<int>(s));
      float top = 0.0f;
      for (float l : lv) top = std::fmax(top, std::fabs(l));
      for (std::size_t j = 0; j < sub; ++j) {
        const std::size_t k = i * F::block_values + s * sub + j;
        float best = std::numeric_limits<float>::infinity();
        for (float l : lv) best = std::fmin(best, std::fabs(l - x[k]));
        INFO(F::name << " block " << i << " sub-block " << s << " value " << j << ": x " << x[k]
                     << " decoded " << y[k] << ", nearest level at distance " << best);
        REQUIRE(std::fabs(y[k] - x[k]) <= best + 1e-6f * top);
      }
    }
}

/// vec_dot of a K-quant row with a Q8_K row is the dot product of the two decoded rows up to
/// float rounding: ggml sums integers exactly per block and then rounds at most 3 times per
/// block and lane (scale product, lane product, accumulation) plus the final lane sum; the
/// offset formats subtract a separately rounded min term, so the bound uses the magnitudes
/// of both terms (|decoded x| plus twice the block's largest |decoded x|).
template <class F>
void check_vec_dot_k(std::size_t n, std::uint32_t seed) {
  const std::vector<float> xf = normal(n, seed), af = normal(n, seed + 1, 3.0f);
  const auto xb = encode<F>(xf);
  std::vector<qcodec::ggml::block_q8_K> ab(n / 256);
  F::quantize_dot_row(af.data(), ab.data(), static_cast<std::int64_t>(n));
  std::vector<float> xd = decode<F>(xb), ad(n);
  qcodec::ggml::dequantize_row_q8_K(ab.data(), ad.data(), static_cast<std::int64_t>(n));
  double exact = 0.0, mag = 0.0;
  for (std::size_t i = 0; i < n; i += 256) {
    double top = 0.0;
    for (std::size_t j = i; j < i + 256; ++j) top = std::fmax(top, std::fabs(double{xd[j]}));
    for (std::size_t j = i; j < i + 256; ++j) {
      exact += double{xd[j]} * ad[j];
      mag += (std::fabs(double{xd[j]}) + 2.0 * top) * std::fabs(double{ad[j]});
    }
  }
  float s = 0.0f;
  F::vec_dot(static_cast<std::int64_t>(n), &s, xb.data(), ab.data());
  const double nb = static_cast<double>(n / 256);
  const double tol = (4.0 * nb + 16.0) * std::numeric_limits<float>::epsilon() * mag + 1e-30;
  INFO(F::name << " n=" << n << ": vec_dot " << s << ", dot of decoded rows " << exact
               << ", tolerance " << tol);
  REQUIRE(std::fabs(double{s} - exact) <= tol);
}

/// check_edge_rows for formats too coarse for its "large rows" bound (Q2_K: four levels per
/// 16 values, steps near a sigma): large rows stay within half of each value plus
/// `large_slack` sigma; the other rows as in check_edge_rows.
template <class F>
void check_edge_rows_coarse(float large_slack) {
  const std::size_t n = 256;
  {
    const std::vector<float> x(n, 0.0f);
    const auto y = decode<F>(encode<F>(x));
    for (float v : y) REQUIRE(v == 0.0f);
  }
  for (const float c : {1.5f, -0.375f, 1000.0f}) {
    const std::vector<float> x(n, c);
    const auto y = decode<F>(encode<F>(x));
    for (float v : y) {
      INFO(F::name << " constant row " << c << " decodes to " << v);
      REQUIRE(std::fabs(v - c) <= 0.07f * std::fabs(c));
    }
  }
  for (const float sigma : {1e-6f, 1e-30f, 3e3f, 1e30f}) {
    const std::vector<float> x = normal(n, 9, sigma);
    const auto y = decode<F>(encode<F>(x));
    float amax = 0.0f;
    for (float v : x) amax = std::fmax(amax, std::fabs(v));
    for (std::size_t i = 0; i < n; ++i) {
      INFO(F::name << " sigma " << sigma << " value " << i << ": " << x[i] << " -> " << y[i]);
      REQUIRE(std::isfinite(y[i]));
      if (sigma < 1e-3f) REQUIRE(std::fabs(y[i] - x[i]) <= 2.0f * amax + 1e-7f);
      if (sigma == 3e3f)
        REQUIRE(std::fabs(y[i] - x[i]) <= 0.5f * std::fabs(x[i]) + large_slack * sigma);
    }
  }
}

}  // namespace ggml_vectors
