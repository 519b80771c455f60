// Local images: pulling (registry -> content store), the name index, and the
// ext4 snapshot each image runs from.
//
//   <root>/content/...                blobs (content::Store)
//   <root>/images/index.json          name -> manifest, written atomically
//   <root>/images/lock                flock serialising index updates
//   <root>/snapshots/<hex>.ext4       one read-only snapshot per manifest
//   <root>/snapshots/<hex>.root.ext4  its writable base: the same files in an
//                                     ext4 with a journal and room to write,
//                                     made at its first writable container,
//                                     under each container's own qcow2
//   <root>/tmp/                       unpack directories, removed after use
//
// Every step publishes by rename, so a crash leaves either the old state or
// the new one; leftovers in tmp/ and content/ingest are removed on open.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "rootfs/ext4.h"

#include "base/error.h"
#include "content/store.h"
#include "image/config.h"
#include "image/digest.h"
#include "image/manifest.h"
#include "image/platform.h"
#include "image/reference.h"
#include "images/docker_archive.h"
#include "registry/client.h"

namespace vessel::images {

namespace detail {
class StagedBlobs;
}

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
  /// Credentials to use instead of the stored ones (the Docker API's
  /// X-Registry-Auth).
  std::optional<registry::Credentials> credentials;
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
  /// blobs/sha256/...): every blob is verified, the snapshot built from
  /// them, and only then are the blobs committed to the content store and
  /// the name recorded, so a failure leaves the store as it was. An image's
  /// name comes from its "io.containerd.image.name" annotation (Docker 25+,
  /// containerd), else "org.opencontainers.image.ref.name": a full reference
  /// is used as is, a bare tag is appended to `repository` (required then).
  /// Entries without either are skipped. Files of the layout are opened
  /// without following symlinks. Errors do not name `dir`: the caller knows
  /// what the user gave.
  Result<std::vector<ImageRecord>> load_layout(const std::string& dir,
                                               const std::string& repository = "");
  /// Loads a directory holding an OCI image layout (index.json) or an
  /// unpacked `docker save` archive (manifest.json; see load_docker_archive),
  /// preferring the layout when it has both (as Docker 25+ writes).
  /// kInvalidArgument when it has neither.
  Result<std::vector<ImageRecord>> load_dir(const std::string& dir,
                                            const std::string& repository = "");
  /// Reads a tar (plain, gzip or zstd) from `tar_fd` to its end, unpacks it
  /// into a temporary directory under the state root with the hardened layer
  /// code (rootfs::apply_layer; `display` names the input in its errors)
  /// and loads that with load_dir(). The directory is removed afterwards.
  Result<std::vector<ImageRecord>> load_archive(int tar_fd, const std::string& display,
                                                const std::string& repository = "");
  /// Writes `images` to `fd` as a tar of an OCI image layout: oci-layout,
  /// index.json (one entry per image, annotated with
  /// "io.containerd.image.name" = the full name and
  /// "org.opencontainers.image.ref.name" = its tag, as Docker 25+ does) and
  /// blobs/sha256/<hex> for each blob once; plus a manifest.json in the
  /// `docker save` format pointing at the same blobs, so that `docker load`
  /// accepts it too. Entries have mtime 0 and fixed modes: the same images
  /// give the same bytes. Does not close `fd`.
  Status save(const std::vector<ImageRecord>& images, int fd) const;
  /// save() to a temporary file beside `path`, renamed over `path` only
  /// once complete and synced.
  Status save_file(const std::vector<ImageRecord>& images, const std::string& path) const;
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
  /// `in_use`: manifest digests ("sha256:...") whose snapshots containers
  /// still need even if no name points at them any more.
  Result<PruneStats> prune(const std::set<std::string>& in_use = {});
  /// The manifest bytes as stored.
  Result<std::string> manifest_bytes(const ImageRecord& image) const;
  /// Uploads the image's blobs (those the registry lacks) and manifest
  /// under `target`.
  Status push(const ImageRecord& image, const image::Reference& target, const PullOptions& options);
  Result<image::ImageConfig> config(const ImageRecord& image) const;
  /// Path of the image's ext4 snapshot, building it if it is missing.
  Result<std::string> snapshot(const ImageRecord& image);
  /// Path of the image's writable base, building it if it is missing: its
  /// files in an ext4 `room_bytes` larger than they need, with a journal
  /// and an inode per 16 KiB, which a container runs read-write under a
  /// copy-on-write disk of its own (one ext4 mount in the guest instead of
  /// the snapshot, a second ext4 and an overlayfs). Built by `room_bytes`
  /// of the first caller; later callers get it as it is.
  Result<std::string> root_base(const ImageRecord& image, uint64_t room_bytes);

 private:
  explicit ImageStore(std::string root, content::Store store)
      : root_(std::move(root)), store_(std::move(store)) {}
  Result<std::vector<ImageRecord>> read_index() const;
  Status record(const ImageRecord& image);
  using BlobPathFn = std::function<std::string(const image::Digest&)>;
  /// The snapshot of `image` built from the layer files `blob_path` names.
  Result<std::string> snapshot_from(const ImageRecord& image, const BlobPathFn& blob_path);
  /// `path`, built from `image`'s layers with `options` unless it exists
  /// (one builder at a time; a second waits and finds it done).
  Result<std::string> built_once(const ImageRecord& image, const std::string& path,
                                 const BlobPathFn& blob_path, const rootfs::Ext4Options& options);
  Status build_snapshot(const ImageRecord& image, const std::string& path,
                        const BlobPathFn& blob_path, const rootfs::Ext4Options& options = {});
  /// Builds the snapshot from the staged blobs, commits them and records
  /// `image` under its name.
  Status finish_import(const ImageRecord& image, detail::StagedBlobs& staged);
  /// Stages blob `d` of the layout open at `layout_fd`, verified.
  Status import_blob(int layout_fd, const image::Descriptor& d, detail::StagedBlobs& staged);
  /// Imports one image manifest of a layout under `names` (at least one).
  Result<ImageRecord> import_manifest(int layout_fd, const image::Descriptor& desc,
                                      const std::vector<std::string>& names);
  /// Loads the images a docker save archive (unpacked at `dir_fd`) lists in
  /// its manifest.json: each layer is checked against the config's diff_id
  /// (after decompression if compressed), the config and layers become blobs
  /// (layers keep their bytes: an uncompressed one gets the media type
  /// application/vnd.oci.image.layer.v1.tar), an OCI manifest is
  /// synthesised, and each RepoTags entry becomes a name (`repository` for
  /// an untagged image, which is an error without it).
  Result<std::vector<ImageRecord>> load_docker_archive(int dir_fd, const std::string& repository);
  Result<ImageRecord> import_docker_image(int dir_fd, const DockerArchiveImage& entry,
                                          const std::vector<std::string>& names);

  std::string root_;
  content::Store store_;
};

}  // namespace vessel::images
