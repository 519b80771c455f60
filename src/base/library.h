#pragma once

#include <string>

#include "base/error.h"

namespace vessel {

/// A shared library opened when it is first needed (dlopen) instead of
/// being linked. For the large ones that most runs of a program never call:
/// loading a library and its own dependencies costs every start of every
/// program that links it (docs/architecture.md, "Libraries opened on
/// demand"). The handle is never closed: the pointers bound from it live as
/// long as the program.
class Library {
 public:
  /// Opens `soname`; `package` is the Debian package that provides it,
  /// named in the error when it is missing.
  Library(const char* soname, const char* package);

  /// Resolves `symbol` into `fn`, whose type is the declaration's from the
  /// library's header (`decltype(&symbol)`). A symbol not found leaves
  /// `fn` null and makes status() an error.
  template <typename Fn>
  void bind(Fn& fn, const char* symbol) {
    fn = reinterpret_cast<Fn>(resolve(symbol));
  }

  /// Ok once the library is open and every bind() found its symbol; else
  /// an error that names the library, its package and what was missing.
  Status status() const;

 private:
  void* resolve(const char* symbol);

  void* handle_ = nullptr;
  std::string soname_;
  std::string package_;
  std::string open_error_;
  std::string missing_;
};

}  // namespace vessel
