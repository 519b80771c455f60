#include "sys/signals.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <utility>

namespace vessel::sys {

Result<SignalGuard> SignalGuard::install(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals)
    sigaddset(&set, s);
  SignalGuard g;
  if (::sigprocmask(SIG_BLOCK, &set, &g.old_) != 0) return Error::from_errno(errno, "sigprocmask");
  g.active_ = true;
  // A blocked SIGPIPE would stay pending and fire when the mask is restored,
  // so it is ignored rather than blocked.
  ::signal(SIGPIPE, SIG_IGN);
  g.fd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!g.fd_) return Error::from_errno(errno, "signalfd");
  return g;
}

SignalGuard::SignalGuard(SignalGuard&& o) noexcept
    : fd_(std::move(o.fd_)), old_(o.old_), active_(std::exchange(o.active_, false)) {}

SignalGuard::~SignalGuard() {
  if (active_) ::sigprocmask(SIG_SETMASK, &old_, nullptr);
}

int SignalGuard::take() {
  signalfd_siginfo si;
  if (::read(fd_.get(), &si, sizeof si) != sizeof si) return 0;
  return static_cast<int>(si.ssi_signo);
}

}  // namespace vessel::sys
