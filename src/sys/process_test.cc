#include "sys/process.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace vessel::sys {
namespace {

using namespace std::chrono_literals;

TEST(Process, ReportsExitCode) {
  auto p = Process::spawn({.argv = {"/bin/sh", "-c", "exit 7"}});
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  auto st = p->wait();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->code, 7);
  EXPECT_EQ(st->shell_code(), 7);
}

TEST(Process, ReportsSignal) {
  auto p = Process::spawn({.argv = {"/bin/sh", "-c", "kill -9 $$"}});
  ASSERT_TRUE(p.ok());
  auto st = p->wait();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->signal, SIGKILL);
  EXPECT_EQ(st->shell_code(), 137);
}

TEST(Process, MissingProgramIsAnError) {
  auto p = Process::spawn({.argv = {"/nonexistent/program"}});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(p.error().message().find("/nonexistent/program"), std::string::npos);
}

TEST(Process, MapsFds) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  // Map the write end to fd 1 and, crossing over, fd 5: both must arrive.
  auto p = Process::spawn(
      {.argv = {"/bin/sh", "-c", "echo one; echo two >&5"}, .fds = {{1, fds[1]}, {5, fds[1]}}});
  ASSERT_TRUE(p.ok());
  ::close(fds[1]);
  ASSERT_TRUE(p->wait().ok());
  char buf[64] = {};
  ssize_t n = ::read(fds[0], buf, sizeof buf - 1);
  ::close(fds[0]);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "one\ntwo\n");
}

// /proc/self/status says "THP_enabled: 0" once PR_SET_THP_DISABLE is set,
// also after the child's own execs.
std::string thp_line_of_child(bool no_huge_pages) {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  SpawnOptions o{.argv = {"/bin/sh", "-c", "grep THP_enabled /proc/self/status"},
                 .fds = {{1, fds[1]}}};
  o.no_huge_pages = no_huge_pages;
  auto p = Process::spawn(o);
  EXPECT_TRUE(p.ok());
  ::close(fds[1]);
  if (p.ok()) {
    EXPECT_TRUE(p->wait().ok());
  }
  char buf[64] = {};
  ssize_t n = ::read(fds[0], buf, sizeof buf - 1);
  ::close(fds[0]);
  return std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0)));
}

TEST(Process, NoHugePagesReachesTheProgram) {
  EXPECT_EQ(thp_line_of_child(true), "THP_enabled:\t0\n");
  // Without it the child has what its parent has (this test: THP on).
  EXPECT_EQ(thp_line_of_child(false), "THP_enabled:\t1\n");
}

TEST(Process, WaitTimesOutThenDestructorKills) {
  pid_t pid;
  {
    auto p = Process::spawn({.argv = {"/bin/sleep", "30"}});
    ASSERT_TRUE(p.ok());
    pid = p->pid();
    auto st = p->wait(50ms);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::kTimeout);
  }
  EXPECT_EQ(::kill(pid, 0), -1);  // killed and reaped
  EXPECT_EQ(errno, ESRCH);
}

TEST(FindProgram, FindsShell) {
  auto sh = find_program("sh");
  ASSERT_TRUE(sh.has_value());
  EXPECT_EQ(sh->back(), 'h');
  EXPECT_FALSE(find_program("definitely-not-a-program-xyz").has_value());
}

TEST(ProcessMemory, ParsesSmapsRollup) {
  ProcessMemory m = parse_smaps_rollup(
      "55d0c0000000-7ffd7b1f5000 ---p 00000000 00:00 0                          [rollup]\n"
      "Rss:              141312 kB\n"
      "Pss:              137216 kB\n"
      "Pss_Dirty:        100000 kB\n"
      "Pss_Anon:          58368 kB\n"
      "Pss_File:           4096 kB\n"
      "Pss_Shmem:         47104 kB\n"
      "Anonymous:         60000 kB\n");
  EXPECT_EQ(m.rss, 141312ull << 10);
  EXPECT_EQ(m.pss, 137216ull << 10);
  EXPECT_EQ(m.pss_anon, 58368ull << 10);
  EXPECT_EQ(m.pss_shmem, 47104ull << 10);
  EXPECT_EQ(m.anonymous, 60000ull << 10);
  EXPECT_EQ(parse_smaps_rollup("garbage\nRss: lots kB\n").rss, 0u);
}

TEST(ProcessMemory, CountsMemfdPagesAllocated) {
  uint64_t before = shared_memory_file_bytes(::getpid());
  UniqueFd fd(::memfd_create("vessel-test", MFD_CLOEXEC));
  ASSERT_TRUE(fd);
  ASSERT_EQ(::ftruncate(fd.get(), 8 << 20), 0);
  EXPECT_EQ(shared_memory_file_bytes(::getpid()), before);  // sized, nothing allocated
  std::string data(1 << 20, 'x');
  ASSERT_EQ(::pwrite(fd.get(), data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  EXPECT_EQ(shared_memory_file_bytes(::getpid()), before + (1 << 20));
}

// QEMU's guest RAM file in its jail's tmpfs: unlinked once made. A file
// that still has a name (a disk image, say) is not counted.
TEST(ProcessMemory, CountsUnlinkedTmpfsFilesOnly) {
  struct statfs fs;
  if (::statfs("/dev/shm", &fs) != 0 || fs.f_type != static_cast<decltype(fs.f_type)>(TMPFS_MAGIC))
    GTEST_SKIP() << "needs a tmpfs at /dev/shm";
  uint64_t before = shared_memory_file_bytes(::getpid());
  std::string path = "/dev/shm/vessel-test-" + std::to_string(::getpid());
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd);
  std::string data(1 << 20, 'x');
  ASSERT_EQ(::pwrite(fd.get(), data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  EXPECT_EQ(shared_memory_file_bytes(::getpid()), before);  // named: not counted
  ASSERT_EQ(::unlink(path.c_str()), 0);
  EXPECT_EQ(shared_memory_file_bytes(::getpid()), before + (1 << 20));
}

TEST(ProcessMemory, ReadsItsOwn) {
  auto m = process_memory(::getpid());
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  EXPECT_GT(m->rss, 0u);
  EXPECT_GT(m->pss, 0u);
}

}  // namespace
}  // namespace vessel::sys
