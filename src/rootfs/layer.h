// Applying OCI image layers (tar streams) onto a directory.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"

namespace vessel::rootfs {

/// Limits and labels for one apply_layer call.
struct ApplyOptions {
  /// Names the layer in error messages, e.g. "sha256:ab12…". Empty: "layer".
  std::string display_name;
  /// More entries than this is an error (a layer of empty entries still costs inodes).
  uint64_t max_entries = 1'000'000;
  /// Total bytes of file content; 0 means no limit.
  uint64_t max_bytes = 0;
  /// chown entries to the uid/gid in the tar (needs CAP_CHOWN). When false,
  /// files belong to the caller.
  bool preserve_ownership = true;
  /// Apply OCI whiteouts (".wh.<name>" deletes <name>). Off for archives
  /// that are not layers (vessel cp), where such a name is just a file.
  bool whiteouts = true;
};

/// What one layer contained.
struct LayerStats {
  uint64_t entries = 0;  // tar headers read, whiteouts included
  uint64_t bytes = 0;    // file content written (holes of sparse files excluded)
};

/// Reads a layer tar from `tar_fd` (uncompressed, gzip or zstd; detected from
/// the stream) and applies it onto `root_dir` following the OCI image-spec
/// layer rules: whiteouts (".wh.<name>") delete from lower layers, an opaque
/// marker (".wh..wh..opq") empties its directory of lower-layer entries, a
/// directory entry over an existing directory merges, any other entry
/// replaces what was there. Ownership, mode (with setuid/setgid/sticky),
/// xattrs and mtimes are kept; sparse files stay sparse.
///
/// The tar is untrusted. Every path is resolved beneath `root_dir` without
/// following any symlink (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so
/// an entry with a ".." component or an absolute name, one that goes through
/// a symlink (placed by this or an earlier layer), or a hardlink whose target
/// is such a path, is rejected with kInvalidArgument and a message naming
/// the layer and the entry. Nothing is ever created outside `root_dir`.
///
/// Does not roll back: on error `root_dir` holds a partial layer. Callers
/// apply into a temporary directory and rename it into place only on success.
/// Does not take ownership of `tar_fd`, and reads it to the end of the tar.
Result<LayerStats> apply_layer(int tar_fd, const std::string& root_dir,
                               const ApplyOptions& options = {});

/// apply_layer on the file at `tar_path`.
Result<LayerStats> apply_layer_file(const std::string& tar_path, const std::string& root_dir,
                                    const ApplyOptions& options = {});

}  // namespace vessel::rootfs
