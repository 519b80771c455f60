// The VMM runs confined (issue 13; docs/security.md): QEMU as an
// unprivileged uid without capabilities, under seccomp, in namespaces and
// a jail of its own; virtiofsd in its sandbox; the VM's host processes in
// a host cgroup with limits that go away with the container. And the
// container still works.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "base/strings.h"
#include "containers/container_fixture.h"
#include "sys/fs.h"
#include "vmm/qemu_vmm.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;

class ConfinementTest : public ContainerTest {
 protected:
  // The field `name` of /proc/PID/status ("" if absent).
  static std::string status_field(int pid, const std::string& name) {
    auto text = sys::read_file("/proc/" + std::to_string(pid) + "/status", 1 << 16);
    if (!text.ok()) return "";
    for (std::string_view line : split(*text, '\n')) {
      if (starts_with(line, name + ":")) return std::string(trim(line.substr(name.size() + 1)));
    }
    return "";
  }
  static std::string link(const std::string& path) {
    char buf[256];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  // The host cgroup holding the memory controller, from a /proc/PID/cgroup
  // text: v2's single line, or v1's memory line ("" if neither).
  static std::string memory_cgroup_dir(const std::string& proc_cgroup) {
    std::string dir;
    for (std::string_view line : split(proc_cgroup, '\n')) {
      auto parts = split(line, ':');
      if (parts.size() < 3) continue;
      std::string path(line.substr(parts[0].size() + parts[1].size() + 2));
      if (parts[0] == "0" && parts[1].empty() && contains(path, "vessel"))
        dir = "/sys/fs/cgroup" + path;
      for (std::string_view c : split(parts[1], ','))
        if (c == "memory") dir = "/sys/fs/cgroup/memory" + path;
    }
    return dir;
  }
  // Under KVM the jailed QEMU gets a /dev/kvm node of its own, owned by its
  // uid: it opens whatever the host node's mode (here root-only 0600, where
  // a bind of the host node gave "Could not access KVM kernel module:
  // Permission denied"). On a host with working KVM the container runs; on
  // these machines (a paravirtual KVM that cannot boot a normal kernel) QEMU
  // fails the same way confined as unconfined, past KVM's setup. Returns the
  // confined run's stderr.
  std::string expect_kvm_runs_as_unconfined(const std::vector<std::string>& args) {
    auto confined = run(args);
    if (confined.exit_code == 0) {
      EXPECT_EQ(confined.out, "hi\n");
      return confined.err;
    }
    RunOptions loose;
    loose.env = {"VESSEL_CONFINE=0"};
    auto unconfined = run(args, loose);
    for (const char* denied : {"Could not access KVM", "Permission denied", "failed to initialize"})
      EXPECT_FALSE(contains(confined.err, denied)) << confined.err;
    EXPECT_EQ(confined.exit_code, unconfined.exit_code) << confined.err << unconfined.err;
    // QEMU's own complaints are the same with and without the jail.
    for (std::string_view line : split(unconfined.err, '\n')) {
      if (!starts_with(line, "qemu-system-x86_64")) continue;
      EXPECT_TRUE(contains(confined.err, line)) << line << "\n--- confined:\n" << confined.err;
    }
    return confined.err;
  }
  int qemu_of(const std::string& id) {
    auto pids = find_process_ids({"qemu-system-x86_64", "qemu-system-aarch64"}, id.substr(0, 12));
    return pids.size() == 1 ? pids[0] : -1;
  }
};

TEST_F(ConfinementTest, QemuIsJailedVirtiofsdSandboxedAndTheContainerStillWorks) {
  std::string share = scratch_dir() + "/share";
  ASSERT_EQ(::mkdir(share.c_str(), 0755), 0);
  std::string id =
      run_detached({"--name", "jailed", "-v", share + ":/data", kImage, "sleep", "600"});
  ASSERT_FALSE(id.empty());
  int qemu = qemu_of(id);
  ASSERT_GT(qemu, 0) << testing::PrintToString(processes_of(id));

  // Unprivileged, capability-free, no way back, filtered.
  std::string uid = status_field(qemu, "Uid");
  EXPECT_FALSE(uid.empty());
  EXPECT_NE(uid.substr(0, uid.find('\t')), "0") << "QEMU runs as root: " << uid;
  EXPECT_EQ(status_field(qemu, "CapEff"), "0000000000000000");
  EXPECT_EQ(status_field(qemu, "CapPrm"), "0000000000000000");
  EXPECT_EQ(status_field(qemu, "NoNewPrivs"), "1");
  EXPECT_EQ(status_field(qemu, "Seccomp"), "2");
  // Namespaces of its own.
  for (const char* ns : {"mnt", "pid", "ipc", "uts", "net"})
    EXPECT_NE(link("/proc/" + std::to_string(qemu) + "/ns/" + ns),
              link(std::string("/proc/self/ns/") + ns))
        << ns;
  // Its root holds only what it loads: no host configuration, homes, state.
  auto root = sys::list_dir("/proc/" + std::to_string(qemu) + "/root");
  ASSERT_TRUE(root.ok());
  std::set<std::string> names(root->begin(), root->end());
  for (const char* host_only : {"etc", "home", "root", "var", "tmp", "proc", "sys", "run", "work"})
    EXPECT_EQ(names.count(host_only), 0u) << "/" << host_only << " is visible to QEMU";
  EXPECT_EQ(names.count("vm"), 1u) << testing::PrintToString(names);
  // Nothing of the state root either: its files are fds, not paths.
  auto cmdline = sys::read_file("/proc/" + std::to_string(qemu) + "/cmdline", 1 << 20);
  ASSERT_TRUE(cmdline.ok());
  EXPECT_EQ(cmdline->find(state_root()), std::string::npos) << *cmdline;

  // The monitor gave up what it never uses (CAP_SYS_MODULE is bit 16,
  // CAP_SYS_RAWIO 17, CAP_SYS_BOOT 22), for its children too.
  int monitor = inspect("jailed")["State"]["Pid"].get<int>();
  for (int pid : {monitor, qemu}) {
    uint64_t bnd = std::strtoull(status_field(pid, "CapBnd").c_str(), nullptr, 16);
    EXPECT_EQ(bnd & ((1ull << 16) | (1ull << 17) | (1ull << 22)), 0u) << "pid " << pid;
  }

  // Running, with no restart policy: no other VM will be started, so what
  // only a start needs is gone (CAP_SYS_ADMIN 21, CAP_SETUID 7,
  // CAP_DAC_OVERRIDE 1); CAP_KILL (5) and CAP_NET_ADMIN (12) stay.
  uint64_t eff = std::strtoull(status_field(monitor, "CapEff").c_str(), nullptr, 16);
  uint64_t bnd = std::strtoull(status_field(monitor, "CapBnd").c_str(), nullptr, 16);
  EXPECT_EQ((eff | bnd) & ((1ull << 21) | (1ull << 7) | (1ull << 1)), 0u) << std::hex << eff;
  EXPECT_EQ(eff & ((1ull << 5) | (1ull << 12)), (1ull << 5) | (1ull << 12)) << std::hex << eff;

  // virtiofsd's workers: seccomp, no_new_privs, less than root's capabilities.
  auto fsds = find_process_ids({"virtiofsd"}, id.substr(0, 12));
  ASSERT_FALSE(fsds.empty());
  int filtered = 0;
  for (int pid : fsds) {
    if (status_field(pid, "Seccomp") != "2") continue;  // the sandbox's waiting parent
    ++filtered;
    EXPECT_EQ(status_field(pid, "NoNewPrivs"), "1");
    EXPECT_NE(status_field(pid, "CapEff"), "000001ffffffffff");
    EXPECT_NE(link("/proc/" + std::to_string(pid) + "/ns/mnt"), link("/proc/self/ns/mnt"));
  }
  EXPECT_GT(filtered, 0) << "no virtiofsd runs under seccomp";

  // The container does what containers do: files through the share, exec.
  auto r = vessel({"exec", "jailed", "sh", "-c", "echo through > /data/f && cat /data/f"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "through\n");
  auto host = sys::read_file(share + "/f");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(*host, "through\n");
  // And with those capabilities gone, a stop and rm still tidy everything.
  EXPECT_EQ(vessel({"stop", "-t", "2", "jailed"}).exit_code, 0);
  EXPECT_EQ(vessel({"rm", "jailed"}).exit_code, 0);
  expect_gone(id);
}

// A monitor that will start the VM again (a restart policy) keeps what a
// start needs: the first VM's crash starts a second, confined as the first.
TEST_F(ConfinementTest, AMonitorWithARestartPolicyKeepsWhatAStartNeeds) {
  std::string id = run_detached(
      {"--name", "again", "--restart", "on-failure:1", kImage, "sh", "-c", "sleep 2; exit 3"});
  ASSERT_FALSE(id.empty());
  int monitor = inspect("again")["State"]["Pid"].get<int>();
  uint64_t eff = std::strtoull(status_field(monitor, "CapEff").c_str(), nullptr, 16);
  EXPECT_EQ(eff & (1ull << 21), 1ull << 21) << std::hex << eff;
  EXPECT_TRUE(wait_until([&] { return inspect("again")["RestartCount"] == 1; }, 60s))
      << inspect("again").dump(2);
  EXPECT_TRUE(wait_until([&] { return status_of("again") == "exited"; }, 60s));
  EXPECT_EQ(inspect("again")["State"]["ExitCode"], 3);
  ASSERT_EQ(vessel({"rm", "again"}).exit_code, 0);
  expect_gone(id);
}

TEST_F(ConfinementTest, TheVmsHostProcessesShareABoundedHostCgroupThatGoesWithThem) {
  std::string id = run_detached({"--name", "bounded", "-m", "256m", kImage, "sleep", "600"});
  ASSERT_FALSE(id.empty());
  int qemu = qemu_of(id);
  ASSERT_GT(qemu, 0);
  nlohmann::json j = inspect("bounded");
  int monitor = j["State"]["Pid"].get<int>();
  auto cgroups = sys::read_file("/proc/" + std::to_string(qemu) + "/cgroup");
  auto monitors = sys::read_file("/proc/" + std::to_string(monitor) + "/cgroup");
  ASSERT_TRUE(cgroups.ok() && monitors.ok());
  EXPECT_EQ(*cgroups, *monitors) << "QEMU and its monitor in different cgroups";
  std::string dir = memory_cgroup_dir(*cgroups);
  ASSERT_TRUE(contains(dir, id.substr(0, 12))) << *cgroups;
  auto limit = sys::read_file(
      dir + (contains(dir, "vessel.slice") ? "/memory.max" : "/memory.limit_in_bytes"));
  ASSERT_TRUE(limit.ok()) << dir;
  // 256 MiB for the container, 64 MiB for the guest kernel, 256 MiB for QEMU & co.
  uint64_t expected = (256ull + 64 + 256) << 20;
  EXPECT_EQ(parse_u64(trim(*limit)).value_or(0), expected) << dir;

  ASSERT_EQ(vessel({"rm", "-f", "bounded"}).exit_code, 0);
  expect_gone(id);
  struct stat st;
  EXPECT_NE(::stat(dir.c_str(), &st), 0) << dir << " left behind";
}

// A guest that forks without end and allocates all it can: it stays inside
// its bounds (the container's cgroup in the guest, the VM's host cgroup),
// a neighbour keeps working, and rm -f cleans it up.
TEST_F(ConfinementTest, ARunawayGuestStaysInsideItsBoundsAndRmCleansUp) {
  std::string good = run_detached({"--name", "good", kImage, "sleep", "600"});
  ASSERT_FALSE(good.empty());
  std::string bomb =
      run_detached({"--name", "bomb", "-m", "128m", kImage, "sh", "-c",
                    "x=y; (while :; do x=$x$x; done) & f() { f | f & }; f; sleep 600"});
  ASSERT_FALSE(bomb.empty());
  // The host cgroup is read at once: the guest's OOM killer may pick the
  // main process itself among the bomb's equally small ones (Docker's
  // container then exits 137 too), and the monitor goes with it.
  nlohmann::json j = inspect("bomb");
  int monitor = j["State"]["Pid"].get<int>();
  ASSERT_GT(monitor, 0);
  auto cgroups = sys::read_file("/proc/" + std::to_string(monitor) + "/cgroup");
  ASSERT_TRUE(cgroups.ok());
  std::string dir = memory_cgroup_dir(*cgroups);
  ASSERT_FALSE(dir.empty()) << *cgroups;
  std::this_thread::sleep_for(10s);
  j = inspect("bomb");
  if (j["State"]["Status"] != "running") {
    // Ended by the guest's OOM killer, inside its bounds.
    EXPECT_EQ(j["State"]["ExitCode"], 137) << j.dump();
    EXPECT_EQ(j["State"]["OOMKilled"], true) << j.dump();
  }
  bool v2 = contains(dir, "vessel.slice");
  auto limit = sys::read_file(dir + (v2 ? "/memory.max" : "/memory.limit_in_bytes"));
  auto peak = sys::read_file(dir + (v2 ? "/memory.peak" : "/memory.max_usage_in_bytes"));
  if (limit.ok() && peak.ok()) {
    uint64_t l = parse_u64(trim(*limit)).value_or(0), p = parse_u64(trim(*peak)).value_or(~0ull);
    std::cout << "host cgroup peak " << (p >> 20) << " MiB of " << (l >> 20) << " MiB\n";
    EXPECT_LE(p, l);
  }
  auto t0 = std::chrono::steady_clock::now();
  auto r = vessel({"exec", "good", "true"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s) << "the neighbour answered slowly";
  ASSERT_EQ(vessel({"rm", "-f", "bomb"}).exit_code, 0);
  expect_gone(bomb);
  struct stat st;
  EXPECT_NE(::stat(dir.c_str(), &st), 0) << dir << " left behind";
}

// The switch the benchmark compares against: everything as before.
TEST_F(ConfinementTest, VesselConfineZeroRunsQemuUnconfined) {
  RunOptions o;
  o.env = {"VESSEL_CONFINE=0"};
  std::string id = run_detached({"--name", "loose", kImage, "sleep", "600"}, o);
  ASSERT_FALSE(id.empty());
  int qemu = qemu_of(id);
  ASSERT_GT(qemu, 0);
  EXPECT_EQ(status_field(qemu, "Seccomp"), "0");
  std::string uid = status_field(qemu, "Uid");
  EXPECT_EQ(uid.substr(0, uid.find('\t')), "0");
  EXPECT_EQ(link("/proc/" + std::to_string(qemu) + "/ns/pid"), link("/proc/self/ns/pid"));
}

TEST_F(ConfinementTest, UnderKvmTheJailedQemuOpensKvmAsAnUnconfinedOneDoes) {
  if (::access("/dev/kvm", F_OK) != 0) GTEST_SKIP() << "no /dev/kvm on this host";
  expect_kvm_runs_as_unconfined(
      {"--rm", "--accel", "kvm", "--network", "none", "--rootfs", paths().rootfs, "echo", "hi"});
}

// An image root without shares runs on the lean QEMU build under KVM
// (vmm::find_qemu): its jail holds that binary and its libraries.
TEST_F(ConfinementTest, UnderKvmTheJailedLeanQemuOpensKvmAsAnUnconfinedOneDoes) {
  if (::access("/dev/kvm", F_OK) != 0) GTEST_SKIP() << "no /dev/kvm on this host";
  vmm::VmConfig probe;
  probe.accel = vmm::Accel::kKvm;
  auto qemu = vmm::find_qemu(probe);
  ASSERT_TRUE(qemu.ok()) << qemu.error().to_string();
  bool lean = contains(*qemu, "-microvm");
  std::string err = expect_kvm_runs_as_unconfined(
      {"--rm", "--accel", "kvm", "--network", "none", "-m", "128m", kImage, "echo", "hi"});
  // Where QEMU failed, its messages name the binary that ran.
  if (lean && contains(err, "qemu-system-x86_64")) {
    EXPECT_TRUE(contains(err, "qemu-system-x86_64-microvm:")) << err;
  }
}

}  // namespace
}  // namespace vessel::test
