#include "oci/runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "base/strings.h"
#include "monitor/client.h"
#include "net/netns_link.h"
#include "oci/spec.h"
#include "runtime/container_vm.h"
#include "runtime/log_file.h"
#include "runtime/paths.h"
#include "runtime/runtime_dir.h"
#include "sys/fs.h"
#include "sys/signals.h"
#include "sys/terminal.h"
#include "sys/unix_socket.h"

namespace vessel::oci {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using Frame = protocol::FrameReader::Frame;
using protocol::MsgType;
using state::RunState;

constexpr uint32_t kExecStream = 2;

std::string vessel_root(const std::string& root) {
  // A name no OCI id can have (ids start with a letter or digit).
  return root + "/.vessel";
}

Error not_found(const std::string& id) {
  return Error(ErrorCode::kNotFound, "container '" + id + "' does not exist");
}

// A pty pair for a container with a terminal: the master goes to the caller
// over --console-socket (SCM_RIGHTS, as runc sends it), the slave is the
// relay's stdio, raw, so that the pair is a transparent pipe and the
// guest's pty does the line discipline.
struct Pty {
  UniqueFd master, slave;
};

Result<Pty> open_pty() {
  Pty p;
  p.master = UniqueFd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!p.master) return Error::from_errno(errno, "open a pseudo-terminal");
  if (::grantpt(p.master.get()) != 0 || ::unlockpt(p.master.get()) != 0)
    return Error::from_errno(errno, "unlock the pseudo-terminal");
  char name[64];
  if (::ptsname_r(p.master.get(), name, sizeof name) != 0)
    return Error::from_errno(errno, "ptsname");
  VESSEL_ASSIGN_OR_RETURN(p.slave, sys::open_fd(name, O_RDWR | O_NOCTTY));
  termios t;
  if (::tcgetattr(p.slave.get(), &t) == 0) {
    ::cfmakeraw(&t);
    ::tcsetattr(p.slave.get(), TCSANOW, &t);
  }
  return p;
}

Status send_console(const std::string& socket_path, int master) {
  VESSEL_ASSIGN_OR_RETURN(UniqueFd s, sys::connect_unix(socket_path));
  if (auto sent = sys::send_with_fd(s.get(), "/dev/ptmx", master); !sent.ok())
    return sent.error().wrap("send the console to '" + socket_path + "'");
  return ok_status();
}

// Reads the relay's one-line report: "ok", or "fail <code>\n<message>".
Status read_report(int fd, int* code) {
  std::string text;
  char buf[4096];
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Error(ErrorCode::kTimeout, "the relay did not report in time");
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) return Error::from_errno(errno, "poll");
    if (r <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text == "ok\n") return ok_status();
  }
  if (text == "ok\n") return ok_status();
  if (starts_with(text, "fail ")) {
    auto nl = text.find('\n');
    auto c = parse_u64(text.substr(5, nl == std::string::npos ? std::string::npos : nl - 5));
    *code = c ? static_cast<int>(*c) : 1;
    return Error(ErrorCode::kFailedPrecondition,
                 nl == std::string::npos ? "failed" : text.substr(nl + 1));
  }
  return Error(ErrorCode::kUnavailable, "the relay exited before it was ready");
}

// SIGKILL cannot be caught, and callers send it to the pid they know (the
// runc shim kills an exec'd process with kill(2)): a relay killed that way
// would leave its process running in the VM. So each relay forks a
// guardian that holds the relay's monitor connection and a pipe from it;
// when the pipe closes without the relay's "normal end" byte, the relay
// was killed and the guardian sends SIGKILL to the process on the same
// connection and stream. Returns the pipe's write end, or -1.
int start_guardian(int channel_fd, uint32_t stream) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  pid_t g = ::fork();
  if (g < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return -1;
  }
  if (g > 0) {
    ::close(fds[0]);
    return fds[1];
  }
  ::close(fds[1]);
  // Not the caller's stdio: its readers wait for every writer to go.
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int fd = 0; fd < 3; ++fd)
    ::dup2(null, fd);
  ::signal(SIGPIPE, SIG_IGN);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH})
    ::signal(s, SIG_IGN);
  char c;
  ssize_t n;
  while ((n = ::read(fds[0], &c, 1)) < 0 && errno == EINTR) {
  }
  if (n == 1) ::_exit(0);
  monitor::Channel ch{UniqueFd(channel_fd)};
  (void)ch.send_message(monitor::type_code(MsgType::kSignal), stream, protocol::Signal{SIGKILL});
  ::_exit(0);
}

// The relay (see runtime.h), in the forked child: never returns. `spawn`
// set: an exec'd process on kExecStream; else the main process, attached.
[[noreturn]] void relay(const std::string& socket_path, int report_fd, int tty_fd,
                        const std::optional<protocol::Spawn>& spawn) {
  auto report = [&](const std::string& line) {
    (void)sys::write_all(report_fd, line.data(), line.size());
  };
  auto fail = [&](int code, const std::string& message) {
    report("fail " + std::to_string(code) + "\n" + message);
    ::_exit(code);
  };
  ::setsid();
  if (tty_fd >= 0) {
    // The pty is our controlling terminal: the caller's resizes of the
    // master reach us as SIGWINCH, and pump() forwards them.
    ::ioctl(tty_fd, TIOCSCTTY, 0);
    for (int fd = 0; fd < 3; ++fd)
      ::dup2(tty_fd, fd);
    if (tty_fd > 2) ::close(tty_fd);
  }
  ::signal(SIGPIPE, SIG_IGN);
  auto signals =
      sys::SignalGuard::install({SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH});
  if (!signals.ok()) fail(1, signals.error().to_string());
  auto fd = sys::connect_unix(socket_path);
  if (!fd.ok()) fail(1, "container not running");
  monitor::Channel ch(std::move(*fd));
  bool tty = tty_fd >= 0;
  uint32_t stream = monitor::kMainStream;
  if (spawn) {
    stream = kExecStream;
    protocol::Spawn s = *spawn;
    if (auto st = ch.send_message(monitor::type_code(MsgType::kSpawn), stream, s); !st.ok())
      fail(1, st.error().to_string());
    auto fr = monitor::await_frame(ch, monitor::type_code(MsgType::kSpawnResult), stream, 60s);
    protocol::Reply reply;
    if (!fr.ok()) fail(1, fr.error().to_string());
    if (!protocol::decode(fr->payload, reply)) fail(1, "malformed reply from the monitor");
    if (reply.errnum != 0) {
      int code = runtime::exec_failure_code(reply.errnum);
      fail(code ? code : 1, "exec failed: " + reply.message);
    }
    report("ok\n");
  } else {
    monitor::Attach a;
    a.stdin = 1;
    a.output = 1;
    if (auto st = ch.send(monitor::type_code(monitor::ApiType::kAttach), stream, encode(a));
        !st.ok())
      fail(1, st.error().to_string());
    report("ok\n");
    ::close(report_fd);
    // Input before the process runs would be dropped (an early EOF
    // among it): wait until it started (or could not).
    auto started = monitor::await_frame(ch, monitor::type_code(monitor::ApiType::kStarted), stream,
                                        std::chrono::hours(24 * 365));
    if (!started.ok()) ::_exit(255);
    if (tty)
      if (auto ws = sys::window_size(STDIN_FILENO); ws && ws->rows && ws->cols)
        (void)ch.send_message(monitor::type_code(MsgType::kResize), stream,
                              protocol::Resize{ws->rows, ws->cols});
  }
  ::close(report_fd);
  int guard = start_guardian(ch.fd(), stream);
  auto exit = monitor::pump(ch, stream, {tty, true, true}, *signals);
  // Tell the guardian this is a normal end (it leaves the process alone).
  if (guard >= 0) (void)sys::write_all(guard, "x", 1);
  if (!exit.ok()) ::_exit(255);
  ::_exit(exit->signal ? 128 + exit->signal : exit->code);
}

// Forks a relay; returns its pid once it reports, or its failure (with
// `*code` the exit status it had).
Result<pid_t> start_relay(const std::string& socket_path, int tty_fd,
                          const std::optional<protocol::Spawn>& spawn, int* code) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::from_errno(errno, "pipe");
  UniqueFd r(fds[0]), w(fds[1]);
  pid_t child = ::fork();
  if (child < 0) return Error::from_errno(errno, "fork");
  if (child == 0) {
    r.reset();
    relay(socket_path, w.get(), tty_fd, spawn);
  }
  w.reset();
  if (auto s = read_report(r.get(), code); !s.ok()) {
    int status;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    return s.error();
  }
  return child;
}

std::string rfc3339(int64_t ns) {
  return runtime::format_timestamp(ns);
}

}  // namespace

std::string to_json(const State& s) {
  Json j = {{"ociVersion", kOciVersion},
            {"id", s.id},
            {"status", s.status},
            {"pid", s.pid},
            {"bundle", s.bundle},
            {"created", s.created},
            {"owner", ""},
            {"rootfs", s.rootfs}};
  j["annotations"] = Json::object();
  for (const auto& [k, v] : s.annotations)
    j["annotations"][k] = v;
  return j.dump(2);
}

std::string features_json() {
  Json caps = Json::array();
  for (uint32_t c = 0; c <= protocol::kCapLast; ++c)
    caps.push_back(protocol::capability_name(c));
  Json j = {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", kOciVersion},
      {"hooks", Json::array()},
      {"mountOptions",
       {"bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "rprivate", "private"}},
      {"linux",
       {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "uts"}},
        {"capabilities", caps},
        {"cgroup", {{"v1", false}, {"v2", true}, {"systemd", false}}},
        {"seccomp", {{"enabled", false}}},
        {"apparmor", {{"enabled", false}}},
        {"selinux", {{"enabled", false}}}}},
      {"annotations", {{"io.vessel.vm", "one VM per container, or per pod (QEMU microvm)"}}},
  };
  return j.dump(2);
}

Result<std::unique_ptr<Runtime>> Runtime::open(const std::string& root) {
  if (root.empty() || root[0] != '/')
    return Error(ErrorCode::kInvalidArgument, "--root '" + root + "' is not an absolute path");
  VESSEL_TRY(sys::make_dirs(root, 0700));
  VESSEL_ASSIGN_OR_RETURN(auto cs, containers::Containers::open(vessel_root(root)));
  return std::unique_ptr<Runtime>(new Runtime(root, std::move(cs)));
}

Result<State> Runtime::load(const std::string& id) {
  VESSEL_TRY(containers::validate_name(id));
  auto text = sys::read_file(dir(id) + "/state.json", 1 << 20);
  if (!text.ok()) {
    if (text.error().errnum() == ENOENT) return not_found(id);
    return text.error();
  }
  Json j = Json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error(ErrorCode::kInternal, "state of container '" + id + "' is damaged");
  State s;
  s.id = id;
  s.bundle = j.value("bundle", "");
  s.rootfs = j.value("rootfs", "");
  s.pid = j.value("pid", 0);
  s.created = j.value("created", "");
  s.vessel_id = j.value("vessel_id", "");
  s.paused = j.value("paused", false);
  s.pod_dir = j.value("pod_dir", "");
  s.sandbox = j.value("sandbox", false);
  if (j.contains("annotations") && j["annotations"].is_object())
    for (auto it = j["annotations"].begin(); it != j["annotations"].end(); ++it)
      if (it.value().is_string()) s.annotations[it.key()] = it.value().get<std::string>();
  return s;
}

Status Runtime::save(const State& s) {
  Json j = {{"bundle", s.bundle},   {"rootfs", s.rootfs},       {"pid", s.pid},
            {"created", s.created}, {"vessel_id", s.vessel_id}, {"annotations", s.annotations},
            {"paused", s.paused},   {"pod_dir", s.pod_dir},     {"sandbox", s.sandbox}};
  return sys::write_file_atomic(dir(s.id) + "/state.json", j.dump(), 0600);
}

Status Runtime::create(const std::string& id, const CreateOptions& o) {
  VESSEL_TRY(containers::validate_name(id));
  std::string bundle = o.bundle.empty() ? "." : o.bundle;
  if (bundle[0] != '/') {
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) return Error::from_errno(errno, "getcwd");
    bundle = std::string(cwd) + "/" + bundle;
  }
  auto text = sys::read_file(bundle + "/config.json", 8 << 20);
  if (!text.ok()) return text.error().wrap("read the bundle's config.json");
  VESSEL_ASSIGN_OR_RETURN(Spec spec, parse_spec(*text, bundle));
  for (const auto& i : spec.ignored)
    log::debug("ignored: " + i);
  // A CRI pod: its sandbox ("pause") boots the pod's VM, which takes the
  // pod's network; its containers join that VM.
  const PodAnnotations& pod = spec.pod;
  bool member = !pod.sandbox_id.empty();
  if (!spec.netns_path.empty() && !member) {
    // A namespace with only lo is what the VM has anyway. One that CNI
    // configured has one interface: the VM's NIC is joined to it (the
    // monitor does it, net/netns_link.h). Another VM's tap there counts as
    // an interface: a second container cannot take the same namespace.
    auto names = net::netns_interfaces(spec.netns_path);
    if (!names.ok()) return names.error().wrap("linux.namespaces: network");
    if (names->size() > 1)
      return Error(ErrorCode::kInvalidArgument,
                   "linux.namespaces: network namespace '" + spec.netns_path + "' has " +
                       std::to_string(names->size()) +
                       " interfaces besides lo (another container's VM may have joined it); "
                       "only one can be joined to a VM");
    if (names->size() == 1) spec.config.netns_path = spec.netns_path;
  }
  if (spec.process.terminal && o.console_socket.empty())
    return Error(ErrorCode::kInvalidArgument,
                 "process.terminal is true but no --console-socket was given");
  if (::mkdir(dir(id).c_str(), 0700) != 0) {
    if (errno == EEXIST)
      return Error(ErrorCode::kAlreadyExists, "container '" + id + "' already exists");
    return Error::from_errno(errno, "mkdir '" + dir(id) + "'");
  }
  std::optional<containers::ContainerRecord> record;
  State s;
  s.id = id;
  s.bundle = bundle;
  s.annotations = spec.annotations;
  s.sandbox = !member;
  bool pod_dir_made = false;
  auto undo = [&](Error e) -> Status {
    if (record) (void)cs_->remove(*record, true);
    if (member && !s.pod_dir.empty()) (void)runtime::unbind_from_pod(s.pod_dir, id);
    if (pod_dir_made) (void)runtime::remove_pod_dir(s.pod_dir);
    (void)sys::remove_tree(dir(id));
    return e;
  };

  runtime::ContainerConfig& c = spec.config;
  s.rootfs = c.rootfs;
  auto assets = runtime::find_guest_assets(std::nullopt);
  if (!assets.ok()) return undo(assets.error());
  c.kernel = assets->kernel;
  c.initrd = assets->initrd;
  if (const char* a = ::getenv("VESSEL_ACCEL"); a && *a && std::string(a) != "auto") c.accel = a;
  c.open_stdin = true;  // the relay forwards what the caller gives, EOF included
  std::optional<containers::ContainerRecord> sandbox;
  if (!member) {
    // A VM that can be a pod's: its one root share is a pod directory,
    // where each container's root is bound (its own too), so that a
    // container created later (Podman's pod containers name their infra
    // container, a CRI's name their sandbox) can join it. A CRI sandbox
    // runs no process: its mounts serve nothing, and its memory is a
    // ceiling for the containers to come.
    if (pod.sandbox) {
      auto memory = pod_memory(spec.annotations);
      if (!memory.ok()) return undo(memory.error());
      c.memory_bytes = *memory;
      c.no_process = true;
      c.mounts.clear();
    }
    c.pod_role = runtime::kPodSandbox;
    c.pod_dir = id;
    s.pod_dir = dir(id) + "/pod";
    if (auto st = runtime::make_pod_dir(s.pod_dir); !st.ok()) return undo(st.error());
    pod_dir_made = true;
    if (auto st = runtime::bind_into_pod(c, s.pod_dir, cs_->root(), false); !st.ok())
      return undo(st.error().wrap("bind the root into the pod directory"));
    c.rootfs = s.pod_dir;
  } else if (member) {
    auto sandbox_state = load(pod.sandbox_id);
    if (!sandbox_state.ok() || !sandbox_state->sandbox)
      return undo(Error(ErrorCode::kNotFound,
                        "annotations: the pod's sandbox '" + pod.sandbox_id +
                            "' is not a container of this runtime root that can take a pod's "
                            "(create it first)"));
    auto found = cs_->find(sandbox_state->vessel_id);
    if (!found.ok()) return undo(found.error().wrap("the pod's sandbox '" + pod.sandbox_id + "'"));
    sandbox = *found;
    auto pod_config = runtime::config_from_json(sandbox->config);
    if (!pod_config.ok()) return undo(pod_config.error());
    if (c.memory_bytes > pod_config->memory_bytes)
      return undo(Error(ErrorCode::kInvalidArgument,
                        "linux.resources.memory.limit: " + std::to_string(c.memory_bytes >> 20) +
                            " MiB is above the pod VM's " +
                            std::to_string(pod_config->memory_bytes >> 20) + " MiB"));
    c.pod_role = runtime::kPodMember;
    c.pod_sandbox = sandbox->id;
    c.pod_dir = id;
    s.pod_dir = sandbox_state->pod_dir;
  }
  auto created = cs_->create(c, id, {{networks::kNoNetwork, "", "", {}}});
  if (!created.ok()) return undo(created.error());
  record = *created;

  s.vessel_id = record->id;
  s.created = rfc3339(record->created);
  if (auto st = save(s); !st.ok()) return undo(st.error());

  if (member) {
    // Its root and mounts into the pod directory, whence they propagate to
    // the sandbox's virtiofsd; then the sandbox's monitor sets it up in
    // the pod's VM and serves it on its socket.
    if (auto st = runtime::bind_into_pod(c, s.pod_dir, cs_->root(), true); !st.ok())
      return undo(st.error().wrap("bind the container's root into the pod directory"));
    auto ch = cs_->connect(*sandbox);
    if (!ch.ok())
      return undo(Error(ErrorCode::kFailedPrecondition,
                        "the pod's sandbox '" + pod.sandbox_id + "' is not running"));
    auto payload = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(record->id.data()),
                                            record->id.size());
    if (auto st = monitor::request(*ch, monitor::ApiType::kAddContainer, payload, 120s); !st.ok())
      return undo(st.error().wrap("add container '" + id + "' to its pod"));
  } else {
    auto launch = monitor::launch_held(cs_->root(), record->id, o.debug);
    if (!launch.ok()) return undo(launch.error());
    if (auto st = monitor::wait_held(*launch, std::chrono::seconds(c.boot_timeout_seconds + 60));
        !st.ok())
      return undo(st.error());
    launch->ready.reset();
  }

  std::optional<Pty> pty;
  if (spec.process.terminal) {
    auto p = open_pty();
    if (!p.ok()) return undo(p.error());
    pty = std::move(*p);
    if (auto st = send_console(o.console_socket, pty->master.get()); !st.ok())
      return undo(st.error());
    pty->master.reset();
  }
  int code = 0;
  auto pid = start_relay(runtime::monitor_socket_of(cs_->root(), record->id),
                         pty ? pty->slave.get() : -1, std::nullopt, &code);
  if (!pid.ok()) return undo(pid.error());
  s.pid = *pid;
  if (auto st = save(s); !st.ok()) return undo(st.error());
  if (!o.pid_file.empty())
    if (auto st = sys::write_file_atomic(o.pid_file, std::to_string(*pid)); !st.ok())
      return undo(st.error().wrap("write --pid-file"));
  return ok_status();
}

Result<State> Runtime::state(const std::string& id) {
  VESSEL_ASSIGN_OR_RETURN(State s, load(id));
  s.status = "stopped";
  if (!s.vessel_id.empty()) {
    auto r = cs_->find(s.vessel_id);
    if (r.ok()) {
      switch (r->state.status) {
        case RunState::kCreated:
          if (runtime::owner_alive(cs_->root(), r->id)) s.status = "created";
          break;
        case RunState::kRunning:
        case RunState::kRestarting:
          s.status = s.paused ? "paused" : "running";
          break;
        case RunState::kExited:
        case RunState::kRemoving:
          break;
      }
    }
  }
  if (s.status == "stopped") s.pid = 0;
  return s;
}

Result<std::vector<State>> Runtime::list() {
  VESSEL_ASSIGN_OR_RETURN(auto names, sys::list_dir(root_));
  std::vector<State> out;
  for (const auto& n : names) {
    if (n.empty() || n[0] == '.') continue;
    auto s = state(n);
    if (s.ok()) out.push_back(std::move(*s));
  }
  return out;
}

Status Runtime::start(const std::string& id) {
  VESSEL_ASSIGN_OR_RETURN(State s, state(id));
  if (s.status != "created")
    return Error(ErrorCode::kFailedPrecondition,
                 "cannot start container '" + id + "': it is " + s.status + ", not created");
  VESSEL_ASSIGN_OR_RETURN(auto r, cs_->find(s.vessel_id));
  VESSEL_ASSIGN_OR_RETURN(monitor::Channel ch, cs_->connect(r));
  // Attached (without input or output), this client hears whether the
  // process could be started.
  monitor::Attach a;
  a.stdin = 0;
  a.output = 0;
  VESSEL_TRY(
      ch.send(monitor::type_code(monitor::ApiType::kAttach), monitor::kMainStream, encode(a)));
  VESSEL_TRY(monitor::request(ch, monitor::ApiType::kStart, {}, 30s));
  VESSEL_ASSIGN_OR_RETURN(Frame f,
                          monitor::await_frame(ch, monitor::type_code(monitor::ApiType::kStarted),
                                               monitor::kMainStream, 60s));
  protocol::Reply reply;
  if (!protocol::decode(f.payload, reply))
    return Error(ErrorCode::kProtocol, "malformed reply from the monitor");
  if (reply.errnum != 0)
    return Error(ErrorCode::kFailedPrecondition, "start container '" + id + "': " + reply.message);
  return ok_status();
}

Status Runtime::kill(const std::string& id, int signal, bool /*all*/) {
  VESSEL_ASSIGN_OR_RETURN(State s, state(id));
  // containerd's shim recognises "container not running" as "already gone".
  auto not_running = Error(ErrorCode::kFailedPrecondition, "container not running");
  if (s.status == "stopped") return not_running;
  VESSEL_ASSIGN_OR_RETURN(auto r, cs_->find(s.vessel_id));
  if (s.status == "created") {
    // Not started: any signal ends it unstarted, as a signal to runc's
    // waiting init does.
    auto ch = cs_->connect(r);
    if (!ch.ok()) return not_running;
    auto payload = monitor::encode(monitor::Stop{signal, 0});
    auto st = monitor::request(*ch, monitor::ApiType::kStop, payload, 60s);
    if (!st.ok() && st.error().code() != ErrorCode::kUnavailable) return st;
    return ok_status();
  }
  // A frozen VM would hold the signal until resumed: SIGKILL thaws it, as
  // it kills a frozen cgroup's tasks under runc.
  if (s.status == "paused" && signal == SIGKILL) VESSEL_TRY(pause(id, false));
  auto st = cs_->kill(r, signal);
  if (!st.ok() && st.error().code() == ErrorCode::kFailedPrecondition) return not_running;
  return st;
}

Status Runtime::remove(const std::string& id, bool force) {
  VESSEL_ASSIGN_OR_RETURN(State s, state(id));
  if (s.status != "stopped" && !force)
    return Error(ErrorCode::kFailedPrecondition, "cannot delete container '" + id +
                                                     "' that is not stopped: it is " + s.status +
                                                     " (use --force)");
  if (s.status == "paused") (void)pause(id, false);  // so that the kill can end it at once
  if (!s.vessel_id.empty()) {
    auto r = cs_->find(s.vessel_id);
    if (r.ok())
      VESSEL_TRY(cs_->remove(*r, true));
    else if (r.error().code() != ErrorCode::kNotFound)
      return r.error();
  }
  // A pod's container leaves the pod directory; the sandbox takes it away
  // (with anything its containers left there: their VM is off).
  if (!s.pod_dir.empty())
    VESSEL_TRY(s.sandbox ? runtime::remove_pod_dir(s.pod_dir)
                         : runtime::unbind_from_pod(s.pod_dir, id));
  // The relay ends with the container; reap nothing here (it is the
  // caller's child, not ours).
  return sys::remove_tree(dir(id));
}

Result<std::vector<pid_t>> Runtime::pids(const std::string& id) {
  VESSEL_ASSIGN_OR_RETURN(State s, state(id));
  std::vector<pid_t> out;
  if (s.pid > 0) out.push_back(s.pid);
  return out;
}

Result<int> Runtime::exec(const std::string& id, const ExecOptions& o) {
  VESSEL_ASSIGN_OR_RETURN(State s, state(id));
  if (s.status != "running")
    return Error(ErrorCode::kFailedPrecondition,
                 "cannot exec in container '" + id + "': it is " + s.status + ", not running");
  VESSEL_ASSIGN_OR_RETURN(std::string text, sys::read_file(o.process_file, 8 << 20));
  VESSEL_ASSIGN_OR_RETURN(Process p, parse_process(text, "process"));
  bool tty = o.tty.value_or(p.terminal);
  if (tty && o.console_socket.empty())
    return Error(ErrorCode::kInvalidArgument, "a terminal needs --console-socket");
  protocol::Spawn spawn;
  spawn.argv = p.args;
  spawn.env = p.env;
  spawn.cwd = p.cwd;
  spawn.uid = p.uid;
  spawn.gid = p.gid;
  spawn.groups = p.additional_gids;
  spawn.tty = tty;
  spawn.stdin_open = 1;
  spawn.rows = p.rows;
  spawn.cols = p.cols;
  spawn.rlimits = p.rlimits;
  spawn.capabilities = process_capabilities(p);
  spawn.no_new_privileges = p.no_new_privileges;
  for (const auto& i : p.ignored)
    log::debug("ignored: " + i);

  std::optional<Pty> pty;
  if (tty) {
    VESSEL_ASSIGN_OR_RETURN(Pty made, open_pty());
    pty = std::move(made);
    VESSEL_TRY(send_console(o.console_socket, pty->master.get()));
    pty->master.reset();
  }
  int code = 0;
  auto pid = start_relay(runtime::monitor_socket_of(cs_->root(), s.vessel_id),
                         pty ? pty->slave.get() : -1, spawn, &code);
  if (!pid.ok()) return pid.error();
  pty.reset();
  if (!o.pid_file.empty()) VESSEL_TRY(sys::write_file_atomic(o.pid_file, std::to_string(*pid)));
  if (o.detach) return 0;
  int status = 0;
  while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

Status Runtime::pause(const std::string& id, bool pause) {
  VESSEL_ASSIGN_OR_RETURN(State s, state(id));
  if (pause ? s.status != "running" : s.status != "paused")
    return Error(ErrorCode::kFailedPrecondition, "container '" + id + "' is " + s.status +
                                                     (pause ? ", not running" : ", not paused"));
  VESSEL_ASSIGN_OR_RETURN(auto r, cs_->find(s.vessel_id));
  VESSEL_ASSIGN_OR_RETURN(monitor::Channel ch, cs_->connect(r));
  uint8_t payload = pause ? 1 : 0;
  VESSEL_TRY(
      monitor::request(ch, monitor::ApiType::kPause, std::span<const uint8_t>(&payload, 1), 30s));
  // Kept here: the monitor knows the VM, this root knows what was asked.
  VESSEL_ASSIGN_OR_RETURN(State saved, load(id));
  saved.paused = pause;
  return save(saved);
}

Status Runtime::update(const std::string& id, const ResourceUpdate& r) {
  VESSEL_ASSIGN_OR_RETURN(State s, state(id));
  if (s.status != "running")
    return Error(ErrorCode::kFailedPrecondition,
                 "cannot update container '" + id + "': it is " + s.status + ", not running");
  // runc's meaning: -1 (and 0) is no limit; a field not given stays.
  auto field = [](const std::optional<int64_t>& v) -> int64_t {
    return !v ? -1 : std::max<int64_t>(*v, 0);
  };
  monitor::Limits l;
  l.memory_bytes = field(r.memory_bytes);
  l.pids = field(r.pids);
  l.cpu_quota_usec = field(r.cpu_quota_usec);
  l.cpu_period_usec = field(r.cpu_period_usec);
  VESSEL_ASSIGN_OR_RETURN(auto rec, cs_->find(s.vessel_id));
  VESSEL_ASSIGN_OR_RETURN(monitor::Channel ch, cs_->connect(rec));
  return monitor::request(ch, monitor::ApiType::kUpdate, monitor::encode(l), 30s);
}

}  // namespace vessel::oci
