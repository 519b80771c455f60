// VM templates (runtime/vm_template.h): the second start of a container
// shape (an image root on its own disk; with shares where QEMU can) makes a template, later
// ones are restored from it (with a network: tests/net/network_test.cc). A restored container must
// be indistinguishable from a booted one: its own disk, the host's clock, its own randomness; a
// damaged template is removed and the container boots.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "container_fixture.h"
#include "sys/fs.h"
#include "sys/process.h"
#include "vmm/vmm.h"

namespace vessel::test {
namespace {

class TemplateTest : public ContainerTest {
 protected:
  std::string templates() const { return state_root() + "/cache/templates"; }

  /// The saved states in the state root's template directory.
  std::vector<std::string> states() const {
    std::vector<std::string> out;
    auto names = sys::list_dir(templates());
    if (!names.ok()) return out;
    for (const auto& n : *names)
      if (n.ends_with(".vmstate")) out.push_back(templates() + "/" + n);
    return out;
  }

  /// `run --rm --network none -m 128m vessel/busybox ARGS...`.
  CliResult run_shape(const std::vector<std::string>& args) {
    std::vector<std::string> all{"run", "--rm", "--network", "none", "-m", kMemory, kImage};
    all.insert(all.end(), args.begin(), args.end());
    return vessel(all);
  }

  /// `--debug run -d --network none -m 128m vessel/busybox ARGS...`: the
  /// monitor logs in monitor.log whether it restored the VM.
  std::string start_shape(const std::vector<std::string>& args) {
    std::vector<std::string> all{"--debug", "run", "-d",    "--network",
                                 "none",    "-m",  kMemory, kImage};
    all.insert(all.end(), args.begin(), args.end());
    CliResult r = vessel(all);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string id(lines(r.out).empty() ? "" : lines(r.out).back());
    EXPECT_TRUE(is_full_id(id)) << r.out;
    return r.exit_code == 0 && is_full_id(id) ? id : "";
  }

  std::string monitor_log(const std::string& id) {
    auto log = sys::read_file(state_root() + "/containers/" + id + "/monitor.log");
    return log.ok() ? *log : "";
  }

  /// Makes the shape's template: a first start marks the shape, the second
  /// makes the template.
  void make_template() {
    for (int i = 0; i < 2; ++i) {
      CliResult r = run_shape({"true"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    ASSERT_EQ(states().size(), 1u) << "no template after two starts of one shape";
  }
};

TEST_F(TemplateTest, RestoredContainersHaveTheHostClockAndTheirOwnRandomness) {
  make_template();
  // Two restored containers at once: each reads the host's time and its own
  // random bytes (VMs restored from one saved state must not share their
  // kernel's random state).
  std::string a = start_shape({"sleep", "60"});
  std::string b = start_shape({"sleep", "60"});
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  for (const std::string& id : {a, b})
    EXPECT_TRUE(contains(monitor_log(id), "VM restored from template")) << monitor_log(id);
  auto sample = [&](const std::string& id) {
    CliResult r =
        vessel({"exec", id, "sh", "-c", "date +%s; head -c 16 /dev/urandom | od -An -tx1"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  std::string sa = sample(a), sb = sample(b);
  auto host_now = static_cast<long>(std::time(nullptr));
  for (const std::string& s : {sa, sb}) {
    auto ls = lines(s);
    ASSERT_EQ(ls.size(), 2u) << s;
    long guest_now = std::stol(ls[0]);
    EXPECT_LE(std::labs(guest_now - host_now), 5)
        << "guest clock " << guest_now << ", host " << host_now;
  }
  EXPECT_NE(lines(sa)[1], lines(sb)[1]) << "two restored containers read the same random bytes";
  EXPECT_EQ(vessel({"rm", "-f", a, b}).exit_code, 0);
}

// Under TCG a restored image-root VM runs without transparent huge pages:
// its saved state is ~21 MiB scattered over ~20 huge pages, which would cost
// 40 MiB of the host's memory per idle container (docs/performance.md).
TEST_F(TemplateTest, ARestoredVmUnderTcgHoldsItsMemoryIn4KiBPages) {
  make_template();
  std::string id = start_shape({"sleep", "60"});
  ASSERT_FALSE(id.empty());
  EXPECT_TRUE(contains(monitor_log(id), "VM restored from template")) << monitor_log(id);
  auto pids = find_process_ids({"qemu-system-x86_64", "qemu-system-aarch64"}, id.substr(0, 12));
  ASSERT_FALSE(pids.empty()) << "no QEMU for " << id;
  std::string proc = "/proc/" + std::to_string(pids.front());
  auto cmdline = sys::read_file(proc + "/cmdline");
  ASSERT_TRUE(cmdline.ok());
  if (!contains(*cmdline, "tcg")) GTEST_SKIP() << "KVM keeps huge pages";
  auto status = sys::read_file(proc + "/status");
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(contains(*status, "THP_enabled:\t0\n")) << *status;
  auto rollup = sys::read_file(proc + "/smaps_rollup");
  ASSERT_TRUE(rollup.ok());
  EXPECT_TRUE(contains(*rollup, "AnonHugePages:         0 kB")) << *rollup;
  EXPECT_EQ(vessel({"rm", "-f", id}).exit_code, 0);
}

TEST_F(TemplateTest, ARestoredContainerKeepsWhatItWroteOnItsOwnDisk) {
  make_template();
  // The second start of the same container is restored too, on the disk the
  // first one wrote.
  std::string id = start_shape({"sh", "-c", "cat /kept 2>/dev/null; echo kept > /kept"});
  ASSERT_FALSE(id.empty());
  EXPECT_TRUE(contains(monitor_log(id), "VM restored from template")) << monitor_log(id);
  ASSERT_EQ(vessel({"wait", id}).exit_code, 0);
  CliResult again = vessel({"start", "-a", id});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "kept\n");
  // Another container of the image starts from the image, not from this disk.
  CliResult other = run_shape({"sh", "-c", "cat /kept 2>/dev/null || echo absent"});
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_EQ(other.out, "absent\n");
  EXPECT_EQ(vessel({"rm", "-f", id}).exit_code, 0);
}

TEST_F(TemplateTest, ADamagedTemplateIsRemovedAndTheContainerBoots) {
  make_template();
  std::string state = states().front();
  ASSERT_EQ(::truncate(state.c_str(), 4096), 0);
  std::string id = start_shape({"echo", "booted"});
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(vessel({"wait", id}).exit_code, 0);
  EXPECT_EQ(logs_of(id), "booted\n");
  EXPECT_TRUE(contains(monitor_log(id), "booting instead")) << monitor_log(id);
  EXPECT_EQ(vessel({"rm", "-f", id}).exit_code, 0);
  struct stat st;
  EXPECT_NE(::stat(state.c_str(), &st), 0) << "the damaged template is still there";
}

/// Whether this host's QEMU restores VMs with shares (QEMU 8.2 and later;
/// not Debian 12's 7.2).
bool qemu_restores_shares() {
  vmm::VmConfig c;
  return vmm::restores_with_shares(c);
}

TEST_F(TemplateTest, ContainersWithSharesAreRestoredWhereQemuCanElseTheyBoot) {
  // A virtio-fs root and a bind mount, written on the host before and in
  // the container: the restored guest must see both directories' contents,
  // live, through the devices it binds after the restore.
  std::string data = scratch_dir() + "/data";
  ASSERT_TRUE(sys::make_dirs(data, 0755).ok());
  ASSERT_TRUE(sys::write_file_atomic(data + "/host", "from the host\n").ok());
  std::vector<std::string> shape{"--network", "none", "-m", kMemory, "-v", data + ":/data"};
  for (int i = 0; i < 2; ++i) {
    std::vector<std::string> args = shape;
    args.push_back("true");
    CliResult r = run_busybox(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  bool can = qemu_restores_shares();
  EXPECT_EQ(states().size(), can ? 1u : 0u);
  auto names = sys::list_dir(templates());
  bool marked_boot = false;
  for (const auto& n : names.ok() ? *names : std::vector<std::string>{})
    marked_boot = marked_boot || n.ends_with(".boot");
  EXPECT_EQ(marked_boot, !can) << "a shape this QEMU cannot restore is marked to boot";

  std::vector<std::string> args{"--debug", "run", "-d", "--rootfs", paths().rootfs};
  args.insert(args.end(), shape.begin(), shape.end());
  args.insert(args.end(), {"sh", "-c",
                           "cat /data/host; echo from the guest > /data/guest; "
                           "ls /bin/busybox; sleep 60"});
  CliResult r = vessel(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string id = lines(r.out).empty() ? "" : lines(r.out).back();
  ASSERT_TRUE(is_full_id(id)) << r.out;
  EXPECT_EQ(contains(monitor_log(id), "VM restored from template"), can) << monitor_log(id);
  std::string out;
  for (int i = 0; i < 100 && !contains(out, "/bin/busybox"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    out = logs_of(id);
  }
  EXPECT_EQ(out, "from the host\n/bin/busybox\n");
  if (can) {
    // Its guest RAM is a shared memory file (virtiofsd maps it too). A
    // restore allocates the template's pages in it, not every page: QEMU's
    // stream format read all of them (architecture.md, "The state's
    // format: mapped-ram"), 192 MiB here; the template holds ~30.
    auto pids = find_process_ids({"qemu-system-x86_64", "qemu-system-aarch64"}, id.substr(0, 12));
    ASSERT_FALSE(pids.empty()) << "no QEMU for " << id;
    uint64_t ram = sys::shared_memory_file_bytes(pids.front());
    EXPECT_GT(ram, 0u) << "no guest RAM file";
    EXPECT_LT(ram, 96ull << 20) << "a restored VM's guest RAM file holds " << (ram >> 20) << " MiB";
    // Under TCG in 4 KiB pages: the template's pages are sparse, and 2 MiB
    // ones would hold twice as much (architecture.md, "Guest RAM").
    std::string proc = "/proc/" + std::to_string(pids.front());
    auto cmdline = sys::read_file(proc + "/cmdline");
    auto rollup = sys::read_file(proc + "/smaps_rollup");
    ASSERT_TRUE(cmdline.ok() && rollup.ok());
    if (contains(*cmdline, "tcg")) {
      EXPECT_TRUE(contains(*rollup, "ShmemPmdMapped:        0 kB")) << *rollup;
    }
  }
  auto guest = sys::read_file(data + "/guest");
  EXPECT_TRUE(guest.ok() && *guest == "from the guest\n");
  // The share is live both ways after the restore.
  ASSERT_TRUE(sys::write_file_atomic(data + "/later", "later\n").ok());
  CliResult later = vessel({"exec", id, "cat", "/data/later"});
  EXPECT_EQ(later.exit_code, 0) << later.err;
  EXPECT_EQ(later.out, "later\n");
  EXPECT_EQ(vessel({"rm", "-f", id}).exit_code, 0);
}

}  // namespace
}  // namespace vessel::test
