#include "runtime/log_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "sys/fs.h"

namespace vessel::runtime {
namespace {

int64_t now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

const char* stream_name(LogStream s) {
  return s == LogStream::kStdout ? "stdout" : "stderr";
}

// Days since 1970-01-01 for a civil date (Howard Hinnant's algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = static_cast<unsigned>(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool parse_timestamp(std::string_view s, int64_t& out) {
  // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ, exactly as format_timestamp writes it.
  if (s.size() != 30 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[19] != '.' || s[29] != 'Z')
    return false;
  auto num = [&](size_t pos, size_t len, int64_t& v) {
    v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    return true;
  };
  int64_t y, mo, d, h, mi, se, ns;
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) ||
      !num(17, 2, se) || !num(20, 9, ns))
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return false;
  int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  out = ((days * 24 + h) * 60 + mi) * 60 + se;
  out = out * 1'000'000'000 + ns;
  return true;
}

Status parse_file(const std::string& path, std::vector<LogRecord>& out) {
  auto content = sys::read_file(path, 1ull << 31);
  if (!content.ok()) {
    if (content.error().code() == ErrorCode::kNotFound) return ok_status();
    return content.error();
  }
  size_t pos = 0;
  while (pos < content->size()) {
    size_t nl = content->find('\n', pos);
    if (nl == std::string::npos) break;  // a record being written
    LogRecord r;
    if (parse_log_line(std::string_view(*content).substr(pos, nl - pos), r))
      out.push_back(std::move(r));
    pos = nl + 1;
  }
  return ok_status();
}

}  // namespace

std::string format_timestamp(int64_t time_ns) {
  time_t secs = static_cast<time_t>(time_ns / 1'000'000'000);
  long nanos = static_cast<long>(time_ns % 1'000'000'000);
  tm t;
  ::gmtime_r(&secs, &t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, nanos);
  return buf;
}

bool parse_log_line(std::string_view line, LogRecord& out) {
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || !parse_timestamp(line.substr(0, sp1), out.time_ns))
    return false;
  std::string_view rest = line.substr(sp1 + 1);
  if (rest.substr(0, 7) == "stdout ")
    out.stream = LogStream::kStdout;
  else if (rest.substr(0, 7) == "stderr ")
    out.stream = LogStream::kStderr;
  else
    return false;
  rest = rest.substr(7);
  if (rest.size() < 2 || (rest[0] != 'F' && rest[0] != 'P') || rest[1] != ' ') return false;
  out.partial = rest[0] == 'P';
  out.text = std::string(rest.substr(2));
  return true;
}

Result<LogWriter> LogWriter::open(const std::string& path, uint64_t max_bytes, int keep) {
  VESSEL_ASSIGN_OR_RETURN(UniqueFd fd,
                          sys::open_fd(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Error::from_errno(errno, "stat '" + path + "'");
  return LogWriter(path, std::move(fd), static_cast<uint64_t>(st.st_size), max_bytes, keep);
}

Status LogWriter::write(LogStream stream, std::string_view data) {
  std::string& pending = pending_[static_cast<int>(stream)];
  while (!data.empty()) {
    size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      pending.append(data);
      data = {};
    } else {
      pending.append(data.substr(0, nl));
      data.remove_prefix(nl + 1);
      while (pending.size() > kMaxLine) {
        VESSEL_TRY(emit(stream, std::string_view(pending).substr(0, kMaxLine), true));
        pending.erase(0, kMaxLine);
      }
      VESSEL_TRY(emit(stream, pending, false));
      pending.clear();
    }
    while (pending.size() >= kMaxLine) {
      VESSEL_TRY(emit(stream, std::string_view(pending).substr(0, kMaxLine), true));
      pending.erase(0, kMaxLine);
    }
  }
  return ok_status();
}

Status LogWriter::flush() {
  for (int s = 0; s < 2; ++s) {
    if (pending_[s].empty()) continue;
    VESSEL_TRY(emit(static_cast<LogStream>(s), pending_[s], true));
    pending_[s].clear();
  }
  return ok_status();
}

Status LogWriter::emit(LogStream stream, std::string_view line, bool partial) {
  std::string rec = format_timestamp(now_ns()) + " " + stream_name(stream) +
                    (partial ? " P " : " F ") + std::string(line) + "\n";
  if (size_ + rec.size() > max_ && size_ > 0) VESSEL_TRY(rotate());
  VESSEL_TRY(sys::write_all(fd_.get(), rec.data(), rec.size()));
  size_ += rec.size();
  return ok_status();
}

Status LogWriter::rotate() {
  for (int i = keep_; i >= 1; --i) {
    std::string from = i == 1 ? path_ : path_ + "." + std::to_string(i - 1);
    std::string to = path_ + "." + std::to_string(i);
    if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT)
      return Error::from_errno(errno, "rotate log '" + from + "'");
  }
  if (keep_ == 0) (void)::unlink(path_.c_str());
  VESSEL_ASSIGN_OR_RETURN(fd_,
                          sys::open_fd(path_, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  size_ = 0;
  return ok_status();
}

Result<std::vector<LogRecord>> read_log(const std::string& path, int keep) {
  std::vector<LogRecord> out;
  for (int i = keep; i >= 1; --i)
    VESSEL_TRY(parse_file(path + "." + std::to_string(i), out));
  VESSEL_TRY(parse_file(path, out));
  return out;
}

Status follow_log(const std::string& path, uint64_t offset,
                  const std::function<void(const LogRecord&)>& emit,
                  const std::function<bool()>& done) {
  UniqueFd fd;
  ino_t ino = 0;
  std::string buf;
  auto reopen = [&]() {
    fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st;
    ino = fd && ::fstat(fd.get(), &st) == 0 ? st.st_ino : 0;
  };
  // Reads what is there and emits the whole records; true if it read any.
  auto drain = [&]() {
    bool got = false;
    char chunk[64 << 10];
    ssize_t n;
    while (fd && (n = ::read(fd.get(), chunk, sizeof chunk)) > 0) {
      buf.append(chunk, static_cast<size_t>(n));
      got = true;
    }
    size_t pos;
    while ((pos = buf.find('\n')) != std::string::npos) {
      LogRecord r;
      if (parse_log_line(std::string_view(buf).substr(0, pos), r)) emit(r);
      buf.erase(0, pos + 1);
    }
    return got;
  };
  reopen();
  if (fd) ::lseek(fd.get(), static_cast<off_t>(offset), SEEK_SET);
  while (true) {
    bool got = drain();
    // Rotated (a new file under the name): the old one is finished; switch.
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && st.st_ino != ino) {
      reopen();
      buf.clear();
      continue;
    }
    if (got) continue;
    if (done()) {
      drain();  // what was written just before the end
      return ok_status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace vessel::runtime
