// Idle page cache reclaim: while a container is idle, the agent asks the
// kernel to reclaim its cgroup's page cache (cgroup v2 memory.reclaim), and
// free page reporting hands the freed pages back to the host. A container
// that read a large file once does not keep the host's memory for ever.
//
// Policy (docs/architecture.md, "Memory that comes back"): the agent samples
// the container cgroup's CPU time (cpu.stat) and memory (memory.current).
// The container is idle once it used under kIdleCpuPercent of one CPU in
// each of the last kIdlePeriods periods. While idle, it reclaims the page
// cache that no process maps (active_file + inactive_file - file_mapped,
// from memory.stat) down to kKeepBytes, at most kMaxStepBytes per period,
// and only when at least kMinStepBytes would go. tmpfs and other shared
// memory are not page cache here (the guest has no swap: they cannot be
// reclaimed), and mapped pages (running programs) are left, so an idle
// server wakes up without faulting its code back in. Cache dropped here is
// usually still in the host's page cache (virtio-fs and disk image reads go
// through it), so reading it again costs a copy, not a disk read.
//
// The sampling is the only timer of an idle agent, and under TCG every
// guest wake-up costs the host CPU, so it backs off: a period is kPeriodMs
// while the container is busy or being reclaimed, and doubles up to
// kMaxPeriodMs for each idle sample that found nothing to do. memory.stat
// (the dearer read) is read only when an idle container could hold enough
// to reclaim: memory.current at least kKeepBytes + kMinStepBytes and not
// the same as at the last sample that found nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

namespace vessel::guest {

/// The cheap part of a sample of the container's cgroup, taken every period.
struct ReclaimSample {
  int64_t at_ms = 0;            // CLOCK_MONOTONIC
  uint64_t cpu_usage_usec = 0;  // cpu.stat usage_usec
  uint64_t memory_current = 0;  // memory.current
};

/// The dear part (memory.stat), read only when on_sample asks for it.
struct FileStats {
  uint64_t file_bytes = 0;    // active_file + inactive_file
  uint64_t mapped_bytes = 0;  // file_mapped
};

/// What to do after a sample.
struct ReclaimStep {
  uint64_t bytes = 0;  // to reclaim now (0: none)
  int64_t next_in_ms;  // when to sample again
};

/// The decision, kept apart from the files so that it is unit-tested.
class IdleReclaim {
 public:
  static constexpr int64_t kPeriodMs = 4000;
  static constexpr int64_t kMaxPeriodMs = 16000;
  static constexpr double kIdleCpuPercent = 1.0;
  static constexpr int kIdlePeriods = 2;
  static constexpr uint64_t kKeepBytes = 4ull << 20;
  static constexpr uint64_t kMinStepBytes = 4ull << 20;
  static constexpr uint64_t kMaxStepBytes = 256ull << 20;

  /// Takes a new sample; calls `file_stats` only when it needs memory.stat.
  ReclaimStep on_sample(const ReclaimSample& s, const std::function<FileStats()>& file_stats);
  /// Consecutive idle periods so far.
  int idle_periods() const { return idle_periods_; }

 private:
  std::optional<ReclaimSample> last_;
  int idle_periods_ = 0;
  int64_t period_ms_ = kPeriodMs;
  /// memory.current at the last idle sample that found nothing to reclaim.
  std::optional<uint64_t> quiet_current_;
};

/// Reads the sample from cpu.stat and memory.current texts.
ReclaimSample parse_reclaim_sample(int64_t at_ms, std::string_view cpu_stat,
                                   std::string_view memory_current);
/// Reads the page cache figures from a memory.stat text.
FileStats parse_file_stats(std::string_view memory_stat);

}  // namespace vessel::guest
