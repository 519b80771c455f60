// Where Vessel keeps its state and finds its guest assets.
#pragma once

#include <optional>
#include <string>

#include "base/error.h"

namespace vessel::runtime {

/// The state root: `flag` if given, else $VESSEL_ROOT, else /var/lib/vessel
/// for root and $XDG_DATA_HOME/vessel (~/.local/share/vessel) otherwise.
std::string resolve_root(const std::optional<std::string>& flag);

/// Directory for the runtime files (sockets, boot logs) of running VMs.
inline std::string run_dir(const std::string& root) {
  return root + "/run";
}

/// The state store's database.
inline std::string state_db(const std::string& root) {
  return root + "/state.db";
}

/// A container's persistent files: writable layer, logs, boot log.
inline std::string containers_dir(const std::string& root) {
  return root + "/containers";
}
inline std::string container_dir(const std::string& root, const std::string& id) {
  return containers_dir(root) + "/" + id;
}

/// Where the kernel, initramfs and embedded images live: $VESSEL_SHARE_DIR,
/// else <dir of this executable>/../share/vessel.
std::string share_dir();

/// The OCI layout of an embedded image named `repository` (e.g.
/// "vessel/busybox"), or "" if the build embeds none by that name.
std::string embedded_image_layout(const std::string& repository);

struct GuestAssets {
  std::string kernel;
  std::string initrd;
  std::string share_dir;  // where they were found ("" for overrides)
};

/// Kernel: `kernel_flag`, else $VESSEL_KERNEL, else <share>/kernel; for a
/// `machine`, $VESSEL_MACHINE_KERNEL, else <share>/kernel-machine (the
/// kernel with what systemd needs, and ACPI).
/// Initramfs: $VESSEL_INITRD, else <share>/initramfs.cpio.gz.
/// <share> is $VESSEL_SHARE_DIR, else <dir of this executable>/../share/vessel
/// (the build tree and an installed prefix have the same layout).
/// kUnavailable naming what is missing and how to build it.
Result<GuestAssets> find_guest_assets(const std::optional<std::string>& kernel_flag,
                                      bool machine = false);

}  // namespace vessel::runtime
