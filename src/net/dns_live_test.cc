// A real dnsmasq through sync_dns, in a private network namespace with a
// bridge of its own (root; skipped otherwise). The namespace is made on a
// thread of its own: the rest of the test binary, and the host, keep theirs.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "net/dns.h"
#include "sys/fs.h"
#include "sys/process.h"

namespace vessel::net {
namespace {

using namespace std::chrono_literals;

const char* kGateway = "10.99.0.1";

struct Answer {
  int rcode = -1;                      // 0 NOERROR, 3 NXDOMAIN
  std::vector<std::string> addresses;  // the A records
};

// Asks `server`:53 over UDP for the A records of `name`; nullopt when no
// answer comes (nothing listens, or a timeout). A minimal RFC 1035 client:
// every read of the reply is bounds-checked.
std::optional<Answer> resolve(const char* server, const std::string& name) {
  static uint16_t next_id = 0x5e11;
  uint16_t id = ++next_id;
  std::vector<uint8_t> q = {uint8_t(id >> 8), uint8_t(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q.push_back(static_cast<uint8_t>(dot - start));
    q.insert(q.end(), name.begin() + static_cast<long>(start),
             name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  q.insert(q.end(), {0, 0, 1, 0, 1});  // root label, QTYPE A, QCLASS IN

  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  timeval tv{2, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(53);
  ::inet_pton(AF_INET, server, &to.sin_addr);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return std::nullopt;
  if (::send(fd.get(), q.data(), q.size(), 0) != static_cast<ssize_t>(q.size()))
    return std::nullopt;
  uint8_t r[1500];
  ssize_t n = ::recv(fd.get(), r, sizeof r, 0);
  if (n < 12) return std::nullopt;
  size_t len = static_cast<size_t>(n);
  if ((r[0] << 8 | r[1]) != id || !(r[2] & 0x80)) return std::nullopt;
  Answer a;
  a.rcode = r[3] & 0x0f;
  size_t qd = r[4] << 8 | r[5], an = r[6] << 8 | r[7];
  size_t at = 12;
  auto skip_name = [&] {
    while (at < len) {
      uint8_t l = r[at];
      if ((l & 0xc0) == 0xc0) return (at += 2) <= len;  // a compression pointer ends the name
      at += 1 + l;
      if (l == 0) return at <= len;
    }
    return false;
  };
  for (size_t i = 0; i < qd; ++i)
    if (!skip_name() || (at += 4) > len) return std::nullopt;
  for (size_t i = 0; i < an; ++i) {
    if (!skip_name() || at + 10 > len) return std::nullopt;
    uint16_t type = static_cast<uint16_t>(r[at] << 8 | r[at + 1]);
    size_t rdlen = r[at + 8] << 8 | r[at + 9];
    at += 10;
    if (at + rdlen > len) return std::nullopt;
    if (type == 1 && rdlen == 4) {
      char buf[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, r + at, buf, sizeof buf);
      a.addresses.push_back(buf);
    }
    at += rdlen;
  }
  return a;
}

// The A records of `name`, or "NXDOMAIN", "rcode N", "no answer".
std::string lookup(const std::string& name) {
  auto a = resolve(kGateway, name);
  if (!a) return "no answer";
  if (a->rcode == 3) return "NXDOMAIN";
  if (a->rcode != 0) return "rcode " + std::to_string(a->rcode);
  std::string out;
  for (const auto& s : a->addresses)
    out += (out.empty() ? "" : " ") + s;
  return out;
}

// SIGHUP reloads asynchronously: poll for the expected answer briefly.
std::string lookup_until(const std::string& name, const std::string& want) {
  std::string got;
  for (int i = 0; i < 100; ++i) {
    got = lookup(name);
    if (got == want) break;
    std::this_thread::sleep_for(20ms);
  }
  return got;
}

Status run(std::vector<std::string> argv) {
  auto p = sys::Process::spawn({.argv = std::move(argv)});
  if (!p) return p.error();
  auto st = p->wait(10s);
  if (!st) return st.error();
  if (st->shell_code() != 0)
    return Error(ErrorCode::kInternal, "command failed: " + st->to_string());
  return ok_status();
}

pid_t pid_in(const DnsConfig& c) {
  auto text = sys::read_file(c.dir + "/dnsmasq.pid");
  return text ? static_cast<pid_t>(std::stol(*text)) : 0;
}

// Runs `fn` on a new thread in a new network namespace.
void in_private_netns(const std::function<void()>& fn) {
  std::thread t([&] {
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    fn();
  });
  t.join();
}

TEST(DnsLive, ServesReloadsRestartsAndStops) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: a private network namespace with a bridge";
  auto ip = sys::find_program("/usr/sbin/ip");
  if (!ip) ip = sys::find_program("ip");
  if (!ip) GTEST_SKIP() << "no ip command (iproute2)";
  if (!sys::find_program("/usr/sbin/dnsmasq") && !sys::find_program("dnsmasq"))
    GTEST_SKIP() << "no dnsmasq (Debian's dnsmasq-base)";
  auto dir = sys::make_temp_dir(::testing::TempDir(), "vessel-dns-live-");
  ASSERT_TRUE(dir.ok()) << dir.error().to_string();
  auto dir2 = sys::make_temp_dir(::testing::TempDir(), "vessel-dns-live-");
  ASSERT_TRUE(dir2.ok()) << dir2.error().to_string();

  in_private_netns([&] {
    for (std::vector<std::string> cmd :
         {std::vector<std::string>{*ip, "link", "set", "lo", "up"},
          {*ip, "link", "add", "br-t", "type", "bridge"},
          {*ip, "addr", "add", std::string(kGateway) + "/24", "dev", "br-t"},
          {*ip, "link", "set", "br-t", "up"}}) {
      Status s = run(cmd);
      ASSERT_TRUE(s.ok()) << cmd[1] << " " << cmd[2] << ": " << s.error().to_string();
    }
    DnsConfig c{*dir, "br-t", *Ipv4::parse(kGateway)};
    // Whatever fails below, no dnsmasq outlives the test.
    struct Guard {
      const DnsConfig& c;
      ~Guard() { (void)stop_dns(c); }
    } guard{c};

    Ipv4 web = *Ipv4::parse("10.99.0.5"), db = *Ipv4::parse("10.99.0.6"),
         app = *Ipv4::parse("10.99.0.7");
    Status s = sync_dns(c, {{web, {"web", "www"}}, {db, {"db"}}, {app, {"my_app"}}});
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    ASSERT_TRUE(dns_running(c));
    pid_t first = pid_in(c);
    EXPECT_GT(first, 0);

    EXPECT_EQ(lookup("web"), "10.99.0.5");
    EXPECT_EQ(lookup("www"), "10.99.0.5");
    EXPECT_EQ(lookup("web.vessel.internal"), "10.99.0.5");
    EXPECT_EQ(lookup("db.vessel.internal"), "10.99.0.6");
    EXPECT_EQ(lookup("my_app"), "10.99.0.7");
    EXPECT_EQ(lookup("nope.vessel.internal"), "NXDOMAIN");
    EXPECT_EQ(lookup("nope"), "NXDOMAIN");  // a bare name is never forwarded

    // A container leaves and another arrives: same dnsmasq, new answers.
    Ipv4 late = *Ipv4::parse("10.99.0.8");
    s = sync_dns(c, {{web, {"web", "www"}}, {late, {"late"}}});
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    EXPECT_EQ(pid_in(c), first) << "reloaded by SIGHUP, not restarted";
    EXPECT_EQ(lookup_until("db", "NXDOMAIN"), "NXDOMAIN");
    EXPECT_EQ(lookup_until("late.vessel.internal", "10.99.0.8"), "10.99.0.8");
    EXPECT_EQ(lookup("web"), "10.99.0.5");
    EXPECT_EQ(lookup("my_app"), "NXDOMAIN");

    // Another dnsmasq for the same address fails with dnsmasq's reason.
    DnsConfig twin{*dir2, "br-t", c.listen};
    s = sync_dns(twin, {{web, {"web"}}});
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().to_string().find("10.99.0.1"), std::string::npos) << s.error().to_string();
    EXPECT_NE(s.error().to_string().find("br-t"), std::string::npos) << s.error().to_string();
    EXPECT_FALSE(dns_running(twin));

    // An address the host does not have: dnsmasq's reason, with the bridge.
    DnsConfig missing{*dir2, "br-missing", *Ipv4::parse("10.99.1.1")};
    s = sync_dns(missing, {{web, {"web"}}});
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code(), ErrorCode::kFailedPrecondition);
    EXPECT_EQ(s.error().to_string(),
              "start dnsmasq for 'br-missing': dnsmasq: failed to create listening socket for "
              "10.99.1.1: Cannot assign requested address");

    // A crashed dnsmasq (stale pid file) is replaced on the next sync.
    ASSERT_EQ(::kill(first, SIGKILL), 0);
    for (int i = 0; i < 100 && dns_running(c); ++i)
      std::this_thread::sleep_for(20ms);
    EXPECT_FALSE(dns_running(c));
    s = sync_dns(c, {{web, {"web"}}});
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    EXPECT_NE(pid_in(c), first);
    EXPECT_EQ(lookup("web"), "10.99.0.5");

    // The last container goes: dnsmasq stops, its port is closed.
    pid_t second = pid_in(c);
    s = sync_dns(c, {});
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    EXPECT_FALSE(dns_running(c));
    EXPECT_FALSE(sys::read_file(c.dir + "/dnsmasq.pid").ok());
    auto cmdline = sys::read_file("/proc/" + std::to_string(second) + "/cmdline");
    EXPECT_TRUE(!cmdline.ok() || cmdline->empty()) << "dnsmasq " << second << " still runs";
    EXPECT_EQ(lookup("web"), "no answer");
  });
  (void)sys::remove_tree(*dir);
  (void)sys::remove_tree(*dir2);
}

}  // namespace
}  // namespace vessel::net
