#pragma once
// Codec specs: the strings engines and tools use to pick a codec at run time, e.g. "q4_K",
// "nf4:group=64", "uniform:bits=3,group=128". Grammar:
//
//   spec    = name [ ":" option { "," option } ]
//   option  = key "=" value
//
// Names and keys are case-sensitive; whitespace is not allowed, nor a key given twice. Each codec
// documents the keys it accepts and rejects any other (a typo must not silently select a
// default).

#include <qcodec/core/result.hpp>
#include <qcodec/core/status.hpp>

#include <charconv>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qcodec {

namespace codec_errors {
inline constexpr error_id bad_spec{errc::invalid_argument, "qcodec.codec.1",
                                   "malformed codec spec"};
inline constexpr error_id unknown_codec{errc::not_found, "qcodec.codec.2", "unknown codec"};
inline constexpr error_id unknown_option{errc::invalid_argument, "qcodec.codec.3",
                                         "unknown codec option"};
inline constexpr error_id bad_option{errc::invalid_argument, "qcodec.codec.4",
                                     "invalid codec option value"};
inline constexpr error_id bad_shape{errc::invalid_argument, "qcodec.codec.5",
                                    "the codec cannot encode this shape"};
inline constexpr error_id size_mismatch{errc::truncated, "qcodec.codec.6",
                                        "encoded data does not match the shape"};
}  // namespace codec_errors

/// The shortest text that reads back as x (how specs write float options).
[[nodiscard]] inline std::string float_text(float x) {
  char buffer[32];  // holds any float
  return std::string(buffer, std::to_chars(buffer, buffer + sizeof buffer, x).ptr);
}

/// A parsed codec spec: the name and its options in the order given.
class codec_spec {
 public:
  /// Parses `text` (grammar above).
  [[nodiscard]] static result<codec_spec> parse(std::string_view text) {
    codec_spec spec;
    const std::size_t colon = text.find(':');
    spec.name_ = std::string(text.substr(0, colon));
    if (spec.name_.empty()) return status::failure(codec_errors::bad_spec, "empty name");
    if (colon == std::string_view::npos) return spec;
    std::string_view rest = text.substr(colon + 1);
    while (true) {
      const std::size_t comma = rest.find(',');
      const std::string_view option = rest.substr(0, comma);
      const std::size_t eq = option.find('=');
      if (eq == std::string_view::npos || eq == 0 || eq + 1 == option.size()) {
        return status::failure(codec_errors::bad_spec,
                               "expected key=value, got '" + std::string(option) + "'");
      }
      const std::string_view key = option.substr(0, eq);
      for (const auto& seen : spec.options_) {
        if (seen.first == key) {  // one of the two would go unread, unchecked
          return status::failure(codec_errors::bad_spec,
                                 "option '" + std::string(key) + "' given twice");
        }
      }
      spec.options_.emplace_back(std::string(key), std::string(option.substr(eq + 1)));
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
    return spec;
  }

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& options() const noexcept {
    return options_;
  }

  /// The options not in `known`, as an unknown_option failure (success when all are known).
  [[nodiscard]] status only_options(std::initializer_list<std::string_view> known) const {
    for (const auto& [key, value] : options_) {
      bool found = false;
      for (std::string_view k : known) found = found || k == key;
      if (!found) return status::failure(codec_errors::unknown_option, name_ + ": " + key);
    }
    return {};
  }

  /// The unsigned integer value of option `key` in [lo, hi], or `fallback` when absent.
  [[nodiscard]] result<std::size_t> get_uint(std::string_view key, std::size_t fallback,
                                             std::size_t lo, std::size_t hi) const {
    for (const auto& [k, value] : options_) {
      if (k != key) continue;
      std::size_t v = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc{} || end != value.data() + value.size() || v < lo || v > hi) {
        return status::failure(codec_errors::bad_option,
                               name_ + ": " + k + "=" + value + " (expected an integer in " +
                                   std::to_string(lo) + ".." + std::to_string(hi) + ")");
      }
      return v;
    }
    return fallback;
  }

  /// The finite number value of option `key` in [lo, hi], or `fallback` when absent.
  [[nodiscard]] result<float> get_float(std::string_view key, float fallback, float lo,
                                        float hi) const {
    for (const auto& [k, value] : options_) {
      if (k != key) continue;
      float v = 0.0f;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc{} || end != value.data() + value.size() || !std::isfinite(v) ||
          !(v >= lo && v <= hi)) {
        return status::failure(codec_errors::bad_option,
                               name_ + ": " + k + "=" + value + " (expected a number in " +
                                   float_text(lo) + ".." + float_text(hi) + ")");
      }
      return v;
    }
    return fallback;
  }

 private:
  std::string name_;
  std::vector<std::pair<std::string, std::string>> options_;
};

}  // namespace qcodec
