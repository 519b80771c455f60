#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <string>

namespace vessel::log {
namespace {
std::atomic<Level> g_level{Level::kWarn};
std::string g_program = "vessel";
std::atomic<int> g_fd{STDERR_FILENO};
std::atomic<bool> g_json{false};

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "info";
}

std::string json_line(Level l, std::string_view message) {
  std::string msg;
  for (unsigned char c : message) {
    if (c == '"' || c == '\\') {
      msg += '\\';
      msg += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      msg += buf;
    } else {
      msg += static_cast<char>(c);
    }
  }
  char when[32] = "";
  std::time_t now = std::time(nullptr);
  struct tm tm;
  if (::gmtime_r(&now, &tm)) std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string("{\"level\":\"") + level_name(l) + "\",\"msg\":\"" + msg + "\",\"time\":\"" +
         when + "\"}\n";
}
}  // namespace

void set_fd(int fd) {
  g_fd = fd;
}
void set_json(bool json) {
  g_json = json;
}

void set_level(Level l) {
  g_level = l;
}
Level level() {
  return g_level;
}
void set_program(std::string_view name) {
  g_program = name;
}

void write(Level l, std::string_view message) {
  if (l < g_level) return;
  std::string line;
  if (g_json) {
    line = json_line(l, message);
  } else {
    line = g_program;
    line += l == Level::kDebug ? ": debug: " : ": ";
    line += message;
    line += '\n';
  }
  // One write(2) per line so lines from concurrent processes do not interleave.
  ssize_t unused = ::write(g_fd, line.data(), line.size());
  (void)unused;
}

}  // namespace vessel::log
