// Filesystem helpers returning Result.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace vessel::sys {

/// Reads a whole file (at most `limit` bytes; kInvalidArgument beyond).
Result<std::string> read_file(const std::string& path, size_t limit = 64u << 20);
/// Writes `data` to path.tmp, fsyncs and renames over `path`: readers see the
/// old or the new content, never a mix.
Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0644);
/// mkdir -p with `mode` for the directories it creates.
Status make_dirs(const std::string& path, mode_t mode = 0755);
/// rm -rf; a missing path is success. Does not cross mount points.
Status remove_tree(const std::string& path);
/// Creates a fresh directory `parent/prefixXXXXXX`, returns its path.
Result<std::string> make_temp_dir(const std::string& parent, const std::string& prefix);
/// Names in a directory, without "." and "..", in no particular order.
Result<std::vector<std::string>> list_dir(const std::string& path);
/// Opens with O_CLOEXEC added.
Result<UniqueFd> open_fd(const std::string& path, int flags, mode_t mode = 0);
/// An exclusive flock(2) on a lock file, held for the object's lifetime (and
/// released by the kernel if the process dies, which is what makes "the lock
/// is free" mean "its owner is gone").
class FileLock {
 public:
  /// Opens (creating) `path` and waits for the lock; `shared` takes a
  /// shared lock (many holders) instead of an exclusive one.
  static Result<FileLock> acquire(const std::string& path, bool shared = false);
  /// Takes the lock on an existing file if it is free now: nullopt when
  /// someone holds it, kNotFound when there is no such file.
  static Result<std::optional<FileLock>> try_acquire(const std::string& path);

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

/// `bytes` random bytes (getrandom) as lowercase hex: ids, generated names.
Result<std::string> random_hex(size_t bytes);

/// Copies the file `from` to a new file `to` (mode 0600, O_EXCL), keeping
/// holes (SEEK_DATA/SEEK_HOLE) and sharing blocks where the filesystem can
/// (copy_file_range), then makes it `size` bytes long (sparse) if that is
/// larger, and fsyncs it. A failure removes `to`.
Status copy_sparse(const std::string& from, const std::string& to, uint64_t size = 0);

/// Writes all of `data` to a blocking or non-blocking fd (polls on EAGAIN).
Status write_all(int fd, const void* data, size_t size);

}  // namespace vessel::sys
