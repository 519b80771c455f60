// Docker's --cap-add, --cap-drop and --security-opt, turned into the
// capability sets and no_new_privs a Spawn carries.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "protocol/protocol.h"

namespace vessel::agent {

/// Docker's default set for a container (moby oci/caps/defaults.go):
/// CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW, SETGID, SETUID,
/// SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE.
uint64_t docker_default_capabilities();

/// One --cap-add/--cap-drop name as Docker takes it: any case, with or
/// without "CAP_" ("net_admin", "CAP_NET_ADMIN"); "ALL" is every capability.
/// kInvalidArgument "unknown capability 'X'" otherwise.
Result<uint64_t> parse_capability(std::string_view name);

/// The set Docker gives a container for `add` and `drop` (moby
/// TweakCapabilities): "ALL" in `add` starts from every capability, "ALL" in
/// `drop` from none, otherwise from the default set; then `drop` is taken
/// out and `add` put in (an added capability wins over a dropped one).
Result<uint64_t> docker_capabilities(const std::vector<std::string>& add,
                                     const std::vector<std::string>& drop);

/// The process's sets for a container set as Docker's runc config has them:
/// bounding, effective and permitted are `set`; inheritable and ambient are
/// empty (moby 20.10.14, CVE-2022-24769), so a non-root user's process
/// keeps none across exec.
protocol::Capabilities container_capabilities(uint64_t set);

/// Checks one --security-opt. "no-new-privileges" (with "=true", ":true",
/// "=false" or ":false") sets `no_new_privileges`; "seccomp=unconfined",
/// "apparmor=unconfined" and "label=disable" (or "label:disable") are
/// accepted as what the VM already is; anything else is kInvalidArgument
/// naming the option (a seccomp or AppArmor profile, or an SELinux label,
/// by its kind only: the docker CLI sends a seccomp profile's whole JSON).
Status apply_security_opt(std::string_view opt, bool& no_new_privileges);

}  // namespace vessel::agent
