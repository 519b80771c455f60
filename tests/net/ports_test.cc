// Published ports and egress (issue 8): -p in its forms reaches the server
// from the host on 127.0.0.1 and on the host's own address (the veth to the
// peer namespace), and from outside (the peer); UDP too; a port in use is a
// clear error that leaves nothing; a container's connection out arrives
// from the host's address (masquerade).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/strings.h"
#include "net/network_fixture.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

using NetworkingPublishTest = NetworkTest;
using NetworkingEgressTest = NetworkTest;

// The static UDP echo server built with the tests (the image's nc has no UDP).
const std::string kUdpEcho = VESSEL_TEST_UDP_ECHO;

// Whether Ports[key] of inspect lists HostIp:HostPort.
bool publishes(const json& ports, const std::string& key, const std::string& host_ip,
               const std::string& host_port) {
  if (!ports.is_object() || !ports.contains(key) || !ports[key].is_array()) return false;
  for (const auto& b : ports[key])
    if (b.is_object() && b.value("HostIp", "") == host_ip && b.value("HostPort", "") == host_port)
      return true;
  return false;
}

// The host ports `vessel port` shows for CTR ("80/tcp -> 0.0.0.0:8080").
std::vector<int> host_ports(const std::string& port_output, const std::string& ctr,
                            const std::string& host_ip) {
  std::vector<int> out;
  std::string prefix = ctr + " -> " + host_ip + ":";
  for (const auto& line : lines(port_output))
    if (starts_with(line, prefix))
      if (auto p = parse_u64(trim(std::string_view(line).substr(prefix.size()))))
        out.push_back(static_cast<int>(*p));
  return out;
}

TEST_F(NetworkingPublishTest, PublishedPortsAreReachableOnLoopbackTheHostsAddressAndFromOutside) {
  ASSERT_NO_FATAL_FAILURE(make_peer());
  ASSERT_EQ(::access(kUdpEcho.c_str(), X_OK), 0) << "no UDP echo server at " << kUdpEcho;
  // httpd without -f binds, then goes to the background.
  std::string id =
      run_detached({"--name", "pub", "-p", "127.0.0.1:8081:80", "-p", "8080:80", "-p", "80", "-p",
                    "9000-9001:9000-9001", "-p", "8053:53/udp", "-v", kUdpEcho + ":/udp-echo:ro",
                    kImage, "sh", "-c",
                    "mkdir -p /www && echo pub > /www/index.html && httpd -p 80 -h /www && "
                    "httpd -p 9000 -h /www && httpd -p 9001 -h /www && exec /udp-echo 53"});
  ASSERT_FALSE(id.empty());

  // What is published: `port`, inspect, ls.
  CliResult port = vessel({"port", "pub"});
  EXPECT_EQ(port.exit_code, 0) << port.err;
  EXPECT_EQ(host_ports(port.out, "80/tcp", "127.0.0.1"), std::vector<int>{8081}) << port.out;
  std::vector<int> any = host_ports(port.out, "80/tcp", "0.0.0.0");
  ASSERT_EQ(any.size(), 2u) << "80/tcp on 8080 and on a free port:\n" << port.out;
  EXPECT_TRUE(any[0] == 8080 || any[1] == 8080) << port.out;
  int free_port = any[0] == 8080 ? any[1] : any[0];
  EXPECT_GT(free_port, 0);
  EXPECT_EQ(host_ports(port.out, "9000/tcp", "0.0.0.0"), std::vector<int>{9000}) << port.out;
  EXPECT_EQ(host_ports(port.out, "9001/tcp", "0.0.0.0"), std::vector<int>{9001}) << port.out;
  EXPECT_EQ(host_ports(port.out, "53/udp", "0.0.0.0"), std::vector<int>{8053}) << port.out;
  json ports = inspect("pub")["NetworkSettings"]["Ports"];
  EXPECT_TRUE(publishes(ports, "80/tcp", "127.0.0.1", "8081")) << ports.dump();
  EXPECT_TRUE(publishes(ports, "80/tcp", "0.0.0.0", "8080")) << ports.dump();
  EXPECT_TRUE(publishes(ports, "80/tcp", "0.0.0.0", std::to_string(free_port))) << ports.dump();
  EXPECT_TRUE(publishes(ports, "53/udp", "0.0.0.0", "8053")) << ports.dump();
  CliResult ls = vessel({"ls"});
  EXPECT_TRUE(contains(ls.out, "8080") && contains(ls.out, "8053")) << ls.out;

  // TCP: on 127.0.0.1, on the host's own address, from outside the host.
  EXPECT_EQ(http_get_eventually("127.0.0.1", 8080, 120s), "pub\n");
  EXPECT_EQ(http_get_eventually("127.0.0.1", 8081, 30s), "pub\n");
  EXPECT_EQ(http_get_eventually("127.0.0.1", free_port, 30s), "pub\n");
  EXPECT_EQ(http_get_eventually("127.0.0.1", 9000, 30s), "pub\n");
  EXPECT_EQ(http_get_eventually("127.0.0.1", 9001, 30s), "pub\n");
  EXPECT_EQ(http_get_eventually(kOurAddress, 8080, 30s), "pub\n");
  EXPECT_EQ(http_get_eventually(kOurAddress, 8080, 30s, peer_netns()), "pub\n")
      << "from the peer namespace to " << kOurAddress;
  // 127.0.0.1:8081 is that address only.
  EXPECT_EQ(http_get(kOurAddress, 8081, 3s), std::nullopt);
  EXPECT_EQ(http_get(kOurAddress, 8081, 3s, peer_netns()), std::nullopt);

  // UDP, both ways.
  EXPECT_EQ(udp_exchange("127.0.0.1", 8053, "ping-udp", 60s), "echo:ping-udp");
  EXPECT_TRUE(wait_for_log("pub", "got ping-udp"));
  EXPECT_EQ(udp_exchange(kOurAddress, 8053, "ping-own", 30s), "echo:ping-own");
}

TEST_F(NetworkingPublishTest, APortInUseFailsTheStartNamingItAndLeavesNothing) {
  UniqueFd tcp = listen_tcp("0.0.0.0", 8090);
  ASSERT_TRUE(tcp.valid());
  CliResult r = vessel(
      {"run", "-d", "-m", kMemory, "--name", "clash", "-p", "8090:80", kImage, "sh", "-c", kIdle},
      {.timeout = 120s});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.err, "8090")) << "the error does not name the port:\n" << r.err;
  EXPECT_EQ(r.out, "") << "run -d printed an id";

  // UDP likewise.
  UniqueFd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(8091);
  ASSERT_EQ(::bind(udp.get(), reinterpret_cast<sockaddr*>(&at), sizeof at), 0);
  CliResult u = vessel({"run", "-d", "-m", kMemory, "--name", "clash-udp", "-p", "8091:53/udp",
                        kImage, "sh", "-c", kIdle},
                       {.timeout = 120s});
  EXPECT_NE(u.exit_code, 0);
  EXPECT_TRUE(contains(u.err, "8091")) << "the error does not name the port:\n" << u.err;

  // Nothing runs, no VM process or tap is left.
  EXPECT_EQ(vessel({"ls", "-q"}).out, "");
  std::vector<std::string> left;
  wait_until(
      [&] {
        left = find_processes(vm_process_names(), state_root());
        return left.empty();
      },
      10s);
  EXPECT_EQ(left, std::vector<std::string>{});
  for (const auto& link : links())
    EXPECT_FALSE(starts_with(link, "vt")) << "a failed start left its tap: " << link;

  // The port is usable once freed.
  tcp.reset();
  std::string id = run_detached(
      {"--name", "second", "-p", "8090:80", kImage, "sh", "-c", http_server("second")});
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(http_get_eventually("127.0.0.1", 8090, 120s), "second\n");
}

TEST_F(NetworkingEgressTest, AContainersConnectionOutComesFromTheHostsAddress) {
  ASSERT_NO_FATAL_FAILURE(make_peer());
  UniqueFd server = listen_tcp(kPeerAddress, 9000, peer_netns());
  ASSERT_TRUE(server.valid());
  std::string id =
      run_detached({"--name", "out", kImage, "sh", "-c",
                    std::string("until echo hello-from-out | nc -w 5 ") + kPeerAddress +
                        " 9000; do sleep 1; done; echo sent; " + kIdle});
  ASSERT_FALSE(id.empty());
  auto got = accept_one(server.get(), 120s);
  ASSERT_TRUE(got.has_value()) << "no connection reached the server outside the host";
  EXPECT_EQ(got->data, "hello-from-out\n");
  EXPECT_EQ(got->peer_ip, kOurAddress) << "not masqueraded to the host's address";
  EXPECT_NE(got->peer_ip, ip_of("out"));
  EXPECT_TRUE(wait_for_log("out", "sent"));
}

}  // namespace
}  // namespace vessel::test
