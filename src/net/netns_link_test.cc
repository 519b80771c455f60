// The parsers of iproute2's JSON behind join_netns's IPv6 addresses and
// routes: text in, addresses out, no namespace needed.
#include "net/netns_link.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace vessel::net {
namespace {

std::string raw(const char* text, int family) {
  unsigned char b[16];
  EXPECT_EQ(::inet_pton(family == 6 ? AF_INET6 : AF_INET, text, b), 1) << text;
  return std::string(reinterpret_cast<char*>(b), family == 6 ? 16 : 4);
}

TEST(NetnsLink, ParsesGlobalIpv6Addresses) {
  // `ip -j -6 addr show dev eth0 scope global` (iproute2 6.1), abridged.
  auto a = parse_ip_addresses6(R"([{"ifindex":2,"ifname":"eth0","addr_info":[
      {"family":"inet6","local":"fd00:51::2","prefixlen":64,"scope":"global","nodad":true},
      {"family":"inet6","local":"2001:db8::5","prefixlen":128,"scope":"global"},
      {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"},
      {"family":"inet6","local":"fd00:99::9","prefixlen":64,"scope":"global","dadfailed":true}]}])");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].address, raw("fd00:51::2", 6));
  EXPECT_EQ((*a)[0].prefix_len, 64);
  EXPECT_EQ((*a)[1].address, raw("2001:db8::5", 6));
  EXPECT_EQ((*a)[1].prefix_len, 128);
  EXPECT_TRUE(parse_ip_addresses6("[]")->empty());
  EXPECT_FALSE(parse_ip_addresses6("not json").ok());
  EXPECT_FALSE(parse_ip_addresses6(R"([{"addr_info":[{"family":"inet6","local":"zz",
      "prefixlen":64,"scope":"global"}]}])")
                   .ok());
}

TEST(NetnsLink, ParsesRoutesOnLinkFirst) {
  // `ip -j -4 route show dev eth0` in a Calico-like pod plus a CNI route.
  auto v4 = parse_ip_routes(R"([{"dst":"default","gateway":"169.254.1.1","flags":["onlink"]},
      {"dst":"203.0.113.0/24","gateway":"198.51.100.1","flags":[]},
      {"dst":"198.51.100.0/24","protocol":"kernel","scope":"link","prefsrc":"198.51.100.2"},
      {"dst":"169.254.1.1","scope":"link","flags":[]},
      {"type":"broadcast","dst":"198.51.100.255","table":"local","protocol":"kernel"}])",
                            4);
  ASSERT_TRUE(v4.ok()) << v4.error().to_string();
  ASSERT_EQ(v4->size(), 2u);
  EXPECT_EQ((*v4)[0].destination, raw("169.254.1.1", 4));  // on-link first
  EXPECT_EQ((*v4)[0].prefix_len, 32);
  EXPECT_TRUE((*v4)[0].gateway.empty());
  EXPECT_EQ((*v4)[1].destination, raw("203.0.113.0", 4));
  EXPECT_EQ((*v4)[1].prefix_len, 24);
  EXPECT_EQ((*v4)[1].gateway, raw("198.51.100.1", 4));

  auto v6 = parse_ip_routes(R"([{"dst":"fd00:51::/64","protocol":"kernel","metric":256},
      {"dst":"fe80::/64","protocol":"kernel","metric":256},
      {"dst":"ff00::/8","table":"local","metric":256,"type":"multicast"},
      {"dst":"ff00::/8","metric":256},
      {"dst":"default","gateway":"fd00:51::1","metric":1024,"pref":"medium"}])",
                            6);
  ASSERT_TRUE(v6.ok()) << v6.error().to_string();
  ASSERT_EQ(v6->size(), 1u);
  EXPECT_EQ((*v6)[0].destination, std::string(16, '\0'));
  EXPECT_EQ((*v6)[0].prefix_len, 0);
  EXPECT_EQ((*v6)[0].gateway, raw("fd00:51::1", 6));

  EXPECT_FALSE(parse_ip_routes(R"([{"dst":"10.0.0.0/33"}])", 4).ok());
  EXPECT_FALSE(parse_ip_routes(R"([{"dst":"10.0.0.0/8","gateway":"fd00::1"}])", 4).ok());
  EXPECT_FALSE(parse_ip_routes(R"({"dst":"default"})", 4).ok());
}

}  // namespace
}  // namespace vessel::net
