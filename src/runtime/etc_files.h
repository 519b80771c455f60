// The files Vessel makes in every container's /etc (the guest writes them
// from Setup, even when the image has none): hosts and resolv.conf
// (hostname is the hostname itself).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "net/address.h"

namespace vessel::runtime {

/// resolv.conf: `network_dns` (the DNS of the container's first network;
/// nullopt without one: the host's resolvers minus loopback ones, which mean
/// nothing inside the VM), with --dns servers, --dns-search domains ("."
/// for none) and --dns-option options replacing the defaults. Never empty.
std::string container_resolv_conf(std::optional<net::Ipv4> network_dns,
                                  const std::vector<std::string>& dns,
                                  const std::vector<std::string>& search,
                                  const std::vector<std::string>& options);

/// hosts: localhost, the hostname on each of `own` addresses (127.0.1.1
/// without one), and --add-host entries ("name:ip").
std::string container_hosts(const std::string& hostname, const std::vector<net::Ipv4>& own,
                            const std::vector<std::string>& extra_hosts);

/// Checks one --add-host value (NAME:IP, IP may be "host-gateway").
Status validate_extra_host(const std::string& spec);

}  // namespace vessel::runtime
