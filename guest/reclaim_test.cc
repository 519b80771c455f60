#include "guest/reclaim.h"

#include <gtest/gtest.h>

namespace vessel::guest {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

ReclaimSample at(int64_t ms, uint64_t cpu_usec, uint64_t file, uint64_t mapped = 0) {
  return {ms, cpu_usec, file, mapped};
}

TEST(IdleReclaim, ReclaimsOnlyAfterTwoIdlePeriods) {
  IdleReclaim r;
  EXPECT_EQ(r.on_sample(at(0, 0, 200 * kMiB)), 0u);                // baseline
  EXPECT_EQ(r.on_sample(at(4000, 1000, 200 * kMiB)), 0u);          // idle 1 (0.025 %)
  EXPECT_EQ(r.on_sample(at(8000, 2000, 200 * kMiB)), 196 * kMiB);  // idle 2: all but 4 MiB
}

TEST(IdleReclaim, BusyResetsTheCount) {
  IdleReclaim r;
  r.on_sample(at(0, 0, 100 * kMiB));
  r.on_sample(at(4000, 0, 100 * kMiB));  // idle 1
  // 80 ms of CPU in 4 s is 2 %: busy.
  EXPECT_EQ(r.on_sample(at(8000, 80000, 100 * kMiB)), 0u);
  EXPECT_EQ(r.idle_periods(), 0);
  EXPECT_EQ(r.on_sample(at(12000, 80000, 100 * kMiB)), 0u);
  EXPECT_EQ(r.on_sample(at(16000, 80000, 100 * kMiB)), 96 * kMiB);
}

TEST(IdleReclaim, StepsAreBoundedAndSmallOnesSkipped) {
  IdleReclaim r;
  r.on_sample(at(0, 0, 1024 * kMiB));
  r.on_sample(at(4000, 0, 1024 * kMiB));
  EXPECT_EQ(r.on_sample(at(8000, 0, 1024 * kMiB)), IdleReclaim::kMaxStepBytes);
  EXPECT_EQ(r.on_sample(at(12000, 0, 768 * kMiB)), IdleReclaim::kMaxStepBytes);
  // Under keep + min step: nothing worth a reclaim.
  EXPECT_EQ(r.on_sample(at(16000, 0, 7 * kMiB)), 0u);
  EXPECT_EQ(r.on_sample(at(20000, 0, 9 * kMiB)), 5 * kMiB);
}

TEST(IdleReclaim, MappedPagesStay) {
  IdleReclaim r;
  r.on_sample(at(0, 0, 50 * kMiB, 40 * kMiB));
  r.on_sample(at(4000, 0, 50 * kMiB, 40 * kMiB));
  EXPECT_EQ(r.on_sample(at(8000, 0, 50 * kMiB, 40 * kMiB)), 6 * kMiB);
  // A claim of more mapped than cached is not an underflow.
  EXPECT_EQ(r.on_sample(at(12000, 0, 10 * kMiB, 40 * kMiB)), 0u);
}

TEST(IdleReclaim, ClockOrCounterGoingBackIsNoBaseline) {
  IdleReclaim r;
  r.on_sample(at(4000, 100, 100 * kMiB));
  EXPECT_EQ(r.on_sample(at(3000, 100, 100 * kMiB)), 0u);
  EXPECT_EQ(r.on_sample(at(7000, 50, 100 * kMiB)), 0u);
  EXPECT_EQ(r.idle_periods(), 0);
}

TEST(IdleReclaim, ParsesCgroupFiles) {
  ReclaimSample s = parse_reclaim_sample(
      42, "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n",
      "anon 100\nfile 9000\nshmem 1000\nfile_mapped 300\nactive_file 5000\ninactive_file 3000\n");
  EXPECT_EQ(s.at_ms, 42);
  EXPECT_EQ(s.cpu_usage_usec, 1234u);
  EXPECT_EQ(s.file_bytes, 8000u);
  EXPECT_EQ(s.mapped_bytes, 300u);
}

}  // namespace
}  // namespace vessel::guest
