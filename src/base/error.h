// The project's one error type and Result<T>.
#pragma once

#include <cerrno>
#include <memory>
#include <string>
#include <utility>
#include <variant>

namespace vessel {

/// A small closed set of error codes. Callers branch on the code, never on the text.
enum class ErrorCode {
  kInvalidArgument,  // the user's input is wrong (flag, path, name)
  kNotFound,         // a named thing does not exist
  kAlreadyExists,
  kPermissionDenied,
  kUnavailable,  // a required component is missing (QEMU, kernel, KVM)
  kProtocol,     // a peer (the guest, QEMU) sent something malformed
  kTimeout,
  kFailedPrecondition,
  kInternal,  // a system call failed; errnum says which errno
};

/// Name of a code, for messages and logs ("not found").
const char* error_code_name(ErrorCode code);

/// An error: a code, the errno where there is one, a message and a cause chain.
class Error {
 public:
  Error(ErrorCode code, std::string message, int errnum = 0)
      : code_(code), errnum_(errnum), message_(std::move(message)) {}

  /// An error for a failed system call: the code follows the errno.
  static Error from_errno(int errnum, std::string what);

  ErrorCode code() const { return code_; }
  int errnum() const { return errnum_; }
  const std::string& message() const { return message_; }
  const Error* cause() const { return cause_.get(); }

  /// Returns a new error whose message is `context` and whose cause is this one.
  Error wrap(std::string context) const&;
  Error wrap(std::string context) &&;

  /// "context: cause: root cause (strerror)".
  std::string to_string() const;

 private:
  ErrorCode code_;
  int errnum_;
  std::string message_;
  std::shared_ptr<const Error> cause_;
};

/// Either a T or an Error. A minimal std::expected for C++20.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

/// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::make_shared<Error>(std::move(error))) {}

  bool ok() const { return !error_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *error_; }

 private:
  std::shared_ptr<Error> error_;
};

using Status = Result<void>;

inline Status ok_status() {
  return {};
}

}  // namespace vessel

/// Evaluates a Result-returning expression; returns its error from the
/// enclosing function if it failed.
#define VESSEL_TRY(expr)                                              \
  do {                                                                \
    auto vessel_try_r_ = (expr);                                      \
    if (!vessel_try_r_.ok()) return std::move(vessel_try_r_).error(); \
  } while (0)

#define VESSEL_CONCAT_INNER_(a, b) a##b
#define VESSEL_CONCAT_(a, b) VESSEL_CONCAT_INNER_(a, b)

/// Declares `lhs` from the value of a Result, or returns its error.
#define VESSEL_ASSIGN_OR_RETURN(lhs, expr) \
  VESSEL_ASSIGN_OR_RETURN_IMPL_(VESSEL_CONCAT_(vessel_r_, __LINE__), lhs, expr)
#define VESSEL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).error();       \
  lhs = std::move(tmp).value()
