// The host side must survive anything the (untrusted) guest writes.
#include "agent/agent_connection.h"

#include "base/unique_fd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace vessel::agent {
namespace {

using protocol::MsgType;
using namespace std::chrono_literals;

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    host_.reset(sv[0]);
    guest_.reset(sv[1]);
    ::fcntl(host_.get(), F_SETFL, O_NONBLOCK);
  }
  void guest_writes(const std::vector<uint8_t>& bytes) {
    ASSERT_EQ(::write(guest_.get(), bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
  }
  Result<Frame> receive() {
    AgentConnection c(host_.get());
    return c.wait_frame(std::chrono::steady_clock::now() + 2s);
  }
  UniqueFd host_, guest_;
};

TEST_F(AgentTest, AcceptsHello) {
  auto payload = protocol::encode(protocol::Hello{protocol::kVersion, "test"});
  guest_writes(protocol::make_frame(MsgType::kHello, 0, payload));
  auto f = receive();
  ASSERT_TRUE(f.ok()) << f.error().to_string();
  auto hello = decode_as<protocol::Hello>(*f);
  ASSERT_TRUE(hello.ok());
  EXPECT_EQ(hello->guest, "test");
}

TEST_F(AgentTest, RejectsHostBoundTypesFromGuest) {
  guest_writes(protocol::make_frame(MsgType::kSpawn, 1, {}));
  auto f = receive();
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code(), ErrorCode::kProtocol);
}

TEST_F(AgentTest, RejectsCopyRequestsFromGuest) {
  // CopyOut and CopyIn flow host -> guest only: a guest sending one is broken.
  for (MsgType type : {MsgType::kCopyOut, MsgType::kCopyIn}) {
    SetUp();
    auto payload = type == MsgType::kCopyOut ? protocol::encode(protocol::CopyOut{"/x", "", 0})
                                             : protocol::encode(protocol::CopyIn{"/x", 0});
    guest_writes(protocol::make_frame(type, 2, payload));
    auto f = receive();
    ASSERT_FALSE(f.ok()) << protocol::type_name(static_cast<uint16_t>(type));
    EXPECT_EQ(f.error().code(), ErrorCode::kProtocol);
  }
}

TEST_F(AgentTest, SetupResultOfAPodsContainerComesOnItsStream) {
  // Version 7: a container added to a pod's VM answers on its Setup's stream.
  guest_writes(protocol::make_frame(MsgType::kSetupResult, 5, protocol::encode(protocol::Reply{})));
  auto f = receive();
  ASSERT_TRUE(f.ok()) << f.error().to_string();
  EXPECT_EQ(f->header.stream, 5u);
  // RemoveContainer flows host -> guest only; StatsResult stays on stream 0.
  for (auto [type, stream] :
       {std::pair{MsgType::kRemoveContainer, 0u}, std::pair{MsgType::kStatsResult, 3u}}) {
    SetUp();
    guest_writes(protocol::make_frame(type, stream, {}));
    auto bad = receive();
    ASSERT_FALSE(bad.ok()) << protocol::type_name(static_cast<uint16_t>(type));
    EXPECT_EQ(bad.error().code(), ErrorCode::kProtocol);
  }
}

TEST_F(AgentTest, RejectsOversizedFrame) {
  std::vector<uint8_t> header(protocol::kHeaderSize);
  protocol::encode_header({protocol::kMaxPayload + 1, 8, 0, 1}, header.data());
  guest_writes(header);
  auto f = receive();
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code(), ErrorCode::kProtocol);
}

TEST_F(AgentTest, RejectsStdoutOnStreamZeroAndOversizedChunk) {
  guest_writes(protocol::make_frame(MsgType::kStdout, 0, {}));
  EXPECT_FALSE(receive().ok());
  SetUp();
  std::vector<uint8_t> big(protocol::kMaxDataChunk + 1, 'x');
  guest_writes(protocol::make_frame(MsgType::kStdout, 1, big));
  EXPECT_FALSE(receive().ok());
}

TEST_F(AgentTest, MalformedPayloadIsAnErrorValue) {
  guest_writes(protocol::make_frame(MsgType::kExit, 1, std::vector<uint8_t>{1, 2}));
  auto f = receive();
  ASSERT_TRUE(f.ok());
  auto e = decode_as<protocol::Exit>(*f);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code(), ErrorCode::kProtocol);
}

TEST_F(AgentTest, AcceptsStatsResultOnStreamZeroOnly) {
  protocol::Stats stats;
  stats.memory_current = 123;
  guest_writes(protocol::make_frame(MsgType::kStatsResult, 0, protocol::encode(stats)));
  auto f = receive();
  ASSERT_TRUE(f.ok()) << f.error().to_string();
  auto decoded = decode_as<protocol::Stats>(*f);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->memory_current, 123u);

  SetUp();
  guest_writes(protocol::make_frame(MsgType::kStatsResult, 1, protocol::encode(stats)));
  auto on_stream = receive();
  ASSERT_FALSE(on_stream.ok());
  EXPECT_EQ(on_stream.error().code(), ErrorCode::kProtocol);
  EXPECT_NE(on_stream.error().to_string().find("stats-result"), std::string::npos);

  // The request goes host -> guest only.
  SetUp();
  guest_writes(protocol::make_frame(MsgType::kStats, 0, {}));
  auto request = receive();
  ASSERT_FALSE(request.ok());
  EXPECT_EQ(request.error().code(), ErrorCode::kProtocol);
}

TEST_F(AgentTest, GuestHangupIsReported) {
  guest_.reset();
  auto f = receive();
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code(), ErrorCode::kUnavailable);
}

TEST_F(AgentTest, TimesOut) {
  AgentConnection c(host_.get());
  auto f = c.wait_frame(std::chrono::steady_clock::now() + 20ms);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code(), ErrorCode::kTimeout);
}

}  // namespace
}  // namespace vessel::agent

namespace vessel::agent {
namespace {

// A guest's last good frame arrives in the same read as its bad one (or
// its EOF): the good one is handed out first, then the error, for good.
TEST(AgentOrder, FramesBeforeAnErrorComeFirstThenTheErrorStays) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd host(sv[0]), guest(sv[1]);
  ::fcntl(host.get(), F_SETFL, O_NONBLOCK);
  auto good = protocol::make_frame(protocol::MsgType::kSpawnResult, 1,
                                   protocol::encode(protocol::Reply{0, "", 1}));
  std::vector<uint8_t> bad(protocol::kHeaderSize);
  protocol::encode_header({0x80000000u, static_cast<uint16_t>(protocol::MsgType::kStdout), 0, 1},
                          bad.data());
  good.insert(good.end(), bad.begin(), bad.end());
  ASSERT_EQ(::write(guest.get(), good.data(), good.size()), static_cast<ssize_t>(good.size()));
  AgentConnection c(host.get());
  auto first = c.wait_frame(std::chrono::steady_clock::now() + std::chrono::seconds(2));
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  EXPECT_EQ(first->header.type, static_cast<uint16_t>(protocol::MsgType::kSpawnResult));
  ASSERT_TRUE(c.error().has_value());
  auto second = c.wait_frame(std::chrono::steady_clock::now() + std::chrono::seconds(2));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), ErrorCode::kProtocol);
  EXPECT_FALSE(c.read_available().ok());
}

// EOF right after an Exit: the Exit is not lost.
TEST(AgentOrder, ALastFrameBeforeEofIsDelivered) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd host(sv[0]), guest(sv[1]);
  ::fcntl(host.get(), F_SETFL, O_NONBLOCK);
  auto exit =
      protocol::make_frame(protocol::MsgType::kExit, 1, protocol::encode(protocol::Exit{7, 0}));
  ASSERT_EQ(::write(guest.get(), exit.data(), exit.size()), static_cast<ssize_t>(exit.size()));
  guest.reset();
  AgentConnection c(host.get());
  Status st = c.read_available();
  if (st.ok()) st = c.read_available();  // the EOF may need a second read
  EXPECT_EQ(st.error().code(), ErrorCode::kUnavailable);
  Frame f;
  ASSERT_TRUE(c.next(f));
  EXPECT_EQ(f.header.type, static_cast<uint16_t>(protocol::MsgType::kExit));
}

}  // namespace
}  // namespace vessel::agent
