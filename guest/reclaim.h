// Idle page cache reclaim: while a container is idle, the agent asks the
// kernel to reclaim its cgroup's page cache (cgroup v2 memory.reclaim), and
// free page reporting hands the freed pages back to the host. A container
// that read a large file once does not keep the host's memory for ever.
//
// Policy (docs/architecture.md, "Memory that comes back"): every kPeriodMs
// the agent samples the container cgroup's CPU time and page cache. The
// container is idle once it used under kIdleCpuPercent of one CPU in each of
// the last kIdlePeriods periods. While idle, it reclaims the page cache that
// no process maps (active_file + inactive_file - file_mapped) down to
// kKeepBytes, at most kMaxStepBytes per period, and only when at least
// kMinStepBytes would go. tmpfs and other shared memory are not page cache
// here (the guest has no swap: they cannot be reclaimed), and mapped pages
// (running programs) are left, so an idle server wakes up without faulting
// its code back in. Cache dropped here is usually still in the host's page
// cache (virtio-fs and disk image reads go through it), so reading it again
// costs a copy, not a disk read.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace vessel::guest {

/// One sample of the container's cgroup.
struct ReclaimSample {
  int64_t at_ms = 0;            // CLOCK_MONOTONIC
  uint64_t cpu_usage_usec = 0;  // cpu.stat usage_usec
  uint64_t file_bytes = 0;      // memory.stat active_file + inactive_file
  uint64_t mapped_bytes = 0;    // memory.stat file_mapped
};

/// The decision, kept apart from the files so that it is unit-tested.
class IdleReclaim {
 public:
  static constexpr int64_t kPeriodMs = 4000;
  static constexpr double kIdleCpuPercent = 1.0;
  static constexpr int kIdlePeriods = 2;
  static constexpr uint64_t kKeepBytes = 4ull << 20;
  static constexpr uint64_t kMinStepBytes = 4ull << 20;
  static constexpr uint64_t kMaxStepBytes = 256ull << 20;

  /// Takes a new sample; returns how many bytes to reclaim now (0: none).
  uint64_t on_sample(const ReclaimSample& s);
  /// Consecutive idle periods so far.
  int idle_periods() const { return idle_periods_; }

 private:
  std::optional<ReclaimSample> last_;
  int idle_periods_ = 0;
};

/// Reads the sample from memory.stat and cpu.stat texts.
ReclaimSample parse_reclaim_sample(int64_t at_ms, std::string_view cpu_stat,
                                   std::string_view memory_stat);

}  // namespace vessel::guest
