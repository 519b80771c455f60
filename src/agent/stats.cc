#include "agent/stats.h"

#include <algorithm>

namespace vessel::agent {

std::optional<double> cpu_percent(const protocol::Stats& earlier, const protocol::Stats& later) {
  if (later.timestamp_ns <= earlier.timestamp_ns) return std::nullopt;
  if (later.cpu_usage_usec < earlier.cpu_usage_usec) return std::nullopt;
  // Both differences are of u64 values in order, so neither wraps.
  double used_ns = static_cast<double>(later.cpu_usage_usec - earlier.cpu_usage_usec) * 1000.0;
  double wall_ns = static_cast<double>(later.timestamp_ns - earlier.timestamp_ns);
  double percent = used_ns / wall_ns * 100.0;
  if (later.cpus > 0) percent = std::min(percent, 100.0 * later.cpus);
  return percent;
}

uint64_t memory_usage(const protocol::Stats& s) {
  return s.memory_current - std::min(s.memory_inactive_file, s.memory_current);
}

double memory_percent(const protocol::Stats& s) {
  if (s.memory_limit == 0) return 0.0;
  double percent = static_cast<double>(memory_usage(s)) / static_cast<double>(s.memory_limit) * 100;
  return std::min(percent, 100.0);
}

}  // namespace vessel::agent
