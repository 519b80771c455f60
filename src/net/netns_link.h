// A network namespace that someone else configured (CNI, for Kubernetes and
// Podman) joined to a VM the way Kata Containers does it: a tap made inside
// that namespace and tc mirred redirection between the namespace's
// interface and the tap, both ways, so every frame the interface receives
// goes to the VM and every frame the VM sends leaves through the interface.
// The guest's NIC takes the interface's MAC, address and default route, so
// the pod's address is the VM's.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "net/address.h"

namespace vessel::net {

struct NetnsLink {
  UniqueFd tap;                 // the tap inside the namespace, for QEMU
  std::string interface;        // the namespace's interface ("eth0")
  Mac mac;                      // its MAC: the guest's NIC takes it
  Ipv4Net address;              // its IPv4 address and prefix
  std::optional<Ipv4> gateway;  // its default route's gateway
  uint32_t mtu = 1500;
};

/// The names of the links other than `lo` in the network namespace at
/// `path` (a bind-mounted namespace file, or /proc/PID/ns/net).
Result<std::vector<std::string>> netns_interfaces(const std::string& path);

/// Joins the namespace at `path` to a new tap named `tap_name` (made in
/// that namespace, alive while the returned fd is). The namespace must have
/// exactly one link besides `lo`, with an IPv4 address; kInvalidArgument
/// naming what is missing otherwise. Uses iproute2's `tc` (ingress qdiscs
/// and u32 match-all filters with mirred egress redirect, as Kata does; the
/// kernel needs NET_SCH_INGRESS, NET_CLS_U32 and NET_ACT_MIRRED). The calling thread
/// enters the namespace for the duration and returns to its own.
Result<NetnsLink> join_netns(const std::string& path, const std::string& tap_name);

}  // namespace vessel::net
