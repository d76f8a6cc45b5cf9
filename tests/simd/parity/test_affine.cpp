// Affine quantize/dequantize kernels against their oracles, for every bit width 1..8.
//
// Buffers are allocated with the exact size a call may touch (plus the misalignment offset in
// front), so AddressSanitizer reports any read or write past the range; the bytes in front and
// every output byte are compared with the oracle's, which catches writes before the range.
#include <qcodec/simd/affine.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "../../support/same_bits.hpp"
#include "parity.hpp"

namespace {

constexpr float inf = std::numeric_limits<float>::infinity();

// Parameters covering the awkward cases: scale 0, negative offsets, negative scales.
qcodec::affine_params random_params(std::mt19937& rng, std::size_t variant) {
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  switch (variant % 5) {
    case 0:
      return {0.0f, u(rng) * 4.0f - 2.0f};
    case 1:
      return {0.01f + u(rng), -1.0f - 3.0f * u(rng)};
    case 2:
      return {-(0.01f + u(rng)), 1.0f + u(rng)};
    case 3:
      return {1e-3f * (1.0f + u(rng)), 0.0f};
    default:
      return {0.05f + 0.5f * u(rng), u(rng) - 0.5f};
  }
}

// Values spanning the code range and well beyond it on both sides, with NaN, infinities and
// huge magnitudes sprinkled in so that clamping is exercised at every position mod W.
parity::exact<float> quantizer_input(std::size_t n, std::size_t off, std::mt19937& rng,
                                     qcodec::affine_params p, unsigned bits) {
  parity::exact<float> x(n, off, 0.0f);
  const float range = p.scale * static_cast<float>((1u << bits) - 1);
  std::uniform_real_distribution<float> u(-0.5f, 1.5f);
  std::uniform_int_distribution<int> pick(0, 15);
  for (std::size_t i = 0; i < n; ++i) {
    switch (pick(rng)) {
      case 0:
        x.data[i] = std::numeric_limits<float>::quiet_NaN();
        break;
      case 1:
        x.data[i] = inf;
        break;
      case 2:
        x.data[i] = -inf;
        break;
      case 3:
        x.data[i] = (i % 2 ? 1e30f : -1e30f);
        break;
      default:
        x.data[i] = p.offset + range * u(rng) + (p.scale == 0.0f ? u(rng) : 0.0f);
    }
  }
  return x;
}

std::vector<std::uint8_t> random_bytes(std::size_t n, std::mt19937& rng) {
  std::vector<std::uint8_t> b(n);
  for (auto& v : b) v = static_cast<std::uint8_t>(rng());
  return b;
}

}  // namespace

TEST_CASE("quantize_pack matches the oracle byte for byte", "[parity][affine]") {
  const auto& k = parity::under_test().affine;
  for (unsigned bits = 1; bits <= 8; ++bits) {
    for (std::size_t n : parity::lengths()) {
      for (std::size_t off : parity::offsets) {
        std::mt19937 rng(static_cast<std::uint32_t>(bits * 100003 + n * 7 + off));
        const qcodec::affine_params p = random_params(rng, n + off);
        const parity::exact<float> x = quantizer_input(n, off, rng, p, bits);
        const std::size_t bytes = qcodec::detail::affine_code_bytes(n, bits);
        parity::exact<std::uint8_t> want(bytes, off, 0xA5), got(bytes, off, 0xA5);
        qcodec::ref::quantize_pack(x.data, n, p, bits, want.data);
        k.quantize_pack(x.data, n, p, bits, got.data);
        INFO("bits=" << bits << " n=" << n << " offset=" << off << " scale=" << p.scale
                     << " offset=" << p.offset);
        REQUIRE(want.storage == got.storage);
      }
    }
  }
}

TEST_CASE("unpack_dequantize and decode_axpy match the oracle bit for bit", "[parity][affine]") {
  const auto& k = parity::under_test().affine;
  for (unsigned bits = 1; bits <= 8; ++bits) {
    for (std::size_t n : parity::lengths()) {
      for (std::size_t off : parity::offsets) {
        std::mt19937 rng(static_cast<std::uint32_t>(bits * 7919 + n * 13 + off));
        const qcodec::affine_params p = random_params(rng, n + off);
        const std::size_t bytes = qcodec::detail::affine_code_bytes(n, bits);
        // Random bytes: the unused high bits of the last byte are garbage the kernels ignore.
        const std::vector<std::uint8_t> codes = random_bytes(bytes, rng);
        parity::exact<std::uint8_t> in(bytes, off, 0);
        if (bytes) std::memcpy(in.data, codes.data(), bytes);
        INFO("bits=" << bits << " n=" << n << " offset=" << off << " scale=" << p.scale
                     << " offset=" << p.offset);

        parity::exact<float> want(n, off, -7.0f), got(n, off, -7.0f);
        qcodec::ref::unpack_dequantize(in.data, n, bits, p, want.data);
        k.unpack_dequantize(in.data, n, bits, p, got.data);
        REQUIRE(same_bits(want.storage, got.storage));

        const float a = std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng);
        parity::exact<float> y_want(n, (off + 1) % 4, 0.0f);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        for (float& v : y_want.storage) v = normal(rng);
        parity::exact<float> y_got = y_want;
        y_got.data = y_got.storage.data() + (off + 1) % 4;
        qcodec::ref::decode_axpy(in.data, n, bits, p, a, y_want.data);
        k.decode_axpy(in.data, n, bits, p, a, y_got.data);
        REQUIRE(same_bits(y_want.storage, y_got.storage));
      }
    }
  }
}

TEST_CASE("decode_dot matches the oracle within summation rounding", "[parity][affine]") {
  const auto& k = parity::under_test().affine;
  for (unsigned bits = 1; bits <= 8; ++bits) {
    for (std::size_t n : parity::lengths()) {
      for (std::size_t off : parity::offsets) {
        std::mt19937 rng(static_cast<std::uint32_t>(bits * 104729 + n * 17 + off));
        const qcodec::affine_params p = random_params(rng, n + off);
        const std::size_t bytes = qcodec::detail::affine_code_bytes(n, bits);
        const std::vector<std::uint8_t> codes = random_bytes(bytes, rng);
        parity::exact<std::uint8_t> in(bytes, off, 0);
        if (bytes) std::memcpy(in.data, codes.data(), bytes);
        parity::exact<float> v(n, 3 - off, 0.0f);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        for (std::size_t i = 0; i < n; ++i) v.data[i] = normal(rng);

        // Two summation orders of the same n products differ by at most
        // (n + 1) * eps * sum |d_i v_i| (the oracle's double sum is the tighter of the two).
        std::vector<float> d(n);
        qcodec::ref::unpack_dequantize(in.data, n, bits, p, d.data());
        double abs_sum = 0.0;
        for (std::size_t i = 0; i < n; ++i) abs_sum += std::fabs(double{d[i]} * v.data[i]);
        const double tol =
            static_cast<double>(n + 1) * std::numeric_limits<float>::epsilon() * abs_sum +
            std::numeric_limits<float>::min();

        const float want = qcodec::ref::decode_dot(in.data, n, bits, p, v.data);
        const float got = k.decode_dot(in.data, n, bits, p, v.data);
        INFO("bits=" << bits << " n=" << n << " offset=" << off << " want=" << want
                     << " got=" << got);
        REQUIRE(std::fabs(double{got} - double{want}) <= tol);
      }
    }
  }
}

// Appended: quantize_codes, parameters per element (each from random_params, so scale 0 and
// negative scales too), values across and beyond each element's code range with NaN, infinities
// and huge magnitudes; every length and misalignment, byte for byte.
TEST_CASE("quantize_codes matches the oracle byte for byte", "[parity][affine]") {
  const auto& k = parity::under_test().affine;
  for (unsigned bits = 1; bits <= 8; ++bits) {
    for (std::size_t n : parity::lengths()) {
      for (std::size_t off : parity::offsets) {
        std::mt19937 rng(static_cast<std::uint32_t>(bits * 7919 + n * 13 + off));
        parity::exact<float> x(n, off, 0.0f), inv(n, off, 0.0f), bias(n, off, 0.0f);
        for (std::size_t i = 0; i < n; ++i) {
          const qcodec::affine_params p = random_params(rng, i + n);
          inv.data[i] = p.scale != 0.0f ? 1.0f / p.scale : 0.0f;
          bias.data[i] = -p.offset * inv.data[i];
          x.data[i] = quantizer_input(1, 0, rng, p, bits).data[0];
        }
        parity::exact<std::uint8_t> want(n, off, 0xA5), got(n, off, 0xA5);
        qcodec::ref::quantize_codes(x.data, inv.data, bias.data, n, bits, want.data);
        k.quantize_codes(x.data, inv.data, bias.data, n, bits, got.data);
        INFO("bits=" << bits << " n=" << n << " offset=" << off);
        REQUIRE(want.storage == got.storage);
      }
    }
  }
}
