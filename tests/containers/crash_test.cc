// Crashes (issue 4): a monitor killed with SIGKILL takes its VM along and
// the container shows exited; a CLI killed in the middle of `run -d` leaves
// a state the next command sees consistently, and rm -f cleans it all.
#include <gtest/gtest.h>
#include <signal.h>

#include "base/strings.h"
#include "containers/container_fixture.h"
#include "sys/fs.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

using CrashTest = ContainerTest;

std::string command_of(int pid) {
  auto cmdline = sys::read_file("/proc/" + std::to_string(pid) + "/cmdline", 1 << 16);
  return cmdline.ok() ? *cmdline : "";
}

TEST_F(CrashTest, AMonitorKilledWithSigkillTakesItsVmAlongAndTheContainerShowsExited) {
  std::string id = run_detached(
      {"--name", "orphan", kImage, "sh", "-c", "echo ready; while true; do sleep 0.1; done"});
  ASSERT_FALSE(id.empty());
  json j = inspect("orphan");
  ASSERT_TRUE(j["State"]["Pid"].is_number()) << j.dump();
  int monitor = j["State"]["Pid"].get<int>();
  ASSERT_GT(monitor, 0);
  ASSERT_TRUE(contains(command_of(monitor), "vessel-monitor"))
      << "State.Pid " << monitor << " is not a monitor: " << command_of(monitor);
  std::vector<int> qemus = find_process_ids({"qemu-system-x86_64"}, id.substr(0, 12));
  ASSERT_EQ(qemus.size(), 1u) << "the VM's QEMU, found by its runtime directory";

  ASSERT_EQ(::kill(monitor, SIGKILL), 0);
  bool vm_gone = wait_until(
      [&] {
        return find_process_ids({"qemu-system-x86_64", "virtiofsd"}, id.substr(0, 12)).empty();
      },
      10s);
  EXPECT_TRUE(vm_gone) << "QEMU outlived its monitor: " << testing::PrintToString(processes_of(id));

  // The next command sees it exited, not running forever.
  json list = list_all();
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0]["State"], "exited") << list.dump();
  EXPECT_EQ(vessel({"ls", "-q"}).out, "");
  json after = inspect("orphan");
  EXPECT_EQ(after["State"]["Running"], false);
  EXPECT_EQ(after["State"]["Pid"], 0);
  CliResult exec = vessel({"exec", "orphan", "true"});
  EXPECT_EQ(exec.exit_code, 1);
  EXPECT_TRUE(contains(exec.err, "is not running")) << exec.err;

  CliResult rm = vessel({"rm", "orphan"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  expect_gone(id);
  expect_no_leaks();
}

TEST_F(CrashTest, ACliKilledDuringRunDetachedLeavesAConsistentState) {
  // Kill the CLI once the monitor exists, while the CLI waits for the boot.
  bool monitor_seen = false;
  RunOptions o;
  o.timeout = 120s;
  o.steps = {
      {.await = "",
       .call =
           [&] {
             monitor_seen = wait_until(
                 [&] { return !find_process_ids({"vessel-monitor"}, state_root()).empty(); }, 60s);
           }},
      {.await = "", .signal = SIGKILL},
  };
  CliResult r = vessel({"run", "-d", "-m", kMemory, "--name", "cut", kImage, "sh", "-c",
                        "echo ready; while true; do sleep 0.1; done"},
                       o);
  ASSERT_TRUE(monitor_seen) << "no monitor appeared; stderr: " << r.err;
  ASSERT_EQ(r.exit_code, 128 + SIGKILL) << "the CLI ended before it was killed: " << r.err;
  EXPECT_EQ(r.out, "") << "killed before it could print the id";

  // Never stuck: "created" only while the boot goes on, then running (the
  // monitor carries on without its CLI) or exited.
  std::string status;
  bool settled = wait_until(
      [&] {
        json list = list_all(false);
        status = list.size() == 1 ? list[0]["State"].get<std::string>() : "?";
        return status == "running" || status == "exited";
      },
      90s);
  EXPECT_TRUE(settled) << "ls -a still says '" << status << "'";
  json list = list_all();
  ASSERT_EQ(list.size(), 1u) << list.dump();
  std::string id = list[0]["ID"];
  if (status == "running") {
    CliResult exec = vessel({"exec", "cut", "echo", "alive"});
    EXPECT_EQ(exec.out, "alive\n") << exec.err;
  }

  CliResult rm = vessel({"rm", "-f", "cut"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  expect_gone(id);
  expect_no_leaks();
}

}  // namespace
}  // namespace vessel::test
