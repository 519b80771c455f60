// Name service for one network: a dnsmasq (Debian's dnsmasq-base, the
// resolver libvirt runs per network) listening on the network's gateway
// address, answering the names of the containers running on it from a hosts
// file Vessel writes, forwarding everything else to the host's resolvers.
// It runs while the network has running containers: sync_dns() with records
// starts it (or makes it re-read the file with SIGHUP), with none stops it.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "net/address.h"

namespace vessel::net {

/// The domain every container name is also known under.
inline constexpr const char* kDnsDomain = "vessel.internal";

struct DnsRecord {
  Ipv4 address;
  /// Names as given (container name, aliases); each also answers as
  /// NAME.vessel.internal.
  std::vector<std::string> names;
};

struct DnsConfig {
  /// A directory of the network's own (exists): hosts, dnsmasq.pid,
  /// dnsmasq.log live there.
  std::string dir;
  std::string bridge;  // interface dnsmasq binds to
  Ipv4 listen;         // the gateway address, port 53 UDP and TCP
};

/// Writes `dir`/hosts atomically and makes the network's dnsmasq serve it:
/// starts one (detached, its own session, pid in `dir`/dnsmasq.pid) when none
/// runs, otherwise SIGHUP. With `records` empty, stops it (stop_dns).
/// Serialize calls per network (the caller holds the network's lock).
Status sync_dns(const DnsConfig& config, const std::vector<DnsRecord>& records);

/// Stops the network's dnsmasq if one runs (SIGTERM, then SIGKILL) and
/// removes its pid file.
Status stop_dns(const DnsConfig& config);

/// True when the dnsmasq recorded in `dir`/dnsmasq.pid is alive (the pid is
/// checked against /proc/PID/cmdline naming that pid file, not trusted alone).
bool dns_running(const DnsConfig& config);

/// The hosts file lines for `records` ("10.1.0.2\tweb web.vessel.internal alias ...").
std::string render_hosts(const std::vector<DnsRecord>& records);

}  // namespace vessel::net
