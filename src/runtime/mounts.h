// Mounts a container asks for: -v, --mount and --tmpfs, parsed the way
// Docker parses them. Bind mounts and volumes are host directories served
// to the guest over virtio-fs; tmpfs lives in the guest's memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"

namespace vessel::runtime {

struct MountSpec {
  enum class Type { kBind, kVolume, kTmpfs };
  Type type = Type::kBind;
  /// kBind: an absolute host path (file or directory). kVolume: the volume's
  /// name ("" for a new anonymous volume until one is made). kTmpfs: "".
  std::string source;
  std::string target;  // absolute path in the container
  bool read_only = false;
  /// tmpfs: mount options such as "size=64m,mode=1777" (validated).
  std::string options;
  /// -v creates a missing bind source directory; --mount refuses it.
  bool create_source = false;
};

const char* mount_type_name(MountSpec::Type t);

/// -v SRC:DST[:OPTS] | -v NAME:DST[:OPTS] | -v DST (anonymous volume).
/// OPTS: ro, rw (others are refused, naming them).
Result<MountSpec> parse_volume_flag(const std::string& text);
/// --mount type=bind|volume|tmpfs,source=..,target=..[,readonly][,tmpfs-size=..][,tmpfs-mode=..]
/// (src/dst/destination and ro/readonly=true|false as Docker accepts).
Result<MountSpec> parse_mount_flag(const std::string& text);
/// --tmpfs DST[:size=..,mode=..]
Result<MountSpec> parse_tmpfs_flag(const std::string& text);

/// Docker's rule for volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]+.
Status validate_volume_name(const std::string& name);

/// Refuses two mounts on one target and a mount on "/".
Status check_mounts(const std::vector<MountSpec>& mounts);

}  // namespace vessel::runtime
