#pragma once
// result<T>: a value, or the status explaining why there is none (an `expected`-like type that
// works with exceptions disabled; reading the value of a failed result is a precondition
// violation caught by QCODEC_ASSERT, never an exception).

#include <qcodec/core/assert.hpp>
#include <qcodec/core/status.hpp>

#include <type_traits>
#include <utility>
#include <variant>

namespace qcodec {

template <class T>
class [[nodiscard]] result {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, status>, "use status directly");

 public:
  /// A successful result holding `value`.
  result(T value) : state_(std::in_place_index<1>, std::move(value)) {}  // NOLINT(implicit)
  /// A failed result; `error` must not be ok.
  result(status error) : state_(std::in_place_index<0>, std::move(error)) {  // NOLINT(implicit)
    QCODEC_ASSERT(!std::get<0>(state_).ok(), "a result built from a status must be a failure");
  }

  [[nodiscard]] bool ok() const noexcept { return state_.index() == 1; }
  explicit operator bool() const noexcept { return ok(); }

  [[nodiscard]] T& value() & noexcept {
    QCODEC_ASSERT(ok(), "value() of a failed result");
    return *std::get_if<1>(&state_);
  }
  [[nodiscard]] const T& value() const& noexcept {
    QCODEC_ASSERT(ok(), "value() of a failed result");
    return *std::get_if<1>(&state_);
  }
  [[nodiscard]] T&& value() && noexcept {
    QCODEC_ASSERT(ok(), "value() of a failed result");
    return std::move(*std::get_if<1>(&state_));
  }
  T& operator*() & noexcept { return value(); }
  const T& operator*() const& noexcept { return value(); }
  T* operator->() noexcept { return &value(); }
  const T* operator->() const noexcept { return &value(); }

  /// The error; a success status when ok().
  [[nodiscard]] status error() const {
    return ok() ? status{} : *std::get_if<0>(&state_);
  }

 private:
  std::variant<status, T> state_;
};

}  // namespace qcodec
