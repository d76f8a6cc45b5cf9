#include <qcodec/core/rng.hpp>
#include <qcodec/core/rounding.hpp>

#include <cfenv>
#include <cmath>
#include <limits>
#include <vector>

#include "../support/catch.hpp"

// The rounding encoders use where std::nearbyint is a libm call (x86-64 builds without SSE4.1):
// equal to std::nearbyint on |v| <= 2^22 rounding to nearest, upward and downward, ties and both
// signs of zero included (compared as values: encoders convert the result to an integer), and
// beyond that a result of v's sign and magnitude at least 2^22, which encoders then clamp.
TEST_CASE("rounding by addition equals std::nearbyint on |v| <= 2^22", "[rounding]") {
  struct restore_mode {
    ~restore_mode() { std::fesetround(FE_TONEAREST); }
  } restore;
  qcodec::rng g(17);
  std::vector<float> v = {0.0f,        -0.0f,      0.5f,        -0.5f,       1.5f,
                          -1.5f,       2.5f,       -2.5f,       0.49999997f, 4194303.5f,
                          -4194303.5f, 4194304.0f, -4194304.0f, 1e-30f,      -1e-30f};
  for (int i = 0; i < 200000; ++i) {
    const float k = static_cast<float>(g.uniform_below(1u << 23)) - 4194304.0f;
    v.push_back(k + 0.5f);                                                         // ties
    v.push_back(k + static_cast<float>(g.uniform_below(1u << 24)) / 16777216.0f);  // anything
    v.push_back((static_cast<float>(g.uniform_below(1u << 24)) - 8388608.0f) / 65536.0f);
  }
  const float inf = std::numeric_limits<float>::infinity();
  for (const int mode : {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD}) {
    std::fesetround(mode);
    INFO("rounding mode " << mode);
    for (const float x : v) {
      if (std::fabs(x) > 4194304.0f) continue;
      INFO(x);
      REQUIRE(qcodec::detail::nearbyint_by_addition(x) == std::nearbyint(x));
    }
    for (const float x : {4194305.0f, 6e6f, 8388607.0f, 8388609.0f, 1.3e7f, 3e9f, 1e30f, inf}) {
      INFO(x);
      REQUIRE(qcodec::detail::nearbyint_by_addition(x) >= 4194304.0f);
      REQUIRE(qcodec::detail::nearbyint_by_addition(-x) <= -4194304.0f);
    }
    REQUIRE(std::isnan(qcodec::detail::nearbyint_by_addition(std::nanf(""))));
  }
}
