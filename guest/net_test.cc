// The rtnetlink requests vessel-init sends for Setup's network, and its
// parser of the kernel's acknowledgements. Plain functions over buffers,
// so they are tested on the host: no socket, no root.
#include "guest/net.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace vessel::guest::netlink {
namespace {

using Bytes = std::vector<uint8_t>;

/// A request taken apart: its header, family header and attributes (type ->
/// payload), walked with the kernel's own macros.
struct Parsed {
  nlmsghdr header{};
  Bytes family;
  std::map<uint16_t, Bytes> attrs;
  bool ok = false;
};

Parsed parse(const Request& r, size_t family_size) {
  Parsed p;
  std::span<const uint8_t> b = r.bytes();
  if (b.size() < NLMSG_HDRLEN + NLMSG_ALIGN(family_size)) return p;
  std::memcpy(&p.header, b.data(), sizeof p.header);
  if (p.header.nlmsg_len != b.size()) return p;
  p.family.assign(b.begin() + NLMSG_HDRLEN, b.begin() + NLMSG_HDRLEN + family_size);
  // Copied into an aligned buffer, as the kernel sees it.
  std::vector<uint32_t> aligned((b.size() + 3) / 4);
  std::memcpy(aligned.data(), b.data(), b.size());
  auto* base = reinterpret_cast<uint8_t*>(aligned.data());
  auto* rta = reinterpret_cast<rtattr*>(base + NLMSG_HDRLEN + NLMSG_ALIGN(family_size));
  int left = static_cast<int>(b.size() - NLMSG_HDRLEN - NLMSG_ALIGN(family_size));
  for (; RTA_OK(rta, left); rta = RTA_NEXT(rta, left)) {
    auto* data = static_cast<uint8_t*>(RTA_DATA(rta));
    p.attrs[rta->rta_type] = Bytes(data, data + RTA_PAYLOAD(rta));
  }
  p.ok = left == 0;  // every byte belongs to an attribute
  return p;
}

Bytes be32(uint32_t host) {
  uint32_t v = htonl(host);
  Bytes b(4);
  std::memcpy(b.data(), &v, 4);
  return b;
}

Bytes ne32(uint32_t v) {
  Bytes b(4);
  std::memcpy(b.data(), &v, 4);
  return b;
}

constexpr uint16_t kRequestAck = NLM_F_REQUEST | NLM_F_ACK;

TEST(GuestNetlink, AddAddressCarriesLocalAddressAndBroadcast) {
  Request r = add_address(7, 3, 0x0A000002, 24);  // 10.0.0.2/24 on ifindex 3
  ASSERT_TRUE(r.ok());
  Parsed p = parse(r, sizeof(ifaddrmsg));
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.header.nlmsg_type, RTM_NEWADDR);
  EXPECT_EQ(p.header.nlmsg_flags, kRequestAck | NLM_F_CREATE | NLM_F_EXCL);
  EXPECT_EQ(p.header.nlmsg_seq, 7u);
  ifaddrmsg ifa;
  std::memcpy(&ifa, p.family.data(), sizeof ifa);
  EXPECT_EQ(ifa.ifa_family, AF_INET);
  EXPECT_EQ(ifa.ifa_prefixlen, 24);
  EXPECT_EQ(ifa.ifa_scope, RT_SCOPE_UNIVERSE);
  EXPECT_EQ(ifa.ifa_index, 3u);
  ASSERT_EQ(p.attrs.size(), 3u);
  EXPECT_EQ(p.attrs[IFA_LOCAL], be32(0x0A000002));
  EXPECT_EQ(p.attrs[IFA_ADDRESS], be32(0x0A000002));
  EXPECT_EQ(p.attrs[IFA_BROADCAST], be32(0x0A0000FF));  // 10.0.0.255

  p = parse(add_address(1, 2, 0xAC100005, 12), sizeof(ifaddrmsg));  // 172.16.0.5/12
  EXPECT_EQ(p.attrs[IFA_BROADCAST], be32(0xAC1FFFFF));              // 172.31.255.255
  p = parse(add_address(1, 2, 0x0A000002, 30), sizeof(ifaddrmsg));
  EXPECT_EQ(p.attrs[IFA_BROADCAST], be32(0x0A000003));
  // /31 and /32 have no broadcast address.
  for (uint8_t prefix : {31, 32}) {
    p = parse(add_address(1, 2, 0x0A000002, prefix), sizeof(ifaddrmsg));
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.attrs.count(IFA_BROADCAST), 0u) << int{prefix};
    EXPECT_EQ(p.attrs[IFA_LOCAL], be32(0x0A000002));
  }
}

TEST(GuestNetlink, LinkRequests) {
  Parsed up = parse(set_link_up(1, 4, true), sizeof(ifinfomsg));
  ASSERT_TRUE(up.ok);
  EXPECT_EQ(up.header.nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(up.header.nlmsg_flags, kRequestAck);  // changes a link, never creates one
  ifinfomsg ifi;
  std::memcpy(&ifi, up.family.data(), sizeof ifi);
  EXPECT_EQ(ifi.ifi_index, 4);
  EXPECT_EQ(ifi.ifi_flags, static_cast<unsigned>(IFF_UP));
  EXPECT_EQ(ifi.ifi_change, static_cast<unsigned>(IFF_UP));
  EXPECT_TRUE(up.attrs.empty());

  Parsed down = parse(set_link_up(2, 4, false), sizeof(ifinfomsg));
  std::memcpy(&ifi, down.family.data(), sizeof ifi);
  EXPECT_EQ(ifi.ifi_flags, 0u);
  EXPECT_EQ(ifi.ifi_change, static_cast<unsigned>(IFF_UP));

  // The name with its NUL; the flags untouched (ifi_change 0).
  Parsed rename = parse(rename_link(3, 5, "eth0"), sizeof(ifinfomsg));
  ASSERT_TRUE(rename.ok);
  std::memcpy(&ifi, rename.family.data(), sizeof ifi);
  EXPECT_EQ(ifi.ifi_index, 5);
  EXPECT_EQ(ifi.ifi_change, 0u);
  EXPECT_EQ(rename.attrs[IFLA_IFNAME], Bytes({'e', 't', 'h', '0', '\0'}));
  Parsed longest = parse(rename_link(3, 5, std::string(15, 'n')), sizeof(ifinfomsg));
  ASSERT_TRUE(longest.ok);
  EXPECT_EQ(longest.attrs[IFLA_IFNAME].size(), 16u);

  Parsed mtu = parse(set_link_mtu(4, 5, 9000), sizeof(ifinfomsg));
  ASSERT_TRUE(mtu.ok);
  EXPECT_EQ(mtu.attrs[IFLA_MTU], ne32(9000));
  EXPECT_EQ(mtu.header.nlmsg_seq, 4u);
}

TEST(GuestNetlink, DefaultRoute) {
  Request r = add_default_route(9, 0x0A000001, 3);
  ASSERT_TRUE(r.ok());
  Parsed p = parse(r, sizeof(rtmsg));
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.header.nlmsg_type, RTM_NEWROUTE);
  EXPECT_EQ(p.header.nlmsg_flags, kRequestAck | NLM_F_CREATE | NLM_F_EXCL);
  rtmsg rt;
  std::memcpy(&rt, p.family.data(), sizeof rt);
  EXPECT_EQ(rt.rtm_family, AF_INET);
  EXPECT_EQ(rt.rtm_dst_len, 0);
  EXPECT_EQ(rt.rtm_table, RT_TABLE_MAIN);
  EXPECT_EQ(rt.rtm_protocol, RTPROT_BOOT);
  EXPECT_EQ(rt.rtm_scope, RT_SCOPE_UNIVERSE);
  EXPECT_EQ(rt.rtm_type, RTN_UNICAST);
  EXPECT_EQ(p.attrs[RTA_GATEWAY], be32(0x0A000001));
  EXPECT_EQ(p.attrs[RTA_OIF], ne32(3));
  EXPECT_EQ(p.attrs.count(RTA_DST), 0u);
}

TEST(GuestNetlink, RequestThatDoesNotFitIsMarkedFailed) {
  std::vector<uint8_t> big(Request::kCapacity);
  Request r = set_link_up(1, 1, true);
  r.attr(IFLA_IFALIAS, big.data(), big.size());
  EXPECT_FALSE(r.ok());
  size_t before = r.bytes().size();
  r.attr_u32(IFLA_MTU, 1500);  // still failed, nothing appended
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.bytes().size(), before);
  Request name = rename_link(1, 1, std::string(200, 'n'));
  EXPECT_FALSE(name.ok());
}

// ---- acknowledgements ------------------------------------------------------

/// A NLMSG_ERROR for `seq` with `error`, optionally NLM_F_ACK_TLVS with an
/// NLMSGERR_ATTR_MSG, capped (no echoed payload) or echoing `echo` bytes.
Bytes error_message(uint32_t seq, int error, std::string ext_msg = "", bool capped = true,
                    size_t echo = 0) {
  nlmsgerr e{};
  e.error = error;
  e.msg.nlmsg_len = static_cast<uint32_t>(NLMSG_HDRLEN + echo);
  e.msg.nlmsg_type = RTM_NEWADDR;
  e.msg.nlmsg_seq = seq;
  Bytes body(sizeof e);
  std::memcpy(body.data(), &e, sizeof e);
  uint16_t flags = 0;
  if (!capped)
    body.resize(body.size() + echo, 0xAB);
  else
    flags |= NLM_F_CAPPED;
  if (!ext_msg.empty()) {
    flags |= NLM_F_ACK_TLVS;
    body.resize(NLMSG_ALIGN(body.size()));
    nlattr a{};
    a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + ext_msg.size() + 1);
    a.nla_type = NLMSGERR_ATTR_MSG;
    size_t at = body.size();
    body.resize(at + NLA_ALIGN(a.nla_len));
    std::memcpy(body.data() + at, &a, sizeof a);
    std::memcpy(body.data() + at + NLA_HDRLEN, ext_msg.data(), ext_msg.size());
  }
  nlmsghdr h{};
  h.nlmsg_len = static_cast<uint32_t>(NLMSG_HDRLEN + body.size());
  h.nlmsg_type = NLMSG_ERROR;
  h.nlmsg_flags = flags;
  h.nlmsg_seq = seq;
  Bytes out(NLMSG_HDRLEN);
  std::memcpy(out.data(), &h, sizeof h);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

void set_len(Bytes& b, uint32_t len) {
  std::memcpy(b.data() + offsetof(nlmsghdr, nlmsg_len), &len, 4);
}

TEST(GuestNetlink, AckOkAndError) {
  Ack ok = parse_ack(error_message(5, 0), 5);
  EXPECT_EQ(ok.kind, Ack::Kind::kOk);
  EXPECT_EQ(ok.errnum, 0);
  Ack exists = parse_ack(error_message(5, -EEXIST), 5);
  EXPECT_EQ(exists.kind, Ack::Kind::kError);
  EXPECT_EQ(exists.errnum, EEXIST);
  EXPECT_EQ(exists.message, "");
  // Another request's acknowledgement is not this one's.
  EXPECT_EQ(parse_ack(error_message(4, -EEXIST), 5).kind, Ack::Kind::kNone);
  EXPECT_EQ(parse_ack({}, 5).kind, Ack::Kind::kNone);

  // Two messages in one datagram: something else first, then the ack.
  nlmsghdr noop{};
  noop.nlmsg_len = NLMSG_HDRLEN;
  noop.nlmsg_type = NLMSG_NOOP;
  noop.nlmsg_seq = 5;
  Bytes two(NLMSG_HDRLEN);
  std::memcpy(two.data(), &noop, sizeof noop);
  Bytes ack = error_message(5, -ENODEV);
  two.insert(two.end(), ack.begin(), ack.end());
  Ack second = parse_ack(two, 5);
  EXPECT_EQ(second.kind, Ack::Kind::kError);
  EXPECT_EQ(second.errnum, ENODEV);
}

TEST(GuestNetlink, AckWithTheKernelsMessage) {
  Ack capped = parse_ack(error_message(2, -EINVAL, "Invalid prefix length"), 2);
  EXPECT_EQ(capped.kind, Ack::Kind::kError);
  EXPECT_EQ(capped.errnum, EINVAL);
  EXPECT_EQ(capped.message, "Invalid prefix length");
  // Not capped: the request's payload (21 bytes: padded to 24) is echoed before the TLVs.
  Ack echoed = parse_ack(error_message(2, -EINVAL, "Nexthop has invalid gateway", false, 21), 2);
  EXPECT_EQ(echoed.kind, Ack::Kind::kError);
  EXPECT_EQ(echoed.message, "Nexthop has invalid gateway");
}

TEST(GuestNetlink, MalformedAcksAreRejectedNotReadPast) {
  Bytes good = error_message(1, -EEXIST, "Address already assigned");
  // Every prefix: nothing, or a length that no longer fits. Each prefix is
  // its own heap copy, so ASan would see a read past it.
  for (size_t n = 0; n < good.size(); ++n) {
    Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    Ack a = parse_ack(cut, 1);
    EXPECT_TRUE(a.kind == Ack::Kind::kNone || a.kind == Ack::Kind::kMalformed) << n;
  }
  Bytes b = error_message(1, 0);
  set_len(b, NLMSG_HDRLEN - 1);  // shorter than its header
  EXPECT_EQ(parse_ack(b, 1).kind, Ack::Kind::kMalformed);
  b = error_message(1, 0);
  set_len(b, static_cast<uint32_t>(b.size() + 4));  // longer than the datagram
  EXPECT_EQ(parse_ack(b, 1).kind, Ack::Kind::kMalformed);
  b = error_message(1, 0);
  set_len(b, NLMSG_HDRLEN + 8);  // too short for a nlmsgerr
  b.resize(NLMSG_HDRLEN + 8);
  EXPECT_EQ(parse_ack(b, 1).kind, Ack::Kind::kMalformed);
  EXPECT_EQ(parse_ack(error_message(1, 5), 1).kind, Ack::Kind::kMalformed);  // positive
  EXPECT_EQ(parse_ack(error_message(1, -100000), 1).kind, Ack::Kind::kMalformed);

  // An extended-ack attribute longer than what is left.
  b = good;
  size_t attr = NLMSG_HDRLEN + sizeof(nlmsgerr);
  uint16_t too_long = 200;
  std::memcpy(b.data() + attr, &too_long, 2);
  EXPECT_EQ(parse_ack(b, 1).kind, Ack::Kind::kMalformed);
  // A text without its NUL stops at the attribute's end.
  b = error_message(1, -EINVAL, "abc");
  uint16_t exact = NLA_HDRLEN + 3;
  std::memcpy(b.data() + attr, &exact, 2);
  b[attr + NLA_HDRLEN + 3] = 'x';  // where the NUL was: padding now
  EXPECT_EQ(parse_ack(b, 1).message, "abc");
}

// fd00:51::2, raw.
const std::string kV6("\xfd\x00\x00\x51\0\0\0\0\0\0\0\0\0\0\0\x02", 16);

TEST(GuestNetlink, AddAddress6WithoutDad) {
  Request r = add_address6(4, 2, kV6, 64);
  ASSERT_TRUE(r.ok());
  Parsed p = parse(r, sizeof(ifaddrmsg));
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.header.nlmsg_type, RTM_NEWADDR);
  EXPECT_EQ(p.header.nlmsg_flags, kRequestAck | NLM_F_CREATE | NLM_F_EXCL);
  ifaddrmsg ifa;
  std::memcpy(&ifa, p.family.data(), sizeof ifa);
  EXPECT_EQ(ifa.ifa_family, AF_INET6);
  EXPECT_EQ(ifa.ifa_prefixlen, 64);
  EXPECT_EQ(ifa.ifa_index, 2u);
  EXPECT_EQ(p.attrs[IFA_ADDRESS], Bytes(kV6.begin(), kV6.end()));
  EXPECT_EQ(p.attrs[IFA_FLAGS], ne32(IFA_F_NODAD));
  EXPECT_EQ(p.attrs.count(IFA_LOCAL), 0u);
  EXPECT_EQ(p.attrs.count(IFA_BROADCAST), 0u);
}

TEST(GuestNetlink, Routes) {
  // IPv6 default route via a gateway.
  std::string any6(16, '\0'), gw6 = kV6;
  gw6[15] = 1;
  Request r = add_route(5, any6, 0, gw6, 2);
  ASSERT_TRUE(r.ok());
  Parsed p = parse(r, sizeof(rtmsg));
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.header.nlmsg_type, RTM_NEWROUTE);
  rtmsg rt;
  std::memcpy(&rt, p.family.data(), sizeof rt);
  EXPECT_EQ(rt.rtm_family, AF_INET6);
  EXPECT_EQ(rt.rtm_dst_len, 0);
  EXPECT_EQ(rt.rtm_scope, RT_SCOPE_UNIVERSE);
  EXPECT_EQ(rt.rtm_table, RT_TABLE_MAIN);
  EXPECT_EQ(p.attrs.count(RTA_DST), 0u);
  EXPECT_EQ(p.attrs[RTA_GATEWAY], Bytes(gw6.begin(), gw6.end()));
  EXPECT_EQ(p.attrs[RTA_OIF], ne32(2));

  // An IPv4 on-link route (a gateway outside the subnet, as Calico's).
  Bytes host = be32(0xA9FE0101);  // 169.254.1.1
  std::string dst(host.begin(), host.end());
  r = add_route(6, dst, 32, "", 2);
  p = parse(r, sizeof(rtmsg));
  ASSERT_TRUE(p.ok);
  std::memcpy(&rt, p.family.data(), sizeof rt);
  EXPECT_EQ(rt.rtm_family, AF_INET);
  EXPECT_EQ(rt.rtm_dst_len, 32);
  EXPECT_EQ(rt.rtm_scope, RT_SCOPE_LINK);
  EXPECT_EQ(p.attrs[RTA_DST], host);
  EXPECT_EQ(p.attrs.count(RTA_GATEWAY), 0u);
}

TEST(GuestNetlink, Formatting) {
  EXPECT_EQ(format_address(kV6), "fd00:51::2");
  EXPECT_EQ(format_address(std::string("\x0a\x00\x00\x02", 4)), "10.0.0.2");
  EXPECT_EQ(format_address("abc"), "?");
  EXPECT_EQ(format_mac(std::string("\x02\x00\x0a\xff\x10\x9b", 6)), "02:00:0a:ff:10:9b");
  EXPECT_EQ(format_ipv4(0x0A000002), "10.0.0.2");
  EXPECT_EQ(format_ipv4(0xFFFFFFFF), "255.255.255.255");
  EXPECT_EQ(format_ipv4(0), "0.0.0.0");
  EXPECT_EQ(prefix_mask(24), 0xFFFFFF00u);
  EXPECT_EQ(prefix_mask(1), 0x80000000u);
  EXPECT_EQ(prefix_mask(32), 0xFFFFFFFFu);
  EXPECT_EQ(prefix_mask(0), 0u);
}

}  // namespace
}  // namespace vessel::guest::netlink
