// A cgroup on the host for one VM's processes (its monitor, QEMU,
// virtiofsd), with memory, pids and CPU limits. Hosts differ: cgroup v2
// (one unified hierarchy, modern distributions) and v1 (a hierarchy per
// controller, as these build machines mount them, beside an empty v2
// one). Both are supported; where the cgroup lives in each is in
// docs/security.md, "Host resource bounds".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"

namespace vessel::sys {

enum class CgroupVersion { kNone, kV1, kV2 };

struct HostLimits {
  uint64_t memory_max = 0;  // bytes; 0: no limit
  uint64_t pids_max = 0;    // 0: no limit
  uint64_t cpu_weight =
      100;  // cgroup v2 cpu.weight (1..10000; v1 cpu.shares = weight * 1024 / 100)
};

/// What entering a cgroup means on one host: directories to make, files to
/// write, where this process came from. Pure (unit-tested with made-up
/// hosts).
struct HostCgroupPlan {
  CgroupVersion version = CgroupVersion::kNone;
  std::vector<std::string> make;                              // parents first
  std::vector<std::pair<std::string, std::string>> settings;  // file, value
  std::vector<std::string> dirs;                              // the cgroup (one per v1 hierarchy)
  std::vector<std::string> origins;                           // where this process was, per dir
  std::string memory_dir;  // the dir holding the memory controller
  /// The systemd scope that holds the cgroup when systemd made it ("" when
  /// we did): systemd removes it once it is empty.
  std::string systemd_unit;
};

/// The plan for cgroup `name` under `fs_root` (where cgroupfs is mounted)
/// for a process whose /proc/self/cgroup reads `self_cgroup`.
///   v2: <fs_root>/vessel.slice/vessel-<name>.scope, controllers enabled
///       down from the root (a cgroup with processes cannot delegate them,
///       so not under the caller's own cgroup);
///   v1: <hierarchy>/<the caller's cgroup there>/vessel/<name> in the
///       memory, pids and cpu hierarchies that exist.
Result<HostCgroupPlan> plan_host_cgroup(const std::string& name, const HostLimits& limits,
                                        CgroupVersion version, const std::string& fs_root,
                                        const std::string& self_cgroup);

/// The plan for a cgroup systemd made: the scope `unit` in the top-level
/// `slice` that it moved this process into, in each hierarchy under
/// `fs_root`; where the process came from per `self_before` (its
/// /proc/self/cgroup before the move; "" when unknown: no origins).
/// Nothing to make or write: systemd set the limits.
HostCgroupPlan plan_systemd_cgroup(const std::string& unit, const std::string& slice,
                                   CgroupVersion version, const std::string& fs_root,
                                   const std::string& self_before);

/// The cgroup version mounted at `fs_root`.
CgroupVersion cgroup_version(const std::string& fs_root = "/sys/fs/cgroup");

class HostCgroup {
 public:
  /// Makes the cgroup `name`, applies `limits` and moves this process into
  /// it, so that every child it starts from now on is in it too (on v1 a
  /// process of one thread moves without waiting for an RCU grace period:
  /// call it before starting threads). Where
  /// systemd manages the cgroups (and `fs_root` is the host's), systemd
  /// makes it: a transient scope `vessel-<name>.scope` in `vessel.slice`
  /// with Delegate=yes and the limits as its properties
  /// (systemd_scope.h); elsewhere the cgroup is made directly, as
  /// plan_host_cgroup says.
  static Result<HostCgroup> enter(const std::string& name, const HostLimits& limits,
                                  const std::string& fs_root = "/sys/fs/cgroup");
  /// The same with this process's /proc/self/cgroup given (tests).
  static Result<HostCgroup> enter(const std::string& name, const HostLimits& limits,
                                  const std::string& fs_root, const std::string& self_cgroup);
  HostCgroup() = default;
  HostCgroup(HostCgroup&&) = default;
  HostCgroup& operator=(HostCgroup&&) = default;

  /// Moves this process back where it came from and removes the cgroup
  /// (its children must be gone); systemd removes a scope of its own once
  /// it is empty.
  Status leave();
  /// leave()'s first half: this process back where it came from, its
  /// children staying. Immediate for a process of one thread on v1;
  /// otherwise the move waits for an RCU grace period (~10 ms), which a
  /// caller can overlap with its children's end. Once only: leave() then
  /// only removes the cgroup.
  void move_out();
  CgroupVersion version() const { return plan_.version; }
  /// The systemd scope holding it ("" when systemd did not make it).
  const std::string& systemd_unit() const { return plan_.systemd_unit; }
  const std::vector<std::string>& dirs() const { return plan_.dirs; }
  /// Bytes charged to the cgroup now (memory.current, v1 memory.usage_in_bytes).
  Result<uint64_t> memory_current() const;
  /// Anonymous plus shared memory charged to the cgroup (memory.stat: v2
  /// "anon" + "shmem", v1 "rss" + "shmem"), bytes: what its processes hold
  /// that is not reclaimable page cache (a VM's guest RAM in a memfd is
  /// shmem, QEMU's heap and TCG code are anon).
  Result<uint64_t> memory_unreclaimable() const;

 private:
  explicit HostCgroup(HostCgroupPlan plan) : plan_(std::move(plan)) {}
  HostCgroupPlan plan_;
  bool moved_out_ = false;
};

/// The cgroup.procs files of where this process was before it entered its
/// HostCgroup (empty when it is in none): Process::spawn puts a child that
/// is to outlive us (die_with_parent = false: a daemon such as a
/// network's dnsmasq, shared by every container) back there, so that it
/// neither stays in one VM's cgroup under its limits nor keeps that cgroup
/// from being removed.
const std::vector<std::string>& outliving_child_cgroups();

/// The threads of this process (/proc/self/status), 0 if unknown.
/// HostCgroup moves a process of one thread without a grace period.
int thread_count();

/// Removes what a killed monitor left: each of `dirs` (HostCgroup::dirs())
/// that exists and has no process in it (rmdir refuses a busy cgroup).
void remove_host_cgroups(const std::vector<std::string>& dirs);

}  // namespace vessel::sys
