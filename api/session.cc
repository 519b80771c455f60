#include "api/session.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

namespace vessel::api {

using monitor::type_code;
using protocol::MsgType;

Result<protocol::Exit> pump_session(monitor::Channel& ch, uint32_t stream, Exchange& ex,
                                    const SessionOptions& o) {
  bool reading = true;  // the client's side is open for reading
  bool stdin_eof_sent = !o.forward_stdin;
  uint32_t in_flight = 0;
  std::string pending_in = ex.take_leftover();
  auto send_stdin = [&](std::string_view data) -> Status {
    if (!o.forward_stdin || stdin_eof_sent) return ok_status();
    in_flight += static_cast<uint32_t>(data.size());
    return ch.send(
        type_code(MsgType::kStdin), stream,
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  };
  auto out = [&](int which, const std::vector<uint8_t>& data) -> Status {
    if ((which == 1 && !o.stdout) || (which == 2 && !o.stderr) || data.empty()) return ok_status();
    std::string_view bytes(reinterpret_cast<const char*>(data.data()), data.size());
    return ex.write(o.tty ? std::string(bytes) : frame_stream(static_cast<uint8_t>(which), bytes));
  };
  while (true) {
    VESSEL_ASSIGN_OR_RETURN(auto exit, monitor::take_stream_frames(ch, stream, in_flight, out));
    if (exit) return *exit;
    // Bytes the client sent with its request go first, within the window.
    while (!pending_in.empty() && in_flight < protocol::kStdinWindow) {
      size_t n = std::min<size_t>(
          {pending_in.size(), protocol::kMaxDataChunk, protocol::kStdinWindow - in_flight});
      VESSEL_TRY(send_stdin(std::string_view(pending_in).substr(0, n)));
      pending_in.erase(0, n);
    }
    bool want_in =
        reading && pending_in.empty() && (!o.forward_stdin || in_flight < protocol::kStdinWindow);
    pollfd p[3] = {{ch.fd(), POLLIN, 0},
                   {ex.fd(), static_cast<short>(want_in ? POLLIN : 0), 0},
                   {o.resize_fd, POLLIN, 0}};
    if (::poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno(errno, "poll");
    }
    if (p[0].revents) {
      if (auto s = ch.read_available(); !s.ok()) {
        if (s.error().code() == ErrorCode::kUnavailable)
          return Error(ErrorCode::kUnavailable, "the container's monitor went away");
        return s.error();
      }
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (!reading) {
        // Hung up with nothing left to read: the client is gone.
        return Error(ErrorCode::kUnavailable, "the client went away");
      }
      char buf[protocol::kMaxDataChunk];
      size_t room = o.forward_stdin
                        ? std::min<size_t>(sizeof buf, protocol::kStdinWindow - in_flight)
                        : sizeof buf;
      ssize_t n = ::recv(ex.fd(), buf, room, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        reading = false;  // EOF: the client closed its side (or is gone)
        if (o.forward_stdin && !stdin_eof_sent) {
          VESSEL_TRY(ch.send(type_code(MsgType::kStdin), stream));
          stdin_eof_sent = true;
        }
        if (n < 0) return Error(ErrorCode::kUnavailable, "the client went away");
      } else {
        VESSEL_TRY(send_stdin(std::string_view(buf, static_cast<size_t>(n))));
      }
    }
    if (o.resize_fd >= 0 && (p[2].revents & POLLIN)) {
      uint8_t b[4];
      if (::read(o.resize_fd, b, 4) == 4) {
        protocol::Resize rs{static_cast<uint16_t>(b[0] << 8 | b[1]),
                            static_cast<uint16_t>(b[2] << 8 | b[3])};
        VESSEL_TRY(ch.send_message(type_code(MsgType::kResize), stream, rs));
      }
    }
  }
}

}  // namespace vessel::api
