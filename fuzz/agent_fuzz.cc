// libFuzzer target for the host side of the guest channel: the bytes a
// (hostile) guest writes to the agent port go through a socket into the
// monitor's AgentConnection, exactly as in a running container, and every
// frame it lets through is decoded as the monitor decodes it.
//
// Beyond "no crash, no sanitizer report" it checks, and aborts when one
// fails:
//   - every frame handed out travels guest -> host (no request types) and
//     carries at most kMaxPayload bytes (kMaxDataChunk for stdio);
//   - one read_available() call takes at most kMaxReadPerCall bytes plus
//     what one frame adds, so a flood cannot make the host buffer without
//     bound.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

#include "agent/agent_connection.h"
#include "protocol/protocol.h"

namespace vessel::agent {
namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool guest_to_host(uint16_t type) {
  using protocol::MsgType;
  switch (static_cast<MsgType>(type)) {
    case MsgType::kHello:
    case MsgType::kSetupResult:
    case MsgType::kSpawnResult:
    case MsgType::kStdinAck:
    case MsgType::kStdout:
    case MsgType::kStderr:
    case MsgType::kExit:
    case MsgType::kStatsResult:
    case MsgType::kUpdateResult:
      return true;
    default:
      return false;
  }
}

// Decodes `f` as the monitor and ContainerVm do for its type.
void decode_like_the_monitor(const Frame& f) {
  using protocol::MsgType;
  switch (static_cast<MsgType>(f.header.type)) {
    case MsgType::kHello:
      (void)decode_as<protocol::Hello>(f);
      break;
    case MsgType::kSetupResult:
    case MsgType::kSpawnResult:
    case MsgType::kUpdateResult:
      (void)decode_as<protocol::Reply>(f);
      break;
    case MsgType::kStdinAck:
      (void)decode_as<protocol::Ack>(f);
      break;
    case MsgType::kExit:
      (void)decode_as<protocol::Exit>(f);
      break;
    case MsgType::kStatsResult: {
      auto s = decode_as<protocol::Stats>(f);
      if (s.ok()) (void)protocol::encode(*s);
      break;
    }
    default:
      break;
  }
}

}  // namespace
}  // namespace vessel::agent

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vessel;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  ::fcntl(sv[0], F_SETFL, O_NONBLOCK);
  ::fcntl(sv[1], F_SETFL, O_NONBLOCK);
  agent::AgentConnection conn(sv[0]);
  size_t off = 0;
  bool failed = false;
  bool closed = false;
  while (!failed) {
    // The guest writes what the socket takes; the host reads what came.
    while (off < size) {
      ssize_t n = ::write(sv[1], data + off, size - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    if (off == size && !closed) {
      ::shutdown(sv[1], SHUT_WR);
      closed = true;
    }
    Status st = conn.read_available();
    agent::Frame f;
    size_t frames_bytes = 0;
    while (conn.next(f)) {
      agent::check(agent::guest_to_host(f.header.type));
      agent::check(f.payload.size() <= protocol::kMaxPayload);
      if (f.header.type == static_cast<uint16_t>(protocol::MsgType::kStdout) ||
          f.header.type == static_cast<uint16_t>(protocol::MsgType::kStderr))
        agent::check(f.payload.size() <= protocol::kMaxDataChunk);
      frames_bytes += f.payload.size() + protocol::kHeaderSize;
      agent::decode_like_the_monitor(f);
    }
    agent::check(frames_bytes <= agent::AgentConnection::kMaxReadPerCall + protocol::kMaxPayload +
                                     protocol::kHeaderSize);
    failed = !st.ok();  // the monitor ends the session on the first error
  }
  ::close(sv[0]);
  ::close(sv[1]);
  return 0;
}
