#pragma once
// Recoverable outcomes: `status` (success, or an error with a stable message id).
//
// Every error qcodec can report is an `error_id` constant: a category (`errc`), a stable id
// such as "qcodec.io.3" that never changes meaning between releases, and a short text. A failed
// status renders as "[qcodec.io.3] bad magic: <detail>", so logs can be searched by id.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace qcodec {

/// Broad category of an error, for callers that branch on the kind of failure.
enum class errc : std::uint8_t {
  ok = 0,
  invalid_argument,  ///< the caller passed something outside the documented domain
  out_of_range,      ///< an index, length or capacity limit was exceeded
  buffer_too_small,  ///< an output buffer cannot hold the result
  corrupt_data,      ///< serialized bytes are inconsistent (bad magic, counts, enum values)
  truncated,         ///< serialized bytes end early
  unsupported,       ///< valid request this build or version does not handle
  not_found,         ///< a name (codec spec, file) does not resolve
  io_error,          ///< the operating system refused a read or write
  no_convergence,    ///< an iterative fit or training stopped without converging
};

/// A stable error identity: category, id ("qcodec.<area>.<n>") and a short description.
struct error_id {
  errc code;
  const char* id;
  const char* text;
};

/// Success, or an error with its id and a human-readable message. Cheap when ok.
class [[nodiscard]] status {
 public:
  /// Success.
  status() noexcept = default;

  /// A failure described by `what`, with optional detail appended to the message.
  static status failure(const error_id& what, std::string_view detail = {}) {
    status s;
    s.code_ = what.code;
    s.id_ = what.id;
    s.message_.append("[").append(what.id).append("] ").append(what.text);
    if (!detail.empty()) s.message_.append(": ").append(detail);
    return s;
  }

  [[nodiscard]] bool ok() const noexcept { return code_ == errc::ok; }
  explicit operator bool() const noexcept { return ok(); }
  [[nodiscard]] errc code() const noexcept { return code_; }
  /// The stable id ("qcodec.io.3"), or "" for success.
  [[nodiscard]] std::string_view id() const noexcept { return id_; }
  /// "[id] text: detail", or "" for success.
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  /// True when this status is the failure `what` (compares ids).
  [[nodiscard]] bool is(const error_id& what) const noexcept { return id_ == what.id; }

 private:
  errc code_ = errc::ok;
  std::string_view id_;
  std::string message_;
};

}  // namespace qcodec
