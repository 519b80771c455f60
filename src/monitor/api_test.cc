#include "monitor/api.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

namespace vessel::monitor {
namespace {

TEST(MonitorApi, AttachAndStopRoundTrip) {
  Attach a{1, 0};
  Attach a2;
  ASSERT_TRUE(decode(encode(a), a2));
  EXPECT_EQ(a2.stdin, 1);
  EXPECT_EQ(a2.output, 0);
  Stop s{9, 30};
  Stop s2;
  ASSERT_TRUE(decode(encode(s), s2));
  EXPECT_EQ(s2.signal, 9);
  EXPECT_EQ(s2.timeout, 30);
  // Defaults: the container's own signal and timeout.
  ASSERT_TRUE(decode(encode(Stop{}), s2));
  EXPECT_EQ(s2.signal, 0);
  EXPECT_EQ(s2.timeout, -1);
}

TEST(MonitorApi, ShortOrInvalidPayloadsAreRejected) {
  auto stop = encode(Stop{15, 10});
  Stop s;
  for (size_t n = 0; n < stop.size(); ++n)
    EXPECT_FALSE(decode(std::span<const uint8_t>(stop.data(), n), s)) << n;
  EXPECT_FALSE(decode(encode(Stop{-1, 10}), s));
  EXPECT_FALSE(decode(encode(Stop{65, 10}), s));
  EXPECT_FALSE(decode(encode(Stop{15, -2}), s));
  Attach a;
  EXPECT_FALSE(decode(std::span<const uint8_t>(), a));
  EXPECT_FALSE(decode(std::span<const uint8_t>(encode(Attach{}).data(), 1), a));
}

// Frames queued on one end arrive whole and in order on the other, however
// the bytes are split; a peer that closes is reported as kUnavailable.
TEST(MonitorApi, LimitsRoundTrip) {
  Limits l{256ll << 20, -1, 150000, 0};
  Limits l2;
  ASSERT_TRUE(decode(encode(l), l2));
  EXPECT_EQ(l2.memory_bytes, 256ll << 20);
  EXPECT_EQ(l2.pids, -1);
  EXPECT_EQ(l2.cpu_quota_usec, 150000);
  EXPECT_EQ(l2.cpu_period_usec, 0);
  std::vector<uint8_t> p = encode(l);
  p.pop_back();
  EXPECT_FALSE(decode(p, l2));
  EXPECT_FALSE(decode(encode(Limits{-2, -1, -1, -1}), l2));
}

TEST(MonitorApi, MergeLimitsKeepsWhatIsNotChangedAndStaysInTheVm) {
  const uint64_t vm = 512ull << 20;
  const protocol::Update current{vm, 0, 150000, 100000};
  auto kept = merge_limits(current, Limits{}, vm, 2);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->memory_limit_bytes, vm);
  EXPECT_EQ(kept->cpu_quota_usec, 150000u);

  auto changed = merge_limits(current, Limits{100 << 20, 50, -1, -1}, vm, 2);
  ASSERT_TRUE(changed.ok()) << changed.error().to_string();
  EXPECT_EQ(changed->memory_limit_bytes, 100u << 20);
  EXPECT_EQ(changed->pids_limit, 50u);
  EXPECT_EQ(changed->cpu_quota_usec, 150000u);
  EXPECT_EQ(changed->cpu_period_usec, 100000u);

  // 0: no limit, which for memory is all the VM has for the container.
  auto unlimited = merge_limits(*changed, Limits{0, 0, 0, -1}, vm, 2);
  ASSERT_TRUE(unlimited.ok());
  EXPECT_EQ(unlimited->memory_limit_bytes, vm);
  EXPECT_EQ(unlimited->pids_limit, 0u);
  EXPECT_EQ(unlimited->cpu_quota_usec, 0u);

  auto too_much = merge_limits(current, Limits{1ll << 30, -1, -1, -1}, vm, 2);
  ASSERT_FALSE(too_much.ok());
  EXPECT_EQ(too_much.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(too_much.error().message(),
            "memory limit 1024 MiB is above the VM's 512 MiB (fixed at create)");
  auto cpus = merge_limits(current, Limits{-1, -1, 300000, -1}, vm, 2);
  ASSERT_FALSE(cpus.ok());
  EXPECT_EQ(cpus.error().message(),
            "cpu quota 300000 us per 100000 us is more than the VM's 2 vCPUs (fixed at create)");
  // A shorter period with the old quota is more than the VM has, too.
  EXPECT_FALSE(merge_limits(current, Limits{-1, -1, -1, 50000}, vm, 1).ok());
  EXPECT_TRUE(merge_limits(current, Limits{-1, -1, 50000, 50000}, vm, 1).ok());
  EXPECT_FALSE(merge_limits(current, Limits{-1, -1, 500, -1}, vm, 2).ok());
  EXPECT_FALSE(merge_limits(current, Limits{-1, -1, -1, 2000000}, vm, 2).ok());
  EXPECT_FALSE(merge_limits(current, Limits{1000, -1, -1, -1}, vm, 2).ok());
}

TEST(MonitorApi, ChannelCarriesFramesAndReportsTheClose) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
  Channel a{UniqueFd(sv[0])}, b{UniqueFd(sv[1])};
  ASSERT_TRUE(a.send_message(type_code(ApiType::kStop), 0, Stop{9, 0}).ok());
  std::vector<uint8_t> big(100000, 'x');
  a.queue(type_code(protocol::MsgType::kStdout), 2, big);
  EXPECT_GT(a.queued(), 0u);
  std::vector<protocol::FrameReader::Frame> got;
  for (int i = 0; i < 1000 && got.size() < 2; ++i) {
    ASSERT_TRUE(a.flush().ok());
    ASSERT_TRUE(b.read_available().ok());
    protocol::FrameReader::Frame f;
    while (b.next(f))
      got.push_back(std::move(f));
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].header.type, type_code(ApiType::kStop));
  Stop s;
  ASSERT_TRUE(decode(got[0].payload, s));
  EXPECT_EQ(s.signal, 9);
  EXPECT_EQ(got[1].header.stream, 2u);
  EXPECT_EQ(got[1].payload.size(), big.size());
  { Channel closing = std::move(a); }
  auto r = b.read_available();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
}

// A peer's last frames (an Exit) and its close read in one call: the
// frames come first, the close on the next call. 64 KiB exactly, so the
// reader's buffer fills and its next read sees the end.
TEST(MonitorApi, LastFramesBeforeTheCloseAreHandedOutFirst) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
  Channel a{UniqueFd(sv[0])}, b{UniqueFd(sv[1])};
  std::vector<uint8_t> payload(65536 - 2 * protocol::kHeaderSize - 8, 'x');
  a.queue(type_code(protocol::MsgType::kStdout), 1, payload);
  a.queue(type_code(protocol::MsgType::kExit), 1, std::vector<uint8_t>(8, 0));
  ASSERT_EQ(a.queued(), 65536u);
  ASSERT_TRUE(a.flush().ok());
  { Channel closing = std::move(a); }
  ASSERT_TRUE(b.read_available().ok());
  protocol::FrameReader::Frame f;
  ASSERT_TRUE(b.next(f));
  EXPECT_EQ(f.payload.size(), payload.size());
  ASSERT_TRUE(b.next(f));
  EXPECT_EQ(f.header.type, type_code(protocol::MsgType::kExit));
  auto r = b.read_available();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
}

TEST(MonitorApi, ConnectToNothingFailsClearly) {
  auto c = connect("/nonexistent/monitor.sock");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().to_string().find("/nonexistent/monitor.sock"), std::string::npos);
}

}  // namespace
}  // namespace vessel::monitor
