#include "sys/host_cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sys/fs.h"
#include "sys/process.h"
#include "sys/systemd_scope.h"

namespace vessel::sys {
namespace {

// Runs `body` in a forked child (it must not return into the test) and
// gives its result as the child's exit code; -1 if the child died otherwise.
int exit_code_of_child(const std::function<int()>& body) {
  pid_t child = ::fork();
  if (child < 0) return -1;
  if (child == 0) ::_exit(body());
  int status = 0;
  if (::waitpid(child, &status, 0) != child || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

// Leaves `cg` and checks its directories are gone: 0, or 13 / 14.
int left_and_removed(HostCgroup& cg) {
  auto dirs = cg.dirs();
  if (!cg.leave().ok()) return 13;
  for (const auto& d : dirs)
    if (::access(d.c_str(), F_OK) == 0) return 14;
  return 0;
}

const char kHybridSelf[] =
    "9:name=systemd:/\n8:pids:/\n4:memory:/session/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n";

TEST(HostCgroup, V2PlanIsUnderVesselSliceWithLimits) {
  auto p = plan_host_cgroup("0123456789ab", {.memory_max = 1 << 30, .pids_max = 512},
                            CgroupVersion::kV2, "/cg", "0::/user.slice/session-1.scope\n");
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_EQ(p->dirs, (std::vector<std::string>{"/cg/vessel.slice/vessel-0123456789ab.scope"}));
  EXPECT_EQ(p->origins, (std::vector<std::string>{"/cg/user.slice/session-1.scope"}));
  EXPECT_EQ(p->make.front(), "/cg/vessel.slice");
  auto has = [&](const std::string& f, const std::string& v) {
    for (const auto& s : p->settings)
      if (s.first == f && s.second == v) return true;
    return false;
  };
  EXPECT_TRUE(has("/cg/cgroup.subtree_control", "+memory +pids +cpu"));
  EXPECT_TRUE(has("/cg/vessel.slice/vessel-0123456789ab.scope/memory.max", "1073741824"));
  EXPECT_TRUE(has("/cg/vessel.slice/vessel-0123456789ab.scope/pids.max", "512"));
  EXPECT_TRUE(has("/cg/vessel.slice/vessel-0123456789ab.scope/cpu.weight", "100"));
}

TEST(HostCgroup, V1PlanNestsUnderTheCallersCgroupInEachHierarchy) {
  auto dir = make_temp_dir("/tmp", "vessel-cg-test-");
  ASSERT_TRUE(dir.ok());
  for (const char* h : {"memory", "pids", "cpu"})
    ASSERT_EQ(::mkdir((*dir + "/" + h).c_str(), 0755), 0);
  auto p = plan_host_cgroup("0123456789ab", {.memory_max = 100, .pids_max = 7, .cpu_weight = 200},
                            CgroupVersion::kV1, *dir, kHybridSelf);
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_EQ(p->dirs, (std::vector<std::string>{*dir + "/memory/session/abc/vessel/0123456789ab",
                                               *dir + "/pids/vessel/0123456789ab",
                                               *dir + "/cpu/vessel/0123456789ab"}));
  EXPECT_EQ(p->origins[0], *dir + "/memory/session/abc");
  EXPECT_EQ(p->memory_dir, p->dirs[0]);
  bool shares = false;
  for (const auto& s : p->settings)
    shares =
        shares || (s.first == *dir + "/cpu/vessel/0123456789ab/cpu.shares" && s.second == "2048");
  EXPECT_TRUE(shares);
  (void)remove_tree(*dir);
}

// A scope systemd made: found at /<slice>/<unit> in each hierarchy; where
// the process came from only when its /proc/self/cgroup was the host's.
TEST(HostCgroup, SystemdScopePlanFindsTheScopeInEachHierarchy) {
  auto v2 = plan_systemd_cgroup("vessel-ab.scope", "vessel.slice", CgroupVersion::kV2, "/cg",
                                "0::/user.slice/session-1.scope\n");
  EXPECT_EQ(v2.systemd_unit, "vessel-ab.scope");
  EXPECT_EQ(v2.dirs, (std::vector<std::string>{"/cg/vessel.slice/vessel-ab.scope"}));
  EXPECT_EQ(v2.origins, (std::vector<std::string>{"/cg/user.slice/session-1.scope"}));
  EXPECT_EQ(v2.memory_dir, v2.dirs[0]);
  EXPECT_TRUE(v2.make.empty());
  EXPECT_TRUE(v2.settings.empty());
  auto unknown =
      plan_systemd_cgroup("vessel-ab.scope", "vessel.slice", CgroupVersion::kV2, "/cg", "");
  EXPECT_TRUE(unknown.origins.empty());

  auto dir = make_temp_dir("/tmp", "vessel-cg-test-");
  ASSERT_TRUE(dir.ok());
  for (const char* h : {"memory", "pids"})
    ASSERT_EQ(::mkdir((*dir + "/" + h).c_str(), 0755), 0);
  auto v1 =
      plan_systemd_cgroup("vessel-ab.scope", "vessel.slice", CgroupVersion::kV1, *dir, kHybridSelf);
  EXPECT_EQ(v1.dirs, (std::vector<std::string>{*dir + "/memory/vessel.slice/vessel-ab.scope",
                                               *dir + "/pids/vessel.slice/vessel-ab.scope"}));
  EXPECT_EQ(v1.origins, (std::vector<std::string>{*dir + "/memory/session/abc", *dir + "/pids"}));
  EXPECT_EQ(v1.memory_dir, v1.dirs[0]);
  (void)remove_tree(*dir);
}

TEST(HostCgroup, BadNamesAndMissingHierarchiesAreErrors) {
  EXPECT_FALSE(plan_host_cgroup("../x", {}, CgroupVersion::kV2, "/cg", "").ok());
  EXPECT_FALSE(plan_host_cgroup("", {}, CgroupVersion::kV2, "/cg", "").ok());
  EXPECT_EQ(plan_host_cgroup("x", {}, CgroupVersion::kNone, "/cg", "").error().code(),
            ErrorCode::kUnavailable);
  EXPECT_EQ(plan_host_cgroup("x", {}, CgroupVersion::kV1, "/nonexistent", "").error().code(),
            ErrorCode::kUnavailable);
}

// On this host for real: a child process enters a cgroup with limits and
// leaves it, and nothing stays behind.
TEST(HostCgroup, EnterAndLeaveOnThisHost) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (cgroup_version() == CgroupVersion::kNone) GTEST_SKIP() << "no cgroup filesystem";
  // In a child: entering moves the whole process.
  int code = exit_code_of_child([] {
    auto cg = HostCgroup::enter("unit-test-" + std::to_string(::getpid()),
                                {.memory_max = 256 << 20, .pids_max = 64});
    if (!cg.ok()) return 10;
    auto self = read_file("/proc/self/cgroup");
    if (!self.ok() || self->find("/vessel") == std::string::npos) return 11;
    auto mem = cg->memory_current();
    if (!mem.ok()) return 12;
    // A child that outlives us goes back where we came from; others stay.
    for (bool outlives : {true, false}) {
      int out[2];
      if (::pipe2(out, O_CLOEXEC) != 0) return 15;
      auto p = Process::spawn({.argv = {"/bin/cat", "/proc/self/cgroup"},
                               .fds = {{1, out[1]}},
                               .die_with_parent = !outlives});
      ::close(out[1]);
      if (!p.ok()) return 16;
      char buf[4096];
      ssize_t n = ::read(out[0], buf, sizeof buf - 1);
      ::close(out[0]);
      (void)p->wait();
      std::string text(buf, n > 0 ? static_cast<size_t>(n) : 0);
      bool inside = text.find("/vessel") != std::string::npos;
      if (inside == outlives) return outlives ? 17 : 18;
    }
    return left_and_removed(*cg);
  });
  EXPECT_EQ(code, 0);
}

// Every thread moves, whichever way the move goes: a process of one thread
// moves itself through v1's `tasks` (no RCU grace period), one with more
// through cgroup.procs. Both in and out, checked per thread.
TEST(HostCgroup, EveryThreadMovesInAndOut) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (cgroup_version() == CgroupVersion::kNone) GTEST_SKIP() << "no cgroup filesystem";
  for (int extra_threads : {0, 2}) {
    int code = exit_code_of_child([extra_threads] {
      std::atomic<bool> done{false};
      std::vector<std::thread> threads;
      for (int i = 0; i < extra_threads; ++i)
        threads.emplace_back([&done] {
          while (!done)
            ::usleep(1000);
        });
      if (thread_count() != 1 + extra_threads) return 9;
      auto inside = [](bool want) {
        auto tids = list_dir("/proc/self/task");
        if (!tids.ok() || tids->empty()) return false;
        for (const auto& tid : *tids) {
          auto text = read_file("/proc/self/task/" + tid + "/cgroup");
          if (!text.ok() || (text->find("/vessel/") != std::string::npos) != want) return false;
        }
        return true;
      };
      auto cg = HostCgroup::enter("unit-test-" + std::to_string(::getpid()), {.pids_max = 64});
      int result = 0;
      if (!cg.ok()) {
        result = 10;
      } else if (!inside(true)) {
        result = 11;
      } else {
        cg->move_out();
        if (!inside(false)) result = 12;
        if (result == 0) result = left_and_removed(*cg);
      }
      done = true;
      for (auto& t : threads)
        t.join();
      return result;
    });
    EXPECT_EQ(code, 0) << extra_threads << " extra threads";
  }
}

// The v2 code path for real where the host has a v2 hierarchy beside v1
// (the hybrid layout here mounts one, without controllers, at
// /sys/fs/cgroup/unified): the scope is made, entered, left and removed.
TEST(HostCgroup, V2EnterAndLeaveOnAUnifiedHierarchy) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  std::string unified = "/sys/fs/cgroup/unified";
  if (cgroup_version() == CgroupVersion::kV2) unified = "/sys/fs/cgroup";
  if (cgroup_version(unified) != CgroupVersion::kV2) GTEST_SKIP() << "no cgroup v2 hierarchy";
  int code = exit_code_of_child([&] {
    auto self = read_file("/proc/self/cgroup");
    if (!self.ok()) return 9;
    // Limits only where the controllers are there (not in a hybrid's v2).
    HostLimits limits{.memory_max = 0, .pids_max = 0, .cpu_weight = 0};
    if (unified == "/sys/fs/cgroup") limits = {.memory_max = 256 << 20, .pids_max = 64};
    auto cg = HostCgroup::enter("unit-test-" + std::to_string(::getpid()), limits, unified, *self);
    if (!cg.ok()) return 10;
    if (cg->version() != CgroupVersion::kV2) return 11;
    auto now = read_file("/proc/self/cgroup");
    if (!now.ok() || now->find("0::/vessel.slice/vessel-unit-test-") == std::string::npos)
      return 12;
    return left_and_removed(*cg);
  });
  EXPECT_EQ(code, 0);
}

// libsystemd is opened when a scope is first asked for: without a system
// bus the request fails at the connection, after the library loaded and
// every function it needs was found.
TEST(SystemdScope, OpensLibsystemdOnDemand) {
  if (systemd_manages_cgroups()) GTEST_SKIP() << "systemd runs here: a scope would be made";
  ScopeRequest q;
  q.unit = "vessel-test.scope";
  q.slice = "vessel.slice";
  Status s = start_scope(q, ::getpid());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message().find("cannot load"), std::string::npos) << s.error().to_string();
  EXPECT_EQ(s.error().message().find("lacks"), std::string::npos) << s.error().to_string();
  EXPECT_NE(s.error().message().find("systemd: connect to the system bus"), std::string::npos)
      << s.error().to_string();
}

}  // namespace
}  // namespace vessel::sys
