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

// Runs dnsmasq with `options`, stderr to `log_fd`, and waits for that first
// process to exit: dnsmasq's own daemonizing makes that mean "serving"
// (exit 0) or "failed" (its exit code; the reason is in the log). It stays
// root without switching user (the state root is 0700, so the `nobody`
// user could not read the hosts file), so it keeps only the capability that
// binding port 53 needs, with a fixed environment.
Result<int> run_dnsmasq(const std::string& program, const std::vector<std::string>& options,
                        int log_fd) {
  sys::SpawnOptions o;
  o.argv = {program};
  o.argv.insert(o.argv.end(), options.begin(), options.end());
  o.fds = {{2, log_fd}};
  o.env = std::vector<std::string>{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  o.keep_capabilities = std::vector<int>{CAP_NET_BIND_SERVICE};
  // The daemon outlives us by design; the first process exits at once.
  o.die_with_parent = false;
  VESSEL_ASSIGN_OR_RETURN(sys::Process p, sys::Process::spawn(o));
  // dnsmasq's first process returns as soon as the daemon reports, in
  // milliseconds; the bound only guards against a hang.
  auto status = p.wait(10s);
  if (!status) {
    if (status.error().code() == ErrorCode::kTimeout)
      return Error(ErrorCode::kTimeout, "dnsmasq did not finish starting within 10 s");
    return status.error();
  }
  return status->shell_code();
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
