// Privileged tier: every test moves this process into a network namespace of
// its own before touching nftables (the ruleset is per namespace), and skips
// when it cannot. The host's own ruleset is never read or changed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>

#include "base/unique_fd.h"
#include "net/firewall.h"
#include "net/netlink.h"

#include "net/netns_fixture.h"

namespace vessel::net {
namespace {

struct NftOutput {
  int status = -1;
  std::string text;  // stdout and stderr
};

// Runs the nft binary (a Debian package, like libnftables) with `args`: it
// reads the kernel's ruleset independently of the code under test. It runs
// in this process's namespace, which the fixture made.
NftOutput nft(const std::string& args) {
  NftOutput out;
  FILE* pipe = ::popen(("nft " + args + " 2>&1").c_str(), "re");
  if (!pipe) return out;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0)
    out.text.append(buffer, n);
  out.status = ::pclose(pipe);
  return out;
}

class FirewallApplyTest : public PrivateNetnsTest {
 protected:
  void SetUp() override {
    PrivateNetnsTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (::access("/usr/sbin/nft", X_OK) != 0 && ::system("command -v nft >/dev/null") != 0)
      GTEST_SKIP() << "no nft binary to check the ruleset with";
  }

  static Ipv4Net net(const char* text) {
    auto parsed = Ipv4Net::parse(text);
    EXPECT_TRUE(parsed.ok()) << text;
    return parsed.ok() ? *parsed : Ipv4Net{};
  }
};

TEST_F(FirewallApplyTest, AppliesRulesIdempotentlyAndRemovesThem) {
  auto before = firewall_table_exists();
  ASSERT_TRUE(before.ok()) << before.error().to_string();
  EXPECT_FALSE(*before);

  const std::vector<FirewallNetwork> networks = {
      {"vessel0", net("10.88.0.0/16"), false},
      {"vessel-b", net("10.89.0.0/24"), false},
      {"vessel-int", net("10.90.0.0/24"), true},
  };
  auto applied = apply_firewall(networks);
  ASSERT_TRUE(applied.ok()) << applied.error().to_string();
  auto exists = firewall_table_exists();
  ASSERT_TRUE(exists.ok()) << exists.error().to_string();
  EXPECT_TRUE(*exists);

  NftOutput first = nft("list table ip vessel");
  ASSERT_EQ(first.status, 0) << first.text;
  EXPECT_NE(first.text.find("ip saddr 10.88.0.0/16 oifname != \"vessel0\" masquerade"),
            std::string::npos)
      << first.text;
  EXPECT_NE(first.text.find("ip saddr 10.89.0.0/24 oifname != \"vessel-b\" masquerade"),
            std::string::npos)
      << first.text;
  EXPECT_EQ(first.text.find("10.90.0.0"), std::string::npos) << first.text;
  EXPECT_NE(first.text.find("iifname \"vessel-int\" oifname != \"vessel-int\" drop"),
            std::string::npos)
      << first.text;
  EXPECT_NE(first.text.find("iifname \"vessel0\" oifname @bridges oifname != \"vessel0\" drop"),
            std::string::npos)
      << first.text;

  // Applying the same networks again replaces the table with an identical
  // one: no duplicated rules.
  applied = apply_firewall(networks);
  ASSERT_TRUE(applied.ok()) << applied.error().to_string();
  NftOutput second = nft("list table ip vessel");
  ASSERT_EQ(second.status, 0) << second.text;
  EXPECT_EQ(second.text, first.text);

  // A smaller list drops the rules of the networks that went.
  applied = apply_firewall({networks[0]});
  ASSERT_TRUE(applied.ok()) << applied.error().to_string();
  NftOutput third = nft("list table ip vessel");
  EXPECT_NE(third.text.find("10.88.0.0/16"), std::string::npos) << third.text;
  EXPECT_EQ(third.text.find("vessel-b"), std::string::npos) << third.text;
  EXPECT_EQ(third.text.find("vessel-int"), std::string::npos) << third.text;

  // No networks: no table at all.
  applied = apply_firewall({});
  ASSERT_TRUE(applied.ok()) << applied.error().to_string();
  exists = firewall_table_exists();
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(*exists);
  EXPECT_NE(nft("list table ip vessel").status, 0);
  EXPECT_EQ(nft("list ruleset").text, "");

  // ... which is also fine when there is none to remove.
  applied = apply_firewall({});
  ASSERT_TRUE(applied.ok()) << applied.error().to_string();
}

TEST_F(FirewallApplyTest, LeavesOtherTablesAlone) {
  ASSERT_EQ(nft("add table inet other").status, 0);
  ASSERT_EQ(nft("'add chain inet other input { type filter hook input priority 0; }'").status, 0);
  ASSERT_TRUE(apply_firewall({{"vessel0", net("10.88.0.0/16"), false}}).ok());
  ASSERT_TRUE(apply_firewall({}).ok());
  NftOutput rest = nft("list ruleset");
  EXPECT_NE(rest.text.find("table inet other"), std::string::npos) << rest.text;
  EXPECT_NE(rest.text.find("chain input"), std::string::npos) << rest.text;
}

TEST_F(FirewallApplyTest, RefusesBadInputAndChangesNothing) {
  ASSERT_TRUE(apply_firewall({{"vessel0", net("10.88.0.0/16"), false}}).ok());
  NftOutput before = nft("list table ip vessel");
  ASSERT_EQ(before.status, 0);

  const std::vector<std::vector<FirewallNetwork>> bad = {
      {{"vessel0", net("10.88.0.0/16"), false}, {"br\"0", net("10.89.0.0/16"), false}},
      {{"Vessel0", net("10.88.0.0/16"), false}},
      {{"vessel0; flush", net("10.88.0.0/16"), false}},
      {{"", net("10.88.0.0/16"), false}},
      {{"a234567890123456", net("10.88.0.0/16"), false}},
      {{"vessel0", net("10.88.0.0/16"), false}, {"vessel0", net("10.89.0.0/16"), false}},
      {{"vessel0", Ipv4Net{Ipv4{0x0a580000}, 33}, false}},
  };
  for (const auto& networks : bad) {
    auto applied = apply_firewall(networks);
    ASSERT_FALSE(applied.ok()) << networks.back().bridge;
    EXPECT_EQ(applied.error().code(), ErrorCode::kInvalidArgument) << applied.error().to_string();
    EXPECT_NE(applied.error().to_string().find("apply nftables table 'ip vessel'"),
              std::string::npos)
        << applied.error().to_string();
  }
  EXPECT_EQ(nft("list table ip vessel").text, before.text);
}

TEST_F(FirewallApplyTest, RunNftReportsNftsMessage) {
  auto ran = run_nft("add table ip vessel\nthis is not nft\n");
  ASSERT_FALSE(ran.ok());
  EXPECT_NE(ran.error().message().find("syntax error"), std::string::npos)
      << ran.error().to_string();
  // The buffer is one transaction: its first line did not happen either.
  auto exists = firewall_table_exists();
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(*exists);
}

// ---- The rules at work: traffic between "containers" (network namespaces
// behind veth pairs on the bridges, as taps would be) and an "outside"
// namespace routed through this one, which plays the host.

// Runs `fn` on a thread that has joined the namespace `ns` (setns(2) moves
// only the calling thread); sockets made there stay in that namespace.
void in_netns(int ns, const std::function<void()>& fn) {
  std::thread thread([&] {
    if (::setns(ns, CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "setns: " << std::strerror(errno);
      return;
    }
    fn();
  });
  thread.join();
}

// A new, empty network namespace, held open by the returned fd.
UniqueFd new_netns() {
  UniqueFd fd;
  std::thread thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) return;
    fd.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  });
  thread.join();
  return fd;
}

// Runs `command` through the shell in namespace `ns` (or this one when -1);
// the child of a thread inherits that thread's namespace.
int shell(const std::string& command, int ns = -1) {
  int status = -1;
  auto run = [&] { status = ::system(command.c_str()); };
  if (ns < 0)
    run();
  else
    in_netns(ns, run);
  EXPECT_EQ(status, 0) << command;
  return status;
}

std::string ns_path(const UniqueFd& ns) {
  return "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(ns.get());
}

// A namespace with one end of a veth pair, address `address`/`prefix` and a
// default route via `gateway`; the other end, `host_end`, is on `bridge` (or
// has `gateway` itself when bridge is empty).
UniqueFd plug(const std::string& host_end, const std::string& bridge, const std::string& address,
              const std::string& gateway, int prefix) {
  UniqueFd ns = new_netns();
  EXPECT_TRUE(ns);
  shell("ip link add " + host_end + " type veth peer name eth0 netns " + ns_path(ns));
  if (bridge.empty()) {
    shell("ip address add " + gateway + "/" + std::to_string(prefix) + " dev " + host_end);
  } else {
    EXPECT_TRUE(set_master(host_end, bridge).ok());
  }
  EXPECT_TRUE(set_link_up(host_end, true).ok());
  shell("ip link set lo up && ip link set eth0 up && ip address add " + address + "/" +
            std::to_string(prefix) + " dev eth0 && ip route add default via " + gateway,
        ns.get());
  return ns;
}

constexpr uint16_t kPort = 7777;

// A TCP listener on kPort in namespace `ns`.
UniqueFd listen_in(int ns) {
  UniqueFd fd;
  in_netns(ns, [&] {
    fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(kPort);
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd.get(), 8) != 0)
      fd.reset();
  });
  EXPECT_TRUE(fd);
  return fd;
}

// Connects from namespace `ns` to `address`:kPort: true when the handshake
// completes within half a second (a dropped SYN never does).
bool connects(int ns, const char* address) {
  bool connected = false;
  in_netns(ns, [&] {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(kPort);
    ::inet_pton(AF_INET, address, &to.sin_addr);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) {
      connected = true;
      return;
    }
    if (errno != EINPROGRESS) return;
    pollfd p{fd.get(), POLLOUT, 0};
    if (::poll(&p, 1, 500) != 1) return;
    int error = 0;
    socklen_t length = sizeof error;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
    connected = error == 0;
  });
  return connected;
}

// The source address of the next connection waiting on `listener`.
std::string accepted_from(const UniqueFd& listener) {
  sockaddr_in peer{};
  socklen_t length = sizeof peer;
  UniqueFd fd(::accept4(listener.get(), reinterpret_cast<sockaddr*>(&peer), &length, SOCK_CLOEXEC));
  if (!fd) return "accept: " + std::string(std::strerror(errno));
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
  return text;
}

TEST_F(FirewallApplyTest, IsolatesNetworksCutsOffInternalAndMasquerades) {
  if (::system("command -v ip >/dev/null") != 0) GTEST_SKIP() << "no ip binary for veth pairs";
  ASSERT_TRUE(enable_ip_forwarding().ok());
  struct Bridge {
    const char* name;
    const char* gateway;
  };
  for (const Bridge& b : {Bridge{"vessel-a", "10.91.1.1"}, Bridge{"vessel-b", "10.91.2.1"},
                          Bridge{"vessel-i", "10.91.3.1"}}) {
    ASSERT_TRUE(create_bridge(b.name).ok());
    ASSERT_TRUE(add_address(b.name, *Ipv4::parse(b.gateway), 24).ok());
    ASSERT_TRUE(set_link_up(b.name, true).ok());
  }
  UniqueFd a1 = plug("va1", "vessel-a", "10.91.1.2", "10.91.1.1", 24);
  UniqueFd a2 = plug("va2", "vessel-a", "10.91.1.3", "10.91.1.1", 24);
  UniqueFd b1 = plug("vb1", "vessel-b", "10.91.2.2", "10.91.2.1", 24);
  UniqueFd i1 = plug("vi1", "vessel-i", "10.91.3.2", "10.91.3.1", 24);
  // Outside: a routed uplink, as the host's eth0 would be.
  UniqueFd outside = plug("up0", "", "192.0.2.2", "192.0.2.1", 24);
  ASSERT_FALSE(HasFailure());

  UniqueFd a1_server = listen_in(a1.get());
  UniqueFd b1_server = listen_in(b1.get());
  UniqueFd i1_server = listen_in(i1.get());
  UniqueFd outside_server = listen_in(outside.get());

  // Without the rules everything is routed (so what follows is their doing),
  // and the outside sees container addresses.
  ASSERT_TRUE(connects(b1.get(), "10.91.1.2"));
  EXPECT_EQ(accepted_from(a1_server), "10.91.2.2");
  ASSERT_TRUE(connects(a1.get(), "192.0.2.2"));
  EXPECT_EQ(accepted_from(outside_server), "10.91.1.2");

  ASSERT_TRUE(apply_firewall({{"vessel-a", *Ipv4Net::parse("10.91.1.0/24"), false},
                              {"vessel-b", *Ipv4Net::parse("10.91.2.0/24"), false},
                              {"vessel-i", *Ipv4Net::parse("10.91.3.0/24"), true}})
                  .ok());

  // Egress is masqueraded behind the host's address on the uplink.
  EXPECT_TRUE(connects(a1.get(), "192.0.2.2"));
  EXPECT_EQ(accepted_from(outside_server), "192.0.2.1");
  EXPECT_TRUE(connects(b1.get(), "192.0.2.2"));
  EXPECT_EQ(accepted_from(outside_server), "192.0.2.1");
  // Within one network: bridged, untouched, not masqueraded.
  EXPECT_TRUE(connects(a2.get(), "10.91.1.2"));
  EXPECT_EQ(accepted_from(a1_server), "10.91.1.3");
  // Between networks: dropped, both ways.
  EXPECT_FALSE(connects(b1.get(), "10.91.1.2"));
  EXPECT_FALSE(connects(a1.get(), "10.91.2.2"));
  // The internal network reaches nothing beyond its bridge, and nothing
  // routed reaches it.
  EXPECT_FALSE(connects(i1.get(), "192.0.2.2"));
  EXPECT_FALSE(connects(i1.get(), "10.91.1.2"));
  EXPECT_FALSE(connects(a1.get(), "10.91.3.2"));
  EXPECT_FALSE(connects(outside.get(), "10.91.3.2"));

  // Removing the rules restores plain routing.
  ASSERT_TRUE(apply_firewall({}).ok());
  EXPECT_TRUE(connects(b1.get(), "10.91.1.2"));
  EXPECT_EQ(accepted_from(a1_server), "10.91.2.2");
}

}  // namespace
}  // namespace vessel::net
