// The manifest.json of a `docker save` archive: which files of the archive
// hold each image's config and layers, and the names it was saved under.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace vessel::images {

/// One entry of manifest.json, e.g.
///   {"Config": "<hex>.json", "RepoTags": ["busybox:latest"],
///    "Layers": ["<hex>/layer.tar"]}      (Docker before 25)
///   {"Config": "blobs/sha256/<hex>", ..., "Layers": ["blobs/sha256/<hex>"]}
struct DockerArchiveImage {
  std::string config;                  // path inside the archive, normalized
  std::vector<std::string> repo_tags;  // as written; may be empty (an untagged image)
  std::vector<std::string> layers;     // paths inside the archive, base layer first
};

/// Bounds on manifest.json (an archive is untrusted input).
inline constexpr size_t kMaxDockerArchiveManifestBytes = 4 << 20;
inline constexpr size_t kMaxDockerArchiveImages = 1000;
inline constexpr size_t kMaxDockerArchivePath = 4096;

/// Parses manifest.json. Checks: at most kMaxDockerArchiveManifestBytes;
/// valid JSON; a non-empty array of at most kMaxDockerArchiveImages objects;
/// "Config" a string; "RepoTags" absent, null or an array of at most 1000
/// strings; "Layers" an array of at most image::kMaxLayers strings; every
/// path relative, at most kMaxDockerArchivePath bytes, without NUL, ".."
/// or empty components ("./" and "." components are dropped). Other fields
/// ("Parent", "LayerSources") are ignored. Errors are kProtocol and name the
/// field: "manifest.json: [0].Layers[2]: path leaves the archive".
Result<std::vector<DockerArchiveImage>> parse_docker_archive_manifest(std::string_view bytes);

/// `path` relative to an archive's root with "." components dropped, or
/// kProtocol ("'<path>': path leaves the archive") when it is absolute,
/// empty, too long, has a NUL, a ".." or an empty component.
Result<std::string> normalize_archive_path(std::string_view path);

}  // namespace vessel::images
