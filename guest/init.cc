// vessel-init: PID 1 of every Vessel VM and the only program in its
// initramfs. It boots in two stages:
//
//   stage 1  (the kernel's /init, on the initramfs rootfs) mounts a tmpfs
//            and makes it the root;
//   stage 2  (the same process, its root now the tmpfs) mounts the system filesystems,
//            opens the agent port and serves the host (agent.h) until told
//            to power off. The network, loopback included, is configured by
//            Setup (net.h).
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "base/unique_fd.h"
#include "guest/agent.h"
#include "guest/system.h"
#include "protocol/protocol.h"

namespace vessel::guest {
namespace {

constexpr char kNewRoot[] = "/newroot";
/// How long the agent port may take to appear: virtio-serial ports, and
/// their names, arrive through the device's control queue after the driver
/// probes, possibly after init has started.
constexpr int64_t kPortWaitMs = 5000;

// ---- stage 1 --------------------------------------------------------------------

/// Builds the tmpfs root at kNewRoot: the mount points stage 2 uses
/// and /dev/console (stage 2 mounts devtmpfs over /dev, but the node lets it
/// log should that fail).
Status populate_new_root() {
  std::string root = kNewRoot;
  Status s = ensure_dir(root, 0755);
  if (!s.ok()) return s;
  s = mount_fs("tmpfs", root, "tmpfs", 0, "mode=0755", "mount tmpfs on '/newroot'");
  if (!s.ok()) return s;
  for (const char* dir : {"/dev", "/proc", "/sys", "/run"}) {
    s = ensure_dir(root + dir, 0755);
    if (!s.ok()) return s;
  }
  s = ensure_dir(root + "/tmp", 01777);
  if (!s.ok()) return s;
  if (mknod((root + "/dev/console").c_str(), S_IFCHR | 0600, makedev(5, 1)) < 0) {
    return Status::from_errno("mknod '/dev/console'");
  }
  return {};
}

/// Stage 1. pivot_root(2) cannot move away from the initramfs: "The rootfs
/// (initial ramfs) cannot be pivot_root()ed" (pivot_root(2), NOTES), since
/// rootfs has no parent mount. Every container needs pivot_root in its own
/// mount namespace, so init first moves onto a tmpfs mounted over "/", as
/// switch_root(8) and LinuxKit's init do. It does not re-execute itself
/// there (switch_root execs the next init; this is the same program): the
/// running image stays mapped from the initramfs file, whose pages the
/// mapping keeps after the unlink below, and a re-exec cost 30-37 ms of a
/// start under TCG (a 1.2 MB copy, an exec and a second static start-up).
void leave_initramfs() {
  Status s = populate_new_root();
  if (!s.ok()) {
    log_error("stage 1: %s", s.message().c_str());
    power_off();
  }
  // Nothing runs /init again; its pages go with this process's mapping
  // (rootfs is never unmounted).
  unlink("/init");
  if (chdir(kNewRoot) < 0 || mount(".", "/", nullptr, MS_MOVE, nullptr) < 0 || chroot(".") < 0 ||
      chdir("/") < 0) {
    log_error("stage 1: switch to the tmpfs root: %s", std::strerror(errno));
    power_off();
  }
}

// ---- stage 2 --------------------------------------------------------------------

/// Blocks every signal: SIGCHLD is read from a signalfd, and the rest must
/// not interrupt init (the kernel sends SIGINT on ctrl-alt-del, for one).
/// SIGPIPE is also ignored, so a write to a closed pipe returns EPIPE.
void block_signals() {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

/// Mounts the filesystems init itself needs. Failures are logged and boot
/// goes on: a missing /sys/fs/cgroup should not cost the whole VM.
void mount_system_filesystems() {
  constexpr unsigned long kNoSuidDevExec = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  struct Mount {
    const char* type;
    const char* target;
    unsigned long flags;
    const char* data;
  };
  const Mount mounts[] = {
      {"proc", "/proc", kNoSuidDevExec, nullptr},
      {"sysfs", "/sys", kNoSuidDevExec, nullptr},
      {"devtmpfs", "/dev", MS_NOSUID, "mode=0755"},
      {"devpts", "/dev/pts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666"},
      {"tmpfs", "/run", MS_NOSUID | MS_NODEV, "mode=0755"},
      {"cgroup2", "/sys/fs/cgroup", kNoSuidDevExec, nullptr},
  };
  for (const Mount& m : mounts) {
    Status s = ensure_dir(m.target, 0755);
    if (s.ok()) {
      s = mount_fs(m.type, m.target, m.type, m.flags, m.data,
                   std::string("mount ") + m.type + " on '" + m.target + "'");
    }
    if (!s.ok()) log_error("%s", s.message().c_str());
  }
}

/// Points 0, 1 and 2 at /dev/console. They must be open whatever happens:
/// spawn_process() relies on every fd it creates being above 2.
void attach_console() {
  UniqueFd console(open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!console) console.reset(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!console) return;  // then 0-2 are whatever the kernel gave us
  for (int fd = 0; fd < 3; ++fd)
    dup2(console.get(), fd);
}

/// Enables every available controller for child cgroups, so that the host
/// can later limit processes. Best effort: not every kernel has every one.
void enable_cgroup_controllers() {
  Result<std::string> available = read_file("/sys/fs/cgroup/cgroup.controllers");
  if (!available.ok()) return;
  std::string_view list = available.value();
  std::vector<std::string> enables;
  std::string all;
  size_t start = 0;
  while (start < list.size()) {
    size_t end = list.find_first_of(" \n", start);
    if (end == std::string_view::npos) end = list.size();
    if (end > start) {
      enables.push_back("+" + std::string(list.substr(start, end - start)));
      all += (all.empty() ? "" : " ") + enables.back();
    }
    start = end + 1;
  }
  // All in one write (each write to subtree_control is a cgroup tree
  // update, slow under emulation); a write naming several fails whole if
  // one fails, so then one write each.
  const char* control = "/sys/fs/cgroup/cgroup.subtree_control";
  if (all.empty() || write_file(control, all, 0644).ok()) return;
  for (const auto& enable : enables) {
    Status ignored = write_file(control, enable, 0644);
    (void)ignored;
  }
}

Result<UniqueFd> open_sigchld_fd() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  UniqueFd fd(signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd) return Status::from_errno("signalfd");
  return fd;
}

/// One look for the agent port: the /sys/class/virtio-ports entry whose
/// name is kPortName, opened through its /dev node. Returns an invalid fd if
/// it is not there yet.
UniqueFd try_open_agent_port() {
  constexpr char kPorts[] = "/sys/class/virtio-ports";
  DIR* dir = opendir(kPorts);
  if (dir == nullptr) return UniqueFd();
  UniqueFd port;
  while (dirent* entry = readdir(dir)) {
    std::string_view name = entry->d_name;
    if (!name.starts_with("vport")) continue;
    Result<std::string> port_name = read_file(std::string(kPorts) + "/" + entry->d_name + "/name");
    if (!port_name.ok()) continue;
    std::string_view value = port_name.value();
    while (!value.empty() && (value.back() == '\n' || value.back() == ' '))
      value.remove_suffix(1);
    if (value != protocol::kPortName) continue;
    // The /dev node may lag the sysfs entry (devtmpfs creates it
    // asynchronously); if so the caller tries again.
    port.reset(open((std::string("/dev/") + entry->d_name).c_str(),
                    O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    break;
  }
  closedir(dir);
  return port;
}

Result<UniqueFd> open_agent_port() {
  int64_t deadline = monotonic_ms() + kPortWaitMs;
  for (;;) {
    UniqueFd port = try_open_agent_port();
    if (port) return port;
    if (monotonic_ms() >= deadline) {
      return Status(ENODEV, "no virtio-serial port named '" + std::string(protocol::kPortName) +
                                "' after " + std::to_string(kPortWaitMs / 1000) + " s");
    }
    sleep_ms(10);
  }
}

std::string describe_guest() {
  std::string description = "vessel-init; linux ";
  utsname u;
  description += uname(&u) == 0 ? u.release : "unknown";
  return description;
}

[[noreturn]] void run_stage2() {
  block_signals();
  mount_system_filesystems();
  mark("system filesystems");
  attach_console();
  // The container's root, mounted by a child while this process makes the
  // cgroups, opens the port and waits for the Setup (~30 ms under TCG).
  if (Result<std::string> cmdline = read_file("/proc/cmdline", 4096); cmdline.ok())
    start_early_root(cmdline.value());
  enable_cgroup_controllers();
  mark("controllers enabled");
  // Made at boot rather than at Setup, so that Stats works from the start.
  Result<ContainerCgroup> cgroup = ContainerCgroup::create();
  if (!cgroup.ok()) log_error("container cgroup: %s", cgroup.status().message().c_str());
  Result<UniqueFd> sigchld = open_sigchld_fd();
  if (!sigchld.ok()) {
    log_error("%s; powering off", sigchld.status().message().c_str());
    power_off();
  }
  mark("cgroups");
  Result<UniqueFd> port = open_agent_port();
  mark("agent port open");
  if (!port.ok()) {
    log_error("%s; powering off", port.status().message().c_str());
    power_off();
  }
  Agent agent(port.take(), sigchld.take(), cgroup.take());
  agent.run(describe_guest());
}

}  // namespace
}  // namespace vessel::guest

int main() {
  using namespace vessel::guest;
  if (getpid() != 1) {
    std::fprintf(stderr,
                 "usage: vessel-init\n"
                 "The init (PID 1) of a Vessel VM; it runs only as the VM's first process.\n");
    return 2;
  }
  mark("init started");
  leave_initramfs();
  mark("on the tmpfs root");
  run_stage2();
}
