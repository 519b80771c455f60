// A jail for a child process: new namespaces, a root directory that holds
// only what the program needs (read-only binds of the files it opens by
// path), an unprivileged uid with no capabilities and no_new_privs. The
// mechanism only; what goes in a jail is the caller's (vmm/qemu_jail.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"

namespace vessel::sys {

/// A host file or directory (or device node, with `device`) bound read-only
/// at `target` (an absolute path inside the jail).
struct JailBind {
  std::string source;
  std::string target;
  bool device = false;  // a device node: not nodev (still read-only, noexec)
};

/// A device node made in the jail's /dev (a tmpfs of its own, without
/// nodev) and owned by the jail's uid and gid, mode 0600: the program can
/// open it whatever the host node's owner and mode (Firecracker's jailer
/// does the same for /dev/kvm).
/// (With nodes, binds under /dev must be directly in it too, as /dev/null:
/// the /dev tmpfs is mounted after the jail's directories are made.)
struct JailNode {
  std::string target;  // "/dev/<name>"
  dev_t rdev = 0;      // a character device's number
};

/// A writable tmpfs of its own at `target`, owned by the jail's uid (mode
/// 0700), at most `size_bytes`: where the program may create files (QEMU's
/// guest RAM file). With `huge`, the tmpfs gives transparent huge pages to
/// files large enough (huge=within_size; where the kernel refuses the
/// option, the tmpfs is mounted without it).
struct JailTmpfs {
  std::string target;
  uint64_t size_bytes = 0;
  bool huge = false;
};

struct Jail {
  /// An existing empty directory where the jail's root (a tmpfs) is
  /// mounted in the child's own mount namespace; the host never sees it.
  std::string mountpoint;
  std::vector<JailBind> binds;
  std::vector<JailNode> nodes;
  std::vector<JailTmpfs> tmpfs;
  /// {target, link path inside the jail}: e.g. {"usr/lib", "/lib"}.
  std::vector<std::pair<std::string, std::string>> symlinks;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (e.g. kvm's)
  /// A network namespace of its own too: the program reaches no network
  /// and no abstract unix socket; devices it was given as fds still work.
  bool new_network = true;
  std::string hostname = "jail";
};

/// A Jail turned into plain C strings and flags, ready for the forked
/// child, which may only make async-signal-safe calls (no allocation).
struct JailPlan {
  struct Mount {
    std::string target;  // host path of the target (under the mountpoint)
    std::string source;
    bool is_dir = false;
    bool device = false;
  };
  std::string mountpoint;
  std::vector<std::string> dirs;  // to make, parents first
  std::vector<Mount> mounts;
  std::string dev_dir;  // host path of the jail's /dev when it has nodes, else ""
  std::vector<std::pair<std::string, dev_t>> nodes;  // host path, number
  struct Tmpfs {
    std::string target;  // host path
    std::string options;
    std::string plain_options;  // without huge=, if the kernel refuses it
  };
  std::vector<Tmpfs> tmpfs;
  std::vector<std::pair<std::string, std::string>> symlinks;  // target, host link path
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  bool new_network = true;
  std::string hostname;
};

/// Checks `jail` (absolute targets without "..", sources that exist, a
/// non-root uid and gid) and plans it. kInvalidArgument / kNotFound name
/// the offending path.
Result<JailPlan> plan_jail(const Jail& jail);

/// In the forked child (in its new mount namespace, still root): builds the
/// jail, enters it, drops every privilege. Returns 0 or an errno; only
/// async-signal-safe calls.
int enter_jail(const JailPlan& plan);

/// Drops `caps` (capability(7) numbers) from this process for good: from
/// its bounding set (so no child gets them either), its effective,
/// permitted and inheritable sets, and its ambient set.
Status drop_capabilities(const std::vector<int>& caps);

/// The clone flags a jailed child is created with.
unsigned long jail_clone_flags(const JailPlan& plan);

}  // namespace vessel::sys
