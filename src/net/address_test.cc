#include "net/address.h"

#include <gtest/gtest.h>

#include <set>

namespace vessel::net {
namespace {

TEST(Ipv4, ParsesAndFormats) {
  auto a = Ipv4::parse("10.1.2.3");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  EXPECT_EQ(a->value, 0x0a010203u);
  EXPECT_EQ(a->to_string(), "10.1.2.3");
  EXPECT_EQ(Ipv4::parse("0.0.0.0")->value, 0u);
  EXPECT_EQ(Ipv4::parse("255.255.255.255")->value, 0xffffffffu);
  EXPECT_EQ(Ipv4{0xc0a80001}.to_string(), "192.168.0.1");
}

TEST(Ipv4, RefusesMalformed) {
  for (const char* bad :
       {"", "1.2.3", "1.2.3.4.5", "1.2.3.256", "01.2.3.4", "1.2.3.-1", "1..3.4", "1.2.3.4 ",
        " 1.2.3.4", "a.b.c.d", "1.2.3.4/24", "::1", "1.2.3.", ".1.2.3", "1000.2.3.4"}) {
    auto r = Ipv4::parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find("'" + std::string(bad) + "'"), std::string::npos)
        << r.error().message();
  }
}

TEST(Ipv4, Orders) {
  EXPECT_LT(*Ipv4::parse("10.0.0.9"), *Ipv4::parse("10.0.0.10"));
}

TEST(Ipv4Net, ParsesSubnet) {
  auto n = Ipv4Net::parse("10.88.0.0/16");
  ASSERT_TRUE(n.ok()) << n.error().to_string();
  EXPECT_EQ(n->prefix, 16);
  EXPECT_EQ(n->to_string(), "10.88.0.0/16");
  EXPECT_EQ(n->network().to_string(), "10.88.0.0");
  EXPECT_EQ(n->broadcast().to_string(), "10.88.255.255");
  EXPECT_EQ(n->netmask(), 0xffff0000u);
  EXPECT_EQ(n->size(), 65536u);
  EXPECT_EQ(n->host(1).to_string(), "10.88.0.1");
  EXPECT_EQ(n->host(258).to_string(), "10.88.1.2");
}

TEST(Ipv4Net, StrictRefusesHostBitsNamingTheSubnet) {
  auto r = Ipv4Net::parse("10.1.2.3/24");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("10.1.2.0/24"), std::string::npos) << r.error().message();

  auto loose = Ipv4Net::parse("10.1.2.3/24", /*strict=*/false);
  ASSERT_TRUE(loose.ok());
  EXPECT_EQ(loose->address.to_string(), "10.1.2.3");
  EXPECT_EQ(loose->network().to_string(), "10.1.2.0");
  EXPECT_EQ(loose->to_string(), "10.1.2.0/24");
}

TEST(Ipv4Net, EdgePrefixes) {
  auto all = Ipv4Net::parse("0.0.0.0/0");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->netmask(), 0u);
  EXPECT_EQ(all->size(), 0xffffffffu);
  EXPECT_TRUE(all->contains(*Ipv4::parse("203.0.113.7")));
  EXPECT_EQ(all->broadcast().to_string(), "255.255.255.255");

  auto one = Ipv4Net::parse("192.0.2.7/32");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
  EXPECT_TRUE(one->contains(*Ipv4::parse("192.0.2.7")));
  EXPECT_FALSE(one->contains(*Ipv4::parse("192.0.2.8")));
}

TEST(Ipv4Net, RefusesMalformed) {
  for (const char* bad : {"10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/08",
                          "10.0.0/8", "10.0.0.0/8/8", "10.0.0.0/ 8", "/8", "10.0.0.0/100"}) {
    auto r = Ipv4Net::parse(bad, /*strict=*/false);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find(bad), std::string::npos) << r.error().message();
  }
}

TEST(Ipv4Net, ContainsAndOverlaps) {
  auto a = *Ipv4Net::parse("10.1.0.0/16");
  auto b = *Ipv4Net::parse("10.1.5.0/24");
  auto c = *Ipv4Net::parse("10.2.0.0/16");
  auto d = *Ipv4Net::parse("10.0.0.0/8");
  EXPECT_TRUE(a.contains(*Ipv4::parse("10.1.255.254")));
  EXPECT_FALSE(a.contains(*Ipv4::parse("10.2.0.1")));
  EXPECT_TRUE(a.overlaps(b));
  EXPECT_TRUE(b.overlaps(a));
  EXPECT_FALSE(a.overlaps(c));
  EXPECT_TRUE(d.overlaps(c));
  EXPECT_TRUE(c.overlaps(d));
  EXPECT_TRUE(a.overlaps(a));
  EXPECT_FALSE(Ipv4Net::parse("10.1.0.0/24")->overlaps(*Ipv4Net::parse("10.1.1.0/24")));
}

TEST(Mac, ParsesBothSeparatorsAnyCase) {
  auto a = Mac::parse("02:42:AC:11:00:02");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  EXPECT_EQ(a->to_string(), "02:42:ac:11:00:02");
  auto b = Mac::parse("02-42-ac-11-00-02");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(Mac, RefusesMalformedMulticastAndZero) {
  for (const char* bad :
       {"", "02:42:ac:11:00", "02:42:ac:11:00:02:03", "02:42-ac:11:00:02", "02:42:ac:11:00:0g",
        "0242ac110002", "02:42:ac:11:00:2", "02.42.ac.11.00.02", "01:00:5e:00:00:01",
        "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00"}) {
    auto r = Mac::parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find("'" + std::string(bad) + "'"), std::string::npos);
  }
  EXPECT_NE(Mac::parse("01:00:5e:00:00:01").error().message().find("multicast"), std::string::npos);
}

TEST(DeriveMac, StableLocalUnicastAndSpread) {
  Mac a = derive_mac("c0ffee/default");
  EXPECT_EQ(a, derive_mac("c0ffee/default"));
  EXPECT_NE(a, derive_mac("c0ffee/backend"));
  std::set<Mac> seen;
  for (int i = 0; i < 1000; ++i) {
    Mac m = derive_mac("container-" + std::to_string(i));
    EXPECT_EQ(m.bytes[0] & 0x01, 0) << m.to_string();  // unicast
    EXPECT_EQ(m.bytes[0] & 0x02, 2) << m.to_string();  // locally administered
    EXPECT_TRUE(Mac::parse(m.to_string()).ok()) << m.to_string();
    seen.insert(m);
  }
  EXPECT_EQ(seen.size(), 1000u);
  // Pinned: SHA-256("") starts e3 b0 c4 42 98 fc; e3 -> e2 (multicast bit cleared, local set).
  EXPECT_EQ(derive_mac("").to_string(), "e2:b0:c4:42:98:fc");
}

}  // namespace
}  // namespace vessel::net
