#include "guest/reclaim.h"

#include <gtest/gtest.h>

namespace vessel::guest {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

ReclaimSample at(int64_t ms, uint64_t cpu_usec, uint64_t current) {
  return {ms, cpu_usec, current};
}

// memory.stat as the test says it is; counts how often it was read.
struct Stat {
  FileStats f;
  int reads = 0;
  std::function<FileStats()> fn() {
    return [this] {
      ++reads;
      return f;
    };
  }
};

TEST(IdleReclaim, ReclaimsOnlyAfterTwoIdlePeriods) {
  IdleReclaim r;
  Stat st{{200 * kMiB, 0}};
  EXPECT_EQ(r.on_sample(at(0, 0, 210 * kMiB), st.fn()).bytes, 0u);        // baseline
  EXPECT_EQ(r.on_sample(at(4000, 1000, 210 * kMiB), st.fn()).bytes, 0u);  // idle 1 (0.025 %)
  EXPECT_EQ(st.reads, 0);
  ReclaimStep step = r.on_sample(at(8000, 2000, 210 * kMiB), st.fn());  // idle 2
  EXPECT_EQ(step.bytes, 196 * kMiB);                                    // all but 4 MiB
  EXPECT_EQ(step.next_in_ms, IdleReclaim::kPeriodMs);
  EXPECT_EQ(st.reads, 1);
}

TEST(IdleReclaim, BusyResetsTheCount) {
  IdleReclaim r;
  Stat st{{100 * kMiB, 0}};
  r.on_sample(at(0, 0, 100 * kMiB), st.fn());
  r.on_sample(at(4000, 0, 100 * kMiB), st.fn());  // idle 1
  // 80 ms of CPU in 4 s is 2 %: busy.
  EXPECT_EQ(r.on_sample(at(8000, 80000, 100 * kMiB), st.fn()).bytes, 0u);
  EXPECT_EQ(r.idle_periods(), 0);
  EXPECT_EQ(r.on_sample(at(12000, 80000, 100 * kMiB), st.fn()).bytes, 0u);
  EXPECT_EQ(r.on_sample(at(16000, 80000, 100 * kMiB), st.fn()).bytes, 96 * kMiB);
}

TEST(IdleReclaim, StepsAreBoundedAndSmallOnesSkipped) {
  IdleReclaim r;
  Stat st{{1024 * kMiB, 0}};
  r.on_sample(at(0, 0, 1024 * kMiB), st.fn());
  r.on_sample(at(4000, 0, 1024 * kMiB), st.fn());
  EXPECT_EQ(r.on_sample(at(8000, 0, 1024 * kMiB), st.fn()).bytes, IdleReclaim::kMaxStepBytes);
  st.f.file_bytes = 768 * kMiB;
  EXPECT_EQ(r.on_sample(at(12000, 0, 768 * kMiB), st.fn()).bytes, IdleReclaim::kMaxStepBytes);
  // Under keep + min step: nothing worth a reclaim.
  st.f.file_bytes = 7 * kMiB;
  EXPECT_EQ(r.on_sample(at(16000, 0, 10 * kMiB), st.fn()).bytes, 0u);
  st.f.file_bytes = 9 * kMiB;
  EXPECT_EQ(r.on_sample(at(24000, 0, 12 * kMiB), st.fn()).bytes, 5 * kMiB);
}

TEST(IdleReclaim, MappedPagesStay) {
  IdleReclaim r;
  Stat st{{50 * kMiB, 40 * kMiB}};
  r.on_sample(at(0, 0, 60 * kMiB), st.fn());
  r.on_sample(at(4000, 0, 60 * kMiB), st.fn());
  EXPECT_EQ(r.on_sample(at(8000, 0, 60 * kMiB), st.fn()).bytes, 6 * kMiB);
  // A claim of more mapped than cached is not an underflow.
  st.f = {10 * kMiB, 40 * kMiB};
  EXPECT_EQ(r.on_sample(at(12000, 0, 50 * kMiB), st.fn()).bytes, 0u);
}

TEST(IdleReclaim, ClockOrCounterGoingBackIsNoBaseline) {
  IdleReclaim r;
  Stat st{{100 * kMiB, 0}};
  r.on_sample(at(4000, 100, 100 * kMiB), st.fn());
  EXPECT_EQ(r.on_sample(at(3000, 100, 100 * kMiB), st.fn()).bytes, 0u);
  EXPECT_EQ(r.on_sample(at(7000, 50, 100 * kMiB), st.fn()).bytes, 0u);
  EXPECT_EQ(r.idle_periods(), 0);
}

// An idle container with nothing to reclaim is sampled ever less often, up
// to kMaxPeriodMs, and costs no memory.stat read while nothing moves.
TEST(IdleReclaim, IdleWithNothingToDoBacksOff) {
  IdleReclaim r;
  Stat st{{2 * kMiB, 1 * kMiB}};
  int64_t t = 0;
  ReclaimStep step = r.on_sample(at(t, 0, 20 * kMiB), st.fn());
  EXPECT_EQ(step.next_in_ms, 4000);
  std::vector<int64_t> periods;
  for (int i = 0; i < 6; ++i) {
    t += step.next_in_ms;
    step = r.on_sample(at(t, 0, 20 * kMiB), st.fn());
    EXPECT_EQ(step.bytes, 0u);
    periods.push_back(step.next_in_ms);
  }
  EXPECT_EQ(periods, (std::vector<int64_t>{4000, 8000, 16000, 16000, 16000, 16000}));
  // memory.stat once, when idle first: memory.current has not moved since.
  EXPECT_EQ(st.reads, 1);
  // memory.current moved: looked at again (still nothing to do).
  t += step.next_in_ms;
  EXPECT_EQ(r.on_sample(at(t, 0, 21 * kMiB), st.fn()).next_in_ms, 16000);
  EXPECT_EQ(st.reads, 2);
}

TEST(IdleReclaim, SmallContainersNeverReadMemoryStat) {
  IdleReclaim r;
  Stat st{{7 * kMiB, 0}};
  for (int64_t t = 0; t < 100000; t += 4000) {
    EXPECT_EQ(r.on_sample(at(t, 0, 7 * kMiB + 4095), st.fn()).bytes, 0u);
  }
  EXPECT_EQ(st.reads, 0);
}

// Samples an idle container of `current` bytes until the period is at its
// longest; returns when the next sample is due.
int64_t idle_until_backed_off(IdleReclaim& r, Stat& st, uint64_t current) {
  int64_t t = 0;
  ReclaimStep step{0, 0};
  for (int i = 0; i < 6; ++i) {
    step = r.on_sample(at(t, 0, current), st.fn());
    t += step.next_in_ms;
  }
  EXPECT_EQ(step.next_in_ms, IdleReclaim::kMaxPeriodMs);
  return t;
}

// A backed-off container that reads a big file: the next sample sees it busy
// and goes back to kPeriodMs, so the cache goes two short periods later.
TEST(IdleReclaim, ActivityAfterBackOffIsSeenAtTheNextSample) {
  IdleReclaim r;
  Stat st{{1 * kMiB, 0}};
  int64_t t = idle_until_backed_off(r, st, 3 * kMiB);
  // 2 s of CPU in the 16 s period: busy.
  st.f.file_bytes = 200 * kMiB;
  ReclaimStep step = r.on_sample(at(t, 2000000, 205 * kMiB), st.fn());
  EXPECT_EQ(step.bytes, 0u);
  EXPECT_EQ(step.next_in_ms, IdleReclaim::kPeriodMs);
  t += step.next_in_ms;
  EXPECT_EQ(r.on_sample(at(t, 2000000, 205 * kMiB), st.fn()).bytes, 0u);  // idle 1
  t += IdleReclaim::kPeriodMs;
  EXPECT_EQ(r.on_sample(at(t, 2000000, 205 * kMiB), st.fn()).bytes, 196 * kMiB);
}

// Activity too light to count as busy in a long period still grows the
// cache: seen at once, since memory.current moved.
TEST(IdleReclaim, LightActivityThatGrewTheCacheIsReclaimedAtOnce) {
  IdleReclaim r;
  Stat st{{1 * kMiB, 0}};
  int64_t t = idle_until_backed_off(r, st, 9 * kMiB);
  st.f.file_bytes = 40 * kMiB;
  ReclaimStep step = r.on_sample(at(t, 100000, 48 * kMiB), st.fn());  // 0.1 s in 16 s
  EXPECT_EQ(step.bytes, 36 * kMiB);
  EXPECT_EQ(step.next_in_ms, IdleReclaim::kPeriodMs);
}

TEST(IdleReclaim, ParsesCgroupFiles) {
  ReclaimSample s =
      parse_reclaim_sample(42, "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n", "98765\n");
  EXPECT_EQ(s.at_ms, 42);
  EXPECT_EQ(s.cpu_usage_usec, 1234u);
  EXPECT_EQ(s.memory_current, 98765u);
  FileStats f = parse_file_stats(
      "anon 100\nfile 9000\nshmem 1000\nfile_mapped 300\nactive_file 5000\ninactive_file 3000\n");
  EXPECT_EQ(f.file_bytes, 8000u);
  EXPECT_EQ(f.mapped_bytes, 300u);
}

}  // namespace
}  // namespace vessel::guest
