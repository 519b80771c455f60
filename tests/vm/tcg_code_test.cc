// Under TCG, a guest that execs code the page cache just read over
// virtio-fs must run that code, never a stale translation of what the page
// held before. virtiofsd writes guest RAM behind QEMU's back, so QEMU does
// not drop its translations of the page; the guest kernel zeroing every
// page it hands out (init_on_alloc=1, src/vmm/qemu/machine_x86_64.cc) is
// the CPU write that does. Without it this loop crashed about 2 times in
// 1000 rounds with QEMU 7.2 (and busybox sh died of SIGSEGV about once in
// 500 test runs). This test runs without retries.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "support/cli_runner.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

using TcgCodeTest = VmTest;

TEST_F(TcgCodeTest, TwoThousandExecsFromFreshlyReadPagesNeverCrash) {
  // A root with two different static programs beside busybox: vessel-init
  // (it prints its usage and exits 2 outside PID 1) and busybox.
  std::string root = scratch_dir() + "/root";
  fs::copy(paths().rootfs, root, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  fs::create_directories(root + "/x");
  fs::create_directories(root + "/y");
  fs::copy_file(root + "/bin/busybox", root + "/x/busybox");
  fs::copy_file(fs::path(paths().vessel).parent_path() / "vessel-init", root + "/y/init");
  // Each round drops the guest's caches, so both programs are read again
  // over virtio-fs into pages the other one's code may just have left.
  const std::string loop =
      "i=0; f=0; while [ $i -lt 1000 ]; do "
      "echo 3 > /proc/sys/vm/drop_caches; "
      "/x/busybox true || { f=$((f+1)); echo \"round $i: busybox $?\"; }; "
      "/y/init >/dev/null 2>&1; r=$?; [ $r = 2 ] || { f=$((f+1)); echo \"round $i: init $r\"; }; "
      "i=$((i+1)); done; echo \"rounds=$i failures=$f\"";
  CliResult r = run({"--rootfs", root, "--network", "none", "sh", "-c", loop}, {.timeout = 840s});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "rounds=1000 failures=0\n");
}

}  // namespace
}  // namespace vessel::test
