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
