#include "guest/reclaim.h"

#include <algorithm>

#include "guest/cgroup.h"

namespace vessel::guest {

uint64_t IdleReclaim::on_sample(const ReclaimSample& s) {
  std::optional<ReclaimSample> last = last_;
  last_ = s;
  if (!last || s.at_ms <= last->at_ms || s.cpu_usage_usec < last->cpu_usage_usec) {
    idle_periods_ = 0;  // no baseline, or the clock or counter went back
    return 0;
  }
  double elapsed_usec = static_cast<double>(s.at_ms - last->at_ms) * 1000.0;
  double used = static_cast<double>(s.cpu_usage_usec - last->cpu_usage_usec);
  if (used / elapsed_usec * 100.0 >= kIdleCpuPercent) {
    idle_periods_ = 0;
    return 0;
  }
  if (idle_periods_ < kIdlePeriods) ++idle_periods_;
  if (idle_periods_ < kIdlePeriods) return 0;
  uint64_t unmapped = s.file_bytes - std::min(s.mapped_bytes, s.file_bytes);
  if (unmapped < kKeepBytes + kMinStepBytes) return 0;
  return std::min(unmapped - kKeepBytes, kMaxStepBytes);
}

ReclaimSample parse_reclaim_sample(int64_t at_ms, std::string_view cpu_stat,
                                   std::string_view memory_stat) {
  using cgroup_text::keyed_value;
  ReclaimSample s;
  s.at_ms = at_ms;
  s.cpu_usage_usec = keyed_value(cpu_stat, "usage_usec");
  s.file_bytes =
      keyed_value(memory_stat, "active_file") + keyed_value(memory_stat, "inactive_file");
  s.mapped_bytes = keyed_value(memory_stat, "file_mapped");
  return s;
}

}  // namespace vessel::guest
