#include "runtime/run.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "agent/agent_connection.h"
#include "base/log.h"
#include "base/strings.h"
#include "runtime/paths.h"
#include "sys/fs.h"
#include "sys/process.h"
#include "sys/terminal.h"
#include "vmm/qemu_vmm.h"

namespace vessel::runtime {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using protocol::MsgType;

constexpr uint32_t kMainStream = 1;
constexpr const char* kRootfsTag = "rootfs";
constexpr const char* kLowerSerial = "vessel-lower";
constexpr const char* kUpperSerial = "vessel-upper";

// A sparse file with an empty ext4 on it: the container's writable layer.
// mkfs with lazy inode tables and journal touches a few MiB (about 15 ms).
Status make_writable_disk(const std::string& path, uint64_t bytes) {
  std::string mkfs;
  for (const char* candidate : {"mkfs.ext4", "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"}) {
    if (auto p = sys::find_program(candidate)) {
      mkfs = *p;
      break;
    }
  }
  if (mkfs.empty())
    return Error(ErrorCode::kUnavailable, "mkfs.ext4 not found (install e2fsprogs)");
  {
    VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_fd(path, O_WRONLY | O_CREAT | O_EXCL, 0600));
    if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0)
      return Error::from_errno(errno, "size writable layer '" + path + "'");
  }
  VESSEL_ASSIGN_OR_RETURN(
      sys::Process p,
      sys::Process::spawn({.argv = {mkfs, "-q", "-F", "-L", "vessel-upper", "-E",
                                    "lazy_itable_init=1,lazy_journal_init=1", path}}));
  VESSEL_ASSIGN_OR_RETURN(sys::ExitStatus st, p.wait());
  if (st.code != 0 || st.signal != 0)
    return Error(ErrorCode::kInternal, "mkfs.ext4 '" + path + "' " + st.to_string());
  return ok_status();
}

Result<std::string> random_id() {
  unsigned char bytes[32];
  if (::getrandom(bytes, sizeof bytes, 0) != sizeof bytes)
    return Error::from_errno(errno, "getrandom");
  static const char* const kHex = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  return id;
}

bool has_env(const std::vector<std::string>& env, std::string_view key) {
  return std::any_of(env.begin(), env.end(), [&](const std::string& e) {
    return e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=';
  });
}

// The host's resolver configuration minus loopback nameservers, which mean
// nothing inside the VM (Docker filters them the same way).
std::string guest_resolv_conf() {
  auto content = sys::read_file("/etc/resolv.conf", 64 << 10);
  if (!content.ok()) return "";
  std::string out;
  for (const auto& line : split(*content, '\n')) {
    std::string_view t = trim(line);
    if (starts_with(t, "nameserver") &&
        (t.find(" 127.") != std::string_view::npos || t.find(" ::1") != std::string_view::npos))
      continue;
    if (!t.empty()) out += std::string(t) + "\n";
  }
  return out;
}

std::string guest_hosts(const std::string& hostname) {
  return "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname +
         "\n";
}

// Blocks the signals `vessel run` forwards and reads them from a signalfd;
// restores the old mask on destruction.
class SignalGuard {
 public:
  static Result<SignalGuard> install() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH})
      sigaddset(&set, s);
    SignalGuard g;
    if (::sigprocmask(SIG_BLOCK, &set, &g.old_) != 0)
      return Error::from_errno(errno, "sigprocmask");
    g.active_ = true;
    // A closed stdout or a dead peer must show up as EPIPE, not kill us: a
    // blocked SIGPIPE would stay pending and fire when the mask is restored.
    ::signal(SIGPIPE, SIG_IGN);
    g.fd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!g.fd_) return Error::from_errno(errno, "signalfd");
    return g;
  }
  SignalGuard(SignalGuard&& o) noexcept
      : fd_(std::move(o.fd_)), old_(o.old_), active_(std::exchange(o.active_, false)) {}
  ~SignalGuard() {
    if (active_) ::sigprocmask(SIG_SETMASK, &old_, nullptr);
  }
  int fd() const { return fd_.get(); }
  /// The next pending signal, or 0.
  int take() {
    signalfd_siginfo si;
    if (::read(fd_.get(), &si, sizeof si) != sizeof si) return 0;
    return static_cast<int>(si.ssi_signo);
  }

 private:
  SignalGuard() = default;
  UniqueFd fd_;
  sigset_t old_{};
  bool active_ = false;
};

// Removes a directory tree when it goes out of scope.
class TreeRemover {
 public:
  explicit TreeRemover(std::string path) : path_(std::move(path)) {}
  ~TreeRemover() {
    if (auto s = sys::remove_tree(path_); !s.ok()) log::warn(s.error().to_string());
  }

 private:
  std::string path_;
};

// Each run holds an exclusive flock on <runtime dir>/lock while it lives.
// A directory whose lock can be taken belongs to a run that was killed (its
// QEMU and virtiofsd died with it, through PR_SET_PDEATHSIG): remove it.
void remove_stale_runs(const std::string& dir) {
  auto names = sys::list_dir(dir);
  if (!names.ok()) return;
  for (const auto& name : *names) {
    std::string path = dir + "/" + name;
    if (name[0] == '.') {
      // Not yet renamed into place: its creator may be between mkdir and
      // taking the lock. Only an old one is abandoned.
      struct stat st;
      if (::stat(path.c_str(), &st) != 0 || ::time(nullptr) - st.st_mtime < 60) continue;
    } else {
      // A free lock, or none (a run killed before making it): stale.
      auto lock = sys::FileLock::try_acquire(path + "/lock");
      if (lock.ok() && !lock->has_value()) continue;
    }
    log::debug("removing runtime files of a dead run: " + path);
    if (auto s = sys::remove_tree(path); !s.ok()) log::warn(s.error().to_string());
  }
}

Error with_boot_log(Error e, vmm::VmInstance& vm) {
  std::string tail = vm.boot_log_tail(2048);
  if (tail.empty()) return e;
  return Error(e.code(), e.to_string() + "\n--- boot log (tail) ---\n" + tail);
}

// One interactive session with the main process: pumps stdio and signals
// between the caller and the guest until the process exits.
class Session {
 public:
  Session(const RunSpec& spec, agent::AgentConnection& agent, vmm::VmInstance& vm,
          SignalGuard& signals)
      : spec_(spec), agent_(agent), vm_(vm), signals_(signals) {}

  /// Waits for one frame during startup; a forwarded signal aborts startup.
  Result<agent::Frame> await(Clock::time_point deadline) {
    agent::Frame f;
    while (!agent_.next(f)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return Error(ErrorCode::kTimeout, "timed out waiting for the guest");
      pollfd p[3] = {
          {agent_.fd(), POLLIN, 0}, {vm_.exit_fd(), POLLIN, 0}, {signals_.fd(), POLLIN, 0}};
      if (::poll(p, 3, static_cast<int>(left.count())) < 0 && errno != EINTR)
        return Error::from_errno(errno, "poll");
      if (p[1].revents) return Error(ErrorCode::kUnavailable, "the VM stopped");
      if (p[2].revents) {
        int sig = signals_.take();
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT) {
          interrupted_ = sig;
          return Error(ErrorCode::kUnavailable, std::string("interrupted by ") + strsignal(sig));
        }
      }
      if (p[0].revents) VESSEL_TRY(agent_.read_available());
    }
    return f;
  }

  int interrupted() const { return interrupted_; }

  /// Runs until the main process exits; returns its Exit message.
  Result<protocol::Exit> pump() {
    bool stdin_open = spec_.interactive;
    bool stdin_eof_sent = !spec_.interactive;
    if (spec_.interactive)
      ::fcntl(STDIN_FILENO, F_SETFL, ::fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
    while (true) {
      agent::Frame f;
      while (agent_.next(f)) {
        auto type = static_cast<MsgType>(f.header.type);
        if (f.header.stream != kMainStream) continue;  // no other processes yet
        switch (type) {
          case MsgType::kStdout:
            write_out(STDOUT_FILENO, f.payload);
            break;
          case MsgType::kStderr:
            write_out(STDERR_FILENO, f.payload);
            break;
          case MsgType::kStdinAck: {
            VESSEL_ASSIGN_OR_RETURN(auto ack, agent::decode_as<protocol::Ack>(f));
            if (ack.bytes > in_flight_)
              return Error(ErrorCode::kProtocol, "guest acknowledged more stdin than was sent");
            in_flight_ -= ack.bytes;
            break;
          }
          case MsgType::kExit:
            return agent::decode_as<protocol::Exit>(f);
          default:
            return Error(ErrorCode::kProtocol, std::string("unexpected '") +
                                                   protocol::type_name(f.header.type) + "' frame");
        }
      }
      bool want_stdin = stdin_open && in_flight_ < protocol::kStdinWindow;
      pollfd p[4] = {{agent_.fd(), POLLIN, 0},
                     {vm_.exit_fd(), POLLIN, 0},
                     {signals_.fd(), POLLIN, 0},
                     {want_stdin ? STDIN_FILENO : -1, POLLIN, 0}};
      if (::poll(p, 4, -1) < 0) {
        if (errno == EINTR) continue;
        return Error::from_errno(errno, "poll");
      }
      if (p[0].revents) VESSEL_TRY(agent_.read_available());
      if (p[1].revents && !p[0].revents)
        return Error(ErrorCode::kUnavailable, "the VM stopped before the process exited");
      if (p[2].revents) VESSEL_TRY(forward_signal());
      if (p[3].revents) {
        uint8_t buf[protocol::kMaxDataChunk];
        size_t room = std::min<size_t>(sizeof buf, protocol::kStdinWindow - in_flight_);
        ssize_t n = ::read(STDIN_FILENO, buf, room);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) {
          stdin_open = false;  // EOF (or an error, which ends input the same way)
        } else {
          in_flight_ += static_cast<uint32_t>(n);
          VESSEL_TRY(agent_.send(MsgType::kStdin, kMainStream,
                                 std::span<const uint8_t>(buf, static_cast<size_t>(n))));
        }
      }
      if (!stdin_open && !stdin_eof_sent) {
        VESSEL_TRY(agent_.send(MsgType::kStdin, kMainStream));  // empty = EOF
        stdin_eof_sent = true;
      }
    }
  }

 private:
  Status forward_signal() {
    while (int sig = signals_.take()) {
      if (sig == SIGWINCH) {
        if (!spec_.tty) continue;
        auto ws = sys::window_size(STDIN_FILENO);
        if (!ws) ws = sys::window_size(STDOUT_FILENO);
        if (ws)
          VESSEL_TRY(agent_.send_message(MsgType::kResize, kMainStream,
                                         protocol::Resize{ws->rows, ws->cols}));
        continue;
      }
      log::debug(std::string("forwarding ") + strsignal(sig));
      VESSEL_TRY(agent_.send_message(MsgType::kSignal, kMainStream, protocol::Signal{sig}));
    }
    return ok_status();
  }

  void write_out(int fd, const std::vector<uint8_t>& data) {
    if (fd == STDOUT_FILENO && stdout_broken_) return;
    if (fd == STDERR_FILENO && stderr_broken_) return;
    // A reader that went away (EPIPE) stops that stream, not the session.
    if (!sys::write_all(fd, data.data(), data.size()).ok())
      (fd == STDOUT_FILENO ? stdout_broken_ : stderr_broken_) = true;
  }

  const RunSpec& spec_;
  agent::AgentConnection& agent_;
  vmm::VmInstance& vm_;
  SignalGuard& signals_;
  uint32_t in_flight_ = 0;
  int interrupted_ = 0;
  bool stdout_broken_ = false, stderr_broken_ = false;
};

}  // namespace

Status prepare_spec(RunSpec& spec, const std::string& id) {
  if (spec.argv.empty() || spec.argv[0].empty())
    return Error(ErrorCode::kInvalidArgument, "no command given");
  if (spec.workdir.empty() || spec.workdir[0] != '/')
    return Error(ErrorCode::kInvalidArgument,
                 "working directory '" + spec.workdir + "' is not an absolute path");
  if (spec.cpus < 1 || spec.cpus > 255)
    return Error(ErrorCode::kInvalidArgument,
                 "invalid cpus " + std::to_string(spec.cpus) + " (expected 1 to 255)");
  if (spec.memory_bytes < (64ull << 20))
    return Error(ErrorCode::kInvalidArgument, "memory must be at least 64 MiB");
  if (spec.hostname.empty()) spec.hostname = id.substr(0, 12);
  if (spec.hostname.size() > 64)
    return Error(ErrorCode::kInvalidArgument, "hostname '" + spec.hostname + "' is too long");
  for (const auto& e : spec.env)
    if (e.empty() || e[0] == '=' || e.find('=') == std::string::npos)
      return Error(ErrorCode::kInvalidArgument, "invalid environment variable '" + e + "'");
  std::vector<std::string> env;
  if (!has_env(spec.env, "PATH")) env.push_back(std::string("PATH=") + kDefaultPath);
  env.push_back("HOSTNAME=" + spec.hostname);
  if (spec.tty && !has_env(spec.env, "TERM")) env.push_back("TERM=xterm");
  // With a user name the guest sets HOME from the container's passwd.
  if (!has_env(spec.env, "HOME") && spec.user.empty())
    env.push_back(spec.uid == 0 ? "HOME=/root" : "HOME=/");
  env.insert(env.end(), spec.env.begin(), spec.env.end());
  spec.env = std::move(env);
  return ok_status();
}

Result<RunOutcome> run_container(RunSpec spec,
                                 void (*on_accel)(const vmm::AccelChoice&, const RunSpec&)) {
  auto t0 = Clock::now();
  // Phase timings for --debug: where a start spends its time.
  auto phase = [&](const char* what) {
    if (log::level() > log::Level::kDebug) return;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    log::debug("+" + std::to_string(ms) + " ms: " + what);
  };
  VESSEL_ASSIGN_OR_RETURN(std::string id, random_id());
  VESSEL_TRY(prepare_spec(spec, id));
  bool image_root = !spec.root_image.empty();
  if (image_root == !spec.rootfs.empty())
    return Error(ErrorCode::kInvalidArgument, "give either a root directory or a root image");
  const std::string& root_path = image_root ? spec.root_image : spec.rootfs;
  const std::string root_what = image_root ? "root image '" : "rootfs '";
  struct stat st;
  if (::stat(root_path.c_str(), &st) != 0)
    return Error::from_errno(errno, root_what + root_path + "'");
  if (image_root ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode))
    return Error(ErrorCode::kInvalidArgument,
                 root_what + root_path + (image_root ? "' is not a file" : "' is not a directory"));
  char real[PATH_MAX];
  if (!::realpath(root_path.c_str(), real))
    return Error::from_errno(errno, root_what + root_path + "'");

  VESSEL_ASSIGN_OR_RETURN(GuestAssets assets, find_guest_assets(spec.kernel));
  RunOutcome outcome;
  vmm::HostFacts facts = vmm::read_host_facts();
  VESSEL_ASSIGN_OR_RETURN(outcome.accel, vmm::resolve_accel(spec.accel, facts));
  if (on_accel) on_accel(outcome.accel, spec);

  VESSEL_TRY(sys::make_dirs(run_dir(spec.root), 0700));
  remove_stale_runs(run_dir(spec.root));
  // The lock is taken in a private temporary name, then the directory is
  // renamed into place, so no other run can see it unlocked.
  std::string rdir = run_dir(spec.root) + "/" + id.substr(0, 12);
  std::string tmp_rdir = run_dir(spec.root) + "/." + id.substr(0, 12);
  if (::mkdir(tmp_rdir.c_str(), 0700) != 0)
    return Error::from_errno(errno, "mkdir '" + tmp_rdir + "'");
  auto lock = sys::FileLock::acquire(tmp_rdir + "/lock");
  if (!lock.ok() || ::rename(tmp_rdir.c_str(), rdir.c_str()) != 0) {
    (void)sys::remove_tree(tmp_rdir);
    return Error::from_errno(errno, "create runtime directory '" + rdir + "'");
  }
  TreeRemover remove_rdir(rdir);  // declared before the VM: removed after it stops

  VESSEL_ASSIGN_OR_RETURN(SignalGuard signals, SignalGuard::install());

  vmm::VmConfig cfg;
  cfg.kernel = assets.kernel;
  cfg.initrd = assets.initrd;
  cfg.cpus = spec.cpus;
  cfg.memory_bytes = spec.memory_bytes;
  cfg.accel = outcome.accel.accel;
  cfg.host_tsc_khz = vmm::cpu_khz(facts.cpuinfo);  // already read: QEMU need not read it again
  protocol::Setup setup{spec.hostname, "", guest_hosts(spec.hostname), guest_resolv_conf(),
                        static_cast<uint8_t>(spec.read_only)};
  if (image_root) {
    cfg.disks.push_back({real, kLowerSerial, true});
    setup.lower_serial = kLowerSerial;
    if (!spec.read_only) {
      std::string upper = rdir + "/upper.img";
      VESSEL_TRY(make_writable_disk(upper, spec.writable_bytes));
      cfg.disks.push_back({upper, kUpperSerial, false});
      setup.upper_serial = kUpperSerial;
    }
  } else {
    cfg.shared_dirs = {{kRootfsTag, real}};
    setup.rootfs_tag = kRootfsTag;
  }
  cfg.serial_ports = {std::string(protocol::kPortName)};
  cfg.runtime_dir = rdir;
  cfg.debug = spec.debug;
  vmm::QemuVmm qemu;
  phase("starting QEMU");
  VESSEL_ASSIGN_OR_RETURN(std::unique_ptr<vmm::VmInstance> vm, qemu.start(cfg));

  int port = vm->port_fd(protocol::kPortName);
  ::fcntl(port, F_SETFL, ::fcntl(port, F_GETFL) | O_NONBLOCK);
  agent::AgentConnection agent(port);
  Session session(spec, agent, *vm, signals);

  auto fail = [&](Error e, const std::string& what) -> Result<RunOutcome> {
    if (session.interrupted()) {
      outcome.exit_code = 128 + session.interrupted();
      return outcome;
    }
    // A guest that hangs up usually means QEMU is exiting: give it a moment
    // and say so, the boot log then tells why.
    if (e.code() == ErrorCode::kUnavailable) {
      pollfd p{vm->exit_fd(), POLLIN, 0};
      if (::poll(&p, 1, 1000) == 1)
        e = Error(ErrorCode::kUnavailable, "the VM stopped unexpectedly");
    }
    return with_boot_log(std::move(e).wrap(what), *vm);
  };

  // Boot: the guest says hello once vessel-init serves the port.
  auto boot_deadline = Clock::now() + std::chrono::seconds(spec.boot_timeout_seconds);
  auto hello_frame = session.await(boot_deadline);
  if (!hello_frame.ok()) return fail(hello_frame.error(), "boot VM");
  if (hello_frame->header.type != static_cast<uint16_t>(MsgType::kHello))
    return fail(Error(ErrorCode::kProtocol, "guest did not start with hello"), "boot VM");
  auto hello = agent::decode_as<protocol::Hello>(*hello_frame);
  if (!hello.ok()) return fail(hello.error(), "boot VM");
  if (hello->version != protocol::kVersion)
    return fail(Error(ErrorCode::kProtocol, "guest speaks protocol version " +
                                                std::to_string(hello->version) + ", host " +
                                                std::to_string(protocol::kVersion)),
                "boot VM");
  phase("guest ready");
  log::debug("guest: " + hello->guest);

  auto step_deadline = [] { return Clock::now() + 30s; };
  if (auto s = agent.send_message(MsgType::kSetup, 0, setup); !s.ok())
    return fail(s.error(), "set up container");
  auto setup_reply = session.await(step_deadline());
  if (!setup_reply.ok()) return fail(setup_reply.error(), "set up container");
  auto setup_result = agent::decode_as<protocol::Reply>(*setup_reply);
  if (!setup_result.ok() ||
      setup_reply->header.type != static_cast<uint16_t>(MsgType::kSetupResult))
    return fail(Error(ErrorCode::kProtocol, "unexpected reply to setup"), "set up container");
  if (setup_result->errnum != 0)
    return fail(Error(ErrorCode::kInternal, setup_result->message, setup_result->errnum),
                "set up container");

  phase("container set up");
  protocol::Spawn spawn;
  spawn.argv = spec.argv;
  spawn.env = spec.env;
  spawn.cwd = spec.workdir;
  spawn.uid = spec.uid;
  spawn.gid = spec.gid;
  spawn.groups = spec.groups;
  spawn.user = spec.user;
  spawn.tty = spec.tty;
  spawn.stdin_open = spec.interactive;
  std::optional<sys::RawTerminal> raw;
  if (spec.tty) {
    auto ws = sys::window_size(STDIN_FILENO);
    if (!ws) ws = sys::window_size(STDOUT_FILENO);
    if (ws) {
      spawn.rows = ws->rows;
      spawn.cols = ws->cols;
    }
    if (spec.interactive && ::isatty(STDIN_FILENO)) {
      auto r = sys::RawTerminal::enter(STDIN_FILENO);
      if (r.ok()) raw.emplace(std::move(*r));
    }
  }
  if (auto s = agent.send_message(MsgType::kSpawn, kMainStream, spawn); !s.ok())
    return fail(s.error(), "start process");
  auto spawn_reply = session.await(step_deadline());
  if (!spawn_reply.ok()) return fail(spawn_reply.error(), "start process");
  auto spawn_result = agent::decode_as<protocol::Reply>(*spawn_reply);
  if (!spawn_result.ok() ||
      spawn_reply->header.type != static_cast<uint16_t>(MsgType::kSpawnResult))
    return fail(Error(ErrorCode::kProtocol, "unexpected reply to spawn"), "start process");

  if (int e = spawn_result->errnum; e != 0) {
    // Docker's convention: 127 when the command is not found, 126 when it
    // cannot be executed; anything else means the container could not start.
    // The guest's message says what failed (a user not found, a chdir);
    // the boot log would add nothing.
    if (e != ENOENT && e != EACCES && e != ENOEXEC)
      return Error(ErrorCode::kInvalidArgument, spawn_result->message).wrap("start process");
    outcome.exit_code = e == ENOENT ? 127 : 126;
    outcome.exec_error = Error(e == ENOENT ? ErrorCode::kNotFound : ErrorCode::kPermissionDenied,
                               spawn_result->message, e);
  } else {
    phase("process started");
    auto exit = session.pump();
    raw.reset();
    if (!exit.ok()) return fail(exit.error(), "run '" + spec.argv[0] + "'");
    outcome.exit_code = exit->signal ? 128 + exit->signal : exit->code;
  }

  // Power off: the guest syncs and reboots, which ends QEMU (-no-reboot).
  phase("process exited");
  (void)agent.send(MsgType::kPoweroff, 0);
  (void)vm->stop(10s);
  phase("VM stopped");
  return outcome;
}

}  // namespace vessel::runtime
