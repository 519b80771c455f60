// The vmm layer on its own: QemuVmm boots the real kernel and vessel-init,
// answers QMP, and leaves nothing behind when stopped or destroyed.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "protocol/protocol.h"
#include "support/cli_runner.h"
#include "sys/fs.h"
#include "sys/process.h"
#include "vmm/qemu_args.h"
#include "vmm/qemu_vmm.h"
#include "vmm/qmp.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;

class VmmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!sys::find_program("qemu-system-x86_64")) {
      GTEST_SKIP() << "qemu-system-x86_64 not in PATH";
    }
    if (::access(paths().kernel.c_str(), R_OK) != 0 ||
        ::access(paths().initrd.c_str(), R_OK) != 0) {
      GTEST_SKIP() << "guest kernel or initramfs missing (build them: scripts/setup.sh)";
    }
    auto dir = sys::make_temp_dir("/tmp", "vessel-vmm-test-");
    ASSERT_TRUE(dir.ok());
    dir_ = *dir;
    config_.kernel = paths().kernel;
    config_.initrd = paths().initrd;
    config_.cpus = 1;
    config_.memory_bytes = 128ull << 20;
    config_.accel = vmm::Accel::kTcg;
    config_.serial_ports = {std::string(protocol::kPortName)};
    config_.runtime_dir = dir_;
  }
  void TearDown() override {
    if (!dir_.empty()) {
      EXPECT_TRUE(sys::remove_tree(dir_).ok());
    }
  }

  // Waits until the guest's Hello frame arrives on the agent port.
  bool wait_for_hello(vmm::VmInstance& vm) {
    int fd = vm.port_fd(protocol::kPortName);
    uint8_t header[protocol::kHeaderSize];
    size_t got = 0;
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (got < sizeof header && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) continue;
      ssize_t n = ::read(fd, header + got, sizeof header - got);
      if (n <= 0) return false;
      got += static_cast<size_t>(n);
    }
    auto h = protocol::decode_header(header);
    return got == sizeof header && h && h->type == static_cast<uint16_t>(protocol::MsgType::kHello);
  }

  std::string dir_;
  vmm::VmConfig config_;
};

TEST_F(VmmTest, BootsReportsStatusAndStops) {
  vmm::QemuVmm qemu;
  auto vm = qemu.start(config_);
  ASSERT_TRUE(vm.ok()) << vm.error().to_string();
  ASSERT_TRUE(wait_for_hello(**vm)) << (*vm)->boot_log_tail(4096);
  auto status = (*vm)->status();
  ASSERT_TRUE(status.ok()) << status.error().to_string();
  EXPECT_EQ(*status, "running");
  // No power-off request: stop() must force it (QMP quit, then SIGKILL).
  ASSERT_TRUE((*vm)->stop(0ms).ok());
  EXPECT_FALSE((*vm)->running());
  EXPECT_EQ(*(*vm)->status(), "shutdown");
}

TEST_F(VmmTest, DestructionKillsQemu) {
  vmm::QemuVmm qemu;
  auto vm = qemu.start(config_);
  ASSERT_TRUE(vm.ok()) << vm.error().to_string();
  int pidfd = ::fcntl((*vm)->exit_fd(), F_DUPFD_CLOEXEC, 3);
  ASSERT_GE(pidfd, 0);
  vm->reset();
  pollfd p{pidfd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 5000), 1) << "QEMU still running after its VmInstance was destroyed";
  ::close(pidfd);
}

TEST_F(VmmTest, MissingKernelIsAClearError) {
  config_.kernel = dir_ + "/no-such-kernel";
  vmm::QemuVmm qemu;
  auto vm = qemu.start(config_);
  ASSERT_FALSE(vm.ok());
  EXPECT_EQ(vm.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(vm.error().to_string().find("no-such-kernel"), std::string::npos);
}

// On a KVM host a VM without shares runs on Debian's microvm-only build of
// QEMU (MachineSpec::lean_binary). It must take every option Vessel gives
// such a VM: its machine, CPU, disks (a qcow2 over a raw base, through fd
// sets), the agent's port, the balloon, QMP and the seccomp sandbox. The
// guest is not started (-S): this machine's /dev/kvm cannot run a kernel.
// Not here: a NIC, whose tap would be the host's (virtio-net-device is in
// the build: `qemu-system-x86_64-microvm -device help`).
TEST_F(VmmTest, TheLeanQemuTakesEveryOptionOfAKvmVmWithoutShares) {
  if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "no usable /dev/kvm";
  config_.accel = vmm::Accel::kKvm;
  config_.cpus = 2;
  config_.balloon = true;
  std::string base = dir_ + "/base.raw", top = dir_ + "/top.qcow2";
  auto qemu_img = sys::find_program("qemu-img");
  if (!qemu_img) GTEST_SKIP() << "qemu-img not in PATH";
  ASSERT_TRUE(sys::output_of({*qemu_img, "create", "-q", "-f", "raw", base, "16M"}).ok());
  ASSERT_TRUE(sys::output_of({*qemu_img, "create", "-q", "-f", "qcow2", top, "16M"}).ok());
  config_.disks = {vmm::Disk{top, "root", false, base}};
  auto bin = vmm::find_qemu(config_);
  ASSERT_TRUE(bin.ok()) << bin.error().to_string();
  if (bin->size() < 8 || bin->substr(bin->size() - 8) != "-microvm")
    GTEST_SKIP() << "no qemu-system-x86_64-microvm beside the full QEMU (" << *bin << ")";
  vmm::MachineSpec with_shares_spec = [&] {
    vmm::VmConfig c = config_;
    c.shared_dirs = {vmm::SharedDir{"root", dir_}};
    return vmm::machine_spec(c);
  }();
  EXPECT_TRUE(with_shares_spec.lean_binary.empty()) << "virtio-fs needs the full build";

  int port[2], qmp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, port), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qmp), 0);
  UniqueFd port_host(port[0]), port_qemu(port[1]), qmp_host(qmp[0]), qmp_qemu(qmp[1]);
  auto ro = sys::open_fd(base, O_RDONLY);
  auto rw = sys::open_fd(top, O_RDWR);
  auto top_ro = sys::open_fd(top, O_RDONLY);
  ASSERT_TRUE(ro.ok() && rw.ok() && top_ro.ok());
  vmm::QemuLaunch l;
  l.port_fds = {3};
  l.qmp_fd = 4;
  l.disk_fds = {{5, 6}};
  l.backing_fds = {{7}};
  l.sandbox = true;
  std::vector<std::string> args = vmm::qemu_command_line(config_, l);
  args[0] = *bin;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    // This machine's /dev/kvm refuses the IA32_ARCH_CAPABILITIES MSR, and
    // QEMU asserts on it when it resets the vCPUs; not so on a real host.
    if (args[i] == "-cpu" && args[i + 1] == "host") args[i + 1] = "host,-arch-capabilities";
  }
  args.push_back("-S");
  sys::SpawnOptions o;
  o.argv = args;
  std::string log = dir_ + "/qemu.log";
  auto log_fd = sys::open_fd(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_TRUE(log_fd.ok()) << log_fd.error().to_string();
  o.fds = {{1, log_fd->get()}, {2, log_fd->get()}, {3, port_qemu.get()}, {4, qmp_qemu.get()},
           {5, rw->get()},     {6, top_ro->get()}, {7, ro->get()}};
  auto qemu = sys::Process::spawn(o);
  ASSERT_TRUE(qemu.ok()) << qemu.error().to_string();
  vmm::QmpClient client(std::move(qmp_host));
  auto status = client.execute("query-status");
  ASSERT_TRUE(status.ok()) << status.error().to_string() << "\n" << *sys::read_file(log);
  EXPECT_EQ(status->value("status", ""), "prelaunch");
  // The NIC's device is in the build; virtio-fs's is not (hence the rule).
  auto types = client.execute("qom-list-types", {{"implements", "virtio-device"}});
  ASSERT_TRUE(types.ok()) << types.error().to_string();
  EXPECT_NE(types->dump().find("virtio-net-device"), std::string::npos);
  EXPECT_EQ(types->dump().find("vhost-user-fs-device"), std::string::npos);
  (void)client.execute("quit");
}

}  // namespace
}  // namespace vessel::test
