// The container's cgroup (v2): every process the host spawns runs in it,
// with the limits Setup asked for, and Stats reads its usage. vessel-init
// itself stays in the root cgroup, outside every limit, so that an OOM kill
// or a full pids.max hits the container and never the agent.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/unique_fd.h"
#include "guest/system.h"
#include "protocol/protocol.h"

namespace vessel::guest {

/// Where init mounts cgroup2, and the container's cgroup under it (both in
/// init's mount namespace). The container sees kContainerCgroup as its
/// /sys/fs/cgroup, and as "/" in /proc/self/cgroup (a cgroup namespace).
inline constexpr std::string_view kCgroupMount = "/sys/fs/cgroup";
inline constexpr std::string_view kContainerCgroup = "/sys/fs/cgroup/container";

class ContainerCgroup {
 public:
  ContainerCgroup() = default;

  /// Creates kContainerCgroup (container 0) or kCgroupMount/c<N> (a
  /// container N added to a pod's VM), which needs cgroup2 mounted at
  /// kCgroupMount and the controllers enabled in its cgroup.subtree_control.
  /// Fails when the kernel has no cgroup2; containers then run without
  /// limits.
  static Result<ContainerCgroup> create(uint32_t container = 0);

  /// The cgroup's directory in init's namespace.
  const std::string& path() const { return path_; }

  /// Kills every process in the cgroup (cgroup.kill) and removes it once it
  /// is empty (rmdir fails while a killed process is not reaped yet: then
  /// it stays, empty, and costs nothing). For a container leaving a pod.
  void kill_and_remove();

  /// False when create() failed: no limits, no cgroup statistics.
  bool valid() const { return procs_.valid(); }

  /// Writes memory.max, pids.max and cpu.max (0 in Setup: "max"). Without
  /// a cgroup, a requested limit is an error (EOPNOTSUPP) and none is fine.
  Status apply_limits(const protocol::Setup& setup) const;
  /// The same for Update (vessel-runtime update), while processes run: a
  /// memory.max below what the container uses makes the kernel reclaim,
  /// then OOM-kill in the container (cgroup-v2.rst).
  Status apply_limits(const protocol::Update& update) const;

  /// cgroup.procs of the container's cgroup, opened for writing: a child
  /// forked outside the cgroup writes "0" to it to move itself in before
  /// exec. -1 when not valid().
  int procs_fd() const { return procs_.get(); }

  /// The container cgroup's directory (O_RDONLY): clone3(2)'s
  /// CLONE_INTO_CGROUP starts a child in it. -1 when not valid().
  int dir_fd() const { return dir_.get(); }

  /// memory.events oom_kill: processes of the cgroup killed by any OOM
  /// killer so far. 0 when not valid() or unreadable.
  uint64_t oom_kills() const;

  /// A sample of the cgroup's usage and of the guest's memory, network and
  /// CPUs, for StatsResult. What cannot be read is left 0.
  protocol::Stats sample() const;

  /// The text of one of the cgroup's files ("cpu.stat"), "" when unreadable.
  std::string control_text(std::string_view name) const;
  /// Asks the kernel to reclaim up to `bytes` of the cgroup's memory
  /// (memory.reclaim, Linux 5.19). EAGAIN: it found less than asked.
  Status reclaim(uint64_t bytes) const;

 private:
  /// `name` in the cgroup's directory.
  std::string file(std::string_view name) const;

  std::string path_;
  UniqueFd dir_;
  UniqueFd procs_;
};

/// Parsers of the kernel's text files, exposed for unit tests.
namespace cgroup_text {

/// The number after `key` on the line that starts with `key` followed by a
/// space (cpu.stat, memory.stat, memory.events, /proc/meminfo without its
/// colon: pass "MemTotal:"). 0 when absent or not a number.
uint64_t keyed_value(std::string_view text, std::string_view key);

/// A file holding one number or "max" (memory.max, pids.max): the number,
/// `max_value` for "max", 0 when unparsable.
uint64_t number_or_max(std::string_view text, uint64_t max_value);

/// io.stat: rbytes and wbytes summed over every device line.
void io_bytes(std::string_view text, uint64_t& read, uint64_t& write);

/// /proc/net/dev: received and transmitted bytes of every interface but lo.
void net_bytes(std::string_view text, uint64_t& rx, uint64_t& tx);

}  // namespace cgroup_text

}  // namespace vessel::guest
