#include "guest/net.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/unique_fd.h"

namespace vessel::guest {
namespace netlink {
namespace {

Request link_request(uint32_t seq, int ifindex, unsigned flags, unsigned change) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  ifi.ifi_flags = flags;
  ifi.ifi_change = change;
  return Request(RTM_NEWLINK, 0, seq, &ifi, sizeof ifi);
}

}  // namespace

Request::Request(uint16_t type, uint16_t extra_flags, uint32_t seq, const void* family_header,
                 size_t header_size) {
  nlmsghdr h{};
  h.nlmsg_type = type;
  h.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | extra_flags);
  h.nlmsg_seq = seq;
  length_ = NLMSG_HDRLEN;
  if (NLMSG_ALIGN(header_size) > kCapacity - length_) {
    ok_ = false;
  } else {
    std::memcpy(buffer_ + length_, family_header, header_size);
    length_ += NLMSG_ALIGN(header_size);
  }
  h.nlmsg_len = static_cast<uint32_t>(length_);
  std::memcpy(buffer_, &h, sizeof h);
}

void Request::attr(uint16_t type, const void* data, size_t size) {
  // An attribute's length is 16 bits and counts its 4-byte header; the next
  // one starts at the aligned end (RTA_ALIGN, include/uapi/linux/rtnetlink.h).
  if (!ok_ || size > 0xFFFF - RTA_LENGTH(0) || RTA_SPACE(size) > kCapacity - length_) {
    ok_ = false;
    return;
  }
  rtattr a{};
  a.rta_len = static_cast<unsigned short>(RTA_LENGTH(size));
  a.rta_type = type;
  std::memcpy(buffer_ + length_, &a, sizeof a);
  if (size > 0) std::memcpy(buffer_ + length_ + RTA_LENGTH(0), data, size);
  length_ += RTA_SPACE(size);
  uint32_t total = static_cast<uint32_t>(length_);
  std::memcpy(buffer_ + offsetof(nlmsghdr, nlmsg_len), &total, sizeof total);
}

void Request::attr_string(uint16_t type, std::string_view value) {
  char text[IFNAMSIZ * 4] = {};
  if (value.size() >= sizeof text) {
    ok_ = false;
    return;
  }
  std::memcpy(text, value.data(), value.size());
  attr(type, text, value.size() + 1);
}

uint32_t prefix_mask(uint8_t prefix_len) {
  if (prefix_len == 0) return 0;
  return ~uint32_t{0} << (32 - (prefix_len > 32 ? 32 : prefix_len));
}

Request set_link_up(uint32_t seq, int ifindex, bool up) {
  return link_request(seq, ifindex, up ? IFF_UP : 0, IFF_UP);
}

Request rename_link(uint32_t seq, int ifindex, std::string_view name) {
  Request r = link_request(seq, ifindex, 0, 0);
  r.attr_string(IFLA_IFNAME, name);
  return r;
}

Request set_link_mtu(uint32_t seq, int ifindex, uint32_t mtu) {
  Request r = link_request(seq, ifindex, 0, 0);
  r.attr_u32(IFLA_MTU, mtu);
  return r;
}

Request set_link_address(uint32_t seq, int ifindex, std::string_view mac) {
  Request r = link_request(seq, ifindex, 0, 0);
  r.attr(IFLA_ADDRESS, mac.data(), mac.size());
  return r;
}

Request add_address(uint32_t seq, int ifindex, uint32_t address, uint8_t prefix_len) {
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET;
  ifa.ifa_prefixlen = prefix_len;
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<uint32_t>(ifindex);
  Request r(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, seq, &ifa, sizeof ifa);
  // For IPv4, IFA_LOCAL is the interface's address and IFA_ADDRESS the peer's,
  // which is the same one on a broadcast link (rtnetlink(7), "ifa_address").
  uint32_t be = htonl(address);
  r.attr(IFA_LOCAL, &be, sizeof be);
  r.attr(IFA_ADDRESS, &be, sizeof be);
  // /31 (RFC 3021) and /32 have no broadcast address.
  if (prefix_len <= 30) {
    uint32_t broadcast = htonl(address | ~prefix_mask(prefix_len));
    r.attr(IFA_BROADCAST, &broadcast, sizeof broadcast);
  }
  return r;
}

Request add_default_route(uint32_t seq, uint32_t gateway, int ifindex) {
  rtmsg rt{};
  rt.rtm_family = AF_INET;
  rt.rtm_dst_len = 0;  // 0.0.0.0/0
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_BOOT;
  rt.rtm_scope = RT_SCOPE_UNIVERSE;
  rt.rtm_type = RTN_UNICAST;
  Request r(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, seq, &rt, sizeof rt);
  uint32_t be = htonl(gateway);
  r.attr(RTA_GATEWAY, &be, sizeof be);
  r.attr_u32(RTA_OIF, static_cast<uint32_t>(ifindex));
  return r;
}

Request add_address6(uint32_t seq, int ifindex, std::string_view address, uint8_t prefix_len) {
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET6;
  ifa.ifa_prefixlen = prefix_len;
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<uint32_t>(ifindex);
  Request r(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, seq, &ifa, sizeof ifa);
  // For IPv6, IFA_ADDRESS is the local address (IFA_LOCAL is for peers).
  r.attr(IFA_ADDRESS, address.data(), address.size());
  r.attr_u32(IFA_FLAGS, IFA_F_NODAD);
  return r;
}

Request add_route(uint32_t seq, std::string_view destination, uint8_t prefix_len,
                  std::string_view gateway, int ifindex) {
  rtmsg rt{};
  rt.rtm_family = destination.size() == 16 ? AF_INET6 : AF_INET;
  rt.rtm_dst_len = prefix_len;
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_BOOT;
  rt.rtm_scope = gateway.empty() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  rt.rtm_type = RTN_UNICAST;
  Request r(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, seq, &rt, sizeof rt);
  // A default route (prefix 0) has no RTA_DST, as ip-route(8) sends it.
  if (prefix_len != 0) r.attr(RTA_DST, destination.data(), destination.size());
  if (!gateway.empty()) r.attr(RTA_GATEWAY, gateway.data(), gateway.size());
  r.attr_u32(RTA_OIF, static_cast<uint32_t>(ifindex));
  return r;
}

Ack parse_ack(std::span<const uint8_t> d, uint32_t seq) {
  Ack malformed;
  malformed.kind = Ack::Kind::kMalformed;
  size_t off = 0;
  while (d.size() - off >= sizeof(nlmsghdr)) {
    nlmsghdr h;
    std::memcpy(&h, d.data() + off, sizeof h);
    // A message's length covers its header and stays inside the datagram.
    if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > d.size() - off) return malformed;
    if (h.nlmsg_type == NLMSG_ERROR && h.nlmsg_seq == seq) {
      size_t body = h.nlmsg_len - NLMSG_HDRLEN;
      if (body < sizeof(nlmsgerr)) return malformed;
      nlmsgerr e;
      std::memcpy(&e, d.data() + off + NLMSG_HDRLEN, sizeof e);
      // 0 or a negative errno (netlink_ack() in net/netlink/af_netlink.c).
      if (e.error > 0 || e.error < -4095) return malformed;
      Ack ack;
      ack.kind = e.error == 0 ? Ack::Kind::kOk : Ack::Kind::kError;
      ack.errnum = -e.error;
      if ((h.nlmsg_flags & NLM_F_ACK_TLVS) == 0) return ack;
      // Extended-ack attributes follow the nlmsgerr and, unless the reply is
      // NLM_F_CAPPED, the echoed request's payload (netlink_ack()).
      size_t tlv = sizeof(nlmsgerr);
      if ((h.nlmsg_flags & NLM_F_CAPPED) == 0) {
        if (e.msg.nlmsg_len < NLMSG_HDRLEN || e.msg.nlmsg_len - NLMSG_HDRLEN > body) return ack;
        tlv += e.msg.nlmsg_len - NLMSG_HDRLEN;
      }
      tlv = NLMSG_ALIGN(tlv);
      const uint8_t* base = d.data() + off + NLMSG_HDRLEN;
      while (tlv < body && body - tlv >= sizeof(nlattr)) {
        nlattr a;
        std::memcpy(&a, base + tlv, sizeof a);
        if (a.nla_len < sizeof(nlattr) || a.nla_len > body - tlv) return malformed;
        if (a.nla_type == NLMSGERR_ATTR_MSG) {
          const char* text = reinterpret_cast<const char*>(base + tlv + sizeof(nlattr));
          size_t size = a.nla_len - sizeof(nlattr);
          ack.message.assign(text, strnlen(text, size));
        }
        tlv += NLA_ALIGN(a.nla_len);
      }
      return ack;
    }
    size_t step = NLMSG_ALIGN(h.nlmsg_len);
    if (step >= d.size() - off) break;
    off += step;
  }
  return {};
}

std::string format_mac(std::string_view mac) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  for (size_t i = 0; i < mac.size(); ++i) {
    auto byte = static_cast<uint8_t>(mac[i]);
    if (i > 0) text += ':';
    text += kHex[byte >> 4];
    text += kHex[byte & 0xF];
  }
  return text;
}

std::string format_address(std::string_view raw) {
  char text[INET6_ADDRSTRLEN] = {};
  int family = raw.size() == 16 ? AF_INET6 : raw.size() == 4 ? AF_INET : 0;
  if (family == 0 || !inet_ntop(family, raw.data(), text, sizeof text)) return "?";
  return text;
}

std::string format_ipv4(uint32_t address) {
  char text[INET_ADDRSTRLEN];
  std::snprintf(text, sizeof text, "%u.%u.%u.%u", address >> 24, (address >> 16) & 0xFF,
                (address >> 8) & 0xFF, address & 0xFF);
  return text;
}

}  // namespace netlink

namespace {

/// How long a virtio-net device may take to appear. Built-in drivers probe
/// the virtio-mmio devices before init starts, so this is only a margin.
constexpr int64_t kDeviceWaitMs = 2000;
/// How long the kernel may take to answer one request.
constexpr int kReplyTimeoutSeconds = 5;

/// An rtnetlink socket that sends one request at a time and waits for its
/// acknowledgement.
class Rtnetlink {
 public:
  static Result<Rtnetlink> open() {
    UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd) return Status::from_errno("network: open rtnetlink socket");
    // Extended acks carry the kernel's reason as text; capped acks leave the
    // request out of error replies. Both are best effort (Linux 4.12+).
    int on = 1;
    setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on);
    setsockopt(fd.get(), SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof on);
    timeval timeout{kReplyTimeoutSeconds, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    Rtnetlink nl;
    nl.fd_ = std::move(fd);
    return nl;
  }

  uint32_t next_seq() { return ++seq_; }

  /// Sends `request` (numbered seq_) and waits for its acknowledgement.
  /// `what` names the step for the error message.
  Status call(const netlink::Request& request, const std::string& what) {
    if (!request.ok()) return Status(EINVAL, "network: " + what + ": request too long");
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    std::span<const uint8_t> bytes = request.bytes();
    ssize_t sent;
    do {
      sent = sendto(fd_.get(), bytes.data(), bytes.size(), 0,
                    reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) return Status::from_errno("network: " + what + ": send");
    alignas(nlmsghdr) uint8_t reply[8192];
    for (;;) {
      sockaddr_nl from{};
      socklen_t from_len = sizeof from;
      // MSG_TRUNC: the datagram's real length, so a cut reply is noticed.
      ssize_t n = recvfrom(fd_.get(), reply, sizeof reply, MSG_TRUNC,
                           reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return Status(ETIMEDOUT, "network: " + what + ": no answer from the kernel");
      if (n < 0) return Status::from_errno("network: " + what + ": receive");
      if (from.nl_pid != 0) continue;  // only the kernel speaks for the kernel
      if (static_cast<size_t>(n) > sizeof reply)
        return Status(EPROTO, "network: " + what + ": reply too long");
      netlink::Ack ack = netlink::parse_ack({reply, static_cast<size_t>(n)}, seq_);
      switch (ack.kind) {
        case netlink::Ack::Kind::kNone:
          continue;
        case netlink::Ack::Kind::kOk:
          return {};
        case netlink::Ack::Kind::kError: {
          Status s = Status::from_errno(ack.errnum, "network: " + what);
          if (ack.message.empty()) return s;
          return Status(s.errnum(), s.message() + " (" + ack.message + ")");
        }
        case netlink::Ack::Kind::kMalformed:
          return Status(EPROTO, "network: " + what + ": malformed reply from the kernel");
      }
    }
  }

 private:
  UniqueFd fd_;
  uint32_t seq_ = 0;
};

struct Device {
  int index = 0;
  std::string name;
};

std::string trim_newline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0' || s.back() == ' '))
    s.pop_back();
  return s;
}

/// The network device whose /sys/class/net/*/address is `mac` ("02:..").
Result<Device> find_device(const std::string& mac) {
  DIR* dir = opendir("/sys/class/net");
  if (!dir) return Status::from_errno("network: open '/sys/class/net'");
  Device found;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::string base = std::string("/sys/class/net/") + e->d_name;
    Result<std::string> address = read_file(base + "/address", 64);
    if (!address.ok() || trim_newline(address.take()) != mac) continue;
    Result<std::string> index = read_file(base + "/ifindex", 32);
    if (!index.ok()) continue;
    found.index = std::atoi(trim_newline(index.take()).c_str());
    found.name = e->d_name;
    if (found.index > 0) break;
  }
  closedir(dir);
  if (found.index <= 0) return Status(ENODEV, "network: no device with MAC " + mac);
  return found;
}

/// Waits up to `deadline` for the device with `mac` to appear.
Result<Device> await_device(const std::string& mac, int64_t deadline) {
  for (;;) {
    Result<Device> d = find_device(mac);
    if (d.ok() || d.status().errnum() != ENODEV || monotonic_ms() >= deadline) return d;
    sleep_ms(10);
  }
}

}  // namespace

Status configure_network(const protocol::Setup& setup) {
  Result<Rtnetlink> opened = Rtnetlink::open();
  if (!opened.ok()) return opened.status();
  Rtnetlink nl = opened.take();

  // The kernel gives lo 127.0.0.1/8 and ::1 itself when it goes up.
  unsigned lo = if_nametoindex("lo");
  if (lo == 0) return Status::from_errno("network: find 'lo'");
  Status s =
      nl.call(netlink::set_link_up(nl.next_seq(), static_cast<int>(lo), true), "bring up lo");
  if (!s.ok()) return s;

  // First every device down and out of the way under a temporary name, so
  // that devices can trade the names the kernel gave them in probe order
  // (the host's eth0 may be the guest's eth1). A device must be down to be
  // renamed (dev_change_name() in net/core/dev.c: EBUSY).
  const std::vector<protocol::Interface>& interfaces = setup.interfaces;
  std::vector<Device> devices(interfaces.size());
  std::vector<std::string> original(interfaces.size());
  int64_t deadline = monotonic_ms() + kDeviceWaitMs;
  // Restored from a template: device i has the template's MAC i; it takes
  // the container's (virtio-net tells the device through its control
  // queue, so QEMU's receive filter follows), and is then found by it.
  if (setup.restored) {
    for (size_t i = 0; i < interfaces.size(); ++i) {
      std::string placeholder =
          netlink::format_mac(protocol::template_mac(static_cast<uint8_t>(i)));
      Result<Device> found = await_device(placeholder, deadline);
      if (!found.ok()) return found.status();
      s = nl.call(
          netlink::set_link_address(nl.next_seq(), found.value().index, interfaces[i].mac),
          "give " + found.value().name + " its address " + netlink::format_mac(interfaces[i].mac));
      if (!s.ok()) return s;
    }
  }
  for (size_t i = 0; i < interfaces.size(); ++i) {
    Result<Device> found = await_device(netlink::format_mac(interfaces[i].mac), deadline);
    if (!found.ok()) return found.status();
    devices[i] = found.take();
    original[i] = devices[i].name;
    s = nl.call(netlink::set_link_up(nl.next_seq(), devices[i].index, false),
                "set " + devices[i].name + " down");
    if (!s.ok()) return s;
    if (devices[i].name == interfaces[i].name) continue;
    std::string temporary = "vessel-tmp" + std::to_string(i);
    s = nl.call(netlink::rename_link(nl.next_seq(), devices[i].index, temporary),
                "rename " + devices[i].name + " to " + temporary);
    if (!s.ok()) return s;
    devices[i].name = temporary;
  }

  for (size_t i = 0; i < interfaces.size(); ++i) {
    const protocol::Interface& want = interfaces[i];
    int index = devices[i].index;
    if (devices[i].name != want.name) {
      s = nl.call(netlink::rename_link(nl.next_seq(), index, want.name),
                  "rename " + original[i] + " to " + want.name);
      if (!s.ok()) return s;
    }
    if (want.mtu != 0) {
      s = nl.call(netlink::set_link_mtu(nl.next_seq(), index, want.mtu),
                  "set MTU " + std::to_string(want.mtu) + " on " + want.name);
      if (!s.ok()) return s;
    }
    if (want.address != 0) {
      s = nl.call(netlink::add_address(nl.next_seq(), index, want.address, want.prefix_len),
                  "add address " + netlink::format_ipv4(want.address) + "/" +
                      std::to_string(want.prefix_len) + " to " + want.name);
      if (!s.ok()) return s;
    }
    s = nl.call(netlink::set_link_up(nl.next_seq(), index, true), "bring up " + want.name);
    if (!s.ok()) return s;
  }

  for (const protocol::Address6& a : setup.addresses6) {
    // The decoder checked the index against the interfaces.
    const std::string& name = interfaces[a.interface].name;
    s = nl.call(
        netlink::add_address6(nl.next_seq(), devices[a.interface].index, a.address, a.prefix_len),
        "add address " + netlink::format_address(a.address) + "/" + std::to_string(a.prefix_len) +
            " to " + name);
    if (!s.ok()) return s;
  }
  for (const protocol::Route& rt : setup.routes) {
    std::string what =
        "add route " + netlink::format_address(rt.destination) + "/" +
        std::to_string(rt.prefix_len) +
        (rt.gateway.empty() ? std::string(" on ")
                            : " via " + netlink::format_address(rt.gateway) + " out of ") +
        interfaces[rt.interface].name;
    s = nl.call(netlink::add_route(nl.next_seq(), rt.destination, rt.prefix_len, rt.gateway,
                                   devices[rt.interface].index),
                what);
    if (!s.ok()) return s;
  }

  if (setup.gateway == 0) return {};
  // Out of the interface whose subnet holds the gateway (the decoder made
  // sure one does).
  int oif = 0;
  for (size_t i = 0; i < interfaces.size() && oif == 0; ++i) {
    uint32_t mask = netlink::prefix_mask(interfaces[i].prefix_len);
    if (interfaces[i].address != 0 && (interfaces[i].address & mask) == (setup.gateway & mask))
      oif = devices[i].index;
  }
  std::string what = "add default route via " + netlink::format_ipv4(setup.gateway);
  if (oif == 0) return Status(ENETUNREACH, "network: " + what + ": no interface on its subnet");
  return nl.call(netlink::add_default_route(nl.next_seq(), setup.gateway, oif), what);
}

}  // namespace vessel::guest
