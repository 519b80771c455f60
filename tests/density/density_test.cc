// Density (issue 10): 20 idle containers, the suite's size (the benchmark,
// bench/density.sh, does 50). All of them answer `exec`, `stats` shows each
// with the host memory of its VM, together they cost little host CPU while
// idle, and `rm -f --all` leaves no process of any of them.
//
// They are started one after another: a boot under TCG keeps a core busy for
// about a second, so 20 at once on 2 cores only queue up (and take longer
// than in turn, each boot slowed by all the others).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "base/strings.h"
#include "containers/container_fixture.h"
#include "sys/fs.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kContainers = 20;
// What the 20 may cost together while idle, in % of one host core: the
// issue's target is 0.5 % each; the bound leaves room for a noisy CI host.
constexpr double kIdleCpuBoundPercent = kContainers * 1.0;
// How long one `exec NAME true` may take with all 20 running.
constexpr auto kExecBound = 10s;

std::string name_of(int i) {
  return "density" + std::to_string(i);
}

// Nanoseconds each thread of `pids` has run on a CPU, by thread id: the
// first field of /proc/PID/task/TID/schedstat (Documentation/scheduler/
// sched-stats.rst), exact to the scheduler's clock. utime/stime ticks would
// not do: they charge a whole tick to whatever runs when it fires, and
// QEMU's timer-aligned wakeups are counted 10-20x over. Threads that exit
// between two samples lose what they ran since the first: a small
// undercount, against an upper bound.
std::map<int, uint64_t> cpu_ns_by_thread(const std::vector<int>& pids) {
  std::map<int, uint64_t> out;
  for (int pid : pids) {
    std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    auto tids = sys::list_dir(tasks);
    if (!tids.ok()) continue;  // gone meanwhile
    for (const auto& tid : *tids) {
      auto text = sys::read_file(tasks + "/" + tid + "/schedstat", 4096);
      if (!text.ok()) continue;
      out[std::atoi(tid.c_str())] = std::strtoull(text->c_str(), nullptr, 10);
    }
  }
  return out;
}

uint64_t ns_between(const std::map<int, uint64_t>& before, const std::map<int, uint64_t>& after) {
  uint64_t sum = 0;
  for (const auto& [tid, ns] : after) {
    auto b = before.find(tid);
    uint64_t from = b == before.end() ? 0 : b->second;  // a thread started meanwhile
    if (ns > from) sum += ns - from;
  }
  return sum;
}

using DensityTest = ContainerTest;

TEST_F(DensityTest, TwentyIdleContainersAnswerShowInStatsStayIdleAndLeaveNothing) {
  std::vector<std::string> ids;
  auto started = Clock::now();
  for (int i = 0; i < kContainers; ++i) {
    std::string id = run_detached(
        {"--name", name_of(i), "-m", kMemory, kImage, "sleep", "infinity"}, {.timeout = 180s});
    ASSERT_FALSE(id.empty()) << "container " << i << " of " << kContainers << " did not start";
    ids.push_back(id);
  }
  double start_s = std::chrono::duration<double>(Clock::now() - started).count();
  std::printf("density: %d containers started one after another in %.1f s\n", kContainers, start_s);

  // Every container is up: its monitor, and its QEMU (an image root needs no
  // virtiofsd).
  std::vector<int> pids;
  for (const auto& id : ids) {
    std::vector<int> own = find_process_ids(vm_process_names(), id.substr(0, 12));
    EXPECT_GE(own.size(), 2u) << id << " has no monitor or no QEMU:\n"
                              << testing::PrintToString(processes_of(id));
    pids.insert(pids.end(), own.begin(), own.end());
  }

  // Idle CPU of the 20 together: the last boot's tail (page cache, lazy
  // init in the guest) settles first.
  std::this_thread::sleep_for(5s);
  auto t0 = Clock::now();
  auto before = cpu_ns_by_thread(pids);
  std::this_thread::sleep_for(10s);
  auto after = cpu_ns_by_thread(pids);
  double wall_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  double total_percent = 100.0 * static_cast<double>(ns_between(before, after)) / wall_ns;
  std::printf(
      "density: idle host CPU of %d containers over %.1f s: %.2f %% of a core "
      "(%.3f %% each; bound %.0f %%)\n",
      kContainers, wall_ns / 1e9, total_percent, total_percent / kContainers, kIdleCpuBoundPercent);
  EXPECT_LT(total_percent, kIdleCpuBoundPercent)
      << "idle containers are not idle: " << total_percent / kContainers
      << " % of a host core each";

  // Each answers `exec`, within a few seconds.
  std::vector<double> exec_s;
  for (int i = 0; i < kContainers; ++i) {
    auto t = Clock::now();
    CliResult r = vessel({"exec", name_of(i), "true"}, {.timeout = 60s});
    double s = std::chrono::duration<double>(Clock::now() - t).count();
    exec_s.push_back(s);
    EXPECT_EQ(r.exit_code, 0) << "exec " << name_of(i) << " true: " << r.err;
    EXPECT_LT(s, std::chrono::duration<double>(kExecBound).count())
        << "exec " << name_of(i) << " true took " << s << " s";
  }
  std::sort(exec_s.begin(), exec_s.end());
  std::printf("density: exec NAME true: median %.3f s, max %.3f s\n", exec_s[exec_s.size() / 2],
              exec_s.back());

  // `stats` shows each: its id and name, its memory in the container and
  // the host memory of its VM.
  CliResult stats = vessel({"stats", "--no-stream", "--format", "json"}, {.timeout = 120s});
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  nlohmann::json j = nlohmann::json::parse(stats.out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << "stats --format json printed no array:\n" << stats.out;
  std::map<std::string, nlohmann::json> by_id;
  for (const auto& entry : j)
    if (entry.is_object() && entry.contains("ID") && entry["ID"].is_string())
      by_id[entry["ID"].get<std::string>()] = entry;
  EXPECT_EQ(j.size(), static_cast<size_t>(kContainers)) << stats.out;
  uint64_t vm_total = 0;
  for (int i = 0; i < kContainers; ++i) {
    auto it = by_id.find(ids[i]);
    if (it == by_id.end()) {
      ADD_FAILURE() << "stats does not show " << name_of(i) << " (" << ids[i] << "):\n"
                    << stats.out;
      continue;
    }
    const auto& e = it->second;
    EXPECT_EQ(e.value("Name", ""), name_of(i)) << e.dump();
    ASSERT_TRUE(e.contains("MemUsage") && e["MemUsage"].is_number_unsigned()) << e.dump();
    ASSERT_TRUE(e.contains("VMMemUsage") && e["VMMemUsage"].is_number_unsigned()) << e.dump();
    EXPECT_GT(e["MemUsage"].get<uint64_t>(), 0u) << e.dump();
    // The VM holds at least its booted kernel and init on the host, and
    // never more than its RAM (128 MiB + the 64 MiB reserve) plus QEMU's own.
    uint64_t vm = e["VMMemUsage"].get<uint64_t>();
    EXPECT_GT(vm, 8ull << 20) << e.dump();
    EXPECT_LT(vm, 512ull << 20) << e.dump();
    vm_total += vm;
  }
  std::printf("density: VMMemUsage of %d idle containers: %.1f MiB each on average\n", kContainers,
              static_cast<double>(vm_total) / kContainers / (1 << 20));

  // rm -f --all leaves nothing of any of them.
  CliResult rm = vessel({"rm", "-f", "--all"}, {.timeout = 300s});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(lines(rm.out).size(), static_cast<size_t>(kContainers)) << rm.out;
  for (const auto& id : ids)
    expect_gone(id);
  EXPECT_EQ(vessel({"ls", "-a", "-q"}).out, "");
  expect_no_leaks();
}

}  // namespace
}  // namespace vessel::test
