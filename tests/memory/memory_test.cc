// Memory that comes back (issue 10): what a container frees and the page
// cache it no longer uses leave the host's memory, measured where the host
// sees them: QEMU's /proc/PID/smaps_rollup.
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "base/strings.h"
#include "containers/container_fixture.h"
#include "sys/process.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
constexpr uint64_t kMiB = 1ull << 20;

class MemoryTest : public ContainerTest {
 protected:
  // The container's QEMU.
  int qemu_pid(const std::string& id) {
    for (const char* name : {"qemu-system-x86_64", "qemu-system-aarch64"}) {
      auto pids = find_process_ids({name}, id.substr(0, 12));
      if (!pids.empty()) return pids.front();
    }
    ADD_FAILURE() << "no QEMU for " << id;
    return -1;
  }
  // The host memory the VM holds: QEMU's private anonymous pages (guest RAM
  // of an image-root container, TCG's code, its heap) and its guest RAM
  // file (a virtio-fs VM's), which virtiofsd may have filled without QEMU touching it.
  uint64_t vm_memory(int pid) {
    auto m = sys::process_memory(pid);
    return (m.ok() ? m->anonymous : 0) + sys::shared_memory_file_bytes(pid);
  }
  uint64_t qemu_rss(int pid) {
    auto m = sys::process_memory(pid);
    return m.ok() ? m->rss : 0;
  }
  CliResult exec(const std::string& id, const std::string& script) {
    return vessel({"exec", id, "sh", "-c", script}, {.timeout = 300s});
  }
};

std::string mib(uint64_t bytes) {
  return std::to_string(bytes / kMiB) + " MiB";
}

TEST_F(MemoryTest, MemoryAContainerFreesGoesBackToTheHostWithinTenSeconds) {
  std::string id = run_detached(
      {"--name", "alloc", "-m", "512m", "--tmpfs", "/t:size=450m", kImage, "sleep", "infinity"});
  ASSERT_FALSE(id.empty());
  int pid = qemu_pid(id);
  ASSERT_GT(pid, 0);
  // Allocated and touched: 400 MiB of a tmpfs file is 400 MiB of guest RAM.
  CliResult fill = exec(id, "dd if=/dev/zero of=/t/f bs=1M count=400 2>/dev/null && echo done");
  ASSERT_EQ(fill.out, "done\n") << fill.err;
  uint64_t peak = qemu_rss(pid);
  ASSERT_GE(peak, 400 * kMiB) << "QEMU's RSS after the guest touched 400 MiB: " << mib(peak);
  ASSERT_EQ(exec(id, "rm /t/f").exit_code, 0);
  auto freed_at = Clock::now();
  uint64_t now = peak;
  bool returned = wait_until(
      [&] {
        now = qemu_rss(pid);
        return peak - std::min(now, peak) >= 360 * kMiB;
      },
      10s);
  EXPECT_TRUE(returned) << "QEMU's RSS went from " << mib(peak) << " to " << mib(now)
                        << " in 10 s after the guest freed 400 MiB";
  std::cout
      << "[ memory ] QEMU RSS " << mib(peak) << " -> " << mib(now) << " in "
      << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - freed_at).count()
      << " ms\n";
  // stats shows the VM's host memory beside the container's own.
  CliResult s = vessel({"stats", "--no-stream", "--format", "json", id});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto j = nlohmann::json::parse(s.out, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 1) << s.out;
  uint64_t shown = j[0].value("VMMemUsage", uint64_t{0});
  EXPECT_GT(shown, 16 * kMiB) << s.out;
  EXPECT_LT(shown, peak) << s.out;
  EXPECT_EQ(vessel({"rm", "-f", id}).exit_code, 0);
  expect_gone(id);
}

// A VM that shares host directories (a --rootfs root) has its guest RAM
// in a file virtiofsd maps too: confined, a file in QEMU's jail, on a tmpfs
// with huge pages (architecture.md, "Guest RAM"). Its pages are huge where
// the host's kernel has transparent huge pages, and what the guest frees
// still goes back (a punched hole in the file).
TEST_F(MemoryTest, AVirtioFsVmsGuestRamIsInHugePagesAndStillGoesBack) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: only a confined QEMU has the jail's tmpfs";
  std::string id = run_detached({"--name", "fsram", "-m", "512m", "--network", "none", "--tmpfs",
                                 "/t:size=300m", "--rootfs", paths().rootfs, "sleep", "infinity"});
  ASSERT_FALSE(id.empty());
  int pid = qemu_pid(id);
  ASSERT_GT(pid, 0);
  CliResult fill = exec(id, "dd if=/dev/zero of=/t/f bs=1M count=256 2>/dev/null && echo done");
  ASSERT_EQ(fill.out, "done\n") << fill.err;
  uint64_t peak = sys::shared_memory_file_bytes(pid);
  EXPECT_GE(peak, 256 * kMiB) << "QEMU's guest RAM file after 256 MiB written: " << mib(peak);
  // The mapping: the unlinked file QEMU made in its jail, mapped with huge
  // pages (PMDs) when the host has them.
  std::ifstream smaps("/proc/" + std::to_string(pid) + "/smaps");
  std::string line;
  bool in_ram = false, found = false;
  uint64_t pmd_kb = 0;
  while (std::getline(smaps, line)) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
        line.find('-') != std::string::npos && line.find(' ') > line.find('-')) {
      in_ram = line.find("/ram/qemu_back_mem") != std::string::npos;
      found = found || in_ram;
    } else if (in_ram && line.starts_with("ShmemPmdMapped:")) {
      pmd_kb += std::stoull(line.substr(15));
    }
  }
  EXPECT_TRUE(found) << "no /ram/qemu_back_mem mapping in QEMU's smaps";
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
  std::string setting;
  std::getline(thp, setting);
  bool huge_pages = thp && setting.find("[deny]") == std::string::npos &&
                    setting.find("[force]") == std::string::npos;
  if (huge_pages) {
    EXPECT_GE(pmd_kb * 1024, 128 * kMiB) << "guest RAM mapped with huge pages: " << pmd_kb << " kB";
  }
  ASSERT_EQ(exec(id, "rm /t/f").exit_code, 0);
  uint64_t now = peak;
  bool returned = wait_until(
      [&] {
        now = sys::shared_memory_file_bytes(pid);
        return peak - std::min(now, peak) >= 200 * kMiB;
      },
      10s);
  EXPECT_TRUE(returned) << "guest RAM file went from " << mib(peak) << " to " << mib(now)
                        << " in 10 s after the guest freed 256 MiB";
  EXPECT_EQ(vessel({"rm", "-f", id}).exit_code, 0);
  expect_gone(id);
}

// Page cache read once, then idle: with --memory-reclaim auto (the default)
// the guest gives it up and the host gets it back; with off it stays.
TEST_F(MemoryTest, IdlePageCacheGoesBackWithAutoAndStaysWithOff) {
  std::string with = run_detached({"--name", "auto", "-m", "512m", kImage, "sleep", "infinity"});
  std::string without = run_detached(
      {"--name", "off", "-m", "512m", "--memory-reclaim", "off", kImage, "sleep", "infinity"});
  ASSERT_FALSE(with.empty());
  ASSERT_FALSE(without.empty());
  // A 200 MiB file on the container's disk, out of its cache, read once.
  const std::string read_once =
      "dd if=/dev/zero of=/big bs=1M count=200 2>/dev/null && sync && "
      "echo 3 > /proc/sys/vm/drop_caches && cat /big > /dev/null && echo read";
  int pid_with = qemu_pid(with), pid_without = qemu_pid(without);
  ASSERT_GT(pid_with, 0);
  ASSERT_GT(pid_without, 0);
  uint64_t base_with = vm_memory(pid_with), base_without = vm_memory(pid_without);
  for (const auto& id : {with, without}) {
    CliResult r = exec(id, read_once);
    ASSERT_EQ(r.out, "read\n") << r.err;
  }
  auto read_at = Clock::now();
  uint64_t peak_with = vm_memory(pid_with), peak_without = vm_memory(pid_without);
  ASSERT_GE(peak_with, base_with + 150 * kMiB)
      << "reading 200 MiB took the VM from " << mib(base_with) << " to " << mib(peak_with);
  ASSERT_GE(peak_without, base_without + 150 * kMiB)
      << "reading 200 MiB took the VM from " << mib(base_without) << " to " << mib(peak_without);
  uint64_t now_with = peak_with;
  bool returned = wait_until(
      [&] {
        now_with = vm_memory(pid_with);
        return peak_with - std::min(now_with, peak_with) >= 150 * kMiB;
      },
      30s);
  EXPECT_TRUE(returned) << "with auto, the VM kept " << mib(now_with) << " of its peak "
                        << mib(peak_with) << " 30 s after the read";
  // Off: the cache stays (the same 30 s for both).
  std::this_thread::sleep_until(read_at + 30s);
  uint64_t now_without = vm_memory(pid_without);
  EXPECT_GE(now_without + 50 * kMiB, peak_without)
      << "with off, the VM went from " << mib(peak_without) << " to " << mib(now_without);
  std::cout << "[ memory ] auto: " << mib(peak_with) << " -> " << mib(now_with)
            << "; off: " << mib(peak_without) << " -> " << mib(now_without) << "\n";
  CliResult cached = exec(without, "grep '^file ' /sys/fs/cgroup/memory.stat");
  EXPECT_EQ(cached.exit_code, 0) << cached.err;
  EXPECT_EQ(vessel({"rm", "-f", with, without}).exit_code, 0);
  expect_gone(with);
  expect_gone(without);
}

TEST_F(MemoryTest, BadMemoryReclaimValueIsRefused) {
  CliResult r = vessel({"run", "--rm", "--memory-reclaim", "sometimes", kImage, "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_TRUE(contains(r.err, "invalid --memory-reclaim 'sometimes' (expected auto or off)"))
      << r.err;
}

}  // namespace
}  // namespace vessel::test
