// Platforms ("linux/amd64", "linux/arm64/v8") as OCI indexes and image
// configs name them, normalized and matched the way containerd does.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace vessel::image {

struct Platform {
  std::string os;            // "linux"
  std::string architecture;  // GOARCH spelling: "amd64", "arm64", "arm", "386"
  std::string variant;       // "v8", "v7"; empty when the architecture has none

  /// "os/architecture" or "os/architecture/variant".
  std::string str() const;

  friend bool operator==(const Platform&, const Platform&) = default;
};

/// Parses "os/architecture[/variant]" ("linux/amd64", "linux/arm/v7",
/// "linux/aarch64") and returns it normalized. Each part must be 1..64 bytes
/// of [A-Za-z0-9._-]. kInvalidArgument naming the input otherwise.
Result<Platform> parse_platform(std::string_view s);

/// The canonical spelling of a platform, as containerd's Normalize:
/// lowercase; os "macos" -> "darwin"; "x86_64"/"x86-64" -> amd64 (variant
/// "v1" dropped); "aarch64" -> arm64 with variant "v8" when empty or "8";
/// "armhf" -> arm/v7, "armel" -> arm/v6, arm with no variant -> arm/v7,
/// bare numeric variants get a "v" ("7" -> "v7"); "i386"/"i686" -> 386.
Platform normalize(Platform p);

/// The platform of this machine: os "linux" and the architecture of
/// uname(2)'s machine field, normalized (x86_64 -> amd64, aarch64 ->
/// arm64/v8). An unknown machine is returned as uname spells it.
Platform host_platform();

/// True if an image built for `candidate` runs on `wanted`. Both are
/// normalized first; os and architecture must be equal; an empty wanted
/// variant accepts any variant; otherwise the candidate's variant must be
/// equal or an older one of the same architecture that the wanted one can
/// run (amd64 v3 runs v2 and v1, arm v7 runs v6 and v5). There is no
/// cross-architecture fallback (arm64 -> arm, amd64 -> 386) because the
/// guest kernel has no 32-bit compat layer.
bool platform_matches(const Platform& wanted, const Platform& candidate);

/// The normalized platforms `wanted` can run, best first: itself, then
/// older variants of its architecture (see platform_matches).
std::vector<Platform> compatible_platforms(const Platform& wanted);

}  // namespace vessel::image
