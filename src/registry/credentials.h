// Registry credentials in Docker's config.json format:
//   {"auths": {"<registry>": {"auth": "<base64(user:password)>"}}}
// Vessel keeps its own file (<config_dir>/config.json, mode 0600) and falls
// back to Docker's ($DOCKER_CONFIG/config.json or ~/.docker/config.json) for
// reading. Credential helpers (credsStore, credHelpers) are not supported.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "registry/auth.h"

namespace vessel::registry {

/// The canonical key for a registry: "docker.io" for Docker Hub's aliases
/// (docker.io, index.docker.io, registry-1.docker.io,
/// "https://index.docker.io/v1/"); otherwise the host[:port] with any
/// scheme, path and trailing slash removed, lowercased.
std::string canonical_registry(std::string_view key);

/// $DOCKER_CONFIG, else $HOME/.docker; "" when neither is set.
std::string default_docker_config_dir();

/// Reads the credentials for `registry` from `<dir>/config.json`. nullopt
/// when the file is missing or has no entry; kInvalidArgument for a file
/// that is not valid JSON or an entry whose "auth" is malformed.
Result<std::optional<Credentials>> read_credentials(const std::string& dir,
                                                    std::string_view registry);

/// Vessel's file first, then Docker's (when `docker_dir` is non-empty).
Result<std::optional<Credentials>> lookup_credentials(const std::string& vessel_dir,
                                                      const std::string& docker_dir,
                                                      std::string_view registry);

/// Stores credentials for `registry` in `<dir>/config.json` (created with
/// mode 0600, written atomically, other entries and keys preserved).
Status store_credentials(const std::string& dir, std::string_view registry,
                         const Credentials& credentials);

/// Removes every entry for `registry`; kNotFound if there was none.
Status remove_credentials(const std::string& dir, std::string_view registry);

}  // namespace vessel::registry
