// Read-only ext4 snapshots of a root filesystem directory.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"

namespace vessel::rootfs {

struct Ext4Options {
  /// Volume label, at most 16 bytes (mke2fs -L).
  std::string label = "vessel-rootfs";
  /// The smallest image made, however little the directory holds.
  uint64_t min_size_bytes = 32ull << 20;
  /// Free space added on top of the estimate, in percent.
  unsigned headroom_percent = 20;
  /// mkfs.ext4 to run; empty: look in $PATH, then /usr/sbin and /sbin.
  std::string mkfs_path;
  /// Non-zero: a filesystem to be written in place, not a read-only
  /// snapshot: this much free room beyond what the tree needs, a journal
  /// (its blocks not zeroed: the file stays sparse), mke2fs's default of an
  /// inode per 16 KiB, and inode tables zeroed by mke2fs (holes in the file)
  /// so the guest's first mount starts no background zeroing.
  uint64_t writable_room_bytes = 0;
};

/// What a directory holds, as make_ext4_image counts it.
struct TreeUsage {
  uint64_t inodes = 0;        // distinct inodes (hardlinks counted once), the root included
  uint64_t data_bytes = 0;    // file, directory and long-symlink blocks, 4 KiB each
  uint64_t xattr_inodes = 0;  // inodes with xattrs (each may need an xattr block)
};

/// Walks `dir` without following symlinks or crossing mount points.
Result<TreeUsage> measure_tree(const std::string& dir);

/// Builds an ext4 image at `image_path` holding a copy of `dir` (mkfs.ext4
/// -d): owners, modes, xattrs, hardlinks, devices and mtimes preserved. The
/// image is sized from the content plus headroom, sparse, without a journal
/// (it is attached read-only). Writes `image_path`.tmp and renames it over
/// `image_path` only on success; a failed run leaves no file behind.
Status make_ext4_image(const std::string& dir, const std::string& image_path,
                       const Ext4Options& options = {});

}  // namespace vessel::rootfs
