#include <qcodec/io/npy.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../support/catch.hpp"

namespace {

// A .npy file with the given header dictionary and payload, built by hand as NumPy writes it.
std::vector<std::uint8_t> npy_bytes(const std::string& dict, std::size_t payload_bytes,
                                    std::uint8_t major = 1) {
  std::vector<std::uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', major, 0};
  const std::size_t len = dict.size();
  out.push_back(static_cast<std::uint8_t>(len & 0xFF));
  out.push_back(static_cast<std::uint8_t>(len >> 8));
  if (major >= 2) {
    out.push_back(0);
    out.push_back(0);
  }
  // (resize and copy: GCC 12 -O3 reports vector::insert of the string here as a 1-byte
  // overflow, -Wstringop-overflow, a false positive)
  const std::size_t header = out.size();
  out.resize(header + dict.size() + payload_bytes, 0);
  std::copy(dict.begin(), dict.end(), out.begin() + static_cast<std::ptrdiff_t>(header));
  return out;
}

}  // namespace

TEST_CASE("npy: write then read round-trips shape and values", "[io][npy]") {
  const std::vector<float> data = {1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-30f};
  const std::size_t shape[] = {2, 3};
  const std::vector<std::uint8_t> bytes = qcodec::io::serialize_npy(data, shape);
  REQUIRE((bytes.size() - data.size() * 4) % 64 == 0);  // data aligned as NumPy aligns it
  auto array = qcodec::io::parse_npy(bytes);
  REQUIRE(array.ok());
  CHECK(array->shape == std::vector<std::size_t>{2, 3});
  CHECK(array->dtype == "<f4");
  REQUIRE(array->data.size() == data.size());
  CHECK(std::memcmp(array->data.data(), data.data(), data.size() * 4) == 0);

  const std::size_t one_d[] = {6};
  auto again = qcodec::io::parse_npy(qcodec::io::serialize_npy(data, one_d));
  REQUIRE(again.ok());
  CHECK(again->shape == std::vector<std::size_t>{6});
}

TEST_CASE("npy: float16 and float64 payloads convert to float", "[io][npy]") {
  auto f2 = npy_bytes("{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }\n", 6);
  const std::uint16_t halves[3] = {0x3C00, 0xC000, 0x7C00};  // 1, -2, +inf
  std::memcpy(f2.data() + f2.size() - 6, halves, 6);
  auto a = qcodec::io::parse_npy(f2);
  REQUIRE(a.ok());
  CHECK(a->data == std::vector<float>{1.0f, -2.0f, INFINITY});

  auto f8 = npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }", 8, 2);
  const double v = 0.1;
  std::memcpy(f8.data() + f8.size() - 8, &v, 8);
  auto b = qcodec::io::parse_npy(f8);
  REQUIRE(b.ok());
  CHECK(b->data == std::vector<float>{0.1f});
}

TEST_CASE("npy: malformed files are errors with their ids, never crashes", "[io][npy]") {
  namespace e = qcodec::io::npy_errors;
  const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
  CHECK(qcodec::io::parse_npy(npy_bytes(good, 16)).ok());

  auto fails_with = [](const std::vector<std::uint8_t>& bytes, const qcodec::error_id& id) {
    auto r = qcodec::io::parse_npy(bytes);
    INFO(r.error().message());
    return !r.ok() && r.error().is(id);
  };
  CHECK(fails_with({}, e::truncated));
  CHECK(fails_with({0x93, 'N', 'U', 'M'}, e::truncated));
  std::vector<std::uint8_t> bad_magic = npy_bytes(good, 16);
  bad_magic[1] = 'X';
  CHECK(fails_with(bad_magic, e::bad_magic));
  CHECK(fails_with(npy_bytes(good, 16, 4), e::bad_version));
  CHECK(fails_with(npy_bytes(good, 12), e::truncated));
  CHECK(fails_with(npy_bytes(good, 20), e::size_mismatch));
  std::vector<std::uint8_t> short_header = npy_bytes(good, 0);
  short_header.resize(20);
  CHECK(fails_with(short_header, e::truncated));
  CHECK(fails_with(npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 8),
                   e::bad_dtype));
  CHECK(fails_with(npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8),
                   e::bad_dtype));
  CHECK(fails_with(npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8),
                   e::fortran_order));
  CHECK(fails_with(npy_bytes("{'descr': '<f4', 'shape': (2,), }", 8), e::bad_header));
  CHECK(fails_with(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,x), }", 8),
                   e::bad_shape));
  CHECK(fails_with(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, }", 8),
                   e::bad_header));
  // An element count that overflows size_t must not wrap around to a small allocation.
  CHECK(fails_with(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': "
                             "(4294967296, 4294967296, 16), }",
                             0),
                   e::bad_shape));
  CHECK(fails_with(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': "
                             "(99999999999999999999999,), }",
                             0),
                   e::bad_shape));
  // A zero dimension does not excuse the others: NumPy refuses (0, 2^64-1, 2^64-1) too, and
  // readers size buffers from single dimensions.
  CHECK(fails_with(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': "
                             "(0, 18446744073709551615, 18446744073709551615), }",
                             0),
                   e::bad_shape));
  CHECK(fails_with(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': "
                             "(0, 4611686018427387904), }",
                             0),
                   e::bad_shape));
}

TEST_CASE("npy: zero-size and scalar arrays", "[io][npy]") {
  auto empty = qcodec::io::parse_npy(
      npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 8), }", 0));
  REQUIRE(empty.ok());
  CHECK(empty->size() == 0);
  // Still accepted: the non-zero dimensions' bytes fit in size_t.
  auto wide_empty = qcodec::io::parse_npy(npy_bytes(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 0, 1048576), }", 0));
  REQUIRE(wide_empty.ok());
  CHECK(wide_empty->size() == 0);
  auto scalar = qcodec::io::parse_npy(
      npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4));
  REQUIRE(scalar.ok());
  CHECK(scalar->shape.empty());
  CHECK(scalar->size() == 1);
}

TEST_CASE("npy: reads the real K/V dumps when they are present", "[io][npy][shared]") {
  const std::string path = std::string(QCODEC_SHARED_DIR) + "/data/kv/stories260K/v.npy";
  auto array = qcodec::io::read_npy(path);
  if (!array.ok() && array.error().is(qcodec::io::npy_errors::io_failure)) {
    QCODEC_SKIP("no " << path);
  }
  REQUIRE(array.ok());
  REQUIRE(array->shape.size() == 4);  // [layer, head, token, head_dim]
  std::size_t count = 1;
  for (std::size_t d : array->shape) count *= d;
  CHECK(array->size() == count);
}
