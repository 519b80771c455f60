#include "agent/stats.h"

#include <gtest/gtest.h>

namespace vessel::agent {
namespace {

protocol::Stats sample(uint64_t timestamp_ns, uint64_t usage_usec, uint32_t cpus = 2) {
  protocol::Stats s;
  s.timestamp_ns = timestamp_ns;
  s.cpu_usage_usec = usage_usec;
  s.cpus = cpus;
  return s;
}

TEST(Stats, CpuPercentOfOneCpu) {
  // 0.5 s of CPU over 1 s: half a CPU.
  auto p = cpu_percent(sample(1'000'000'000, 1'000'000), sample(2'000'000'000, 1'500'000));
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(*p, 50.0);
  // Two CPUs busy for the whole second.
  p = cpu_percent(sample(0, 0), sample(1'000'000'000, 2'000'000));
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(*p, 200.0);
  p = cpu_percent(sample(5, 7), sample(10, 7));
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(*p, 0.0);
}

TEST(Stats, CpuPercentRejectsSamplesThatMakeNoSense) {
  EXPECT_FALSE(cpu_percent(sample(10, 0), sample(10, 5)));  // the clock stood still
  EXPECT_FALSE(cpu_percent(sample(10, 0), sample(5, 5)));   // went backwards
  EXPECT_FALSE(cpu_percent(sample(0, 9), sample(10, 5)));   // usage went backwards
  // A guest claiming more than its CPUs can do is clamped.
  auto p = cpu_percent(sample(0, 0), sample(1, UINT64_MAX, 4));
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(*p, 400.0);
}

TEST(Stats, MemoryUsageLeavesOutInactiveFile) {
  protocol::Stats s;
  s.memory_current = 100 << 20;
  s.memory_inactive_file = 30 << 20;
  s.memory_limit = 280 << 20;
  EXPECT_EQ(memory_usage(s), 70u << 20);
  EXPECT_DOUBLE_EQ(memory_percent(s), 25.0);
  // Claims that do not add up never underflow or exceed 100 %.
  s.memory_inactive_file = s.memory_current + 1;
  EXPECT_EQ(memory_usage(s), 0u);
  s.memory_inactive_file = 0;
  s.memory_limit = 1;
  EXPECT_DOUBLE_EQ(memory_percent(s), 100.0);
  s.memory_limit = 0;
  EXPECT_DOUBLE_EQ(memory_percent(s), 0.0);
}

}  // namespace
}  // namespace vessel::agent
