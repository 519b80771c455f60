// Containers that live on their own (issue 4): run -d, ls, exec, logs, stop,
// rm, create/start/wait/restart, names and ids, exit codes, each through the
// real `vessel` CLI with a temporary state root, as a user would.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>

#include <regex>

#include "base/strings.h"
#include "containers/container_fixture.h"
#include "sys/fs.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

// A main process that says it is ready, then idles until stopped.
const std::string kIdle = "echo ready; while true; do sleep 0.1; done";

using LifecycleTest = ContainerTest;

// --- run -d, ls, exec ------------------------------------------------------------

TEST_F(LifecycleTest, RunDetachedIsListedRunningAndExecReadsWhatItWrote) {
  std::string id =
      run_detached({"--name", "web", kImage, "sh", "-c", "echo 5 > /tmp/count; " + kIdle});
  ASSERT_FALSE(id.empty());
  std::string id12 = id.substr(0, 12);

  CliResult table = vessel({"ls"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  std::vector<std::string> rows = lines(table.out);
  ASSERT_EQ(rows.size(), 2u) << table.out;
  EXPECT_TRUE(starts_with(rows[0], "CONTAINER ID")) << table.out;
  EXPECT_TRUE(starts_with(rows[1], id12)) << table.out;
  EXPECT_TRUE(contains(rows[1], "Up ")) << table.out;
  EXPECT_TRUE(contains(rows[1], "web")) << table.out;
  EXPECT_TRUE(contains(rows[1], "vessel/busybox")) << table.out;

  CliResult js = vessel({"ls", "--format", "json"});
  EXPECT_EQ(js.exit_code, 0) << js.err;
  json list = json::parse(js.out, nullptr, false);
  ASSERT_TRUE(list.is_array()) << js.out;
  ASSERT_EQ(list.size(), 1u) << js.out;
  EXPECT_EQ(list[0]["ID"], id);
  EXPECT_EQ(list[0]["State"], "running");
  EXPECT_EQ(list[0]["Names"], "web");

  CliResult quiet = vessel({"ls", "-q"});
  EXPECT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.out, id12 + "\n");

  ASSERT_TRUE(wait_for_log("web", "ready"));
  CliResult cat = vessel({"exec", "web", "cat", "/tmp/count"});
  EXPECT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_EQ(cat.out, "5\n");

  // By id too; and the monitor's pid is the State.Pid.
  CliResult by_id = vessel({"exec", id, "cat", "/tmp/count"});
  EXPECT_EQ(by_id.out, "5\n") << by_id.err;
  json j = inspect("web");
  EXPECT_EQ(j["Id"], id);
  EXPECT_EQ(j["Name"], "/web");
  EXPECT_EQ(j["State"]["Status"], "running");
  EXPECT_EQ(j["State"]["Running"], true);
  EXPECT_GT(j["State"]["Pid"].get<int>(), 0);
}

// --- logs ------------------------------------------------------------------------

TEST_F(LifecycleTest, LogsKeepStdoutAndStderrApart) {
  std::string id = run_detached(
      {"--name", "talker", kImage, "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 0"});
  ASSERT_FALSE(id.empty());
  CliResult w = vessel({"wait", "talker"});
  EXPECT_EQ(w.exit_code, 0) << w.err;
  EXPECT_EQ(w.out, "0\n");

  CliResult logs = vessel({"logs", "talker"});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_EQ(logs.out, "to-stdout\n");
  EXPECT_EQ(logs.err, "to-stderr\n");
}

TEST_F(LifecycleTest, LogsTailAndTimestamps) {
  std::string id =
      run_detached({"--name", "counter", kImage, "sh", "-c", "echo one; echo two; echo three"});
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(vessel({"wait", "counter"}).out, "0\n");

  EXPECT_EQ(vessel({"logs", "counter"}).out, "one\ntwo\nthree\n");
  EXPECT_EQ(vessel({"logs", "-n", "1", "counter"}).out, "three\n");
  EXPECT_EQ(vessel({"logs", "--tail", "2", "counter"}).out, "two\nthree\n");

  CliResult ts = vessel({"logs", "--timestamps", "counter"});
  EXPECT_EQ(ts.exit_code, 0) << ts.err;
  std::vector<std::string> got = lines(ts.out);
  ASSERT_EQ(got.size(), 3u) << ts.out;
  // RFC 3339 with nanoseconds, UTC, then the line: what docker logs -t shows.
  std::regex line_re(R"((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (.*))");
  std::string previous;
  const char* words[] = {"one", "two", "three"};
  for (size_t i = 0; i < got.size(); ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(got[i], m, line_re)) << got[i];
    EXPECT_EQ(m[2], words[i]);
    EXPECT_GE(m[1].str(), previous) << "timestamps go backwards:\n" << ts.out;
    previous = m[1];
  }
  EXPECT_EQ(vessel({"logs", "-t", "-n", "1", "counter"}).out, got[2] + "\n");
}

TEST_F(LifecycleTest, LogsFollowPrintsNewLinesAndEndsWhenTheContainerExits) {
  // Each line waits for a file the test creates with exec, so "second" and
  // "third" are written only while logs -f is following.
  std::string script =
      "echo first; until [ -e /tmp/go ]; do sleep 0.1; done; echo second; "
      "until [ -e /tmp/end ]; do sleep 0.1; done; echo third; exit 3";
  std::string id = run_detached({"--name", "follow", kImage, "sh", "-c", script});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_for_log("follow", "first"));

  RunOptions o;
  o.timeout = 120s;
  CliResult touch_go, touch_end;
  o.steps = {
      {.await = "first\n",
       .call =
           [&] {
             touch_go = vessel({"exec", "follow", "touch", "/tmp/go"});
           }},
      {.await = "second\n",
       .call =
           [&] {
             touch_end = vessel({"exec", "follow", "touch", "/tmp/end"});
           }},
  };
  CliResult f = vessel({"logs", "-f", "follow"}, o);
  EXPECT_EQ(touch_go.exit_code, 0) << touch_go.err;
  EXPECT_EQ(touch_end.exit_code, 0) << touch_end.err;
  EXPECT_EQ(f.steps_done, 2u) << "logs -f did not follow; stdout:\n" << f.out;
  EXPECT_FALSE(f.timed_out) << "logs -f did not end when the container exited";
  EXPECT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(f.out, "first\nsecond\nthird\n");
  EXPECT_EQ(status_of("follow"), "exited");
  EXPECT_EQ(inspect("follow")["State"]["ExitCode"], 3);
}

// --- stop --------------------------------------------------------------------------

TEST_F(LifecycleTest, StopIsGracefulTheTermTrapRuns) {
  std::string id = run_detached(
      {"--name", "polite", kImage, "sh", "-c", "trap 'echo got TERM; exit 0' TERM; " + kIdle});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_for_log("polite", "ready"));

  auto t0 = Clock::now();
  CliResult stop = vessel({"stop", "polite"});
  auto took = Clock::now() - t0;
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ(stop.out, "polite\n");
  // Graceful: it did not wait for the 10 s default timeout to SIGKILL.
  EXPECT_LT(took, 8s);
  json j = inspect("polite");
  EXPECT_EQ(j["State"]["Status"], "exited");
  EXPECT_EQ(j["State"]["ExitCode"], 0);
  EXPECT_TRUE(contains(vessel({"logs", "polite"}).out, "got TERM"));
  expect_no_processes(id);
}

TEST_F(LifecycleTest, StopFallsBackToSigkillAfterTheTimeout) {
  std::string id =
      run_detached({"--name", "stubborn", kImage, "sh", "-c", "trap '' TERM; " + kIdle});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_for_log("stubborn", "ready"));

  auto t0 = Clock::now();
  CliResult stop = vessel({"stop", "-t", "1", "stubborn"});
  auto took = Clock::now() - t0;
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_GE(took, 1s);
  EXPECT_LT(took, 8s) << "stop -t 1 waited about as long as the default 10 s";
  json j = inspect("stubborn");
  EXPECT_EQ(j["State"]["Status"], "exited");
  EXPECT_EQ(j["State"]["ExitCode"], 128 + SIGKILL);
  expect_no_processes(id);
}

TEST_F(LifecycleTest, KillSendsTheSignalToTheMainProcess) {
  std::string id = run_detached(
      {"--name", "target", kImage, "sh", "-c", "trap 'echo got USR1; exit 9' USR1; " + kIdle});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_for_log("target", "ready"));
  CliResult k = vessel({"kill", "-s", "USR1", "target"});
  EXPECT_EQ(k.exit_code, 0) << k.err;
  EXPECT_EQ(vessel({"wait", "target"}).out, "9\n");
  EXPECT_TRUE(contains(vessel({"logs", "target"}).out, "got USR1"));
  CliResult again = vessel({"kill", "target"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(contains(again.err, "is not running")) << again.err;
}

// --- rm --------------------------------------------------------------------------

TEST_F(LifecycleTest, RmOfARunningContainerIsRefusedAndRmForceLeavesNothing) {
  std::string id = run_detached({"--name", "victim", kImage, "sh", "-c", kIdle});
  ASSERT_FALSE(id.empty());
  EXPECT_FALSE(processes_of(id).empty()) << "the check below could not fail";

  CliResult refused = vessel({"rm", "victim"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(contains(refused.err, "victim")) << refused.err;
  EXPECT_TRUE(contains(refused.err, "rm -f") || contains(refused.err, "stop"))
      << "no hint: " << refused.err;
  EXPECT_EQ(status_of("victim"), "running");

  CliResult forced = vessel({"rm", "-f", "victim"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(forced.out, "victim\n");
  expect_gone(id);
  EXPECT_EQ(vessel({"ls", "-a", "-q"}).out, "");
  expect_no_leaks();
}

TEST_F(LifecycleTest, RmOfAStoppedContainerLeavesNothing) {
  std::string id = run_detached({"--name", "brief", kImage, "true"});
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(vessel({"wait", "brief"}).out, "0\n");
  CliResult rm = vessel({"rm", id.substr(0, 12)});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  expect_gone(id);
  expect_no_leaks();
}

// --- names and ids ----------------------------------------------------------------

TEST_F(LifecycleTest, ADuplicateNameIsRefused) {
  CliResult first = vessel({"create", "--name", "twin", kImage, "true"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  CliResult second = vessel({"create", "--name", "twin", kImage, "true"});
  EXPECT_EQ(second.exit_code, 125);
  EXPECT_TRUE(contains(second.err, "twin")) << second.err;
  EXPECT_TRUE(contains(second.err, "in use")) << second.err;
  EXPECT_EQ(second.out, "");
  CliResult run = vessel({"run", "-d", "-m", kMemory, "--name", "twin", kImage, "true"});
  EXPECT_EQ(run.exit_code, 125);
  EXPECT_TRUE(contains(run.err, "in use")) << run.err;
  EXPECT_EQ(all_ids().size(), 1u) << "a refused container was recorded";
}

TEST_F(LifecycleTest, AnIdPrefixWorksInEveryVerb) {
  CliResult created = vessel({"create", "-m", kMemory, kImage, "sh", "-c", kIdle});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::string id(trim(created.out));
  ASSERT_TRUE(is_full_id(id)) << created.out;
  std::string p = id.substr(0, 7);

  EXPECT_EQ(inspect(p)["Id"], id);
  CliResult start = vessel({"start", p});
  EXPECT_EQ(start.exit_code, 0) << start.err;
  EXPECT_EQ(start.out, p + "\n");
  ASSERT_TRUE(wait_for_log(p, "ready"));
  CliResult exec = vessel({"exec", p, "echo", "in"});
  EXPECT_EQ(exec.exit_code, 0) << exec.err;
  EXPECT_EQ(exec.out, "in\n");
  EXPECT_EQ(vessel({"logs", p}).out, "ready\n");
  CliResult restart = vessel({"restart", "-t", "1", p});
  EXPECT_EQ(restart.exit_code, 0) << restart.err;
  EXPECT_EQ(restart.out, p + "\n");
  CliResult kill = vessel({"kill", "-s", "KILL", p});
  EXPECT_EQ(kill.exit_code, 0) << kill.err;
  CliResult wait = vessel({"wait", p});
  EXPECT_EQ(wait.exit_code, 0) << wait.err;
  EXPECT_EQ(wait.out, "137\n");
  CliResult stop = vessel({"stop", p});  // a stopped container: nothing to do
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  CliResult rm = vessel({"rm", p});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(rm.out, p + "\n");
  expect_gone(id);
}

TEST_F(LifecycleTest, AnUnknownContainerIsNoSuchContainerWithExit1) {
  const std::vector<std::vector<std::string>> commands = {
      {"inspect", "nosuch"}, {"start", "nosuch"},  {"stop", "nosuch"},        {"restart", "nosuch"},
      {"kill", "nosuch"},    {"rm", "nosuch"},     {"rm", "-f", "nosuch"},    {"logs", "nosuch"},
      {"wait", "nosuch"},    {"attach", "nosuch"}, {"exec", "nosuch", "true"}};
  for (const auto& c : commands) {
    CliResult r = vessel(c);
    EXPECT_EQ(r.exit_code, 1) << shell_quote(c);
    EXPECT_TRUE(contains(r.err, "No such container: nosuch")) << shell_quote(c) << ": " << r.err;
  }
}

TEST_F(LifecycleTest, ExecIntoAContainerThatIsNotRunningFails) {
  CliResult created = vessel({"create", "--name", "idle", kImage, "true"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  CliResult never_started = vessel({"exec", "idle", "true"});
  EXPECT_EQ(never_started.exit_code, 1);
  EXPECT_TRUE(contains(never_started.err, "is not running")) << never_started.err;

  CliResult ran = vessel({"run", "-m", kMemory, "--name", "done", kImage, "true"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  CliResult exited = vessel({"exec", "done", "true"});
  EXPECT_EQ(exited.exit_code, 1);
  EXPECT_TRUE(contains(exited.err, "is not running")) << exited.err;
  EXPECT_TRUE(contains(exited.err, "done")) << exited.err;
}

// --- create, start, wait, restart ----------------------------------------------------

TEST_F(LifecycleTest, CreateThenStartThenWaitGivesTheExitCode) {
  CliResult created =
      vessel({"create", "-m", kMemory, "--name", "job", kImage, "sh", "-c", "exit 3"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::string id(trim(created.out));
  EXPECT_TRUE(is_full_id(id)) << created.out;
  EXPECT_EQ(status_of("job"), "created");
  EXPECT_EQ(vessel({"ls", "-q"}).out, "") << "a created container is not running";
  EXPECT_EQ(vessel({"ls", "-a", "-q"}).out, id.substr(0, 12) + "\n");

  CliResult start = vessel({"start", "job"});
  EXPECT_EQ(start.exit_code, 0) << start.err;
  EXPECT_EQ(start.out, "job\n");
  CliResult wait = vessel({"wait", "job"});
  EXPECT_EQ(wait.exit_code, 0) << wait.err;
  EXPECT_EQ(wait.out, "3\n");
  json j = inspect("job");
  EXPECT_EQ(j["State"]["Status"], "exited");
  EXPECT_EQ(j["State"]["ExitCode"], 3);
  expect_no_processes(id);
}

TEST_F(LifecycleTest, StartAttachShowsTheOutputAndGivesTheExitCode) {
  CliResult created = vessel({"create", "-m", kMemory, "--name", "hello", kImage, "sh", "-c",
                              "echo hi; echo oops >&2; exit 2"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  CliResult start = vessel({"start", "-a", "hello"});
  EXPECT_EQ(start.exit_code, 2) << start.err;
  EXPECT_EQ(start.out, "hi\n");
  EXPECT_TRUE(contains(start.err, "oops")) << start.err;
  EXPECT_EQ(status_of("hello"), "exited");
}

TEST_F(LifecycleTest, StartInteractiveForwardsStdin) {
  CliResult created = vessel({"create", "-i", "-m", kMemory, "--name", "reader", kImage, "sh", "-c",
                              "read x; echo got $x"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  RunOptions o;
  o.stdin_data = "hello\n";
  CliResult start = vessel({"start", "-a", "-i", "reader"}, o);
  EXPECT_EQ(start.exit_code, 0) << start.err;
  EXPECT_EQ(start.out, "got hello\n");
}

TEST_F(LifecycleTest, RestartGivesANewStartKeepingTheWritableLayer) {
  std::string id =
      run_detached({"--name", "again", kImage, "sh", "-c", "echo boot >> /boots; " + kIdle});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_for_log("again", "ready"));
  json before = inspect("again");
  CliResult restart = vessel({"restart", "-t", "1", "again"});
  EXPECT_EQ(restart.exit_code, 0) << restart.err;
  EXPECT_EQ(restart.out, "again\n");
  json after = inspect("again");
  EXPECT_EQ(after["State"]["Status"], "running");
  EXPECT_GT(after["State"]["StartedAt"].get<std::string>(),
            before["State"]["StartedAt"].get<std::string>());
  EXPECT_NE(after["State"]["Pid"], before["State"]["Pid"]) << "the same monitor?";
  // A new main process in the same container: the file it appends to
  // survived (as with Docker, a restart keeps the container's files).
  CliResult boots = vessel({"exec", "again", "sh", "-c",
                            "until [ $(wc -l < /boots) -ge 2 ]; do sleep 0.1; done; cat /boots"},
                           {.timeout = 60s});
  EXPECT_EQ(boots.out, "boot\nboot\n") << boots.err;
}

// An image root is one disk of the container's own (root.qcow2 over the
// image's writable base, shared read-only): the guest mounts it read-write,
// what the container writes stays in its own small file and survives a
// stop and start, another container of the image does not see it, and
// --read-only still runs from the image's snapshot alone.
TEST_F(LifecycleTest, AnImageRootIsADiskOfItsOwnOverTheImagesBase) {
  std::string id = run_detached({"--name", "one", kImage, "sh", "-c",
                                 "dd if=/dev/zero of=/big bs=1M count=4 2>/dev/null; "
                                 "echo kept >> /note; " +
                                     kIdle});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_for_log("one", "ready"));
  CliResult mounts = vessel({"exec", "one", "sh", "-c", "grep ' / ' /proc/mounts"});
  EXPECT_EQ(mounts.exit_code, 0) << mounts.err;
  EXPECT_TRUE(contains(mounts.out, " / ext4 rw,")) << mounts.out;
  std::string disk = state_root() + "/containers/" + id + "/root.qcow2";
  struct stat st;
  ASSERT_EQ(::stat(disk.c_str(), &st), 0) << disk;
  // The 4 MiB written, its metadata, the qcow2's tables: far from the 8 GiB
  // the container may use, and no copy of the image.
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 32ull << 20);
  auto bases = sys::list_dir(state_root() + "/snapshots");
  ASSERT_TRUE(bases.ok());
  EXPECT_EQ(std::count_if(bases->begin(), bases->end(),
                          [](const std::string& n) { return n.ends_with(".root.ext4"); }),
            1);
  EXPECT_EQ(vessel({"stop", "-t", "1", "one"}).exit_code, 0);
  EXPECT_EQ(vessel({"start", "one"}).exit_code, 0);
  // The command runs again and appends its line: the first run's line is
  // still there if the disk kept it. (Reading before the second run has
  // written would race with it, so wait for both lines.)
  CliResult note;
  bool both = wait_until(
      [&] {
        note = vessel({"exec", "one", "cat", "/note"}, {.timeout = 60s});
        return note.out == "kept\nkept\n";
      },
      60s);
  EXPECT_TRUE(both) << "/note after a stop and a start: '" << note.out << "'" << note.err;
  CliResult other = vessel(
      {"run", "--rm", "-m", kMemory, kImage, "sh", "-c", "cat /note 2>/dev/null || echo none"});
  EXPECT_EQ(other.out, "none\n") << other.err;
  CliResult ro = vessel({"run", "--rm", "-m", kMemory, "--read-only", kImage, "sh", "-c",
                         "grep ' / ' /proc/mounts; touch /x 2>/dev/null || echo refused"});
  EXPECT_TRUE(contains(ro.out, " / ext4 ro,")) << ro.out << ro.err;
  EXPECT_TRUE(contains(ro.out, "refused")) << ro.out;
  EXPECT_EQ(vessel({"rm", "-f", "one"}).exit_code, 0);
  EXPECT_NE(::access(disk.c_str(), F_OK), 0) << "the container's disk outlived it";
}

TEST_F(LifecycleTest, ForegroundRunLeavesAnExitedContainer) {
  CliResult r =
      vessel({"run", "-m", kMemory, "--name", "fg", kImage, "sh", "-c", "echo hi; exit 5"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_EQ(r.out, "hi\n");
  json list = list_all();
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0]["Names"], "fg");
  EXPECT_EQ(list[0]["State"], "exited");
  EXPECT_EQ(list[0]["ExitCode"], 5);
  EXPECT_TRUE(starts_with(list[0]["Status"].get<std::string>(), "Exited (5)")) << list.dump();
  EXPECT_EQ(vessel({"ls", "-q"}).out, "");
  // Its logs are kept.
  EXPECT_EQ(vessel({"logs", "fg"}).out, "hi\n");
  expect_no_leaks();
}

TEST_F(LifecycleTest, RunRmLeavesNothing) {
  CliResult r = vessel({"run", "--rm", "-m", kMemory, "--name", "gone", kImage, "echo", "hi"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hi\n");
  EXPECT_EQ(vessel({"ls", "-a", "-q"}).out, "");
  auto names = sys::list_dir(state_root() + "/containers");
  ASSERT_TRUE(names.ok()) << names.error().to_string();
  EXPECT_EQ(*names, std::vector<std::string>{});
  expect_no_leaks();
}

// --- exit codes ----------------------------------------------------------------------

TEST_F(LifecycleTest, ForegroundRunPassesTheExitCodeThrough) {
  EXPECT_EQ(vessel({"run", "--rm", "-m", kMemory, kImage, "sh", "-c", "exit 42"}).exit_code, 42);
  EXPECT_EQ(vessel({"run", "--rm", "-m", kMemory, kImage, "sh", "-c", "kill -9 $$"}).exit_code,
            128 + SIGKILL);
  CliResult missing = vessel({"run", "--rm", "-m", kMemory, kImage, "nosuchcmd"});
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_TRUE(contains(missing.err, "nosuchcmd")) << missing.err;
  CliResult not_exec = vessel({"run", "--rm", "-m", kMemory, kImage, "/etc/passwd"});
  EXPECT_EQ(not_exec.exit_code, 126);
  EXPECT_TRUE(contains(not_exec.err, "/etc/passwd")) << not_exec.err;
  EXPECT_EQ(vessel({"ls", "-a", "-q"}).out, "") << "--rm left a container";
  expect_no_leaks();
}

TEST_F(LifecycleTest, ExecPassesTheExitCodeThrough) {
  std::string id = run_detached({"--name", "box", kImage, "sh", "-c", kIdle});
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(vessel({"exec", "box", "sh", "-c", "exit 42"}).exit_code, 42);
  EXPECT_EQ(vessel({"exec", "box", "sh", "-c", "kill -9 $$"}).exit_code, 128 + SIGKILL);
  CliResult missing = vessel({"exec", "box", "nosuchcmd"});
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_TRUE(contains(missing.err, "nosuchcmd")) << missing.err;
  CliResult not_exec = vessel({"exec", "box", "/etc/passwd"});
  EXPECT_EQ(not_exec.exit_code, 126);
  EXPECT_TRUE(contains(not_exec.err, "/etc/passwd")) << not_exec.err;
  // The container is unharmed.
  EXPECT_EQ(status_of("box"), "running");
  EXPECT_EQ(vessel({"exec", "box", "echo", "still"}).out, "still\n");
}

TEST_F(LifecycleTest, ExecSeesTheContainersEnvironmentAndTakesItsFlags) {
  std::string id =
      run_detached({"--name", "envy", "-e", "FROM_RUN=yes", kImage, "sh", "-c", kIdle});
  ASSERT_FALSE(id.empty());
  CliResult env = vessel({"exec", "-e", "EXTRA=1", "-w", "/tmp", "-u", "1000:1000", "envy", "sh",
                          "-c", "echo $FROM_RUN $EXTRA $(pwd) $(id -u):$(id -g)"});
  EXPECT_EQ(env.exit_code, 0) << env.err;
  EXPECT_EQ(env.out, "yes 1 /tmp 1000:1000\n");
  RunOptions o;
  o.stdin_data = "piped\n";
  CliResult in = vessel({"exec", "-i", "envy", "cat"}, o);
  EXPECT_EQ(in.out, "piped\n") << in.err;
}

}  // namespace
}  // namespace vessel::test
