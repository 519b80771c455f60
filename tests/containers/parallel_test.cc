// Many containers at once (issue 4): 8 `run -d` in parallel from one image
// all come up, each with its own writable layer, and 8 `rm -f` in parallel
// leave nothing behind. Under TCG on 2 cores the boots queue up: the
// timeouts are generous.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "base/strings.h"
#include "containers/container_fixture.h"
#include "sys/fs.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;

constexpr int kContainers = 8;

using ParallelTest = ContainerTest;

// The first use of a state root: 8 CLIs create its state store and load
// the embedded image into it at once. `create` boots nothing, so this is
// about the stores alone.
TEST_F(ParallelTest, EightCreatesAtOnceOnAFreshStateRootAllSucceed) {
  std::vector<CliResult> creates(kContainers);
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kContainers; ++i)
      threads.emplace_back([&, i] {
        creates[i] = vessel({"create", "--name", "c" + std::to_string(i), kImage, "true"});
      });
    for (auto& t : threads)
      t.join();
  }
  for (int i = 0; i < kContainers; ++i) {
    EXPECT_EQ(creates[i].exit_code, 0) << "c" << i << ": " << creates[i].err;
    EXPECT_TRUE(is_full_id(std::string(trim(creates[i].out)))) << creates[i].out;
  }
  EXPECT_EQ(all_ids().size(), static_cast<size_t>(kContainers));
}

TEST_F(ParallelTest, EightDetachedRunsFromOneImageEachHaveTheirOwnWritableLayer) {
  // The state store exists and holds the image (their first use by
  // concurrent CLIs is the test above): this test is about the containers.
  CliResult primer = vessel({"create", "--name", "primer", kImage, "true"});
  ASSERT_EQ(primer.exit_code, 0) << primer.err;
  ASSERT_EQ(vessel({"rm", "primer"}).exit_code, 0);
  std::vector<CliResult> runs(kContainers);
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kContainers; ++i)
      threads.emplace_back([&, i] {
        // Each writes its own number to the same path of the shared image.
        runs[i] = vessel({"run", "-d", "-m", kMemory, "--cpus", "1", "--name",
                          "c" + std::to_string(i), kImage, "sh", "-c",
                          "echo " + std::to_string(i) +
                              " > /data.txt; echo ready; while true; do sleep 1; done"},
                         {.timeout = 300s});
      });
    for (auto& t : threads)
      t.join();
  }
  std::set<std::string> ids;
  for (int i = 0; i < kContainers; ++i) {
    EXPECT_EQ(runs[i].exit_code, 0) << "c" << i << ": " << runs[i].err;
    std::string id(trim(runs[i].out));
    EXPECT_TRUE(is_full_id(id)) << "c" << i << " printed '" << runs[i].out << "'";
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kContainers)) << "ids are not unique";

  CliResult ls = vessel({"ls", "-q"});
  EXPECT_EQ(lines(ls.out).size(), static_cast<size_t>(kContainers)) << ls.out;
  for (int i = 0; i < kContainers; ++i) {
    std::string name = "c" + std::to_string(i);
    if (runs[i].exit_code != 0 || !wait_for_log(name, "ready", 120s)) continue;
    CliResult cat = vessel({"exec", name, "cat", "/data.txt"}, {.timeout = 120s});
    EXPECT_EQ(cat.exit_code, 0) << name << ": " << cat.err;
    EXPECT_EQ(cat.out, std::to_string(i) + "\n") << name << " sees another container's write";
  }
  // Each container's writable layer is a file of its own.
  for (const auto& id : ids) {
    if (!is_full_id(id)) continue;
    std::string disk = state_root() + "/containers/" + id + "/root.qcow2";
    EXPECT_EQ(::access(disk.c_str(), F_OK), 0) << "no disk of its own at " << disk;
  }

  std::vector<CliResult> removals(kContainers);
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kContainers; ++i)
      threads.emplace_back([&, i] {
        if (runs[i].exit_code == 0)
          removals[i] = vessel({"rm", "-f", "c" + std::to_string(i)}, {.timeout = 120s});
      });
    for (auto& t : threads)
      t.join();
  }
  for (int i = 0; i < kContainers; ++i) {
    if (runs[i].exit_code != 0) continue;
    EXPECT_EQ(removals[i].exit_code, 0) << "rm -f c" << i << ": " << removals[i].err;
    EXPECT_EQ(removals[i].out, "c" + std::to_string(i) + "\n");
  }
  for (const auto& id : ids)
    if (is_full_id(id)) expect_gone(id);
  EXPECT_EQ(vessel({"ls", "-a", "-q"}).out, "");
  auto left = sys::list_dir(state_root() + "/containers");
  ASSERT_TRUE(left.ok()) << left.error().to_string();
  EXPECT_EQ(*left, std::vector<std::string>{});
  expect_no_leaks();
}

}  // namespace
}  // namespace vessel::test
