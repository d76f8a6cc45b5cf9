#pragma once
// Reading and writing NumPy `.npy` arrays of floats (format versions 1.0, 2.0 and 3.0), for the
// tools and tests that load real tensors (K/V dumps, weights).
//
// Reading accepts little-endian float16 ('<f2'), float32 ('<f4') and float64 ('<f8') arrays in
// C order with any number of dimensions, and converts every element to float. The bytes are
// untrusted: the magic, version, header length and dictionary, the shape (element count
// overflow) and the payload size are validated before anything is read, and every problem is a
// status with a stable id, never undefined behaviour. Writing produces version 1.0 '<f4' files.
//
// Spec: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html

#include <qcodec/core/half.hpp>
#include <qcodec/core/result.hpp>
#include <qcodec/core/status.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qcodec::io {

namespace npy_errors {
inline constexpr error_id bad_magic{errc::corrupt_data, "qcodec.npy.1", "not a .npy file"};
inline constexpr error_id bad_version{errc::unsupported, "qcodec.npy.2",
                                      "unsupported .npy format version"};
inline constexpr error_id truncated{errc::truncated, "qcodec.npy.3", "the .npy file ends early"};
inline constexpr error_id bad_header{errc::corrupt_data, "qcodec.npy.4", "malformed .npy header"};
inline constexpr error_id bad_dtype{errc::unsupported, "qcodec.npy.5",
                                    "unsupported dtype (expected <f2, <f4 or <f8)"};
inline constexpr error_id fortran_order{errc::unsupported, "qcodec.npy.6",
                                        "Fortran-ordered arrays are not supported"};
inline constexpr error_id bad_shape{errc::corrupt_data, "qcodec.npy.7", "invalid shape"};
inline constexpr error_id size_mismatch{errc::corrupt_data, "qcodec.npy.8",
                                        "payload size does not match the shape"};
inline constexpr error_id io_failure{errc::io_error, "qcodec.npy.9", "cannot read or write file"};
}  // namespace npy_errors

/// A dense float array read from a .npy file: `shape` (outermost first) and the elements in
/// C (row-major) order, converted to float.
struct npy_array {
  std::vector<std::size_t> shape;
  std::vector<float> data;
  /// The dtype stored in the file: "<f2", "<f4" or "<f8".
  std::string dtype;

  [[nodiscard]] std::size_t size() const noexcept { return data.size(); }
};

namespace detail {

inline std::string_view npy_trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// The value of `key` in the header dictionary: the text after "'key':" up to the next top-level
// comma or the closing brace (parentheses nest for the shape tuple).
inline bool npy_dict_value(std::string_view dict, std::string_view key, std::string_view& value) {
  // The key in single quotes (found without building a string: GCC 12 misreports that).
  std::size_t k = dict.find(key);
  while (k != std::string_view::npos &&
         (k == 0 || dict[k - 1] != '\'' || k + key.size() >= dict.size() ||
          dict[k + key.size()] != '\'')) {
    k = dict.find(key, k + 1);
  }
  if (k == std::string_view::npos) return false;
  std::size_t i = k + key.size() + 1;
  while (i < dict.size() && dict[i] == ' ') ++i;
  if (i >= dict.size() || dict[i] != ':') return false;
  ++i;
  const std::size_t start = i;
  int depth = 0;
  for (; i < dict.size(); ++i) {
    const char c = dict[i];
    if (c == '(') ++depth;
    if (c == ')') {
      if (depth == 0) return false;
      --depth;
    }
    if (depth == 0 && (c == ',' || c == '}')) break;
  }
  if (i >= dict.size() || depth != 0) return false;
  value = npy_trim(dict.substr(start, i - start));
  return true;
}

inline bool npy_parse_shape(std::string_view text, std::vector<std::size_t>& shape) {
  if (text.size() < 2 || text.front() != '(' || text.back() != ')') return false;
  text = text.substr(1, text.size() - 2);
  shape.clear();
  while (true) {
    text = npy_trim(text);
    if (text.empty()) return true;
    std::size_t v = 0, digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
      const std::size_t d = static_cast<std::size_t>(text[digits] - '0');
      if (v > (std::numeric_limits<std::size_t>::max() - d) / 10) return false;
      v = v * 10 + d;
      ++digits;
    }
    if (digits == 0) return false;
    shape.push_back(v);
    text = npy_trim(text.substr(digits));
    if (text.empty()) return true;
    if (text.front() != ',') return false;
    text.remove_prefix(1);
  }
}

inline std::uint32_t npy_read_le(const std::uint8_t* p, std::size_t bytes) noexcept {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i) v |= static_cast<std::uint32_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace detail

/// Parses a whole .npy file held in memory.
[[nodiscard]] inline result<npy_array> parse_npy(std::span<const std::uint8_t> bytes) {
  using namespace npy_errors;
  static constexpr std::uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (bytes.size() < 8) return status::failure(truncated, "in the magic string");
  if (std::memcmp(bytes.data(), magic, 6) != 0) return status::failure(bad_magic);
  const std::uint8_t major = bytes[6];
  if (major < 1 || major > 3) {
    return status::failure(bad_version, std::to_string(major) + "." + std::to_string(bytes[7]));
  }
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  if (bytes.size() < 8 + length_bytes) return status::failure(truncated, "in the header length");
  const std::size_t header_len = detail::npy_read_le(bytes.data() + 8, length_bytes);
  const std::size_t data_start = 8 + length_bytes + header_len;
  if (bytes.size() < data_start) return status::failure(truncated, "in the header");
  const std::string_view dict(reinterpret_cast<const char*>(bytes.data() + 8 + length_bytes),
                              header_len);

  std::string_view descr, order, shape_text;
  if (!detail::npy_dict_value(dict, "descr", descr) ||
      !detail::npy_dict_value(dict, "fortran_order", order) ||
      !detail::npy_dict_value(dict, "shape", shape_text)) {
    return status::failure(bad_header, "expected the keys descr, fortran_order and shape");
  }
  npy_array out;
  std::size_t element_bytes = 0;
  if (descr == "'<f2'") {
    element_bytes = 2;
  } else if (descr == "'<f4'") {
    element_bytes = 4;
  } else if (descr == "'<f8'") {
    element_bytes = 8;
  } else {
    return status::failure(bad_dtype, std::string(descr));
  }
  out.dtype = std::string(descr.substr(1, 3));
  if (order == "True") return status::failure(fortran_order);
  if (order != "False") return status::failure(bad_header, "fortran_order is not a boolean");
  if (!detail::npy_parse_shape(shape_text, out.shape)) {
    return status::failure(bad_shape, std::string(shape_text));
  }
  // The bytes of the non-zero dimensions must fit in size_t even when another dimension is 0, as
  // NumPy requires: callers compute sizes from single dimensions or partial products, which a
  // zero elsewhere in the shape does not protect, e.g. (0, 2^64-1, 2^64-1).
  std::size_t nonzero_count = 1;
  bool empty = false;
  for (std::size_t d : out.shape) {
    if (d == 0) {
      empty = true;
      continue;
    }
    if (nonzero_count > std::numeric_limits<std::size_t>::max() / element_bytes / d) {
      return status::failure(bad_shape, "element count overflows");
    }
    nonzero_count *= d;
  }
  const std::size_t count = empty ? 0 : nonzero_count;
  const std::size_t payload = bytes.size() - data_start;
  if (payload != count * element_bytes) {
    return status::failure(payload < count * element_bytes ? truncated : size_mismatch,
                           std::to_string(count) + " elements need " +
                               std::to_string(count * element_bytes) + " bytes, the file has " +
                               std::to_string(payload));
  }
  out.data.resize(count);
  const std::uint8_t* p = bytes.data() + data_start;
  for (std::size_t i = 0; i < count; ++i, p += element_bytes) {
    if (element_bytes == 2) {
      out.data[i] =
          half::from_bits(static_cast<std::uint16_t>(detail::npy_read_le(p, 2))).to_float();
    } else if (element_bytes == 4) {
      out.data[i] = std::bit_cast<float>(detail::npy_read_le(p, 4));
    } else {
      const std::uint64_t lo = detail::npy_read_le(p, 4), hi = detail::npy_read_le(p + 4, 4);
      out.data[i] = static_cast<float>(std::bit_cast<double>(lo | (hi << 32)));
    }
  }
  return out;
}

/// Reads a whole file into memory.
[[nodiscard]] inline result<std::vector<std::uint8_t>> read_file_bytes(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return status::failure(npy_errors::io_failure, path);
  std::vector<std::uint8_t> bytes;
  std::uint8_t buffer[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0)
    bytes.insert(bytes.end(), buffer, buffer + n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return status::failure(npy_errors::io_failure, path);
  return bytes;
}

/// Reads a .npy file (see parse_npy for what is accepted; error messages do not repeat the path).
[[nodiscard]] inline result<npy_array> read_npy(const std::string& path) {
  result<std::vector<std::uint8_t>> bytes = read_file_bytes(path);
  if (!bytes) return bytes.error();
  return parse_npy(*bytes);
}

/// The bytes of a version 1.0 '<f4' .npy file holding `data` with `shape` (C order).
[[nodiscard]] inline std::vector<std::uint8_t> serialize_npy(std::span<const float> data,
                                                             std::span<const std::size_t> shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) dict += shape.size() == 1 ? "," : ", ";
  }
  dict += "), }";
  // Pad with spaces so that the data starts at a multiple of 64 bytes, ending in '\n'.
  const std::size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  // Sized up front and filled in place (GCC 12 misreports inserts into a short vector).
  std::vector<std::uint8_t> out(10 + dict.size() + 4 * data.size());
  static constexpr std::uint8_t preamble[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  std::memcpy(out.data(), preamble, 8);
  out[8] = static_cast<std::uint8_t>(dict.size() & 0xFF);
  out[9] = static_cast<std::uint8_t>(dict.size() >> 8);
  std::memcpy(out.data() + 10, dict.data(), dict.size());
  std::uint8_t* p = out.data() + 10 + dict.size();
  for (float v : data) {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(v);
    for (int b = 0; b < 4; ++b) *p++ = static_cast<std::uint8_t>(bits >> (8 * b));
  }
  return out;
}

/// Writes `data` with `shape` as a version 1.0 '<f4' .npy file.
[[nodiscard]] inline status write_npy(const std::string& path, std::span<const float> data,
                                      std::span<const std::size_t> shape) {
  const std::vector<std::uint8_t> bytes = serialize_npy(data, shape);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return status::failure(npy_errors::io_failure, path);
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed) return status::failure(npy_errors::io_failure, path);
  return {};
}

}  // namespace qcodec::io
