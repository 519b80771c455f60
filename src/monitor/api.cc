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

void put_i64(std::vector<uint8_t>& out, int64_t v) {
  uint64_t u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<uint8_t>(u >> (8 * i)));
}

int64_t get_i64(const uint8_t* p) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i)
    u |= static_cast<uint64_t>(p[i]) << (8 * i);
  return static_cast<int64_t>(u);
}

std::string mib(uint64_t bytes) {
  return std::to_string(bytes >> 20) + " MiB";
}

}  // namespace

Result<protocol::Update> merge_limits(const protocol::Update& current, const Limits& change,
                                      uint64_t vm_memory, unsigned cpus) {
  auto invalid = [](const std::string& why) { return Error(ErrorCode::kInvalidArgument, why); };
  protocol::Update out = current;
  if (change.memory_bytes == 0) out.memory_limit_bytes = vm_memory;
  if (change.memory_bytes > 0) {
    uint64_t m = static_cast<uint64_t>(change.memory_bytes);
    if (m > vm_memory)
      return invalid("memory limit " + mib(m) + " is above the VM's " + mib(vm_memory) +
                     " (fixed at create)");
    if (m < (4u << 20)) return invalid("memory limit " + std::to_string(m) + " is below 4 MiB");
    out.memory_limit_bytes = m;
  }
  if (change.pids >= 0) out.pids_limit = static_cast<uint64_t>(change.pids);
  if (change.cpu_period_usec >= 0) {
    if (change.cpu_period_usec != 0 && (change.cpu_period_usec < protocol::kMinCpuPeriodUsec ||
                                        change.cpu_period_usec > protocol::kMaxCpuPeriodUsec))
      return invalid("cpu period " + std::to_string(change.cpu_period_usec) +
                     " us is outside 1000 to 1000000");
    out.cpu_period_usec = static_cast<uint32_t>(change.cpu_period_usec);
  }
  if (change.cpu_quota_usec >= 0) {
    if (change.cpu_quota_usec != 0 && change.cpu_quota_usec < protocol::kMinCpuPeriodUsec)
      return invalid("cpu quota " + std::to_string(change.cpu_quota_usec) + " us is below 1000");
    if (change.cpu_quota_usec > UINT32_MAX)
      return invalid("cpu quota " + std::to_string(change.cpu_quota_usec) + " us is too large");
    out.cpu_quota_usec = static_cast<uint32_t>(change.cpu_quota_usec);
  }
  uint64_t period = out.cpu_period_usec ? out.cpu_period_usec : protocol::kDefaultCpuPeriodUsec;
  if (out.cpu_quota_usec > uint64_t{cpus} * period)
    return invalid("cpu quota " + std::to_string(out.cpu_quota_usec) + " us per " +
                   std::to_string(period) + " us is more than the VM's " + std::to_string(cpus) +
                   " vCPUs (fixed at create)");
  return out;
}

std::vector<uint8_t> encode(const Attach& m) {
  return {m.stdin, m.output};
}

std::vector<uint8_t> encode(const Stop& m) {
  std::vector<uint8_t> out;
  put_i32(out, m.signal);
  put_i32(out, m.timeout);
  return out;
}

std::vector<uint8_t> encode(const Limits& m) {
  std::vector<uint8_t> out;
  for (int64_t v : {m.memory_bytes, m.pids, m.cpu_quota_usec, m.cpu_period_usec})
    put_i64(out, v);
  return out;
}

bool decode(std::span<const uint8_t> p, Limits& out) {
  if (p.size() < 32) return false;
  out.memory_bytes = get_i64(p.data());
  out.pids = get_i64(p.data() + 8);
  out.cpu_quota_usec = get_i64(p.data() + 16);
  out.cpu_period_usec = get_i64(p.data() + 24);
  return out.memory_bytes >= -1 && out.pids >= -1 && out.cpu_quota_usec >= -1 &&
         out.cpu_period_usec >= -1;
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
