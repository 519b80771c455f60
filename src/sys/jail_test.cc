#include "sys/jail.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

#include "sys/fs.h"
#include "sys/process.h"

namespace vessel::sys {
namespace {

// Runs `script` with the jail's busybox sh and returns all it wrote to
// stdout once it exits.
Result<std::string> run_jailed(const Jail& j, const std::string& script) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Error::from_errno(errno, "pipe");
  auto p = Process::spawn(
      {.argv = {"/bin/busybox", "sh", "-c", script}, .fds = {{1, out[1]}}, .jail = j});
  ::close(out[1]);
  if (!p.ok()) {
    ::close(out[0]);
    return p.error();
  }
  std::string text;
  char buf[256];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;)
    text.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  (void)p->wait();
  return text;
}

TEST(Jail, PlanRejectsRelativeDotDotAndRoot) {
  Jail j;
  j.mountpoint = "/tmp";
  j.uid = j.gid = 70000;
  j.binds = {{"/bin/sh", "bin/sh"}};
  EXPECT_EQ(plan_jail(j).error().code(), ErrorCode::kInvalidArgument);
  j.binds = {{"/bin/sh", "/bin/../../sh"}};
  EXPECT_EQ(plan_jail(j).error().code(), ErrorCode::kInvalidArgument);
  j.binds = {{"/nonexistent/file", "/x"}};
  auto p = plan_jail(j);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("/nonexistent/file"), std::string::npos);
  j.binds = {};
  j.uid = 0;
  EXPECT_EQ(plan_jail(j).error().code(), ErrorCode::kInvalidArgument);
}

TEST(Jail, PlanMakesParentsFirst) {
  Jail j;
  j.mountpoint = "/m";
  j.uid = j.gid = 70000;
  j.binds = {{"/bin/sh", "/usr/bin/sh"}, {"/tmp", "/a/b"}};
  j.symlinks = {{"usr/lib", "/lib"}};
  auto p = plan_jail(j);
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_EQ(p->dirs, (std::vector<std::string>{"/m/a", "/m/a/b", "/m/usr", "/m/usr/bin"}));
  ASSERT_EQ(p->mounts.size(), 2u);
  EXPECT_EQ(p->mounts[0].target, "/m/usr/bin/sh");
  EXPECT_FALSE(p->mounts[0].is_dir);
  EXPECT_TRUE(p->mounts[1].is_dir);
  EXPECT_EQ(p->symlinks[0].second, "/m/lib");
}

// A static busybox in a jail: only what was bound is there, as an
// unprivileged uid without capabilities, in namespaces of its own.
TEST(Jail, ChildSeesOnlyItsBindsWithoutPrivileges) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (::access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "needs busybox-static";
  auto dir = make_temp_dir("/tmp", "vessel-jail-test-");
  ASSERT_TRUE(dir.ok());
  Jail j;
  j.mountpoint = *dir;
  j.uid = 70123;
  j.gid = 70124;
  j.binds = {{"/bin/busybox", "/bin/busybox"}, {"/dev/null", "/dev/null", true}};
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  auto p =
      Process::spawn({.argv = {"/bin/busybox", "sh", "-c",
                               "id -u; id -g; ls /; echo x > /dev/null && echo dev-w; "
                               "echo x > /new 2>/dev/null || echo ro; exec /bin/busybox sleep 30"},
                      .fds = {{1, out[1]}},
                      .jail = j});
  ::close(out[1]);
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  std::string text;
  char buf[256];
  while (text.find("ro\n") == std::string::npos) {
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  // A device node on the read-only jail opens for writing (as /dev/kvm must).
  EXPECT_EQ(text, "70123\n70124\nbin\ndev\ndev-w\nro\n");
  auto status = read_file("/proc/" + std::to_string(p->pid()) + "/status");
  ASSERT_TRUE(status.ok());
  EXPECT_NE(status->find("CapEff:\t0000000000000000"), std::string::npos) << *status;
  EXPECT_NE(status->find("CapBnd:\t0000000000000000"), std::string::npos) << *status;
  EXPECT_NE(status->find("NoNewPrivs:\t1"), std::string::npos) << *status;
  struct stat mine, its;
  ASSERT_EQ(::stat("/proc/self/ns/mnt", &mine), 0);
  ASSERT_EQ(::stat(("/proc/" + std::to_string(p->pid()) + "/ns/mnt").c_str(), &its), 0);
  EXPECT_NE(mine.st_ino, its.st_ino);
  ASSERT_EQ(::stat("/proc/self/ns/net", &mine), 0);
  ASSERT_EQ(::stat(("/proc/" + std::to_string(p->pid()) + "/ns/net").c_str(), &its), 0);
  EXPECT_NE(mine.st_ino, its.st_ino);
  auto root = list_dir("/proc/" + std::to_string(p->pid()) + "/root");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->size(), 2u);
  ASSERT_TRUE(p->kill(SIGKILL).ok());
  (void)p->wait();
  // The jail's mounts were the child's alone.
  auto left = list_dir(*dir);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
  ::rmdir(dir->c_str());
}

// A tmpfs of the jail's own: the unprivileged uid may write there (and only
// there), up to its size; with huge, the mount asks for huge pages.
TEST(Jail, TmpfsIsTheOnlyWritablePlace) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (::access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "needs busybox-static";
  auto dir = make_temp_dir("/tmp", "vessel-jail-test-");
  ASSERT_TRUE(dir.ok());
  Jail j;
  j.mountpoint = *dir;
  j.uid = 70123;
  j.gid = 70124;
  j.binds = {{"/bin/busybox", "/bin/busybox"}, {"/dev/null", "/dev/null", true}};
  j.tmpfs = {{"/scratch", 1 << 20, true}};
  auto plan = plan_jail(j);
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  ASSERT_EQ(plan->tmpfs.size(), 1u);
  EXPECT_EQ(plan->tmpfs[0].target, *dir + "/scratch");
  EXPECT_NE(plan->tmpfs[0].options.find("uid=70123,gid=70124,size=1048576"), std::string::npos)
      << plan->tmpfs[0].options;
  EXPECT_EQ(plan->tmpfs[0].plain_options.find("huge="), std::string::npos);
  if (::access("/sys/kernel/mm/transparent_hugepage", F_OK) == 0) {
    EXPECT_NE(plan->tmpfs[0].options.find("huge=within_size"), std::string::npos);
  }
  auto text = run_jailed(j,
                         "echo x > /scratch/f && echo w; stat -c '%u %a' /scratch; "
                         "echo x > /new 2>/dev/null || echo ro; "
                         "/bin/busybox dd if=/dev/zero of=/scratch/big bs=1024 count=2048 "
                         "2>/dev/null || echo full");
  ASSERT_TRUE(text.ok()) << text.error().to_string();
  EXPECT_EQ(*text, "w\n70123 700\nro\nfull\n");
  auto left = list_dir(*dir);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
  ::rmdir(dir->c_str());
}

TEST(Jail, PlanRejectsATmpfsWithoutSizeOrTwice) {
  Jail j;
  j.mountpoint = "/tmp/x";
  j.uid = j.gid = 70123;
  j.tmpfs = {{"/ram", 0, false}};
  EXPECT_EQ(plan_jail(j).error().code(), ErrorCode::kInvalidArgument);
  j.tmpfs = {{"/ram", 4096, false}, {"/ram", 4096, false}};
  EXPECT_EQ(plan_jail(j).error().code(), ErrorCode::kInvalidArgument);
  j.tmpfs = {{"ram", 4096, false}};
  EXPECT_EQ(plan_jail(j).error().code(), ErrorCode::kInvalidArgument);
}

// A device node made for the jail: owned by the jail's uid, mode 0600, so
// it opens whatever the host node's mode (a root-only /dev/kvm, as here).
TEST(Jail, NodesAreMadeForTheJailsUid) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (::access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "needs busybox-static";
  struct stat null_st;
  ASSERT_EQ(::stat("/dev/null", &null_st), 0);
  Jail bad;
  bad.mountpoint = "/m";
  bad.uid = bad.gid = 70000;
  for (const char* target : {"/dev/a/b", "/x", "/dev/"}) {
    bad.nodes = {{target, null_st.st_rdev}};
    auto plan = plan_jail(bad);
    ASSERT_FALSE(plan.ok()) << target;
    EXPECT_EQ(plan.error().code(), ErrorCode::kInvalidArgument) << target;
  }
  auto dir = make_temp_dir("/tmp", "vessel-jail-test-");
  ASSERT_TRUE(dir.ok());
  Jail j;
  j.mountpoint = *dir;
  j.uid = 70126;
  j.gid = 70127;
  j.binds = {{"/bin/busybox", "/bin/busybox"}, {"/dev/null", "/dev/null", true}};
  j.nodes = {{"/dev/sink", null_st.st_rdev}};
  auto text =
      run_jailed(j,
                 "/bin/busybox stat -c '%u %g %a %t,%T' /dev/sink; echo x > /dev/sink && echo w; "
                 "/bin/busybox mknod /dev/more c 1 3 2>/dev/null || echo no-mknod");
  ASSERT_TRUE(text.ok()) << text.error().to_string();
  EXPECT_EQ(*text, "70126 70127 600 1,3\nw\nno-mknod\n");
  ::rmdir(dir->c_str());
}

// The uid change clears the parent-death signal; a jailed child must still
// die with its parent.
TEST(Jail, ChildDiesWithItsParent) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (::access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "needs busybox-static";
  auto dir = make_temp_dir("/tmp", "vessel-jail-test-");
  ASSERT_TRUE(dir.ok());
  int pids[2];
  ASSERT_EQ(::pipe2(pids, O_CLOEXEC), 0);
  pid_t middle = ::fork();
  ASSERT_GE(middle, 0);
  if (middle == 0) {
    Jail j;
    j.mountpoint = *dir;
    j.uid = j.gid = 70125;
    j.binds = {{"/bin/busybox", "/bin/busybox"}, {"/dev/null", "/dev/null", true}};
    auto p = Process::spawn({.argv = {"/bin/busybox", "sleep", "60"}, .jail = j});
    pid_t pid = p.ok() ? p->pid() : -1;
    (void)!::write(pids[1], &pid, sizeof pid);
    ::_exit(0);  // no destructor: the child is not killed by us
  }
  ::close(pids[1]);
  pid_t child = -1;
  ASSERT_EQ(::read(pids[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
  ::close(pids[0]);
  ASSERT_GT(child, 0);
  int status;
  ::waitpid(middle, &status, 0);
  bool gone = false;
  for (int i = 0; i < 50 && !gone; ++i) {
    auto stat = read_file("/proc/" + std::to_string(child) + "/stat");
    // Gone, or a zombie waiting for init to reap it.
    gone = !stat.ok() || stat->find(") Z ") != std::string::npos;
    if (!gone) ::usleep(100'000);
  }
  EXPECT_TRUE(gone) << "the jailed child outlived its parent";
  ::rmdir(dir->c_str());
}

TEST(Jail, DroppedCapabilitiesAreGoneForChildrenToo) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (!drop_capabilities({CAP_SYS_MODULE, CAP_SYS_TIME}).ok()) ::_exit(10);
    auto status = read_file("/proc/self/status");
    if (!status.ok()) ::_exit(11);
    // CAP_SYS_MODULE is bit 16, CAP_SYS_TIME bit 25: 0x2010000 gone from each set.
    for (const char* set : {"CapEff:", "CapPrm:", "CapBnd:"}) {
      auto at = status->find(set);
      if (at == std::string::npos) ::_exit(12);
      uint64_t v = std::strtoull(status->c_str() + at + std::strlen(set), nullptr, 16);
      if (v & 0x2010000) ::_exit(13);
      if (!(v & 1)) ::_exit(14);  // CAP_CHOWN kept
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(Jail, AFailureToEnterIsReportedAsSuch) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  Jail j;
  j.mountpoint = "/nonexistent-jail-dir";
  j.uid = j.gid = 70000;
  auto p = Process::spawn({.argv = {"/bin/true"}, .jail = j});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("jail"), std::string::npos) << p.error().to_string();
}

}  // namespace
}  // namespace vessel::sys
