// The vmm layer on its own: QemuVmm boots the real kernel and vessel-init,
// answers QMP, and leaves nothing behind when stopped or destroyed.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "protocol/protocol.h"
#include "support/cli_runner.h"
#include "sys/fs.h"
#include "sys/process.h"
#include "vmm/qemu_vmm.h"

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

}  // namespace
}  // namespace vessel::test
