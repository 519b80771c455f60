#include "sys/jail.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <set>

namespace vessel::sys {
namespace {

bool has_dot_dot(const std::string& path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (path.compare(start, end - start, "..") == 0) return true;
    start = end + 1;
  }
  return false;
}

Status check_target(const std::string& target) {
  if (target.size() < 2 || target[0] != '/' || has_dot_dot(target) ||
      target.find('\0') != std::string::npos)
    return Error(ErrorCode::kInvalidArgument,
                 "jail: '" + target + "' is not an absolute path below the jail's root");
  return ok_status();
}

// Every ancestor of `path` (absolute, inside the jail) below the root.
void add_parents(const std::string& path, std::set<std::string>& dirs) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1))
    dirs.insert(path.substr(0, slash));
}

}  // namespace

Result<JailPlan> plan_jail(const Jail& jail) {
  if (jail.mountpoint.empty() || jail.mountpoint[0] != '/')
    return Error(ErrorCode::kInvalidArgument,
                 "jail: mountpoint '" + jail.mountpoint + "' is not an absolute path");
  if (jail.uid == 0 || jail.gid == 0)
    return Error(ErrorCode::kInvalidArgument, "jail: the uid and gid must not be root's");
  JailPlan plan;
  plan.mountpoint = jail.mountpoint;
  plan.uid = jail.uid;
  plan.gid = jail.gid;
  plan.groups = jail.groups;
  plan.new_network = jail.new_network;
  plan.hostname = jail.hostname;
  std::set<std::string> dirs;  // inside the jail; ordered: parents first
  std::set<std::string> targets;
  for (const JailBind& b : jail.binds) {
    VESSEL_TRY(check_target(b.target));
    if (!targets.insert(b.target).second)
      return Error(ErrorCode::kInvalidArgument, "jail: '" + b.target + "' is bound twice");
    struct stat st;
    if (::stat(b.source.c_str(), &st) != 0)
      return Error::from_errno(errno, "jail: bind '" + b.source + "'");
    JailPlan::Mount m;
    m.source = b.source;
    m.target = jail.mountpoint + b.target;
    m.is_dir = S_ISDIR(st.st_mode);
    m.device = b.device;
    if (b.device && !S_ISCHR(st.st_mode))
      return Error(ErrorCode::kInvalidArgument,
                   "jail: '" + b.source + "' is not a character device");
    add_parents(b.target, dirs);
    if (m.is_dir) dirs.insert(b.target);
    plan.mounts.push_back(std::move(m));
  }
  for (const JailNode& n : jail.nodes) {
    VESSEL_TRY(check_target(n.target));
    if (n.target.size() <= 5 || n.target.rfind('/') != 4 || !n.target.starts_with("/dev/"))
      return Error(ErrorCode::kInvalidArgument,
                   "jail: device node '" + n.target + "' is not directly in /dev");
    if (!targets.insert(n.target).second)
      return Error(ErrorCode::kInvalidArgument, "jail: '" + n.target + "' is made twice");
    plan.dev_dir = jail.mountpoint + "/dev";
    dirs.insert("/dev");
    plan.nodes.emplace_back(jail.mountpoint + n.target, n.rdev);
  }
  for (const JailTmpfs& t : jail.tmpfs) {
    VESSEL_TRY(check_target(t.target));
    if (!targets.insert(t.target).second)
      return Error(ErrorCode::kInvalidArgument, "jail: '" + t.target + "' is mounted twice");
    if (t.size_bytes == 0)
      return Error(ErrorCode::kInvalidArgument, "jail: tmpfs '" + t.target + "' has no size");
    add_parents(t.target, dirs);
    dirs.insert(t.target);
    JailPlan::Tmpfs m;
    m.target = jail.mountpoint + t.target;
    m.plain_options = "mode=0700,nr_inodes=64,uid=" + std::to_string(jail.uid) +
                      ",gid=" + std::to_string(jail.gid) + ",size=" + std::to_string(t.size_bytes);
    m.options = m.plain_options;
    if (t.huge && ::access("/sys/kernel/mm/transparent_hugepage", F_OK) == 0)
      m.options += ",huge=within_size";
    plan.tmpfs.push_back(std::move(m));
  }
  for (const auto& [target, link] : jail.symlinks) {
    VESSEL_TRY(check_target(link));
    add_parents(link, dirs);
    plan.symlinks.emplace_back(target, jail.mountpoint + link);
  }
  for (const auto& d : dirs)
    plan.dirs.push_back(jail.mountpoint + d);
  return plan;
}

Status drop_capabilities(const std::vector<int>& caps) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &hdr, data) != 0) return Error::from_errno(errno, "capget");
  for (int cap : caps) {
    if (cap < 0 || cap >= 64) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
      return Error::from_errno(errno, "drop capability " + std::to_string(cap));
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, cap, 0, 0);
    uint32_t bit = 1u << (cap % 32);
    data[cap / 32].effective &= ~bit;
    data[cap / 32].permitted &= ~bit;
    data[cap / 32].inheritable &= ~bit;
  }
  if (::syscall(SYS_capset, &hdr, data) != 0) return Error::from_errno(errno, "capset");
  return ok_status();
}

unsigned long jail_clone_flags(const JailPlan& plan) {
  unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
  if (plan.new_network) flags |= CLONE_NEWNET;
  return flags;
}

// Runs in the child between clone and execve: system calls only. The uid
// and group changes are raw system calls: glibc's wrappers would try to
// signal the parent's other threads (which this child does not have) to
// change their credentials too.
int enter_jail(const JailPlan& p) {
  // Nothing mounted here may reach the monitor's namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return errno;
  if (::mount("jail", p.mountpoint.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0755,size=256k,nr_inodes=4096") != 0)
    return errno;
  for (const auto& d : p.dirs) {
    if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) return errno;
  }
  // Device nodes need a mount without nodev: /dev is a tmpfs of its own.
  if (!p.dev_dir.empty()) {
    if (::mount("jail-dev", p.dev_dir.c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC,
                "mode=0755,size=16k,nr_inodes=64") != 0)
      return errno;
    for (const auto& [path, rdev] : p.nodes) {
      if (::mknod(path.c_str(), S_IFCHR | 0600, rdev) != 0) return errno;
      if (::chown(path.c_str(), p.uid, p.gid) != 0) return errno;
    }
  }
  for (const auto& t : p.tmpfs) {
    constexpr unsigned long kFlags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (::mount("jail-tmpfs", t.target.c_str(), "tmpfs", kFlags, t.options.c_str()) != 0 &&
        (errno != EINVAL ||
         ::mount("jail-tmpfs", t.target.c_str(), "tmpfs", kFlags, t.plain_options.c_str()) != 0))
      return errno;
  }
  for (const auto& m : p.mounts) {
    if (!m.is_dir) {
      int fd = ::open(m.target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) return errno;
      ::close(fd);
    }
    if (::mount(m.source.c_str(), m.target.c_str(), nullptr, MS_BIND, nullptr) != 0) return errno;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID;
    flags |= m.device ? MS_NOEXEC : MS_NODEV;
    if (::mount(nullptr, m.target.c_str(), nullptr, flags, nullptr) != 0) return errno;
  }
  for (const auto& [target, link] : p.symlinks) {
    if (::symlink(target.c_str(), link.c_str()) != 0) return errno;
  }
  // pivot_root(".", "."): the old root ends up on top of the new one and
  // is detached at once (pivot_root(2), "NOTES").
  if (::chdir(p.mountpoint.c_str()) != 0) return errno;
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return errno;
  if (::umount2(".", MNT_DETACH) != 0) return errno;
  if (::chdir("/") != 0) return errno;
  if (::mount(nullptr, "/", nullptr,
              MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    return errno;
  if (!p.dev_dir.empty() &&
      ::mount(nullptr, "/dev", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
              nullptr) != 0)
    return errno;
  if (!p.hostname.empty()) ::sethostname(p.hostname.data(), p.hostname.size());

  // No capabilities, ever: empty the bounding set (needs CAP_SETPCAP, so
  // before the uid changes), then become the unprivileged uid, which
  // clears the permitted and effective sets (capabilities(7)).
  for (int cap = 0; cap < 64; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL) break;
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (::syscall(SYS_setgroups, p.groups.size(), p.groups.data()) != 0) return errno;
  if (::syscall(SYS_setresgid, p.gid, p.gid, p.gid) != 0) return errno;
  if (::syscall(SYS_setresuid, p.uid, p.uid, p.uid) != 0) return errno;
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  return 0;
}

}  // namespace vessel::sys
