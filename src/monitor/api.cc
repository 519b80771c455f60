#include "monitor/api.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "sys/fs.h"
#include "sys/unix_socket.h"

namespace vessel::monitor {
namespace {

void put_i32(std::vector<uint8_t>& out, int32_t v) {
  uint32_t u = static_cast<uint32_t>(v);
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<uint8_t>(u >> (8 * i)));
}

int32_t get_i32(const uint8_t* p) {
  uint32_t u = 0;
  for (int i = 0; i < 4; ++i)
    u |= static_cast<uint32_t>(p[i]) << (8 * i);
  return static_cast<int32_t>(u);
}

}  // namespace

std::vector<uint8_t> encode(const Attach& m) {
  return {m.stdin, m.output};
}

std::vector<uint8_t> encode(const Stop& m) {
  std::vector<uint8_t> out;
  put_i32(out, m.signal);
  put_i32(out, m.timeout);
  return out;
}

bool decode(std::span<const uint8_t> p, Attach& out) {
  if (p.size() < 2) return false;
  out.stdin = p[0];
  out.output = p[1];
  return true;
}

bool decode(std::span<const uint8_t> p, Stop& out) {
  if (p.size() < 8) return false;
  out.signal = get_i32(p.data());
  out.timeout = get_i32(p.data() + 4);
  return out.signal >= 0 && out.signal < 65 && out.timeout >= -1;
}

Status Channel::send(uint16_t type, uint32_t stream, std::span<const uint8_t> payload) {
  queue(type, stream, payload);
  while (queued() > 0) {
    VESSEL_TRY(flush());
    if (queued() == 0) break;
    pollfd p{fd_.get(), POLLOUT, 0};
    if (::poll(&p, 1, -1) < 0 && errno != EINTR) return Error::from_errno(errno, "poll");
  }
  return ok_status();
}

void Channel::queue(uint16_t type, uint32_t stream, std::span<const uint8_t> payload) {
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  }
  uint8_t header[protocol::kHeaderSize];
  protocol::encode_header({static_cast<uint32_t>(payload.size()), type, 0, stream}, header);
  out_.insert(out_.end(), header, header + sizeof header);
  out_.insert(out_.end(), payload.begin(), payload.end());
}

Status Channel::flush() {
  while (out_pos_ < out_.size()) {
    ssize_t n = ::send(fd_.get(), out_.data() + out_pos_, out_.size() - out_pos_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return ok_status();
      return Error::from_errno(errno, "write to monitor socket");
    }
    out_pos_ += static_cast<size_t>(n);
  }
  out_.clear();
  out_pos_ = 0;
  return ok_status();
}

Status Channel::read_available() {
  uint8_t buf[65536];
  // The bytes that came before an end or error are framed and handed out
  // first: the end shows again on the next call (poll keeps reporting it).
  bool got = false;
  while (true) {
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || got) break;
      return Error::from_errno(errno, "read from monitor socket");
    }
    if (n == 0) {
      if (got) break;
      return Error(ErrorCode::kUnavailable, "the peer closed the connection");
    }
    got = true;
    reader_.feed(buf, static_cast<size_t>(n));
    if (static_cast<size_t>(n) < sizeof buf) break;
  }
  if (frames_pos_ == frames_.size()) {
    frames_.clear();
    frames_pos_ = 0;
  }
  protocol::FrameReader::Frame f;
  while (true) {
    auto st = reader_.next(f);
    if (st == protocol::FrameReader::Status::kNeedMore) return ok_status();
    if (st == protocol::FrameReader::Status::kError)
      return Error(ErrorCode::kProtocol, "malformed frame on the monitor socket");
    frames_.push_back(std::move(f));
  }
}

bool Channel::next(protocol::FrameReader::Frame& out) {
  if (frames_pos_ == frames_.size()) return false;
  out = std::move(frames_[frames_pos_++]);
  return true;
}

Result<Channel> connect(const std::string& path) {
  VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::connect_unix(path));
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
  return Channel(std::move(fd));
}

}  // namespace vessel::monitor
