// Internal to the images layer: blobs verified but not yet in the content
// store, and opening files of an untrusted archive.
//
// A pull or load stages an image's blobs (each verified against its digest
// and size as it is written), builds the snapshot from them and commits
// them all only then, so a failure at any step (a bad layer, a full disk)
// leaves the content store exactly as it was. A crash leaves only ingest
// files, which the next Store::open removes.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"
#include "content/store.h"
#include "image/digest.h"

namespace vessel::images::detail {

class StagedBlobs {
 public:
  explicit StagedBlobs(content::Store& store) : store_(store) {}

  /// Whether the blob is in the store or staged here.
  bool has(const image::Digest& d) const;
  /// Where the blob's bytes are now: the staged file, else the store's.
  std::string path(const image::Digest& d) const;
  /// Takes a verified ingest (Store::verify or adopt_verified). A blob
  /// already staged keeps its first copy; this one is discarded.
  void add(const image::Digest& d, content::Ingest ingest);
  /// Stages `bytes` (a manifest or config) unless present.
  Status add_bytes(std::string_view bytes, const image::Digest& d);
  /// Reads a staged or stored blob of at most `limit` bytes, checking its digest.
  Result<std::string> read(const image::Digest& d, size_t limit) const;
  /// Commits every staged blob into the store.
  Status commit_all();

 private:
  content::Store& store_;
  mutable std::mutex mu_;
  std::map<std::string, content::Ingest> staged_;  // by digest string
};

/// Opens `rel` (a relative path) beneath the directory `dir_fd` for
/// reading, following no symlink and never leaving the directory
/// (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): an unpacked archive is
/// untrusted, and a symlink in it must not make us read a host file.
Result<UniqueFd> open_beneath(int dir_fd, const std::string& rel);

/// Copies the regular file `rel` beneath `dir_fd` (at most `limit` bytes)
/// into a new ingest of `store`; the ingest is hashed, not verified.
Result<content::Ingest> copy_into_ingest(content::Store& store, int dir_fd, const std::string& rel,
                                         uint64_t limit);

}  // namespace vessel::images::detail
