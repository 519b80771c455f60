// Content-addressed blob store under the state root, shared by all images.
//
//   <root>/blobs/sha256/<hex>   committed blobs, read-only once there
//   <root>/ingest/<random>      downloads in progress
//
// A blob appears under blobs/ only by rename(2) after its digest and size
// were verified, so a crash at any point leaves either nothing or a whole,
// verified blob; what a dead writer left in ingest/ is removed by the next
// open (each ingest holds an flock while its writer lives).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "image/digest.h"

namespace vessel::content {

/// One blob being written. Data is hashed as it is written; commit()
/// verifies and publishes it. Destroying an uncommitted ingest removes it.
class Ingest {
 public:
  Ingest(Ingest&& other) noexcept;
  /// Discards (removes) this ingest's file unless committed, then takes `other`.
  Ingest& operator=(Ingest&& other) noexcept;
  ~Ingest();

  Status write(const void* data, size_t size);
  uint64_t bytes() const { return digest_ ? size_ : hasher_.bytes(); }
  /// The digest of what was written through write(). Hashing is final: no
  /// write() may follow.
  const image::Digest& content_digest();
  /// The temporary file, for writers that need a path (e.g. a downloader
  /// that verifies on its own): use write() or the path, not both.
  const std::string& path() const { return path_; }

 private:
  friend class Store;
  Ingest(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  void discard();
  UniqueFd fd_;
  std::string path_;
  image::Sha256 hasher_;
  /// Set once the content's digest is known (verify(), adopt_verified()).
  std::optional<image::Digest> digest_;
  uint64_t size_ = 0;  // with digest_: the content's size
  bool done_ = false;
};

class Store {
 public:
  /// Opens (creating) the store at `root` and removes abandoned ingests.
  static Result<Store> open(const std::string& root);

  const std::string& root() const { return root_; }
  /// Where the blob lives (whether or not it exists).
  std::string blob_path(const image::Digest& d) const;
  bool has(const image::Digest& d) const;
  /// Size of a committed blob.
  Result<uint64_t> size(const image::Digest& d) const;

  Result<Ingest> begin();
  /// Verifies what was written against `expected` (and `expected_size` when
  /// given), fsyncs and renames it into place. On mismatch the data is
  /// discarded and the error says "digest mismatch (expected …, got …)".
  Status commit(Ingest& ingest, const image::Digest& expected,
                std::optional<uint64_t> expected_size = std::nullopt);
  /// Checks what was written through write() against `expected` (and
  /// `expected_size`) without publishing it, so that a caller can stage
  /// several blobs and commit them only once all of them are good. Errors as
  /// commit(); a verified ingest may then be commit()ed without hashing again.
  Status verify(Ingest& ingest, const image::Digest& expected,
                std::optional<uint64_t> expected_size = std::nullopt);
  /// Like commit() for a file written through ingest.path(): hashes it first.
  Status commit_file(Ingest& ingest, const image::Digest& expected,
                     std::optional<uint64_t> expected_size = std::nullopt);
  /// Marks a file written through ingest.path() as holding `digest`, as its
  /// writer established while writing it (RegistryClient::fetch_blob hashes
  /// and counts every byte it writes and fails on a mismatch), so that
  /// commit() does not read it again. Only the size is checked here (fstat).
  /// The caller vouches for the digest: never use this for bytes nobody
  /// hashed.
  Status adopt_verified(Ingest& ingest, const image::Digest& digest, uint64_t size);

  /// Stores small content (manifests, configs) and returns its digest.
  Result<image::Digest> put(std::string_view bytes);
  /// Reads a blob of at most `limit` bytes.
  Result<std::string> read(const image::Digest& d, size_t limit = 16u << 20) const;
  /// Removes a blob; a missing blob is success.
  Status remove(const image::Digest& d);
  /// Every committed blob.
  Result<std::vector<image::Digest>> list() const;

 private:
  explicit Store(std::string root) : root_(std::move(root)) {}
  void remove_abandoned_ingests();
  Status publish(Ingest& ingest, const image::Digest& actual, const image::Digest& expected,
                 std::optional<uint64_t> expected_size);

  std::string root_;
};

}  // namespace vessel::content
