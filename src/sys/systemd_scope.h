// A transient systemd scope for this process, asked of systemd over D-Bus
// (sd-bus, libsystemd): on a host whose cgroups systemd manages, a program
// must not make cgroups outside a subtree delegated to it
// (systemd.io/CGROUP_DELEGATION); it asks for a unit instead, as runc,
// crun and Podman do with their systemd cgroup driver. The HostCgroup
// uses it (host_cgroup.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "base/error.h"

namespace vessel::sys {

/// systemd is the init and manages the cgroups (sd_booted(3): the
/// directory /run/systemd/system exists).
bool systemd_manages_cgroups();

struct ScopeRequest {
  std::string unit;   // "vessel-<name>.scope"
  std::string slice;  // "vessel.slice"
  std::string description;
  uint64_t memory_max = 0;  // bytes; 0: none (MemoryMax=)
  uint64_t tasks_max = 0;   // 0: none (TasksMax=)
  uint64_t cpu_weight = 0;  // 0: systemd's default (CPUWeight=)
};

/// Asks systemd to start `r.unit`, a scope with Delegate=yes in `r.slice`
/// holding process `pid`, with the limits as unit properties (systemd
/// writes them, on cgroup v2 and v1 alike). Connects to systemd's private
/// socket (root), else to the system bus. Returns once systemd has moved
/// `pid` into the scope (its /proc/PID/cgroup names the unit), or an error
/// naming what systemd said (e.g. the unit exists already).
Status start_scope(const ScopeRequest& r, pid_t pid);

}  // namespace vessel::sys
