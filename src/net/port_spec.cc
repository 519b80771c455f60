#include "net/port_spec.h"

#include <cctype>

#include "net/address.h"

namespace vessel::net {
namespace {

struct Range {
  uint32_t first = 0, last = 0;
};

// A port "80" or a range "8000-8010": decimal, 1-65535, first <= last. On
// failure `why` says what is wrong, in words for the error message.
bool parse_range(std::string_view s, Range* out, std::string* why) {
  auto one = [&](std::string_view p, uint32_t* v) {
    if (p.empty() || p.size() > 9) return false;  // no overflow of n
    uint32_t n = 0;
    for (char c : p) {
      if (c < '0' || c > '9') return false;
      n = n * 10 + static_cast<uint32_t>(c - '0');
    }
    *v = n;
    return true;
  };
  size_t dash = s.find('-');
  std::string_view a = s.substr(0, dash);
  std::string_view b = dash == std::string_view::npos ? a : s.substr(dash + 1);
  if (!one(a, &out->first) || !one(b, &out->last)) {
    *why = "'" + std::string(s) + "' is not a port or a range A-B";
    return false;
  }
  if (out->first == 0 || out->last == 0 || out->first > 65535 || out->last > 65535) {
    *why = "port '" + std::string(s) + "' is out of range 1-65535";
    return false;
  }
  if (out->first > out->last) {
    *why = "range '" + std::string(s) + "' is reversed";
    return false;
  }
  return true;
}

}  // namespace

const char* proto_name(Proto p) {
  return p == Proto::kUdp ? "udp" : "tcp";
}

Result<std::vector<PortMapping>> parse_publish(std::string_view spec) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument, "publish '" + std::string(spec) + "': " + why);
  };
  if (spec.empty()) return bad("empty; expected [HOSTIP:][HOSTPORT:]CTRPORT[/tcp|udp]");
  for (char c : spec)
    if (std::isspace(static_cast<unsigned char>(c))) return bad("contains whitespace");

  // Docker splits on ':' from the right: the last part is the container port
  // (with its protocol), the one before it the host port, everything before
  // that the host address. An IPv6 address, bracketed or not, therefore
  // leaves colons in the address part.
  std::string_view rest = spec;
  size_t last = rest.rfind(':');
  std::string_view container = last == std::string_view::npos ? rest : rest.substr(last + 1);
  std::string_view host_port, host_ip;
  bool has_host_port = false;
  if (last != std::string_view::npos) {
    rest = rest.substr(0, last);
    size_t prev = rest.rfind(':');
    has_host_port = true;
    host_port = prev == std::string_view::npos ? rest : rest.substr(prev + 1);
    if (prev != std::string_view::npos) host_ip = rest.substr(0, prev);
    // "HOSTIP::CTR" leaves the host port free, as an empty "HOSTPORT" does.
    if (host_port.empty()) has_host_port = false;
  }

  // The protocol: "80", "80/tcp", "80/udp"; "80/" is tcp as in Docker.
  Proto proto = Proto::kTcp;
  size_t slash = container.find('/');
  if (slash != std::string_view::npos) {
    std::string name(container.substr(slash + 1));
    container = container.substr(0, slash);
    for (char& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "udp")
      proto = Proto::kUdp;
    else if (name != "tcp" && !name.empty())
      return bad("unknown protocol '" + name + "' (expected tcp or udp)");
  }

  std::string ip;
  if (!host_ip.empty()) {
    if (host_ip.front() == '[' || host_ip.find(':') != std::string_view::npos)
      return bad("IPv6 host address '" + std::string(host_ip) + "' is not supported");
    auto a = Ipv4::parse(host_ip);
    if (!a) return bad("host address '" + std::string(host_ip) + "' is not an IPv4 address");
    ip = a->to_string();
  }

  if (container.empty()) return bad("no container port");
  Range ctr, host;
  std::string why;
  if (!parse_range(container, &ctr, &why)) return bad("container " + why);
  if (has_host_port) {
    if (!parse_range(host_port, &host, &why)) return bad("host " + why);
    // Docker would take a host range with one container port as "any free
    // port of the range"; Vessel keeps one mapping per host port.
    if (host.last - host.first != ctr.last - ctr.first)
      return bad("host range '" + std::string(host_port) + "' and container range '" +
                 std::string(container) + "' differ in length");
  }

  std::vector<PortMapping> out;
  for (uint32_t i = 0; i <= ctr.last - ctr.first; ++i) {
    PortMapping m;
    m.host_ip = ip;
    m.host_port = has_host_port ? static_cast<uint16_t>(host.first + i) : 0;
    m.container_port = static_cast<uint16_t>(ctr.first + i);
    m.proto = proto;
    out.push_back(std::move(m));
  }
  return out;
}

std::string to_string(const PortMapping& m) {
  return (m.host_ip.empty() ? std::string("0.0.0.0") : m.host_ip) + ":" +
         std::to_string(m.host_port) + "->" + port_key(m.container_port, m.proto);
}

std::string port_key(uint16_t container_port, Proto proto) {
  return std::to_string(container_port) + "/" + proto_name(proto);
}

Result<std::pair<uint16_t, Proto>> parse_port_key(std::string_view key) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument,
                 "invalid exposed port '" + std::string(key) + "': " + why);
  };
  Proto proto = Proto::kTcp;
  std::string_view port = key;
  size_t slash = key.find('/');
  if (slash != std::string_view::npos) {
    std::string_view name = key.substr(slash + 1);
    port = key.substr(0, slash);
    if (name == "udp")
      proto = Proto::kUdp;
    else if (name != "tcp")
      return bad("unknown protocol '" + std::string(name) + "' (expected tcp or udp)");
  }
  Range r;
  std::string why;
  if (port.find('-') != std::string_view::npos || !parse_range(port, &r, &why))
    return bad("expected a port 1-65535");
  return std::pair<uint16_t, Proto>{static_cast<uint16_t>(r.first), proto};
}

}  // namespace vessel::net
