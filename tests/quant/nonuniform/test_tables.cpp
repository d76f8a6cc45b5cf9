// Code tables (quant/nonuniform/tables.hpp): NF4's published values and their construction from
// normal quantiles, IQ4_NL / E2M1 tables, the 8-bit dynamic map's construction.
#include <qcodec/quant/nonuniform/tables.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../../support/catch.hpp"

namespace {
// inverse of the standard normal CDF by bisection on erfc (test oracle, not fast)
double norm_ppf(double p) {
  double lo = -40, hi = 40;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}
}  // namespace

TEST_CASE("tables: NF4 holds the 16 QLoRA values exactly", "[nonuniform][tables]") {
  const double published[16] = {-1.0,
                                -0.6961928009986877,
                                -0.5250730514526367,
                                -0.39491748809814453,
                                -0.28444138169288635,
                                -0.18477343022823334,
                                -0.09105003625154495,
                                0.0,
                                0.07958029955625534,
                                0.16093020141124725,
                                0.24611230194568634,
                                0.33791524171829224,
                                0.44070982933044434,
                                0.5626170039176941,
                                0.7229568362236023,
                                1.0};
  for (int k = 0; k < 16; ++k) {
    // each published value is a float32 printed with 17 digits: it converts back exactly
    CHECK(static_cast<double>(qcodec::nf4_table[static_cast<std::size_t>(k)]) == published[k]);
    CHECK(static_cast<double>(static_cast<float>(published[k])) == published[k]);
  }
}

TEST_CASE("tables: NF4 is QLoRA's construction from normal quantiles", "[nonuniform][tables]") {
  // bitsandbytes create_normal_map(offset = 0.9677083): 8 positive quantiles at
  // linspace(offset, 0.5, 9)[:-1], 7 negative at linspace(offset, 0.5, 8)[:-1], and 0; divided
  // by the largest. torch evaluates the probabilities in float32: agreement to ~1e-6.
  const double offset = 0.9677083;
  std::vector<double> v{0.0};
  for (int i = 0; i < 8; ++i) v.push_back(norm_ppf(offset + (0.5 - offset) * i / 8.0));
  for (int i = 0; i < 7; ++i) v.push_back(-norm_ppf(offset + (0.5 - offset) * i / 7.0));
  std::sort(v.begin(), v.end());
  const double m = v.back();
  for (std::size_t k = 0; k < 16; ++k) CHECK(std::fabs(v[k] / m - qcodec::nf4_table[k]) < 2e-6);
}

TEST_CASE("tables: IQ4_NL and E2M1 tables", "[nonuniform][tables]") {
  CHECK(qcodec::iq4nl_table[0] == -1.0f);
  CHECK(qcodec::iq4nl_table[15] == 113.0f / 127.0f);
  CHECK(qcodec::iq4nl_table[8] == 1.0f / 127.0f);
  CHECK(std::is_sorted(qcodec::iq4nl_table.begin(), qcodec::iq4nl_table.end()));
  const float e2m1[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  for (std::size_t k = 0; k < 8; ++k) {
    CHECK(qcodec::e2m1_table[8 + k] == e2m1[k] / 6.0f);
    CHECK(qcodec::e2m1_table[7 - k] == -e2m1[k] / 6.0f);
  }
}

TEST_CASE("tables: the 8-bit dynamic map", "[nonuniform][tables]") {
  constexpr auto t = qcodec::dynamic_map_8bit();
  CHECK(std::is_sorted(t.begin(), t.end()));
  CHECK(t[255] == 1.0f);
  CHECK(t[0] == static_cast<float>(-(0.1 + 63.5 * 0.9 / 64.0)));
  CHECK(t[0] == -0.99296875f);
  const auto zero = std::find(t.begin(), t.end(), 0.0f);
  REQUIRE(zero != t.end());
  CHECK(zero - t.begin() == 127);  // 127 negative values, then 0, 127 positive, then 1
  CHECK(t[128] == static_cast<float>(0.55e-6));  // smallest magnitude: 10^-6 * mean(0.1, 1)
  CHECK(t[127 - 1] == -t[128]);
  // the top decade: the 64 midpoints of linspace(0.1, 1, 65)
  for (int j = 0; j < 64; ++j)
    CHECK(t[static_cast<std::size_t>(191 + j)] == static_cast<float>(0.1 + (j + 0.5) * 0.9 / 64.0));
  // decade i holds 2^i values per sign
  for (int i = 0; i < 7; ++i) {
    const double lo = std::pow(10.0, i - 6) * 0.1, hi = std::pow(10.0, i - 6);
    const auto n = std::count_if(t.begin(), t.end(), [&](float v) { return v > lo && v < hi; });
    const auto nn = std::count_if(t.begin(), t.end(), [&](float v) { return -v > lo && -v < hi; });
    CHECK(n == (1 << i));
    CHECK(nn == (1 << i));
  }
}
