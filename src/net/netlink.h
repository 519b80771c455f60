// The host's links and addresses over rtnetlink (libmnl, Debian's
// libmnl-dev): bridges, taps' masters, IPv4 addresses. Every call acts in the
// caller's network namespace. Replies are untrusted bytes from the kernel's
// point of view only in theory, but they are parsed with every attribute
// length checked (parse_link() is fuzzed).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "net/address.h"

namespace vessel::net {

struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;  // IFLA_INFO_KIND: "bridge", "tun", "veth", "" for none
  int master = 0;    // ifindex of the bridge it is enslaved to, or 0
  bool up = false;   // IFF_UP
  uint32_t mtu = 0;
};

/// Parses one RTM_NEWLINK message (nlmsghdr included). nullopt when it is
/// malformed or not RTM_NEWLINK.
std::optional<LinkInfo> parse_link(std::span<const uint8_t> message);

/// Every link of the namespace.
Result<std::vector<LinkInfo>> list_links();
/// The link named `name`; kNotFound.
Result<LinkInfo> find_link(const std::string& name);

/// Creates a bridge (kAlreadyExists if a link of that name exists).
Status create_bridge(const std::string& name);
/// Deletes the link; kNotFound if there is none.
Status delete_link(const std::string& name);
Status set_link_up(const std::string& name, bool up);
Status set_mtu(const std::string& name, uint32_t mtu);
/// Sets the link's MAC address. A bridge whose MAC was set keeps it; one
/// left to the kernel takes the lowest MAC of its ports, so it changes as
/// ports come and go and its neighbours' ARP caches go stale.
Status set_mac(const std::string& name, const Mac& mac);
/// Enslaves `link` to `bridge`.
Status set_master(const std::string& link, const std::string& bridge);
/// Adds `address`/`prefix` to the link (ok if it is already there).
Status add_address(const std::string& link, Ipv4 address, uint8_t prefix);
/// The IPv4 addresses of every link, with their prefixes (for overlap checks).
Result<std::vector<std::pair<std::string, Ipv4Net>>> list_addresses();

/// Sets /proc/sys/net/ipv4/ip_forward to 1 (this namespace's).
Status enable_ip_forwarding();

}  // namespace vessel::net
