#include "containers/copy.h"

#include <archive.h>
#include <archive_entry.h>
#include <poll.h>
#include <sys/stat.h>

#include <memory>

namespace vessel::containers {

using protocol::MsgType;
using Frame = protocol::FrameReader::Frame;

Status GuestCopy::start(const protocol::CopyOut& request) {
  return start_frame(MsgType::kCopyOut, protocol::encode(request));
}

Status GuestCopy::start(const protocol::CopyIn& request) {
  return start_frame(MsgType::kCopyIn, protocol::encode(request));
}

Status GuestCopy::start(const protocol::Spawn& request) {
  return start_frame(MsgType::kSpawn, protocol::encode(request));
}

Status GuestCopy::start_frame(MsgType type, const std::vector<uint8_t>& payload) {
  VESSEL_TRY(ch_.send(monitor::type_code(type), stream_, payload));
  VESSEL_ASSIGN_OR_RETURN(
      Frame f, monitor::await_frame(ch_, monitor::type_code(MsgType::kSpawnResult), stream_,
                                    std::chrono::seconds(60)));
  protocol::Reply reply;
  if (!protocol::decode(f.payload, reply))
    return Error(ErrorCode::kProtocol, "malformed reply from the monitor");
  if (reply.errnum != 0) {
    ErrorCode code = reply.errnum == ENOENT ? ErrorCode::kNotFound : ErrorCode::kInvalidArgument;
    return Error(code, reply.message);
  }
  pid_ = reply.pid;
  return ok_status();
}

Result<bool> GuestCopy::next(std::vector<uint8_t>& out) {
  while (chunks_.empty()) {
    if (exit_) return false;
    VESSEL_TRY(pump(-1));
  }
  out = std::move(chunks_.front());
  chunks_.pop_front();
  return true;
}

Status GuestCopy::send(const uint8_t* data, size_t size) {
  while (size > 0) {
    if (exit_) return Error(ErrorCode::kInvalidArgument, failure_text());
    size_t n = std::min<size_t>(size, protocol::kMaxDataChunk);
    if (in_flight_ + n > protocol::kStdinWindow) {
      VESSEL_TRY(pump(-1));
      continue;
    }
    VESSEL_TRY(
        ch_.send(monitor::type_code(MsgType::kStdin), stream_, std::span<const uint8_t>(data, n)));
    in_flight_ += static_cast<uint32_t>(n);
    data += n;
    size -= n;
    VESSEL_TRY(pump(0));
  }
  return ok_status();
}

Status GuestCopy::finish(bool send_eof) {
  if (send_eof && !exit_) VESSEL_TRY(ch_.send(monitor::type_code(MsgType::kStdin), stream_));
  while (!exit_) {
    chunks_.clear();
    VESSEL_TRY(pump(-1));
  }
  if (exit_->code != 0 || exit_->signal != 0)
    return Error(ErrorCode::kInvalidArgument, failure_text());
  return ok_status();
}

std::string GuestCopy::failure_text() const {
  std::string text = stderr_;
  while (!text.empty() && text.back() == '\n')
    text.pop_back();
  if (!text.empty()) return text;
  if (exit_ && exit_->signal)
    return "the copy was killed by signal " + std::to_string(exit_->signal);
  return "the copy failed in the container";
}

Status GuestCopy::pump(int timeout_ms) {
  Frame f;
  bool any = false;
  while (ch_.next(f)) {
    any = true;
    handle(f);
  }
  if (any && timeout_ms < 0) return ok_status();
  pollfd p{ch_.fd(), POLLIN, 0};
  int r = ::poll(&p, 1, timeout_ms);
  if (r < 0 && errno != EINTR) return Error::from_errno(errno, "poll");
  if (r > 0) {
    if (auto s = ch_.read_available(); !s.ok()) {
      if (s.error().code() == ErrorCode::kUnavailable)
        return Error(ErrorCode::kUnavailable, "the container's monitor went away");
      return s;
    }
    while (ch_.next(f))
      handle(f);
  }
  return ok_status();
}

void GuestCopy::handle(Frame& f) {
  if (f.header.stream != stream_) return;
  switch (static_cast<MsgType>(f.header.type)) {
    case MsgType::kStdout:
      chunks_.push_back(std::move(f.payload));
      break;
    case MsgType::kStderr:
      if (stderr_.size() < 64 * 1024) stderr_.append(f.payload.begin(), f.payload.end());
      break;
    case MsgType::kStdinAck: {
      protocol::Ack ack;
      if (protocol::decode(f.payload, ack)) in_flight_ -= std::min<uint32_t>(ack.bytes, in_flight_);
      break;
    }
    case MsgType::kExit: {
      protocol::Exit e;
      exit_ = protocol::decode(f.payload, e) ? e : protocol::Exit{255, 0, 0};
      break;
    }
    default:
      break;
  }
}

Result<PathStat> stat_path(monitor::Channel& ch, uint32_t stream, const std::string& path,
                           bool follow) {
  GuestCopy copy(ch, stream);
  protocol::CopyOut req{path, "top", protocol::CopyOut::kTopOnly};
  if (follow) req.flags |= protocol::CopyOut::kFollowLink;
  if (auto s = copy.start(req); !s.ok()) {
    if (s.error().code() == ErrorCode::kNotFound) return PathStat{};
    return s.error();
  }
  // The answer is one tar header and its end: a few KiB at most.
  std::vector<uint8_t> tar, chunk;
  while (true) {
    VESSEL_ASSIGN_OR_RETURN(bool more, copy.next(chunk));
    if (!more) break;
    if (tar.size() + chunk.size() > (1u << 20))
      return Error(ErrorCode::kProtocol, "oversized answer about '" + path + "' from the guest");
    tar.insert(tar.end(), chunk.begin(), chunk.end());
  }
  VESSEL_TRY(copy.finish(false));
  std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(a.get());
  archive_entry* entry = nullptr;
  if (archive_read_open_memory(a.get(), tar.data(), tar.size()) != ARCHIVE_OK ||
      archive_read_next_header(a.get(), &entry) != ARCHIVE_OK)
    return Error(ErrorCode::kProtocol, "unreadable answer about '" + path + "' from the guest");
  PathStat st;
  st.exists = true;
  std::string clean = path;
  while (clean.size() > 1 && clean.back() == '/')
    clean.pop_back();
  size_t slash = clean.rfind('/');
  st.name = slash == std::string::npos || clean == "/" ? clean : clean.substr(slash + 1);
  st.mode = archive_entry_mode(entry);
  // A regular file's header says its size (kTopOnly sends no data).
  st.size = archive_entry_size(entry);
  st.mtime = archive_entry_mtime(entry);
  if (const char* link = archive_entry_symlink(entry)) st.link_target = link;
  if (S_ISLNK(st.mode)) st.size = static_cast<int64_t>(st.link_target.size());  // as lstat(2)
  return st;
}

}  // namespace vessel::containers
