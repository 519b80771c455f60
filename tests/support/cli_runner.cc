#include "cli_runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>

#include "base/strings.h"
#include "base/unique_fd.h"
#include "sys/fs.h"
#include "sys/process.h"

extern char** environ;

namespace vessel::test {
namespace {

// Every test process that can (root) moves into a network namespace of its
// own before main(), so that the bridges, taps, nftables rules and DNS
// servers of the containers it runs, and any server it starts on
// 127.0.0.1 (registries), exist only there: the host's network is never
// touched, and tests running side by side do not share a `default`
// network. ctest runs each test in its own process, so each test gets its
// own namespace. VESSEL_TEST_HOST_NETNS=1 keeps the host's.
struct PrivateNetworkNamespace {
  PrivateNetworkNamespace() {
    const char* keep = ::getenv("VESSEL_TEST_HOST_NETNS");
    if ((keep && std::string(keep) == "1") || ::geteuid() != 0) return;
    if (::unshare(CLONE_NEWNET) != 0) return;
    // lo starts down in a new namespace.
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (s.valid() && ::ioctl(s.get(), SIOCGIFFLAGS, &ifr) == 0) {
      ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
      (void)::ioctl(s.get(), SIOCSIFFLAGS, &ifr);
    }
  }
};
const PrivateNetworkNamespace private_network_namespace;

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// After the CLI exits, how long to wait for the end of its output: only a
// leaked grandchild holding the pipe or terminal keeps it open that long.
constexpr auto kDrainGrace = std::chrono::seconds(5);
// How long a QEMU or virtiofsd the CLI killed may take to disappear.
constexpr auto kLeakGrace = std::chrono::seconds(2);
// How much of each run's stderr a failure report shows.
constexpr size_t kReportTail = 16 << 10;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = ::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// Owns a forked child until it is reaped: kills and reaps it on early exits.
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  ~ChildGuard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  /// The child has been reaped elsewhere.
  void release() { pid_ = -1; }

 private:
  pid_t pid_;
};

std::vector<std::string> merged_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    env.emplace_back(*e);
  for (const auto& item : extra) {
    std::string key = item.substr(0, item.find('=') + 1);  // "KEY="
    std::erase_if(env, [&](const std::string& e) { return e.compare(0, key.size(), key) == 0; });
    env.push_back(item);
  }
  return env;
}

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (const auto& s : strings)
    out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

bool make_pipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  return true;
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int shell_code(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

// Reads what is available into `out`; closes `fd` at end of file. A pty
// master reports the end (every slave fd closed) as EIO.
void read_some(UniqueFd& fd, std::string& out) {
  char buf[64 << 10];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n > 0) {
    out.append(buf, static_cast<size_t>(n));
  } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
    fd.reset();
  }
}

std::string tail(const std::string& s, size_t bytes) {
  if (s.size() <= bytes) return s;
  return "[... " + std::to_string(s.size() - bytes) + " bytes before]" + s.substr(s.size() - bytes);
}

}  // namespace

const TestPaths& paths() {
  static const TestPaths p = [] {
    TestPaths t;
    t.vessel = env_or("VESSEL_BIN", VESSEL_TEST_DEFAULT_BIN);
    t.rootfs = env_or("VESSEL_TEST_ROOTFS", VESSEL_TEST_DEFAULT_ROOTFS);
    t.share = env_or("VESSEL_SHARE_DIR", VESSEL_TEST_DEFAULT_SHARE);
    t.kernel = env_or("VESSEL_KERNEL", t.share + "/kernel");
    t.initrd = env_or("VESSEL_INITRD", t.share + "/initramfs.cpio.gz");
    return t;
  }();
  return p;
}

CliResult run_process(const std::vector<std::string>& argv, const RunOptions& o) {
  CliResult r;
  if (argv.empty()) {
    ADD_FAILURE() << "run_process: empty argv";
    return r;
  }
  // A CLI that exits without reading all of its stdin must not kill us.
  ::signal(SIGPIPE, SIG_IGN);

  // Everything the child needs is built before fork: between fork and
  // execve only async-signal-safe calls are allowed.
  std::vector<std::string> env = merged_environment(o.env);
  std::vector<char*> c_argv = c_strings(argv), c_env = c_strings(env);
  auto writes_after = [&](size_t step) {
    return std::any_of(o.steps.begin() + static_cast<ptrdiff_t>(step), o.steps.end(),
                       [](const Step& s) { return !s.write.empty(); });
  };
  bool stdin_pipe = !o.pty && (o.stdin_data || writes_after(0));

  UniqueFd master, slave, in_r, in_w, out_r, out_w, err_r, err_w, null_in;
  if (o.pty) {
    winsize ws{o.window.rows, o.window.cols, 0, 0};
    int m, s;
    if (::openpty(&m, &s, nullptr, nullptr, &ws) != 0) {
      ADD_FAILURE() << "openpty: " << std::strerror(errno);
      return r;
    }
    master.reset(m);
    slave.reset(s);
    ::fcntl(m, F_SETFD, FD_CLOEXEC);
    ::fcntl(s, F_SETFD, FD_CLOEXEC);
  } else {
    bool ok = make_pipe(out_r, out_w) && make_pipe(err_r, err_w);
    if (ok && stdin_pipe) ok = make_pipe(in_r, in_w);
    if (ok && !stdin_pipe) {
      null_in.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
      ok = null_in.valid();
    }
    if (!ok) {
      ADD_FAILURE() << "pipe: " << std::strerror(errno);
      return r;
    }
  }

  pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return r;
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);  // an ignored disposition would survive execve
    if (o.pty) {
      // login_tty(3) by hand: a new session whose controlling terminal is
      // the pty, so that TIOCSWINSZ on the master sends it SIGWINCH.
      if (::setsid() < 0 || ::ioctl(slave.get(), TIOCSCTTY, 0) != 0) ::_exit(126);
      for (int fd = 0; fd <= 2; ++fd)
        ::dup2(slave.get(), fd);
    } else {
      ::dup2(stdin_pipe ? in_r.get() : null_in.get(), 0);
      ::dup2(out_w.get(), 1);
      ::dup2(err_w.get(), 2);
    }
    ::execve(c_argv[0], c_argv.data(), c_env.data());
    ::_exit(127);
  }
  ChildGuard child(pid);
  slave.reset();
  in_r.reset();
  out_w.reset();
  err_w.reset();
  null_in.reset();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  for (const UniqueFd* fd : {&master, &in_w, &out_r, &err_r})
    if (fd->valid()) set_nonblocking(fd->get());

  std::string input = o.stdin_data.value_or("");
  size_t written = 0;
  size_t search_from = 0;
  bool exited = false;
  int wait_status = 0;
  auto deadline = Clock::now() + o.timeout;
  Clock::time_point drain_deadline{};

  auto run_ready_steps = [&] {
    while (r.steps_done < o.steps.size()) {
      const Step& s = o.steps[r.steps_done];
      size_t pos = r.out.find(s.await, search_from);
      if (pos == std::string::npos) return;
      search_from = pos + s.await.size();
      if (s.resize && master) {
        winsize ws{s.resize->rows, s.resize->cols, 0, 0};
        if (::ioctl(master.get(), TIOCSWINSZ, &ws) != 0)
          ADD_FAILURE() << "TIOCSWINSZ: " << std::strerror(errno);
      }
      input += s.write;
      if (s.signal && !exited) ::kill(pid, s.signal);
      if (s.call) s.call();
      ++r.steps_done;
    }
  };
  auto reap = [&](int options) {
    pid_t w;
    do {
      w = ::waitpid(pid, &wait_status, options);
    } while (w < 0 && errno == EINTR);
    if (w != pid) return;
    exited = true;
    child.release();
    drain_deadline = Clock::now() + kDrainGrace;
  };

  while (true) {
    run_ready_steps();
    if (in_w && written == input.size() && !writes_after(r.steps_done)) in_w.reset();  // EOF
    if (exited && !out_r && !err_r && !master) break;
    auto now = Clock::now();
    if (!exited && now >= deadline) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      reap(0);
      drain_deadline = now + std::chrono::seconds(1);  // keep what was already written
    }
    if (exited && now >= drain_deadline) break;

    auto until = exited ? drain_deadline : deadline;
    auto left = std::chrono::duration_cast<milliseconds>(until - now).count() + 1;
    if (!pidfd && !exited) left = std::min<int64_t>(left, 50);  // no pidfd: poll for the exit
    int in_fd = o.pty ? master.get() : in_w.get();
    bool want_write = in_fd >= 0 && written < input.size();
    pollfd p[4] = {
        {out_r.get(), POLLIN, 0},
        {err_r.get(), POLLIN, 0},
        // Without input pending, a stdin pipe is left out: its POLLERR (the
        // reader went away) would wake us in a loop.
        {o.pty ? master.get() : (want_write ? in_w.get() : -1),
         static_cast<short>((o.pty ? POLLIN : 0) | (want_write ? POLLOUT : 0)), 0},
        {exited ? -1 : pidfd.get(), POLLIN, 0},
    };
    if (::poll(p, 4, static_cast<int>(left)) < 0 && errno != EINTR) {
      ADD_FAILURE() << "poll: " << std::strerror(errno);
      break;
    }
    if (p[0].revents) read_some(out_r, r.out);
    if (p[1].revents) read_some(err_r, r.err);
    if (o.pty && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) read_some(master, r.out);
    if (want_write && (p[2].revents & (POLLOUT | POLLERR)) && in_fd >= 0 &&
        (o.pty ? master.valid() : in_w.valid())) {
      size_t chunk = std::min<size_t>(input.size() - written, 64 << 10);
      ssize_t n = ::write(in_fd, input.data() + written, chunk);
      if (n > 0) {
        written += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        written = input.size();  // the reader went away (EPIPE): the rest is dropped
        if (!o.pty) in_w.reset();
      }
    }
    if (!exited && (!pidfd || p[3].revents)) reap(WNOHANG);
  }
  if (exited) r.exit_code = shell_code(wait_status);
  return r;
}

CliResult run_cli(const std::vector<std::string>& args, const RunOptions& options) {
  std::vector<std::string> argv{paths().vessel};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions o = options;
  bool has_accel = std::any_of(o.env.begin(), o.env.end(), [](const std::string& e) {
    return starts_with(e, "VESSEL_ACCEL=");
  });
  // An explicit accelerator: no one-time "using TCG" notice on stderr.
  if (!has_accel) o.env.insert(o.env.begin(), "VESSEL_ACCEL=tcg");
  return run_process(argv, o);
}

std::string shell_quote(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty() && std::all_of(a.begin(), a.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("-_./=:,+@%", c);
    });
    if (plain) {
      out += a;
      continue;
    }
    out += '\'';
    for (char c : a)
      out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

namespace {

// Calls `found(pid, argv)` for each process find_processes() matches.
void for_each_process(const std::vector<std::string>& names, std::string_view needle,
                      const std::function<void(int, const std::vector<std::string>&)>& found) {
  DIR* dir = ::opendir("/proc");
  if (!dir) return;
  while (dirent* e = ::readdir(dir)) {
    if (!parse_u64(e->d_name)) continue;
    std::string proc = std::string("/proc/") + e->d_name;
    auto cmdline = sys::read_file(proc + "/cmdline", 1 << 20);
    if (!cmdline.ok() || cmdline->empty()) continue;  // gone, a kernel thread or a zombie
    std::vector<std::string> args = split(*cmdline, '\0');
    if (!args.empty() && args.back().empty()) args.pop_back();
    std::string base = args[0].substr(args[0].rfind('/') + 1);
    if (std::find(names.begin(), names.end(), base) == names.end()) continue;
    // The environment too: virtiofsd's command line names only the shared
    // directory, but it inherits the CLI's environment.
    auto environ_text = sys::read_file(proc + "/environ", 1 << 20);
    bool mentions = cmdline->find(needle) != std::string::npos ||
                    (environ_text.ok() && environ_text->find(needle) != std::string::npos);
    if (mentions) found(static_cast<int>(*parse_u64(e->d_name)), args);
  }
  ::closedir(dir);
}

}  // namespace

std::vector<std::string> find_processes(const std::vector<std::string>& names,
                                        std::string_view needle) {
  std::vector<std::string> found;
  for_each_process(names, needle, [&](int pid, const std::vector<std::string>& args) {
    found.push_back("pid " + std::to_string(pid) + ": " + shell_quote(args));
  });
  return found;
}

std::vector<int> find_process_ids(const std::vector<std::string>& names, std::string_view needle) {
  std::vector<int> found;
  for_each_process(names, needle,
                   [&](int pid, const std::vector<std::string>&) { found.push_back(pid); });
  return found;
}

const std::vector<std::string>& vm_process_names() {
  // The lean QEMU build runs KVM VMs without shares (vmm::find_qemu).
  static const std::vector<std::string> names{"qemu-system-x86_64", "qemu-system-x86_64-microvm",
                                              "virtiofsd", "vessel-monitor"};
  return names;
}

std::vector<std::string> zombie_lines(std::string_view ps_output) {
  std::vector<std::string> zombies;
  for (const auto& line : split(ps_output, '\n')) {
    std::string_view t = trim(line);
    if (!t.empty() && t[0] == 'Z') zombies.push_back(line);
  }
  return zombies;
}

std::optional<std::string> vm_unavailable_reason() {
  const TestPaths& p = paths();
  if (!sys::find_program("qemu-system-x86_64"))
    return std::string("qemu-system-x86_64 is not in PATH (install qemu-system-x86)");
  std::string virtiofsd = env_or("VESSEL_VIRTIOFSD", "/usr/lib/qemu/virtiofsd");
  if (::access(virtiofsd.c_str(), X_OK) != 0)
    return "no virtiofsd at '" + virtiofsd + "' (install qemu-system-common)";
  if (::access(p.kernel.c_str(), R_OK) != 0)
    return "no guest kernel at '" + p.kernel +
           "' (build with -DVESSEL_KERNEL=ON or set VESSEL_KERNEL)";
  if (::access(p.initrd.c_str(), R_OK) != 0)
    return "no initramfs at '" + p.initrd + "' (build with -DVESSEL_GUEST=ON or set VESSEL_INITRD)";
  if (::access((p.rootfs + "/bin/busybox").c_str(), X_OK) != 0)
    return "no busybox rootfs at '" + p.rootfs +
           "' (build the busybox-rootfs target or set VESSEL_TEST_ROOTFS)";
  return std::nullopt;
}

void VmTest::SetUp() {
  if (::access(paths().vessel.c_str(), X_OK) != 0)
    GTEST_FAIL() << "no vessel binary at '" << paths().vessel << "' (set VESSEL_BIN)";
  if (needs_vm()) {
    if (auto reason = vm_unavailable_reason()) GTEST_SKIP() << "VM tests cannot run: " << *reason;
  }
  const char* tmp = ::getenv("TMPDIR");
  auto base = sys::make_temp_dir(tmp && *tmp ? tmp : "/tmp", "vessel-vmtest-");
  ASSERT_TRUE(base.ok()) << base.error().to_string();
  base_dir_ = *base;
  state_root_ = base_dir_ + "/state";
  scratch_dir_ = base_dir_ + "/scratch";
  ASSERT_TRUE(sys::make_dirs(scratch_dir_, 0700).ok());
}

void VmTest::TearDown() {
  if (base_dir_.empty()) return;  // skipped or failed before a root was made
  expect_no_leaks();
  kill_leftovers();
  if (HasFailure()) {
    for (size_t i = 0; i < runs_.size(); ++i) {
      const Record& rec = runs_[i];
      std::fprintf(stderr, "--- run %zu: %s\n    exit %d%s, stdout %zu bytes; stderr:\n%s\n", i + 1,
                   rec.command.c_str(), rec.result.exit_code,
                   rec.result.timed_out ? " (timed out, killed)" : "", rec.result.out.size(),
                   tail(rec.result.err, kReportTail).c_str());
    }
    // What each container's monitor and guest said: a hang shows here
    // which phase it stopped in (the CLI's stderr may be empty).
    std::string containers = state_root_ + "/containers";
    if (DIR* dir = ::opendir(containers.c_str())) {
      while (dirent* e = ::readdir(dir)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        for (const char* log : {"monitor.log", "boot.log"}) {
          auto text = sys::read_file(containers + "/" + name + "/" + log);
          if (!text.ok() || text->empty()) continue;
          std::fprintf(stderr, "--- %s of %.12s (tail):\n%s\n", log, name.c_str(),
                       tail(*text, 4096).c_str());
        }
      }
      ::closedir(dir);
    }
    if (!runs_.empty())
      std::fprintf(stderr,
                   "--- for the guest console, run again with VESSEL_TEST_DEBUG=1 (adds --debug:"
                   " the boot log goes to stderr, so stderr assertions may then fail)\n");
  }
  if (auto s = sys::remove_tree(base_dir_); !s.ok())
    ADD_FAILURE() << "remove the test's state root: " << s.error().to_string();
}

CliResult VmTest::run(const std::vector<std::string>& run_args, RunOptions options) {
  std::vector<std::string> args{"run"};
  args.insert(args.end(), run_args.begin(), run_args.end());
  CliResult r = vessel(args, std::move(options));
  expect_no_leaks();
  return r;
}

CliResult VmTest::vessel(const std::vector<std::string>& verb_args, RunOptions options) {
  std::vector<std::string> args{"--root", state_root_};
  const char* debug = ::getenv("VESSEL_TEST_DEBUG");
  if (debug && *debug && std::string(debug) != "0") args.push_back("--debug");
  args.insert(args.end(), verb_args.begin(), verb_args.end());
  // Marks every process this run starts (they inherit the environment),
  // for the leak check.
  options.env.push_back("VESSEL_TEST_STATE_ROOT=" + state_root_);
  CliResult r = run_cli(args, options);
  std::vector<std::string> shown{"vessel"};
  shown.insert(shown.end(), args.begin(), args.end());
  std::lock_guard lock(runs_mutex_);
  runs_.push_back({shell_quote(shown), r});
  EXPECT_FALSE(r.timed_out) << shell_quote(shown) << ": did not finish within "
                            << options.timeout.count() << " s";
  return r;
}

CliResult VmTest::run_busybox(const std::vector<std::string>& run_args, RunOptions options) {
  std::vector<std::string> args{"--rootfs", paths().rootfs};
  args.insert(args.end(), run_args.begin(), run_args.end());
  return run(args, std::move(options));
}

void VmTest::expect_no_leaks() {
  std::vector<std::string> left;
  auto deadline = Clock::now() + kLeakGrace;
  while (true) {
    left = find_processes(vm_process_names(), state_root_);
    if (left.empty() || Clock::now() >= deadline) break;
    ::usleep(100 * 1000);
  }
  for (const auto& p : left)
    ADD_FAILURE() << "left running after vessel exited: " << p;

  std::string run_dir = state_root_ + "/run";
  if (DIR* dir = ::opendir(run_dir.c_str())) {
    while (dirent* e = ::readdir(dir)) {
      std::string name = e->d_name;
      if (name != "." && name != "..")
        ADD_FAILURE() << "left behind in the state root: '" << run_dir << "/" << name << "'";
    }
    ::closedir(dir);
  }
}

void VmTest::kill_leftovers() {
  if (state_root_.empty()) return;
  // And the DNS servers of its networks (their pid files are under the root).
  std::vector<std::string> names = vm_process_names();
  names.push_back("dnsmasq");
  for (int i = 0; i < 50; ++i) {
    std::vector<int> pids = find_process_ids(names, state_root_);
    if (pids.empty()) return;
    for (int pid : pids)
      ::kill(pid, SIGKILL);
    ::usleep(100 * 1000);
  }
}

}  // namespace vessel::test
