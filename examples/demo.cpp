// qcodec demo: quantize a seeded, transformer-like key tensor with the kernels qcodec has today
// and print what each scheme costs (bits per value, all metadata included) and what it loses.
//
// The tensor is 4096 tokens x 128 channels, like one KV head's keys: Gaussian channels whose
// scales vary, plus a few outlier channels 12x larger (real keys have them; see
// ../shared/data/kv/stories260K/README.md). Schemes:
//   fp16                 every value stored as IEEE half
//   int<b> per-token     b-bit asymmetric codes, one fp16 (scale, offset) pair per token
//   int<b> per-token+RHT the same after a randomized Hadamard transform of each token, which
//                        spreads the outlier channels over all channels (QuaRot-style)
//   int<b> per-channel   b-bit codes, one fp16 (scale, offset) pair per channel per group of
//                        32 tokens (KIVI's layout for keys)
// Speeds are single-threaded encode and decode throughput in GB/s of float data.
#include <qcodec/core/half.hpp>
#include <qcodec/core/rng.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace {

constexpr std::size_t tokens = 4096;
constexpr std::size_t dim = 128;
constexpr std::size_t channel_group = 32;  // tokens per per-channel group
constexpr std::uint64_t seed = 2024;

std::vector<float> make_keys() {
  qcodec::rng rng(seed);
  std::vector<float> channel_scale(dim);
  for (std::size_t c = 0; c < dim; ++c) channel_scale[c] = 0.5f + rng.uniform();
  for (std::size_t c : {7u, 38u, 71u, 126u}) channel_scale[c] *= 12.0f;  // outlier channels
  std::vector<float> x(tokens * dim);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t c = 0; c < dim; ++c) x[t * dim + c] = channel_scale[c] * rng.normal();
  return x;
}

// Min/max affine parameters for `bits`, rounded to fp16 as they would be stored.
qcodec::affine_params fit(const float* x, std::size_t n, unsigned bits) {
  const qcodec::min_max range = qcodec::simd::kernels().reductions.minmax(x, n);
  const float scale = (range.max - range.min) / static_cast<float>((1u << bits) - 1);
  return {qcodec::half(scale).to_float(), qcodec::half(range.min).to_float()};
}

struct scheme {
  std::string name;
  double bits_per_value;
  std::function<void(const std::vector<float>&)> encode;  // into the scheme's own storage
  std::function<void(std::vector<float>&)> decode;        // back to floats
};

double seconds_per_call(const std::function<void()>& f) {
  using clock = std::chrono::steady_clock;
  int calls = 0;
  const auto start = clock::now();
  do {
    f();
    ++calls;
  } while (clock::now() - start < std::chrono::milliseconds(150));
  return std::chrono::duration<double>(clock::now() - start).count() / calls;
}

}  // namespace

int main() {
  const auto& k = qcodec::simd::kernels();
  const std::vector<float> x = make_keys();
  const std::size_t n = x.size();

  std::vector<std::uint8_t> codes(n);  // large enough for any width
  std::vector<qcodec::affine_params> params(n / channel_group + tokens);
  std::vector<std::uint16_t> halves(n);
  std::vector<std::uint8_t> signs((dim + 7) / 8);
  qcodec::fill_sign_bits(seed, dim, signs.data());
  std::vector<float> rotated(n);

  std::vector<scheme> schemes;
  schemes.push_back(
      {"fp16", 16.0,
       [&](const std::vector<float>& in) { k.convert.f32_to_f16(in.data(), n, halves.data()); },
       [&](std::vector<float>& out) { k.convert.f16_to_f32(halves.data(), n, out.data()); }});

  for (unsigned bits : {8u, 4u, 3u, 2u}) {
    const std::size_t row_bytes = (dim * bits + 7) / 8;
    const double per_token_bits = bits + 32.0 / dim;
    for (bool rotate : {false, true}) {
      schemes.push_back(
          {"int" + std::to_string(bits) + " per-token" + (rotate ? "+RHT" : ""), per_token_bits,
           [&, bits, row_bytes, rotate](const std::vector<float>& in) {
             const float* src = in.data();
             if (rotate) {
               std::copy(in.begin(), in.end(), rotated.begin());
               for (std::size_t t = 0; t < tokens; ++t)
                 k.hadamard.randomized_hadamard(rotated.data() + t * dim, dim, signs.data());
               src = rotated.data();
             }
             for (std::size_t t = 0; t < tokens; ++t) {
               params[t] = fit(src + t * dim, dim, bits);
               k.affine.quantize_pack(src + t * dim, dim, params[t], bits,
                                      codes.data() + t * row_bytes);
             }
           },
           [&, bits, row_bytes, rotate](std::vector<float>& out) {
             for (std::size_t t = 0; t < tokens; ++t) {
               k.affine.unpack_dequantize(codes.data() + t * row_bytes, dim, bits, params[t],
                                          out.data() + t * dim);
               if (rotate)
                 k.hadamard.randomized_hadamard_inverse(out.data() + t * dim, dim, signs.data());
             }
           }});
    }
    if (bits > 4) continue;
    // Per channel: each group of 32 tokens x 1 channel is gathered, fitted and coded on its own.
    const std::size_t group_bytes = (channel_group * bits + 7) / 8;
    schemes.push_back({"int" + std::to_string(bits) + " per-channel", bits + 32.0 / channel_group,
                       [&, bits, group_bytes](const std::vector<float>& in) {
                         float column[channel_group];
                         std::size_t g = 0;
                         for (std::size_t t0 = 0; t0 < tokens; t0 += channel_group)
                           for (std::size_t c = 0; c < dim; ++c, ++g) {
                             for (std::size_t i = 0; i < channel_group; ++i)
                               column[i] = in[(t0 + i) * dim + c];
                             params[g] = fit(column, channel_group, bits);
                             k.affine.quantize_pack(column, channel_group, params[g], bits,
                                                    codes.data() + g * group_bytes);
                           }
                       },
                       [&, bits, group_bytes](std::vector<float>& out) {
                         float column[channel_group];
                         std::size_t g = 0;
                         for (std::size_t t0 = 0; t0 < tokens; t0 += channel_group)
                           for (std::size_t c = 0; c < dim; ++c, ++g) {
                             k.affine.unpack_dequantize(codes.data() + g * group_bytes,
                                                        channel_group, bits, params[g], column);
                             for (std::size_t i = 0; i < channel_group; ++i)
                               out[(t0 + i) * dim + c] = column[i];
                           }
                       }});
  }

  std::printf(
      "qcodec demo: %zu tokens x %zu channels of seeded transformer-like keys "
      "(4 outlier channels), kernels: %s\n\n",
      tokens, dim, k.arch);
  std::printf("%-22s %10s %12s %9s %12s %12s %12s\n", "scheme", "bits/value", "rel. MSE", "SNR dB",
              "max |err|", "enc GB/s", "dec GB/s");
  const double energy = k.reductions.sum_squares(x.data(), n);
  std::vector<float> y(n);
  for (const scheme& s : schemes) {
    s.encode(x);
    s.decode(y);
    double err = 0.0, max_err = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const double e = double{y[i]} - x[i];
      err += e * e;
      max_err = std::max(max_err, std::fabs(e));
    }
    const double rel_mse = err / energy;
    const double gb = static_cast<double>(n * sizeof(float)) / 1e9;
    const double enc = gb / seconds_per_call([&] { s.encode(x); });
    const double dec = gb / seconds_per_call([&] { s.decode(y); });
    std::printf("%-22s %10.3f %12.3e %9.2f %12.4f %12.2f %12.2f\n", s.name.c_str(),
                s.bits_per_value, rel_mse, -10.0 * std::log10(rel_mse), max_err, enc, dec);
  }
  std::printf(
      "\nbits/value counts every stored bit: codes plus one fp16 scale and offset per "
      "group (per token: 128 values; per channel: 32 tokens).\n");
  return 0;
}
