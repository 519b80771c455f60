// The network tests' fixture: ContainerTest in a network namespace of the
// test's own, so that the bridges, taps, addresses and nftables rules Vessel
// makes, and all the traffic, stay out of the host's network.
//
// SetUp unshares the test process's network namespace (every process the
// CLI starts, monitors, QEMU and dnsmasq, inherits it) and brings `lo` up;
// `make_peer()` adds a second namespace on a veth pair (ours 192.0.2.1/24,
// the peer's 192.0.2.2/24) that stands for the network outside the host.
// TearDown removes every container and network, ends what is left in the
// namespace and the peer, and the namespaces go with them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/unique_fd.h"
#include "containers/container_fixture.h"

namespace vessel::test {

/// The default network's documented constants.
inline constexpr const char* kDefaultNetwork = "default";
inline constexpr const char* kDefaultBridge = "vessel0";
inline constexpr const char* kDefaultSubnet = "10.220.0.0/16";
inline constexpr const char* kDefaultGateway = "10.220.0.1";

/// The veth pair make_peer() makes: our end and address, the peer's.
inline constexpr const char* kOurVeth = "vpeer0";
inline constexpr const char* kOurAddress = "192.0.2.1";
inline constexpr const char* kPeerAddress = "192.0.2.2";

/// A container command: serves `marker` + "\n" over HTTP on port 80 (busybox
/// httpd in the foreground).
std::string http_server(const std::string& marker);
/// A container command that idles.
inline constexpr const char* kIdle = "echo ready; while true; do sleep 1; done";

/// The tap of a container's NIC `index`: "vt" + 12 hex of the id + index.
std::string tap_name(const std::string& id, int index = 0);

/// One HTTP/1.0 GET of / at ip:port, from a socket made in network
/// namespace `netns_fd` (-1: the caller's). The body, or nullopt when the
/// connection fails or does not complete within `timeout`.
std::optional<std::string> http_get(const std::string& ip, int port,
                                    std::chrono::milliseconds timeout, int netns_fd = -1);
/// http_get() tried again until it answers or `deadline` passes (the server
/// in a booting VM may not listen yet).
std::optional<std::string> http_get_eventually(const std::string& ip, int port,
                                               std::chrono::seconds deadline, int netns_fd = -1);

/// Sends `payload` in a UDP datagram to ip:port and returns the first answer
/// within `timeout`, trying again every second.
std::optional<std::string> udp_exchange(const std::string& ip, int port, const std::string& payload,
                                        std::chrono::seconds timeout);

/// A listening TCP socket on ip:port, made in `netns_fd` (-1: ours).
UniqueFd listen_tcp(const std::string& ip, int port, int netns_fd = -1);

/// What a TCP server saw of one connection.
struct Accepted {
  std::string peer_ip;  // the source address of the connection
  std::string data;     // everything read until EOF (or the timeout)
};
/// Accepts one connection on `listener` within `timeout` and reads it.
std::optional<Accepted> accept_one(int listener, std::chrono::milliseconds timeout);

/// The network interface names in `ip -o link` output ("vpeer0@if2" -> "vpeer0").
std::vector<std::string> link_names(const std::string& ip_o_link);

/// Whether `ip` (dotted quad) lies in `cidr` ("10.220.0.0/16").
bool in_subnet(const std::string& ip, const std::string& cidr);

class NetworkTest : public ContainerTest {
 protected:
  void SetUp() override;
  void TearDown() override;

  /// Runs a host program (found in PATH) in the test's namespace: `ip`,
  /// `nft`, ... (not recorded in the failure report: assertions show it).
  static CliResult host(const std::vector<std::string>& argv);
  /// The interface names in the test's namespace.
  std::vector<std::string> links();
  /// `nft -s list ruleset` (no counters) in the test's namespace.
  std::string ruleset();

  /// Makes the peer namespace and the veth pair (see the file comment).
  void make_peer();
  /// The peer namespace (an fd of its nsfs file), -1 before make_peer().
  int peer_netns() const { return peer_netns_.get(); }
  /// Runs a program in the peer namespace (nsenter).
  CliResult in_peer(const std::vector<std::string>& argv);

  /// `vessel network inspect NAME`'s one object (null json and a failure if
  /// it fails).
  nlohmann::json network_inspect(const std::string& name);
  /// `vessel network ls --format json`, parsed (empty array on failure).
  nlohmann::json network_list();
  /// The bridge of network `name`, from inspect.
  std::string bridge_of(const std::string& name);
  /// NetworkSettings.Networks[network] of container `ref` (null if absent).
  nlohmann::json endpoint_of(const std::string& ref, const std::string& network);
  /// Its IPAddress ("" if absent).
  std::string ip_of(const std::string& ref, const std::string& network = kDefaultNetwork);

  /// `vessel exec REF sh -c SCRIPT`.
  CliResult sh(const std::string& ref, const std::string& script,
               std::chrono::seconds timeout = std::chrono::seconds(120));
  /// In container `ref`: GETs `url` with busybox wget, retrying for up to
  /// `tries` seconds; the exec's result (stdout: the body).
  CliResult fetch(const std::string& ref, const std::string& url, int tries = 20);
  /// In container `ref`: one GET of `url` that gives up after 5 s.
  CliResult fetch_once(const std::string& ref, const std::string& url);

  /// In container `ref`: sends `text` + "\n" with nc to kPeerAddress:`port`,
  /// where `listener` (made with listen_tcp in the peer) accepts one
  /// connection meanwhile, for up to `wait` (nc waits for the server to
  /// close, so the two must overlap). The exec's result and what the server
  /// saw, if anything.
  std::pair<CliResult, std::optional<Accepted>> send_to_peer(const std::string& ref, int listener,
                                                             int port, const std::string& text,
                                                             std::chrono::milliseconds wait);

  /// The processes other than this one in the test's network namespace,
  /// described ("pid 12: dnsmasq ...").
  std::vector<std::string> processes_in_namespace();

 private:
  std::vector<std::pair<int, std::vector<std::string>>> namespace_processes();
  /// SIGKILLs the processes in the namespace (but QEMU, virtiofsd and
  /// monitors with `spare_vm_processes`, for VmTest's leak check to report).
  void kill_namespace_processes(bool spare_vm_processes);

  bool unshared_ = false;
  ino_t netns_inode_ = 0;
  pid_t peer_pid_ = -1;
  UniqueFd peer_netns_;
};

}  // namespace vessel::test
