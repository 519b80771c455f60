#include "net/port_spec.h"

#include <gtest/gtest.h>

namespace vessel::net {
namespace {

PortMapping M(std::string ip, uint16_t host, uint16_t ctr, Proto p = Proto::kTcp) {
  return PortMapping{std::move(ip), host, ctr, p};
}

std::vector<PortMapping> ok(std::string_view spec) {
  auto r = parse_publish(spec);
  EXPECT_TRUE(r.ok()) << spec << ": " << r.error().to_string();
  return r.ok() ? *r : std::vector<PortMapping>{};
}

// The error for `spec`, checked to be kInvalidArgument naming the spec.
std::string error_of(std::string_view spec) {
  auto r = parse_publish(spec);
  EXPECT_FALSE(r.ok()) << spec;
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << spec;
  EXPECT_NE(r.error().message().find("'" + std::string(spec) + "'"), std::string::npos)
      << r.error().message();
  return r.error().message();
}

TEST(ParsePublish, ContainerPortOnlyLeavesHostPortFree) {
  EXPECT_EQ(ok("80"), std::vector{M("", 0, 80)});
  EXPECT_EQ(ok("53/udp"), std::vector{M("", 0, 53, Proto::kUdp)});
  EXPECT_EQ(ok(":80"), std::vector{M("", 0, 80)});  // Docker reads an empty host port as free
}

TEST(ParsePublish, HostAndContainerPort) {
  EXPECT_EQ(ok("8080:80"), std::vector{M("", 8080, 80)});
  EXPECT_EQ(ok("8080:80/udp"), std::vector{M("", 8080, 80, Proto::kUdp)});
  EXPECT_EQ(ok("8080:80/tcp"), std::vector{M("", 8080, 80)});
  EXPECT_EQ(ok("8080:80/UDP"), std::vector{M("", 8080, 80, Proto::kUdp)});
  EXPECT_EQ(ok("8080:80/"), std::vector{M("", 8080, 80)});  // Docker: empty protocol is tcp
  EXPECT_EQ(ok("65535:1"), std::vector{M("", 65535, 1)});
}

TEST(ParsePublish, HostAddress) {
  EXPECT_EQ(ok("127.0.0.1:8080:80"), std::vector{M("127.0.0.1", 8080, 80)});
  EXPECT_EQ(ok("127.0.0.1::80"), std::vector{M("127.0.0.1", 0, 80)});
  EXPECT_EQ(ok("0.0.0.0:53:53/udp"), std::vector{M("0.0.0.0", 53, 53, Proto::kUdp)});
}

TEST(ParsePublish, Ranges) {
  EXPECT_EQ(ok("8000-8002:9000-9002"),
            (std::vector{M("", 8000, 9000), M("", 8001, 9001), M("", 8002, 9002)}));
  EXPECT_EQ(ok("7000-7001/udp"),
            (std::vector{M("", 0, 7000, Proto::kUdp), M("", 0, 7001, Proto::kUdp)}));
  EXPECT_EQ(ok("127.0.0.1::7000-7001"),
            (std::vector{M("127.0.0.1", 0, 7000), M("127.0.0.1", 0, 7001)}));
  EXPECT_EQ(ok("10.0.0.1:80-80:90-90"), std::vector{M("10.0.0.1", 80, 90)});
  EXPECT_EQ(ok("1-65535").size(), 65535u);
}

TEST(ParsePublish, Errors) {
  EXPECT_NE(error_of("").find("expected"), std::string::npos);
  EXPECT_NE(error_of("0").find("out of range"), std::string::npos);
  EXPECT_NE(error_of("0:80").find("out of range"), std::string::npos);
  EXPECT_NE(error_of("65536:80").find("out of range"), std::string::npos);
  EXPECT_NE(error_of("8080:70000").find("out of range"), std::string::npos);
  EXPECT_NE(error_of("8080:80/sctp").find("unknown protocol 'sctp'"), std::string::npos);
  EXPECT_NE(error_of("8080:80/tcp/udp").find("unknown protocol"), std::string::npos);
  EXPECT_NE(error_of("9000-8000:80-81").find("reversed"), std::string::npos);
  EXPECT_NE(error_of("8000-8001:80").find("differ in length"), std::string::npos);
  EXPECT_NE(error_of("8000-8002:80-81").find("differ in length"), std::string::npos);
  EXPECT_NE(error_of("8080:").find("no container port"), std::string::npos);
  EXPECT_NE(error_of("8080:/udp").find("no container port"), std::string::npos);
  EXPECT_NE(error_of("http").find("not a port"), std::string::npos);
  EXPECT_NE(error_of("8080:80a").find("not a port"), std::string::npos);
  EXPECT_NE(error_of("-80").find("not a port"), std::string::npos);
  EXPECT_NE(error_of("80-").find("not a port"), std::string::npos);
  EXPECT_NE(error_of("1.2.3.4:80").find("host"), std::string::npos);
  EXPECT_NE(error_of("300.0.0.1:80:80").find("not an IPv4 address"), std::string::npos);
  EXPECT_NE(error_of("localhost:80:80").find("not an IPv4 address"), std::string::npos);
  EXPECT_NE(error_of("[::1]:80:80").find("IPv6"), std::string::npos);
  EXPECT_NE(error_of("::1:80:80").find("IPv6"), std::string::npos);
  EXPECT_NE(error_of(" 80").find("whitespace"), std::string::npos);
  EXPECT_NE(error_of("99999999999999999999:80").find("not a port"), std::string::npos);
}

TEST(PortMapping, ToStringAsDockerPs) {
  EXPECT_EQ(to_string(M("", 8080, 80)), "0.0.0.0:8080->80/tcp");
  EXPECT_EQ(to_string(M("127.0.0.1", 5353, 53, Proto::kUdp)), "127.0.0.1:5353->53/udp");
  EXPECT_STREQ(proto_name(Proto::kTcp), "tcp");
  EXPECT_STREQ(proto_name(Proto::kUdp), "udp");
}

TEST(PortKey, RoundTrips) {
  EXPECT_EQ(port_key(80, Proto::kTcp), "80/tcp");
  EXPECT_EQ(port_key(53, Proto::kUdp), "53/udp");
  auto a = parse_port_key("80");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (std::pair<uint16_t, Proto>{80, Proto::kTcp}));
  EXPECT_EQ(*parse_port_key("80/tcp"), (std::pair<uint16_t, Proto>{80, Proto::kTcp}));
  EXPECT_EQ(*parse_port_key("53/udp"), (std::pair<uint16_t, Proto>{53, Proto::kUdp}));
  for (const char* bad : {"", "0/tcp", "80/sctp", "65536", "80-81/tcp", "x/tcp", "/tcp"}) {
    auto r = parse_port_key(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find("'" + std::string(bad) + "'"), std::string::npos);
  }
}

}  // namespace
}  // namespace vessel::net
