#include "agent/capabilities.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace vessel::agent {
namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

bool names_all(const std::vector<std::string>& names) {
  return std::any_of(names.begin(), names.end(),
                     [](const std::string& n) { return upper(n) == "ALL"; });
}

}  // namespace

uint64_t docker_default_capabilities() {
  uint64_t set = 0;
  for (const char* name : {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                           "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                           "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"})
    set |= uint64_t{1} << *protocol::capability_number(name);
  return set;
}

Result<uint64_t> parse_capability(std::string_view name) {
  std::string n = upper(name);
  if (n == "ALL") return protocol::kAllCapabilities;
  if (n.rfind("CAP_", 0) != 0) n = "CAP_" + n;
  auto number = protocol::capability_number(n);
  if (!number)
    return Error(ErrorCode::kInvalidArgument, "unknown capability '" + std::string(name) + "'");
  return uint64_t{1} << *number;
}

Result<uint64_t> docker_capabilities(const std::vector<std::string>& add,
                                     const std::vector<std::string>& drop) {
  uint64_t added = 0, dropped = 0;
  for (const auto& n : add) {
    VESSEL_ASSIGN_OR_RETURN(uint64_t c, parse_capability(n));
    added |= c;
  }
  for (const auto& n : drop) {
    VESSEL_ASSIGN_OR_RETURN(uint64_t c, parse_capability(n));
    dropped |= c;
  }
  if (names_all(add)) return protocol::kAllCapabilities & ~(names_all(drop) ? 0 : dropped);
  if (names_all(drop)) return added;
  return (docker_default_capabilities() & ~dropped) | added;
}

protocol::Capabilities container_capabilities(uint64_t set) {
  return protocol::Capabilities{set, set, set, 0, 0};
}

Status apply_security_opt(std::string_view opt, bool& no_new_privileges) {
  constexpr std::string_view kNnp = "no-new-privileges";
  if (opt.substr(0, kNnp.size()) == kNnp) {
    std::string_view rest = opt.substr(kNnp.size());
    if (rest.empty() || rest == "=true" || rest == ":true") {
      no_new_privileges = true;
      return ok_status();
    }
    if (rest == "=false" || rest == ":false") {
      no_new_privileges = false;
      return ok_status();
    }
  }
  // The VM is the confinement: no seccomp profile, AppArmor profile or
  // SELinux label is applied inside it, which is what these ask for.
  for (std::string_view same : {"seccomp=unconfined", "seccomp:unconfined", "apparmor=unconfined",
                                "apparmor:unconfined", "label=disable", "label:disable"})
    if (opt == same) return ok_status();
  // A profile, by name or (from the docker CLI) as the JSON it read: named
  // by its kind, not quoted whole.
  for (std::string_view kind : {"seccomp", "apparmor", "label"})
    if (opt.size() > kind.size() && opt.substr(0, kind.size()) == kind &&
        (opt[kind.size()] == '=' || opt[kind.size()] == ':'))
      return Error(ErrorCode::kInvalidArgument,
                   "unsupported security option '" + std::string(kind) + "': Vessel applies no " +
                       (kind == "seccomp"    ? "seccomp profile"
                        : kind == "apparmor" ? "AppArmor profile"
                                             : "SELinux label") +
                       " inside a container's VM (the VM is the isolation boundary; " +
                       (kind == "label" ? "only label=disable"
                                        : "only " + std::string(kind) + "=unconfined") +
                       " is accepted)");
  return Error(ErrorCode::kInvalidArgument,
               "unsupported security option '" + std::string(opt) +
                   "' (expected no-new-privileges[=true|false], seccomp=unconfined, "
                   "apparmor=unconfined or label=disable)");
}

}  // namespace vessel::agent
