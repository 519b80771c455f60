// Published ports as Docker's -p spells them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace vessel::net {

enum class Proto : uint8_t { kTcp, kUdp };
const char* proto_name(Proto p);  // "tcp", "udp"

struct PortMapping {
  std::string host_ip;     // "" = every host address (0.0.0.0); else an IPv4 literal
  uint16_t host_port = 0;  // 0: a free port chosen when the container starts
  uint16_t container_port = 0;
  Proto proto = Proto::kTcp;
  auto operator<=>(const PortMapping&) const = default;
};

/// Parses one -p value: `[HOSTIP:][HOSTPORT:]CTRPORT[/tcp|udp]` where the
/// ports may be ranges `A-B` (the host range as long as the container range;
/// a host range with a single container port is refused), `HOSTIP::CTR` and
/// `CTR` leave the host port free (0). One mapping per port of the range.
/// kInvalidArgument naming the spec and what is wrong (port 0 or > 65535,
/// a reversed range, an unknown protocol, a malformed address, IPv6).
Result<std::vector<PortMapping>> parse_publish(std::string_view spec);

/// "0.0.0.0:8080->80/tcp" as Docker's `ps` shows it ("" host ip as 0.0.0.0).
std::string to_string(const PortMapping& m);

/// "80/tcp": Docker's key for a container port (ExposedPorts, Ports).
std::string port_key(uint16_t container_port, Proto proto);
/// Parses "80", "80/tcp", "53/udp" (an image's ExposedPorts key).
Result<std::pair<uint16_t, Proto>> parse_port_key(std::string_view key);

}  // namespace vessel::net
