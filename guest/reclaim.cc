#include "guest/reclaim.h"

#include <algorithm>

#include "guest/cgroup.h"

namespace vessel::guest {

ReclaimStep IdleReclaim::on_sample(const ReclaimSample& s,
                                   const std::function<FileStats()>& file_stats) {
  std::optional<ReclaimSample> last = last_;
  last_ = s;
  auto busy = [this] {
    idle_periods_ = 0;
    period_ms_ = kPeriodMs;
    quiet_current_.reset();
    return ReclaimStep{0, period_ms_};
  };
  // No baseline, or the clock or counter went back: start counting again.
  if (!last || s.at_ms <= last->at_ms || s.cpu_usage_usec < last->cpu_usage_usec) return busy();
  double elapsed_usec = static_cast<double>(s.at_ms - last->at_ms) * 1000.0;
  double used = static_cast<double>(s.cpu_usage_usec - last->cpu_usage_usec);
  if (used / elapsed_usec * 100.0 >= kIdleCpuPercent) return busy();
  if (idle_periods_ < kIdlePeriods) ++idle_periods_;
  if (idle_periods_ < kIdlePeriods) return {0, period_ms_};

  uint64_t bytes = 0;
  if (s.memory_current >= kKeepBytes + kMinStepBytes && quiet_current_ != s.memory_current) {
    FileStats f = file_stats();
    uint64_t unmapped = f.file_bytes - std::min(f.mapped_bytes, f.file_bytes);
    if (unmapped >= kKeepBytes + kMinStepBytes)
      bytes = std::min(unmapped - kKeepBytes, kMaxStepBytes);
  }
  if (bytes > 0) {
    period_ms_ = kPeriodMs;  // see soon what the step left
    quiet_current_.reset();
  } else {
    period_ms_ = std::min(period_ms_ * 2, kMaxPeriodMs);
    quiet_current_ = s.memory_current;
  }
  return {bytes, period_ms_};
}

ReclaimSample parse_reclaim_sample(int64_t at_ms, std::string_view cpu_stat,
                                   std::string_view memory_current) {
  ReclaimSample s;
  s.at_ms = at_ms;
  s.cpu_usage_usec = cgroup_text::keyed_value(cpu_stat, "usage_usec");
  s.memory_current = cgroup_text::number_or_max(memory_current, 0);  // never "max"
  return s;
}

FileStats parse_file_stats(std::string_view memory_stat) {
  using cgroup_text::keyed_value;
  FileStats f;
  f.file_bytes =
      keyed_value(memory_stat, "active_file") + keyed_value(memory_stat, "inactive_file");
  f.mapped_bytes = keyed_value(memory_stat, "file_mapped");
  return f;
}

}  // namespace vessel::guest
