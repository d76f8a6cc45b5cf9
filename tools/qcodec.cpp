// qcodec: try qcodec's formats on your own data.
//
//   qcodec list
//   qcodec stats  --codec SPEC --in X.npy [--json]
//   qcodec encode --codec SPEC --in X.npy --raw-out blocks.bin
//   qcodec decode --codec SPEC --raw-in blocks.bin --shape R,C --out y.f32|y.npy
//
// Inputs: .npy (float16, float32 or float64, C order; every dimension but the last is folded
// into rows), or raw little-endian float32 with `--raw f32 --shape R,C`. An output name ending
// in .f32 is written as raw little-endian float32, anything else as .npy. Errors go to stderr
// with a non-zero exit status.
#include <qcodec/codec/registry.hpp>
#include <qcodec/io/npy.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr const char* usage_text =
    "usage:\n"
    "  qcodec list\n"
    "  qcodec stats  --codec SPEC --in X.npy [--json]\n"
    "  qcodec encode --codec SPEC --in X.npy --raw-out blocks.bin\n"
    "  qcodec decode --codec SPEC --raw-in blocks.bin --shape R,C --out y.f32|y.npy\n"
    "inputs: .npy (float16/float32), or raw float32 with --raw f32 --shape R,C\n";

constexpr qcodec::error_id bad_usage{qcodec::errc::invalid_argument, "qcodec.cli.1",
                                     "bad command line"};

struct matrix {
  std::size_t rows = 0, cols = 0;
  std::vector<float> data;
  [[nodiscard]] qcodec::matrix_view<const float> view() const { return {data.data(), rows, cols}; }
};

// --key value pairs, plus bare flags (--json).
struct arguments {
  std::string command;
  std::map<std::string, std::string> values;
  bool has(const std::string& key) const { return values.count(key) != 0; }
  const std::string& get(const std::string& key) const { return values.at(key); }
};

qcodec::result<arguments> parse_arguments(int argc, char** argv) {
  if (argc < 2) return qcodec::status::failure(bad_usage, "no command");
  arguments args;
  args.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string key = argv[i];
    if (key.rfind("--", 0) != 0) return qcodec::status::failure(bad_usage, "unexpected " + key);
    if (key == "--json") {
      args.values[key.substr(2)] = "";
      continue;
    }
    if (i + 1 >= argc) return qcodec::status::failure(bad_usage, key + " needs a value");
    args.values[key.substr(2)] = argv[++i];
  }
  return args;
}

qcodec::status require(const arguments& args, std::initializer_list<const char*> keys,
                       std::initializer_list<const char*> optional = {}) {
  for (const char* k : keys) {
    if (!args.has(k)) {
      return qcodec::status::failure(bad_usage, args.command + " needs --" + std::string(k));
    }
  }
  for (const auto& [key, value] : args.values) {
    bool known = false;
    for (const char* k : keys) known = known || key == k;
    for (const char* k : optional) known = known || key == k;
    if (!known) return qcodec::status::failure(bad_usage, "unknown option --" + key);
  }
  return {};
}

// Two decimal integers "R,C": digits only (from_chars takes no sign or blank for an unsigned
// type, where sscanf's %zu would read "-1" as SIZE_MAX), each one consumed whole and within
// size_t.
qcodec::result<std::pair<std::size_t, std::size_t>> parse_shape(const std::string& text) {
  const auto number = [](std::string_view digits, std::size_t& value) {
    const char* end = digits.data() + digits.size();
    const auto [ptr, ec] = std::from_chars(digits.data(), end, value);
    return ec == std::errc{} && ptr == end;
  };
  const std::size_t comma = text.find(',');
  std::size_t rows = 0, cols = 0;
  if (comma == std::string::npos || !number(std::string_view(text).substr(0, comma), rows) ||
      !number(std::string_view(text).substr(comma + 1), cols)) {
    return qcodec::status::failure(
        bad_usage, "--shape expects R,C (two non-negative integers), got '" + text + "'");
  }
  return std::pair{rows, cols};
}

// The largest matrix the tool takes, in values. Shapes come from the command line or a file
// header, and the codecs compute their sizes (encoded_bytes, per-row scratch) without overflow
// checks. No registered codec stores more than 64 bytes per value, row headers included (the most
// is 9: a group of one value with an fp32 scale and offset), so below this bound neither those
// sizes nor the float buffers can wrap. An empty matrix is refused: there is nothing to measure
// or encode in it, and its other dimension is bounded by nothing (no data backs it).
constexpr std::size_t max_values = SIZE_MAX / 64;

qcodec::status check_size(std::size_t rows, std::size_t cols, const qcodec::error_id& error,
                          const std::string& what) {
  const std::string shape = std::to_string(rows) + "x" + std::to_string(cols);
  if (rows == 0 || cols == 0) return qcodec::status::failure(error, what + " is empty: " + shape);
  if (rows > max_values / cols) {
    return qcodec::status::failure(error, what + " is too large: " + shape);
  }
  return {};
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A 2-D float matrix from --in (npy) or --in with --raw f32 --shape R,C.
qcodec::result<matrix> load_input(const arguments& args) {
  const std::string& path = args.get("in");
  matrix m;
  if (args.has("raw")) {
    if (args.get("raw") != "f32") {
      return qcodec::status::failure(bad_usage, "--raw supports only f32");
    }
    if (!args.has("shape")) return qcodec::status::failure(bad_usage, "--raw needs --shape R,C");
    auto shape = parse_shape(args.get("shape"));
    if (!shape) return shape.error();
    std::tie(m.rows, m.cols) = *shape;
    if (auto s = check_size(m.rows, m.cols, bad_usage, "--shape"); !s) return s;
    auto bytes = qcodec::io::read_file_bytes(path);
    if (!bytes) return bytes.error();
    if (bytes->size() != m.rows * m.cols * 4) {
      return qcodec::status::failure(
          qcodec::io::npy_errors::size_mismatch,
          path + ": " + std::to_string(m.rows) + "x" + std::to_string(m.cols) + " float32 need " +
              std::to_string(m.rows * m.cols * 4) + " bytes, got " + std::to_string(bytes->size()));
    }
    m.data.resize(m.rows * m.cols);
    if (!m.data.empty()) std::memcpy(m.data.data(), bytes->data(), bytes->size());
    return m;
  }
  auto array = qcodec::io::read_npy(path);
  if (!array) return array.error();
  if (array->shape.empty()) return qcodec::status::failure(bad_usage, path + ": a scalar array");
  m.cols = array->shape.back();
  m.rows = m.cols == 0 ? 0 : array->size() / m.cols;
  // An empty array's header can name any number of columns (the data does not bound them).
  if (auto s = check_size(m.rows, m.cols, qcodec::io::npy_errors::bad_shape, path); !s) return s;
  m.data = std::move(array->data);
  return m;
}

qcodec::status write_output(const std::string& path, const matrix& m) {
  if (ends_with(path, ".f32")) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return qcodec::status::failure(qcodec::io::npy_errors::io_failure, path);
    const bool ok = std::fwrite(m.data.data(), sizeof(float), m.data.size(), f) == m.data.size();
    if (std::fclose(f) != 0 || !ok) {
      return qcodec::status::failure(qcodec::io::npy_errors::io_failure, path);
    }
    return {};
  }
  const std::size_t shape[2] = {m.rows, m.cols};
  return qcodec::io::write_npy(path, m.data, shape);
}

// The codec of --codec and the input it will encode (the codec first: a typo in its name is
// reported before a large file is read).
qcodec::status load_codec_and_input(const arguments& args,
                                    std::unique_ptr<qcodec::any_codec>& codec, matrix& input) {
  auto made = qcodec::make_codec(args.get("codec"));
  if (!made) return made.error();
  codec = std::move(*made);
  auto loaded = load_input(args);
  if (!loaded) return loaded.error();
  input = std::move(*loaded);
  return codec->check_shape(input.rows, input.cols);
}

// A JSON number (JSON has no infinities or NaN: those become null).
std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", v);
  return text;
}

// Seconds per call of f, from enough repetitions to run for ~0.2 s (at least 3 calls).
template <class F>
double seconds_per_call(F&& f) {
  using clock = std::chrono::steady_clock;
  f();  // warm up
  std::size_t calls = 0;
  const auto start = clock::now();
  double elapsed = 0.0;
  do {
    f();
    ++calls;
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  } while (elapsed < 0.2 || calls < 3);
  return elapsed / static_cast<double>(calls);
}

int run_list() {
  std::printf("%-10s %12s  %s\n", "name", "bits/value", "description");
  for (const qcodec::codec_entry& e : qcodec::codec_registry()) {
    std::printf("%-10s %12.4g  %s\n", e.name, e.bits_per_value, e.description);
  }
  return 0;
}

qcodec::status run_stats(const arguments& args) {
  if (auto s = require(args, {"codec", "in"}, {"json", "raw", "shape"}); !s) return s;
  std::unique_ptr<qcodec::any_codec> codec;
  matrix x;
  if (auto s = load_codec_and_input(args, codec, x); !s) return s;
  const qcodec::any_codec& c = *codec;

  std::vector<std::uint8_t> encoded(c.encoded_bytes(x.rows, x.cols));
  matrix y{x.rows, x.cols, std::vector<float>(x.data.size())};
  const qcodec::matrix_view<float> y_view(y.data.data(), y.rows, y.cols);
  const double encode_s = seconds_per_call([&] { c.encode(x.view(), encoded); });
  qcodec::status decoded;
  const double decode_s = seconds_per_call([&] { decoded = c.decode(encoded, y_view); });
  if (!decoded) return decoded;

  double err = 0.0, energy = 0.0, max_abs = 0.0;
  for (std::size_t i = 0; i < x.data.size(); ++i) {
    const double d = static_cast<double>(y.data[i]) - static_cast<double>(x.data[i]);
    err += d * d;
    energy += static_cast<double>(x.data[i]) * static_cast<double>(x.data[i]);
    max_abs = std::max(max_abs, std::fabs(d));
  }
  const double rel_mse = energy > 0.0 ? err / energy : (err > 0.0 ? INFINITY : 0.0);
  const double snr_db = rel_mse > 0.0 ? -10.0 * std::log10(rel_mse) : INFINITY;
  const double mb = static_cast<double>(x.data.size() * sizeof(float)) / 1e6;
  const double bits = c.bits_per_value(x.rows, x.cols);
  if (args.has("json")) {
    std::printf(
        "{\"codec\": \"%s\", \"rows\": %zu, \"cols\": %zu, \"bits_per_value\": %s, "
        "\"rel_mse\": %s, \"max_abs_err\": %s, \"snr_db\": %s, \"encode_mb_per_s\": %s, "
        "\"decode_mb_per_s\": %s}\n",
        c.spec().c_str(), x.rows, x.cols, json_number(bits).c_str(), json_number(rel_mse).c_str(),
        json_number(max_abs).c_str(), json_number(snr_db).c_str(),
        json_number(mb / encode_s).c_str(), json_number(mb / decode_s).c_str());
  } else {
    std::printf("codec            %s\n", c.spec().c_str());
    std::printf("shape            %zu x %zu\n", x.rows, x.cols);
    std::printf("bits per value   %.4f\n", bits);
    std::printf("relative MSE     %.4e\n", rel_mse);
    std::printf("max abs error    %.4e\n", max_abs);
    std::printf("SNR              %.2f dB\n", snr_db);
    std::printf("encode           %.1f MB/s\n", mb / encode_s);
    std::printf("decode           %.1f MB/s\n", mb / decode_s);
  }
  return {};
}

qcodec::status run_encode(const arguments& args) {
  if (auto s = require(args, {"codec", "in", "raw-out"}, {"raw", "shape"}); !s) return s;
  std::unique_ptr<qcodec::any_codec> codec;
  matrix x;
  if (auto s = load_codec_and_input(args, codec, x); !s) return s;
  std::vector<std::uint8_t> encoded(codec->encoded_bytes(x.rows, x.cols));
  codec->encode(x.view(), encoded);
  const std::string& path = args.get("raw-out");
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return qcodec::status::failure(qcodec::io::npy_errors::io_failure, path);
  const bool ok = std::fwrite(encoded.data(), 1, encoded.size(), f) == encoded.size();
  if (std::fclose(f) != 0 || !ok) {
    return qcodec::status::failure(qcodec::io::npy_errors::io_failure, path);
  }
  return {};
}

qcodec::status run_decode(const arguments& args) {
  if (auto s = require(args, {"codec", "raw-in", "shape", "out"}); !s) return s;
  auto shape = parse_shape(args.get("shape"));
  if (!shape) return shape.error();
  auto codec = qcodec::make_codec(args.get("codec"));
  if (!codec) return codec.error();
  matrix y;
  std::tie(y.rows, y.cols) = *shape;
  // Before any size is computed from the shape: it comes from the user.
  if (auto s = check_size(y.rows, y.cols, bad_usage, "--shape"); !s) return s;
  if (auto s = (*codec)->check_shape(y.rows, y.cols); !s) return s;
  auto bytes = qcodec::io::read_file_bytes(args.get("raw-in"));
  if (!bytes) return bytes.error();
  if (bytes->size() != (*codec)->encoded_bytes(y.rows, y.cols)) {
    return qcodec::status::failure(qcodec::codec_errors::size_mismatch,
                                   args.get("raw-in") + ": " + std::to_string(y.rows) + "x" +
                                       std::to_string(y.cols) + " " + (*codec)->spec() +
                                       " values need " +
                                       std::to_string((*codec)->encoded_bytes(y.rows, y.cols)) +
                                       " bytes, the file has " + std::to_string(bytes->size()));
  }
  y.data.resize(y.rows * y.cols);
  if (auto s = (*codec)->decode(*bytes, {y.data.data(), y.rows, y.cols}); !s) return s;
  return write_output(args.get("out"), y);
}

}  // namespace

int main(int argc, char** argv) {
  auto args = parse_arguments(argc, argv);
  if (!args) {
    std::fprintf(stderr, "qcodec: %s\n%s", args.error().message().c_str(), usage_text);
    return 2;
  }
  qcodec::status s;
  if (args->command == "list") return run_list();
  if (args->command == "stats") {
    s = run_stats(*args);
  } else if (args->command == "encode") {
    s = run_encode(*args);
  } else if (args->command == "decode") {
    s = run_decode(*args);
  } else if (args->command == "--help" || args->command == "help") {
    std::printf("%s", usage_text);
    return 0;
  } else {
    std::fprintf(stderr, "qcodec: unknown command '%s'\n%s", args->command.c_str(), usage_text);
    return 2;
  }
  if (!s) {
    std::fprintf(stderr, "qcodec: %s\n", s.message().c_str());
    return s.is(bad_usage) ? 2 : 1;
  }
  return 0;
}
