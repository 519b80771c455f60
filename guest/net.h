// The VM's network, configured from Setup over rtnetlink before anything is
// mounted or run: lo, then each virtio-net device (found by its MAC, renamed,
// given its MTU and IPv4 address, brought up), then the default route.
// Hand-written netlink: vessel-init is static and exception-free, and libmnl
// has no static library in Debian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "guest/system.h"
#include "protocol/protocol.h"

namespace vessel::guest {

/// Brings `lo` up, then configures `setup.interfaces` and the default route
/// via `setup.gateway` (if not 0). Every request waits for the kernel's
/// acknowledgement. A failure carries the errno and a message starting with
/// "network: " that names the step ("network: add address 10.0.0.2/24 to
/// eth0: File exists"); what was configured before it stays.
Status configure_network(const protocol::Setup& setup);

/// Message building and parsing, pure functions exposed for unit tests.
namespace netlink {

/// One rtnetlink request in a fixed buffer: a nlmsghdr, the family header
/// (ifinfomsg, ifaddrmsg, rtmsg) and attributes, each 4-byte aligned as
/// NLMSG_ALIGN and RTA_ALIGN want.
class Request {
 public:
  static constexpr size_t kCapacity = 256;

  /// A request of `type` (RTM_NEWLINK, ...) with NLM_F_REQUEST | NLM_F_ACK
  /// and `extra_flags`, numbered `seq`, followed by `family_header`.
  Request(uint16_t type, uint16_t extra_flags, uint32_t seq, const void* family_header,
          size_t header_size);

  /// Appends an attribute. Too long for the buffer: marks the request
  /// failed (ok() false) instead.
  void attr(uint16_t type, const void* data, size_t size);
  void attr_u32(uint16_t type, uint32_t value) { attr(type, &value, sizeof value); }
  /// A string attribute with its terminating NUL (IFLA_IFNAME).
  void attr_string(uint16_t type, std::string_view value);

  /// False if something did not fit; such a request must not be sent.
  bool ok() const { return ok_; }
  std::span<const uint8_t> bytes() const { return {buffer_, length_}; }

 private:
  alignas(4) uint8_t buffer_[kCapacity] = {};
  size_t length_ = 0;
  bool ok_ = true;
};

/// RTM_NEWLINK that sets `ifindex` up or down (ifi_change IFF_UP).
Request set_link_up(uint32_t seq, int ifindex, bool up);
/// RTM_NEWLINK with IFLA_IFNAME `name` (the device must be down).
Request rename_link(uint32_t seq, int ifindex, std::string_view name);
/// RTM_NEWLINK with IFLA_MTU.
Request set_link_mtu(uint32_t seq, int ifindex, uint32_t mtu);
/// RTM_NEWLINK with IFLA_ADDRESS `mac` (6 raw bytes).
Request set_link_address(uint32_t seq, int ifindex, std::string_view mac);
/// RTM_NEWADDR (NLM_F_CREATE | NLM_F_EXCL) of `address`/`prefix_len` (host
/// byte order) on `ifindex`: IFA_LOCAL and IFA_ADDRESS, and IFA_BROADCAST
/// (the subnet's last address) for prefixes up to /30.
Request add_address(uint32_t seq, int ifindex, uint32_t address, uint8_t prefix_len);
/// RTM_NEWROUTE (NLM_F_CREATE | NLM_F_EXCL) of 0.0.0.0/0 via `gateway`
/// (host byte order) out of `ifindex`: table main, protocol boot, scope
/// universe, unicast.
Request add_default_route(uint32_t seq, uint32_t gateway, int ifindex);

/// RTM_NEWADDR (NLM_F_CREATE | NLM_F_EXCL) of the IPv6 `address` (16 raw
/// bytes)/`prefix_len` on `ifindex`: IFA_ADDRESS, and IFA_FLAGS with
/// IFA_F_NODAD so the address is usable at once (its namespace's owner
/// made it unique; DAD would hold it "tentative" for a second or more).
Request add_address6(uint32_t seq, int ifindex, std::string_view address, uint8_t prefix_len);
/// RTM_NEWROUTE (NLM_F_CREATE | NLM_F_EXCL) of `destination`/`prefix_len`
/// (4 raw bytes: IPv4, 16: IPv6) out of `ifindex`, via `gateway` (same
/// size; scope universe) or, when it is empty, on the link (scope link):
/// table main, protocol boot, unicast.
Request add_route(uint32_t seq, std::string_view destination, uint8_t prefix_len,
                  std::string_view gateway, int ifindex);

/// What a datagram from the kernel said about request `seq`.
struct Ack {
  enum class Kind {
    kNone,       // nothing about `seq` in it: read the next datagram
    kOk,         // NLMSG_ERROR with error 0
    kError,      // NLMSG_ERROR with -errnum
    kMalformed,  // a length or value out of bounds
  };
  Kind kind = Kind::kNone;
  int errnum = 0;
  /// The kernel's extended acknowledgement text (NLMSGERR_ATTR_MSG), if any.
  std::string message;
};

/// Finds the acknowledgement of `seq` in `datagram`. Every length (each
/// nlmsghdr's nlmsg_len, the nlmsgerr, each extended-ack attribute) is
/// checked against the bytes received before it is used.
Ack parse_ack(std::span<const uint8_t> datagram, uint32_t seq);

/// The netmask of `prefix_len` bits in host byte order (0 for 0; 32 and
/// above: all ones).
uint32_t prefix_mask(uint8_t prefix_len);
/// "02:00:0a:00:00:02" for 6 raw bytes, as /sys/class/net/*/address has it.
std::string format_mac(std::string_view mac);
/// "10.0.0.2" for 0x0a000002.
std::string format_ipv4(uint32_t address);
/// An address of 4 or 16 raw bytes as inet_ntop(3) writes it ("fd00::2");
/// "?" for another size.
std::string format_address(std::string_view raw);

}  // namespace netlink
}  // namespace vessel::guest
