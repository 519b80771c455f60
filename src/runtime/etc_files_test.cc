#include "runtime/etc_files.h"

#include <gtest/gtest.h>

namespace vessel::runtime {
namespace {

TEST(ContainerFiles, HostsAndResolvConf) {
  auto hosts = container_hosts("web", {net::Ipv4{0x0adc0002}}, {"db:10.1.2.3"});
  EXPECT_NE(hosts.find("127.0.0.1\tlocalhost\n"), std::string::npos);
  EXPECT_NE(hosts.find("10.220.0.2\tweb\n"), std::string::npos);
  EXPECT_NE(hosts.find("10.1.2.3\tdb\n"), std::string::npos);
  EXPECT_NE(container_hosts("web", {}, {}).find("127.0.1.1\tweb"), std::string::npos);

  net::Ipv4 gateway{0x0adc0001};
  auto resolv = container_resolv_conf(gateway, {}, {"example.com"}, {"ndots:2"});
  EXPECT_NE(resolv.find("nameserver 10.220.0.1\n"), std::string::npos);
  EXPECT_NE(resolv.find("search example.com\n"), std::string::npos);
  EXPECT_NE(resolv.find("options ndots:2\n"), std::string::npos);
  auto custom = container_resolv_conf(gateway, {"192.0.2.53"}, {"."}, {});
  EXPECT_NE(custom.find("nameserver 192.0.2.53\n"), std::string::npos);
  EXPECT_EQ(custom.find("10.220.0.1"), std::string::npos);
  EXPECT_EQ(custom.find("search"), std::string::npos);

  EXPECT_TRUE(validate_extra_host("db:10.1.2.3").ok());
  EXPECT_TRUE(validate_extra_host("gw:host-gateway").ok());
  EXPECT_FALSE(validate_extra_host("db").ok());
  EXPECT_FALSE(validate_extra_host("db:nope").ok());
}

TEST(ContainerFiles, ResolvConfIsNeverEmpty) {
  // Without a network, and whatever the host has: an empty file would leave
  // the image's own (or none).
  EXPECT_FALSE(container_resolv_conf(std::nullopt, {}, {}, {}).empty());
}

}  // namespace
}  // namespace vessel::runtime
