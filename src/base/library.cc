#include "base/library.h"

#include <dlfcn.h>

namespace vessel {

Library::Library(const char* soname, const char* package) : soname_(soname), package_(package) {
  handle_ = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (handle_ == nullptr) {
    const char* why = ::dlerror();
    open_error_ = why ? why : "not found";
  }
}

void* Library::resolve(const char* symbol) {
  if (handle_ == nullptr) return nullptr;
  void* address = ::dlsym(handle_, symbol);
  if (address == nullptr) missing_ += (missing_.empty() ? "" : ", ") + std::string(symbol);
  return address;
}

Status Library::status() const {
  if (handle_ == nullptr)
    return Error(ErrorCode::kUnavailable,
                 "cannot load " + soname_ + ": " + open_error_ + " (install " + package_ + ")");
  if (!missing_.empty())
    return Error(ErrorCode::kUnavailable,
                 soname_ + " lacks " + missing_ + " (update " + package_ + ")");
  return ok_status();
}

}  // namespace vessel
