#include "sys/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/strings.h"
#include "sys/fs.h"
#include "sys/host_cgroup.h"

namespace vessel::sys {
namespace {

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

ExitStatus decode_wait_status(int status) {
  ExitStatus s;
  if (WIFEXITED(status))
    s.code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    s.signal = WTERMSIG(status);
  return s;
}

// Runs in the forked child: only async-signal-safe calls until execve.
[[noreturn]] void exec_child(const SpawnOptions& o, const JailPlan* jail, char* const* argv,
                             char* const* envp, pid_t parent, int parent_pidfd, int err_fd,
                             const std::vector<std::string>& escape_cgroups) {
  auto fail = [&](int e) {
    ssize_t unused = ::write(err_fd, &e, sizeof e);
    (void)unused;
    ::_exit(127);
  };
  if (o.die_with_parent) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(errno);
    // Did the parent die before that? In a pid namespace of its own the
    // child sees no parent (getppid() is 0): its pidfd tells.
    if (jail) {
      pollfd pfd{parent_pidfd, POLLIN, 0};
      if (::poll(&pfd, 1, 0) != 0) ::_exit(127);
    } else if (::getppid() != parent) {
      ::_exit(127);
    }
  }
  if (o.new_process_group) ::setpgid(0, 0);
  if (o.no_huge_pages && ::prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) fail(errno);
  // A child that outlives us leaves our host cgroup (sys/host_cgroup.h);
  // "0" written to cgroup.procs moves the writer.
  for (const auto& procs : escape_cgroups) {
    int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t unused = ::write(fd, "0", 1);
    (void)unused;
    ::close(fd);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s = 1; s < NSIG; ++s)
    ::signal(s, SIG_DFL);
  if (jail) {
    // A negative errno: the jail failed, not the exec.
    if (int e = enter_jail(*jail); e != 0) fail(-e);
    // A change of uid clears the parent-death signal (commit_creds() in
    // kernel/cred.c): set it again, and look once more.
    if (o.die_with_parent) {
      if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(errno);
      pollfd pfd{parent_pidfd, POLLIN, 0};
      if (::poll(&pfd, 1, 0) != 0) ::_exit(127);
    }
  }
  if (o.keep_capabilities) {
    // Exec gives root the whole bounding set (capabilities(7)): drop what
    // is not kept from it, clear inheritable and ambient, and close the
    // way back through setuid binaries.
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capget, &hdr, data) == 0) {
      data[0].inheritable = data[1].inheritable = 0;
      ::syscall(SYS_capset, &hdr, data);
    }
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    for (int cap = 0; cap < 64; ++cap) {
      if (std::find(o.keep_capabilities->begin(), o.keep_capabilities->end(), cap) !=
          o.keep_capabilities->end())
        continue;
      if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL) break;  // past the last
    }
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(errno);
  }

  // Move every source fd above the highest target first, so that a dup2 onto
  // a target cannot clobber a source that is still to be used.
  int highest = 2;
  for (auto [child_fd, parent_fd] : o.fds)
    highest = std::max({highest, child_fd, parent_fd});
  int temp[64];
  size_t n = std::min<size_t>(o.fds.size(), 64);
  for (size_t i = 0; i < n; ++i) {
    temp[i] = ::fcntl(o.fds[i].second, F_DUPFD_CLOEXEC, highest + 1);
    if (temp[i] < 0) fail(errno);
  }
  bool mapped[3] = {false, false, false};
  for (size_t i = 0; i < n; ++i) {
    int target = o.fds[i].first;
    if (::dup2(temp[i], target) < 0) fail(errno);  // dup2 clears FD_CLOEXEC on target
    if (target <= 2) mapped[target] = true;
  }
  for (int fd = 0; fd <= 2; ++fd) {
    if (mapped[fd]) continue;
    int null = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (null < 0) fail(errno);
    if (null != fd) {
      ::dup2(null, fd);
      ::close(null);
    }
  }
  if (envp)
    ::execve(argv[0], argv, envp);
  else
    ::execv(argv[0], argv);
  fail(errno);
  ::_exit(127);  // not reached: fail() exits
}

}  // namespace

std::string ExitStatus::to_string() const {
  if (signal) return std::string("killed by signal ") + strsignal(signal);
  return "exited with code " + std::to_string(code);
}

Result<Process> Process::spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return Error(ErrorCode::kInvalidArgument, "spawn: empty argv");
  if (options.fds.size() > 64) return Error(ErrorCode::kInvalidArgument, "spawn: too many fds");
  std::vector<char*> argv;
  for (const auto& a : options.argv)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (options.env) {
    for (const auto& e : *options.env)
      envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Error::from_errno(errno, "pipe");
  UniqueFd err_read(pipe_fds[0]), err_write(pipe_fds[1]);

  pid_t parent = ::getpid();
  // Copied before the fork: the child only reads it.
  std::vector<std::string> escape;
  if (!options.die_with_parent) escape = outliving_child_cgroups();
  std::optional<JailPlan> jail;
  UniqueFd parent_pidfd, child_pidfd;
  pid_t pid;
  if (options.jail) {
    VESSEL_ASSIGN_OR_RETURN(jail, plan_jail(*options.jail));
    parent_pidfd.reset(pidfd_open(parent));
    if (!parent_pidfd) return Error::from_errno(errno, "pidfd_open");
    // clone3, not fork: the child starts in its new namespaces (a pid
    // namespace applies only to children) and the pidfd comes with it.
    int pidfd = -1;
    clone_args args{};
    args.flags = CLONE_PIDFD | jail_clone_flags(*jail);
    args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
    args.exit_signal = SIGCHLD;
    pid = static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
    if (pid > 0) child_pidfd.reset(pidfd);
  } else {
    pid = ::fork();
  }
  if (pid < 0) return Error::from_errno(errno, options.jail ? "clone3 (jail)" : "fork");
  if (pid == 0)
    exec_child(options, jail ? &*jail : nullptr, argv.data(), options.env ? envp.data() : nullptr,
               parent, parent_pidfd.get(), err_write.get(), escape);
  err_write.reset();

  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(err_read.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  UniqueFd pidfd = child_pidfd ? std::move(child_pidfd) : UniqueFd(pidfd_open(pid));
  Process p(pid, std::move(pidfd));
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    (void)p.wait();
    if (child_errno < 0)
      return Error::from_errno(-child_errno, "enter the jail of '" + options.argv[0] + "'");
    return Error::from_errno(child_errno, "execute '" + options.argv[0] + "'");
  }
  if (!p.pidfd_) return Error::from_errno(errno, "pidfd_open");
  return p;
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      status_(std::move(other.status_)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    reset();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    status_ = std::move(other.status_);
  }
  return *this;
}

Process::~Process() {
  reset();
}

void Process::reset() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int st;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
  pidfd_.reset();
  status_.reset();
}

Status Process::kill(int signo) {
  if (pid_ <= 0 || status_) return ok_status();
  if (::kill(pid_, signo) != 0 && errno != ESRCH) return Error::from_errno(errno, "kill");
  return ok_status();
}

std::optional<ExitStatus> Process::try_wait() {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  int st;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) status_ = decode_wait_status(st);
  return status_;
}

Result<ExitStatus> Process::wait(std::optional<std::chrono::milliseconds> timeout) {
  if (status_) return *status_;
  if (pid_ <= 0) return Error(ErrorCode::kFailedPrecondition, "wait: no process");
  if (timeout) {
    auto deadline = std::chrono::steady_clock::now() + *timeout;
    while (!try_wait()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return Error(ErrorCode::kTimeout, "wait: process still running");
      pollfd p{pidfd_.get(), POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(left.count()));
    }
    return *status_;
  }
  int st;
  pid_t r;
  do {
    r = ::waitpid(pid_, &st, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return Error::from_errno(errno, "waitpid");
  status_ = decode_wait_status(st);
  return *status_;
}

void Process::detach() {
  pid_ = -1;
  pidfd_.reset();
}

ProcessMemory parse_smaps_rollup(std::string_view text) {
  ProcessMemory m;
  const std::pair<std::string_view, uint64_t ProcessMemory::*> fields[] = {
      {"Rss:", &ProcessMemory::rss},
      {"Pss:", &ProcessMemory::pss},
      {"Pss_Anon:", &ProcessMemory::pss_anon},
      {"Pss_Shmem:", &ProcessMemory::pss_shmem},
      {"Anonymous:", &ProcessMemory::anonymous}};
  for (std::string_view line : split(text, '\n')) {
    for (const auto& [name, field] : fields) {
      if (!starts_with(line, name)) continue;
      std::string_view v = trim(line.substr(name.size()));
      if (auto space = v.find(' '); space != std::string_view::npos) v = v.substr(0, space);
      if (auto kib = parse_u64(v); kib && *kib < (UINT64_MAX >> 10)) m.*field = *kib << 10;
    }
  }
  return m;
}

Result<ProcessMemory> process_memory(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/smaps_rollup";
  VESSEL_ASSIGN_OR_RETURN(std::string text, read_file(path));
  return parse_smaps_rollup(text);
}

uint64_t shared_memory_file_bytes(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  uint64_t total = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string fd = dir + "/" + e->d_name;
    char target[256];
    ssize_t n = ::readlink(fd.c_str(), target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    struct stat st;
    if (::stat(fd.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (std::strncmp(target, "/memfd:", 7) != 0) {
      struct statfs fs;
      if (st.st_nlink != 0 || ::statfs(fd.c_str(), &fs) != 0 ||
          fs.f_type != static_cast<decltype(fs.f_type)>(TMPFS_MAGIC))
        continue;
    }
    total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  ::closedir(d);
  return total;
}

std::optional<std::string> find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return name;
    return std::nullopt;
  }
  const char* path = ::getenv("PATH");
  for (const auto& dir : split(path ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return std::nullopt;
}

Result<std::string> output_of(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::from_errno(errno, "pipe");
  UniqueFd rd(fds[0]), wr(fds[1]);
  VESSEL_ASSIGN_OR_RETURN(Process p, Process::spawn({.argv = argv, .fds = {{1, wr.get()}}}));
  wr.reset();
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(rd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1u << 20)) return Error(ErrorCode::kInternal, argv[0] + ": too much output");
  }
  VESSEL_ASSIGN_OR_RETURN(ExitStatus st, p.wait());
  if (st.code != 0 || st.signal != 0)
    return Error(
        ErrorCode::kInternal,
        "'" + argv[0] + (argv.size() > 1 ? " " + argv[1] : std::string()) + "' " + st.to_string());
  return out;
}

}  // namespace vessel::sys
