// What the host makes of the guest's StatsResult samples, as `docker stats`
// shows them. The guest is untrusted: a sample is a set of claims, so every
// figure here is computed with saturating arithmetic and clamped, and a pair
// of samples that does not make sense yields no figure rather than a wild one.
#pragma once

#include <cstdint>
#include <optional>

#include "protocol/protocol.h"

namespace vessel::agent {

/// CPU use of the container between two samples, in percent of one CPU
/// (200 means two CPUs busy), as `docker stats` shows it: the growth of
/// cpu_usage_usec over the growth of the guest's monotonic clock. Nullopt
/// when the clock did not advance or the usage went backwards (samples from
/// two different boots, or a lying guest). At most 100 x `later.cpus` when
/// cpus is set.
std::optional<double> cpu_percent(const protocol::Stats& earlier, const protocol::Stats& later);

/// Memory in use as `docker stats` counts it on cgroup v2: memory.current
/// minus the inactive page cache (which the kernel reclaims first).
uint64_t memory_usage(const protocol::Stats& s);

/// memory_usage() as a percentage of memory_limit, in [0, 100]; 0 when the
/// limit is 0.
double memory_percent(const protocol::Stats& s);

}  // namespace vessel::agent
