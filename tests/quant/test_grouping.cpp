// quant/grouping.hpp: every policy composes with every granularity. The result is compared with
// a naive reference that gathers each parameter group by index (params and symbols bit for bit,
// decode bit for bit), and the round trip is checked against each policy's own bound. Shapes
// include a per_group tail (cols % G != 0), padded rows, one row, one column and empty matrices.
#include <qcodec/quant/grouping.hpp>
#include <qcodec/quant/uniform/binary.hpp>
#include <qcodec/quant/uniform/scale_search.hpp>
#include <qcodec/quant/uniform/ternary.hpp>
#include <qcodec/quant/uniform/uniform.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "../support/catch.hpp"

namespace {

using qcodec::per_channel;
using qcodec::per_group;
using qcodec::per_tensor;
using qcodec::per_token;

// Element indices (r * cols + c) of each parameter set, in the documented order.
template <class G>
std::vector<std::vector<std::size_t>> index_groups(std::size_t rows, std::size_t cols) {
  std::vector<std::vector<std::size_t>> groups;
  if (rows * cols == 0) return groups;
  if constexpr (std::is_same_v<G, per_tensor>) {
    groups.emplace_back();
    for (std::size_t i = 0; i < rows * cols; ++i) groups.back().push_back(i);
  } else if constexpr (std::is_same_v<G, per_token>) {
    for (std::size_t r = 0; r < rows; ++r) {
      groups.emplace_back();
      for (std::size_t c = 0; c < cols; ++c) groups.back().push_back(r * cols + c);
    }
  } else if constexpr (std::is_same_v<G, per_channel>) {
    for (std::size_t c = 0; c < cols; ++c) {
      groups.emplace_back();
      for (std::size_t r = 0; r < rows; ++r) groups.back().push_back(r * cols + c);
    }
  } else {
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c0 = 0; c0 < cols; c0 += G::group_size) {
        groups.emplace_back();
        for (std::size_t c = c0; c < cols && c < c0 + G::group_size; ++c)
          groups.back().push_back(r * cols + c);
      }
  }
  return groups;
}

template <class T>
bool same_bytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// The bound each policy promises for an element x of a group with parameters p (y its decode).
template <class Q>
void check_bound(const Q&, const typename Q::params_type& p, float x, float y, float amax) {
  const double err = std::fabs(double{x} - y);
  const double slack = 4.0 * std::numeric_limits<float>::epsilon() * amax;
  if constexpr (std::is_same_v<Q, qcodec::ternary>) {
    if (std::fabs(x) <= 1.5f * p.scale) REQUIRE(err <= 0.5 * p.scale + slack);
  } else if constexpr (std::is_same_v<Q, qcodec::binary>) {
    REQUIRE(std::fabs(y) == p.scale);
  } else {
    // uniform range fits: every element is inside the levels' range. mse_fitted may clip, so
    // only elements inside the fitted range are bounded. Stochastic rounding: within a step.
    const qcodec::affine_params a = Q::to_affine(p);
    const double lo = a.offset + double{a.scale} * Q::q_min,
                 hi = a.offset + double{a.scale} * Q::q_max;
    const double step = Q::rounding_type::is_stochastic ? a.scale : 0.5 * a.scale;
    if (x >= lo - slack && x <= hi + slack) REQUIRE(err <= step + slack);
  }
}

template <class Q, class G>
void check(const Q& q_in, std::size_t rows, std::size_t cols, std::size_t stride,
           std::uint64_t seed) {
  INFO("granularity " << G::name() << " rows " << rows << " cols " << cols << " stride " << stride);
  qcodec::rng g(seed);
  std::vector<float> storage(rows * stride + 1, std::numeric_limits<float>::quiet_NaN());
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c)
      storage[r * stride + c] = g.normal() * (1.0f + static_cast<float>(c % 5));  // channel scales
  const qcodec::matrix_view<const float> x(storage.data(), rows, cols, stride);

  const Q q = q_in, q_ref = q_in;  // two identical copies (same seed when stochastic)
  const qcodec::quantized_matrix<Q> m = qcodec::quantize(q, G{}, x);
  REQUIRE(m.rows == rows);
  REQUIRE(m.cols == cols);
  REQUIRE(m.symbols.size() == rows * cols);
  REQUIRE(m.params.size() == qcodec::parameter_sets<G>(rows, cols));

  std::vector<float> y_storage(rows * stride + 1, -7.0f);
  const qcodec::matrix_view<float> y(y_storage.data(), rows, cols, stride);
  qcodec::dequantize(q, G{}, m, y);
  if (stride > cols && rows > 0)
    for (std::size_t r = 0; r + 1 < rows; ++r)
      for (std::size_t c = cols; c < stride; ++c) REQUIRE(y_storage[r * stride + c] == -7.0f);

  const auto groups = index_groups<G>(rows, cols);
  REQUIRE(groups.size() == m.params.size());
  for (std::size_t k = 0; k < groups.size(); ++k) {
    const auto& idx = groups[k];
    std::vector<float> xs, ys(idx.size());
    for (const std::size_t i : idx) xs.push_back(x(i / cols, i % cols));
    const auto p = q_ref.fit(xs);
    REQUIRE(same_bytes(p, m.params[k]));
    std::vector<std::uint8_t> s(idx.size());
    q_ref.encode(xs, p, s);
    q_ref.decode(s, p, ys);
    float amax = 0.0f;
    for (const float v : xs) amax = std::fmax(amax, std::fabs(v));
    for (std::size_t j = 0; j < idx.size(); ++j) {
      const std::size_t r = idx[j] / cols, c = idx[j] % cols;
      REQUIRE(m.symbols[idx[j]] == s[j]);
      REQUIRE(std::memcmp(&y(r, c), &ys[j], sizeof(float)) == 0);
      check_bound(q, p, xs[j], y(r, c), amax);
    }
  }
}

template <class Q>
void check_all_granularities(const Q& q) {
  struct shape {
    std::size_t rows, cols, stride;
  };
  const shape shapes[] = {{5, 37, 37}, {4, 64, 70}, {1, 19, 19}, {13, 1, 1},
                          {3, 8, 8},   {0, 5, 5},   {3, 0, 0}};
  std::uint64_t seed = 1;
  for (const shape s : shapes) {
    check<Q, per_tensor>(q, s.rows, s.cols, s.stride, seed++);
    check<Q, per_token>(q, s.rows, s.cols, s.stride, seed++);
    check<Q, per_channel>(q, s.rows, s.cols, s.stride, seed++);
    check<Q, per_group<8>>(q, s.rows, s.cols, s.stride, seed++);  // 37 = 4 * 8 + 5: a tail
    check<Q, per_group<32>>(q, s.rows, s.cols, s.stride, seed++);
    check<Q, per_group<64>>(q, s.rows, s.cols, s.stride, seed++);  // wider than most rows
  }
}

}  // namespace

TEST_CASE("grouping: group layout of per_group with a tail", "[grouping]") {
  const qcodec::uniform<4, qcodec::symmetric> q;
  // 2 x 5, groups of 2: [0 1][2 3][4] per row; params row-major over (row, group)
  const std::vector<float> x = {7, 7, 1, 1, 3, -14, 0, 2, 2, 70};
  const auto m =
      qcodec::quantize(q, per_group<2>{}, qcodec::matrix_view<const float>(x.data(), 2, 5));
  REQUIRE(m.params.size() == 6);
  const float expect[] = {1, 1.0f / 7, 3.0f / 7, 2, 2.0f / 7, 10};
  for (std::size_t k = 0; k < 6; ++k) REQUIRE(m.params[k].scale == expect[k]);
  REQUIRE(m.symbols == std::vector<std::uint8_t>{15, 15, 15, 15, 15, 1, 8, 15, 15, 15});
}

TEST_CASE("grouping: every policy composes with every granularity", "[grouping]") {
  check_all_granularities(qcodec::uniform<4, qcodec::symmetric>{});
  check_all_granularities(qcodec::uniform<2, qcodec::symmetric>{});
  check_all_granularities(qcodec::uniform<1, qcodec::symmetric_no_zero>{});
  check_all_granularities(qcodec::uniform<3, qcodec::symmetric_no_zero>{});
  check_all_granularities(qcodec::uniform<8, qcodec::asymmetric>{});
  check_all_granularities(qcodec::uniform<5, qcodec::asymmetric>{});
  check_all_granularities(qcodec::uniform<3, qcodec::asymmetric, qcodec::stochastic_rounding>(
      qcodec::stochastic_rounding(9)));
  check_all_granularities(qcodec::uniform<4, qcodec::symmetric, qcodec::stochastic_rounding>(
      qcodec::stochastic_rounding(10)));
  check_all_granularities(qcodec::mse_fitted<qcodec::uniform<4, qcodec::asymmetric>>{});
  check_all_granularities(qcodec::mse_fitted<qcodec::uniform<2, qcodec::symmetric>>{});
  check_all_granularities(qcodec::ternary{});
  check_all_granularities(qcodec::binary{});
}
