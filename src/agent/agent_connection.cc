#include "agent/agent_connection.h"

#include <poll.h>
#include <unistd.h>

#include "sys/fs.h"

namespace vessel::agent {

using protocol::MsgType;

AgentConnection::AgentConnection(int fd) : fd_(fd) {}

Status AgentConnection::send(MsgType type, uint32_t stream, std::span<const uint8_t> payload) {
  auto frame = protocol::make_frame(type, stream, payload);
  Status s = sys::write_all(fd_, frame.data(), frame.size());
  if (!s.ok()) return s.error().wrap("send to guest");
  return s;
}

Status AgentConnection::validate(const Frame& f) const {
  auto type = static_cast<MsgType>(f.header.type);
  switch (type) {
    case MsgType::kSetupResult:
      // Container 0's on stream 0; a container added to a pod's VM answers
      // on the stream its Setup came on.
      return ok_status();
    case MsgType::kHello:
    case MsgType::kStatsResult:
    case MsgType::kPoweroff:  // the guest's answer: synced, resetting (version 8)
    case MsgType::kUpdateResult:
      if (f.header.stream != 0) break;
      return ok_status();
    case MsgType::kSpawnResult:
    case MsgType::kStdinAck:
    case MsgType::kExit:
      if (f.header.stream == 0) break;
      return ok_status();
    case MsgType::kStdout:
    case MsgType::kStderr:
      if (f.header.stream == 0 || f.payload.size() > protocol::kMaxDataChunk) break;
      return ok_status();
    // Requests flow host -> guest only: a guest sending one is broken.
    case MsgType::kSetup:
    case MsgType::kSpawn:
    case MsgType::kStdin:
    case MsgType::kSignal:
    case MsgType::kResize:
    case MsgType::kStats:
    case MsgType::kCopyOut:
    case MsgType::kCopyIn:
    case MsgType::kUpdate:
    case MsgType::kRemoveContainer:
    default:
      break;
  }
  return Error(ErrorCode::kProtocol, std::string("guest sent an invalid '") +
                                         protocol::type_name(f.header.type) + "' frame (stream " +
                                         std::to_string(f.header.stream) + ", " +
                                         std::to_string(f.payload.size()) + " bytes)");
}

Status AgentConnection::read_available() {
  if (error_) return *error_;
  uint8_t buf[65536];
  std::optional<Error> read_error;
  // At most kMaxReadPerCall per call: a guest that writes faster than we
  // read must not keep us here queueing frames without bound; the caller
  // handles what came and polls again, and the guest waits (backpressure).
  for (size_t total = 0; total < kMaxReadPerCall;) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) read_error = Error::from_errno(errno, "read from guest");
      break;
    }
    if (n == 0) {
      read_error = Error(ErrorCode::kUnavailable, "guest closed the agent channel");
      break;
    }
    reader_.feed(buf, static_cast<size_t>(n));
    total += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < sizeof buf) break;
  }
  // The frames that came whole before whatever went wrong are queued first
  // (a guest's last words: an Exit, then EOF); the error is kept and
  // returned from now on, after them.
  Frame f;
  while (!error_) {
    auto st = reader_.next(f);
    if (st == protocol::FrameReader::Status::kNeedMore) break;
    if (st == protocol::FrameReader::Status::kError) {
      error_ = Error(ErrorCode::kProtocol, "guest sent a frame larger than the protocol allows");
      break;
    }
    if (Status v = validate(f); !v.ok()) {
      error_ = v.error();
      break;
    }
    frames_.push_back(std::move(f));
  }
  if (!error_ && read_error) error_ = std::move(read_error);
  if (error_) return *error_;
  return ok_status();
}

bool AgentConnection::next(Frame& out) {
  if (frames_.empty()) return false;
  out = std::move(frames_.front());
  frames_.pop_front();
  return true;
}

Result<Frame> AgentConnection::wait_frame(std::chrono::steady_clock::time_point deadline,
                                          int abort_fd) {
  Frame f;
  while (!next(f)) {
    if (error_) return *error_;  // after the frames that came before it
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Error(ErrorCode::kTimeout, "guest did not answer in time");
    pollfd p[2] = {{fd_, POLLIN, 0}, {abort_fd, POLLIN, 0}};
    int r = ::poll(p, abort_fd >= 0 ? 2 : 1, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) return Error::from_errno(errno, "poll");
    if (r <= 0) continue;
    if (abort_fd >= 0 && (p[1].revents & POLLIN))
      return Error(ErrorCode::kUnavailable, "the VM stopped");
    if (p[0].revents) (void)read_available();  // an error: kept, returned above
  }
  return f;
}

}  // namespace vessel::agent
