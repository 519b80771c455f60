#include "net/dns.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <thread>

#include "base/strings.h"
#include "base/unique_fd.h"
#include "sys/fs.h"
#include "sys/process.h"

namespace vessel::net {
namespace {

using namespace std::chrono_literals;

std::string pid_path(const DnsConfig& c) {
  return c.dir + "/dnsmasq.pid";
}
std::string hosts_path(const DnsConfig& c) {
  return c.dir + "/hosts";
}
std::string log_path(const DnsConfig& c) {
  return c.dir + "/dnsmasq.log";
}

// A name as dnsmasq takes it in a hosts file: letters, digits, '-', '_' and
// '.', not starting with a separator, at most 253 bytes. Anything else
// (whitespace, '#', a newline) would break or inject lines of the file.
bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 253 || n.front() == '.' || n.front() == '-') return false;
  for (char c : n) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// dnsmasq's options after argv[0]. Why each:
//  --conf-file=/dev/null      ignore a host's /etc/dnsmasq.conf and conf-dir
//  --keep-in-foreground       not given: dnsmasq daemonizes itself (double
//                             fork, setsid, chdir /) and its first process
//                             exits only once the daemon has bound its
//                             sockets and written the pid file, with an exit
//                             code and a message for any failure on the way
//  --pid-file                 how the next Vessel command finds it
//  --bind-interfaces, --listen-address, --interface, --except-interface=lo
//                             bind the gateway address only, never a
//                             wildcard: one dnsmasq per network side by side,
//                             and nothing on the host's other addresses
//  --no-hosts --addn-hosts    names from Vessel's file only, not /etc/hosts;
//                             SIGHUP re-reads it
//  --domain-needed            never forward a bare name: an unknown container
//                             name is NXDOMAIN here, not a query upstream
//  --local=/vessel.internal/  the domain is answered here only
//  --no-dhcp-interface        DNS only on the bridge (no DHCP, no TFTP)
//  --user=root --group=       do not switch user: the hosts file is in the
//                             state root, which only root may read. Instead
//                             the child's capabilities are cut to
//                             CAP_NET_BIND_SERVICE before exec (see spawn);
//                             an empty group skips dnsmasq's setgid("dip"),
//                             which would need CAP_SETGID
//  --cache-size               forwarded answers for the containers
//  --log-facility             startup, errors and reloads in the network's dir
// Upstream servers come from /etc/resolv.conf, dnsmasq's default, re-read
// when it changes.
std::vector<std::string> dnsmasq_options(const DnsConfig& c) {
  return {
      "--conf-file=/dev/null",
      "--pid-file=" + pid_path(c),
      "--bind-interfaces",
      "--listen-address=" + c.listen.to_string(),
      "--interface=" + c.bridge,
      "--except-interface=lo",
      "--no-hosts",
      "--addn-hosts=" + hosts_path(c),
      "--domain-needed",
      std::string("--local=/") + kDnsDomain + "/",
      "--no-dhcp-interface=" + c.bridge,
      "--user=root",
      "--group=",
      "--cache-size=1000",
      "--log-facility=" + log_path(c),
  };
}

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int pidfd_send_signal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// True once the process behind `pidfd` has exited (or within `timeout`).
bool wait_exit(int pidfd, std::chrono::milliseconds timeout) {
  pollfd p{pidfd, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  } while (r < 0 && errno == EINTR);
  return r > 0;
}

// The dnsmasq the pid file names, if it is alive and is the one of this
// directory: the pid alone may have been reused by anything.
struct Running {
  pid_t pid = 0;
  UniqueFd pidfd;  // signals go through it, so never to a reused pid
  std::vector<std::string> options;
};

std::optional<Running> find_running(const DnsConfig& c) {
  auto text = sys::read_file(pid_path(c), 64);
  if (!text) return std::nullopt;
  auto pid = parse_u64(trim(*text));
  if (!pid || *pid < 2 || *pid > 0x3fffffff) return std::nullopt;
  Running r;
  r.pid = static_cast<pid_t>(*pid);
  // Open the pidfd first and read the command line second: if the pid was
  // reused in between, the pidfd's process has exited, checked below.
  r.pidfd.reset(pidfd_open(r.pid));
  if (!r.pidfd) return std::nullopt;
  auto cmdline = sys::read_file("/proc/" + std::to_string(r.pid) + "/cmdline", 1 << 20);
  if (!cmdline || cmdline->empty()) {
    // Gone, a zombie, or exiting: the kernel drops the memory (and with it
    // the command line) before it closes the files, so let a dying dnsmasq
    // release port 53 before anyone starts the next one. (A kernel thread
    // that reused the pid costs this wait once; the file is then replaced.)
    if (cmdline) wait_exit(r.pidfd.get(), 500ms);
    return std::nullopt;
  }
  std::vector<std::string> argv = split(*cmdline, '\0');
  if (!argv.empty() && argv.back().empty()) argv.pop_back();  // the final NUL
  if (argv.empty()) return std::nullopt;
  bool ours = false;
  for (size_t i = 1; i < argv.size(); ++i)
    if (argv[i] == "--pid-file=" + pid_path(c)) ours = true;
  if (!ours || wait_exit(r.pidfd.get(), 0ms)) return std::nullopt;
  r.options.assign(argv.begin() + 1, argv.end());
  return r;
}

// Forks and execs dnsmasq with `options`, stdout to /dev/null and stderr to
// `log_fd`, and waits for that first process to exit: dnsmasq's own
// daemonizing makes that mean "serving" (exit 0) or "failed" (its exit code;
// the reason is in the log). Hand-rolled rather than sys::Process because
// the child must shed capabilities between fork and exec.
Result<int> run_dnsmasq(const std::string& program, const std::vector<std::string>& options,
                        int log_fd) {
  std::vector<std::string> args{program};
  args.insert(args.end(), options.begin(), options.end());
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  // dnsmasq needs no environment; a fixed one keeps the caller's out of it.
  char path_env[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  char* envp[] = {path_env, nullptr};

  pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno(errno, "fork");
  if (pid == 0) {
    // The child of a possibly multithreaded parent: system calls only.
    // Blocked signals and ignored dispositions survive exec; dnsmasq must
    // get its SIGHUP and SIGTERM whatever the caller blocks or ignores.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s = 1; s < NSIG; ++s)
      ::signal(s, SIG_DFL);
    // Root without switching user, so keep only what binding port 53 needs:
    // no inheritable or ambient capabilities, a bounding set of
    // CAP_NET_BIND_SERVICE (exec gives root the bounding set, see
    // capabilities(7)), and no way back through setuid binaries. Best
    // effort: a caller without CAP_SETPCAP has nothing to shed.
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capget, &hdr, data) == 0) {
      data[0].inheritable = data[1].inheritable = 0;
      ::syscall(SYS_capset, &hdr, data);
    }
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    for (int cap = 0; cap < 64; ++cap) {
      if (cap == CAP_NET_BIND_SERVICE) continue;
      if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL) break;  // past the last
    }
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    // Both sources above 2 first, so no dup2 below overwrites the other's
    // source should the caller have run with 0, 1 or 2 closed.
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    int high_null = null < 0 ? -1 : ::fcntl(null, F_DUPFD_CLOEXEC, 3);
    int high_log = ::fcntl(log_fd, F_DUPFD_CLOEXEC, 3);
    if (high_null < 0 || high_log < 0) ::_exit(127);
    if (::dup2(high_null, 0) < 0 || ::dup2(high_null, 1) < 0 || ::dup2(high_log, 2) < 0)
      ::_exit(127);
    ::syscall(SYS_close_range, 3u, ~0u, 0u);  // fds without O_CLOEXEC from libraries
    ::execve(argv[0], argv.data(), envp);
    ::_exit(127);
  }
  // dnsmasq's first process returns as soon as the daemon reports, in
  // milliseconds; the bound only guards against a hang.
  UniqueFd pidfd(pidfd_open(pid));
  if (pidfd && !wait_exit(pidfd.get(), 10s)) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return Error(ErrorCode::kTimeout, "dnsmasq did not finish starting within 10 s");
  }
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  // ECHILD: the caller ignores SIGCHLD, so the kernel reaped it and the
  // status is lost; the pid file check in start_dns decides instead.
  if (r < 0 && errno == ECHILD) return 0;
  if (r < 0) return Error::from_errno(errno, "waitpid");
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

// The last non-empty line dnsmasq wrote to its log: the reason it failed
// ("dnsmasq: failed to create listening socket for 10.88.0.1: Address in use").
std::string last_log_line(const DnsConfig& c) {
  auto text = sys::read_file(log_path(c), 1 << 20);
  if (!text) return "";
  std::string_view t = trim(*text);
  size_t nl = t.rfind('\n');
  return std::string(nl == std::string_view::npos ? t : t.substr(nl + 1));
}

Status start_dns(const DnsConfig& c) {
  std::string what = "start dnsmasq for '" + c.bridge + "'";
  std::optional<std::string> program = sys::find_program("dnsmasq");
  if (!program) program = sys::find_program("/usr/sbin/dnsmasq");
  if (!program)
    return Error(ErrorCode::kUnavailable, "dnsmasq not found (install Debian's dnsmasq-base)")
        .wrap(what);
  // A stale pid file would make the check below pass for nothing.
  if (::unlink(pid_path(c).c_str()) != 0 && errno != ENOENT)
    return Error::from_errno(errno, "remove '" + pid_path(c) + "'").wrap(what);
  // Truncated on each start: the log holds this run only, and stays small
  // (dnsmasq logs startup, errors and one line per reload).
  VESSEL_ASSIGN_OR_RETURN(UniqueFd log,
                          sys::open_fd(log_path(c), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644));
  auto code = run_dnsmasq(*program, dnsmasq_options(c), log.get());
  if (!code) return std::move(code).error().wrap(what);
  if (*code != 0) {
    // dnsmasq(8) EXIT CODES: 1 configuration, 2 network (address in use, no
    // such interface), 3 filesystem, 4 memory, 5 other; 127: exec failed.
    std::string why = last_log_line(c);
    if (why.empty()) why = "exited with code " + std::to_string(*code);
    return Error(*code <= 3 ? ErrorCode::kFailedPrecondition : ErrorCode::kInternal, why)
        .wrap(what);
  }
  // The daemon wrote the pid file before its first process exited; make
  // sure, since the caller takes "returned" as "serving".
  for (int i = 0; i < 100 && !find_running(c); ++i)
    std::this_thread::sleep_for(20ms);
  if (!find_running(c))
    return Error(ErrorCode::kInternal,
                 "dnsmasq exited 0 but is not running; see '" + log_path(c) + "'")
        .wrap(what);
  return ok_status();
}

}  // namespace

std::string render_hosts(const std::vector<DnsRecord>& records) {
  const std::string suffix = std::string(".") + kDnsDomain;
  std::string out = "# written by vessel: the containers of this network\n";
  for (const DnsRecord& r : records) {
    std::vector<std::string> names;
    auto add = [&](const std::string& n) {
      for (const auto& have : names)
        if (have == n) return;
      names.push_back(n);
    };
    for (const std::string& n : r.names) {
      if (!valid_name(n)) continue;  // sync_dns refuses these before writing
      if (n.size() > suffix.size() && n.ends_with(suffix)) {
        add(n);
        continue;
      }
      add(n);
      add(n + suffix);
    }
    if (names.empty()) continue;
    out += r.address.to_string() + "\t";
    for (size_t i = 0; i < names.size(); ++i)
      out += (i ? " " : "") + names[i];
    out += "\n";
  }
  return out;
}

Status sync_dns(const DnsConfig& config, const std::vector<DnsRecord>& records) {
  for (const DnsRecord& r : records)
    for (const std::string& n : r.names)
      if (!valid_name(n))
        return Error(ErrorCode::kInvalidArgument, "invalid DNS name '" + n + "' for " +
                                                      r.address.to_string() +
                                                      " (letters, digits, '-', '_' and '.')");
  if (records.empty()) return stop_dns(config);
  VESSEL_TRY(sys::write_file_atomic(hosts_path(config), render_hosts(records), 0644));
  if (auto running = find_running(config)) {
    if (running->options == dnsmasq_options(config)) {
      // dnsmasq re-reads --addn-hosts and clears its cache on SIGHUP. The
      // reload is asynchronous, typically done within a millisecond.
      if (pidfd_send_signal(running->pidfd.get(), SIGHUP) == 0) return ok_status();
      if (errno != ESRCH)
        return Error::from_errno(errno,
                                 "signal dnsmasq (pid " + std::to_string(running->pid) + ")");
    } else {
      // Started with other options (the bridge or address changed, or an
      // older Vessel): replace it.
      VESSEL_TRY(stop_dns(config));
    }
  }
  return start_dns(config);
}

Status stop_dns(const DnsConfig& config) {
  if (auto running = find_running(config)) {
    int fd = running->pidfd.get();
    std::string what = "stop dnsmasq (pid " + std::to_string(running->pid) + ")";
    if (pidfd_send_signal(fd, SIGTERM) != 0 && errno != ESRCH)
      return Error::from_errno(errno, what);
    if (!wait_exit(fd, 2s)) {
      if (pidfd_send_signal(fd, SIGKILL) != 0 && errno != ESRCH)
        return Error::from_errno(errno, what);
      if (!wait_exit(fd, 2s))
        return Error(ErrorCode::kTimeout, "still running 4 s after SIGTERM and SIGKILL").wrap(what);
    }
  }
  if (::unlink(pid_path(config).c_str()) != 0 && errno != ENOENT)
    return Error::from_errno(errno, "remove '" + pid_path(config) + "'");
  return ok_status();
}

bool dns_running(const DnsConfig& config) {
  return find_running(config).has_value();
}

}  // namespace vessel::net
