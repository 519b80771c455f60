#include "base/error.h"

#include <cstring>

namespace vessel {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kAlreadyExists:
      return "already exists";
    case ErrorCode::kPermissionDenied:
      return "permission denied";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kProtocol:
      return "protocol error";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kFailedPrecondition:
      return "failed precondition";
    case ErrorCode::kInternal:
      return "internal error";
  }
  return "unknown";
}

Error Error::from_errno(int errnum, std::string what) {
  ErrorCode code = ErrorCode::kInternal;
  switch (errnum) {
    case ENOENT:
      code = ErrorCode::kNotFound;
      break;
    case EEXIST:
      code = ErrorCode::kAlreadyExists;
      break;
    case EACCES:
    case EPERM:
      code = ErrorCode::kPermissionDenied;
      break;
    case EINVAL:
      code = ErrorCode::kInvalidArgument;
      break;
    case ETIMEDOUT:
      code = ErrorCode::kTimeout;
      break;
    default:
      break;
  }
  return Error(code, std::move(what), errnum);
}

Error Error::wrap(std::string context) const& {
  Error outer(code_, std::move(context), errnum_);
  outer.cause_ = std::make_shared<const Error>(*this);
  return outer;
}

Error Error::wrap(std::string context) && {
  Error outer(code_, std::move(context), errnum_);
  outer.cause_ = std::make_shared<const Error>(std::move(*this));
  return outer;
}

std::string Error::to_string() const {
  std::string out = message_;
  const Error* e = this;
  while (e->cause_) {
    e = e->cause_.get();
    if (!e->message_.empty()) out += ": " + e->message_;
  }
  if (e->errnum_ != 0) out += std::string(" (") + std::strerror(e->errnum_) + ")";
  return out;
}

}  // namespace vessel
