// Reading signals from a signalfd instead of handlers.
#pragma once

#include <signal.h>

#include <initializer_list>

#include "base/error.h"
#include "base/unique_fd.h"

namespace vessel::sys {

/// Blocks `signals` and reads them from a signalfd; restores the previous
/// mask on destruction. SIGPIPE is ignored meanwhile (a closed stdout or a
/// dead peer shows up as EPIPE).
class SignalGuard {
 public:
  static Result<SignalGuard> install(std::initializer_list<int> signals);
  SignalGuard(SignalGuard&& o) noexcept;
  SignalGuard& operator=(SignalGuard&&) = delete;
  ~SignalGuard();
  int fd() const { return fd_.get(); }
  /// The next pending signal, or 0.
  int take();

 private:
  SignalGuard() = default;
  UniqueFd fd_;
  sigset_t old_{};
  bool active_ = false;
};

}  // namespace vessel::sys
