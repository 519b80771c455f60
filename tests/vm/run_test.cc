// `vessel run` end to end: each test boots a microVM with the busybox rootfs
// and asserts what a user of the CLI sees (output, exit status, terminal).
// Every run is followed by VmTest's leak check (no QEMU, virtiofsd or
// monitor left, an empty <root>/run): a foreground run waits for its
// container's monitor to finish.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "base/strings.h"
#include "support/cli_runner.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string random_bytes(size_t size, uint64_t seed) {
  std::string data(size, '\0');
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + 8 <= size; i += 8) {
    uint64_t v = rng();
    std::memcpy(&data[i], &v, 8);
  }
  return data;
}

// "" if equal, else where they differ: comparing megabytes with EXPECT_EQ
// would print them.
std::string first_difference(const std::string& got, const std::string& want) {
  if (got == want) return "";
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i])
    ++i;
  return "got " + std::to_string(got.size()) + " bytes, want " + std::to_string(want.size()) +
         "; first difference at offset " + std::to_string(i);
}

using RunTest = VmTest;

// --- Output and exit status -------------------------------------------------

TEST_F(RunTest, EchoPrintsExactlyItsOutputOnStdout) {
  CliResult r = run_busybox({"echo", "hello"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "hello\n");
  EXPECT_FALSE(contains(r.err, "hello")) << r.err;
}

TEST_F(RunTest, ExitCodeIsTheProcesssExitCode) {
  CliResult r = run_busybox({"sh", "-c", "exit 7"});
  EXPECT_EQ(r.exit_code, 7);
}

TEST_F(RunTest, DeathBySignalExitsWith128PlusTheSignal) {
  CliResult r = run_busybox({"sh", "-c", "kill -9 $$"});
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
}

TEST_F(RunTest, CommandNotFoundExits127NamingTheCommand) {
  CliResult r = run_busybox({"nosuchcmd"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_TRUE(contains(r.err, "nosuchcmd")) << "stderr: " << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(RunTest, NonExecutableCommandExits126) {
  CliResult r = run_busybox({"/etc"});  // a directory
  EXPECT_EQ(r.exit_code, 126);
  EXPECT_TRUE(contains(r.err, "/etc")) << "stderr: " << r.err;
}

TEST_F(RunTest, StdoutAndStderrStaySeparate) {
  CliResult r = run_busybox({"sh", "-c", "echo out; echo err >&2"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_TRUE(contains(r.err, "err\n")) << "stderr: " << r.err;
  EXPECT_FALSE(contains(r.err, "out")) << "stderr: " << r.err;
}

// --- Stdin ------------------------------------------------------------------

TEST_F(RunTest, SixteenMiBThroughCatComeBackByteIdentical) {
  const std::string data = random_bytes(16 << 20, 42);
  RunOptions o;
  o.stdin_data = data;
  CliResult r = run_busybox({"-i", "cat"}, o);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(first_difference(r.out, data), "");
}

TEST_F(RunTest, BinaryStdoutIsPassedThroughUnchanged) {
  // Every byte value, \0 \r \n and 0xff included, in random order.
  const std::string data = random_bytes(4 << 20, 7);
  RunOptions o;
  o.stdin_data = data;
  CliResult r = run_busybox({"-i", "head", "-c", std::to_string(data.size())}, o);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(first_difference(r.out, data), "");
}

TEST_F(RunTest, EndOfStdinReachesTheProcess) {
  RunOptions o;
  o.stdin_data = "some input\nmore input\n";
  CliResult r = run_busybox({"-i", "sh", "-c", "cat >/dev/null; echo done"}, o);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "done\n");
}

// --- Environment, user, working directory ------------------------------------

TEST_F(RunTest, EnvFlagSetsAVariable) {
  CliResult r = run_busybox({"-e", "FOO=bar", "sh", "-c", "echo \"$FOO\""});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "bar\n");
}

TEST_F(RunTest, EnvFlagWithoutValueTakesItFromTheHost) {
  RunOptions o;
  o.env = {"FROMHOST=value from the host"};
  CliResult r = run_busybox({"-e", "FROMHOST", "sh", "-c", "echo \"$FROMHOST\""}, o);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "value from the host\n");
}

TEST_F(RunTest, UserNamesResolveInTheContainersPasswdAndGroupFiles) {
  CliResult named = run_busybox({"-u", "user", "sh", "-c", "id; echo $HOME"});
  EXPECT_EQ(named.exit_code, 0) << named.err;
  EXPECT_EQ(named.out, "uid=1000(user) gid=1000(user)\n/home/user\n");
  CliResult with_group = run_busybox({"-u", "nobody:tty", "id"});
  EXPECT_EQ(with_group.exit_code, 0) << with_group.err;
  EXPECT_EQ(with_group.out, "uid=65534(nobody) gid=5(tty)\n");
  CliResult missing = run_busybox({"-u", "nosuch", "id"});
  EXPECT_EQ(missing.exit_code, 125);
  EXPECT_TRUE(contains(missing.err, "unable to find user 'nosuch'")) << missing.err;
  EXPECT_FALSE(contains(missing.err, "boot log")) << missing.err;
}

TEST_F(RunTest, EnvFileSetsVariablesAndSkipsCommentsAndBlankLines) {
  std::string path = scratch_dir() + "/env";
  std::ofstream(path) << "# a comment\n"
                         "\n"
                         "A=1\n"
                         "   \n"
                         "  # an indented comment\n"
                         "B=two words\n";
  CliResult r = run_busybox({"--env-file", path, "sh", "-c", "echo \"$A|$B\""});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "1|two words\n");
}

TEST_F(RunTest, WorkdirFlagSetsTheWorkingDirectory) {
  CliResult r = run_busybox({"-w", "/tmp", "pwd"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "/tmp\n");
}

TEST_F(RunTest, UserFlagRunsAsThatUidAndGid) {
  CliResult r = run_busybox({"-u", "1000:1000", "id"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.out, "uid=1000")) << r.out;
  EXPECT_TRUE(contains(r.out, "gid=1000")) << r.out;
}

TEST_F(RunTest, HostnameFlagSetsTheHostname) {
  CliResult r = run_busybox({"--hostname", "myhost", "hostname"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "myhost\n");
}

TEST_F(RunTest, CapabilitiesAreDockersDefaultAndFollowTheFlags) {
  const std::string show = "grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status";
  // Docker's default set (CHOWN ... SETFCAP, 14 capabilities), as `docker
  // run` shows it, and no no_new_privs.
  CliResult def = run_busybox({"sh", "-c", show});
  EXPECT_EQ(def.exit_code, 0) << def.err;
  EXPECT_EQ(def.out,
            "CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\n"
            "NoNewPrivs:\t0\n");
  CliResult flags =
      run_busybox({"--cap-drop", "ALL", "--cap-add", "net_admin", "--cap-add", "CAP_KILL",
                   "--security-opt", "no-new-privileges", "sh", "-c", show});
  EXPECT_EQ(flags.exit_code, 0) << flags.err;
  EXPECT_EQ(flags.out,
            "CapEff:\t0000000000001020\nCapBnd:\t0000000000001020\nCapAmb:\t0000000000000000\n"
            "NoNewPrivs:\t1\n");
  CliResult bad = run_busybox({"--cap-add", "FLY", "true"});
  EXPECT_EQ(bad.exit_code, 125);
  EXPECT_NE(bad.err.find("unknown capability 'FLY'"), std::string::npos) << bad.err;
}

// --- Resources ----------------------------------------------------------------

TEST_F(RunTest, CpusFlagSetsTheNumberOfCpusToTwo) {
  CliResult r = run_busybox({"--cpus", "2", "nproc"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "2\n");
}

TEST_F(RunTest, CpusFlagSetsTheNumberOfCpusToOne) {
  CliResult r = run_busybox({"--cpus", "1", "nproc"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "1\n");
}

// --memory is the container's limit (its cgroup's memory.max); the VM has
// 64 MiB more for the guest kernel and vessel-init.
TEST_F(RunTest, MemoryFlagSetsTheContainersLimitAndSizesTheGuest) {
  CliResult limit = run_busybox({"--memory", "256m", "cat", "/sys/fs/cgroup/memory.max"});
  EXPECT_EQ(limit.exit_code, 0);
  EXPECT_EQ(limit.out, std::to_string(256u << 20) + "\n");
  CliResult r = run_busybox({"--memory", "256m", "cat", "/proc/meminfo"});
  EXPECT_EQ(r.exit_code, 0);
  std::optional<uint64_t> kib;
  for (const auto& line : split(r.out, '\n')) {
    if (!starts_with(line, "MemTotal:")) continue;
    std::string_view v = trim(std::string_view(line).substr(9));
    kib = parse_u64(v.substr(0, v.find(' ')));
  }
  ASSERT_TRUE(kib.has_value()) << "no MemTotal in /proc/meminfo:\n" << r.out;
  EXPECT_GE(*kib, 200u * 1024) << "MemTotal " << *kib << " kB";
  EXPECT_LE(*kib, (256u + 64) * 1024) << "MemTotal " << *kib << " kB";
}

// --- Terminals ------------------------------------------------------------------

TEST_F(RunTest, TtyFlagGivesTheProcessATerminal) {
  CliResult r = run_busybox({"-t", "tty"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.out, "/dev/pts/")) << r.out;
}

TEST_F(RunTest, InteractiveTtyHasTheCallersWindowSize) {
  RunOptions o;
  o.pty = true;
  o.window = {30, 100};
  CliResult r = run_busybox({"-it", "stty", "size"}, o);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.out, "30 100")) << r.out;
}

TEST_F(RunTest, InteractiveTtyFollowsAResize) {
  RunOptions o;
  o.pty = true;
  o.window = {30, 100};
  o.steps = {{.await = "30 100", .resize = WindowSize{40, 120}, .write = "\n"}};
  CliResult r = run_busybox({"-it", "sh", "-c", "stty size; read x; stty size"}, o);
  EXPECT_EQ(r.steps_done, 1u) << "never saw the first size; output:\n" << r.out;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.out, "40 120")) << r.out;
}

// --- Signals and processes --------------------------------------------------------

TEST_F(RunTest, SigtermIsForwardedToTheProcess) {
  RunOptions o;
  o.steps = {{.await = "ready", .signal = SIGTERM}};
  CliResult r = run_busybox(
      {"sh", "-c",
       "trap \"echo got-term; exit 0\" TERM; echo ready; while true; do sleep 0.1; done"},
      o);
  EXPECT_EQ(r.steps_done, 1u) << "never saw 'ready'";
  EXPECT_TRUE(contains(r.out, "got-term")) << r.out;
  EXPECT_EQ(r.exit_code, 0);
}

TEST_F(RunTest, OrphanedProcessesAreReaped) {
  CliResult r = run_busybox(
      {"sh", "-c", "for i in 1 2 3; do (sleep 0.2 &) ; done; sleep 1; ps -o stat,comm"});
  EXPECT_EQ(r.exit_code, 0);
  ASSERT_TRUE(contains(r.out, "STAT")) << "no ps output:\n" << r.out;
  EXPECT_EQ(zombie_lines(r.out), std::vector<std::string>{}) << r.out;
}

// A container outlives its CLI (as with Docker): its monitor owns the VM.
// A `vessel run` killed with SIGKILL (nothing forwarded) leaves the
// container running until it is stopped; rm -f then removes all of it.
TEST_F(RunTest, AForegroundContainerSurvivesItsKilledCliUntilRmForce) {
  RunOptions o;
  o.steps = {{.await = "running", .signal = SIGKILL}};
  CliResult r = vessel({"run", "--name", "fg", "--rootfs", paths().rootfs, "sh", "-c",
                        "echo running; while true; do sleep 0.1; done"},
                       o);
  EXPECT_EQ(r.steps_done, 1u) << "never saw 'running'";
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_EQ(find_processes({"qemu-system-x86_64"}, state_root()).size(), 1u);
  EXPECT_EQ(vessel({"ls", "-q"}).out.size(), 13u) << "one running container expected";
  CliResult exec = vessel({"exec", "fg", "echo", "alive"});
  EXPECT_EQ(exec.exit_code, 0) << exec.err;
  EXPECT_EQ(exec.out, "alive\n");

  CliResult rm = vessel({"rm", "-f", "fg"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(vessel({"ls", "-a", "-q"}).out, "");
  expect_no_leaks();
}

// The leak check that follows every run must be able to fail: while a
// container runs, it sees the VM's QEMU and virtiofsd and its runtime files.
TEST_F(RunTest, LeakCheckSeesTheRunningVm) {
  size_t qemus = 0, virtiofsds = 0, runtime_entries = 0;
  RunOptions o;
  o.steps = {{.await = "running", .write = "\n", .call = [&] {
                qemus = find_processes({"qemu-system-x86_64"}, state_root()).size();
                virtiofsds = find_processes({"virtiofsd"}, state_root()).size();
                std::error_code ec;
                for (auto it = std::filesystem::directory_iterator(state_root() + "/run", ec);
                     !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
                  ++runtime_entries;
              }}};
  CliResult r = run_busybox({"-i", "sh", "-c", "echo running; read x"}, o);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.steps_done, 1u);
  EXPECT_EQ(qemus, 1u);
  EXPECT_GE(virtiofsds, 1u);
  EXPECT_EQ(runtime_entries, 1u);
}

// --- Errors of Vessel itself: no VM needed ----------------------------------------

class RunErrorTest : public VmTest {
 protected:
  bool needs_vm() const override { return false; }
};

TEST_F(RunErrorTest, MissingRootfsExits125NamingThePath) {
  std::string missing = scratch_dir() + "/no-such-rootfs";
  CliResult r = run({"--rootfs", missing, "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_TRUE(contains(r.err, missing)) << "stderr: " << r.err;
}

TEST_F(RunErrorTest, BadMemoryExits125) {
  CliResult r = run({"--rootfs", scratch_dir(), "--memory", "lots", "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_TRUE(contains(r.err, "lots")) << "stderr: " << r.err;
}

TEST_F(RunErrorTest, BogusAccelExits125) {
  CliResult r = run({"--rootfs", scratch_dir(), "--accel", "bogus", "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_TRUE(contains(r.err, "bogus")) << "stderr: " << r.err;
}

}  // namespace
}  // namespace vessel::test
