#include "guest/process.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "guest/capabilities.h"

namespace vessel::guest {
namespace {

// setgroups(2) takes gid_t; the protocol's groups are u32 and passed as is.
static_assert(std::is_same_v<gid_t, uint32_t>);

/// PATH when the process's environment has none (Docker's default).
constexpr std::string_view kDefaultPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the child failed before exec, sent to init with the errno.
enum class Stage : int32_t {
  kSession,
  kNamespace,
  kStdio,
  kChdir,
  kSetgroups,
  kSetgid,
  kSetuid,
  kExec,
  kUser,
  kCgroup,
  kCgroupNamespace,
  kRlimit,
  kCapBounding,
  kCapSets,
  kNoNewPrivs,
};

struct ChildReport {
  int32_t errnum = 0;
  int32_t stage = 0;
  int32_t detail = 0;  // kRlimit: the index in Spawn.rlimits; kCap*: the capability or -1
};

// Spawn.rlimits carries Linux's generic RLIMIT_* numbers (asm-generic/resource.h),
// which are glibc's on x86_64 and arm64.
static_assert(RLIMIT_CPU == 0 && RLIMIT_NOFILE == 7 && RLIMIT_AS == 9 && RLIMIT_RTTIME == 15 &&
              RLIMIT_NLIMITS == protocol::kRlimitResources);

std::string rlimit_value(uint64_t v) {
  return v == protocol::kRlimInfinity ? std::string("unlimited") : std::to_string(v);
}

/// "nofile=1024:2048", as --ulimit spells it.
std::string describe_rlimit(const protocol::Rlimit& l) {
  const char* known = protocol::rlimit_name(l.resource);
  std::string name = known ? known : "resource " + std::to_string(l.resource);
  return name + "=" + rlimit_value(l.soft) + ":" + rlimit_value(l.hard);
}

/// Checks what setrlimit(2) would refuse with a bare EINVAL, so that the
/// message can say which limit and why.
Status check_rlimits(const std::vector<protocol::Rlimit>& rlimits) {
  for (const protocol::Rlimit& l : rlimits) {
    if (l.resource >= RLIMIT_NLIMITS) {
      return Status(EINVAL, "ulimit: unknown resource number " + std::to_string(l.resource));
    }
    if (l.soft > l.hard) {
      return Status(EINVAL,
                    "ulimit " + describe_rlimit(l) + ": the soft limit is above the hard limit");
    }
  }
  return {};
}

/// The guest kernel's highest capability number, read once.
uint32_t cap_last() {
  static const uint32_t last = [] {
    Result<std::string> text = read_file("/proc/sys/kernel/cap_last_cap", 16);
    std::optional<uint32_t> v = text.ok() ? parse_cap_last(text.value()) : std::nullopt;
    // The headers' value when /proc cannot say (a kernel never older than them).
    return v ? *v : static_cast<uint32_t>(CAP_LAST_CAP);
  }();
  return last;
}

/// A new process's stdio. Init's ends (nonblocking) end up in Process; the
/// child's ends go onto its 0, 1 and 2, and init closes them after fork.
struct Stdio {
  UniqueFd pty_master;  // tty only; the child opens the slave through it
  int pty_number = -1;
  UniqueFd stdin_w, stdout_r, stderr_r;  // init's ends (dups of the master with a tty)
  UniqueFd stdin_r, stdout_w, stderr_w;  // the child's pipe ends; no stdin_r: /dev/null
};

/// Everything the child needs, computed before fork so that the child only
/// makes system calls.
struct ChildPlan {
  const protocol::Spawn* spec = nullptr;
  const Stdio* stdio = nullptr;
  int mount_ns = -1;
  int report_fd = -1;
  int cgroup_procs_fd = -1;              // the container cgroup's cgroup.procs, or -1
  int cgroup_dir_fd = -1;                // the container cgroup's directory, or -1
  const CapabilityPlan* caps = nullptr;  // Spawn.capabilities, checked; or none
  const char* cwd = "/";
  std::vector<std::string> candidates;
  std::vector<char*> argv;
  std::vector<char*> envp;
};

Status set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return Status::from_errno("fcntl");
  return {};
}

/// A close-on-exec pipe whose read end (`nonblocking_read`) or write end is
/// nonblocking: O_NONBLOCK belongs to the open file description, so only
/// init's end gets it, and the child's stays blocking as programs expect.
Status make_pipe(UniqueFd& read_end, UniqueFd& write_end, bool nonblocking_read) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return Status::from_errno("pipe");
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  return set_nonblocking(nonblocking_read ? fds[0] : fds[1]);
}

Result<UniqueFd> dup_cloexec(int fd) {
  UniqueFd copy(fcntl(fd, F_DUPFD_CLOEXEC, 3));
  if (!copy) return Status::from_errno("dup");
  return copy;
}

/// Allocates a pty on the container's own devpts instance.
Status open_terminal(const std::string& root, const protocol::Spawn& spec, Stdio& io) {
  std::string ptmx = root + "/dev/pts/ptmx";
  io.pty_master.reset(open(ptmx.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
  if (!io.pty_master) return Status::from_errno("open '/dev/pts/ptmx'");
  int master = io.pty_master.get();
  // grantpt(3) does nothing on devpts; unlockpt(3) and ptsname(3) are these
  // two ioctls (pty(7)).
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) return Status::from_errno("unlock the pty");
  if (ioctl(master, TIOCGPTN, &io.pty_number) < 0) return Status::from_errno("get the pty number");
  if (spec.rows != 0 || spec.cols != 0) {
    winsize ws{spec.rows, spec.cols, 0, 0};
    if (ioctl(master, TIOCSWINSZ, &ws) < 0) return Status::from_errno("set the window size");
  }
  // Output and input each get their own fd, so that EOF on one (closing it)
  // leaves the other and the master (kept for Resize) alone.
  Result<UniqueFd> out = dup_cloexec(master);
  if (!out.ok()) return out.status();
  Result<UniqueFd> in = dup_cloexec(master);
  if (!in.ok()) return in.status();
  io.stdout_r = out.take();
  io.stdin_w = in.take();
  return {};
}

Status open_pipes(const protocol::Spawn& spec, Stdio& io) {
  if (spec.stdin_open) {
    Status s = make_pipe(io.stdin_r, io.stdin_w, /*nonblocking_read=*/false);
    if (!s.ok()) return s;
  }
  Status s = make_pipe(io.stdout_r, io.stdout_w, /*nonblocking_read=*/true);
  if (!s.ok()) return s;
  return make_pipe(io.stderr_r, io.stderr_w, /*nonblocking_read=*/true);
}

/// PATH from the process's environment (the first entry, as getenv(3) finds).
std::string_view find_path(const std::vector<std::string>& env) {
  for (const std::string& entry : env) {
    if (entry.starts_with("PATH=")) return std::string_view(entry).substr(5);
  }
  return kDefaultPath;
}

/// The paths execve() tries for `file`, as execvp(3) does: `file` itself when
/// it contains a slash, else `file` in each PATH directory in order.
std::vector<std::string> exec_candidates(const std::string& file,
                                         const std::vector<std::string>& env) {
  if (file.find('/') != std::string::npos) return {file};
  std::vector<std::string> candidates;
  std::string_view path = find_path(env);
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string_view::npos) end = path.size();
    std::string dir(path.substr(start, end - start));
    // An empty entry means the current directory to execvp(3). Docker (Go's
    // exec.LookPath) refuses programs found relative to the cwd; skip it.
    if (!dir.empty()) {
      if (dir.back() != '/') dir += '/';
      candidates.push_back(dir + file);
    }
    start = end + 1;
  }
  return candidates;
}

/// A NULL-terminated array for execve() pointing into `strings`.
std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings)
    out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

/// False once clone3(2) turned out to lack CLONE_INTO_CGROUP (before 5.7).
bool g_clone_into_cgroup = true;

/// Forks as fork(2) does (0 in the child), with the child starting in the
/// cgroup of `cgroup_dir_fd` when it can: `joined` tells the child whether
/// it is there already or must move itself in through cgroup.procs.
///
/// Why: moving a process into a cgroup (a write to cgroup.procs) is a
/// migration, which write-locks cgroup_threadgroup_rwsem; unless cgroup2 is
/// mounted with favordynmods, that lock first waits for an RCU grace period
/// (percpu_down_write -> rcu_sync_enter, kernel/rcu/sync.c), ~45 ms per
/// spawn under TCG. A child created in the cgroup (clone3's
/// CLONE_INTO_CGROUP, cgroup_css_set_fork() in kernel/cgroup/cgroup.c)
/// takes that rwsem only for reading: no migration, no grace period.
///
/// clone3 has no glibc wrapper in Debian 12's glibc; with no stack and no
/// CLONE_VM the raw call returns twice like fork(2). glibc's own fork
/// bookkeeping (atfork handlers, malloc and stdio locks) is not needed:
/// vessel-init has one thread and no atfork handlers.
pid_t fork_into(int cgroup_dir_fd, bool& joined) {
  joined = false;
  if (cgroup_dir_fd >= 0 && g_clone_into_cgroup) {
    clone_args args{};
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = static_cast<uint64_t>(cgroup_dir_fd);
    long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid >= 0) {
      joined = true;
      return static_cast<pid_t>(pid);
    }
    // ENOSYS: no clone3 (before 5.3); E2BIG: a clone_args without the
    // cgroup field (5.3-5.6). Anything else, such as EAGAIN at the cgroup's
    // pids.max, falls back to fork and migration for this spawn, as before:
    // a migration ignores pids.max, so exec into a full container works.
    if (errno == ENOSYS || errno == E2BIG) g_clone_into_cgroup = false;
  }
  return fork();
}

/// In the child: joins the container's cgroup (unless fork_into() started
/// it there) and makes a cgroup namespace rooted there, as Docker gives on
/// cgroup v2: the process sees "0::/" in /proc/self/cgroup, matching its
/// /sys/fs/cgroup. Returns 0, or the errno with `stage` naming the step.
int enter_cgroup(int procs_fd, bool joined, Stage& stage) {
  if (procs_fd < 0) return 0;
  // Before anything is allocated for the program ("0" is the writer
  // itself; cgroup-v2.rst, "cgroup.procs").
  stage = Stage::kCgroup;
  if (!joined && !write_all(procs_fd, "0", 1)) return errno;
  stage = Stage::kCgroupNamespace;
  if (unshare(CLONE_NEWCGROUP) < 0) return errno;
  return 0;
}

// ---- the child, between fork and exec ----------------------------------------

[[noreturn]] void child_fail(int report_fd, Stage stage, int errnum, int32_t detail = 0) {
  ChildReport report{errnum, static_cast<int32_t>(stage), detail};
  // 12 bytes: a single pipe write, atomic (pipe(7), PIPE_BUF).
  write_all(report_fd, &report, sizeof(report));
  _exit(127);
}

/// Init blocks every signal and ignores SIGPIPE; both the mask and ignored
/// dispositions survive execve(2), so the child restores the defaults.
void reset_signals() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  // Fails, harmlessly, for SIGKILL, SIGSTOP and glibc's internal signals.
  for (int sig = 1; sig < NSIG; ++sig)
    sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

/// Puts `fd` on `target` without close-on-exec. Init keeps 0, 1 and 2 open
/// (the console), so every source fd is above 2 and none is overwritten
/// before it is used; fd == target is still handled.
bool move_onto(int fd, int target) {
  if (fd == target) {
    int flags = fcntl(fd, F_GETFD);
    return flags >= 0 && fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) == 0;
  }
  return dup2(fd, target) == target;
}

bool attach_terminal(const Stdio& io) {
  // TIOCGPTPEER opens the slave through the master, with no path lookup for
  // the container to redirect (ioctl_tty(2)). The container's /dev/pts/<n>
  // (we are in its namespace) is the fallback for kernels before 4.13.
  int slave = ioctl(io.pty_master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (slave < 0) {
    char path[32];
    std::snprintf(path, sizeof(path), "/dev/pts/%d", io.pty_number);
    slave = open(path, O_RDWR | O_NOCTTY);
  }
  if (slave < 0) return false;
  // The child is a session leader without a terminal (setsid() above): make
  // this its controlling terminal, so ^C and job control reach it.
  if (ioctl(slave, TIOCSCTTY, 0) < 0) return false;
  for (int fd = 0; fd < 3; ++fd) {
    if (!move_onto(slave, fd)) return false;
  }
  if (slave > 2) close(slave);
  return true;
}

bool attach_pipes(const Stdio& io) {
  int in = io.stdin_r.get();
  UniqueFd null_fd;
  if (in < 0) {
    // Opened here, inside the namespace: the container's own /dev/null.
    null_fd.reset(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!null_fd) return false;
    in = null_fd.get();
  }
  return move_onto(in, 0) && move_onto(io.stdout_w.get(), 1) && move_onto(io.stderr_w.get(), 2);
}

/// Gives the new stdio to the process's user, as runc does
/// (fixStdioPermissions), so that a non-root process can reopen it through
/// /dev/stdout or /proc/self/fd/1. /dev/null stays root's. Best effort.
void give_stdio_to(uid_t uid) {
  for (int fd = 0; fd < 3; ++fd) {
    struct stat st;
    if (fstat(fd, &st) < 0) continue;
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) continue;
    if (fchown(fd, uid, static_cast<gid_t>(-1)) < 0) continue;
  }
}

/// Tries each candidate as execvp(3) does. Returns (only on failure) the
/// errno to report: the first error that is not "not here", else EACCES if
/// some candidate was not executable, else ENOENT.
int exec_first(const ChildPlan& plan) {
  bool denied = false;
  for (const std::string& path : plan.candidates) {
    execve(path.c_str(), plan.argv.data(), plan.envp.data());
    int err = errno;
    switch (err) {
      case EACCES:
        denied = true;
        break;
      case ENOENT:
      case ENOTDIR:
      case ESTALE:
      case ENODEV:
      case ETIMEDOUT:
        break;
      default:
        return err;
    }
  }
  return denied ? EACCES : ENOENT;
}

/// Splits a passwd/group line into its ':' fields.
std::vector<std::string> colon_fields(const char* line) {
  std::vector<std::string> out(1);
  for (const char* c = line; *c; ++c) {
    if (*c == ':')
      out.emplace_back();
    else if (*c != '\n')
      out.back() += *c;
  }
  return out;
}

/// Parses a decimal id; false for anything else.
bool parse_id(const std::string& s, uint32_t& out) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > 0xfffffffeu) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

/// Calls `fn(fields)` for each line of a colon-separated database file.
template <typename Fn>
void for_each_entry(const char* path, Fn fn) {
  FILE* f = fopen(path, "re");
  if (!f) return;
  char* line = nullptr;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0)
    fn(colon_fields(line));
  free(line);
  fclose(f);
}

/// Resolves "user[:group]" in the container's /etc/passwd and /etc/group
/// (the child has joined the container's mount namespace), as runc does: a
/// numeric user need not exist, a name must. Returns 0 or ESRCH.
int resolve_user(const std::string& spec, uint32_t& uid, uint32_t& gid, std::vector<gid_t>& groups,
                 std::string& home) {
  std::string user = spec, group;
  if (auto colon = spec.find(':'); colon != std::string::npos) {
    user = spec.substr(0, colon);
    group = spec.substr(colon + 1);
  }
  bool numeric_user = parse_id(user, uid);
  bool found = false;
  std::string name;
  gid = 0;
  for_each_entry("/etc/passwd", [&](const std::vector<std::string>& f) {
    uint32_t id;
    if (found || f.size() < 4 || !parse_id(f[2], id)) return;
    if (numeric_user ? id != uid : f[0] != user) return;
    uid = id;
    if (!parse_id(f[3], gid)) gid = 0;
    name = f[0];
    if (f.size() >= 6) home = f[5];
    found = true;
  });
  if (!numeric_user && !found) return ESRCH;
  groups.clear();
  bool numeric_group = !group.empty() && parse_id(group, gid);
  bool group_found = group.empty() || numeric_group;
  for_each_entry("/etc/group", [&](const std::vector<std::string>& f) {
    uint32_t id;
    if (f.size() < 4 || !parse_id(f[2], id)) return;
    if (!group.empty() && !numeric_group && f[0] == group) {
      gid = id;
      group_found = true;
    }
    if (name.empty()) return;
    size_t start = 0;
    const std::string& members = f[3];
    while (start <= members.size()) {
      size_t end = members.find(',', start);
      if (end == std::string::npos) end = members.size();
      if (members.compare(start, end - start, name) == 0) groups.push_back(id);
      start = end + 1;
    }
  });
  return group_found ? 0 : ESRCH;
}

[[noreturn]] void run_child(const ChildPlan& plan, bool in_cgroup) {
  const protocol::Spawn& spec = *plan.spec;
  const int report = plan.report_fd;
  mark("spawn child: running");
  reset_signals();
  Stage stage = Stage::kCgroup;
  if (int e = enter_cgroup(plan.cgroup_procs_fd, in_cgroup, stage); e != 0) {
    child_fail(report, stage, e);
  }
  // A session (and process group) of its own; only a session leader can
  // take a controlling terminal.
  if (setsid() < 0) child_fail(report, Stage::kSession, errno);
  // Entering a mount namespace also moves root and cwd to its root (setns(2)).
  if (setns(plan.mount_ns, CLONE_NEWNS) < 0) child_fail(report, Stage::kNamespace, errno);
  mark("spawn child: cgroup, session, mount namespace");
  bool attached = spec.tty ? attach_terminal(*plan.stdio) : attach_pipes(*plan.stdio);
  if (!attached) child_fail(report, Stage::kStdio, errno);
  uint32_t uid = spec.uid, gid = spec.gid;
  std::vector<gid_t> groups(spec.groups.begin(), spec.groups.end());
  ChildPlan final_plan = plan;
  std::string home_entry;
  if (!spec.user.empty()) {
    std::string home;
    if (int e = resolve_user(spec.user, uid, gid, groups, home); e != 0) {
      child_fail(report, Stage::kUser, e);
    }
    // Docker sets HOME from the user's passwd entry unless the caller did
    // (the host leaves it out for users given by name).
    bool has_home = false;
    for (const auto& e : spec.env)
      has_home = has_home || e.rfind("HOME=", 0) == 0;
    if (!has_home) {
      home_entry = "HOME=" + (home.empty() ? std::string("/") : home);
      final_plan.envp.insert(final_plan.envp.end() - 1, home_entry.data());
    }
  }
  if (uid != 0) give_stdio_to(uid);
  if (chdir(plan.cwd) < 0) child_fail(report, Stage::kChdir, errno);
  // Still root here: raising a hard limit needs CAP_SYS_RESOURCE.
  for (size_t i = 0; i < spec.rlimits.size(); ++i) {
    const protocol::Rlimit& l = spec.rlimits[i];
    rlimit limit{static_cast<rlim_t>(l.soft), static_cast<rlim_t>(l.hard)};
    if (setrlimit(static_cast<__rlimit_resource_t>(l.resource), &limit) < 0) {
      child_fail(report, Stage::kRlimit, errno, static_cast<int32_t>(i));
    }
  }
  int32_t failed_cap = -1;
  // Dropping from the bounding set needs CAP_SETPCAP: before setuid.
  if (plan.caps) {
    if (int e = apply_bounding(*plan.caps, failed_cap); e != 0) {
      child_fail(report, Stage::kCapBounding, e, failed_cap);
    }
  }
  // Groups, then gid, then uid: each step needs the privilege the next drops.
  if (setgroups(groups.size(), groups.data()) < 0) child_fail(report, Stage::kSetgroups, errno);
  if (setgid(gid) < 0) child_fail(report, Stage::kSetgid, errno);
  if (setuid(uid) < 0) child_fail(report, Stage::kSetuid, errno);
  if (plan.caps) {
    if (int e = apply_sets(*plan.caps, failed_cap); e != 0) {
      child_fail(report, Stage::kCapSets, e, failed_cap);
    }
  }
  if (spec.no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    child_fail(report, Stage::kNoNewPrivs, errno);
  }
  mark("spawn child: exec");
  child_fail(report, Stage::kExec, exec_first(final_plan));
}

// ---- init's side ---------------------------------------------------------------

/// The SpawnResult message for an exec failure, worded as Docker words it.
std::string exec_message(const std::string& file, int errnum) {
  std::string message = "exec \"" + file + "\": ";
  if (errnum == ENOENT && file.find('/') == std::string::npos) {
    return message + "executable file not found in $PATH";
  }
  return message + lower_strerror(errnum);
}

Status child_failure(const protocol::Spawn& spec, const char* cwd, const ChildReport& report) {
  // A failed system call always sets errno; guard anyway, since errnum 0
  // would read as success.
  int err = report.errnum > 0 ? report.errnum : EIO;
  switch (static_cast<Stage>(report.stage)) {
    case Stage::kSession:
      return Status::from_errno(err, "setsid");
    case Stage::kNamespace:
      return Status::from_errno(err, "join the container mount namespace");
    case Stage::kStdio:
      return Status::from_errno(err, spec.tty ? "open the terminal" : "set up stdio");
    case Stage::kChdir:
      return Status::from_errno(err, std::string("chdir '") + cwd + "'");
    case Stage::kSetgroups:
      return Status::from_errno(err, "setgroups");
    case Stage::kSetgid:
      return Status::from_errno(err, "setgid " + std::to_string(spec.gid));
    case Stage::kSetuid:
      return Status::from_errno(err, "setuid " + std::to_string(spec.uid));
    case Stage::kExec:
      return Status(err, exec_message(spec.argv[0], err));
    case Stage::kUser:
      // Docker's wording; ESRCH keeps it apart from "command not found".
      return Status(err, "unable to find user '" + spec.user +
                             "': no matching entries in passwd or group file");
    case Stage::kCgroup:
      return Status::from_errno(err, "join the container cgroup");
    case Stage::kCgroupNamespace:
      return Status::from_errno(err, "create a cgroup namespace");
    case Stage::kRlimit: {
      if (report.detail < 0 || static_cast<size_t>(report.detail) >= spec.rlimits.size()) break;
      const protocol::Rlimit& l = spec.rlimits[static_cast<size_t>(report.detail)];
      std::string what = "set ulimit " + describe_rlimit(l);
      // setrlimit(2): EPERM for a nofile hard limit above fs.nr_open too.
      if (err == EPERM && l.resource == RLIMIT_NOFILE) {
        return Status(err, what + ": above the kernel's maximum (fs.nr_open)");
      }
      return Status::from_errno(err, what);
    }
    case Stage::kCapBounding: {
      const char* name = protocol::capability_name(static_cast<uint32_t>(report.detail));
      if (report.detail < 0 || !name) return Status::from_errno(err, "set PR_SET_KEEPCAPS");
      return Status::from_errno(err, std::string("drop ") + name + " from the bounding set");
    }
    case Stage::kCapSets: {
      const char* name = protocol::capability_name(static_cast<uint32_t>(report.detail));
      if (report.detail < 0 || !name) return Status::from_errno(err, "set the capabilities");
      return Status::from_errno(err, std::string("raise ambient ") + name);
    }
    case Stage::kNoNewPrivs:
      return Status::from_errno(err, "set no_new_privs");
  }
  return Status::from_errno(err, "start process");
}

/// Reads the child's report: 0 bytes (EOF: the close-on-exec write end was
/// closed by a successful execve), a whole report, or -1 if neither.
ssize_t read_report(int fd, ChildReport& report) {
  char* p = reinterpret_cast<char*>(&report);
  size_t got = 0;
  while (got < sizeof(report)) {
    ssize_t n = read(fd, p + got, sizeof(report) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got == 0 || got == sizeof(report) ? static_cast<ssize_t>(got) : -1;
}

void wait_for(pid_t pid) {
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

// ---- internal tasks ----------------------------------------------------------

[[noreturn]] void task_fail(int report_fd, const Status& status) {
  // errnum then the message, in one write below PIPE_BUF: atomic (pipe(7)).
  char buf[1024];
  int32_t errnum = status.errnum() > 0 ? status.errnum() : EIO;
  size_t n = std::min(status.message().size(), sizeof(buf) - sizeof(errnum));
  std::memcpy(buf, &errnum, sizeof(errnum));
  std::memcpy(buf + sizeof(errnum), status.message().data(), n);
  write_all(report_fd, buf, sizeof(errnum) + n);
  _exit(127);
}

[[noreturn]] void run_task_child(Task& task, const Stdio& io, int mount_ns, int cgroup_procs_fd,
                                 bool in_cgroup, int report_fd) {
  reset_signals();
  Stage stage = Stage::kCgroup;
  if (int e = enter_cgroup(cgroup_procs_fd, in_cgroup, stage); e != 0) {
    task_fail(report_fd,
              Status::from_errno(e, stage == Stage::kCgroup ? "join the container cgroup"
                                                            : "create a cgroup namespace"));
  }
  if (setsid() < 0) task_fail(report_fd, Status::from_errno("setsid"));
  if (setns(mount_ns, CLONE_NEWNS) < 0) {
    task_fail(report_fd, Status::from_errno("join the container mount namespace"));
  }
  if (!attach_pipes(io)) task_fail(report_fd, Status::from_errno("set up stdio"));
  // No exec will close init's descriptors (the port, other processes'
  // pipes, whose EOF would wait for this child): keep 0-2 and the report.
  if (report_fd != 3 && dup2(report_fd, 3) != 3) {
    task_fail(report_fd, Status::from_errno("move the report pipe"));
  }
  close_range(4, ~0u, 0);
  Status prepared = task.prepare();
  if (!prepared.ok()) task_fail(3, prepared);
  close(3);  // EOF on the report pipe: started
  _exit(task.run());
}

}  // namespace

Result<Process> spawn_task(Task& task, const Container& container, const ContainerCgroup& cgroup) {
  protocol::Spawn spec;
  spec.stdin_open = task.reads_stdin();
  Stdio io;
  if (Status s = open_pipes(spec, io); !s.ok()) return s;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return Status::from_errno("pipe");
  UniqueFd report_r(fds[0]);
  UniqueFd report_w(fds[1]);

  bool in_cgroup = false;
  pid_t pid = fork_into(cgroup.dir_fd(), in_cgroup);
  if (pid < 0) return Status::from_errno("fork");
  if (pid == 0) {
    run_task_child(task, io, container.mount_ns(), cgroup.procs_fd(), in_cgroup, report_w.get());
  }
  report_w.reset();
  io.stdin_r.reset();
  io.stdout_w.reset();
  io.stderr_w.reset();

  // Nothing (EOF): prepared; else errnum and message.
  std::string report;
  char buf[1024];
  for (;;) {
    ssize_t n = read(report_r.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    report.append(buf, static_cast<size_t>(n));
  }
  if (!report.empty()) {
    wait_for(pid);
    if (report.size() < sizeof(int32_t)) return Status(EIO, "start: lost the child's report");
    int32_t errnum = 0;
    std::memcpy(&errnum, report.data(), sizeof(errnum));
    return Status(errnum > 0 ? errnum : EIO, report.substr(sizeof(errnum)));
  }
  Process process;
  process.pid = pid;
  process.stdout_fd = std::move(io.stdout_r);
  process.stderr_fd = std::move(io.stderr_r);
  process.in.fd = std::move(io.stdin_w);
  return process;
}

std::vector<std::string> command_candidates(const std::string& file,
                                            const std::vector<std::string>& env) {
  return exec_candidates(file, env);
}

Result<Process> spawn_process(const protocol::Spawn& spec, const Container& container,
                              const ContainerCgroup& cgroup) {
  if (Status s = check_rlimits(spec.rlimits); !s.ok()) return s;
  CapabilityPlan caps;
  if (spec.capabilities) {
    if (Status s = plan_capabilities(*spec.capabilities, cap_last(), caps); !s.ok()) return s;
  }
  Stdio io;
  Status s = spec.tty ? open_terminal(container.root(), spec, io) : open_pipes(spec, io);
  if (!s.ok()) return s;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return Status::from_errno("pipe");
  UniqueFd report_r(fds[0]);
  UniqueFd report_w(fds[1]);

  ChildPlan plan;
  plan.spec = &spec;
  plan.stdio = &io;
  plan.mount_ns = container.mount_ns();
  plan.report_fd = report_w.get();
  plan.cgroup_procs_fd = cgroup.procs_fd();
  plan.cgroup_dir_fd = cgroup.dir_fd();
  if (spec.capabilities) plan.caps = &caps;
  if (!spec.cwd.empty()) plan.cwd = spec.cwd.c_str();
  plan.candidates = exec_candidates(spec.argv[0], spec.env);
  plan.argv = c_strings(spec.argv);
  plan.envp = c_strings(spec.env);

  bool in_cgroup = false;
  pid_t pid = fork_into(plan.cgroup_dir_fd, in_cgroup);
  if (pid < 0) return Status::from_errno("fork");
  if (pid == 0) run_child(plan, in_cgroup);

  // Close our copies of the child's ends: the report pipe must reach EOF
  // when the child execs, and the stdio pipes when the process exits.
  report_w.reset();
  io.stdin_r.reset();
  io.stdout_w.reset();
  io.stderr_w.reset();

  ChildReport report;
  ssize_t got = read_report(report_r.get(), report);
  if (got != 0) {
    if (got < 0) kill(pid, SIGKILL);
    wait_for(pid);
    if (got < 0) return Status(EIO, "start process: lost the child's report");
    return child_failure(spec, plan.cwd, report);
  }

  Process process;
  process.pid = pid;
  process.pty = std::move(io.pty_master);
  process.stdout_fd = std::move(io.stdout_r);
  process.stderr_fd = std::move(io.stderr_r);
  process.in.fd = std::move(io.stdin_w);
  process.in.tty = spec.tty != 0;
  return process;
}

}  // namespace vessel::guest
