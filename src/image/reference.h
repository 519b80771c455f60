// Image references ("busybox", "ghcr.io/owner/repo:1.2", "name@sha256:…"),
// parsed the way Docker's distribution/reference package parses them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "image/digest.h"

namespace vessel::image {

/// The registry that single-component names ("ubuntu") and names with no
/// registry ("library/ubuntu") resolve to.
inline constexpr std::string_view kDockerHubRegistry = "docker.io";
/// The host that serves the registry API for kDockerHubRegistry.
inline constexpr std::string_view kDockerHubApiHost = "registry-1.docker.io";
/// The tag a reference gets when it names neither a tag nor a digest.
inline constexpr std::string_view kDefaultTag = "latest";
/// Longest accepted "registry/repository" (Docker's NameTotalLengthMax).
inline constexpr size_t kMaxNameLength = 255;
/// Longest accepted tag (Docker: [\w][\w.-]{0,127}).
inline constexpr size_t kMaxTagLength = 128;

/// A fully normalized image reference. Always has a registry and a
/// repository; has a tag, a digest or both (the digest is what a pull uses
/// when both are present; the tag is kept for display).
struct Reference {
  /// Registry host with an optional port: "docker.io", "localhost:5000",
  /// "[::1]:5000". Never "index.docker.io" (normalized to docker.io).
  std::string registry;
  /// Slash-separated lowercase path: "library/ubuntu", "owner/repo".
  std::string repository;
  /// "latest" when the input named neither a tag nor a digest; empty when
  /// the input named a digest and no tag.
  std::string tag;
  std::optional<Digest> digest;

  /// "registry/repository", e.g. "docker.io/library/ubuntu".
  std::string name() const;
  /// The canonical form: "docker.io/library/ubuntu:latest",
  /// "ghcr.io/o/r@sha256:…", "ghcr.io/o/r:1@sha256:…". parse_reference
  /// returns an equal Reference for it.
  std::string str() const;
  /// The form Docker shows: docker.io and "library/" dropped where Docker
  /// drops them ("busybox:latest", "owner/app:1", "ghcr.io/x/y:1"). Unlike
  /// Docker, keeps "docker.io/" when the path's first component would
  /// otherwise read as a registry ("docker.io/foo.com/x"), so that
  /// parse_reference(familiar()) always gives back this reference.
  std::string familiar() const;
  /// The host to send registry API requests to: "registry-1.docker.io"
  /// for docker.io, otherwise `registry`.
  std::string registry_host() const;

  friend bool operator==(const Reference&, const Reference&) = default;
};

/// Parses a reference as `docker pull` does: "[registry/]path[:tag][@digest]".
/// The first path component is the registry when it contains '.' or ':', is
/// "localhost", or has an uppercase letter; otherwise the registry is
/// docker.io, and a single-component path there gets "library/". Checks the
/// grammar of every part, the 255-byte name limit and the 128-byte tag
/// limit. Errors are kInvalidArgument and quote the input:
/// "invalid reference 'Foo:bar': repository name must be lowercase".
Result<Reference> parse_reference(std::string_view input);

}  // namespace vessel::image
