#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace vessel::log {
namespace {
std::atomic<Level> g_level{Level::kWarn};
std::string g_program = "vessel";
}  // namespace

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
  std::string line = g_program;
  line += l == Level::kDebug ? ": debug: " : ": ";
  line += message;
  line += '\n';
  // One write(2) per line so lines from concurrent processes do not interleave.
  ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
}

}  // namespace vessel::log
