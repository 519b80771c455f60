#include "sys/terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace vessel::sys {

std::optional<WindowSize> window_size(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return std::nullopt;
  return WindowSize{ws.ws_row, ws.ws_col};
}

Result<RawTerminal> RawTerminal::enter(int fd) {
  termios saved;
  if (::tcgetattr(fd, &saved) != 0) return Error::from_errno(errno, "tcgetattr");
  termios raw = saved;
  ::cfmakeraw(&raw);
  if (::tcsetattr(fd, TCSANOW, &raw) != 0) return Error::from_errno(errno, "tcsetattr");
  return RawTerminal(fd, saved);
}

RawTerminal::RawTerminal(RawTerminal&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), saved_(other.saved_) {}

RawTerminal::~RawTerminal() {
  if (fd_ >= 0) ::tcsetattr(fd_, TCSANOW, &saved_);
}

}  // namespace vessel::sys
