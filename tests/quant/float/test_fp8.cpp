// FP8 E4M3 / E5M2 (quant/float/fp8.hpp): every bit pattern against the value its fields
// specify (computed here independently with ldexp), float -> fp8 against a brute-force search
// of the nearest value (ties to even) on random floats and on every midpoint, saturation,
// infinities and NaN.
#include <qcodec/quant/float/fp8.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "../../support/catch.hpp"

using qcodec::fp8_e4m3;
using qcodec::fp8_e5m2;
using qcodec::overflow_mode;

namespace {

// The OCP OFP8 definitions, written from the bit fields.
double spec_e4m3(unsigned b) {
  const unsigned s = b >> 7, e = (b >> 3) & 15u, m = b & 7u;
  if (e == 15 && m == 7) return std::numeric_limits<double>::quiet_NaN();
  const double v = e == 0 ? std::ldexp(m, -9) : std::ldexp(8 + m, static_cast<int>(e) - 10);
  return s ? -v : v;
}
double spec_e5m2(unsigned b) {
  const unsigned s = b >> 7, e = (b >> 2) & 31u, m = b & 3u;
  double v;
  if (e == 31) {
    v = m == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  } else {
    v = e == 0 ? std::ldexp(m, -16) : std::ldexp(4 + m, static_cast<int>(e) - 17);
  }
  return s ? -v : v;
}

template <class T>
double spec(unsigned b) {
  if constexpr (std::is_same_v<T, fp8_e4m3>) {
    return spec_e4m3(b);
  } else {
    return spec_e5m2(b);
  }
}

// Nearest finite value of the same sign as x, ties to the even code; x finite.
template <class T>
std::uint8_t brute_nearest(float x) {
  const unsigned sign = std::signbit(x) ? 0x80u : 0u;
  if (std::fabs(x) >= T::max_finite)  // saturation (also keeps huge |x| from tying in double)
    return static_cast<std::uint8_t>(sign | T::format::max_finite_bits);
  int best = -1;
  double best_d = 0.0;
  for (unsigned m = 0; m < 128; ++m) {
    const double v = spec<T>(sign | m);
    if (!std::isfinite(v)) continue;
    const double d = std::fabs(static_cast<double>(x) - v);
    if (best < 0 || d < best_d || (d == best_d && (m & 1u) == 0)) {
      best = static_cast<int>(m);
      best_d = d;
    }
  }
  return static_cast<std::uint8_t>(sign | static_cast<unsigned>(best));
}

template <class T>
std::vector<float> positive_finite_values() {
  std::vector<float> v;
  for (unsigned b = 0; b < 128; ++b)
    if (std::isfinite(spec<T>(b))) v.push_back(static_cast<float>(spec<T>(b)));
  return v;  // ascending: positive codes are ordered like their values
}

template <class T>
void check_all_patterns() {
  for (unsigned b = 0; b < 256; ++b) {
    const float got = T::from_bits(static_cast<std::uint8_t>(b)).to_float();
    const double want = spec<T>(b);
    INFO("bits " << b);
    if (std::isnan(want)) {
      CHECK(std::isnan(got));
    } else {
      CHECK(static_cast<double>(got) == want);
      CHECK(std::signbit(got) == ((b & 0x80u) != 0));
    }
    // the table decoder agrees
    float y = 0.0f;
    const auto byte = static_cast<std::uint8_t>(b);
    qcodec::fp8_to_float<T>(&byte, 1, &y);
    CHECK((std::isnan(want) ? std::isnan(y) : static_cast<double>(y) == want));
    // every non-NaN value converts back to its own pattern
    if (!std::isnan(want)) {
      CHECK(T(got, overflow_mode::no_saturate).bits == b);
      if (std::isfinite(want)) CHECK(T(got).bits == b);
    }
  }
}

template <class T>
void check_random_nearest() {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> expo(-30, 20);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  for (int i = 0; i < 200000; ++i) {
    float x = std::ldexp(mant(rng), expo(rng));
    if (rng() & 1u) x = -x;
    const std::uint8_t want = brute_nearest<T>(x);
    const std::uint8_t got = T(x).bits;
    if (got != want) FAIL_CHECK("x = " << x << " got " << int{got} << " want " << int{want});
  }
  // arbitrary bit patterns (every exponent, subnormals included)
  for (int i = 0; i < 200000; ++i) {
    const float x = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
    if (!std::isfinite(x)) continue;
    if (T(x).bits != brute_nearest<T>(x)) FAIL_CHECK("x = " << x);
  }
}

template <class T>
void check_midpoints() {
  const std::vector<float> v = positive_finite_values<T>();
  for (std::size_t k = 0; k + 1 < v.size(); ++k) {
    const float mid = (v[k] + v[k + 1]) / 2.0f;  // exact: both have few significant bits
    REQUIRE(static_cast<double>(mid) == (static_cast<double>(v[k]) + v[k + 1]) / 2.0);
    const auto lo = static_cast<std::uint8_t>(k), hi = static_cast<std::uint8_t>(k + 1);
    const std::uint8_t even = (lo & 1u) == 0 ? lo : hi;
    INFO("midpoint " << mid);
    CHECK(T(mid).bits == even);
    CHECK(T(-mid).bits == (even | 0x80u));
    CHECK(T(std::nextafter(mid, 0.0f)).bits == lo);
    CHECK(T(std::nextafter(mid, 1e9f)).bits == hi);
    CHECK(T(mid).bits == brute_nearest<T>(mid));
  }
}

}  // namespace

TEST_CASE("fp8: every E4M3 bit pattern decodes to the value its fields specify", "[float][fp8]") {
  check_all_patterns<fp8_e4m3>();
  CHECK(fp8_e4m3::from_bits(0x7E).to_float() == 448.0f);
  CHECK(fp8_e4m3::from_bits(0x01).to_float() == std::ldexp(1.0f, -9));
  CHECK(fp8_e4m3::from_bits(0x08).to_float() == std::ldexp(1.0f, -6));
}

TEST_CASE("fp8: every E5M2 bit pattern decodes to the value its fields specify", "[float][fp8]") {
  check_all_patterns<fp8_e5m2>();
  CHECK(fp8_e5m2::from_bits(0x7B).to_float() == 57344.0f);
  CHECK(std::isinf(fp8_e5m2::from_bits(0x7C).to_float()));
  CHECK(fp8_e5m2::from_bits(0x01).to_float() == std::ldexp(1.0f, -16));
}

TEST_CASE("fp8: float -> E4M3 is the nearest value, ties to even", "[float][fp8]") {
  check_random_nearest<fp8_e4m3>();
  check_midpoints<fp8_e4m3>();
}

TEST_CASE("fp8: float -> E5M2 is the nearest value, ties to even", "[float][fp8]") {
  check_random_nearest<fp8_e5m2>();
  check_midpoints<fp8_e5m2>();
}

TEST_CASE("fp8: E4M3 saturation, overflow threshold and NaN", "[float][fp8]") {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // 464 is the midpoint between 448 and the (missing) 480: it ties to the even 448
  CHECK(fp8_e4m3(464.0f).bits == 0x7E);
  CHECK(fp8_e4m3(464.0f, overflow_mode::no_saturate).bits == 0x7E);
  CHECK(fp8_e4m3(std::nextafter(464.0f, 1e9f)).bits == 0x7E);
  CHECK(fp8_e4m3(std::nextafter(464.0f, 1e9f), overflow_mode::no_saturate).bits == 0x7F);
  CHECK(fp8_e4m3(-1e6f, overflow_mode::no_saturate).bits == 0xFF);
  CHECK(fp8_e4m3(1e30f).bits == 0x7E);
  CHECK(fp8_e4m3(-1e30f).bits == 0xFE);
  CHECK(fp8_e4m3(inf).bits == 0x7E);
  CHECK(fp8_e4m3(-inf).bits == 0xFE);
  CHECK(fp8_e4m3(inf, overflow_mode::no_saturate).bits == 0x7F);
  CHECK(fp8_e4m3(nan).bits == 0x7F);
  CHECK(fp8_e4m3(-nan).bits == 0xFF);
  CHECK(fp8_e4m3(nan, overflow_mode::no_saturate).bits == 0x7F);
  CHECK(std::isnan(fp8_e4m3::from_bits(0xFF).to_float()));
  // underflow: below half the smallest subnormal 2^-9 goes to zero, sign kept; the half ties to 0
  CHECK(fp8_e4m3(std::ldexp(1.0f, -10)).bits == 0x00);
  CHECK(fp8_e4m3(std::nextafter(std::ldexp(1.0f, -10), 1.0f)).bits == 0x01);
  CHECK(fp8_e4m3(-1e-30f).bits == 0x80);
  CHECK(fp8_e4m3(-0.0f).bits == 0x80);
}

TEST_CASE("fp8: E5M2 saturation, infinities and NaN", "[float][fp8]") {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // 61440 is the midpoint between 57344 and 65536: the tie goes to the even 2^16 = overflow
  CHECK(fp8_e5m2(std::nextafter(61440.0f, 0.0f)).bits == 0x7B);
  CHECK(fp8_e5m2(std::nextafter(61440.0f, 0.0f), overflow_mode::no_saturate).bits == 0x7B);
  CHECK(fp8_e5m2(61440.0f).bits == 0x7B);
  CHECK(fp8_e5m2(61440.0f, overflow_mode::no_saturate).bits == 0x7C);
  CHECK(fp8_e5m2(-1e9f, overflow_mode::no_saturate).bits == 0xFC);
  CHECK(fp8_e5m2(inf).bits == 0x7B);
  CHECK(fp8_e5m2(-inf).bits == 0xFB);
  CHECK(fp8_e5m2(inf, overflow_mode::no_saturate).bits == 0x7C);
  CHECK(fp8_e5m2(-inf, overflow_mode::no_saturate).bits == 0xFC);
  const std::uint8_t qnan = fp8_e5m2(nan).bits;
  CHECK(std::isnan(fp8_e5m2::from_bits(qnan).to_float()));
  CHECK((qnan & 0x7Cu) == 0x7Cu);
  CHECK((fp8_e5m2(-nan).bits & 0x80u) != 0);
  CHECK(fp8_e5m2(std::ldexp(1.0f, -17)).bits == 0x00);
  CHECK(fp8_e5m2(std::ldexp(3.0f, -18)).bits == 0x01);
}

TEST_CASE("fp8: bulk conversion equals the scalar one", "[float][fp8]") {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 100.0f);
  std::vector<float> x(1001);
  for (float& v : x) v = nd(rng);
  std::vector<std::uint8_t> q(x.size());
  qcodec::float_to_fp8<fp8_e4m3>(x.data(), x.size(), q.data());
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(q[i] == fp8_e4m3(x[i]).bits);
}

namespace {
template <class F>
void check_fast_equals_exact() {
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> expo(-40, 40);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  std::vector<float> xs;
  for (int i = 0; i < 300000; ++i) {
    const float v = i % 3 ? std::ldexp(mant(rng), expo(rng)) : std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
    xs.push_back(rng() & 1u ? -v : v);
  }
  // every value, midpoint and neighbour of the format
  for (unsigned b = 0; b < (1u << F::total_bits); ++b) {
    const float v = qcodec::detail::minifloat_to_float<F>(static_cast<std::uint8_t>(b));
    const float w = qcodec::detail::minifloat_to_float<F>(static_cast<std::uint8_t>(b + 1));
    xs.insert(xs.end(), {v, std::nextafter(v, 0.0f), std::nextafter(v, 1e30f), (v + w) / 2,
                         std::nextafter((v + w) / 2, 0.0f), std::nextafter((v + w) / 2, 1e30f)});
  }
  const float inf = std::numeric_limits<float>::infinity();
  xs.insert(xs.end(), {inf, -inf, std::numeric_limits<float>::quiet_NaN(), 0.0f, -0.0f,
                       std::numeric_limits<float>::denorm_min(), 464.0f, 61440.0f, 1e-45f});
  std::size_t mismatches = 0;
  for (const float x : xs)
    for (const auto mode : {overflow_mode::saturate, overflow_mode::no_saturate}) {
      const std::uint8_t exact = qcodec::detail::float_to_minifloat<F>(x, mode);
      const std::uint8_t fast = qcodec::detail::float_to_minifloat_fast<F>(x, mode);
      if (exact != fast && ++mismatches < 10)
        FAIL_CHECK("x = " << x << " exact " << int{exact} << " fast " << int{fast});
    }
  CHECK(mismatches == 0);
  CHECK(xs.size() > 300000);
}
}  // namespace

TEST_CASE("fp8: the branch-free conversion returns the exact conversion's bits", "[float][fp8]") {
  check_fast_equals_exact<fp8_e4m3::format>();
  check_fast_equals_exact<fp8_e5m2::format>();
  check_fast_equals_exact<qcodec::detail::minifloat_format<2, 1, 1, qcodec::minifloat_kind::finite>>();
  check_fast_equals_exact<qcodec::detail::minifloat_format<2, 3, 1, qcodec::minifloat_kind::finite>>();  // FP6 E2M3
  check_fast_equals_exact<qcodec::detail::minifloat_format<3, 2, 3, qcodec::minifloat_kind::finite>>();  // FP6 E3M2
}
