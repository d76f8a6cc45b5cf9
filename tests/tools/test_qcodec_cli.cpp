// The qcodec command-line tool, run as a user runs it (through the shell).
#include <qcodec/core/rng.hpp>
#include <qcodec/io/npy.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "../support/catch.hpp"

namespace {

namespace fs = std::filesystem;

struct run_result {
  int exit_code;
  std::string output;  // stdout and stderr
};

run_result run(const std::string& arguments) {
  const fs::path log = fs::temp_directory_path() / "qcodec_cli_test.log";
  const std::string command =
      std::string("\"") + QCODEC_CLI + "\" " + arguments + " > \"" + log.string() + "\" 2>&1";
  const int status = std::system(command.c_str());
  run_result r{-1, {}};
#if defined(WIFEXITED)
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
#else
  r.exit_code = status;
#endif
  if (std::FILE* f = std::fopen(log.string().c_str(), "rb")) {
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) r.output.append(buffer, n);
    std::fclose(f);
  }
  return r;
}

struct temp_dir {
  fs::path path = fs::temp_directory_path() / "qcodec_cli_test";
  temp_dir() { fs::create_directories(path); }
  ~temp_dir() { fs::remove_all(path); }
  std::string file(const char* name) const { return (path / name).string(); }
};

}  // namespace

TEST_CASE("qcodec list prints every format with its bits per value", "[tools][cli]") {
  const run_result r = run("list");
  REQUIRE(r.exit_code == 0);
  for (const char* name : {"fp16", "q4_0", "q8_0", "iq4_nl", "mxfp4"}) {
    CHECK(r.output.find(name) != std::string::npos);
  }
  CHECK(r.output.find("4.5") != std::string::npos);
}

TEST_CASE("qcodec stats, encode and decode on a .npy file", "[tools][cli]") {
  temp_dir dir;
  qcodec::rng rng(3);
  std::vector<float> x(4 * 128);
  for (float& v : x) v = rng.normal();
  const std::size_t shape[] = {2, 2, 128};  // leading dimensions fold into rows
  REQUIRE(qcodec::io::write_npy(dir.file("x.npy"), x, shape).ok());

  const run_result stats = run("stats --codec q8_0 --in " + dir.file("x.npy") + " --json");
  INFO(stats.output);
  REQUIRE(stats.exit_code == 0);
  for (const char* key : {"\"bits_per_value\": 8.5", "\"rel_mse\"", "\"max_abs_err\"", "\"snr_db\"",
                          "\"encode_mb_per_s\"", "\"decode_mb_per_s\""}) {
    CHECK(stats.output.find(key) != std::string::npos);
  }

  REQUIRE(run("encode --codec q4_0 --in " + dir.file("x.npy") + " --raw-out " + dir.file("x.q4_0"))
              .exit_code == 0);
  CHECK(fs::file_size(dir.file("x.q4_0")) == 4 * 4 * 18);  // 4 rows of 4 blocks of 18 bytes
  REQUIRE(run("decode --codec q4_0 --raw-in " + dir.file("x.q4_0") + " --shape 4,128 --out " +
              dir.file("y.npy"))
              .exit_code == 0);
  auto y = qcodec::io::read_npy(dir.file("y.npy"));
  REQUIRE(y.ok());
  CHECK(y->shape == std::vector<std::size_t>{4, 128});
  double err = 0.0, energy = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    err += (y->data[i] - x[i]) * (y->data[i] - x[i]);
    energy += x[i] * x[i];
  }
  CHECK(err / energy < 0.012);  // Q4_0 on Gaussian data: about 0.007

  // Raw float32 output, then raw float32 input of the same values: fp32 is the identity.
  REQUIRE(run("decode --codec q4_0 --raw-in " + dir.file("x.q4_0") + " --shape 4,128 --out " +
              dir.file("y.f32"))
              .exit_code == 0);
  CHECK(fs::file_size(dir.file("y.f32")) == 4 * 128 * 4);
  const run_result identity =
      run("stats --codec fp32 --raw f32 --shape 4,128 --in " + dir.file("y.f32") + " --json");
  INFO(identity.output);
  CHECK(identity.output.find("\"rel_mse\": 0,") != std::string::npos);
}

TEST_CASE("qcodec reports bad input clearly with a non-zero exit", "[tools][cli]") {
  temp_dir dir;
  std::vector<float> x(3 * 40, 1.0f);
  const std::size_t shape[] = {3, 40};
  REQUIRE(qcodec::io::write_npy(dir.file("odd.npy"), x, shape).ok());
  {
    std::FILE* f = std::fopen(dir.file("short.bin").c_str(), "wb");
    REQUIRE(f != nullptr);
    std::fwrite(x.data(), 1, 100, f);
    std::fclose(f);
  }
  struct expectation {
    std::string arguments;
    const char* message;
  };
  const expectation cases[] = {
      {"frobnicate", "unknown command"},
      {"stats --codec q4_0", "needs --in"},
      {"stats --codec nope --in " + dir.file("odd.npy"), "qcodec.codec.2"},
      {"stats --codec q4_0 --in " + dir.file("odd.npy"), "multiple of 32"},
      {"stats --codec q4_0 --in " + dir.file("missing.npy"), "cannot read"},
      {"stats --codec q4_0 --in " + dir.file("short.bin"), "qcodec.npy"},
      {"stats --codec q4_0 --raw f32 --shape 2,64 --in " + dir.file("short.bin"), "bytes"},
      {"decode --codec q4_0 --raw-in " + dir.file("short.bin") + " --shape 1,64 --out " +
           dir.file("o.f32"),
       "qcodec.codec.6"},
      {"decode --codec q4_0 --raw-in " + dir.file("short.bin") + " --shape 1x64 --out " +
           dir.file("o.f32"),
       "--shape expects R,C"},
      {"stats --codec q4_0 --in " + dir.file("odd.npy") + " --bogus 1", "unknown option --bogus"},
  };
  for (const expectation& e : cases) {
    const run_result r = run(e.arguments);
    INFO(e.arguments << "\n" << r.output);
    CHECK(r.exit_code != 0);
    CHECK(r.output.find(e.message) != std::string::npos);
  }
}

TEST_CASE("qcodec refuses shapes it cannot hold before sizing anything from them", "[tools][cli]") {
  temp_dir dir;
  const auto write_bytes = [&](const char* name, std::size_t n) {
    std::FILE* f = std::fopen(dir.file(name).c_str(), "wb");
    REQUIRE(f != nullptr);
    const std::vector<std::uint8_t> zeros(n, 0);
    REQUIRE(std::fwrite(zeros.data(), 1, n, f) == n);
    std::fclose(f);
  };
  write_bytes("0.bin", 0);
  write_bytes("2.bin", 2);
  write_bytes("4.bin", 4);
  // An empty .npy array whose header names 2^60 columns (valid: 2^62 bytes fit in size_t).
  const std::size_t wide_empty[] = {0, std::size_t{1} << 60};
  REQUIRE(qcodec::io::write_npy(dir.file("wide_empty.npy"), {}, wide_empty).ok());
  const std::string out = " --out " + dir.file("o.f32");
  struct expectation {
    std::string arguments;
    const char* message;
  };
  const expectation cases[] = {
      // Not R,C in decimal: a sign, a blank, a number beyond size_t, a third number.
      {"decode --codec q4_0 --raw-in " + dir.file("0.bin") + " --shape -1,64" + out,
       "--shape expects R,C"},
      {"decode --codec q4_0 --raw-in " + dir.file("0.bin") + " --shape ' 1,64'" + out,
       "--shape expects R,C"},
      {"decode --codec q4_0 --raw-in " + dir.file("0.bin") + " --shape +1,64" + out,
       "--shape expects R,C"},
      {"decode --codec q4_0 --raw-in " + dir.file("0.bin") + " --shape 1,99999999999999999999999" +
           out,
       "--shape expects R,C"},
      {"decode --codec q4_0 --raw-in " + dir.file("0.bin") + " --shape 1,64,2" + out,
       "--shape expects R,C"},
      // (2^62 + 1) rows of nvfp4, 4 bytes each even with no columns, would wrap to 4 bytes; the
      // tool refuses the empty shape before the codec sees it (test_registry checks the codec).
      {"decode --codec nvfp4 --raw-in " + dir.file("4.bin") + " --shape 4611686018427387905,0" +
           out,
       "--shape is empty"},
      {"decode --codec q4_0 --raw-in " + dir.file("0.bin") + " --shape 0,64" + out,
       "--shape is empty"},
      // 9 bytes per value (fp32 scale and offset per value): 9 x 2049638230412172402 wraps to 2,
      // though its float32 size (4 x) does not.
      {"decode --codec uniform:bits=1,mode=asym,group=1 --raw-in " + dir.file("2.bin") +
           " --shape 1,2049638230412172402" + out,
       "--shape is too large"},
      // No rows, and columns that no data bounds.
      {"stats --codec fp16 --raw f32 --shape 0,4611686018427387904 --in " + dir.file("0.bin"),
       "--shape is empty"},
      {"stats --codec fp16 --in " + dir.file("wide_empty.npy"), "is empty"},
  };
  for (const expectation& e : cases) {
    const run_result r = run(e.arguments);
    INFO(e.arguments << "\n" << r.output);
    CHECK(r.exit_code != 0);
    CHECK(r.output.find(e.message) != std::string::npos);  // a clean error, not a crash
  }
}
