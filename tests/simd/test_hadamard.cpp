// The Hadamard transforms' mathematics, checked for the scalar oracle and for the dispatched
// kernels of this CPU (bit-for-bit agreement between them is the parity tests' job).
#include <qcodec/core/rng.hpp>
#include <qcodec/simd/dispatch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../support/catch.hpp"

namespace simd = qcodec::simd;

namespace {

constexpr double eps = std::numeric_limits<float>::epsilon();

struct target {
  const char* name;
  simd::hadamard_kernels k;
};

std::vector<target> targets() {
  return {{"scalar", simd::make_kernel_table<simd::scalar>().hadamard},
          {simd::kernels().arch, simd::kernels().hadamard}};
}

std::vector<float> normal_vector(std::size_t n, std::uint64_t seed) {
  qcodec::rng gen(seed);
  std::vector<float> x(n);
  for (float& v : x) v = gen.normal();
  return x;
}

std::vector<std::uint8_t> sign_bits(std::size_t n, std::uint64_t seed) {
  std::vector<std::uint8_t> bits((n + 7) / 8);
  qcodec::fill_sign_bits(seed, n, bits.data());
  return bits;
}

bool negated(const std::vector<std::uint8_t>& bits, std::size_t i) {
  return ((bits[i / 8] >> (i % 8)) & 1u) != 0;
}

// y = H_n x / sqrt(n) in double through the explicit Sylvester matrix, (H_n)_ij =
// (-1)^popcount(i & j), with x_j negated first where `pre` has bit j set and y_i negated after
// where `post` has bit i set.
std::vector<double> matrix_product(const std::vector<float>& x,
                                   const std::vector<std::uint8_t>* pre,
                                   const std::vector<std::uint8_t>* post) {
  const std::size_t n = x.size();
  std::vector<double> y(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (std::size_t j = 0; j < n; ++j) {
      double v = x[j];
      if (pre != nullptr && negated(*pre, j)) v = -v;
      s += (std::popcount(i & j) % 2) ? -v : v;
    }
    s /= std::sqrt(static_cast<double>(n));
    y[i] = (post != nullptr && negated(*post, i)) ? -s : s;
  }
  return y;
}

// Each output is a +-sum of the n inputs formed by log2(n) rounded butterfly levels and one
// rounded scale: |error| <= (log2 n + 1) * eps * sum|x_j| / sqrt(n) (first order, +1% slack).
double output_bound(const std::vector<float>& x) {
  double l1 = 0.0;
  for (float v : x) l1 += std::fabs(v);
  const double n = static_cast<double>(x.size());
  return 1.01 * (std::log2(n) + 1.0) * eps * l1 / std::sqrt(n) + 1e-30;
}

double l2_norm(const std::vector<float>& x) {
  double s = 0.0;
  for (float v : x) s += double{v} * v;
  return std::sqrt(s);
}

}  // namespace

TEST_CASE("the transforms equal the explicit Sylvester matrix product", "[hadamard]") {
  for (const target& t : targets()) {
    for (std::size_t n = 1; n <= 256; n *= 2) {
      INFO(t.name << " n=" << n);
      const std::vector<float> x = normal_vector(n, n);
      const std::vector<std::uint8_t> bits = sign_bits(n, 1000 + n);
      const double tol = output_bound(x);

      std::vector<float> y = x;
      t.k.fwht(y.data(), n);
      std::vector<double> want = matrix_product(x, nullptr, nullptr);
      for (std::size_t i = 0; i < n; ++i) REQUIRE(std::fabs(y[i] - want[i]) <= tol);

      y = x;
      t.k.randomized_hadamard(y.data(), n, bits.data());
      want = matrix_product(x, &bits, nullptr);
      for (std::size_t i = 0; i < n; ++i) REQUIRE(std::fabs(y[i] - want[i]) <= tol);

      y = x;
      t.k.randomized_hadamard_inverse(y.data(), n, bits.data());
      want = matrix_product(x, nullptr, &bits);
      for (std::size_t i = 0; i < n; ++i) REQUIRE(std::fabs(y[i] - want[i]) <= tol);
    }
  }
}

TEST_CASE("known small transforms", "[hadamard]") {
  const float r2 = qcodec::hadamard_scale[1];
  CHECK(r2 == static_cast<float>(1.0 / std::sqrt(2.0)));
  for (const target& t : targets()) {
    INFO(t.name);
    float one[1] = {-3.5f};
    t.k.fwht(one, 1);
    CHECK(one[0] == -3.5f);

    float two[2] = {3.0f, 1.0f};  // (a + b, a - b) / sqrt(2)
    t.k.fwht(two, 2);
    CHECK(two[0] == 4.0f * r2);
    CHECK(two[1] == 2.0f * r2);
    CHECK(two[0] == Approx(2.8284271247));

    // A unit vector maps to its column of H_4 / 2.
    float four[4] = {0.0f, 0.0f, 1.0f, 0.0f};
    t.k.fwht(four, 4);
    CHECK(four[0] == 0.5f);
    CHECK(four[1] == 0.5f);
    CHECK(four[2] == -0.5f);
    CHECK(four[3] == -0.5f);

    // Sign bit 2 set: D negates x_2 first, so the column comes out negated.
    const std::uint8_t bit2 = 0x04;
    float rfour[4] = {0.0f, 0.0f, 1.0f, 0.0f};
    t.k.randomized_hadamard(rfour, 4, &bit2);
    CHECK(rfour[0] == -0.5f);
    CHECK(rfour[1] == -0.5f);
    CHECK(rfour[2] == 0.5f);
    CHECK(rfour[3] == 0.5f);

    // The all-ones vector concentrates into coordinate 0: sqrt(n) * e_0.
    std::vector<float> ones(1024, 1.0f);
    t.k.fwht(ones.data(), ones.size());
    CHECK(ones[0] == 32.0f);
    for (std::size_t i = 1; i < ones.size(); ++i) REQUIRE(ones[i] == 0.0f);
  }
}

TEST_CASE("the transforms are orthonormal and invert each other", "[hadamard]") {
  for (const target& t : targets()) {
    for (std::size_t n = 1; n <= qcodec::hadamard_max_length; n *= 2) {
      INFO(t.name << " n=" << n);
      const std::vector<float> x = normal_vector(n, 77 + n);
      const std::vector<std::uint8_t> bits = sign_bits(n, 5 + n);
      const double norm = l2_norm(x);
      // Each of the log2(n) + 1 rounding steps of one transform adds an error vector of l2 norm
      // at most eps times the (normalized) l2 norm, which every step preserves.
      const double one_way = 1.01 * (std::log2(static_cast<double>(n)) + 1.0) * eps * norm;

      std::vector<float> y = x;
      t.k.randomized_hadamard(y.data(), n, bits.data());
      REQUIRE(std::fabs(l2_norm(y) - norm) <= one_way);
      t.k.randomized_hadamard_inverse(y.data(), n, bits.data());
      double err = 0.0;
      for (std::size_t i = 0; i < n; ++i) err += (double{y[i]} - x[i]) * (double{y[i]} - x[i]);
      REQUIRE(std::sqrt(err) <= 2.0 * one_way);

      // H / sqrt(n) is its own inverse.
      y = x;
      t.k.fwht(y.data(), n);
      REQUIRE(std::fabs(l2_norm(y) - norm) <= one_way);
      t.k.fwht(y.data(), n);
      err = 0.0;
      for (std::size_t i = 0; i < n; ++i) err += (double{y[i]} - x[i]) * (double{y[i]} - x[i]);
      REQUIRE(std::sqrt(err) <= 2.0 * one_way);
    }
  }
}

TEST_CASE("the transforms handle the empty range", "[hadamard]") {
  for (const target& t : targets()) {
    float canary = 42.0f;
    const std::uint8_t bits = 0xFF;
    t.k.fwht(&canary, 0);
    t.k.randomized_hadamard(&canary, 0, &bits);
    t.k.randomized_hadamard_inverse(&canary, 0, &bits);
    CHECK(canary == 42.0f);
  }
}

TEST_CASE("different seeds give different rotations", "[hadamard]") {
  for (const target& t : targets()) {
    INFO(t.name);
    const std::size_t n = 128;
    const std::vector<float> x = normal_vector(n, 9);
    const std::vector<std::uint8_t> a = sign_bits(n, 1), b = sign_bits(n, 2);
    REQUIRE(a != b);
    std::vector<float> ya = x, yb = x, ya2 = x;
    t.k.randomized_hadamard(ya.data(), n, a.data());
    t.k.randomized_hadamard(yb.data(), n, b.data());
    t.k.randomized_hadamard(ya2.data(), n, a.data());
    CHECK(ya == ya2);  // same seed, same rotation
    // Different rotations of the same vector: far apart, not merely rounded differently.
    double diff = 0.0;
    for (std::size_t i = 0; i < n; ++i) diff += (double{ya[i]} - yb[i]) * (double{ya[i]} - yb[i]);
    CHECK(std::sqrt(diff) > 0.5 * l2_norm(x));
    // A rotation spreads a spike: e_0 becomes +-1/sqrt(n) in every coordinate, signs from D.
    std::vector<float> spike(n, 0.0f);
    spike[0] = 1.0f;
    t.k.randomized_hadamard(spike.data(), n, a.data());
    const float s = qcodec::hadamard_scale[7];
    for (std::size_t i = 0; i < n; ++i) REQUIRE(spike[i] == (negated(a, 0) ? -s : s));
  }
}
