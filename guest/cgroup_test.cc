// The parsers of the kernel's cgroup and procfs text behind StatsResult. They
// run in the guest, but are plain functions, so they are tested on the host.
#include "guest/cgroup.h"

#include <gtest/gtest.h>

namespace vessel::guest::cgroup_text {
namespace {

TEST(CgroupText, KeyedValueFindsWholeKeysOnly) {
  // memory.stat: "file" must not match "file_mapped", nor "anon" "anon_thp".
  const std::string stat =
      "anon_thp 7\n"
      "anon 104857600\n"
      "file_mapped 3\n"
      "file 8192\n"
      "inactive_file 4096\n";
  EXPECT_EQ(keyed_value(stat, "anon"), 104857600u);
  EXPECT_EQ(keyed_value(stat, "file"), 8192u);
  EXPECT_EQ(keyed_value(stat, "inactive_file"), 4096u);
  EXPECT_EQ(keyed_value(stat, "active_file"), 0u);  // absent
  EXPECT_EQ(keyed_value("", "anon"), 0u);

  const std::string cpu = "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\nnr_periods 0\n";
  EXPECT_EQ(keyed_value(cpu, "usage_usec"), 1234u);
  EXPECT_EQ(keyed_value(cpu, "system_usec"), 234u);

  const std::string meminfo =
      "MemTotal:         493000 kB\nMemFree:          400000 kB\nMemAvailable:     450000 kB\n";
  EXPECT_EQ(keyed_value(meminfo, "MemTotal:"), 493000u);
  EXPECT_EQ(keyed_value(meminfo, "MemAvailable:"), 450000u);

  // Not a number, or one that does not fit in 64 bits: 0.
  EXPECT_EQ(keyed_value("oom_kill x\n", "oom_kill"), 0u);
  EXPECT_EQ(keyed_value("oom_kill 99999999999999999999\n", "oom_kill"), 0u);
  EXPECT_EQ(keyed_value("oom_kill 18446744073709551615", "oom_kill"), UINT64_MAX);
}

TEST(CgroupText, NumberOrMax) {
  EXPECT_EQ(number_or_max("max\n", 42), 42u);
  EXPECT_EQ(number_or_max("201326592\n", 42), 201326592u);
  EXPECT_EQ(number_or_max("", 42), 0u);
  EXPECT_EQ(number_or_max("-1\n", 42), 0u);
}

TEST(CgroupText, IoBytesSumsDevices) {
  uint64_t read = 1, write = 1;
  io_bytes(
      "254:0 rbytes=1000 wbytes=20 rios=3 wios=4 dbytes=0 dios=0\n"
      "254:16 rbytes=5 wbytes=7 rios=1 wios=1 dbytes=9 dios=1\n",
      read, write);
  EXPECT_EQ(read, 1005u);
  EXPECT_EQ(write, 27u);
  io_bytes("", read, write);
  EXPECT_EQ(read, 0u);
  EXPECT_EQ(write, 0u);
}

TEST(CgroupText, NetBytesLeavesOutLoopback) {
  const std::string dev =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
      "drop fifo colls carrier compressed\n"
      "    lo:    9999      10    0    0    0     0          0         0     9999      10    0 "
      "   0    0     0       0          0\n"
      "  eth0:  123456     100    0    0    0     0          0         0    65432      50    0 "
      "   0    0     0       0          0\n"
      "  eth1:       4       1    0    0    0     0          0         0        6       1    0 "
      "   0    0     0       0          0\n";
  uint64_t rx = 0, tx = 0;
  net_bytes(dev, rx, tx);
  EXPECT_EQ(rx, 123460u);
  EXPECT_EQ(tx, 65438u);
  // A short line is skipped, not read past.
  net_bytes("  eth0: 1 2 3\n", rx, tx);
  EXPECT_EQ(rx, 0u);
  EXPECT_EQ(tx, 0u);
}

}  // namespace
}  // namespace vessel::guest::cgroup_text
