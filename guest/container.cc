#include "guest/container.h"

#include <dirent.h>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "guest/machine.h"
#include "guest/net.h"
#include "guest/process.h"

namespace vessel::guest {
namespace {

/// Files init writes for the container (hosts, resolv.conf) live here.
constexpr std::string_view kRunDir = "/run/vessel";

/// Character devices every container gets in its /dev, as an OCI runtime
/// creates them (runtime-spec config-linux.md, "Default Devices").
struct DeviceNode {
  const char* name;
  unsigned major;
  unsigned minor;
};
constexpr DeviceNode kDeviceNodes[] = {
    {"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
    {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

struct DeviceLink {
  const char* name;
  const char* target;
};
constexpr DeviceLink kDeviceLinks[] = {
    {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
    {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"},
};

/// Detaches the container root and everything mounted under it unless
/// disarmed, so that a failed Setup leaves nothing mounted behind.
class RootMountGuard {
 public:
  explicit RootMountGuard(std::string root) : root_(std::move(root)) {}
  RootMountGuard(const RootMountGuard&) = delete;
  RootMountGuard& operator=(const RootMountGuard&) = delete;
  ~RootMountGuard() {
    // MNT_DETACH takes the whole subtree (umount(2)), including the API
    // filesystems already mounted under the root.
    if (armed_) umount2(root_.c_str(), MNT_DETACH);
  }
  void disarm() { armed_ = false; }

 private:
  std::string root_;
  bool armed_ = true;
};

/// Makes sure mount point `path` (a path in the container, "/proc") exists
/// under `root`. The root is a host directory: a missing mount point is
/// created, but when that fails (a read-only root) the Setup fails rather
/// than mount somewhere else. The root is also image content: a symlinked
/// mount point would resolve in init's namespace, possibly outside the root
/// (/proc -> /run would cover init's /run), so it is refused.
Status make_mount_point(const std::string& root, const std::string& path) {
  Status s = ensure_dir(root + path, 0755);
  if (!s.ok()) return Status::from_errno(s.errnum(), "create mount point '" + path + "'");
  if (!resolves_to_itself(root + path)) {
    return Status(ELOOP, "mount point '" + path + "' is a symlink, which is not supported");
  }
  return {};
}

/// Mounts a filesystem of `type` at `path` in the container.
Status mount_in_root(const std::string& root, const std::string& path, const char* type,
                     unsigned long flags, const char* data) {
  Status s = make_mount_point(root, path);
  if (!s.ok()) return s;
  return mount_fs(type, root + path, type, flags, data,
                  std::string("mount ") + type + " on '" + path + "'");
}

/// Creates the standard nodes and links in the container's fresh /dev tmpfs.
Status populate_dev(const std::string& dev) {
  for (const DeviceNode& node : kDeviceNodes) {
    std::string path = dev + "/" + node.name;
    if (mknod(path.c_str(), S_IFCHR | 0666, makedev(node.major, node.minor)) < 0) {
      return Status::from_errno(std::string("mknod '/dev/") + node.name + "'");
    }
    // mknod(2) applies the umask (022); these nodes must be world-writable.
    if (chmod(path.c_str(), 0666) < 0) {
      return Status::from_errno(std::string("chmod '/dev/") + node.name + "'");
    }
  }
  for (const DeviceLink& link : kDeviceLinks) {
    if (symlink(link.target, (dev + "/" + link.name).c_str()) < 0) {
      return Status::from_errno(std::string("symlink '/dev/") + link.name + "'");
    }
  }
  return {};
}

/// Makes the container's cgroup its /sys/fs/cgroup: a bind mount of the
/// cgroup's directory, so that the container sees its own limits and usage
/// at the top (as in a Docker container on cgroup v2), not the whole tree.
/// Without a container cgroup, the whole cgroup2 tree is mounted, best
/// effort: a kernel without cgroups still runs containers.
Status mount_cgroup(const std::string& root, const ContainerCgroup& cgroup) {
  constexpr unsigned long kNoSuidDevExec = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  // sysfs always has fs/cgroup (the kernel creates it for cgroup mounts).
  std::string target = root + "/sys/fs/cgroup";
  if (!cgroup.valid()) {
    mount("cgroup2", target.c_str(), "cgroup2", kNoSuidDevExec, nullptr);
    return {};
  }
  Status s = mount_fs(cgroup.path().c_str(), target, nullptr, MS_BIND, nullptr,
                      "bind the container cgroup on '/sys/fs/cgroup'");
  if (!s.ok()) return s;
  // A bind mount takes the source's flags; these need a remount (mount(2)).
  return mount_fs(nullptr, target, nullptr, MS_REMOUNT | MS_BIND | kNoSuidDevExec, nullptr,
                  "remount '/sys/fs/cgroup'");
}

/// The API filesystems but the container's cgroup: /proc, /sys, /dev
/// (populated), /dev/pts and /dev/shm, with the flags Docker uses.
Status mount_api_filesystems_but_cgroup(const std::string& root) {
  constexpr unsigned long kNoSuidDevExec = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  Status s = mount_in_root(root, "/proc", "proc", kNoSuidDevExec, nullptr);
  if (!s.ok()) return s;
  s = mount_in_root(root, "/sys", "sysfs", MS_RDONLY | kNoSuidDevExec, nullptr);
  if (!s.ok()) return s;
  s = mount_in_root(root, "/dev", "tmpfs", MS_NOSUID, "mode=0755,size=65536k");
  if (!s.ok()) return s;
  s = populate_dev(root + "/dev");
  if (!s.ok()) return s;
  // A private devpts instance (newinstance), so the container's ptys are
  // numbered from 0 and its ptmx (mode 0666) allocates only there.
  s = mount_in_root(root, "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                    "newinstance,ptmxmode=0666,mode=0620,gid=5");
  if (!s.ok()) return s;
  return mount_in_root(root, "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k");
}

/// Mounts /proc, /sys, /sys/fs/cgroup, /dev, /dev/pts and /dev/shm under the
/// container root.
Status mount_api_filesystems(const std::string& root, const ContainerCgroup& cgroup) {
  Status s = mount_api_filesystems_but_cgroup(root);
  if (!s.ok()) return s;
  return mount_cgroup(root, cgroup);
}

/// A machine's API filesystems: /proc, a writable /sys and the kernel's
/// devtmpfs at /dev (udev manages it), and /dev/pts, mounted here so that
/// the agent's ptys and the machine's are one devpts instance. The image's
/// init mounts the rest (/run, /dev/shm, /sys/fs/cgroup, ...) itself.
Status mount_machine_filesystems(const std::string& root) {
  constexpr unsigned long kNoSuidDevExec = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  Status s = mount_in_root(root, "/proc", "proc", kNoSuidDevExec, nullptr);
  if (s.ok()) s = mount_in_root(root, "/sys", "sysfs", kNoSuidDevExec, nullptr);
  if (s.ok()) s = mount_in_root(root, "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  if (s.ok())
    s = mount_in_root(root, "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                      "newinstance,ptmxmode=0666,mode=0620,gid=5");
  return s;
}

/// What the namespace helper sends back: errnum 0, or the errno of `step`.
struct HelperReport {
  int32_t errnum = 0;
  int32_t step = 0;
};

constexpr const char* kHelperSteps[] = {
    "unshare mount namespace",          "make mounts private", "chdir to the container root",
    "pivot_root to the container root", "detach the old root", "chdir '/'",
};

/// Runs in the helper child: enters a new mount namespace whose root is
/// `root`. Returns 0, or an errno with `*step` indexing kHelperSteps.
int enter_container_root(const char* root, int32_t* step) {
  *step = 0;
  if (unshare(CLONE_NEWNS) < 0) return errno;
  // pivot_root(2) refuses shared mounts, and nothing done in the container's
  // namespace must propagate back to init's.
  *step = 1;
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) return errno;
  *step = 2;
  if (chdir(root) < 0) return errno;
  // pivot_root(".", ".") stacks the old root on top of the new one; detaching
  // "." then removes it, without needing a put_old directory in the image
  // (pivot_root(2), NOTES). glibc 2.36 has no wrapper.
  *step = 3;
  if (syscall(SYS_pivot_root, ".", ".") < 0) return errno;
  *step = 4;
  if (umount2(".", MNT_DETACH) < 0) return errno;
  *step = 5;
  if (chdir("/") < 0) return errno;
  return 0;
}

bool read_exact(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

/// Creates the container's mount namespace and returns an fd for it. A
/// namespace lives as long as a process or an fd refers to it, so a helper
/// child enters the new namespace, init opens /proc/<child>/ns/mnt, and the
/// helper is killed: from then on the fd alone keeps the namespace.
Result<UniqueFd> create_mount_namespace(const std::string& root) {
  constexpr std::string_view kWhat = "create container mount namespace";
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return Status::from_errno("pipe");
  UniqueFd report_r(fds[0]);
  UniqueFd report_w(fds[1]);
  pid_t pid = fork();
  if (pid < 0) return Status::from_errno("fork");
  if (pid == 0) {
    HelperReport report;
    report.errnum = enter_container_root(root.c_str(), &report.step);
    write_all(report_w.get(), &report, sizeof(report));
    if (report.errnum != 0) _exit(1);
    // Every signal is blocked (inherited from init), so this waits for the
    // parent's SIGKILL.
    for (;;)
      pause();
  }
  report_w.reset();
  HelperReport report;
  bool reported = read_exact(report_r.get(), &report, sizeof(report));
  UniqueFd ns;
  int open_errno = 0;
  if (reported && report.errnum == 0) {
    std::string path = "/proc/" + std::to_string(pid) + "/ns/mnt";
    ns.reset(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    open_errno = errno;
  }
  kill(pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  if (!reported) return Status(EIO, std::string(kWhat) + ": helper exited without a report");
  if (report.errnum != 0) {
    int32_t step = report.step;
    const char* what = step >= 0 && step < static_cast<int32_t>(std::size(kHelperSteps))
                           ? kHelperSteps[step]
                           : "?";
    return Status::from_errno(report.errnum, std::string(kWhat) + ": " + what);
  }
  if (!ns) return Status::from_errno(open_errno, std::string(kWhat) + ": open /proc/<pid>/ns/mnt");
  return ns;
}

/// Reads the main process's executable (Setup.main_command, resolved in the
/// container's root with Setup.main_path as the exec will) into the page
/// cache from a child, on the VM's other vCPU, while init goes on with
/// Setup: under TCG a cold exec from an image root's disk cost ~50 ms of a
/// start (the first runs of the kernel's read path as much as the reads).
/// At most 64 MiB; the child is not waited for (init reaps it as an orphan).
void read_ahead_main_command(const protocol::Setup& setup, const std::string& root) {
  if (setup.main_command.empty()) return;
  pid_t pid = fork();
  if (pid != 0) return;  // init goes on; a failed fork only loses the read-ahead
  UniqueFd dir(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  std::vector<std::string> env;
  if (!setup.main_path.empty()) env.push_back("PATH=" + setup.main_path);
  for (const std::string& path : command_candidates(setup.main_command, env)) {
    if (!dir || path.empty() || path[0] != '/') break;
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT;
    UniqueFd fd(static_cast<int>(syscall(SYS_openat2, dir.get(), path.c_str(), &how, sizeof how)));
    struct stat st;
    if (!fd || fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    static char buf[1 << 17];
    for (off_t done = 0; done < (64 << 20);) {
      ssize_t n = read(fd.get(), buf, sizeof buf);
      if (n <= 0) break;
      done += n;
    }
    mark("read-ahead child: read");
    break;
  }
  _exit(0);
}

/// Work done by a child process while init goes on, on the VM's other
/// vCPU; its Status comes back through a pipe. Used for the network's
/// configuration (under TCG, the kernel's first run of its networking code:
/// `lo` going up adds its addresses and routes, took 13-16 ms of every
/// start with the second vCPU idle) and for the early root (start_early_root).
/// Without a child (fork failed) the work runs in place. The destructor of
/// a job not joined waits for it, result unread.
class ChildJob {
 public:
  ChildJob() = default;
  ChildJob(const ChildJob&) = delete;
  ChildJob& operator=(const ChildJob&) = delete;
  ~ChildJob() { (void)join(); }

  /// Runs `work`; `what` names it in the error when the child dies.
  void start(std::string what, const std::function<Status()>& work) {
    what_ = std::move(what);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) == 0) {
      UniqueFd r(fds[0]), w(fds[1]);
      pid_t pid = fork();
      if (pid == 0) {
        Status s = work();
        int32_t errnum = s.ok() ? 0 : (s.errnum() > 0 ? s.errnum() : EIO);
        write_all(w.get(), &errnum, sizeof errnum);
        if (!s.ok()) write_all(w.get(), s.message().data(), s.message().size());
        _exit(0);
      }
      if (pid > 0) {
        pid_ = pid;
        report_ = std::move(r);
        return;
      }
    }
    inline_ = work();
  }

  /// The work's result, once the child has exited.
  Status join() {
    if (pid_ <= 0) return std::exchange(inline_, Status());
    std::string report;
    char buf[512];
    for (;;) {
      ssize_t n = read(report_.get(), buf, sizeof buf);
      if (n > 0) {
        report.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        break;
      }
    }
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    report_.reset();
    int32_t errnum = 0;
    if (report.size() < sizeof errnum) return Status(EIO, what_ + ": the process doing it died");
    std::memcpy(&errnum, report.data(), sizeof errnum);
    if (errnum == 0) return Status();
    return Status(errnum, report.substr(sizeof errnum));
  }

 private:
  std::string what_;
  pid_t pid_ = -1;
  UniqueFd report_;
  Status inline_;
};

}  // namespace

namespace {

/// The /dev node of the virtio-blk disk whose serial is `serial`. The host
/// names disks by serial because probe order is not a contract.
Result<std::string> find_disk(const std::string& serial) {
  DIR* dir = opendir("/sys/block");
  if (!dir) return Status::from_errno("open /sys/block");
  std::string found;
  while (dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (name.rfind("vd", 0) != 0) continue;
    Result<std::string> value = read_file("/sys/block/" + name + "/serial", 64);
    if (!value.ok()) continue;
    std::string v = value.take();
    while (!v.empty() && (v.back() == '\n' || v.back() == '\0'))
      v.pop_back();
    if (v == serial) {
      found = "/dev/" + name;
      break;
    }
  }
  closedir(dir);
  if (found.empty()) return Status(ENODEV, "no disk with serial '" + serial + "'");
  return found;
}

/// Mounts the image root at `root`: the read-only ext4 lower alone
/// (read_only), the lower alone read-write when there is no upper (the
/// container's own disk), or overlayfs with the lower under an upper
/// directory on the writable disk.
Status mount_image_root(const protocol::Setup& setup, const std::string& root) {
  Result<std::string> lower_dev = find_disk(setup.lower_serial);
  if (!lower_dev.ok()) return lower_dev.status();
  std::string lower_path = lower_dev.take();
  if (setup.machine) {
    // The machine's own disk, read-write; the host may have made it larger
    // since the last boot (--disk), so the filesystem grows to fit.
    Status s = mount_fs(lower_path.c_str(), root, "ext4", 0, nullptr,
                        "mount the machine's disk '" + lower_path + "'");
    if (!s.ok()) return s;
    s = grow_filesystem(root, lower_path);
    if (!s.ok()) log_error("%s", s.message().c_str());
    return {};
  }
  if (setup.read_only) {
    return mount_fs(lower_path.c_str(), root, "ext4", MS_RDONLY, nullptr,
                    "mount root image '" + lower_path + "'");
  }
  if (setup.upper_serial.empty()) {
    // The container's own disk (on the host a qcow2 over its image's
    // writable base), written in place: one ext4 mount instead of the image,
    // a writable layer and overlayfs. noatime, so that reads never write
    // (each written block costs the host a copy-on-write cluster).
    return mount_fs(lower_path.c_str(), root, "ext4", MS_NOATIME, nullptr,
                    "mount the container's disk '" + lower_path + "'");
  }
  const std::string lower = "/run/vessel/lower", upper = "/run/vessel/upper";
  Status s = ensure_dirs(lower, 0755);
  if (s.ok()) s = ensure_dirs(upper, 0755);
  if (s.ok()) {
    s = mount_fs(lower_path.c_str(), lower, "ext4", MS_RDONLY, nullptr,
                 "mount root image '" + lower_path + "'");
  }
  if (!s.ok()) return s;
  Result<std::string> upper_dev = find_disk(setup.upper_serial);
  if (!upper_dev.ok()) return upper_dev.status();
  std::string upper_path = upper_dev.take();
  s = mount_fs(upper_path.c_str(), upper, "ext4", MS_NOATIME, nullptr,
               "mount writable layer '" + upper_path + "'");
  if (s.ok()) s = ensure_dir(upper + "/upper", 0755);
  if (s.ok()) s = ensure_dir(upper + "/work", 0755);
  if (!s.ok()) return s;
  std::string options =
      "lowerdir=" + lower + ",upperdir=" + upper + "/upper,workdir=" + upper + "/work";
  return mount_fs("overlay", root, "overlay", 0, options.c_str(), "mount overlay root");
}

/// Opens (O_PATH) the mount point `target` inside the container root,
/// creating what is missing: directories on the way, and the last component
/// as a directory or, for a file bind mount, an empty file. Every lookup
/// stays inside the root (RESOLVE_IN_ROOT): an image's symlink such as
/// /data -> /../../run cannot send a mount outside the container.
Result<UniqueFd> open_mount_point(int root_fd, const std::string& target, bool file) {
  std::string rel;
  UniqueFd dir(fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  size_t pos = 1;
  while (pos <= target.size()) {
    size_t next = target.find('/', pos);
    if (next == std::string::npos) next = target.size();
    std::string part = target.substr(pos, next - pos);
    pos = next + 1;
    if (part.empty() || part == ".") continue;
    bool last = pos > target.size();
    rel += (rel.empty() ? "" : "/") + part;
    open_how how{};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    int fd = static_cast<int>(syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how));
    if (fd < 0 && errno == ENOENT) {
      // Create it in its parent (which resolved inside the root above).
      how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
      std::string parent = rel.find('/') == std::string::npos ? "." : rel.substr(0, rel.rfind('/'));
      int pfd = static_cast<int>(syscall(SYS_openat2, root_fd, parent.c_str(), &how, sizeof how));
      if (pfd < 0) return Status::from_errno("open mount point parent '" + parent + "'");
      UniqueFd parent_fd(pfd);
      int made;
      if (last && file) {
        made = openat(parent_fd.get(), part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (made >= 0) close(made);
      } else {
        made = mkdirat(parent_fd.get(), part.c_str(), 0755);
      }
      if (made < 0 && errno != EEXIST)
        return Status::from_errno("create mount point '" + target + "'");
      how.flags = O_PATH | O_CLOEXEC;
      fd = static_cast<int>(syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how));
    }
    if (fd < 0) return Status::from_errno("open mount point '" + target + "'");
    dir.reset(fd);
  }
  return dir;
}

/// Writes `contents` to /run/vessel/<name> and bind-mounts it over
/// /etc/<name> in the container, as Docker does for hosts, resolv.conf and
/// hostname. What the image lacks (the file, /etc itself) is created first,
/// so an empty root gets all three. Every lookup stays inside the root
/// (open_mount_point: RESOLVE_IN_ROOT), so a symlinked /etc/<name> is
/// followed within the container, never into init's tree. Where the mount
/// point cannot be made (a read-only root without the file, a dangling
/// symlink) or is not a regular file, the image's entry is left as it is:
/// that costs the container the file, not its start. Empty contents mean the
/// host leaves the image's file alone.
Status cover_etc_file(int root_fd, const std::string& run_dir, const std::string& name,
                      const std::string& contents) {
  if (contents.empty()) return {};
  std::string target = "/etc/" + name;
  Result<UniqueFd> point = open_mount_point(root_fd, target, /*file=*/true);
  if (!point.ok()) {
    // EROFS: a read-only root has no room for a missing file; not worth a
    // console line (each byte is slow under emulation).
    if (point.status().errnum() != EROFS)
      log_error("leaving '%s' as it is: %s", target.c_str(), point.status().message().c_str());
    return {};
  }
  struct stat st;
  if (fstat(point.value().get(), &st) < 0 || !S_ISREG(st.st_mode)) {
    log_error("leaving '%s' as it is: not a regular file", target.c_str());
    return {};
  }
  std::string source = run_dir + "/" + name;
  Status s = write_file(source, contents, 0644);
  if (!s.ok()) return s;
  std::string at = "/proc/self/fd/" + std::to_string(point.value().get());
  return mount_fs(source.c_str(), at, nullptr, MS_BIND, nullptr, "bind '" + target + "'");
}

/// /etc/hosts, /etc/resolv.conf and /etc/hostname, from files in `run_dir`.
Status cover_etc_files(const protocol::Setup& setup, const std::string& root,
                       const std::string& run_dir) {
  int rfd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0) return Status::from_errno("open container root");
  UniqueFd root_fd(rfd);
  Status s = ensure_dirs(run_dir, 0755);
  if (s.ok()) s = cover_etc_file(root_fd.get(), run_dir, "hosts", setup.hosts);
  if (s.ok()) s = cover_etc_file(root_fd.get(), run_dir, "resolv.conf", setup.resolv_conf);
  if (s.ok() && !setup.hostname.empty())
    s = cover_etc_file(root_fd.get(), run_dir, "hostname", setup.hostname + "\n");
  return s;
}

/// Mounts the virtio-fs share `tag` at /run/vessel/mounts/<tag> unless it
/// is mounted there already (by an earlier mount, or another container of
/// the VM: a pod's containers all reach their roots through one share), and
/// returns that path. Mounted means another filesystem than /run's.
Result<std::string> mount_share(const std::string& tag) {
  std::string share = std::string(kRunDir) + "/mounts/" + tag;
  Status s = ensure_dirs(share, 0755);
  if (!s.ok()) return s;
  struct stat dir_st, parent_st;
  if (stat(share.c_str(), &dir_st) == 0 &&
      stat((std::string(kRunDir) + "/mounts").c_str(), &parent_st) == 0 &&
      dir_st.st_dev != parent_st.st_dev)
    return share;
  s = mount_fs(tag.c_str(), share, "virtiofs", 0, nullptr, "mount virtiofs '" + tag + "'");
  if (!s.ok()) return s;
  return share;
}

/// Opens (O_PATH) what a virtio-fs mount binds: `subpath` in the share
/// mounted at `share`, or the whole share. The subpath comes from the host
/// (a file or directory, possibly several components deep: "m0/app.conf");
/// the decode refused ".." and absolute paths, and every lookup stays
/// beneath the share (RESOLVE_IN_ROOT), so a symlink the share's owner made
/// cannot send the bind elsewhere in init's tree.
Result<UniqueFd> open_mount_source(const std::string& share, const std::string& subpath) {
  int sfd = open(share.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (sfd < 0) return Status::from_errno("open share '" + share + "'");
  UniqueFd share_fd(sfd);
  if (subpath.empty()) return share_fd;
  // A directory is opened with O_DIRECTORY, which (unlike a bare O_PATH)
  // triggers the automount of a host submount that virtiofsd announces
  // (FUSE_ATTR_SUBMOUNT): the bind then takes the submount, with its own
  // st_dev, not the directory it covers. Then a file.
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd =
      static_cast<int>(syscall(SYS_openat2, share_fd.get(), subpath.c_str(), &how, sizeof how));
  if (fd < 0 && errno == ENOTDIR) {
    how.flags = O_PATH | O_CLOEXEC;
    fd = static_cast<int>(syscall(SYS_openat2, share_fd.get(), subpath.c_str(), &how, sizeof how));
  }
  if (fd < 0) return Status::from_errno("open mount source '" + subpath + "'");
  return UniqueFd(fd);
}

/// The container's mounts besides its root, in the order given: virtio-fs
/// shares (bind mounts and volumes on the host; each share is mounted once
/// under /run/vessel/mounts/<tag> and bound into place, a subpath picking a
/// file or directory in it: as root the host serves all of a container's
/// mounts through one share, "m0", "m1/file", ...) and tmpfs.
Status mount_extra(const protocol::Setup& setup, const std::string& root) {
  if (setup.mounts.empty()) return Status();
  int rfd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0) return Status::from_errno("open container root");
  UniqueFd root_fd(rfd);
  for (const protocol::Mount& m : setup.mounts) {
    UniqueFd source_fd;
    std::string source;
    bool file = false;
    if (m.kind == protocol::Mount::kVirtiofs) {
      Result<std::string> share = mount_share(m.tag);
      if (!share.ok()) return share.status();
      Result<UniqueFd> opened = open_mount_source(share.value(), m.subpath);
      if (!opened.ok()) return opened.status();
      source_fd = opened.take();
      struct stat st;
      if (fstat(source_fd.get(), &st) != 0)
        return Status::from_errno("stat mount source '" + m.subpath + "' in '" + m.tag + "'");
      file = !S_ISDIR(st.st_mode);
      source = "/proc/self/fd/" + std::to_string(source_fd.get());
    }
    Result<UniqueFd> point = open_mount_point(root_fd.get(), m.target, file);
    if (!point.ok()) return point.status();
    std::string at = "/proc/self/fd/" + std::to_string(point.value().get());
    if (m.kind == protocol::Mount::kTmpfs) {
      Status s = mount_fs("tmpfs", at, "tmpfs", MS_NOSUID | MS_NODEV,
                          m.options.empty() ? nullptr : m.options.c_str(),
                          "mount tmpfs on '" + m.target + "'");
      if (!s.ok()) return s;
      if (m.read_only) {
        Result<UniqueFd> bound = open_mount_point(root_fd.get(), m.target, false);
        if (!bound.ok()) return bound.status();
        std::string bound_at = "/proc/self/fd/" + std::to_string(bound.value().get());
        if (mount(nullptr, bound_at.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) < 0)
          return Status::from_errno("make tmpfs on '" + m.target + "' read-only");
      }
      continue;
    }
    if (mount(source.c_str(), at.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
      return Status::from_errno("bind '" + m.tag + (m.subpath.empty() ? "" : "/" + m.subpath) +
                                "' on '" + m.target + "'");
    if (m.read_only) {
      // Remount the bind itself, not the share it came from. The fd above
      // names the covered directory; opened again, the path gives the mount.
      Result<UniqueFd> bound = open_mount_point(root_fd.get(), m.target, file);
      if (!bound.ok()) return bound.status();
      std::string bound_at = "/proc/self/fd/" + std::to_string(bound.value().get());
      if (mount(nullptr, bound_at.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) < 0)
        return Status::from_errno("make '" + m.target + "' read-only");
    }
  }
  return Status();
}

}  // namespace

/// A root that is a directory of a share (a pod's containers, each in the
/// pod's share): bound from the share, read-only if asked.
Status bind_share_root(const protocol::Setup& setup, const std::string& root) {
  Result<std::string> share = mount_share(setup.rootfs_tag);
  if (!share.ok()) return share.status();
  Result<UniqueFd> source = open_mount_source(share.value(), setup.rootfs_subpath);
  if (!source.ok()) return source.status();
  std::string from = "/proc/self/fd/" + std::to_string(source.value().get());
  Status s =
      mount_fs(from.c_str(), root, nullptr, MS_BIND | MS_REC, nullptr,
               "bind root '" + setup.rootfs_subpath + "' of share '" + setup.rootfs_tag + "'");
  if (!s.ok() || !setup.read_only) return s;
  if (mount(nullptr, root.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) < 0) {
    Status e = Status::from_errno("make the root read-only");
    umount2(root.c_str(), MNT_DETACH);
    return e;
  }
  return {};
}

namespace {

/// Mounts the root `setup` names at `root` (created if missing).
Status mount_root(const protocol::Setup& setup, const std::string& root) {
  Status s = ensure_dirs(root, 0755);
  if (!s.ok()) return s;
  if (!setup.lower_serial.empty()) return mount_image_root(setup, root);
  if (!setup.rootfs_subpath.empty()) return bind_share_root(setup, root);
  unsigned long flags = setup.read_only ? MS_RDONLY : 0;
  return mount_fs(setup.rootfs_tag.c_str(), root, "virtiofs", flags, nullptr,
                  "mount virtiofs '" + setup.rootfs_tag + "'");
}

/// The early root (start_early_root): the spec it was started for, and the
/// child mounting it, until prepare() takes it.
struct EarlyRoot {
  std::string spec;
  ChildJob job;
};
std::unique_ptr<EarlyRoot> g_early_root;

}  // namespace

void start_early_root(std::string_view cmdline) {
  size_t at = cmdline.find(protocol::kEarlyRootArg);
  // A whole argument: at the start or after a blank.
  while (at != std::string_view::npos && at > 0 && cmdline[at - 1] != ' ')
    at = cmdline.find(protocol::kEarlyRootArg, at + 1);
  if (at == std::string_view::npos) return;
  std::string_view spec = cmdline.substr(at + protocol::kEarlyRootArg.size());
  spec = spec.substr(0, spec.find_first_of(" \n"));
  // The Setup this spec stands for, as far as the root goes.
  protocol::Setup setup;
  if (spec.starts_with("fs:")) {
    setup.rootfs_tag = std::string(spec.substr(3));
  } else if (spec.starts_with("disk:")) {
    setup.lower_serial = std::string(spec.substr(5));
  } else {
    return;
  }
  if (protocol::early_root(setup) != spec) return;
  g_early_root = std::make_unique<EarlyRoot>();
  g_early_root->spec = std::string(spec);
  g_early_root->job.start("early root", [setup] {
    std::string root(kContainerRoot);
    Status s = mount_root(setup, root);
    mark("early root: mounted");
    if (s.ok()) s = mount_api_filesystems_but_cgroup(root);
    mark("early root: /proc, /sys, /dev");
    return s;
  });
}

Result<Container> Container::prepare(const protocol::Setup& setup, const ContainerCgroup& cgroup) {
  // The network is configured by a child while the root is mounted, and
  // joined before Setup answers: no process of the container runs before
  // its interfaces are. A container added to a pod's VM has the network
  // container 0 configured.
  ChildJob network;
  if (setup.container == 0) {
    network.start("network", [&setup] {
      Status s = configure_network(setup);
      mark("network child: done");
      return s;
    });
  }
  Status s;
  std::string run_dir(kRunDir);
  if (setup.container != 0) run_dir += "/c" + std::to_string(setup.container);
  std::string root = setup.container == 0 ? std::string(kContainerRoot) : run_dir + "/rootfs";
  // Mounted while the VM booted (start_early_root) if the host named this
  // Setup's root then: the root and all but the cgroup are in place.
  bool early = false;
  if (g_early_root != nullptr && setup.container == 0) {
    std::unique_ptr<EarlyRoot> taken = std::move(g_early_root);
    Status done = taken->job.join();
    early = done.ok() && taken->spec == protocol::early_root(setup);
    if (!early) {
      // Failed, or not this Setup's root (the host names the one it
      // sends): whatever it mounted goes; the Setup's root is mounted below,
      // which reports the error again if there is one.
      umount2(root.c_str(), MNT_DETACH);
    }
  }
  if (!early) {
    s = mount_root(setup, root);
    if (!s.ok()) return s;
  }
  RootMountGuard guard(root);
  mark("root mounted");
  read_ahead_main_command(setup, root);

  if (setup.machine) {
    s = mount_machine_filesystems(root);
  } else {
    s = early ? mount_cgroup(root, cgroup) : mount_api_filesystems(root, cgroup);
  }
  if (!s.ok()) return s;
  // The hostname is the VM's (a pod's containers share it, as they share
  // a UTS namespace under runc): container 0 sets it.
  if (setup.container == 0 && !setup.hostname.empty() &&
      sethostname(setup.hostname.data(), setup.hostname.size()) < 0) {
    return Status::from_errno("set hostname '" + setup.hostname + "'");
  }
  mark("/proc, /sys, /dev");
  s = setup.machine ? prepare_machine_root(setup, root) : cover_etc_files(setup, root, run_dir);
  mark("/etc files");
  if (!s.ok()) return s;
  s = mount_extra(setup, root);
  if (!s.ok()) return s;

  mark("mounts");
  Result<UniqueFd> ns = create_mount_namespace(root);
  mark("mount namespace");
  if (!ns.ok()) return ns.status();
  s = network.join();
  mark("network joined");
  if (!s.ok()) return s;
  guard.disarm();
  Container container;
  container.root_ = std::move(root);
  container.mount_ns_ = ns.take();
  return container;
}

void Container::release() {
  if (!mount_ns_) return;
  mount_ns_.reset();
  // Lazily: a process of the container may still hold something open.
  umount2(root_.c_str(), MNT_DETACH);
}

}  // namespace vessel::guest
