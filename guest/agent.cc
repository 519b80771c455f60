#include "guest/agent.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "guest/copy.h"
#include "guest/machine.h"

namespace vessel::guest {
namespace {

using protocol::MsgType;

/// Above this many unsent bytes, process output is no longer read: the
/// pipes fill up and the processes block, instead of init's memory.
constexpr size_t kOutboundHighWater = 512u << 10;
/// Stdin is acknowledged in batches of this size, and whenever the queue drains.
constexpr uint64_t kAckBatch = 32u << 10;
/// How long the port stays out of the poll set after the host hung up.
constexpr int64_t kPortRetryMs = 100;
/// At most this much is read from one output after its process exited.
constexpr size_t kDrainLimit = 4u << 20;
/// Reads from the port per wake-up; virtio-serial returns at most one
/// receive buffer (a page) per read, so this is up to 1 MiB.
constexpr int kMaxPortReads = 256;
/// A consumed prefix of a buffer is erased once it is this large and at
/// least half of the buffer, keeping appends amortised O(1).
constexpr size_t kCompactBytes = 256u << 10;

template <typename Buffer>
void consume(Buffer& buffer, size_t& offset) {
  if (offset == buffer.size()) {
    buffer.clear();
    offset = 0;
  } else if (offset >= kCompactBytes && offset * 2 >= buffer.size()) {
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(offset));
    offset = 0;
  }
}

}  // namespace

Agent::Agent(UniqueFd port, UniqueFd sigchld, ContainerCgroup cgroup)
    : port_(std::move(port)),
      sigchld_(std::move(sigchld)),
      cgroup_(std::move(cgroup)),
      read_buffer_(protocol::kMaxDataChunk) {}

void Agent::run(const std::string& guest) {
  protocol::Hello hello;
  hello.guest = guest;
  queue_frame(MsgType::kHello, 0, protocol::encode(hello));
  mark("hello");
  for (;;) {
    if (setup_reply_pending_) check_machine_ready();
    // Write what the port takes now; the rest waits for POLLOUT.
    flush_port();
    int timeout = build_poll_set();
    int n = poll(poll_fds_.data(), poll_fds_.size(), timeout);
    if (n < 0) {
      if (errno != EINTR) {
        log_error("poll: %s", std::strerror(errno));
        sleep_ms(10);
      }
      continue;
    }
    for (size_t i = 0; i < poll_fds_.size(); ++i) {
      if (poll_fds_[i].revents != 0) dispatch(poll_fds_[i], poll_tags_[i]);
    }
    if (reclaim_on_ && monotonic_ms() >= reclaim_next_ms_) reclaim_tick();
  }
}

void Agent::reclaim_tick() {
  int64_t now = monotonic_ms();
  ReclaimStep step =
      reclaim_.on_sample(parse_reclaim_sample(now, cgroup_.control_text("cpu.stat"),
                                              cgroup_.control_text("memory.current")),
                         [this] { return parse_file_stats(cgroup_.control_text("memory.stat")); });
  reclaim_next_ms_ = now + step.next_in_ms;
  if (step.bytes == 0) return;
  // The kernel reclaims coldest first; EAGAIN (less found than asked) is
  // fine. A kernel without memory.reclaim never will: stop asking.
  if (Status s = cgroup_.reclaim(step.bytes); !s.ok() && s.errnum() != EAGAIN) {
    reclaim_on_ = false;
    log_error("%s; idle page cache stays", s.message().c_str());
  }
}

int Agent::build_poll_set() {
  poll_fds_.clear();
  poll_tags_.clear();
  auto add = [this](int fd, short events, PollTag tag) {
    poll_fds_.push_back(pollfd{fd, events, 0});
    poll_tags_.push_back(tag);
  };
  int timeout = setup_reply_pending_ ? static_cast<int>(kMachineReadyPollMs) : -1;
  if (reclaim_on_) {
    int64_t until = std::max<int64_t>(reclaim_next_ms_ - monotonic_ms(), 0);
    timeout = timeout < 0 ? static_cast<int>(until) : std::min(timeout, static_cast<int>(until));
  }
  int64_t wait_ms = port_retry_at_ms_ - monotonic_ms();
  if (wait_ms > 0) {
    timeout = static_cast<int>(std::min(wait_ms, kPortRetryMs));
    if (setup_reply_pending_) timeout = std::min(timeout, static_cast<int>(kMachineReadyPollMs));
  } else {
    short events = POLLIN;
    if (outbound_size() > 0) events |= POLLOUT;
    add(port_.get(), events, {Source::kPort});
  }
  add(sigchld_.get(), POLLIN, {Source::kSigchld});
  // Backpressure: while the host is not keeping up, leave output in the pipes.
  bool take_output = outbound_size() <= kOutboundHighWater;
  for (auto& [stream, p] : processes_) {
    if (take_output && p.stdout_fd) {
      add(p.stdout_fd.get(), POLLIN, {Source::kStdout, stream, p.serial});
    }
    if (take_output && p.stderr_fd) {
      add(p.stderr_fd.get(), POLLIN, {Source::kStderr, stream, p.serial});
    }
    if (p.in.fd && (!p.in.pending.empty() || p.in.eof_requested)) {
      add(p.in.fd.get(), POLLOUT, {Source::kStdin, stream, p.serial});
    }
  }
  return timeout;
}

void Agent::dispatch(const pollfd& entry, const PollTag& tag) {
  switch (tag.source) {
    case Source::kPort:
      if (entry.revents & POLLNVAL) fail("the agent port is not open");
      if (entry.revents & POLLOUT) flush_port();
      // POLLHUP: the host end is closed; read() then returns 0.
      if (entry.revents & (POLLIN | POLLHUP | POLLERR)) read_port();
      return;
    case Source::kSigchld: {
      // Signals coalesce: one SIGCHLD can stand for many exits, so what
      // matters is reaping until waitpid() has nothing, not the count.
      signalfd_siginfo info;
      while (read(sigchld_.get(), &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      }
      reap_children();
      return;
    }
    case Source::kStdout:
    case Source::kStderr:
    case Source::kStdin:
      break;
  }
  Process* p = find(tag.stream, tag.serial);
  if (p == nullptr) return;  // reaped earlier in this round
  switch (tag.source) {
    case Source::kStdout:
      read_output(p->stream, p->stdout_fd, MsgType::kStdout);
      break;
    case Source::kStderr:
      read_output(p->stream, p->stderr_fd, MsgType::kStderr);
      break;
    case Source::kStdin:
      pump_stdin(*p);
      break;
    default:
      break;
  }
}

// ---- the port -------------------------------------------------------------------

void Agent::queue_frame(MsgType type, uint32_t stream, std::span<const uint8_t> payload) {
  uint8_t header[protocol::kHeaderSize];
  protocol::encode_header(
      {static_cast<uint32_t>(payload.size()), static_cast<uint16_t>(type), 0, stream}, header);
  outbound_.insert(outbound_.end(), header, header + sizeof(header));
  outbound_.insert(outbound_.end(), payload.begin(), payload.end());
}

void Agent::flush_port() {
  while (outbound_size() > 0) {
    // virtio_console writes at most 32 KiB per call; the loop writes the rest.
    ssize_t n = write(port_.get(), outbound_.data() + outbound_offset_, outbound_size());
    if (n > 0) {
      outbound_offset_ += static_cast<size_t>(n);
      host_connected_ = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // EAGAIN: full, or no host connected (the driver then refuses writes).
    if (n == 0 || errno == EAGAIN) break;
    if (host_connected_) log_error("write agent port: %s", std::strerror(errno));
    host_connected_ = false;
    port_retry_at_ms_ = monotonic_ms() + kPortRetryMs;
    break;
  }
  consume(outbound_, outbound_offset_);
}

void Agent::read_port() {
  for (int i = 0; i < kMaxPortReads; ++i) {
    ssize_t n = read(port_.get(), read_buffer_.data(), read_buffer_.size());
    if (n == 0) {
      port_hung_up();
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      if (host_connected_) log_error("read agent port: %s", std::strerror(errno));
      port_hung_up();
      return;
    }
    host_connected_ = true;
    reader_.feed(read_buffer_.data(), static_cast<size_t>(n));
    protocol::FrameReader::Frame frame;
    for (;;) {
      protocol::FrameReader::Status status = reader_.next(frame);
      if (status == protocol::FrameReader::Status::kNeedMore) break;
      if (status == protocol::FrameReader::Status::kError) {
        fail("malformed frame header from the host (payload over the limit)");
      }
      if (!handle_frame(frame)) fail("malformed frame from the host");
    }
  }
}

void Agent::port_hung_up() {
  // virtio_console reports POLLHUP and reads return 0 for as long as no host
  // is connected (drivers/char/virtio_console.c, port_fops_poll), which is
  // also the case before the host first connects. Try again a little later.
  if (host_connected_) log_error("the host closed the agent port; waiting for it to reconnect");
  host_connected_ = false;
  port_retry_at_ms_ = monotonic_ms() + kPortRetryMs;
  // A frame cut short can never complete; a new connection starts afresh.
  reader_ = protocol::FrameReader();
}

bool Agent::handle_frame(const protocol::FrameReader::Frame& frame) {
  const protocol::FrameHeader& h = frame.header;
  std::span<const uint8_t> payload(frame.payload);
  auto malformed = [&h]() {
    log_error("malformed %s frame from the host (stream %u, %u bytes)", protocol::type_name(h.type),
              h.stream, h.length);
    return false;
  };
  switch (static_cast<MsgType>(h.type)) {
    case MsgType::kSetup: {
      protocol::Setup m;
      if (!protocol::decode(payload, m)) return malformed();
      on_setup(h.stream, m);
      return true;
    }
    case MsgType::kSpawn: {
      protocol::Spawn m;
      if (!protocol::decode(payload, m)) return malformed();
      on_spawn(h.stream, m);
      return true;
    }
    case MsgType::kCopyOut: {
      protocol::CopyOut m;
      if (!protocol::decode(payload, m)) return malformed();
      CopyOutTask task(m);
      on_task(h.stream, task);
      return true;
    }
    case MsgType::kCopyIn: {
      protocol::CopyIn m;
      if (!protocol::decode(payload, m)) return malformed();
      CopyInTask task(m);
      on_task(h.stream, task);
      return true;
    }
    case MsgType::kStdin:
      on_stdin(h.stream, payload);
      return true;
    case MsgType::kSignal: {
      protocol::Signal m;
      if (!protocol::decode(payload, m)) return malformed();
      on_signal(h.stream, m);
      return true;
    }
    case MsgType::kResize: {
      protocol::Resize m;
      if (!protocol::decode(payload, m)) return malformed();
      on_resize(h.stream, m);
      return true;
    }
    case MsgType::kStats: {
      protocol::StatsRequest m;
      if (!protocol::decode(payload, m)) return malformed();
      on_stats(m);
      return true;
    }
    case MsgType::kRemoveContainer: {
      protocol::RemoveContainer m;
      if (!protocol::decode(payload, m)) return malformed();
      on_remove_container(m);
      return true;
    }
    case MsgType::kUpdate: {
      protocol::Update m;
      if (!protocol::decode(payload, m)) return malformed();
      on_update(m);
      return true;
    }
    case MsgType::kPoweroff:
      on_poweroff();
    default:
      // Well framed, but not a request this init serves: a message only the
      // guest sends, or one from a newer host. Skipping it keeps the stream
      // in sync.
      log_error("ignoring %s frame (type %u) from the host", protocol::type_name(h.type), h.type);
      return true;
  }
}

void Agent::fail(const char* why) {
  log_error("%s; powering off", why);
  if (machine_) machine_power_off();
  power_off();
}

void Agent::machine_power_off() {
  // systemd's documented signal for "start poweroff.target" (systemd(1),
  // SIGRTMIN+4): a clean shutdown that ends in an ACPI power-off. This
  // process is then stopped with the rest; the host forces the VM off if
  // the init does not finish in time.
  kill(1, SIGRTMIN + 4);
  for (;;)
    pause();
}

// ---- messages ------------------------------------------------------------------

void Agent::reply(MsgType type, uint32_t stream, const Status& status, uint32_t pid) {
  protocol::Reply m;
  m.errnum = status.errnum();
  m.message = status.message();
  m.pid = pid;
  queue_frame(type, stream, protocol::encode(m));
}

void Agent::on_setup(uint32_t stream, const protocol::Setup& setup) {
  if (setup.container != 0) {
    on_add_container(stream, setup);
    return;
  }
  mark("setup received");
  if (container_.ready()) {
    reply(MsgType::kSetupResult, stream, Status(EBUSY, "the container root is already set up"));
    return;
  }
  // The VM's clock and randomness from the host: a VM restored from a
  // template has the template's (protocol.md, "Templates"). Before any
  // process of the container runs.
  set_clock_from_host(setup.realtime_ns);
  add_host_entropy(setup.entropy);
  if (setup.restored) {
    drop_disk_caches();
    bind_late_devices();
  }
  // Limits first: they are cheap to write again if the mounts fail and the
  // host retries, and no process can run before Setup succeeds anyway.
  if (Status s = cgroup_.apply_limits(setup); !s.ok()) {
    log_error("setup: %s", s.message().c_str());
    reply(MsgType::kSetupResult, stream, s);
    return;
  }
  Result<Container> container = Container::prepare(setup, cgroup_);
  if (!container.ok()) {
    log_error("setup: %s", container.status().message().c_str());
    reply(MsgType::kSetupResult, stream, container.status());
    return;
  }
  container_ = container.take();
  reclaim_on_ = setup.memory_reclaim && !setup.machine && cgroup_.valid();
  reclaim_next_ms_ = monotonic_ms() + IdleReclaim::kPeriodMs;
  if (setup.machine) {
    // PID 1 becomes the image's init; the agent goes on in a child, which
    // adopts the orphans of the processes it starts (a subreaper), so they
    // are reaped here, not by the machine's init.
    pid_t pid = fork();
    if (pid < 0) {
      Status s = Status::from_errno("fork the agent");
      container_ = Container();
      reply(MsgType::kSetupResult, stream, s);
      return;
    }
    if (pid > 0) {
      Status s = exec_machine_init(container_.mount_ns(), setup.init);
      log_error("%s; powering off", s.message().c_str());
      power_off();
    }
    machine_ = true;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    // The init's shutdown ends every process with SIGTERM (then waits up to
    // 90 s before SIGKILL): this one goes at once.
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    signal(SIGTERM, SIG_DFL);
    sigprocmask(SIG_UNBLOCK, &term, nullptr);
    // The host hears "set up" once the init can take commands (see
    // check_machine_ready), so that `machine start` then `machine exec
    // systemctl ...` works.
    setup_reply_pending_ = true;
    setup_reply_stream_ = stream;
    setup_reply_deadline_ms_ = monotonic_ms() + kMachineReadyTimeoutMs;
    return;
  }
  mark("set up");
  reply(MsgType::kSetupResult, stream, Status());
}

void Agent::on_add_container(uint32_t stream, const protocol::Setup& setup) {
  uint32_t n = setup.container;
  if (!container_.ready() || machine_) {
    reply(
        MsgType::kSetupResult, stream,
        Status(EINVAL, "container " + std::to_string(n) + ": the VM's container 0 is not set up"));
    return;
  }
  if (members_.contains(n)) {
    reply(MsgType::kSetupResult, stream,
          Status(EEXIST, "container " + std::to_string(n) + " is already set up"));
    return;
  }
  // A cgroup of its own beside container 0's: its limits, its statistics,
  // its OOM kills. Without cgroup2 (container 0's invalid too) it runs
  // without, as container 0 does.
  Result<ContainerCgroup> cgroup = ContainerCgroup::create(n);
  Member member;
  if (cgroup.ok()) member.cgroup = cgroup.take();
  Status s = member.cgroup.apply_limits(setup);
  if (s.ok()) {
    Result<Container> container = Container::prepare(setup, member.cgroup);
    if (container.ok())
      member.container = container.take();
    else
      s = container.status();
  }
  if (!s.ok()) {
    log_error("setup of container %u: %s", n, s.message().c_str());
    member.cgroup.kill_and_remove();
    reply(MsgType::kSetupResult, stream, s);
    return;
  }
  members_.emplace(n, std::move(member));
  reply(MsgType::kSetupResult, stream, Status());
}

void Agent::on_remove_container(const protocol::RemoveContainer& remove) {
  auto it = members_.find(remove.container);
  if (it == members_.end()) return;
  // Its processes are killed here and reaped (and reported) as they die.
  it->second.cgroup.kill_and_remove();
  it->second.container.release();
  members_.erase(it);
}

const Container* Agent::container_of(uint32_t n) const {
  if (n == 0) return &container_;
  auto it = members_.find(n);
  return it == members_.end() ? nullptr : &it->second.container;
}

const ContainerCgroup* Agent::cgroup_of(uint32_t n) const {
  if (n == 0) return &cgroup_;
  auto it = members_.find(n);
  return it == members_.end() ? nullptr : &it->second.cgroup;
}

void Agent::check_machine_ready() {
  // PID 1 still being vessel-init (the image this agent runs, an unlinked
  // initramfs file) means it has not executed the init yet.
  char exe[256];
  ssize_t n = readlink("/proc/1/exe", exe, sizeof exe - 1);
  std::string path = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "";
  struct stat pid1, self;
  bool started = stat("/proc/1/exe", &pid1) == 0 && stat("/proc/self/exe", &self) == 0 &&
                 (pid1.st_dev != self.st_dev || pid1.st_ino != self.st_ino);
  bool systemd = path.ends_with("/systemd");
  // systemd listens on its private socket once its manager is up; seen
  // through PID 1's root, which is the machine's (with its /run).
  bool ready = started && (!systemd || access("/proc/1/root/run/systemd/private", F_OK) == 0);
  bool late = monotonic_ms() >= setup_reply_deadline_ms_;
  if (!ready && !late) return;
  if (!ready)
    log_error("the machine's init is not ready after %lld s; going on",
              static_cast<long long>(kMachineReadyTimeoutMs / 1000));
  setup_reply_pending_ = false;
  reply(MsgType::kSetupResult, setup_reply_stream_, Status());
}

bool Agent::can_start(uint32_t stream) {
  if (stream == 0) {
    reply(MsgType::kSpawnResult, stream, Status(EINVAL, "spawn on stream 0, which is the VM's"));
    return false;
  }
  if (!container_.ready()) {
    reply(MsgType::kSpawnResult, stream, Status(EINVAL, "spawn before setup"));
    return false;
  }
  if (processes_.contains(stream)) {
    reply(MsgType::kSpawnResult, stream,
          Status(EEXIST, "stream " + std::to_string(stream) + " is in use"));
    return false;
  }
  return true;
}

void Agent::started(uint32_t stream, Process process, uint64_t oom_kills) {
  process.oom_kills_at_start = oom_kills;
  process.stream = stream;
  process.serial = next_serial_++;
  pid_t pid = process.pid;
  processes_.emplace(stream, std::move(process));
  // Queued before any output or Exit of the process, which can only be read
  // in a later round.
  mark("process started (exec'd)");
  reply(MsgType::kSpawnResult, stream, Status(), static_cast<uint32_t>(pid));
}

void Agent::on_spawn(uint32_t stream, const protocol::Spawn& spawn) {
  mark("spawn received");
  if (!can_start(stream)) return;
  const Container* container = container_of(spawn.container);
  const ContainerCgroup* cgroup = cgroup_of(spawn.container);
  if (container == nullptr || cgroup == nullptr) {
    reply(MsgType::kSpawnResult, stream,
          Status(ESRCH, "container " + std::to_string(spawn.container) + " does not exist"));
    return;
  }
  uint64_t oom_kills = cgroup->oom_kills();
  Result<Process> process = spawn_process(spawn, *container, *cgroup);
  if (!process.ok()) {
    reply(MsgType::kSpawnResult, stream, process.status());
    return;
  }
  Process p = process.take();
  p.container = spawn.container;
  started(stream, std::move(p), oom_kills);
}

void Agent::on_task(uint32_t stream, Task& task) {
  if (!can_start(stream)) return;
  uint64_t oom_kills = cgroup_.oom_kills();
  Result<Process> process = spawn_task(task, container_, cgroup_);
  if (!process.ok()) {
    reply(MsgType::kSpawnResult, stream, process.status());
    return;
  }
  started(stream, process.take(), oom_kills);
}

void Agent::on_stdin(uint32_t stream, std::span<const uint8_t> data) {
  auto it = processes_.find(stream);
  if (it == processes_.end()) return;  // Stdin races with Exit: the process is gone
  Process& p = it->second;
  StdinState& in = p.in;
  if (data.empty()) {
    in.eof_requested = true;
  } else if (!in.fd || in.eof_requested) {
    // Nowhere to write (closed, or data after EOF): drop it, but acknowledge
    // it so that the host's window does not stall.
    in.unacked += data.size();
  } else {
    in.pending.insert(in.pending.end(), data.begin(), data.end());
  }
  pump_stdin(p);
}

void Agent::on_signal(uint32_t stream, const protocol::Signal& signal) {
  auto it = processes_.find(stream);
  if (it == processes_.end()) return;
  // ESRCH is impossible: a tracked pid is not reaped yet. EPERM cannot
  // happen as root. Nothing to report either way.
  kill(it->second.pid, signal.signo);
}

void Agent::on_resize(uint32_t stream, const protocol::Resize& resize) {
  auto it = processes_.find(stream);
  if (it == processes_.end() || !it->second.pty) return;
  // The kernel sends SIGWINCH to the terminal's foreground process group.
  winsize ws{resize.rows, resize.cols, 0, 0};
  ioctl(it->second.pty.get(), TIOCSWINSZ, &ws);
}

void Agent::on_stats(const protocol::StatsRequest& request) {
  // Answered on stream 0 whatever stream the request came on: the host
  // routes StatsResult by type (protocol.md). A container that is gone
  // samples as a cgroup-less one (the VM's figures only).
  const ContainerCgroup* cgroup = cgroup_of(request.container);
  ContainerCgroup none;
  queue_frame(MsgType::kStatsResult, 0,
              protocol::encode(cgroup ? cgroup->sample() : none.sample()));
}

void Agent::on_update(const protocol::Update& update) {
  // Answered on stream 0, like StatsResult.
  const ContainerCgroup* cgroup = cgroup_of(update.container);
  reply(MsgType::kUpdateResult, 0,
        cgroup
            ? cgroup->apply_limits(update)
            : Status(ESRCH, "container " + std::to_string(update.container) + " does not exist"));
}

void Agent::on_poweroff() {
  // Whatever is still queued goes out if the port takes it now; the host
  // asked for the power-off, so it is not waited for.
  flush_port();
  if (machine_) machine_power_off();
  // Once everything is written back, nothing in this VM needs to run
  // again: a Poweroff back tells the host it may end QEMU now rather than
  // wait for the kernel's reboot (15-30 ms under TCG). If the port does not
  // take it at once, the reboot ends QEMU as before.
  mark("poweroff received");
  sync();
  mark("synced");
  write_marks(STDERR_FILENO);
  queue_frame(MsgType::kPoweroff, 0, {});
  flush_port();
  power_off();
}

// ---- processes -------------------------------------------------------------------

Process* Agent::find(uint32_t stream, uint64_t serial) {
  auto it = processes_.find(stream);
  if (it == processes_.end() || it->second.serial != serial) return nullptr;
  return &it->second;
}

void Agent::pump_stdin(Process& process) {
  StdinState& in = process.in;
  while (in.fd && in.offset < in.pending.size()) {
    ssize_t n = write(in.fd.get(), in.pending.data() + in.offset, in.pending.size() - in.offset);
    if (n > 0) {
      in.offset += static_cast<size_t>(n);
      in.unacked += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || errno == EAGAIN) break;
    // EPIPE: the process closed its stdin; EIO: its terminal is gone. The
    // rest can never be written: drop it, acknowledged.
    in.unacked += in.pending.size() - in.offset;
    in.fd.reset();
  }
  if (!in.fd) in.offset = in.pending.size();
  consume(in.pending, in.offset);
  if (in.fd && in.pending.empty() && in.eof_requested) finish_stdin(in);
  send_acks(process);
}

void Agent::finish_stdin(StdinState& in) {
  if (!in.tty) {
    in.fd.reset();  // the process reads EOF
    return;
  }
  // A terminal cannot be closed from the master side without hanging it up;
  // its line discipline turns the VEOF character (^D unless changed) into
  // EOF instead (termios(3)). tcgetattr() on the master reads the pair's
  // settings.
  cc_t eof = 4;
  termios t;
  if (tcgetattr(in.fd.get(), &t) == 0 && t.c_cc[VEOF] != _POSIX_VDISABLE) eof = t.c_cc[VEOF];
  ssize_t n = write(in.fd.get(), &eof, 1);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;  // again on POLLOUT
  in.fd.reset();
}

void Agent::send_acks(Process& process) {
  StdinState& in = process.in;
  if (in.unacked == 0) return;
  if (!in.pending.empty() && in.unacked < kAckBatch) return;
  while (in.unacked > 0) {
    // An Ack may not exceed the window (protocol.cc checks it); dropping a
    // buffer that a misbehaving host overfilled may need several.
    protocol::Ack ack;
    ack.bytes = static_cast<uint32_t>(std::min<uint64_t>(in.unacked, protocol::kStdinWindow));
    queue_frame(MsgType::kStdinAck, process.stream, protocol::encode(ack));
    in.unacked -= ack.bytes;
  }
}

size_t Agent::read_output(uint32_t stream, UniqueFd& fd, MsgType type) {
  for (;;) {
    ssize_t n = read(fd.get(), read_buffer_.data(), read_buffer_.size());
    if (n > 0) {
      queue_frame(type, stream, {read_buffer_.data(), static_cast<size_t>(n)});
      return static_cast<size_t>(n);
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 0;
    // 0 is EOF. On a pty master, EIO means every slave fd is closed (pty(7)):
    // the terminal's EOF.
    if (n < 0 && errno != EIO) {
      log_error("read %s of stream %u: %s", protocol::type_name(static_cast<uint16_t>(type)),
                stream, std::strerror(errno));
    }
    fd.reset();
    return 0;
  }
}

void Agent::drain_output(uint32_t stream, UniqueFd& fd, MsgType type) {
  size_t total = 0;
  while (fd && total < kDrainLimit) {
    size_t n = read_output(stream, fd, type);
    if (n == 0) return;
    total += n;
  }
}

void Agent::reap_children() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid == 0) return;  // children left, none exited
    if (pid < 0) {
      if (errno == EINTR) continue;
      return;  // ECHILD: no children at all
    }
    // Anything not found is an orphan re-parented to init: reaping is all
    // it needs.
    for (auto it = processes_.begin(); it != processes_.end(); ++it) {
      if (it->second.pid == pid) {
        finish_process(it->second, status);
        processes_.erase(it);  // closes its fds
        break;
      }
    }
  }
}

void Agent::finish_process(Process& process, int wait_status) {
  // Everything the process wrote before exiting is in the pipe (or pty)
  // buffer now. EOF is not waited for: a background child may hold the
  // write end open forever (Docker does not wait either).
  drain_output(process.stream, process.stdout_fd, MsgType::kStdout);
  drain_output(process.stream, process.stderr_fd, MsgType::kStderr);
  protocol::Exit exit;
  if (WIFEXITED(wait_status)) exit.code = WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) exit.signal = WTERMSIG(wait_status);
  // The OOM killer counts its kill (memory.events) before the victim dies,
  // so a kill that ended this process is already counted here.
  const ContainerCgroup* cgroup = cgroup_of(process.container);
  exit.oom_killed = cgroup && cgroup->valid() && cgroup->oom_kills() > process.oom_kills_at_start;
  mark("process exited");
  queue_frame(MsgType::kExit, process.stream, protocol::encode(exit));
}

}  // namespace vessel::guest
