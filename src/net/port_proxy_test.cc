// The port proxy against servers on loopback: no root needed (one test, of
// replies from the address the client used, wants a private network
// namespace and skips without root).
#include "net/port_proxy.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.h"

namespace vessel::net {
namespace {

const Ipv4 kLoopback{0x7f000001};

sockaddr_in addr_of(uint32_t ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(ip);
  return a;
}

uint16_t port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  return ntohs(a.sin_port);
}

// A socket bound to ip:port (0 = any free port); listening for TCP.
UniqueFd bound_socket(int type, uint32_t ip, uint16_t port, bool reuse = false) {
  UniqueFd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(fd.valid());
  int one = 1;
  if (reuse) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = addr_of(ip, port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  if (type == SOCK_STREAM && ::listen(fd.get(), 16) != 0) return UniqueFd();
  return fd;
}

void set_timeout(int fd, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

UniqueFd connect_tcp(uint32_t ip, uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  set_timeout(fd.get(), 10);
  sockaddr_in a = addr_of(ip, port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  return fd;
}

bool send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Reads until EOF (or an error, reported as a short result).
std::string read_to_eof(int fd) {
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// A TCP server on 127.0.0.x:0 that runs `serve` on each connection in its
// own thread until destroyed.
class TcpServer {
 public:
  explicit TcpServer(std::function<void(int)> serve, uint32_t ip = 0x7f000001, uint16_t port = 0)
      : serve_(std::move(serve)), fd_(bound_socket(SOCK_STREAM, ip, port)) {
    port_ = fd_.valid() ? port_of(fd_.get()) : 0;
    acceptor_ = std::thread([this] {
      while (true) {
        int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;  // shutdown() of the listener by the destructor
        set_timeout(c, 10);
        workers_.emplace_back([this, c] {
          serve_(c);
          ::close(c);
        });
      }
    });
  }
  ~TcpServer() {
    ::shutdown(fd_.get(), SHUT_RDWR);
    acceptor_.join();
    for (auto& w : workers_)
      w.join();
  }
  uint16_t port() const { return port_; }

 private:
  std::function<void(int)> serve_;
  UniqueFd fd_;
  uint16_t port_ = 0;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

void echo(int fd) {
  char buf[65536];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    if (!send_all(fd, buf, static_cast<size_t>(n))) return;
  }
  ::shutdown(fd, SHUT_WR);
}

// A UDP echo server on 127.0.0.x:0 that records its peers.
class UdpEcho {
 public:
  explicit UdpEcho(uint32_t ip = 0x7f000001) : fd_(bound_socket(SOCK_DGRAM, ip, 0)) {
    port_ = port_of(fd_.get());
    timeval tv{0, 100000};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    thread_ = std::thread([this] {
      char buf[65536];
      while (!stop_) {
        sockaddr_in from{};
        socklen_t len = sizeof from;
        ssize_t n =
            ::recvfrom(fd_.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 0) continue;
        {
          std::lock_guard lock(mu_);
          peers_.insert(ntohs(from.sin_port));
        }
        ::sendto(fd_.get(), buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from),
                 len);
      }
    });
  }
  ~UdpEcho() {
    stop_ = true;
    thread_.join();
  }
  uint16_t port() const { return port_; }
  size_t peers() {
    std::lock_guard lock(mu_);
    return peers_.size();
  }

 private:
  UniqueFd fd_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::set<uint16_t> peers_;
  std::thread thread_;
};

std::unique_ptr<PortProxy> start_proxy(uint16_t ctr_port, Proto proto = Proto::kTcp,
                                       std::string host_ip = "127.0.0.1", uint16_t host_port = 0,
                                       Ipv4 target = kLoopback) {
  auto p = PortProxy::start({PortMapping{host_ip, host_port, ctr_port, proto}}, target);
  EXPECT_TRUE(p.ok()) << p.error().to_string();
  return p.ok() ? std::move(*p) : nullptr;
}

std::string pattern(size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>((i * 131 + seed) >> 3);
  return s;
}

TEST(PortProxy, TcpOneMegabyteBothWays) {
  TcpServer server(echo);
  auto proxy = start_proxy(server.port());
  ASSERT_TRUE(proxy);
  uint16_t port = proxy->bound()[0].host_port;
  ASSERT_NE(port, 0);

  // Two connections at once, each 1 MB up and the same 1 MB echoed down.
  std::vector<std::future<std::string>> received;
  std::vector<std::string> sent;
  for (unsigned i = 0; i < 2; ++i) {
    sent.push_back(pattern(1 << 20, i));
    received.push_back(std::async(std::launch::async, [port, data = sent.back()] {
      UniqueFd c = connect_tcp(0x7f000001, port);
      if (!c) return std::string("connect failed");
      // Write from a second thread while reading here: the echo fills the
      // buffers both ways, so one thread doing both would deadlock.
      std::thread writer([&] {
        send_all(c.get(), data.data(), data.size());
        ::shutdown(c.get(), SHUT_WR);
      });
      std::string got = read_to_eof(c.get());
      writer.join();
      return got;
    }));
  }
  for (unsigned i = 0; i < 2; ++i) {
    std::string got = received[i].get();
    ASSERT_EQ(got.size(), sent[i].size());
    EXPECT_TRUE(got == sent[i]) << "connection " << i << ": bytes differ";
  }
}

TEST(PortProxy, TcpHalfCloseBothDirections) {
  // The server greets and closes its sending side first, then reads the
  // client's data to EOF and reports through `seen`.
  std::promise<size_t> seen;
  TcpServer server([&](int fd) {
    send_all(fd, "hello", 5);
    ::shutdown(fd, SHUT_WR);
    seen.set_value(read_to_eof(fd).size());
  });
  auto proxy = start_proxy(server.port());
  ASSERT_TRUE(proxy);
  UniqueFd c = connect_tcp(0x7f000001, proxy->bound()[0].host_port);
  ASSERT_TRUE(c);
  // The server's FIN arrives as EOF while our sending side is still open.
  EXPECT_EQ(read_to_eof(c.get()), "hello");
  std::string data = pattern(300000, 7);
  ASSERT_TRUE(send_all(c.get(), data.data(), data.size()));
  ::shutdown(c.get(), SHUT_WR);
  auto f = seen.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(f.get(), data.size());
}

TEST(PortProxy, TcpClientHalfCloseStillGetsTheReply) {
  TcpServer server([](int fd) {
    std::string got = read_to_eof(fd);
    std::string reply = "got " + std::to_string(got.size());
    send_all(fd, reply.data(), reply.size());
  });
  auto proxy = start_proxy(server.port());
  ASSERT_TRUE(proxy);
  UniqueFd c = connect_tcp(0x7f000001, proxy->bound()[0].host_port);
  ASSERT_TRUE(c);
  std::string data = pattern(100000, 3);
  ASSERT_TRUE(send_all(c.get(), data.data(), data.size()));
  ::shutdown(c.get(), SHUT_WR);
  EXPECT_EQ(read_to_eof(c.get()), "got 100000");
}

TEST(PortProxy, TcpBackpressureBoundsWhatIsHeld) {
  // The server does not read until released: the proxy must stop reading
  // the client, so the client's sends stall after the kernels' socket
  // buffers and the proxy's 64 KiB, far below the cap here.
  constexpr size_t kCap = 48u << 20;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<size_t> seen;
  TcpServer server([&](int fd) {
    released.wait();
    seen.set_value(read_to_eof(fd).size());
  });
  auto proxy = start_proxy(server.port());
  ASSERT_TRUE(proxy);
  UniqueFd c = connect_tcp(0x7f000001, proxy->bound()[0].host_port);
  ASSERT_TRUE(c);
  std::string chunk(65536, 'x');
  size_t sent = 0;
  while (sent < kCap) {
    ssize_t n = ::send(c.get(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    ASSERT_TRUE(n < 0 && errno == EAGAIN) << std::strerror(errno);
    pollfd p{c.get(), POLLOUT, 0};
    if (::poll(&p, 1, 500) == 0) break;  // stalled: backpressure reached us
  }
  EXPECT_LT(sent, kCap) << "the proxy kept reading with nobody reading its output";
  // Released, everything that was accepted arrives.
  release.set_value();
  ::shutdown(c.get(), SHUT_WR);
  auto f = seen.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_EQ(f.get(), sent);
}

TEST(PortProxy, TcpFailedConnectClosesTheClient) {
  // A port nothing listens on: bind one to learn a free number, then close it.
  uint16_t dead_port;
  {
    UniqueFd probe = bound_socket(SOCK_STREAM, 0x7f000001, 0);
    dead_port = port_of(probe.get());
  }
  auto proxy = start_proxy(dead_port);
  ASSERT_TRUE(proxy);
  UniqueFd c = connect_tcp(0x7f000001, proxy->bound()[0].host_port);
  ASSERT_TRUE(c);  // the proxy accepts before it knows
  char b;
  ssize_t n = ::recv(c.get(), &b, 1, 0);
  int e = errno;
  EXPECT_TRUE(n == 0 || (n < 0 && e == ECONNRESET)) << n << " " << std::strerror(e);
}

TEST(PortProxy, SetTargetRedirectsNewConnections) {
  auto greeter = [](const char* who) {
    return [who](int fd) {
      send_all(fd, who, std::strlen(who));
      ::shutdown(fd, SHUT_WR);
      read_to_eof(fd);
    };
  };
  TcpServer a(greeter("a"), 0x7f000001);
  TcpServer b(greeter("b"), 0x7f000002, a.port());  // same port, another loopback address
  if (b.port() == 0) GTEST_SKIP() << "cannot bind 127.0.0.2:" << a.port();
  auto proxy = start_proxy(a.port());
  ASSERT_TRUE(proxy);
  uint16_t port = proxy->bound()[0].host_port;
  {
    UniqueFd c = connect_tcp(0x7f000001, port);
    ::shutdown(c.get(), SHUT_WR);
    EXPECT_EQ(read_to_eof(c.get()), "a");
  }
  proxy->set_target(Ipv4{0x7f000002});
  UniqueFd c = connect_tcp(0x7f000001, port);
  ::shutdown(c.get(), SHUT_WR);
  EXPECT_EQ(read_to_eof(c.get()), "b");
}

// A UDP socket connected to the proxy: it accepts datagrams only from there.
UniqueFd udp_client(uint32_t ip, uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  set_timeout(fd.get(), 5);
  sockaddr_in a = addr_of(ip, port);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

std::string udp_roundtrip(int fd, const std::string& msg) {
  ::send(fd, msg.data(), msg.size(), 0);
  char buf[65536];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  return n < 0 ? std::string("recv: ") + std::strerror(errno) : std::string(buf, n);
}

TEST(PortProxy, UdpEchoPerClientFlows) {
  UdpEcho server;
  auto proxy = start_proxy(server.port(), Proto::kUdp);
  ASSERT_TRUE(proxy);
  uint16_t port = proxy->bound()[0].host_port;
  ASSERT_NE(port, 0);
  UniqueFd c1 = udp_client(0x7f000001, port);
  UniqueFd c2 = udp_client(0x7f000001, port);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(udp_roundtrip(c1.get(), "one " + std::to_string(i)), "one " + std::to_string(i));
    EXPECT_EQ(udp_roundtrip(c2.get(), "two " + std::to_string(i)), "two " + std::to_string(i));
  }
  std::string big = pattern(60000, 1);
  EXPECT_TRUE(udp_roundtrip(c1.get(), big) == big) << "a 60000-byte datagram";
  EXPECT_EQ(server.peers(), 2u) << "one flow, so one source port, per client";
}

TEST(PortProxy, PortInUseIsAnErrorNamingThePort) {
  UniqueFd taken = bound_socket(SOCK_STREAM, 0x7f000001, 0);
  uint16_t port = port_of(taken.get());
  auto p = PortProxy::start({PortMapping{"127.0.0.1", port, 80, Proto::kTcp}}, kLoopback);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), ErrorCode::kAlreadyExists);
  std::string p_str = std::to_string(port);
  EXPECT_EQ(p.error().to_string(),
            "publish 127.0.0.1:" + p_str + "->80/tcp: port " + p_str + "/tcp is already in use");

  // The wildcard address conflicts with a specific one too.
  auto any = PortProxy::start({PortMapping{"", port, 80, Proto::kTcp}}, kLoopback);
  ASSERT_FALSE(any.ok());
  EXPECT_EQ(any.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(any.error().to_string().find("0.0.0.0:" + p_str), std::string::npos);

  UniqueFd udp_taken = bound_socket(SOCK_DGRAM, 0x7f000001, 0);
  uint16_t uport = port_of(udp_taken.get());
  auto u = PortProxy::start({PortMapping{"127.0.0.1", uport, 53, Proto::kUdp}}, kLoopback);
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(u.error().to_string().find("port " + std::to_string(uport) + "/udp is already in use"),
            std::string::npos);
}

TEST(PortProxy, FailureLeavesNothingBound) {
  uint16_t free_port;
  {
    UniqueFd probe = bound_socket(SOCK_STREAM, 0x7f000001, 0);
    free_port = port_of(probe.get());
  }
  UniqueFd taken = bound_socket(SOCK_STREAM, 0x7f000001, 0);
  uint16_t busy = port_of(taken.get());
  auto p = PortProxy::start({PortMapping{"127.0.0.1", free_port, 80, Proto::kTcp},
                             PortMapping{"127.0.0.1", free_port, 53, Proto::kUdp},
                             PortMapping{"127.0.0.1", busy, 81, Proto::kTcp}},
                            kLoopback);
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(bound_socket(SOCK_STREAM, 0x7f000001, free_port).valid());
  EXPECT_TRUE(bound_socket(SOCK_DGRAM, 0x7f000001, free_port).valid());
}

TEST(PortProxy, OtherErrors) {
  auto bad_ip = PortProxy::start({PortMapping{"192.0.2.1", 0, 80, Proto::kTcp}}, kLoopback);
  ASSERT_FALSE(bad_ip.ok());
  EXPECT_EQ(bad_ip.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad_ip.error().to_string().find("192.0.2.1"), std::string::npos);
}

TEST(PortProxy, PortZeroGetsARealPortPerMapping) {
  TcpServer server(echo);
  UdpEcho udp;
  auto p = PortProxy::start({PortMapping{"127.0.0.1", 0, server.port(), Proto::kTcp},
                             PortMapping{"127.0.0.1", 0, udp.port(), Proto::kUdp}},
                            kLoopback);
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  const auto& bound = (*p)->bound();
  ASSERT_EQ(bound.size(), 2u);
  EXPECT_NE(bound[0].host_port, 0);
  EXPECT_NE(bound[1].host_port, 0);
  EXPECT_EQ(bound[0].container_port, server.port());
  EXPECT_EQ(bound[1].proto, Proto::kUdp);
  UniqueFd c = connect_tcp(0x7f000001, bound[0].host_port);
  ASSERT_TRUE(c);
  send_all(c.get(), "ping", 4);
  ::shutdown(c.get(), SHUT_WR);
  EXPECT_EQ(read_to_eof(c.get()), "ping");
  UniqueFd u = udp_client(0x7f000001, bound[1].host_port);
  EXPECT_EQ(udp_roundtrip(u.get(), "pong"), "pong");
}

TEST(PortProxy, DestructorLeavesNothingBound) {
  TcpServer server(echo);
  UdpEcho udp;
  uint16_t tcp_port, udp_port;
  UniqueFd open_client;
  {
    auto p = PortProxy::start({PortMapping{"127.0.0.1", 0, server.port(), Proto::kTcp},
                               PortMapping{"127.0.0.1", 0, udp.port(), Proto::kUdp}},
                              kLoopback);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    tcp_port = (*p)->bound()[0].host_port;
    udp_port = (*p)->bound()[1].host_port;
    // A connection still open and a UDP flow when the proxy goes.
    open_client = connect_tcp(0x7f000001, tcp_port);
    send_all(open_client.get(), "x", 1);
    char b;
    EXPECT_EQ(::recv(open_client.get(), &b, 1, 0), 1);
    UniqueFd u = udp_client(0x7f000001, udp_port);
    EXPECT_EQ(udp_roundtrip(u.get(), "y"), "y");
  }
  // The open connection was closed by the proxy.
  EXPECT_EQ(read_to_eof(open_client.get()), "");
  // Nothing listens: a plain bind of the UDP port works, and the TCP port
  // can be bound again as a restarted proxy binds it (its closed connection
  // may sit in TIME_WAIT, which SO_REUSEADDR is for).
  EXPECT_TRUE(bound_socket(SOCK_DGRAM, 0x7f000001, udp_port).valid());
  EXPECT_TRUE(bound_socket(SOCK_STREAM, 0x7f000001, tcp_port, /*reuse=*/true).valid());
  auto again =
      PortProxy::start({PortMapping{"127.0.0.1", tcp_port, server.port(), Proto::kTcp}}, kLoopback);
  EXPECT_TRUE(again.ok()) << again.error().to_string();
}

// Runs `fn` on a thread of its own in a new network namespace with lo up;
// the rest of the process stays where it is. Needs root.
bool in_private_netns(const std::function<void()>& fn) {
  bool ok = false;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) return;
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) return;
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) return;
    ok = true;
    fn();
  });
  t.join();
  return ok;
}

TEST(PortProxy, UdpRepliesComeFromTheAddressTheClientUsed) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a private network namespace";
  // Bound to every address, a client of 127.0.0.2 must get its reply from
  // 127.0.0.2 (its connected socket drops anything else), although the
  // route back to it would pick 127.0.0.1.
  bool ran = in_private_netns([] {
    UdpEcho server;
    auto proxy = start_proxy(server.port(), Proto::kUdp, "");
    ASSERT_TRUE(proxy);
    uint16_t port = proxy->bound()[0].host_port;
    UniqueFd c = udp_client(0x7f000002, port);
    EXPECT_EQ(udp_roundtrip(c.get(), "via .2"), "via .2");
    UniqueFd d = udp_client(0x7f000001, port);
    EXPECT_EQ(udp_roundtrip(d.get(), "via .1"), "via .1");
  });
  EXPECT_TRUE(ran) << "unshare(CLONE_NEWNET) or bringing lo up failed";
}

}  // namespace
}  // namespace vessel::net
