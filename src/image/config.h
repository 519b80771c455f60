// Image configs: the OCI image config and Docker's container config JSON
// (the blob a manifest's `config` descriptor names).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "image/digest.h"
#include "image/platform.h"

namespace vessel::image {

/// Bounds the parser enforces on a registry-supplied config.
inline constexpr size_t kMaxConfigBytes = 8 << 20;
inline constexpr size_t kMaxConfigListEntries = 4096;  // Env, Cmd, Entrypoint, Labels, ...
inline constexpr size_t kMaxDiffIds = 1000;            // matches kMaxLayers

/// The execution defaults of an image: the OCI config's "config" object.
/// Absent and null fields are empty.
struct ContainerConfig {
  std::string user;                     // "User": "uid[:gid]" or a name
  std::vector<std::string> env;         // "Env": "NAME=value" strings
  std::vector<std::string> entrypoint;  // "Entrypoint"
  std::vector<std::string> cmd;         // "Cmd"
  std::string working_dir;              // "WorkingDir"
  std::string stop_signal;              // "StopSignal": "SIGTERM", "15"
  std::map<std::string, std::string> labels;
  std::vector<std::string> exposed_ports;  // keys of "ExposedPorts": "80/tcp"
  std::vector<std::string> volumes;        // keys of "Volumes": "/data"
};

/// One step that made the image (the config's "history"), for docker
/// history: an entry with empty_layer made no layer.
struct HistoryEntry {
  std::string created;  // RFC 3339, as written ("" when absent)
  std::string created_by;
  std::string comment;
  bool empty_layer = false;
};

struct ImageConfig {
  std::string architecture;  // as written ("amd64"); see platform()
  std::string os;
  std::string variant;
  /// When the image was made: RFC 3339 as written ("" when absent).
  std::string created;
  ContainerConfig config;
  /// Oldest first; at most kMaxConfigListEntries.
  std::vector<HistoryEntry> history;
  /// rootfs.diff_ids: the digest of each uncompressed layer, base first.
  std::vector<Digest> diff_ids;

  /// {os, architecture, variant}, normalized.
  Platform platform() const;
};

/// Parses an image config blob. Requires: at most kMaxConfigBytes; a JSON
/// object; "architecture" and "os" non-empty strings; "rootfs" with type
/// "layers" and "diff_ids" an array of valid digests (at most kMaxDiffIds).
/// "config" may be absent or null. Each known field must have its JSON type
/// (Cmd and Entrypoint may also be a single string, as Docker accepts);
/// lists and maps hold at most kMaxConfigListEntries; strings that reach
/// execve (User, Env, Entrypoint, Cmd, WorkingDir) must not contain NUL.
/// "created" and each "history" entry's created, created_by and comment
/// are strings, empty_layer a boolean; at most kMaxConfigListEntries
/// history entries. Unknown fields are ignored. Errors are kProtocol:
/// "invalid image config: config.Env[3]: expected a string, got number".
Result<ImageConfig> parse_image_config(std::string_view bytes);

}  // namespace vessel::image
