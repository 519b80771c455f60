// User networks (issue 8): two networks cannot reach each other, a
// container on both reaches both, a user network has a way out (masquerade)
// and an --internal one has none.
#include <gtest/gtest.h>

#include "base/strings.h"
#include "net/network_fixture.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

using NetworkingIsolationTest = NetworkTest;

std::string subnet_of(const json& network) {
  try {
    return network.at("IPAM").at("Config").at(0).at("Subnet").get<std::string>();
  } catch (const json::exception&) {
    return "";
  }
}

TEST_F(NetworkingIsolationTest, UserNetworksCannotReachEachOtherAndAContainerOnBothReachesBoth) {
  ASSERT_NO_FATAL_FAILURE(make_peer());
  for (const char* name : {"neta", "netb"})
    ASSERT_EQ(vessel({"network", "create", name}).exit_code, 0);
  std::string subnet_a = subnet_of(network_inspect("neta"));
  std::string subnet_b = subnet_of(network_inspect("netb"));
  std::string bridge_a = bridge_of("neta"), bridge_b = bridge_of("netb");

  std::string a =
      run_detached({"--name", "a", "--network", "neta", kImage, "sh", "-c", http_server("a")});
  std::string b =
      run_detached({"--name", "b", "--network", "netb", kImage, "sh", "-c", http_server("b")});
  std::string both = run_detached(
      {"--name", "both", "--network", "neta", "--network", "netb", kImage, "sh", "-c", kIdle});
  ASSERT_FALSE(a.empty() || b.empty() || both.empty());

  std::string a_ip = ip_of("a", "neta"), b_ip = ip_of("b", "netb");
  EXPECT_TRUE(in_subnet(a_ip, subnet_a)) << a_ip << " not in " << subnet_a;
  EXPECT_TRUE(in_subnet(b_ip, subnet_b)) << b_ip << " not in " << subnet_b;
  EXPECT_TRUE(in_subnet(ip_of("both", "neta"), subnet_a));
  EXPECT_TRUE(in_subnet(ip_of("both", "netb"), subnet_b));
  json networks = inspect("both")["NetworkSettings"]["Networks"];
  EXPECT_EQ(networks.size(), 2u) << networks.dump();
  EXPECT_FALSE(networks.contains("default")) << networks.dump();
  // One NIC per network, each a tap on its network's bridge.
  CliResult on_a = host({"ip", "-o", "link", "show", "master", bridge_a});
  CliResult on_b = host({"ip", "-o", "link", "show", "master", bridge_b});
  EXPECT_TRUE(contains(on_a.out, tap_name(a)) && !contains(on_a.out, tap_name(b))) << on_a.out;
  EXPECT_TRUE(contains(on_b.out, tap_name(b)) && !contains(on_b.out, tap_name(a))) << on_b.out;
  EXPECT_NE(contains(on_a.out, tap_name(both, 0)), contains(on_a.out, tap_name(both, 1)))
      << on_a.out;
  EXPECT_NE(contains(on_b.out, tap_name(both, 0)), contains(on_b.out, tap_name(both, 1)))
      << on_b.out;
  CliResult nics = sh("both", "ip -o link");
  EXPECT_TRUE(contains(nics.out, "eth0") && contains(nics.out, "eth1")) << nics.out;

  // The host reaches both; the container on both networks too.
  EXPECT_EQ(http_get_eventually(a_ip, 80, 120s), "a\n");
  EXPECT_EQ(http_get_eventually(b_ip, 80, 120s), "b\n");
  EXPECT_EQ(fetch("both", "http://" + a_ip + "/").out, "a\n");
  EXPECT_EQ(fetch("both", "http://" + b_ip + "/").out, "b\n");
  // Names resolve within a network.
  EXPECT_EQ(fetch("both", "http://a/").out, "a\n");

  // Across networks nothing passes, either way.
  CliResult ab = fetch_once("a", "http://" + b_ip + "/");
  EXPECT_NE(ab.exit_code, 0) << "neta reached netb: " << ab.out;
  CliResult ba = fetch_once("b", "http://" + a_ip + "/");
  EXPECT_NE(ba.exit_code, 0) << "netb reached neta: " << ba.out;

  // A user network has a way out, masqueraded.
  UniqueFd server = listen_tcp(kPeerAddress, 9000, peer_netns());
  ASSERT_TRUE(server.valid());
  auto [out, got] = send_to_peer("a", server.get(), 9000, "from-a", 60s);
  EXPECT_EQ(out.exit_code, 0) << out.err;
  ASSERT_TRUE(got.has_value()) << "a container on a user network did not get out";
  EXPECT_EQ(got->data, "from-a\n");
  EXPECT_EQ(got->peer_ip, kOurAddress);
}

TEST_F(NetworkingIsolationTest, AnInternalNetworkHasNoWayOutButItsContainersReachEachOther) {
  ASSERT_NO_FATAL_FAILURE(make_peer());
  ASSERT_EQ(vessel({"network", "create", "--internal", "inner"}).exit_code, 0);
  UniqueFd server = listen_tcp(kPeerAddress, 9000, peer_netns());
  ASSERT_TRUE(server.valid());

  std::string i =
      run_detached({"--name", "i", "--network", "inner", kImage, "sh", "-c", http_server("i")});
  std::string j = run_detached({"--name", "j", "--network", "inner", kImage, "sh", "-c", kIdle});
  ASSERT_FALSE(i.empty() || j.empty());
  EXPECT_EQ(fetch("j", "http://i/").out, "i\n") << "containers of an internal network";

  auto [out, got] = send_to_peer("j", server.get(), 9000, "from-inner", 10s);
  EXPECT_NE(out.exit_code, 0) << "an internal network reached outside";
  EXPECT_FALSE(got.has_value()) << "the server outside saw a connection from " << got->peer_ip;
}

}  // namespace
}  // namespace vessel::test
