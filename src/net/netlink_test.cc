// Privileged tier: every test moves this process into a network namespace of
// its own before touching a link, and skips when it cannot (not root, or no
// CLONE_NEWNET). Nothing here ever acts on the host's namespace.
#include "net/netlink.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/unique_fd.h"

#include "net/netns_fixture.h"

namespace vessel::net {
namespace {

using NetlinkTest = PrivateNetnsTest;

std::optional<LinkInfo> listed(const std::string& name) {
  auto links = list_links();
  EXPECT_TRUE(links.ok()) << links.error().to_string();
  if (!links.ok()) return std::nullopt;
  for (const LinkInfo& link : *links)
    if (link.name == name) return link;
  return std::nullopt;
}

TEST_F(NetlinkTest, LoopbackIsListed) {
  auto lo = listed("lo");
  ASSERT_TRUE(lo);
  EXPECT_EQ(lo->index, 1);
  EXPECT_TRUE(lo->up);
  EXPECT_EQ(lo->kind, "");
  EXPECT_EQ(lo->master, 0);
  EXPECT_EQ(lo->mtu, 65536u);
}

TEST_F(NetlinkTest, CreateFindAndDeleteBridge) {
  ASSERT_TRUE(create_bridge("vtest0").ok());
  auto bridge = listed("vtest0");
  ASSERT_TRUE(bridge);
  EXPECT_EQ(bridge->kind, "bridge");
  EXPECT_FALSE(bridge->up);
  EXPECT_GT(bridge->index, 1);

  auto found = find_link("vtest0");
  ASSERT_TRUE(found.ok()) << found.error().to_string();
  EXPECT_EQ(found->index, bridge->index);
  EXPECT_EQ(found->kind, "bridge");

  auto again = create_bridge("vtest0");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(again.error().errnum(), EEXIST);
  EXPECT_EQ(again.error().to_string(), "create bridge 'vtest0' (File exists)");

  auto deleted = delete_link("vtest0");
  ASSERT_TRUE(deleted.ok()) << deleted.error().to_string();
  EXPECT_FALSE(listed("vtest0"));
  auto gone = find_link("vtest0");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
}

TEST_F(NetlinkTest, AddressUpAndMtu) {
  ASSERT_TRUE(create_bridge("vtest0").ok());
  const Ipv4 gateway{0x0a4d0001};  // 10.77.0.1
  auto added = add_address("vtest0", gateway, 24);
  ASSERT_TRUE(added.ok()) << added.error().to_string();
  // The same address again is success (NLM_F_REPLACE), not EEXIST.
  auto again = add_address("vtest0", gateway, 24);
  ASSERT_TRUE(again.ok()) << again.error().to_string();

  auto addresses = list_addresses();
  ASSERT_TRUE(addresses.ok()) << addresses.error().to_string();
  const auto want = std::make_pair(std::string("vtest0"), Ipv4Net{gateway, 24});
  EXPECT_EQ(std::count(addresses->begin(), addresses->end(), want), 1);
  const auto loopback = std::make_pair(std::string("lo"), Ipv4Net{Ipv4{0x7f000001}, 8});
  EXPECT_EQ(std::count(addresses->begin(), addresses->end(), loopback), 1);

  ASSERT_TRUE(set_link_up("vtest0", true).ok());
  EXPECT_TRUE(find_link("vtest0")->up);
  ASSERT_TRUE(set_link_up("vtest0", false).ok());
  EXPECT_FALSE(find_link("vtest0")->up);

  auto mtu = set_mtu("vtest0", 1400);
  ASSERT_TRUE(mtu.ok()) << mtu.error().to_string();
  EXPECT_EQ(find_link("vtest0")->mtu, 1400u);
  auto too_small = set_mtu("vtest0", 10);
  ASSERT_FALSE(too_small.ok());
  EXPECT_EQ(too_small.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(too_small.error().message().find("set mtu of 'vtest0' to 10"), std::string::npos)
      << too_small.error().to_string();
}

TEST_F(NetlinkTest, ErrorsNameTheLink) {
  auto check = [](const Status& status, const std::string& text) {
    ASSERT_FALSE(status.ok()) << text;
    EXPECT_EQ(status.error().code(), ErrorCode::kNotFound) << status.error().to_string();
    EXPECT_NE(status.error().to_string().find(text), std::string::npos)
        << status.error().to_string();
  };
  check(delete_link("nosuch0"), "delete link 'nosuch0'");
  check(set_link_up("nosuch0", true), "set link 'nosuch0' up");
  check(set_mtu("nosuch0", 1500), "set mtu of 'nosuch0'");
  check(add_address("nosuch0", Ipv4{0x0a4d0001}, 24),
        "add address 10.77.0.1/24 to 'nosuch0': find link 'nosuch0'");
  check(set_master("lo", "nosuch0"), "attach 'lo' to bridge 'nosuch0': find link 'nosuch0'");
  ASSERT_TRUE(create_bridge("vtest0").ok());
  check(set_master("nosuch0", "vtest0"), "attach 'nosuch0' to bridge 'vtest0'");
  auto found = find_link("nosuch0");
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(found.error().to_string(), "find link 'nosuch0' (No such device)");

  for (const std::string& bad : {std::string(), std::string(16, 'a')}) {
    auto created = create_bridge(bad);
    ASSERT_FALSE(created.ok());
    EXPECT_EQ(created.error().code(), ErrorCode::kInvalidArgument);
  }
  auto prefix = add_address("vtest0", Ipv4{0x0a4d0001}, 33);
  ASSERT_FALSE(prefix.ok());
  EXPECT_EQ(prefix.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(NetlinkTest, IpForwardingOfThisNamespace) {
  ASSERT_TRUE(enable_ip_forwarding().ok());
  char value = 0;
  UniqueFd fd(::open("/proc/sys/net/ipv4/ip_forward", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  ASSERT_EQ(::read(fd.get(), &value, 1), 1);
  EXPECT_EQ(value, '1');
}

// A raw RTM_GETLINK dump of this namespace, without the code under test.
std::vector<std::vector<uint8_t>> raw_link_dump() {
  std::vector<std::vector<uint8_t>> out;
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return out;
  struct {
    nlmsghdr header;
    ifinfomsg ifi;
  } request{};
  request.header.nlmsg_len = sizeof request;
  request.header.nlmsg_type = RTM_GETLINK;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.header.nlmsg_seq = 1;
  if (::send(fd.get(), &request, sizeof request, 0) < 0) return out;
  std::vector<uint32_t> buffer(8192);
  for (;;) {
    const ssize_t n = ::recv(fd.get(), buffer.data(), buffer.size() * 4, 0);
    if (n <= 0) return out;
    const auto* bytes = reinterpret_cast<const uint8_t*>(buffer.data());
    for (size_t offset = 0; offset + sizeof(nlmsghdr) <= static_cast<size_t>(n);) {
      nlmsghdr header;
      std::memcpy(&header, bytes + offset, sizeof header);
      if (header.nlmsg_len < sizeof header || header.nlmsg_len > n - offset) return out;
      if (header.nlmsg_type == NLMSG_DONE || header.nlmsg_type == NLMSG_ERROR) return out;
      out.emplace_back(bytes + offset, bytes + offset + header.nlmsg_len);
      offset += NLMSG_ALIGN(header.nlmsg_len);
    }
  }
}

TEST_F(NetlinkTest, ParseLinkOfRealMessagesAndTheirTruncations) {
  ASSERT_TRUE(create_bridge("vtest0").ok());
  auto messages = raw_link_dump();
  // lo, vtest0 and whatever fallback tunnels (sit0, tunl0...) the kernel
  // puts in every new namespace.
  ASSERT_GE(messages.size(), 2u);
  int seen = 0;
  for (const auto& message : messages) {
    auto link = parse_link(message);
    ASSERT_TRUE(link);
    if (link->name == "lo" || (link->name == "vtest0" && link->kind == "bridge")) ++seen;

    // Fewer bytes than nlmsg_len claims: refused, whatever the cut.
    for (size_t size = 0; size < message.size(); ++size) {
      std::vector<uint8_t> cut(message.begin(), message.begin() + size);
      EXPECT_FALSE(parse_link(cut)) << "size " << size;
    }
    // nlmsg_len itself cut short (inside the header, inside an attribute):
    // never a crash; when it parses, the name is whole.
    for (uint32_t length = 0; length < message.size(); ++length) {
      std::vector<uint8_t> cut(message.begin(), message.begin() + length);
      cut.resize(std::max<size_t>(cut.size(), sizeof(nlmsghdr)));
      std::memcpy(cut.data(), &length, sizeof length);
      auto parsed = parse_link(cut);
      if (parsed) {
        EXPECT_EQ(parsed->name, link->name);
      }
    }
    // Not RTM_NEWLINK: refused.
    std::vector<uint8_t> other = message;
    const uint16_t type = RTM_NEWADDR;
    std::memcpy(other.data() + offsetof(nlmsghdr, nlmsg_type), &type, sizeof type);
    EXPECT_FALSE(parse_link(other));
  }
  EXPECT_EQ(seen, 2);
}

}  // namespace
}  // namespace vessel::net
