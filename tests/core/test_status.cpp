#include <qcodec/core/result.hpp>
#include <qcodec/core/status.hpp>

#include <string>

#include "../support/catch.hpp"

namespace {
constexpr qcodec::error_id test_error{qcodec::errc::corrupt_data, "qcodec.test.1", "bad thing"};
constexpr qcodec::error_id other_error{qcodec::errc::truncated, "qcodec.test.2", "short"};

qcodec::result<int> parse(bool good) {
  if (!good) return qcodec::status::failure(test_error, "byte 7");
  return 42;
}
}  // namespace

TEST_CASE("status is ok by default and carries a stable id when failed", "[status]") {
  const qcodec::status ok;
  CHECK(ok.ok());
  CHECK(ok.message().empty());
  CHECK(ok.id().empty());

  const auto failed = qcodec::status::failure(test_error, "at offset 12");
  CHECK_FALSE(failed.ok());
  CHECK(failed.code() == qcodec::errc::corrupt_data);
  CHECK(failed.id() == "qcodec.test.1");
  CHECK(failed.message() == "[qcodec.test.1] bad thing: at offset 12");
  CHECK(failed.is(test_error));
  CHECK_FALSE(failed.is(other_error));
  CHECK(qcodec::status::failure(other_error).message() == "[qcodec.test.2] short");
}

TEST_CASE("result holds a value or the failure", "[status]") {
  const auto good = parse(true);
  REQUIRE(good.ok());
  CHECK(*good == 42);
  CHECK(good.error().ok());

  const auto bad = parse(false);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().is(test_error));
  CHECK(bad.error().message() == "[qcodec.test.1] bad thing: byte 7");
}
