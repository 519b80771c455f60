// Local images: pulling (registry -> content store), the name index, and the
// ext4 snapshot each image runs from.
//
//   <root>/content/...                blobs (content::Store)
//   <root>/images/index.json          name -> manifest, written atomically
//   <root>/images/lock                flock serialising index updates
//   <root>/snapshots/<hex>.ext4       one read-only snapshot per manifest
//   <root>/tmp/                       unpack directories, removed after use
//
// Every step publishes by rename, so a crash leaves either the old state or
// the new one; leftovers in tmp/ and content/ingest are removed on open.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "content/store.h"
#include "image/config.h"
#include "image/digest.h"
#include "image/manifest.h"
#include "image/platform.h"
#include "image/reference.h"
#include "registry/client.h"

namespace vessel::images {

struct ImageRecord {
  std::string name;        // canonical reference: "docker.io/library/busybox:latest"
  image::Digest manifest;  // the platform-specific manifest
  image::Digest config;
  std::string platform;  // "linux/amd64"
  uint64_t size = 0;     // compressed layers + config
  std::vector<image::Digest> layers;
};

/// What a pull reports as it goes.
struct PullEvent {
  enum class Kind { kResolved, kLayerStart, kLayerBytes, kLayerDone, kLayerCached, kUnpacking };
  Kind kind;
  image::Digest digest;  // the layer (or the manifest for kResolved)
  int64_t bytes = 0, total = 0;
};

struct PullOptions {
  registry::Scheme scheme = registry::Scheme::kAuto;
  bool insecure_tls = false;
  std::optional<image::Platform> platform;  // default: the host's
  int max_concurrent_downloads = 3;
  /// Directory holding Vessel's credentials (config.json); "" for the state
  /// root, where `vessel registry login` writes them.
  std::string credentials_dir;
  /// Called from the pulling threads, serialised by the store.
  std::function<void(const PullEvent&)> progress;
};

class ImageStore {
 public:
  /// Opens (creating) the image store under the state root.
  static Result<ImageStore> open(const std::string& state_root);

  /// Resolves `ref` in its registry, downloads what the content store lacks
  /// (verifying every blob), builds the snapshot and records the name.
  Result<ImageRecord> pull(const image::Reference& ref, const PullOptions& options);
  /// Imports the images of an OCI image layout directory (index.json,
  /// blobs/sha256/...): every blob is verified into the content store, the
  /// snapshot built and the name recorded. An image's name comes from its
  /// "org.opencontainers.image.ref.name" annotation: a full reference is used
  /// as is, a bare tag is appended to `repository` (required then). Errors
  /// do not name `dir`: the caller knows what the user gave.
  Result<std::vector<ImageRecord>> load_layout(const std::string& dir,
                                               const std::string& repository = "");
  /// The image recorded under `ref`'s canonical name, if any.
  Result<std::optional<ImageRecord>> find(const image::Reference& ref) const;
  Result<std::vector<ImageRecord>> list() const;
  /// Records `image` under a second name.
  Status tag(const ImageRecord& image, const image::Reference& target);
  /// Forgets the name; the data stays until prune(). kNotFound if absent.
  Status remove(const image::Reference& ref);
  struct PruneStats {
    uint64_t blobs = 0, snapshots = 0, bytes = 0;
  };
  /// Removes blobs and snapshots no recorded image refers to. Waits for
  /// pulls in progress (they hold the gc lock shared) so their new blobs,
  /// not yet named, are not taken.
  Result<PruneStats> prune();
  /// The manifest bytes as stored.
  Result<std::string> manifest_bytes(const ImageRecord& image) const;
  /// Uploads the image's blobs (those the registry lacks) and manifest
  /// under `target`.
  Status push(const ImageRecord& image, const image::Reference& target, const PullOptions& options);
  Result<image::ImageConfig> config(const ImageRecord& image) const;
  /// Path of the image's ext4 snapshot, building it if it is missing.
  Result<std::string> snapshot(const ImageRecord& image);

 private:
  explicit ImageStore(std::string root, content::Store store)
      : root_(std::move(root)), store_(std::move(store)) {}
  Result<std::vector<ImageRecord>> read_index() const;
  Status record(const ImageRecord& image);
  Status build_snapshot(const ImageRecord& image, const std::string& path);
  /// Copies blob `d` (at most `size` bytes) from a layout into the store.
  Status import_blob(const std::string& layout, const image::Digest& d, int64_t size);
  /// Imports one image manifest of a layout under `name`.
  Result<ImageRecord> import_manifest(const std::string& layout, const image::Descriptor& desc,
                                      const std::string& name);

  std::string root_;
  content::Store store_;
};

}  // namespace vessel::images
