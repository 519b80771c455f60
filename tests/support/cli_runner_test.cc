// The harness's own checks, with host programs standing in for the CLI: a
// VM test is only as good as the runner that reports what the user saw.
#include "support/cli_runner.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <cstring>
#include <random>

#include "sys/process.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;

TEST(RunProcess, KeepsStdoutAndStderrApartAndReportsTheExitCode) {
  CliResult r = run_process({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, {});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(r.timed_out);
}

TEST(RunProcess, ReportsADeathBySignalAs128PlusTheSignal) {
  CliResult r = run_process({"/bin/sh", "-c", "kill -9 $$"}, {});
  EXPECT_EQ(r.exit_code, 137);
}

TEST(RunProcess, Moves16MiBThroughStdinAndStdoutWithoutDeadlock) {
  std::string data(16 << 20, '\0');
  std::mt19937_64 rng(1);
  for (size_t i = 0; i < data.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(&data[i], &v, 8);
  }
  RunOptions o;
  o.stdin_data = data;
  o.timeout = 60s;
  CliResult r = run_process({"/bin/cat"}, o);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.out == data) << "got " << r.out.size() << " bytes";
}

TEST(RunProcess, StdinIsDevNullWithoutInput) {
  CliResult r = run_process({"/bin/sh", "-c", "cat; echo end"}, {});
  EXPECT_EQ(r.out, "end\n");
}

TEST(RunProcess, AddsEnvironmentVariables) {
  RunOptions o;
  o.env = {"HOME=/elsewhere", "VESSEL_TEST_EXTRA=x y"};
  CliResult r = run_process({"/bin/sh", "-c", "echo \"$HOME|$VESSEL_TEST_EXTRA\""}, o);
  EXPECT_EQ(r.out, "/elsewhere|x y\n");
}

TEST(RunProcess, KillsAProcessThatOutlivesTheTimeout) {
  RunOptions o;
  o.timeout = 1s;
  auto start = std::chrono::steady_clock::now();
  CliResult r = run_process({"/bin/sh", "-c", "echo started; exec sleep 60"}, o);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_EQ(r.out, "started\n");  // output before the kill is kept
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST(RunProcess, SendsASignalOnceTheOutputAppears) {
  RunOptions o;
  o.timeout = 30s;
  o.steps = {{.await = "ready", .signal = SIGTERM}};
  CliResult r =
      run_process({"/bin/sh", "-c",
                   "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.1; done"},
                  o);
  EXPECT_EQ(r.steps_done, 1u);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("got-term"), std::string::npos) << r.out;
}

TEST(RunProcess, WritesStdinAfterTheOutputAppears) {
  RunOptions o;
  o.timeout = 30s;
  o.steps = {{.await = "question?", .write = "answer\n"}};
  CliResult r = run_process({"/bin/sh", "-c", "echo question?; read a; echo \"got $a\""}, o);
  EXPECT_EQ(r.out, "question?\ngot answer\n");
}

TEST(RunProcess, CallsBackWhileTheProcessRuns) {
  RunOptions o;
  o.timeout = 30s;
  bool called = false;
  o.steps = {{.await = "ready", .write = "go\n", .call = [&] { called = true; }}};
  CliResult r = run_process({"/bin/sh", "-c", "echo ready; read x; echo \"$x\""}, o);
  EXPECT_TRUE(called);
  EXPECT_EQ(r.out, "ready\ngo\n");
}

TEST(RunProcessPty, GivesATerminalOfTheRequestedSize) {
  RunOptions o;
  o.pty = true;
  o.window = {30, 100};
  o.timeout = 30s;
  CliResult r = run_process({"/bin/sh", "-c", "tty; stty size"}, o);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("/dev/pts/"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("30 100"), std::string::npos) << r.out;
}

TEST(RunProcessPty, ResizesTheTerminalAndSignalsTheForegroundProcess) {
  RunOptions o;
  o.pty = true;
  o.window = {30, 100};
  o.timeout = 30s;
  o.steps = {{.await = "30 100", .resize = WindowSize{40, 120}, .write = "\n"}};
  CliResult r =
      run_process({"/bin/sh", "-c", "trap 'echo winch' WINCH; stty size; read x; stty size"}, o);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.steps_done, 1u);
  EXPECT_NE(r.out.find("winch"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("40 120"), std::string::npos) << r.out;
}

TEST(ZombieLines, FindsOnlyZombies) {
  EXPECT_TRUE(zombie_lines("STAT COMMAND\nS    sh\nR    ps\n").empty());
  EXPECT_EQ(zombie_lines("STAT COMMAND\nS    sh\nZ    sleep\nR    ps\n"),
            std::vector<std::string>{"Z    sleep"});
  EXPECT_EQ(zombie_lines("Z").size(), 1u);
  EXPECT_EQ(zombie_lines("  Zs  [sh]\n").size(), 1u);
}

TEST(FindProcesses, FindsAProcessByNameAndInheritedEnvironment) {
  const std::string marker = "/tmp/vessel-find-processes-" + std::to_string(::getpid());
  ASSERT_EQ(::setenv("VESSEL_TEST_STATE_ROOT", marker.c_str(), 1), 0);
  auto sleeper = sys::Process::spawn({.argv = {"/bin/sleep", "30"}});
  ::unsetenv("VESSEL_TEST_STATE_ROOT");
  ASSERT_TRUE(sleeper.ok()) << sleeper.error().to_string();
  EXPECT_EQ(find_processes({"sleep"}, marker).size(), 1u);
  EXPECT_TRUE(find_processes({"qemu-system-x86_64"}, marker).empty());
  EXPECT_TRUE(find_processes({"sleep"}, marker + "-other").empty());
  ASSERT_TRUE(sleeper->kill(SIGKILL).ok());
  ASSERT_TRUE(sleeper->wait().ok());
  EXPECT_TRUE(find_processes({"sleep"}, marker).empty());
}

TEST(ShellQuote, QuotesWhatAShellWouldSplit) {
  EXPECT_EQ(shell_quote({"sh", "-c", "exit 7"}), "sh -c 'exit 7'");
  EXPECT_EQ(shell_quote({"echo", "it's", ""}), "echo 'it'\\''s' ''");
}

}  // namespace
}  // namespace vessel::test
