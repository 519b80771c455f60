// The host side of the host<->guest protocol over one connected socket.
// The guest is untrusted: every frame is checked for size, type and
// direction before anyone sees it, and any violation fails the connection.
#pragma once

#include <chrono>
#include <deque>
#include <optional>
#include <span>

#include "base/error.h"
#include "protocol/protocol.h"

namespace vessel::agent {

using Frame = protocol::FrameReader::Frame;

class AgentConnection {
 public:
  /// `fd` is a connected stream socket; not owned (the VM instance owns it).
  explicit AgentConnection(int fd);

  int fd() const { return fd_; }

  /// Sends one frame, blocking until it is written.
  Status send(protocol::MsgType type, uint32_t stream, std::span<const uint8_t> payload = {});
  /// Encodes and sends one message.
  template <typename M>
  Status send_message(protocol::MsgType type, uint32_t stream, const M& message) {
    auto payload = protocol::encode(message);
    return send(type, stream, payload);
  }

  /// Bytes read_available() takes from the socket at most per call.
  static constexpr size_t kMaxReadPerCall = 1u << 20;

  /// Reads what the socket has now, up to kMaxReadPerCall (call when poll
  /// says readable; call again while it stays readable), and queues the
  /// whole frames. kUnavailable when the guest closed the channel,
  /// kProtocol when it sent something invalid; either is final (error()),
  /// and the whole frames that came before it are queued all the same.
  Status read_available();
  /// Takes the next queued frame.
  bool next(Frame& out);
  /// The error that ended the channel, once there is one (it is final).
  /// Frames queued before it are still taken with next(); a caller that
  /// stops polling the fd (nothing more will come) must check this.
  const std::optional<Error>& error() const { return error_; }

  /// Waits for the next frame, up to `deadline`; also returns (with
  /// kUnavailable) when `abort_fd` becomes readable, e.g. QEMU exited.
  Result<Frame> wait_frame(std::chrono::steady_clock::time_point deadline, int abort_fd = -1);

 private:
  Status validate(const Frame& f) const;

  int fd_;
  protocol::FrameReader reader_;
  std::deque<Frame> frames_;
  std::optional<Error> error_;
};

/// Decodes a frame's payload as message M; kProtocol if it does not decode.
template <typename M>
Result<M> decode_as(const Frame& f) {
  M m;
  if (!protocol::decode(f.payload, m))
    return Error(ErrorCode::kProtocol,
                 std::string("malformed '") + protocol::type_name(f.header.type) + "' message");
  return m;
}

}  // namespace vessel::agent
