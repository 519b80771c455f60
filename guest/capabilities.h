// A spawned process's capability sets and no_new_privs (Spawn.capabilities,
// Spawn.no_new_privileges), applied in the order runc applies an OCI
// process's (libcontainer/init_linux.go finalizeNamespace): the bounding set
// is dropped while still root, PR_SET_KEEPCAPS keeps the permitted set
// across setuid, then capset(2) sets effective, permitted and inheritable,
// the ambient set is raised, and PR_SET_NO_NEW_PRIVS comes last before exec.
//
// The checks and the capset(2) data are pure functions (tested on the host);
// the apply_* functions are system calls for the forked child only.
#pragma once

#include <linux/capability.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "guest/system.h"
#include "protocol/protocol.h"

namespace vessel::guest {

/// What the child applies, computed by init before fork.
struct CapabilityPlan {
  uint32_t last_cap = 0;  // the guest kernel's highest capability
  uint64_t bounding = 0;  // kept in the bounding set; the others are dropped
  uint64_t ambient = 0;   // raised one by one
  /// capset(2)'s data for _LINUX_CAPABILITY_VERSION_3: [0] capabilities
  /// 0-31, [1] 32-63.
  __user_cap_data_struct data[2] = {};
};

/// Parses /proc/sys/kernel/cap_last_cap ("40\n"); nullopt if it is not a
/// number from 0 to 63.
std::optional<uint32_t> parse_cap_last(std::string_view text);

/// "CAP_CHOWN, CAP_KILL" for the capabilities in `set` (numbers beyond
/// protocol::kCapLast as "capability 45").
std::string capability_list(uint64_t set);

/// Checks `caps` and makes the plan. EINVAL naming the capabilities when a
/// set holds one the guest kernel does not know (above `last_cap`), when
/// effective is not within permitted, inheritable not within bounding
/// (capset(2) refuses it once the bounding set is dropped), or ambient not
/// within permitted and inheritable (PR_CAP_AMBIENT_RAISE refuses it).
Status plan_capabilities(const protocol::Capabilities& caps, uint32_t last_cap,
                         CapabilityPlan& out);

/// Child only, as root before setuid: drops every capability up to
/// last_cap that the bounding set does not keep, and sets PR_SET_KEEPCAPS.
/// 0, or the errno with `failed_cap` set to the capability (-1: keepcaps).
int apply_bounding(const CapabilityPlan& plan, int32_t& failed_cap);

/// Child only, after setuid: capset(2), then the ambient set. 0, or the
/// errno with `failed_cap` set to the ambient capability (-1: capset).
int apply_sets(const CapabilityPlan& plan, int32_t& failed_cap);

}  // namespace vessel::guest
