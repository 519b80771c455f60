// A small tar writer and reader for CopyOut and CopyIn: ustar headers, with
// PAX extended headers for what ustar cannot hold (long names and link
// targets, sizes of 8 GiB and more, large ids, mtimes before 1970 or after
// 2242). Regular files, directories, symlinks, hardlinks, fifos and device
// nodes; modes, uid/gid and mtimes. No xattrs, no sparse files.
//
// Part of vessel-init (static, no exceptions), and plain functions over file
// descriptors, so the host builds and unit-tests the same source
// (guest_tar_test).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "guest/system.h"

namespace vessel::guest::tar {

struct WriteOptions {
  /// The archive name of the top entry; every other entry is named
  /// "<name>/<path below the top>". "." (or a top path whose last component
  /// is "." or that is "/"): the top directory has no entry and the rest is
  /// named by its path below the top.
  std::string name;
  /// Do not descend into a directory on another filesystem than the top's
  /// (it is archived empty), and leave out anything else on one.
  bool one_file_system = false;
  /// Archive the top entry only (a stat): a regular file's header says its
  /// size but no data follows, so only that header is to be read.
  bool top_only = false;
};

/// Writes a tar archive of `path`, whose stat(2) or lstat(2) is `top`
/// (`follow_top`: `path` is followed if it is a symlink; nothing below it
/// ever is), to `out_fd` (blocking). A file that cannot be read or vanishes
/// while being archived is reported as a line on `err_fd` and skipped (a
/// file that shrinks is padded with zeros, one that grows is cut). Returns
/// the number of such problems, or a failure when writing to `out_fd` fails.
Result<uint64_t> write_archive(const std::string& path, const struct stat& top, bool follow_top,
                               const WriteOptions& options, int out_fd, int err_fd);

struct ExtractOptions {
  /// chown entries to the archive's uid/gid; otherwise they belong to the
  /// caller (root in the guest).
  bool keep_owner = false;
  /// Fail on an entry that would replace a directory with a non-directory
  /// or a non-directory with a directory (Docker's noOverwriteDirNonDir);
  /// otherwise the entry replaces what is there (a directory only if empty).
  bool no_overwrite_dir_non_dir = false;
  /// Create fifos and device nodes (root only); otherwise they are skipped.
  bool devices = true;
};

/// Reads a tar archive from `in_fd` (blocking) and extracts it beneath the
/// directory `dest_fd`, which it does not own.
///
/// The archive is untrusted. It may not name anything outside `dest_fd`: an
/// absolute name or a ".." component is refused, every directory on the way
/// to an entry is resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
/// | RESOLVE_NO_MAGICLINKS), so no entry is written through a symlink
/// (whether the archive made it or it was there), and a hardlink's target
/// is resolved the same way. Headers are checksummed; every number is
/// bounded, a PAX header is at most 1 MiB and a name at most 4096 bytes.
/// Missing parent directories are created (0755). An entry replaces what is
/// there, but a directory merges into an existing one.
///
/// Stops at the first bad entry with a message naming it; what was
/// extracted before stays. Reads `in_fd` to its end on success.
Status extract_archive(int in_fd, int dest_fd, const ExtractOptions& options);

}  // namespace vessel::guest::tar
