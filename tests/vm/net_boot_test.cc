// The VM's network end to end without the networking layer above it: the
// test makes a bridge and taps itself, in a network namespace of its own,
// boots a container through runtime::ContainerVm with BootOptions' nics and
// interfaces, and checks what a user would: the guest's address, names and
// routes, a ping to the bridge, and a TCP connection from the host to a
// server in the guest. Also /etc/hosts and /etc/hostname in an empty root,
// and the message of a Setup whose MAC matches no device.
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "protocol/protocol.h"
#include "runtime/container_vm.h"
#include "support/cli_runner.h"
#include "sys/fs.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using protocol::MsgType;

constexpr auto kStepTimeout = 60s;

/// What a guest process wrote and how it ended.
struct Finished {
  std::string out, err;
  int code = -1;
  int signal = 0;
};

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

/// A MAC's 6 raw bytes as text ("02:00:0a:7b:00:02"), as QEMU takes it.
std::string mac_text(const std::string& raw) {
  char text[18];
  std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", uint8_t(raw[0]),
                uint8_t(raw[1]), uint8_t(raw[2]), uint8_t(raw[3]), uint8_t(raw[4]),
                uint8_t(raw[5]));
  return text;
}

class NetBootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto reason = vm_unavailable_reason()) GTEST_SKIP() << "VM tests cannot run: " << *reason;
    auto dir = sys::make_temp_dir("/tmp", "vessel-net-boot-test-");
    ASSERT_TRUE(dir.ok()) << dir.error().to_string();
    dir_ = *dir;
  }

  void TearDown() override {
    if (vm_) {
      if (HasFailure())
        std::fprintf(stderr, "--- boot log:\n%s\n", vm_->vm().boot_log_tail(8192).c_str());
      vm_->poweroff(10s);
      vm_.reset();
    }
    if (!dir_.empty()) {
      EXPECT_TRUE(sys::remove_tree(dir_).ok());
    }
  }

  /// The configuration of a container with `rootfs` as its root.
  runtime::ContainerConfig container(const std::string& rootfs, bool read_only) const {
    runtime::ContainerConfig c;
    c.rootfs = rootfs;
    c.read_only = read_only;
    c.kernel = paths().kernel;
    c.initrd = paths().initrd;
    c.cpus = 1;
    c.memory_bytes = 256ull << 20;
    c.accel = "tcg";
    c.hostname = "net-boot";
    c.boot_timeout_seconds = 120;
    return c;
  }

  runtime::BootOptions boot_options() const {
    runtime::BootOptions o;
    o.state_root = dir_;
    o.runtime_dir = dir_;
    return o;
  }

  /// Boots; the error (with the boot log's tail) when it fails.
  Status boot(const runtime::ContainerConfig& c, const runtime::BootOptions& o) {
    auto vm = runtime::ContainerVm::boot(c, o);
    if (!vm.ok()) return vm.error();
    vm_ = std::move(*vm);
    return ok_status();
  }

  /// Starts `argv` on a fresh stream; returns the stream, 0 on failure.
  uint32_t spawn(std::vector<std::string> argv) {
    protocol::Spawn s;
    s.argv = std::move(argv);
    s.env = {"PATH=/bin:/sbin:/usr/bin:/usr/sbin"};
    s.cwd = "/";
    uint32_t stream = next_stream_++;
    Status sent = vm_->agent().send_message(MsgType::kSpawn, stream, s);
    EXPECT_TRUE(sent.ok()) << sent.error().to_string();
    if (!sent.ok()) return 0;
    auto frame = vm_->await(kStepTimeout);
    EXPECT_TRUE(frame.ok()) << "spawn " << s.argv[0] << ": " << frame.error().to_string();
    if (!frame.ok()) return 0;
    EXPECT_EQ(frame->header.type, static_cast<uint16_t>(MsgType::kSpawnResult));
    auto reply = agent::decode_as<protocol::Reply>(*frame);
    EXPECT_TRUE(reply.ok() && reply->errnum == 0)
        << "spawn " << s.argv[0] << ": " << (reply.ok() ? reply->message : "malformed");
    return reply.ok() && reply->errnum == 0 ? stream : 0;
  }

  /// Collects `stream`'s output until its Exit.
  Finished wait_exit(uint32_t stream) {
    Finished f;
    for (;;) {
      auto frame = vm_->await(kStepTimeout);
      if (!frame.ok()) {
        ADD_FAILURE() << "stream " << stream << ": " << frame.error().to_string()
                      << "; output so far: " << f.out << f.err;
        return f;
      }
      if (frame->header.stream != stream) continue;
      std::string data(frame->payload.begin(), frame->payload.end());
      if (frame->header.type == static_cast<uint16_t>(MsgType::kStdout)) f.out += data;
      if (frame->header.type == static_cast<uint16_t>(MsgType::kStderr)) f.err += data;
      if (frame->header.type == static_cast<uint16_t>(MsgType::kExit)) {
        auto e = agent::decode_as<protocol::Exit>(*frame);
        EXPECT_TRUE(e.ok());
        if (e.ok()) {
          f.code = e->code;
          f.signal = e->signal;
        }
        return f;
      }
    }
  }

  Finished run(std::vector<std::string> argv) {
    uint32_t stream = spawn(std::move(argv));
    if (stream == 0) return {};
    return wait_exit(stream);
  }

  std::string dir_;
  std::unique_ptr<runtime::ContainerVm> vm_;
  uint32_t next_stream_ = 1;
};

/// Runs `ip ARGS...` in the test's namespace; a failure fails the test.
void ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/sbin/ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  CliResult r = run_process(argv, {});
  EXPECT_EQ(r.exit_code, 0) << shell_quote(argv) << ": " << r.err;
}

/// A tap named `name` with the vnet header QEMU's virtio-net wants.
UniqueFd open_tap(const std::string& name) {
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd) {
    ADD_FAILURE() << "open /dev/net/tun: " << std::strerror(errno);
    return fd;
  }
  ifreq req{};
  req.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(fd.get(), TUNSETIFF, &req) != 0) {
    ADD_FAILURE() << "TUNSETIFF " << name << ": " << std::strerror(errno);
    return UniqueFd();
  }
  return fd;
}

/// Connects to 10.123.0.2:`port` from the test's namespace, retrying while
/// the guest's server is not listening yet; -1 after `timeout`.
UniqueFd connect_to_guest(uint16_t port, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    // connect(2) gives up after SO_SNDTIMEO (socket(7)).
    timeval tv{5, 0};
    ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(0x0A7B0002);
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return s;
    if (std::chrono::steady_clock::now() >= deadline) {
      ADD_FAILURE() << "connect to 10.123.0.2:" << port << ": " << std::strerror(errno);
      return UniqueFd();
    }
    ::usleep(200 * 1000);
  }
}

TEST_F(NetBootTest, GuestHasItsAddressReachesTheBridgeAndServesTcp) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root: makes a bridge and taps in a private network namespace";
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/net/tun";
  if (::access("/usr/sbin/ip", X_OK) != 0) GTEST_SKIP() << "no /usr/sbin/ip (install iproute2)";
  // Everything below lives in this namespace and goes with the process.
  ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << std::strerror(errno);
  ip({"link", "set", "lo", "up"});
  ip({"link", "add", "vt-br", "type", "bridge"});
  ip({"addr", "add", "10.123.0.1/24", "dev", "vt-br"});
  ip({"link", "set", "vt-br", "up"});
  UniqueFd tap0 = open_tap("vt-tap0");
  UniqueFd tap1 = open_tap("vt-tap1");
  ASSERT_TRUE(tap0 && tap1);
  ip({"link", "set", "vt-tap0", "master", "vt-br", "up"});
  ip({"link", "set", "vt-tap1", "up"});  // on no bridge: only its address matters
  ASSERT_FALSE(HasFailure());

  // QEMU's first device (B, unbridged) is named eth1 and the second (A, on
  // the bridge) eth0: whatever names the kernel gave them in probe order,
  // one of the two orders makes the guest swap them.
  const std::string mac_a("\x02\x00\x0a\x7b\x00\x02", 6);
  const std::string mac_b("\x02\x00\x0a\x7c\x00\x02", 6);
  runtime::BootOptions o = boot_options();
  o.nics = {{tap1.get(), mac_text(mac_b)}, {tap0.get(), mac_text(mac_a)}};
  o.interfaces = {{"eth1", mac_b, 0x0A7C0002, 24, 0}, {"eth0", mac_a, 0x0A7B0002, 24, 1400}};
  o.gateway = 0x0A7B0001;
  Status booted = boot(container(paths().rootfs, true), o);
  ASSERT_TRUE(booted.ok()) << booted.error().to_string();

  Finished links = run({"ip", "-o", "link", "show"});
  EXPECT_EQ(links.code, 0) << links.err;
  std::string eth0, eth1;
  for (size_t pos = 0; pos < links.out.size();) {
    size_t end = links.out.find('\n', pos);
    if (end == std::string::npos) end = links.out.size();
    std::string line = links.out.substr(pos, end - pos);
    if (contains(line, ": eth0:")) eth0 = line;
    if (contains(line, ": eth1:")) eth1 = line;
    pos = end + 1;
  }
  EXPECT_TRUE(contains(eth0, mac_text(mac_a))) << links.out;
  EXPECT_TRUE(contains(eth0, "mtu 1400")) << links.out;
  EXPECT_TRUE(contains(eth0, "UP")) << links.out;
  EXPECT_TRUE(contains(eth1, mac_text(mac_b))) << links.out;
  EXPECT_TRUE(contains(eth1, "mtu 1500")) << links.out;
  EXPECT_TRUE(contains(links.out, ": lo:")) << links.out;
  EXPECT_FALSE(contains(links.out, "vessel-tmp")) << links.out;

  Finished addrs = run({"ip", "-4", "-o", "addr", "show"});
  EXPECT_EQ(addrs.code, 0) << addrs.err;
  EXPECT_TRUE(contains(addrs.out, "inet 10.123.0.2/24 brd 10.123.0.255")) << addrs.out;
  EXPECT_TRUE(contains(addrs.out, "inet 10.124.0.2/24 brd 10.124.0.255")) << addrs.out;
  EXPECT_TRUE(contains(addrs.out, "inet 127.0.0.1/8")) << addrs.out;
  Finished routes = run({"ip", "-4", "route", "show"});
  EXPECT_TRUE(contains(routes.out, "default via 10.123.0.1 dev eth0")) << routes.out;

  Finished hostname = run({"cat", "/etc/hostname"});
  EXPECT_EQ(hostname.out, "net-boot\n");

  Finished ping = run({"ping", "-c", "1", "-W", "10", "10.123.0.1"});
  EXPECT_EQ(ping.code, 0) << ping.out << ping.err;
  EXPECT_TRUE(contains(ping.out, "1 packets received")) << ping.out;

  // A server in the guest, a client in the test's namespace: the bytes the
  // host sends come out of nc's stdout; nc's stdin is /dev/null, so it
  // shuts its side down and the host reads EOF.
  uint32_t server = spawn({"nc", "-l", "-p", "8080"});
  ASSERT_NE(server, 0u);
  UniqueFd client = connect_to_guest(8080, 60s);
  ASSERT_TRUE(client);
  const std::string message = "hello from the host\n";
  ASSERT_EQ(::send(client.get(), message.data(), message.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(message.size()));
  ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
  char buf[64];
  ssize_t n = ::recv(client.get(), buf, sizeof buf, 0);
  EXPECT_EQ(n, 0) << "expected EOF from the guest";
  Finished served = wait_exit(server);
  EXPECT_EQ(served.out, message);
  EXPECT_EQ(served.code, 0) << served.err;
}

TEST_F(NetBootTest, AnEmptyRootGetsHostsAndHostname) {
  // Only busybox: no /etc at all. The guest creates the mount points.
  std::string root = dir_ + "/root";
  ASSERT_TRUE(sys::make_dirs(root + "/bin", 0755).ok());
  std::error_code ec;
  std::filesystem::copy_file(paths().rootfs + "/bin/busybox", root + "/bin/busybox", ec);
  ASSERT_FALSE(ec) << ec.message();
  runtime::ContainerConfig c = container(root, false);
  Status booted = boot(c, boot_options());
  ASSERT_TRUE(booted.ok()) << booted.error().to_string();
  Finished hostname = run({"/bin/busybox", "cat", "/etc/hostname"});
  EXPECT_EQ(hostname.code, 0) << hostname.err;
  EXPECT_EQ(hostname.out, "net-boot\n");
  Finished hosts = run({"/bin/busybox", "cat", "/etc/hosts"});
  EXPECT_EQ(hosts.code, 0) << hosts.err;
  EXPECT_TRUE(contains(hosts.out, "localhost")) << hosts.out;
  EXPECT_TRUE(contains(hosts.out, "net-boot")) << hosts.out;
  // resolv.conf is covered (and so created) when the host has nameservers
  // to give; either way the guest has no more than a file there.
  Finished resolv =
      run({"/bin/busybox", "sh", "-c", "test ! -e /etc/resolv.conf || test -f /etc/resolv.conf"});
  EXPECT_EQ(resolv.code, 0);
  // Only lo without interfaces, and it is up.
  Finished links = run({"/bin/busybox", "ip", "-o", "link", "show"});
  EXPECT_TRUE(contains(links.out, ": lo: <LOOPBACK,UP,LOWER_UP>")) << links.out;
  EXPECT_FALSE(contains(links.out, "eth")) << links.out;
}

TEST_F(NetBootTest, AnInterfaceWithoutItsDeviceFailsTheSetupNamingTheMac) {
  runtime::BootOptions o = boot_options();
  o.interfaces = {{"eth0", std::string("\x02\x00\x0a\x7d\x00\x09", 6), 0x0A7D0009, 24, 0}};
  Status booted = boot(container(paths().rootfs, true), o);
  ASSERT_FALSE(booted.ok());
  EXPECT_TRUE(contains(booted.error().to_string(), "network: no device with MAC 02:00:0a:7d:00:09"))
      << booted.error().to_string();
}

}  // namespace
}  // namespace vessel::test
