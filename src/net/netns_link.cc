#include "net/netns_link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "net/netlink.h"
#include "net/tap.h"
#include "sys/fs.h"
#include "sys/process.h"

namespace vessel::net {
namespace {

// Enters the network namespace at `path` for this thread; leaving the
// scope returns to the one it was in.
class NetnsGuard {
 public:
  static Result<NetnsGuard> enter(const std::string& path) {
    NetnsGuard g;
    VESSEL_ASSIGN_OR_RETURN(g.self_, sys::open_fd("/proc/thread-self/ns/net", O_RDONLY));
    VESSEL_ASSIGN_OR_RETURN(UniqueFd target, sys::open_fd(path, O_RDONLY));
    if (::setns(target.get(), CLONE_NEWNET) != 0)
      return Error::from_errno(errno, "enter network namespace '" + path + "'");
    return g;
  }
  NetnsGuard(NetnsGuard&& o) noexcept : self_(std::move(o.self_)) {}
  ~NetnsGuard() {
    // Failing to return would leave this thread in the container's
    // namespace for good: nothing safe remains to do.
    if (self_ && ::setns(self_.get(), CLONE_NEWNET) != 0) std::abort();
  }

 private:
  NetnsGuard() = default;
  UniqueFd self_;
};

Result<Mac> link_mac(const std::string& name) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return Error::from_errno(errno, "socket");
  ifreq r{};
  std::strncpy(r.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFHWADDR, &r) != 0)
    return Error::from_errno(errno, "read the MAC of '" + name + "'");
  Mac m;
  std::memcpy(m.bytes.data(), r.ifr_hwaddr.sa_data, 6);
  return m;
}

// The default route's gateway in this thread's namespace, from
// /proc/thread-self/net/route (hex, host byte order of the kernel: little
// endian on the machines Vessel runs on, as the file is written with %08X
// of the __be32).
std::optional<Ipv4> default_gateway(const std::string& link) {
  auto text = sys::read_file("/proc/thread-self/net/route", 1 << 20);
  if (!text.ok()) return std::nullopt;
  std::istringstream in(*text);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string iface, dest, gw;
    f >> iface >> dest >> gw;
    if (iface != link || dest != "00000000") continue;
    uint32_t be = static_cast<uint32_t>(std::stoul(gw, nullptr, 16));
    Ipv4 a;
    a.value = ntohl(be);
    if (a.value == 0) continue;
    return a;
  }
  return std::nullopt;
}

Status run_tc(const std::vector<std::string>& args) {
  auto tc = sys::find_program("tc");
  if (!tc) return Error(ErrorCode::kUnavailable, "tc (iproute2) is not installed");
  sys::SpawnOptions o;
  o.argv = {*tc};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  VESSEL_ASSIGN_OR_RETURN(sys::Process p, sys::Process::spawn(o));
  VESSEL_ASSIGN_OR_RETURN(sys::ExitStatus st, p.wait(std::chrono::seconds(10)));
  if (st.shell_code() != 0) {
    std::string cmd = "tc";
    for (const auto& a : args)
      cmd += " " + a;
    return Error(ErrorCode::kInternal,
                 "'" + cmd + "' failed (exit " + std::to_string(st.shell_code()) + ")");
  }
  return ok_status();
}

}  // namespace

Result<std::vector<std::string>> netns_interfaces(const std::string& path) {
  VESSEL_ASSIGN_OR_RETURN(NetnsGuard g, NetnsGuard::enter(path));
  VESSEL_ASSIGN_OR_RETURN(auto links, list_links());
  std::vector<std::string> out;
  for (const auto& l : links)
    if (l.name != "lo") out.push_back(l.name);
  return out;
}

Result<NetnsLink> join_netns(const std::string& path, const std::string& tap_name) {
  const std::string what = "join network namespace '" + path + "'";
  VESSEL_ASSIGN_OR_RETURN(NetnsGuard g, NetnsGuard::enter(path));
  VESSEL_ASSIGN_OR_RETURN(auto links, list_links());
  std::vector<LinkInfo> candidates;
  for (const auto& l : links)
    if (l.name != "lo") candidates.push_back(l);
  if (candidates.size() != 1)
    return Error(ErrorCode::kInvalidArgument, what + ": expected one interface besides lo, found " +
                                                  std::to_string(candidates.size()));
  NetnsLink out;
  out.interface = candidates[0].name;
  out.mtu = candidates[0].mtu ? candidates[0].mtu : 1500;
  VESSEL_ASSIGN_OR_RETURN(out.mac, link_mac(out.interface));
  VESSEL_ASSIGN_OR_RETURN(auto addresses, list_addresses());
  bool found = false;
  for (const auto& [link, net] : addresses)
    if (link == out.interface && !found) {
      out.address = net;
      found = true;
    }
  if (!found)
    return Error(ErrorCode::kInvalidArgument,
                 what + ": interface '" + out.interface + "' has no IPv4 address");
  out.gateway = default_gateway(out.interface);
  VESSEL_ASSIGN_OR_RETURN(out.tap, open_tap(tap_name));
  VESSEL_TRY(set_mtu(tap_name, out.mtu));
  VESSEL_TRY(set_link_up(tap_name, true));
  // Both directions: what arrives on the interface leaves through the tap
  // (to the VM), what the VM sends leaves through the interface.
  // An ingress qdisc left on the interface by an earlier VM (a restart, a
  // monitor that was killed) would make the add fail: remove it first.
  (void)run_tc({"qdisc", "del", "dev", out.interface, "ingress"});
  for (const auto& [from, to] : {std::pair{out.interface, tap_name}, {tap_name, out.interface}}) {
    VESSEL_TRY(run_tc({"qdisc", "add", "dev", from, "ingress"}));
    VESSEL_TRY(
        run_tc({"filter", "add", "dev", from, "parent", "ffff:", "protocol", "all", "u32", "match",
                "u8", "0", "0", "action", "mirred", "egress", "redirect", "dev", to}));
  }
  return out;
}

}  // namespace vessel::net
