// Terminal modes and window sizes for `-t`.
#pragma once

#include <termios.h>

#include <cstdint>
#include <optional>

#include "base/error.h"

namespace vessel::sys {

struct WindowSize {
  uint16_t rows = 0, cols = 0;
};

/// The window size of the terminal on `fd`, if it is one.
std::optional<WindowSize> window_size(int fd);

/// Puts a terminal in raw mode and restores the saved mode on destruction.
class RawTerminal {
 public:
  /// kInvalidArgument if `fd` is not a terminal.
  static Result<RawTerminal> enter(int fd);
  RawTerminal(RawTerminal&& other) noexcept;
  RawTerminal& operator=(RawTerminal&&) = delete;
  RawTerminal(const RawTerminal&) = delete;
  ~RawTerminal();

 private:
  RawTerminal(int fd, const termios& saved) : fd_(fd), saved_(saved) {}
  int fd_ = -1;
  termios saved_{};
};

}  // namespace vessel::sys
