// A container's stdout and stderr log: one record per line in the CRI log
// format (what containerd and CRI-O write, see docs/architecture.md):
//
//   2026-11-23T15:40:01.123456789Z stdout F the line without its newline
//
// F marks a full line, P a part of a longer one (split at kMaxLine) or a
// last line without a newline. The file is rotated at a size cap: log ->
// log.1 -> ... -> log.<keep>, the oldest dropped.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace vessel::runtime {

enum class LogStream { kStdout, kStderr };

struct LogRecord {
  int64_t time_ns = 0;  // Unix nanoseconds
  LogStream stream = LogStream::kStdout;
  bool partial = false;  // the line goes on in the next record of the stream
  std::string text;      // without the newline
};

class LogWriter {
 public:
  static constexpr size_t kMaxLine = 16 << 10;

  /// Appends to `path`, rotating when it exceeds `max_bytes`, keeping `keep`
  /// older files.
  static Result<LogWriter> open(const std::string& path, uint64_t max_bytes = 10 << 20,
                                int keep = 2);
  /// Records `data` from `stream`; whole lines are written at once, a
  /// trailing part waits for its newline (or flush()).
  Status write(LogStream stream, std::string_view data);
  /// Writes any waiting parts as partial records.
  Status flush();

 private:
  LogWriter(std::string path, UniqueFd fd, uint64_t size, uint64_t max, int keep)
      : path_(std::move(path)), fd_(std::move(fd)), size_(size), max_(max), keep_(keep) {}
  Status emit(LogStream stream, std::string_view line, bool partial);
  Status rotate();

  std::string path_;
  UniqueFd fd_;
  uint64_t size_, max_;
  int keep_;
  std::string pending_[2];
};

/// "2026-11-23T15:40:01.123456789Z".
std::string format_timestamp(int64_t time_ns);

/// Parses one line of a log file (without its newline); false if malformed.
bool parse_log_line(std::string_view line, LogRecord& out);

/// The records of the log at `path` and its rotated files, oldest first.
/// A missing log is empty.
Result<std::vector<LogRecord>> read_log(const std::string& path, int keep = 2);

/// Follows the log at `path`: calls `emit` for each record appended after
/// byte `offset` of the current file (use the current size to skip what
/// read_log returned) until `done()` says stop and nothing is left to read.
/// Survives rotation.
Status follow_log(const std::string& path, uint64_t offset,
                  const std::function<void(const LogRecord&)>& emit,
                  const std::function<bool()>& done);

}  // namespace vessel::runtime
