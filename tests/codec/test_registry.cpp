#include <qcodec/codec/registry.hpp>
#include <qcodec/core/rng.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../support/catch.hpp"

namespace {

double rel_mse(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0.0, energy = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(x[i]) - static_cast<double>(y[i]);
    err += d * d;
    energy += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  }
  return err / energy;
}

std::vector<float> gaussian(std::size_t n, std::uint64_t seed) {
  qcodec::rng rng(seed);
  std::vector<float> x(n);
  for (float& v : x) v = rng.normal();
  return x;
}

std::vector<std::uint8_t> read_all(const std::string& path) {
  std::vector<std::uint8_t> bytes;
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    std::uint8_t buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0)
      bytes.insert(bytes.end(), buffer, buffer + n);
    std::fclose(f);
  }
  return bytes;
}

// The relative MSE a codec may lose on Gaussian data. A b-bit integer code of a Gaussian loses
// at most about 4^-(b - 2.5) (scales spend some of the bits); float elements are limited by
// their mantissa instead: relative step 2^-m, relative MSE about 4^-m / 3 (e5m2 also spends
// range on its exponent), so they get their own bounds.
double error_budget(const qcodec::codec_entry& entry) {
  const std::string name = entry.name;
  if (name == "fp16") return 1e-7;        // 10-bit mantissa
  if (name == "bf16") return 6e-6;        // 7-bit mantissa
  if (name == "fp8_e4m3") return 1.5e-3;  // 3-bit mantissa
  if (name == "fp8_e5m2") return 5e-3;    // 2-bit mantissa
  // MX FP8 blocks share a power-of-two scale, but relative steps are still the mantissa's.
  if (name == "mx_fp8_e4m3") return 1.5e-3;
  if (name == "mx_fp8_e5m2") return 5e-3;
  return std::pow(4.0, -(entry.bits_per_value - 2.5));
}

}  // namespace

TEST_CASE("registry: every codec round-trips a strided matrix within its bit budget",
          "[codec][registry]") {
  constexpr std::size_t rows = 6, cols = 256, stride = 300;
  std::vector<float> storage = gaussian(rows * stride, 11);
  const qcodec::matrix_view<const float> x(storage.data(), rows, cols, stride);
  std::vector<float> dense(rows * cols);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) dense[r * cols + c] = x(r, c);

  for (const qcodec::codec_entry& entry : qcodec::codec_registry()) {
    INFO("codec " << entry.name);
    auto made = qcodec::make_codec(entry.name);
    REQUIRE(made.ok());
    const qcodec::any_codec& codec = **made;
    CHECK(codec.spec() == entry.name);
    REQUIRE(codec.check_shape(rows, cols).ok());
    // Long rows: the nominal bits per value is exact (nvfp4 adds 32 bits per row, 3e-5 here).
    CHECK(codec.bits_per_value(1, std::size_t{1} << 20) ==
          Approx(entry.bits_per_value).epsilon(1e-5));

    std::vector<std::uint8_t> encoded(codec.encoded_bytes(rows, cols));
    codec.encode(x, encoded);
    std::vector<float> y(rows * cols);
    REQUIRE(codec.decode(encoded, {y.data(), rows, cols}).ok());
    CHECK(rel_mse(dense, y) <= error_budget(entry));

    // Rows are independent: the encoding of one row is a slice of the whole stream.
    const std::size_t row_bytes = codec.encoded_bytes(1, cols);
    std::vector<std::uint8_t> one(row_bytes);
    codec.encode(x.block(3, 0, 1, cols), one);
    CHECK(std::memcmp(one.data(), encoded.data() + 3 * row_bytes, row_bytes) == 0);
  }
}

TEST_CASE("registry: untrusted streams of the wrong size are errors; any bytes decode safely",
          "[codec][registry]") {
  qcodec::rng rng(5);
  for (const qcodec::codec_entry& entry : qcodec::codec_registry()) {
    INFO("codec " << entry.name);
    auto codec = qcodec::make_codec(entry.name);
    REQUIRE(codec.ok());
    // 256 columns: a whole super-block of every K-quant and sb format.
    constexpr std::size_t cols = 256;
    REQUIRE((*codec)->check_shape(2, cols).ok());
    const std::size_t bytes = (*codec)->encoded_bytes(2, cols);
    REQUIRE(bytes > 0);
    std::vector<std::uint8_t> garbage(bytes + 1);
    for (auto& b : garbage) b = static_cast<std::uint8_t>(rng.next_u64() >> 56);
    std::vector<float> y(2 * cols);
    const qcodec::matrix_view<float> out(y.data(), 2, cols);
    CHECK(
        (*codec)->decode({garbage.data(), bytes - 1}, out).is(qcodec::codec_errors::size_mismatch));
    CHECK((*codec)->decode(garbage, out).is(qcodec::codec_errors::size_mismatch));
    CHECK((*codec)->decode({garbage.data(), bytes}, out).ok());  // NaN allowed, UB not
    // No rows of very many columns: nothing to read or write, and nothing allocated per row.
    constexpr std::size_t wide = std::size_t{1} << 60;
    REQUIRE((*codec)->check_shape(0, wide).ok());
    CHECK((*codec)->encoded_bytes(0, wide) == 0);
    CHECK((*codec)->decode({}, qcodec::matrix_view<float>(nullptr, 0, wide)).ok());
    (*codec)->encode(qcodec::matrix_view<const float>(nullptr, 0, wide), {});
  }
  auto q4 = qcodec::make_codec("q4_0");
  REQUIRE(q4.ok());
  CHECK((*q4)->check_shape(1, 33).is(qcodec::codec_errors::bad_shape));
  // nvfp4 stores a scale per row even of no values: rows whose bytes would wrap size_t are a
  // bad shape, not a small expected size (4 bytes for 2^62 + 1 rows) that decode then overruns.
  auto nvfp4 = qcodec::make_codec("nvfp4");
  REQUIRE(nvfp4.ok());
  const std::size_t rows = (std::size_t{1} << 62) + 1;
  CHECK((*nvfp4)->check_shape(rows, 0).is(qcodec::codec_errors::bad_shape));
  const std::uint8_t four[4] = {};
  CHECK((*nvfp4)
            ->decode(four, qcodec::matrix_view<float>(nullptr, rows, 0))
            .is(qcodec::codec_errors::bad_shape));
}

TEST_CASE("registry: spec strings", "[codec][spec]") {
  namespace e = qcodec::codec_errors;
  CHECK(qcodec::make_codec("q9_9").error().is(e::unknown_codec));
  CHECK(qcodec::make_codec("q4_0:group=64").error().is(e::unknown_option));
  for (const char* bad : {"", ":a=1", "q4_0:", "q4_0:a", "q4_0:a=", "q4_0:=1", "q4_0:a=1,",
                          "bfp:block=16,block=33", "uniform:mode=foo,bits=3,mode=asym"}) {
    INFO(bad);
    CHECK(qcodec::codec_spec::parse(bad).error().is(e::bad_spec));
  }
  auto spec = qcodec::codec_spec::parse("nf4:group=64,bits=3");
  REQUIRE(spec.ok());
  CHECK(spec->name() == "nf4");
  REQUIRE(spec->options().size() == 2);
  CHECK(spec->only_options({"group", "bits"}).ok());
  CHECK(spec->only_options({"group"}).is(e::unknown_option));
  CHECK(*spec->get_uint("group", 32, 1, 4096) == 64);
  CHECK(*spec->get_uint("absent", 32, 1, 4096) == 32);
  CHECK(spec->get_uint("bits", 4, 4, 8).error().is(e::bad_option));
  auto junk = qcodec::codec_spec::parse("nf4:group=6x");
  REQUIRE(junk.ok());
  CHECK(junk->get_uint("group", 32, 1, 4096).error().is(e::bad_option));
  auto number = qcodec::codec_spec::parse("mix:a=1.5,b=-2,c=1e3,d=nan,e=inf,f=1.5x,g=");
  REQUIRE(!number.ok());  // g has no value
  number = qcodec::codec_spec::parse("mix:a=1.5,b=-2,c=1e3,d=nan,e=inf,f=1.5x");
  REQUIRE(number.ok());
  CHECK(*number->get_float("a", 0.0f, 0.0f, 10.0f) == 1.5f);
  CHECK(*number->get_float("absent", 4.0f, 0.0f, 10.0f) == 4.0f);
  CHECK(*number->get_float("c", 0.0f, 0.0f, 1e4f) == 1000.0f);
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(number->get_float("e", 0.0f, 0.0f, inf).error().is(e::bad_option));  // finite only
  for (const char* key : {"b", "c", "d", "e", "f"}) {  // below, above, NaN, infinite, junk
    INFO(key);
    CHECK(number->get_float(key, 0.0f, 0.0f, 10.0f).error().is(e::bad_option));
  }
}

TEST_CASE("registry: ggml formats decode ggml's known-answer blocks bit for bit",
          "[codec][registry][shared]") {
  const std::string dir = std::string(QCODEC_SHARED_DIR) + "/data/ggml-vectors/";
  if (read_all(dir + "input_f32.bin").empty()) QCODEC_SKIP("no " << dir);
  std::size_t checked = 0;
  for (const qcodec::codec_entry& entry : qcodec::codec_registry()) {
    const std::vector<std::uint8_t> blocks = read_all(dir + entry.name + ".bin");
    if (blocks.empty()) continue;  // not a ggml type
    INFO("codec " << entry.name);
    const std::vector<std::uint8_t> want = read_all(dir + entry.name + ".dequant_f32.bin");
    REQUIRE(want.size() == 8 * 256 * sizeof(float));
    auto codec = qcodec::make_codec(entry.name);
    std::vector<float> y(8 * 256);
    REQUIRE((*codec)->decode(blocks, {y.data(), 8, 256}).ok());
    CHECK(std::memcmp(y.data(), want.data(), want.size()) == 0);
    ++checked;
  }
  CHECK(checked >= 7);
}

TEST_CASE("registry: parameterised families name their canonical spec", "[codec][registry]") {
  namespace e = qcodec::codec_errors;
  CHECK((*qcodec::make_codec("bfp"))->spec() == "bfp");
  CHECK((*qcodec::make_codec("bfp:bits=8,block=32"))->spec() == "bfp");
  auto bfp4 = qcodec::make_codec("bfp:block=16,bits=4");
  REQUIRE(bfp4.ok());
  CHECK((*bfp4)->spec() == "bfp:bits=4,block=16");
  CHECK((*bfp4)->bits_per_value(1, 64) == 4.5);
  CHECK(qcodec::make_codec("bfp:bits=5").error().is(e::bad_option));
  CHECK(qcodec::make_codec("bfp:bits=9").error().is(e::bad_option));
  CHECK(qcodec::make_codec("bfp:block=24").error().is(e::bad_option));
}

TEST_CASE("registry: uniform family options and canonical specs", "[codec][registry]") {
  namespace e = qcodec::codec_errors;
  CHECK((*qcodec::make_codec("uniform:bits=4,mode=sym,group=64"))->spec() == "uniform");
  auto u3 = qcodec::make_codec("uniform:group=128,mode=asym,bits=3");
  REQUIRE(u3.ok());
  CHECK((*u3)->spec() == "uniform:bits=3,mode=asym,group=128");
  CHECK((*u3)->bits_per_value(1, 128) == 3.5);  // 3 + 64 bits of scale and offset / 128
  auto n1 = qcodec::make_codec("uniform:bits=1,mode=nozero");
  REQUIRE(n1.ok());
  CHECK((*n1)->bits_per_value(1, 64) == 1.5);
  CHECK(qcodec::make_codec("uniform:bits=1").error().is(e::bad_option));  // sym: level 0 only
  CHECK(qcodec::make_codec("uniform:mode=signed").error().is(e::bad_option));
  CHECK(qcodec::make_codec("uniform:bits=9").error().is(e::bad_option));
  CHECK(qcodec::make_codec("uniform:scale=f16").error().is(e::unknown_option));

  // Every bits x mode round-trips Gaussian data within the b-bit budget of the first test.
  const std::vector<float> x = gaussian(4 * 256, 3);
  for (unsigned bits = 1; bits <= 8; ++bits) {
    for (const char* mode : {"sym", "nozero", "asym"}) {
      if (bits == 1 && std::string(mode) == "sym") continue;
      const std::string spec =
          "uniform:bits=" + std::to_string(bits) + ",mode=" + mode + ",group=64";
      INFO(spec);
      auto c = qcodec::make_codec(spec);
      REQUIRE(c.ok());
      std::vector<std::uint8_t> enc((*c)->encoded_bytes(4, 256));
      (*c)->encode({x.data(), 4, 256}, enc);
      std::vector<float> y(x.size());
      REQUIRE((*c)->decode(enc, {y.data(), 4, 256}).ok());
      // Except 1-bit asym: min/max puts every value on an end of the group's range, m ~ 2.4
      // for 64 Gaussians, so E(x - sign(x) m)^2 ~ 1 - 2 E|x| m + m^2 ~ 2.9 (worse than 0).
      const double budget = bits == 1 && std::string(mode) == "asym"
                                ? 3.5
                                : std::pow(4.0, -((*c)->bits_per_value(4, 256) - 2.5));
      CHECK(rel_mse(x, y) <= budget);
    }
  }
}

TEST_CASE("registry: the two MXFP4 layouts put the same codes in different nibbles",
          "[codec][registry]") {
  // Elements 0..15 are 0 and 16..31 are 4: both encode exactly. ggml's layout pairs element j
  // with element j + 16 in byte j; the OCP layout pairs elements 2j and 2j + 1.
  std::vector<float> x(32, 0.0f);
  for (std::size_t i = 16; i < 32; ++i) x[i] = 4.0f;
  auto ggml = qcodec::make_codec("mxfp4");
  auto ocp = qcodec::make_codec("mx_fp4");
  REQUIRE(ggml.ok());
  REQUIRE(ocp.ok());
  std::vector<std::uint8_t> g(17), o(17);
  REQUIRE((*ggml)->encoded_bytes(1, 32) == 17);
  REQUIRE((*ocp)->encoded_bytes(1, 32) == 17);
  (*ggml)->encode({x.data(), 1, 32}, g);
  (*ocp)->encode({x.data(), 1, 32}, o);
  for (std::size_t j = 0; j < 16; ++j) {
    INFO("byte " << j);
    CHECK((g[1 + j] & 0x0F) == 0);
    CHECK((g[1 + j] >> 4) != 0);
    if (j < 8) CHECK(o[1 + j] == 0);
    if (j >= 8) CHECK((o[1 + j] >> 4) == (o[1 + j] & 0x0F));
    if (j >= 8) CHECK((o[1 + j] & 0x0F) != 0);
  }
  for (auto* c : {&ggml, &ocp}) {
    std::vector<float> y(32);
    REQUIRE((**c)->decode(c == &ggml ? g : o, {y.data(), 1, 32}).ok());
    CHECK(y == x);
  }
  CHECK((*ocp)->check_shape(1, 48).is(qcodec::codec_errors::bad_shape));
  CHECK(qcodec::make_codec("nvfp4")->get()->check_shape(1, 24).is(qcodec::codec_errors::bad_shape));
}
