#include "net/network_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <future>
#include <thread>

#include "base/strings.h"
#include "sys/fs.h"
#include "sys/process.h"

namespace vessel::test {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::optional<sockaddr_in> socket_address(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1) return std::nullopt;
  return a;
}

// A socket made in network namespace `netns_fd` (-1: the caller's). The
// calling thread enters the namespace for the socket() call only.
UniqueFd socket_in(int netns_fd, int type) {
  if (netns_fd < 0) return UniqueFd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  UniqueFd self(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!self || ::setns(netns_fd, CLONE_NEWNET) != 0) return {};
  UniqueFd s(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  // Staying in the peer namespace would send everything after this astray.
  if (::setns(self.get(), CLONE_NEWNET) != 0) std::abort();
  return s;
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits for `events` on `fd` until `deadline`; whether they came.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

// Connects a non-blocking socket within the deadline.
bool connect_by(int fd, const sockaddr_in& to, Clock::time_point deadline) {
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0) return true;
  if (errno != EINPROGRESS) return false;
  if (!wait_for(fd, POLLOUT, deadline)) return false;
  int err = 0;
  socklen_t len = sizeof err;
  return ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
}

// Reads until EOF or the deadline.
std::string read_all(int fd, Clock::time_point deadline, bool* eof = nullptr) {
  std::string out;
  char buf[4096];
  while (wait_for(fd, POLLIN, deadline)) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      if (eof) *eof = n == 0;
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

std::string http_server(const std::string& marker) {
  return "mkdir -p /www && echo " + marker +
         " > /www/index.html && echo serving && exec httpd -f -p 80 -h /www";
}

std::string tap_name(const std::string& id, int index) {
  return "vt" + id.substr(0, 12) + std::to_string(index);
}

std::optional<std::string> http_get(const std::string& ip, int port,
                                    std::chrono::milliseconds timeout, int netns_fd) {
  auto deadline = Clock::now() + timeout;
  auto to = socket_address(ip, port);
  if (!to) return std::nullopt;
  UniqueFd s = socket_in(netns_fd, SOCK_STREAM | SOCK_NONBLOCK);
  if (!s || !connect_by(s.get(), *to, deadline)) return std::nullopt;
  std::string request = "GET / HTTP/1.0\r\nHost: " + ip + "\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    if (!wait_for(s.get(), POLLOUT, deadline)) return std::nullopt;
    ssize_t n = ::send(s.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return std::nullopt;
    sent += static_cast<size_t>(n);
  }
  bool eof = false;
  std::string response = read_all(s.get(), deadline, &eof);
  size_t head_end = response.find("\r\n\r\n");
  if (!eof || head_end == std::string::npos) return std::nullopt;
  std::string_view status(response.data(), response.find("\r\n"));
  if (!starts_with(status, "HTTP/1.") || !contains(status, " 200")) return std::nullopt;
  return response.substr(head_end + 4);
}

std::optional<std::string> http_get_eventually(const std::string& ip, int port,
                                               std::chrono::seconds deadline, int netns_fd) {
  auto end = Clock::now() + deadline;
  while (true) {
    if (auto body = http_get(ip, port, 5s, netns_fd)) return body;
    if (Clock::now() >= end) return std::nullopt;
    std::this_thread::sleep_for(500ms);
  }
}

std::optional<std::string> udp_exchange(const std::string& ip, int port, const std::string& payload,
                                        std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto to = socket_address(ip, port);
  if (!to) return std::nullopt;
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s || ::connect(s.get(), reinterpret_cast<const sockaddr*>(&*to), sizeof *to) != 0)
    return std::nullopt;
  while (Clock::now() < deadline) {
    // Lost while the server is not up yet (or refused: ICMP comes back as
    // an error on the connected socket): send again.
    (void)::send(s.get(), payload.data(), payload.size(), 0);
    auto round = std::min(deadline, Clock::now() + 1s);
    while (wait_for(s.get(), POLLIN, round)) {
      char buf[2048];
      ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
      if (n >= 0) return std::string(buf, static_cast<size_t>(n));
      if (errno != EINTR && errno != EAGAIN && errno != ECONNREFUSED) return std::nullopt;
    }
  }
  return std::nullopt;
}

UniqueFd listen_tcp(const std::string& ip, int port, int netns_fd) {
  auto at = socket_address(ip, port);
  if (!at) return {};
  UniqueFd s = socket_in(netns_fd, SOCK_STREAM);
  int one = 1;
  if (!s || ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::bind(s.get(), reinterpret_cast<const sockaddr*>(&*at), sizeof *at) != 0 ||
      ::listen(s.get(), 16) != 0)
    return {};
  return s;
}

std::optional<Accepted> accept_one(int listener, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  if (!wait_for(listener, POLLIN, deadline)) return std::nullopt;
  sockaddr_in from{};
  socklen_t len = sizeof from;
  UniqueFd c(::accept4(listener, reinterpret_cast<sockaddr*>(&from), &len, SOCK_CLOEXEC));
  if (!c) return std::nullopt;
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &from.sin_addr, text, sizeof text);
  Accepted a{text, ""};
  a.data = read_all(c.get(), Clock::now() + 30s);
  return a;
}

std::vector<std::string> link_names(const std::string& ip_o_link) {
  std::vector<std::string> names;
  for (const auto& line : lines(ip_o_link)) {
    // "12: vpeer0@if11: <BROADCAST,...> ..."
    size_t a = line.find(": ");
    if (a == std::string::npos) continue;
    size_t b = line.find(':', a + 2);
    std::string name = line.substr(a + 2, b == std::string::npos ? std::string::npos : b - a - 2);
    names.push_back(name.substr(0, name.find('@')));
  }
  return names;
}

bool in_subnet(const std::string& ip, const std::string& cidr) {
  size_t slash = cidr.find('/');
  if (slash == std::string::npos) return false;
  auto bits = parse_u64(cidr.substr(slash + 1));
  in_addr a{}, net{};
  if (!bits || *bits > 32 || ::inet_pton(AF_INET, ip.c_str(), &a) != 1 ||
      ::inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &net) != 1)
    return false;
  uint32_t mask = *bits == 0 ? 0 : ~uint32_t{0} << (32 - *bits);
  return (ntohl(a.s_addr) & mask) == (ntohl(net.s_addr) & mask);
}

void NetworkTest::SetUp() {
  if (::geteuid() != 0)
    GTEST_SKIP() << "network tests need root: they make a network namespace, bridges and taps";
  for (const char* tool : {"ip", "nft", "nsenter"})
    if (!sys::find_program(tool))
      GTEST_SKIP() << tool << " is not in PATH (install iproute2, nftables, util-linux)";
  ContainerTest::SetUp();
  if (IsSkipped() || HasFatalFailure()) return;
  // gtest_discover_tests runs each test in a process of its own; run by
  // hand, each test still gets a fresh namespace (the last one goes with
  // what TearDown ends).
  ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << std::strerror(errno);
  unshared_ = true;
  struct stat st;
  ASSERT_EQ(::stat("/proc/thread-self/ns/net", &st), 0);
  netns_inode_ = st.st_ino;
  CliResult lo = host({"ip", "link", "set", "lo", "up"});
  ASSERT_EQ(lo.exit_code, 0) << lo.err;
}

void NetworkTest::TearDown() {
  if (unshared_) {
    // As a user would: containers, then networks. Then whatever the CLI
    // started and left in the namespace (dnsmasq, say); QEMU, virtiofsd and
    // monitors are left to VmTest's leak check, which reports them.
    vessel({"rm", "-f", "--all"}, {.timeout = 120s});
    vessel({"network", "prune", "-f"}, {.timeout = 60s});
    kill_namespace_processes(/*spare_vm_processes=*/true);
  }
  ContainerTest::TearDown();
  if (unshared_) kill_namespace_processes(/*spare_vm_processes=*/false);
  if (peer_pid_ > 0) {
    ::kill(peer_pid_, SIGKILL);
    while (::waitpid(peer_pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    peer_pid_ = -1;
  }
  peer_netns_.reset();
}

CliResult NetworkTest::host(const std::vector<std::string>& argv) {
  auto program = sys::find_program(argv.at(0));
  if (!program) {
    ADD_FAILURE() << argv[0] << " is not in PATH";
    return {};
  }
  std::vector<std::string> full = argv;
  full[0] = *program;
  return run_process(full, {.timeout = 60s});
}

std::vector<std::string> NetworkTest::links() {
  CliResult r = host({"ip", "-o", "link", "show"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return link_names(r.out);
}

std::string NetworkTest::ruleset() {
  CliResult r = host({"nft", "-s", "list", "ruleset"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

void NetworkTest::make_peer() {
  ASSERT_LT(peer_pid_, 0) << "make_peer() called twice";
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << std::strerror(errno);
  if (pid == 0) {
    // Only async-signal-safe calls between fork and _exit.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    char ok = ::unshare(CLONE_NEWNET) == 0 ? 1 : 0;
    (void)::write(ready[1], &ok, 1);
    if (!ok) ::_exit(1);
    while (true)
      ::pause();
  }
  peer_pid_ = pid;
  ::close(ready[1]);
  char ok = 0;
  ssize_t n;
  while ((n = ::read(ready[0], &ok, 1)) < 0 && errno == EINTR) {
  }
  ::close(ready[0]);
  ASSERT_TRUE(n == 1 && ok) << "the peer could not unshare its network namespace";
  std::string ns = "/proc/" + std::to_string(pid) + "/ns/net";
  peer_netns_.reset(::open(ns.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(peer_netns_.valid()) << ns << ": " << std::strerror(errno);

  auto ok_run = [](const CliResult& r, const std::string& what) {
    EXPECT_EQ(r.exit_code, 0) << what << ": " << r.err;
    return r.exit_code == 0;
  };
  ASSERT_TRUE(
      ok_run(host({"ip", "link", "add", kOurVeth, "type", "veth", "peer", "name", "vpeer1"}),
             "ip link add"));
  ASSERT_TRUE(ok_run(host({"ip", "link", "set", "vpeer1", "netns", std::to_string(pid)}),
                     "ip link set vpeer1 netns"));
  ASSERT_TRUE(ok_run(host({"ip", "addr", "add", std::string(kOurAddress) + "/24", "dev", kOurVeth}),
                     "ip addr add (ours)"));
  ASSERT_TRUE(ok_run(host({"ip", "link", "set", kOurVeth, "up"}), "ip link set up (ours)"));
  ASSERT_TRUE(ok_run(in_peer({"ip", "link", "set", "lo", "up"}), "peer: lo up"));
  ASSERT_TRUE(
      ok_run(in_peer({"ip", "addr", "add", std::string(kPeerAddress) + "/24", "dev", "vpeer1"}),
             "peer: ip addr add"));
  ASSERT_TRUE(ok_run(in_peer({"ip", "link", "set", "vpeer1", "up"}), "peer: link up"));
  // The pair is usable once both ends are up: the peer answers a connect.
  UniqueFd probe = listen_tcp(kPeerAddress, 7, peer_netns());
  ASSERT_TRUE(probe.valid()) << "listen in the peer: " << std::strerror(errno);
  bool up = wait_until(
      [&] {
        UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        auto to = socket_address(kPeerAddress, 7);
        return connect_by(c.get(), *to, Clock::now() + 1s);
      },
      20s);
  ASSERT_TRUE(up) << "the veth pair to the peer namespace does not carry traffic";
}

CliResult NetworkTest::in_peer(const std::vector<std::string>& argv) {
  EXPECT_GT(peer_pid_, 0) << "no peer: call make_peer() first";
  auto nsenter = sys::find_program("nsenter");
  auto program = sys::find_program(argv.at(0));
  if (!nsenter || !program) {
    ADD_FAILURE() << "nsenter or " << argv[0] << " is not in PATH";
    return {};
  }
  std::vector<std::string> full{*nsenter, "--net=/proc/" + std::to_string(peer_pid_) + "/ns/net",
                                "--", *program};
  full.insert(full.end(), argv.begin() + 1, argv.end());
  return run_process(full, {.timeout = 60s});
}

json NetworkTest::network_inspect(const std::string& name) {
  CliResult r = vessel({"network", "inspect", name});
  EXPECT_EQ(r.exit_code, 0) << "network inspect " << name << ": " << r.err;
  json j = json::parse(r.out, nullptr, false);
  if (r.exit_code != 0 || !j.is_array() || j.size() != 1 || !j[0].is_object()) {
    ADD_FAILURE() << "network inspect " << name << " printed no single object:\n" << r.out;
    return json();
  }
  return j[0];
}

json NetworkTest::network_list() {
  CliResult r = vessel({"network", "ls", "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out, nullptr, false);
  if (!j.is_array()) {
    ADD_FAILURE() << "network ls --format json printed no array:\n" << r.out;
    return json::array();
  }
  return j;
}

std::string NetworkTest::bridge_of(const std::string& name) {
  json j = network_inspect(name);
  const json* bridge = nullptr;
  if (j.is_object() && j.contains("Options") && j["Options"].is_object() &&
      j["Options"].contains("com.docker.network.bridge.name"))
    bridge = &j["Options"]["com.docker.network.bridge.name"];
  if (!bridge || !bridge->is_string() || bridge->get<std::string>().empty()) {
    ADD_FAILURE() << "network inspect " << name
                  << " has no Options.\"com.docker.network.bridge.name\": " << j.dump();
    return "";
  }
  return bridge->get<std::string>();
}

json NetworkTest::endpoint_of(const std::string& ref, const std::string& network) {
  json j = inspect(ref);
  if (!j.is_object() || !j.contains("NetworkSettings") || !j["NetworkSettings"].is_object() ||
      !j["NetworkSettings"].contains("Networks") || !j["NetworkSettings"]["Networks"].is_object() ||
      !j["NetworkSettings"]["Networks"].contains(network))
    return json();
  return j["NetworkSettings"]["Networks"][network];
}

std::string NetworkTest::ip_of(const std::string& ref, const std::string& network) {
  json e = endpoint_of(ref, network);
  if (!e.is_object() || !e.contains("IPAddress") || !e["IPAddress"].is_string()) {
    ADD_FAILURE() << "inspect " << ref << " has no NetworkSettings.Networks." << network
                  << ".IPAddress: " << e.dump();
    return "";
  }
  return e["IPAddress"].get<std::string>();
}

CliResult NetworkTest::sh(const std::string& ref, const std::string& script,
                          std::chrono::seconds timeout) {
  return vessel({"exec", ref, "sh", "-c", script}, {.timeout = timeout});
}

CliResult NetworkTest::fetch(const std::string& ref, const std::string& url, int tries) {
  // busybox wget -T crashes here: the timeout comes from timeout(1).
  std::string script = "i=0; while [ $i -lt " + std::to_string(tries) +
                       " ]; do timeout 5 wget -q -O - '" + url +
                       "' && exit 0; i=$((i + 1)); sleep 1; done; exit 1";
  return sh(ref, script, std::chrono::seconds(tries * 6 + 60));
}

CliResult NetworkTest::fetch_once(const std::string& ref, const std::string& url) {
  return sh(ref, "timeout 5 wget -q -O - '" + url + "'");
}

std::pair<CliResult, std::optional<Accepted>> NetworkTest::send_to_peer(
    const std::string& ref, int listener, int port, const std::string& text,
    std::chrono::milliseconds wait) {
  auto accepted = std::async(std::launch::async, [&] { return accept_one(listener, wait); });
  CliResult r = sh(ref, "echo " + text + " | nc -w 5 " + kPeerAddress + " " + std::to_string(port));
  return {r, accepted.get()};
}

std::vector<std::pair<int, std::vector<std::string>>> NetworkTest::namespace_processes() {
  std::vector<std::pair<int, std::vector<std::string>>> found;
  if (!unshared_) return found;
  DIR* dir = ::opendir("/proc");
  if (!dir) return found;
  while (dirent* e = ::readdir(dir)) {
    auto pid = parse_u64(e->d_name);
    if (!pid || static_cast<pid_t>(*pid) == ::getpid()) continue;
    std::string proc = std::string("/proc/") + e->d_name;
    struct stat st;
    if (::stat((proc + "/ns/net").c_str(), &st) != 0 || st.st_ino != netns_inode_) continue;
    auto cmdline = sys::read_file(proc + "/cmdline", 1 << 16);
    if (!cmdline.ok() || cmdline->empty()) continue;  // gone, or a zombie
    std::vector<std::string> args = split(*cmdline, '\0');
    if (!args.empty() && args.back().empty()) args.pop_back();
    found.emplace_back(static_cast<int>(*pid), std::move(args));
  }
  ::closedir(dir);
  return found;
}

std::vector<std::string> NetworkTest::processes_in_namespace() {
  std::vector<std::string> described;
  for (const auto& [pid, args] : namespace_processes())
    described.push_back("pid " + std::to_string(pid) + ": " + shell_quote(args));
  return described;
}

void NetworkTest::kill_namespace_processes(bool spare_vm_processes) {
  const auto& vm = vm_process_names();
  for (int round = 0; round < 50; ++round) {
    bool any = false;
    for (const auto& [pid, args] : namespace_processes()) {
      std::string prog = args.empty() ? "" : args[0].substr(args[0].rfind('/') + 1);
      if (spare_vm_processes && std::find(vm.begin(), vm.end(), prog) != vm.end()) continue;
      any = true;
      ::kill(pid, SIGKILL);
    }
    if (!any) return;
    std::this_thread::sleep_for(100ms);
  }
}

}  // namespace vessel::test
