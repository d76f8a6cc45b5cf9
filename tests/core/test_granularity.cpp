#include <qcodec/core/granularity.hpp>

#include "../support/catch.hpp"

static_assert(qcodec::Granularity<qcodec::per_tensor>);
static_assert(qcodec::Granularity<qcodec::per_token>);
static_assert(qcodec::Granularity<qcodec::per_channel>);
static_assert(qcodec::Granularity<qcodec::per_group<32>>);
static_assert(!qcodec::Granularity<int>);
static_assert(qcodec::per_group<64>::group_size == 64);

TEST_CASE("parameter_sets counts one set per shared group", "[granularity]") {
  CHECK(qcodec::parameter_sets<qcodec::per_tensor>(7, 9) == 1);
  CHECK(qcodec::parameter_sets<qcodec::per_tensor>(0, 9) == 0);
  CHECK(qcodec::parameter_sets<qcodec::per_token>(7, 9) == 7);
  CHECK(qcodec::parameter_sets<qcodec::per_channel>(7, 9) == 9);
  CHECK(qcodec::parameter_sets<qcodec::per_group<4>>(7, 9) == 7 * 3);
  CHECK(qcodec::parameter_sets<qcodec::per_group<32>>(2, 64) == 4);
}
