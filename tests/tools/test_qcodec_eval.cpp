// qcodec-eval run as a user runs it, on a small generated dump (and on the real one when present).
#include <qcodec/core/rng.hpp>
#include <qcodec/io/npy.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "../support/catch.hpp"

namespace {

namespace fs = std::filesystem;

int run(const std::string& arguments, std::string& output) {
  const fs::path log = fs::temp_directory_path() / "qcodec_eval_test.log";
  const std::string command =
      std::string("\"") + QCODEC_EVAL + "\" " + arguments + " > \"" + log.string() + "\" 2>&1";
  const int status = std::system(command.c_str());
  output.clear();
  if (std::FILE* f = std::fopen(log.string().c_str(), "rb")) {
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) output.append(buffer, n);
    std::fclose(f);
  }
  return status;
}

std::string read_text(const std::string& path) {
  std::string text;
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, n);
    std::fclose(f);
  }
  return text;
}

}  // namespace

TEST_CASE("qcodec-eval reports every scheme on a generated dump", "[tools][eval]") {
  const fs::path dir = fs::temp_directory_path() / "qcodec_eval_dump";
  fs::create_directories(dir);
  qcodec::rng rng(1);
  auto write = [&](const char* name, std::size_t heads) {
    std::vector<float> x(2 * heads * 64 * 16);
    for (float& v : x) v = rng.normal();
    const std::size_t shape[] = {2, heads, 64, 16};
    REQUIRE(qcodec::io::write_npy((dir / name).string(), x, shape).ok());
  };
  write("k_postrope.npy", 2);
  write("v.npy", 2);
  write("q_postrope.npy", 4);
  const std::string json = (dir / "out.json").string(), svg = (dir / "out.svg").string();
  const std::string csv = (dir / "out.csv").string();
  std::string output;
  REQUIRE(run("--kv " + dir.string() +
                  " --schemes q8,kivi2:residual=16,mix-q8-kivi2:residual=8,salient=0 --json " +
                  json + " --plot " + svg + " --csv " + csv,
              output) == 0);
  INFO(output);
  const std::string report = read_text(json);
  for (const char* key :
       {"\"scheme\": \"fp32\"", "\"scheme\": \"q8\"", "\"scheme\": \"kivi2:residual=16\"",
        "\"bits_per_value\"", "\"key_rel_err\"", "\"value_rel_err\"", "\"attn_out_rel_err\"",
        "\"top1\": null, \"salient_fraction\": null}",  // not tiered
        "\"top1\": null, \"salient_fraction\": 1}"}) {  // tiered, every token salient
    CHECK(report.find(key) != std::string::npos);
  }
  CHECK(output.find("mix-q8-kivi2:residual=8,salient=0: 100.0% of the tokens score salient") !=
        std::string::npos);
  CHECK(read_text(svg).find("<svg") == 0);
  const std::string table = read_text(csv);
  CHECK(table.find("scheme,bits_per_value,key_rel_err,value_rel_err,score_rel_err,"
                   "attn_out_rel_err,key_rel_err_prerope,attn_out_rel_err_prerope\n") == 0);
  CHECK(table.find("\n\"kivi2:residual=16\",") != std::string::npos);

  // Errors: a missing folder, an unknown scheme.
  CHECK(run("--kv " + (dir / "missing").string(), output) != 0);
  CHECK(output.find("k_postrope.npy") != std::string::npos);
  CHECK(run("--kv " + dir.string() + " --schemes nope", output) != 0);
  CHECK(output.find("qcodec.codec.2") != std::string::npos);
  CHECK(run("--kv " + dir.string() + " --schemes cb4", output) != 0);  // needs a model
  CHECK(output.find("--model") != std::string::npos);
  CHECK(run("--kv " + dir.string() + " --plot " + (dir / "no" / "x.svg").string(), output) != 0);
  CHECK(output.find("qcodec.eval.4") != std::string::npos);
  CHECK(run("--kv " + dir.string() + " --rope-theta x", output) != 0);
  fs::remove_all(dir);
}

TEST_CASE("qcodec-eval refuses inconsistent dumps and theta values", "[tools][eval]") {
  const fs::path dir = fs::temp_directory_path() / "qcodec_eval_bad_dump";
  fs::create_directories(dir);
  auto write = [&](const char* name, std::size_t heads, std::size_t tokens, std::size_t dim) {
    std::vector<float> x(heads * tokens * dim, 0.5f);
    const std::size_t shape[] = {1, heads, tokens, dim};
    REQUIRE(qcodec::io::write_npy((dir / name).string(), x, shape).ok());
  };
  auto refused = [&](const std::string& arguments, const char* message) {
    std::string output;
    const int status = run("--kv " + dir.string() + " --schemes q8" + arguments, output);
    INFO(arguments << "\n" << output);
    CHECK(status != 0);
    CHECK(output.find(message) != std::string::npos);  // a clean error, not a crash
  };
  // No KV heads: the GQA group (Q's heads over K's) would divide by zero.
  write("k_postrope.npy", 0, 4, 8);
  write("v.npy", 0, 4, 8);
  write("q_postrope.npy", 3, 4, 8);
  refused("", "qcodec.eval.2");
  // Heads without dimensions.
  write("k_postrope.npy", 2, 4, 0);
  write("v.npy", 2, 4, 0);
  write("q_postrope.npy", 2, 4, 0);
  refused("", "qcodec.eval.2");
  // k_prerope.npy is read with k_postrope.npy's shape: a smaller one would be read past its end.
  write("k_postrope.npy", 2, 64, 16);
  write("v.npy", 2, 64, 16);
  write("q_postrope.npy", 2, 64, 16);
  write("k_prerope.npy", 2, 1, 16);
  refused("", "k_prerope.npy is 1x2x1x16");
  // The caches take theta as a float: infinity and values beyond float's range are refused.
  write("k_prerope.npy", 2, 64, 16);
  std::string output;
  CHECK(run("--kv " + dir.string() + " --schemes q8", output) == 0);
  for (const char* theta : {"inf", "1e39", "nan", "1"}) {
    refused(std::string(" --rope-theta ") + theta, "--rope-theta");
  }
  CHECK(run("--kv " + dir.string() + " --schemes q8 --rope-theta 3e38", output) == 0);
  fs::remove_all(dir);
}

TEST_CASE("qcodec-eval on the real stories260K dump", "[tools][eval][shared]") {
  const std::string dir = std::string(QCODEC_SHARED_DIR) + "/data/kv/stories260K";
  if (!fs::exists(dir + "/k_postrope.npy")) QCODEC_SKIP("no " << dir);
  if (std::getenv("QCODEC_SKIP_SLOW") != nullptr) {  // minutes under ASan; 20 s in release
    QCODEC_SKIP("QCODEC_SKIP_SLOW is set (the sanitize test preset)");
  }
  const std::string model = std::string(QCODEC_SHARED_DIR) + "/data/models/stories260K/";
  const fs::path json = fs::temp_directory_path() / "qcodec_eval_model.json";
  std::string output;
  const fs::path csv = fs::temp_directory_path() / "qcodec_eval_model.csv";
  REQUIRE(run("--kv " + dir +
                  " --schemes q8,kivi4,cb4:residual=12,exact=16,cb2:residual=16,exact=16,"
                  "cq2:residual=16,exact=16,mix-q8-kivi2,kivi2:residual=32 --model " +
                  model + "stories260K.bin" + " --tokenizer " + model + "tok512.bin --text " + dir +
                  "/text.txt --json " + json.string() + " --csv " + csv.string(),
              output) == 0);
  INFO(output);
  CHECK(output.find("key_err_pre") != std::string::npos);  // k_prerope.npy is there
  CHECK(output.find("kivi4") != std::string::npos);
  const std::string report = read_text(json.string());
  // The calibrated schemes run on pre-RoPE keys, fitted to text the model sampled; their KL is
  // the one qcodec_llama --ppl reports. Issue 5's targets: KL <= 0.005 at <= 4.5 bits per
  // value, KL <= 0.05 at <= 3 (0.0032 at 4.38 and 0.030 at 2.51 when measured).
  const auto field = [&](const std::string& scheme, const std::string& key) {
    const std::size_t row = report.find("\"scheme\": \"" + scheme + "\"");
    REQUIRE(row != std::string::npos);
    const std::size_t at = report.find("\"" + key + "\": ", row);
    REQUIRE(at != std::string::npos);
    return std::stod(report.substr(at + key.size() + 4));
  };
  CHECK(field("cb4:residual=12,exact=16", "kl") <= 0.005);
  CHECK(field("cb4:residual=12,exact=16", "bits_per_value") <= 4.5);
  CHECK(field("cb2:residual=16,exact=16", "kl") <= 0.05);
  CHECK(field("cb2:residual=16,exact=16", "bits_per_value") <= 3.0);
  // Coupled quantization at the same rate: 4 channels per 8-bit code (KL 0.0174 when measured).
  CHECK(field("cq2:residual=16,exact=16", "kl") <= 0.025);
  CHECK(field("cq2:residual=16,exact=16", "bits_per_value") <= 2.51);  // 2.5004
  // The tiered scheme: the 55% of the tokens drawing at least 4x their uniform share of the
  // attention while in its 32-token window stored in 8 bits, the others KIVI-2 (KL 0.0256
  // when measured; every token KIVI-2: 0.136; examples/llama's test compares them).
  CHECK(field("mix-q8-kivi2", "salient_fraction") > 0.5);
  CHECK(field("mix-q8-kivi2", "salient_fraction") < 0.6);
  CHECK(field("mix-q8-kivi2", "kl") < 0.03);
  // Its attention outputs here (scores from the dump): 0.29 against 0.68 for all KIVI-2.
  CHECK(field("mix-q8-kivi2", "attn_out_rel_err") <
        0.5 * field("kivi2:residual=32", "attn_out_rel_err"));
  CHECK(read_text(csv.string()).find(",ppl,kl,top1\n") != std::string::npos);
  fs::remove(csv);
  // The fp32 row of the engine: stories260K's perplexity on this text is 3.259, KL 0, top-1 1.
  CHECK(report.find("\"scheme\": \"fp32\", \"bits_per_value\"") != std::string::npos);
  CHECK(report.find("\"ppl\": 3.25") != std::string::npos);
  CHECK(report.find("\"kl\": 0, \"top1\": 1, \"salient_fraction\": null}") != std::string::npos);
  fs::remove(json);
}
