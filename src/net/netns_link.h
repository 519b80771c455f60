// A network namespace that someone else configured (CNI, for Kubernetes and
// Podman) joined to a VM the way Kata Containers does it: a tap made inside
// that namespace and tc mirred redirection between the namespace's
// interface and the tap, both ways, so every frame the interface receives
// goes to the VM and every frame the VM sends leaves through the interface.
// The guest's NIC takes the interface's MAC, addresses (IPv4 and IPv6) and
// routes, so the pod's addresses are the VM's.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "net/address.h"

namespace vessel::net {

/// An IPv6 address of the namespace's interface.
struct NetnsAddress6 {
  std::string address;  // 16 raw bytes
  uint8_t prefix_len = 0;
};

/// A route of the namespace's interface: destination/prefix (4 or 16 raw
/// bytes; prefix 0 for a default route) via `gateway` (empty: on the link).
struct NetnsRoute {
  std::string destination;
  uint8_t prefix_len = 0;
  std::string gateway;
};

struct NetnsLink {
  UniqueFd tap;                 // the tap inside the namespace, for QEMU
  std::string interface;        // the namespace's interface ("eth0")
  Mac mac;                      // its MAC: the guest's NIC takes it
  Ipv4Net address;              // its IPv4 address and prefix
  std::optional<Ipv4> gateway;  // its default route's gateway
  uint32_t mtu = 1500;
  /// Its global IPv6 addresses (link-local ones are the guest's own: the
  /// same MAC gives the same address).
  std::vector<NetnsAddress6> addresses6;
  /// Its routes besides the IPv4 default (`gateway`) and those the kernel
  /// made for its addresses: IPv4 then IPv6, on-link routes first.
  std::vector<NetnsRoute> routes;
};

/// Parses `ip -j -6 addr show dev IF` (iproute2's JSON): the addresses of
/// global scope, in order; kInvalidArgument for text that is not that JSON.
Result<std::vector<NetnsAddress6>> parse_ip_addresses6(std::string_view json);

/// Parses `ip -j route show dev IF` (`family` 4) or `ip -j -6 route show dev
/// IF` (6): unicast routes of the main table, without the kernel's own
/// (`protocol kernel`), IPv6 multicast, and the IPv4 default; on-link
/// routes (no gateway) first. kInvalidArgument for text that is not that
/// JSON or an address that does not parse.
Result<std::vector<NetnsRoute>> parse_ip_routes(std::string_view json, int family);

/// The names of the links other than `lo` in the network namespace at
/// `path` (a bind-mounted namespace file, or /proc/PID/ns/net).
Result<std::vector<std::string>> netns_interfaces(const std::string& path);

/// Joins the namespace at `path` to a new tap named `tap_name` (made in
/// that namespace, alive while the returned fd is). The namespace must have
/// exactly one link besides `lo`, with an IPv4 address; kInvalidArgument
/// naming what is missing otherwise. Its IPv6 addresses and routes are read
/// with iproute2's `ip -j`. Uses iproute2's `tc` (ingress qdiscs
/// and u32 match-all filters with mirred egress redirect, as Kata does; the
/// kernel needs NET_SCH_INGRESS, NET_CLS_U32 and NET_ACT_MIRRED). The calling thread
/// enters the namespace for the duration and returns to its own.
Result<NetnsLink> join_netns(const std::string& path, const std::string& tap_name);

}  // namespace vessel::net
