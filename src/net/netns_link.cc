#include "net/netns_link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>
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

using Json = nlohmann::json;

// "fd00::1" or "10.0.0.1" as 16 or 4 raw bytes; "" if it is not one of
// `family` (4 or 6).
std::string raw_address(const std::string& text, int family) {
  unsigned char buf[16];
  int af = family == 6 ? AF_INET6 : AF_INET;
  if (::inet_pton(af, text.c_str(), buf) != 1) return "";
  return std::string(reinterpret_cast<char*>(buf), family == 6 ? 16 : 4);
}

Result<Json> parse_ip_json(std::string_view text, const char* what) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array())
    return Error(ErrorCode::kInvalidArgument, std::string(what) + ": not ip's JSON list");
  return j;
}

std::string string_field(const Json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Runs iproute2's `program` (tc, ip) with `args` in this thread's network
// namespace; with `out`, what it writes to stdout goes there (ip's answer
// about one interface is a few KiB: more than 1 MiB is not ip's).
Status run_iproute2(const std::string& program, const std::vector<std::string>& args,
                    std::string* out) {
  auto path = sys::find_program(program);
  if (!path) return Error(ErrorCode::kUnavailable, program + " (iproute2) is not installed");
  UniqueFd read_end, write_end;
  if (out) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return Error::from_errno(errno, "pipe");
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
  }
  sys::SpawnOptions o;
  o.argv = {*path};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  if (out) o.fds = {{1, write_end.get()}};
  VESSEL_ASSIGN_OR_RETURN(sys::Process p, sys::Process::spawn(o));
  write_end.reset();
  if (out) {
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(read_end.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      out->append(buf, static_cast<size_t>(n));
      if (out->size() > (1u << 20))
        return Error(ErrorCode::kInternal, program + ": output too large");
    }
  }
  VESSEL_ASSIGN_OR_RETURN(sys::ExitStatus st, p.wait(std::chrono::seconds(10)));
  if (st.shell_code() != 0) {
    std::string cmd = program;
    for (const auto& a : args)
      cmd += " " + a;
    return Error(ErrorCode::kInternal,
                 "'" + cmd + "' failed (exit " + std::to_string(st.shell_code()) + ")");
  }
  return ok_status();
}

Status run_tc(const std::vector<std::string>& args) {
  return run_iproute2("tc", args, nullptr);
}

// The JSON `ip -j ARGS...` prints.
Result<std::string> run_ip(std::vector<std::string> args) {
  args.insert(args.begin(), "-j");
  std::string out;
  VESSEL_TRY(run_iproute2("ip", args, &out));
  return out;
}

}  // namespace

Result<std::vector<NetnsAddress6>> parse_ip_addresses6(std::string_view json) {
  VESSEL_ASSIGN_OR_RETURN(Json links, parse_ip_json(json, "ip -j -6 addr"));
  std::vector<NetnsAddress6> out;
  for (const Json& link : links) {
    if (!link.is_object() || !link.contains("addr_info") || !link["addr_info"].is_array()) continue;
    for (const Json& a : link["addr_info"]) {
      if (!a.is_object() || string_field(a, "family") != "inet6" ||
          string_field(a, "scope") != "global" || !a.contains("prefixlen") ||
          !a["prefixlen"].is_number_unsigned() || a.contains("dadfailed"))
        continue;
      std::string raw = raw_address(string_field(a, "local"), 6);
      uint64_t prefix = a["prefixlen"].get<uint64_t>();
      if (raw.empty() || prefix < 1 || prefix > 128)
        return Error(ErrorCode::kInvalidArgument,
                     "ip -j -6 addr: bad address '" + string_field(a, "local") + "'");
      out.push_back({raw, static_cast<uint8_t>(prefix)});
    }
  }
  return out;
}

Result<std::vector<NetnsRoute>> parse_ip_routes(std::string_view json, int family) {
  VESSEL_ASSIGN_OR_RETURN(Json routes, parse_ip_json(json, "ip -j route"));
  std::vector<NetnsRoute> on_link, via;
  const unsigned bits = family == 6 ? 128 : 32;
  for (const Json& r : routes) {
    if (!r.is_object()) continue;
    std::string type = string_field(r, "type");
    if ((!type.empty() && type != "unicast") || string_field(r, "protocol") == "kernel") continue;
    std::string table = string_field(r, "table");
    if (!table.empty() && table != "main") continue;
    std::string dst = string_field(r, "dst");
    NetnsRoute out;
    if (dst == "default") {
      if (family == 4) continue;  // the NIC's gateway
      out.destination.assign(16, '\0');
    } else {
      size_t slash = dst.find('/');
      std::string addr = dst.substr(0, slash);
      unsigned prefix = bits;
      if (slash != std::string::npos) {
        std::string p = dst.substr(slash + 1);
        if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos)
          return Error(ErrorCode::kInvalidArgument, "ip -j route: bad destination '" + dst + "'");
        prefix = static_cast<unsigned>(std::stoul(p));
      }
      out.destination = raw_address(addr, family);
      if (out.destination.empty() || prefix > bits)
        return Error(ErrorCode::kInvalidArgument, "ip -j route: bad destination '" + dst + "'");
      // IPv6 multicast (ff00::/8) is the kernel's on every link.
      if (family == 6 && static_cast<uint8_t>(out.destination[0]) == 0xff) continue;
      out.prefix_len = static_cast<uint8_t>(prefix);
    }
    std::string gw = string_field(r, "gateway");
    if (!gw.empty()) {
      out.gateway = raw_address(gw, family);
      if (out.gateway.empty())
        return Error(ErrorCode::kInvalidArgument, "ip -j route: bad gateway '" + gw + "'");
    }
    (out.gateway.empty() ? on_link : via).push_back(std::move(out));
  }
  on_link.insert(on_link.end(), std::make_move_iterator(via.begin()),
                 std::make_move_iterator(via.end()));
  return on_link;
}

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
  VESSEL_ASSIGN_OR_RETURN(std::string a6,
                          run_ip({"-6", "addr", "show", "dev", out.interface, "scope", "global"}));
  VESSEL_ASSIGN_OR_RETURN(out.addresses6, parse_ip_addresses6(a6));
  for (int family : {4, 6}) {
    VESSEL_ASSIGN_OR_RETURN(std::string text, run_ip({family == 6 ? "-6" : "-4", "route", "show",
                                                      "dev", out.interface}));
    VESSEL_ASSIGN_OR_RETURN(auto routes, parse_ip_routes(text, family));
    out.routes.insert(out.routes.end(), routes.begin(), routes.end());
  }
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
