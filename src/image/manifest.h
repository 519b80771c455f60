// OCI / Docker schema 2 manifests and indexes (manifest lists): the media
// types, the descriptor model, a strict parser for registry replies and
// platform selection from an index.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/error.h"
#include "image/digest.h"
#include "image/platform.h"

namespace vessel::image {

namespace media_types {
// Manifests and indexes.
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
// Schema 1 (refused with a clear message; registries stopped serving it).
inline constexpr std::string_view kDockerSchema1Manifest =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kDockerSchema1SignedManifest =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
// Image configs.
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
// Layers.
inline constexpr std::string_view kOciLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerTarZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kOciLayerNondistributableTar =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr std::string_view kOciLayerNondistributableTarGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view kOciLayerNondistributableTarZstd =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
inline constexpr std::string_view kDockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kDockerLayerTarGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerForeignLayerTar =
    "application/vnd.docker.image.rootfs.foreign.diff.tar";
inline constexpr std::string_view kDockerForeignLayerTarGzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}  // namespace media_types

/// Bounds the parser enforces on registry-supplied documents.
inline constexpr size_t kMaxManifestBytes = 4 << 20;  // as distribution's registry
inline constexpr int64_t kMaxBlobSize = int64_t{1} << 40;
inline constexpr size_t kMaxLayers = 1000;
inline constexpr size_t kMaxIndexManifests = 1000;
inline constexpr size_t kMaxAnnotations = 1000;
inline constexpr size_t kMaxUrls = 64;

/// How a layer blob is compressed.
enum class LayerCompression { kNone, kGzip, kZstd };

/// The compression of a known layer media type; nullopt for anything else.
std::optional<LayerCompression> layer_compression(std::string_view media_type);
/// True for the OCI nondistributable and Docker foreign layer types (blobs
/// that may live at `urls` instead of the registry).
bool is_nondistributable_layer(std::string_view media_type);
/// OCI image manifest or Docker schema 2 manifest.
bool is_manifest_media_type(std::string_view media_type);
/// OCI image index or Docker manifest list.
bool is_index_media_type(std::string_view media_type);
/// OCI image config or Docker container config.
bool is_image_config_media_type(std::string_view media_type);

/// A content descriptor: what a blob is, its digest and its size.
struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;  // 0..kMaxBlobSize
  /// As the index states it (not normalized); only in index entries.
  std::optional<Platform> platform;
  std::map<std::string, std::string> annotations;
  /// Where a nondistributable layer may be fetched from. Untrusted: a puller
  /// should not follow these by default.
  std::vector<std::string> urls;
};

/// An image manifest (OCI v1 or Docker schema 2).
struct Manifest {
  std::string media_type;  // kOciManifest or kDockerManifest
  /// The image config blob. Its media type is any well-formed one (OCI
  /// artifacts use others); check is_image_config_media_type before use.
  Descriptor config;
  /// Base layer first; every media type is a known layer type.
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
};

/// An image index (OCI) or manifest list (Docker).
struct Index {
  std::string media_type;  // kOciIndex or kDockerManifestList
  /// Entries of any well-formed media type (attestations, artifacts, nested
  /// indexes); select_platform picks among the manifest ones.
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;
};

/// Parses a manifest or index fetched from a registry. The type comes from
/// the document's "mediaType"; when that is absent (OCI allows it) from
/// `content_type_hint` (the HTTP Content-Type; parameters after ';' are
/// ignored), and failing that from the fields present. A document whose
/// mediaType disagrees with a manifest or index content type is refused, as
/// is a manifest with "manifests" or an index with "config"/"layers".
/// Checks: at most kMaxManifestBytes; valid JSON object; schemaVersion 2;
/// every field's type and presence; digests valid; sizes in
/// [0, kMaxBlobSize]; layer media types known; at most kMaxLayers layers,
/// kMaxIndexManifests entries, kMaxAnnotations annotations, kMaxUrls urls.
/// Errors are kProtocol: "invalid manifest: layers[2].digest: missing",
/// "invalid manifest: unknown media type 'x'".
Result<std::variant<Manifest, Index>> parse_manifest(std::string_view bytes,
                                                     std::string_view content_type_hint);

/// The index entry to pull for `wanted`: a manifest entry whose platform
/// equals wanted (normalized), else one with an older compatible variant
/// (see compatible_platforms), else one platform_matches accepts, else the
/// first manifest entry with no platform. Non-manifest entries are skipped.
/// kNotFound otherwise: "no image for platform linux/s390x; available:
/// linux/amd64, linux/arm64/v8".
Result<Descriptor> select_platform(const Index& index, const Platform& wanted);

}  // namespace vessel::image
