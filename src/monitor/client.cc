#include "monitor/client.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/log.h"
#include "base/strings.h"
#include "runtime/paths.h"
#include "sys/fs.h"
#include "sys/terminal.h"

namespace vessel::monitor {
namespace {

using Clock = std::chrono::steady_clock;
using Frame = protocol::FrameReader::Frame;
using protocol::MsgType;

std::string exe_dir() {
  char exe[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return ".";
  std::string path(exe, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/'));
}

// Reads one line from `fd` (blocking, up to `deadline`); "" at EOF.
Result<std::string> read_line(int fd, Clock::time_point deadline, bool* eof) {
  std::string line;
  *eof = false;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Error(ErrorCode::kTimeout, "the monitor did not report in time");
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) return Error::from_errno(errno, "poll");
    if (r <= 0) continue;
    char c;
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *eof = true;
      return line;
    }
    if (c == '\n') return line;
    line += c;
  }
}

std::string read_rest(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

}  // namespace

Result<std::string> monitor_program() {
  if (const char* e = ::getenv("VESSEL_MONITOR"); e && *e) return std::string(e);
  std::string dir = exe_dir();
  for (std::string candidate :
       {dir + "/vessel-monitor", dir + "/../libexec/vessel/vessel-monitor"}) {
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return Error(ErrorCode::kUnavailable, "vessel-monitor not found next to " + dir +
                                            " (build the project, or set "
                                            "VESSEL_MONITOR)");
}

namespace {

Result<Launch> launch_with(const std::string& root, const std::string& id,
                           const std::vector<std::string>& flags) {
  VESSEL_ASSIGN_OR_RETURN(std::string program, monitor_program());
  std::vector<std::string> args = {program, "--root", root, "--id", id, "--ready-fd", "3"};
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);

  std::string log_path = runtime::container_dir(root, id) + "/monitor.log";
  VESSEL_ASSIGN_OR_RETURN(UniqueFd log,
                          sys::open_fd(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600));
  VESSEL_ASSIGN_OR_RETURN(UniqueFd null, sys::open_fd("/dev/null", O_RDWR));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Error::from_errno(errno, "pipe");
  UniqueFd ready_read(pipe_fds[0]), ready_write(pipe_fds[1]);

  // Double fork: the monitor is nobody's child but init's, in a session of
  // its own, so neither the CLI's exit nor its terminal's ^C reaches it.
  pid_t child = ::fork();
  if (child < 0) return Error::from_errno(errno, "fork");
  if (child == 0) {
    ::setsid();
    pid_t grandchild = ::fork();
    if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s = 1; s < NSIG; ++s)
      ::signal(s, SIG_DFL);
    ::dup2(null.get(), 0);
    ::dup2(null.get(), 1);
    ::dup2(log.get(), 2);
    ::dup2(ready_write.get(), 3);  // dup2 clears FD_CLOEXEC
    ::execv(argv[0], argv.data());
    char msg[256];
    int n = std::snprintf(msg, sizeof msg, "fail 125\nexecute '%s': %s", argv[0], strerror(errno));
    ssize_t unused = ::write(3, msg, static_cast<size_t>(n));
    (void)unused;
    ::_exit(127);
  }
  ready_write.reset();
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  Launch l;
  l.ready = std::move(ready_read);
  bool eof = false;
  VESSEL_ASSIGN_OR_RETURN(std::string line,
                          read_line(l.ready.get(), Clock::now() + std::chrono::seconds(30), &eof));
  if (starts_with(line, "listening ")) {
    auto pid = parse_u64(line.substr(10));
    l.pid = pid ? static_cast<pid_t>(*pid) : 0;
    return l;
  }
  std::string message = starts_with(line, "fail ") ? read_rest(l.ready.get()) : line;
  if (message.empty()) message = "the monitor exited at once (see " + log_path + ")";
  return Error(ErrorCode::kUnavailable, message);
}

}  // namespace

Result<Launch> launch(const std::string& root, const std::string& id, bool wait_attach,
                      bool debug) {
  std::vector<std::string> flags;
  if (wait_attach) flags.push_back("--wait-attach");
  if (debug) flags.push_back("--debug");
  return launch_with(root, id, flags);
}

Result<Launch> launch_held(const std::string& root, const std::string& id, bool debug) {
  std::vector<std::string> flags = {"--hold"};
  if (debug) flags.push_back("--debug");
  return launch_with(root, id, flags);
}

Result<Launch> launch_maintenance(const std::string& root, const std::string& id, bool debug) {
  std::vector<std::string> flags = {"--maintenance"};
  if (debug) flags.push_back("--debug");
  return launch_with(root, id, flags);
}

Status wait_held(Launch& l, std::chrono::milliseconds timeout) {
  bool eof = false;
  VESSEL_ASSIGN_OR_RETURN(std::string line, read_line(l.ready.get(), Clock::now() + timeout, &eof));
  if (line == "held") return ok_status();
  if (starts_with(line, "fail ")) {
    std::string message = read_rest(l.ready.get());
    return Error(ErrorCode::kUnavailable,
                 message.empty() ? "the container failed to start" : message);
  }
  return Error(ErrorCode::kUnavailable, "the monitor exited while booting the VM");
}

Result<StartReport> wait_started(Launch& l) {
  bool eof = false;
  // Booting under emulation takes seconds; the monitor has its own boot
  // timeout, so this one only catches a monitor that hangs.
  VESSEL_ASSIGN_OR_RETURN(std::string line,
                          read_line(l.ready.get(), Clock::now() + std::chrono::minutes(5), &eof));
  StartReport r;
  if (starts_with(line, "ok ")) {
    r.ok = true;
    auto pid = parse_u64(line.substr(3));
    r.pid = pid ? static_cast<uint32_t>(*pid) : 0;
    return r;
  }
  if (starts_with(line, "fail ")) {
    auto code = parse_u64(line.substr(5));
    r.exit_code = code ? static_cast<int>(*code) : 125;
    r.message = read_rest(l.ready.get());
    return r;
  }
  return Error(ErrorCode::kUnavailable, "the monitor exited during the start");
}

StartReport start_report(const protocol::Reply& reply) {
  StartReport r;
  r.ok = reply.errnum == 0;
  r.pid = reply.pid;
  r.message = reply.message;
  if (!r.ok) r.exit_code = reply.errnum == ENOENT ? 127 : reply.errnum == EACCES ? 126 : 125;
  return r;
}

Result<Frame> await_frame(Channel& ch, uint16_t type, uint32_t stream,
                          std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    Frame f;
    while (ch.next(f))
      if (f.header.type == type && f.header.stream == stream) return f;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Error(ErrorCode::kTimeout, "the monitor did not answer in time");
    pollfd p{ch.fd(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) return Error::from_errno(errno, "poll");
    if (r > 0) VESSEL_TRY(ch.read_available());
  }
}

Status request(Channel& ch, ApiType type, std::span<const uint8_t> payload,
               std::chrono::milliseconds timeout) {
  VESSEL_TRY(ch.send(type_code(type), 0, payload));
  VESSEL_ASSIGN_OR_RETURN(Frame f, await_frame(ch, type_code(ApiType::kResult), 0, timeout));
  protocol::Reply reply;
  if (!protocol::decode(f.payload, reply))
    return Error(ErrorCode::kProtocol, "malformed reply from the monitor");
  if (reply.errnum != 0)
    return Error(reply.errnum == ESRCH    ? ErrorCode::kFailedPrecondition
                 : reply.errnum == EINVAL ? ErrorCode::kInvalidArgument
                                          : ErrorCode::kInternal,
                 reply.message);
  return ok_status();
}

Result<std::optional<protocol::Exit>> take_stream_frames(
    Channel& ch, uint32_t stream, uint32_t& in_flight,
    const std::function<Status(int, const std::vector<uint8_t>&)>& out) {
  Frame f;
  while (ch.next(f)) {
    if (f.header.stream != stream) continue;
    auto type = static_cast<MsgType>(f.header.type);
    if (type == MsgType::kStdout) {
      VESSEL_TRY(out(1, f.payload));
    } else if (type == MsgType::kStderr) {
      VESSEL_TRY(out(2, f.payload));
    } else if (type == MsgType::kStdinAck) {
      protocol::Ack ack;
      if (!protocol::decode(f.payload, ack) || ack.bytes > in_flight)
        return Error(ErrorCode::kProtocol, "bad stdin acknowledgement");
      in_flight -= ack.bytes;
    } else if (type == MsgType::kExit) {
      protocol::Exit e;
      if (!protocol::decode(f.payload, e))
        return Error(ErrorCode::kProtocol, "malformed exit message");
      return std::optional<protocol::Exit>(e);
    }
  }
  return std::optional<protocol::Exit>();
}

Result<protocol::Exit> pump(Channel& ch, uint32_t stream, const SessionOptions& o,
                            sys::SignalGuard& signals) {
  bool stdin_open = o.forward_stdin;
  bool stdin_eof_sent = !o.forward_stdin;
  uint32_t in_flight = 0;
  bool out_broken = false, err_broken = false;
  if (o.forward_stdin) ::fcntl(STDIN_FILENO, F_SETFL, ::fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
  auto write_out = [&](int fd, const std::vector<uint8_t>& data) {
    bool& broken = fd == STDOUT_FILENO ? out_broken : err_broken;
    // A reader that went away (EPIPE) stops that stream, not the session.
    if (!broken && !sys::write_all(fd, data.data(), data.size()).ok()) broken = true;
  };
  auto to_fd = [&](int which, const std::vector<uint8_t>& data) {
    write_out(which == 1 ? STDOUT_FILENO : STDERR_FILENO, data);
    return ok_status();
  };
  while (true) {
    VESSEL_ASSIGN_OR_RETURN(auto exit, take_stream_frames(ch, stream, in_flight, to_fd));
    if (exit) return *exit;
    bool want_stdin = stdin_open && in_flight < protocol::kStdinWindow;
    pollfd p[3] = {{ch.fd(), POLLIN, 0},
                   {signals.fd(), POLLIN, 0},
                   {want_stdin ? STDIN_FILENO : -1, POLLIN, 0}};
    if (::poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno(errno, "poll");
    }
    if (p[0].revents) {
      if (auto s = ch.read_available(); !s.ok()) {
        if (s.error().code() == ErrorCode::kUnavailable)
          return Error(ErrorCode::kUnavailable, "the container's monitor went away");
        return s.error();
      }
    }
    if (p[1].revents) {
      while (int sig = signals.take()) {
        if (sig == SIGWINCH) {
          if (!o.tty) continue;
          auto ws = sys::window_size(STDIN_FILENO);
          if (!ws) ws = sys::window_size(STDOUT_FILENO);
          if (ws)
            VESSEL_TRY(ch.send_message(type_code(MsgType::kResize), stream,
                                       protocol::Resize{ws->rows, ws->cols}));
          continue;
        }
        if (!o.proxy_signals) continue;
        log::debug(std::string("forwarding ") + strsignal(sig));
        VESSEL_TRY(ch.send_message(type_code(MsgType::kSignal), stream, protocol::Signal{sig}));
      }
    }
    if (p[2].revents) {
      uint8_t buf[protocol::kMaxDataChunk];
      size_t room = std::min<size_t>(sizeof buf, protocol::kStdinWindow - in_flight);
      ssize_t n = ::read(STDIN_FILENO, buf, room);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        stdin_open = false;  // EOF (or an error, which ends input the same way)
      } else {
        in_flight += static_cast<uint32_t>(n);
        VESSEL_TRY(ch.send(type_code(MsgType::kStdin), stream,
                           std::span<const uint8_t>(buf, static_cast<size_t>(n))));
      }
    }
    if (!stdin_open && !stdin_eof_sent) {
      VESSEL_TRY(ch.send(type_code(MsgType::kStdin), stream));
      stdin_eof_sent = true;
    }
  }
}

}  // namespace vessel::monitor
