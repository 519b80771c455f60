// Minimal leveled logging to stderr, prefixed with the program name.
#pragma once

#include <string_view>

namespace vessel::log {

enum class Level { kDebug, kInfo, kWarn, kError };

/// Messages below `level` are dropped. Default: kWarn.
void set_level(Level level);
Level level();
/// The prefix printed before each line ("vessel").
void set_program(std::string_view name);
/// Where lines go (default STDERR_FILENO). The caller keeps `fd` open.
void set_fd(int fd);
/// JSON lines as logrus writes them, {"level":"error","msg":"...","time":"..."}
/// (what containerd's runc shim reads from an OCI runtime's --log), instead
/// of "program: message".
void set_json(bool json);

void write(Level level, std::string_view message);
inline void debug(std::string_view m) {
  write(Level::kDebug, m);
}
inline void info(std::string_view m) {
  write(Level::kInfo, m);
}
inline void warn(std::string_view m) {
  write(Level::kWarn, m);
}
inline void error(std::string_view m) {
  write(Level::kError, m);
}

}  // namespace vessel::log
