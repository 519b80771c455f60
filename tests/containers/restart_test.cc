// Restart policies, applied by the monitor (issue 4): on-failure:N restarts
// a failing container N times, then leaves it exited; always restarts after
// a clean exit too; stop ends an always container for good.
#include <gtest/gtest.h>

#include "base/strings.h"
#include "containers/container_fixture.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

using RestartTest = ContainerTest;

size_t count_of(const std::string& haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + needle.size()))
    ++n;
  return n;
}

TEST_F(RestartTest, OnFailureRestartsTwiceThenStaysExited) {
  std::string id = run_detached(
      {"--restart", "on-failure:2", "--name", "flaky", kImage, "sh", "-c", "echo run; exit 3"});
  ASSERT_FALSE(id.empty());
  json j = inspect("flaky");
  EXPECT_EQ(j["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
  EXPECT_EQ(j["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);

  // Three runs (the first and two restarts), each a boot under TCG.
  bool finished =
      wait_until([&] { return status_of("flaky") == "exited" && processes_of(id).empty(); }, 180s);
  ASSERT_TRUE(finished) << "still " << status_of("flaky") << " after 180 s";
  j = inspect("flaky");
  EXPECT_EQ(j["RestartCount"], 2);
  EXPECT_EQ(j["State"]["ExitCode"], 3);
  EXPECT_EQ(count_of(logs_of("flaky"), "run\n"), 3u);
  EXPECT_EQ(vessel({"ls", "-q"}).out, "");
}

TEST_F(RestartTest, OnFailureDoesNotRestartACleanExit) {
  std::string id =
      run_detached({"--restart", "on-failure", "--name", "fine", kImage, "sh", "-c", "echo run"});
  ASSERT_FALSE(id.empty());
  CliResult w = vessel({"wait", "fine"});
  EXPECT_EQ(w.out, "0\n") << w.err;
  json j = inspect("fine");
  EXPECT_EQ(j["State"]["Status"], "exited");
  EXPECT_EQ(j["RestartCount"], 0);
  EXPECT_EQ(vessel({"logs", "fine"}).out, "run\n");
}

TEST_F(RestartTest, AlwaysRestartsAfterACleanExitAndStopEndsItForGood) {
  std::string id = run_detached(
      {"--restart", "always", "--name", "phoenix", kImage, "sh", "-c", "echo run; exit 0"});
  ASSERT_FALSE(id.empty());
  json j;
  bool restarted = wait_until(
      [&] {
        j = inspect("phoenix", false);
        return j.is_object() && j["RestartCount"].get<int>() >= 2;
      },
      180s);
  ASSERT_TRUE(restarted) << j.dump(2);
  EXPECT_GE(count_of(logs_of("phoenix"), "run\n"), 2u);
  std::string status = j["State"]["Status"];
  EXPECT_TRUE(status == "running" || status == "restarting") << status;

  CliResult stop = vessel({"stop", "-t", "1", "phoenix"});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  j = inspect("phoenix");
  EXPECT_EQ(j["State"]["Status"], "exited") << j.dump(2);
  // For good: the monitor, which restarts it, is gone with its VM.
  expect_no_processes(id);
  int count = j["RestartCount"];
  size_t runs = count_of(logs_of("phoenix"), "run\n");
  EXPECT_EQ(vessel({"ls", "-q"}).out, "");
  EXPECT_EQ(inspect("phoenix")["RestartCount"], count);

  // A start brings it back, with the policy still on: a run, then a restart.
  CliResult start = vessel({"start", "phoenix"});
  EXPECT_EQ(start.exit_code, 0) << start.err;
  EXPECT_TRUE(wait_until([&] { return count_of(logs_of("phoenix"), "run\n") >= runs + 2; }, 120s))
      << "not restarted after start:\n"
      << logs_of("phoenix");
  EXPECT_EQ(vessel({"stop", "phoenix"}).exit_code, 0);
  EXPECT_EQ(status_of("phoenix"), "exited");
}

}  // namespace
}  // namespace vessel::test
