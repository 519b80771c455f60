#include "guest/capabilities.h"

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace vessel::guest {

// The host names capabilities by linux/capability.h's numbers; the guest's
// headers must agree on the highest one named.
static_assert(CAP_LAST_CAP == protocol::kCapLast);

std::optional<uint32_t> parse_cap_last(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.remove_suffix(1);
  if (text.empty() || text.size() > 2) return std::nullopt;
  uint32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 63) return std::nullopt;
  return v;
}

std::string capability_list(uint64_t set) {
  std::string out;
  for (uint32_t c = 0; c < 64; ++c) {
    if (!(set >> c & 1)) continue;
    if (!out.empty()) out += ", ";
    const char* name = protocol::capability_name(c);
    out += name ? std::string(name) : "capability " + std::to_string(c);
  }
  return out;
}

Status plan_capabilities(const protocol::Capabilities& caps, uint32_t last_cap,
                         CapabilityPlan& out) {
  const uint64_t known = last_cap >= 63 ? ~uint64_t{0} : (uint64_t{1} << (last_cap + 1)) - 1;
  struct Named {
    const char* name;
    uint64_t set;
  };
  for (Named s : {Named{"bounding", caps.bounding}, Named{"effective", caps.effective},
                  Named{"permitted", caps.permitted}, Named{"inheritable", caps.inheritable},
                  Named{"ambient", caps.ambient}}) {
    if (uint64_t unknown = s.set & ~known) {
      return Status(EINVAL, std::string("capabilities: ") + s.name +
                                " set: " + capability_list(unknown) +
                                " unknown to the guest kernel (it has 0 to " +
                                std::to_string(last_cap) + ")");
    }
  }
  if (uint64_t extra = caps.effective & ~caps.permitted) {
    return Status(
        EINVAL, "capabilities: effective " + capability_list(extra) + " not in the permitted set");
  }
  if (uint64_t extra = caps.inheritable & ~caps.bounding) {
    return Status(
        EINVAL, "capabilities: inheritable " + capability_list(extra) + " not in the bounding set");
  }
  if (uint64_t extra = caps.ambient & ~(caps.permitted & caps.inheritable)) {
    return Status(EINVAL, "capabilities: ambient " + capability_list(extra) +
                              " not in both the permitted and the inheritable set");
  }
  out = CapabilityPlan{};
  out.last_cap = last_cap;
  out.bounding = caps.bounding;
  out.ambient = caps.ambient;
  for (int i = 0; i < 2; ++i) {
    const int shift = 32 * i;
    out.data[i].effective = static_cast<uint32_t>(caps.effective >> shift);
    out.data[i].permitted = static_cast<uint32_t>(caps.permitted >> shift);
    out.data[i].inheritable = static_cast<uint32_t>(caps.inheritable >> shift);
  }
  return {};
}

int apply_bounding(const CapabilityPlan& plan, int32_t& failed_cap) {
  for (uint32_t c = 0; c <= plan.last_cap; ++c) {
    if (plan.bounding >> c & 1) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
      failed_cap = static_cast<int32_t>(c);
      return errno;
    }
  }
  // Without it, setuid(2) away from root clears the permitted set, and
  // capset(2) could not give a non-root process what the spec asks.
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
    failed_cap = -1;
    return errno;
  }
  return 0;
}

int apply_sets(const CapabilityPlan& plan, int32_t& failed_cap) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {plan.data[0], plan.data[1]};
  if (syscall(SYS_capset, &header, data) < 0) {
    failed_cap = -1;
    return errno;
  }
  // Ambient capabilities survive execve(2) for a non-root user
  // (capabilities(7)); start from none so that only the listed ones do.
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && plan.ambient != 0) {
    failed_cap = -1;
    return errno;
  }
  for (uint32_t c = 0; c <= plan.last_cap; ++c) {
    if (!(plan.ambient >> c & 1)) continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0) {
      failed_cap = static_cast<int32_t>(c);
      return errno;
    }
  }
  return 0;
}

}  // namespace vessel::guest
