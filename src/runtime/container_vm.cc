#include "runtime/container_vm.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

#include "agent/capabilities.h"
#include "agent/ulimit.h"
#include "base/log.h"
#include "base/strings.h"
#include "runtime/etc_files.h"
#include "runtime/vm_template.h"
#include "sys/fs.h"
#include "sys/process.h"
#include "sys/systemd_scope.h"
#include "vmm/qemu_args.h"
#include "vmm/qemu_jail.h"
#include "vmm/qemu_vmm.h"

namespace vessel::runtime {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using protocol::MsgType;

constexpr const char* kRootfsTag = "rootfs";
constexpr const char* kSharesTag = "shares";
constexpr const char* kLowerSerial = "vessel-lower";
constexpr const char* kUpperSerial = "vessel-upper";
// A disk the guest mounts read-write as the root: a machine's disk, or a
// root_disk container's qcow2 over its image's base.
constexpr const char* kRootSerial = "vessel-root";
// With ACPI, microvm has a second IO-APIC and describes more virtio-mmio
// transports: 23 devices boot (measured; 24 stalled the boot).
constexpr size_t kAcpiTransports = 23;

Result<std::string> real_root(const ContainerConfig& c) {
  bool image_root = !c.root_image.empty();
  const std::string& path = image_root ? c.root_image : c.rootfs;
  const std::string what = image_root ? "root image '" : "rootfs '";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Error::from_errno(errno, what + path + "'");
  if (image_root ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode))
    return Error(ErrorCode::kInvalidArgument,
                 what + path + (image_root ? "' is not a file" : "' is not a directory"));
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real)) return Error::from_errno(errno, what + path + "'");
  return std::string(real);
}

// A host directory that bind mounts and volumes reach, and whether it is
// served read-only. A single-file bind mount reaches its file's directory.
struct HostShare {
  std::string dir;
  bool read_only = false;
  bool operator<(const HostShare& o) const {
    return std::tie(dir, read_only) < std::tie(o.dir, o.read_only);
  }
};

// Mounts made for virtiofsd, detached (with everything under them) unless
// handed to the ContainerVm, which detaches them when it ends.
class PrivateMounts {
 public:
  PrivateMounts() = default;
  PrivateMounts(const PrivateMounts&) = delete;
  PrivateMounts& operator=(const PrivateMounts&) = delete;
  ~PrivateMounts() {
    for (const auto& m : paths_)
      ::umount2(m.c_str(), MNT_DETACH);
  }
  void add(std::string path) { paths_.push_back(std::move(path)); }
  std::vector<std::string> release() { return std::exchange(paths_, {}); }

 private:
  std::vector<std::string> paths_;
};

// Makes every mount under `path` read-only: mount_setattr(2) with
// AT_RECURSIVE, so that a :ro share's own submounts are read-only too (as
// Docker's recursive read-only); a kernel before 5.12 gets the top mount
// read-only (MS_REMOUNT on a bind changes that mount only, mount(2)).
Status make_read_only(const std::string& path) {
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (::mount_setattr(AT_FDCWD, path.c_str(), AT_RECURSIVE, &attr, sizeof attr) == 0)
    return ok_status();
  if (errno != ENOSYS) return Error::from_errno(errno, "make '" + path + "' read-only");
  if (::mount(nullptr, path.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0)
    return Error::from_errno(errno, "make '" + path + "' read-only");
  return ok_status();
}

// The share tree: every host directory of the container under one
// directory, served by one virtiofsd through one vhost-user-fs device.
// microvm has 8 virtio-mmio transports, and a device per directory let a
// few mounts and networks exhaust them.
//
// `at` gets a tmpfs with a subdirectory per share (m0, m1, ...), the
// share's directory bind-mounted on it (MS_REC: its submounts come along),
// made read-only for :ro (virtiofsd has no read-only mode of its own, but
// writes through a read-only mount fail with EROFS on the host). The tmpfs
// is then remounted read-only, so the guest cannot add anything beside the
// shares. virtiofsd's sandbox binds its source recursively before
// pivot_root, so the submounts stay visible to it. A tmpfs, not a plain
// directory: remove_tree() stops at a mount point, so even a tree left in
// the host's namespace (no private one) never leads a removal of the
// runtime directory into the user's files.
//
// Only as root, in the monitor's private mount namespace (run_monitor
// unshares one): the mounts exist there only and vanish with the monitor
// whatever ends it; `mounts` undoes them sooner.
Status make_share_tree(const std::string& at, const std::vector<HostShare>& shares,
                       PrivateMounts& mounts) {
  VESSEL_TRY(sys::make_dirs(at, 0700));
  if (::mount("vessel-shares", at.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0755,size=64k,nr_inodes=1024") != 0)
    return Error::from_errno(errno, "mount tmpfs on '" + at + "'");
  mounts.add(at);
  for (size_t i = 0; i < shares.size(); ++i) {
    const HostShare& share = shares[i];
    std::string sub = at + "/m" + std::to_string(i);
    if (::mkdir(sub.c_str(), 0755) != 0) return Error::from_errno(errno, "mkdir '" + sub + "'");
    if (::mount(share.dir.c_str(), sub.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
      return Error::from_errno(errno, "bind '" + share.dir + "' on '" + sub + "'");
    if (share.read_only) VESSEL_TRY(make_read_only(sub));
  }
  if (::mount(nullptr, at.c_str(), nullptr,
              MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    return Error::from_errno(errno, "remount '" + at + "' read-only");
  return ok_status();
}

}  // namespace

ContainerVm::~ContainerVm() {
  vm_.reset();  // QEMU and virtiofsd first: they hold the mounts
  detach_private_mounts();
}

void ContainerVm::detach_private_mounts() {
  for (const auto& m : std::exchange(private_mounts_, {}))
    ::umount2(m.c_str(), MNT_DETACH);
}

namespace {

// Runs a tool of Debian package `package` (found on PATH or in the sbin
// directories, which a user's PATH may lack) with `args`; its output is
// discarded.
Status run_tool(const std::string& package, const std::string& tool,
                std::vector<std::string> args) {
  std::optional<std::string> path;
  for (const std::string& candidate : {tool, "/usr/sbin/" + tool, "/sbin/" + tool})
    if (!path) path = sys::find_program(candidate);
  if (!path) return Error(ErrorCode::kUnavailable, tool + " not found (install " + package + ")");
  std::string what = tool;
  for (const auto& a : args)
    what += " " + a;
  args.insert(args.begin(), *path);
  VESSEL_ASSIGN_OR_RETURN(sys::Process p, sys::Process::spawn({.argv = std::move(args)}));
  VESSEL_ASSIGN_OR_RETURN(sys::ExitStatus st, p.wait());
  if (st.code != 0 || st.signal != 0)
    return Error(ErrorCode::kInternal, what + " " + st.to_string());
  return ok_status();
}

Status run_e2fsprogs(const std::string& tool, std::vector<std::string> args) {
  return run_tool("e2fsprogs", tool, std::move(args));
}

}  // namespace

Status make_root_overlay(const std::string& cache_dir, const std::string& base,
                         const std::string& path) {
  struct stat st;
  if (::stat(base.c_str(), &st) != 0) return Error::from_errno(errno, "root base '" + base + "'");
  VESSEL_TRY(sys::make_dirs(cache_dir, 0700));
  // qcow2 (QEMU's own copy-on-write format, docs/interop/qcow2.txt): 64 KiB
  // clusters, allocated as the guest writes; reads of what it has not
  // written go to the backing file QEMU is given. The empty image is the
  // same for every base of this size, so it is made once and copied
  // (~200 KiB, mostly holes).
  std::string size = std::to_string(st.st_size);
  std::string made_once = cache_dir + "/root-" + size + ".qcow2";
  if (::access(made_once.c_str(), F_OK) != 0) {
    VESSEL_ASSIGN_OR_RETURN(std::string suffix, sys::random_hex(8));
    std::string made = made_once + ".tmp-" + suffix;
    Status s = run_tool("qemu-utils", "qemu-img",
                        {"create", "-q", "-f", "qcow2", "-o", "cluster_size=65536", made, size});
    if (s.ok() && ::rename(made.c_str(), made_once.c_str()) != 0)
      s = Error::from_errno(errno, "rename '" + made + "' to '" + made_once + "'");
    if (!s.ok()) {
      ::unlink(made.c_str());
      return s.error().wrap("make the container's root disk");
    }
  }
  return sys::copy_sparse(made_once, path);
}

Status make_writable_disk(const std::string& path, uint64_t bytes) {
  {
    VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_fd(path, O_WRONLY | O_CREAT | O_EXCL, 0600));
    if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0)
      return Error::from_errno(errno, "size writable layer '" + path + "'");
  }
  // mkfs with lazy inode tables and journal touches a few MiB (about 15 ms).
  return run_e2fsprogs("mkfs.ext4", {"-q", "-F", "-L", "vessel-upper", "-E",
                                     "lazy_itable_init=1,lazy_journal_init=1", path});
}

Status make_machine_disk(const std::string& snapshot, const std::string& path, uint64_t bytes) {
  VESSEL_TRY(sys::copy_sparse(snapshot, path, bytes));
  // Image snapshots have no journal (read-only, they need none); a disk
  // written in place does: without one, a kill -9 of the monitor (QEMU
  // dies with it) left files holding other files' blocks. The copy is ours
  // and has never been booted, so the host's tune2fs may touch it.
  if (auto s = run_e2fsprogs("tune2fs", {"-O", "has_journal", path}); !s.ok()) {
    ::unlink(path.c_str());
    return s;
  }
  return ok_status();
}

protocol::Update container_limits(const ContainerConfig& c) {
  protocol::Update u;
  u.memory_limit_bytes = c.machine.enabled ? 0
                         : c.memory_limit_bytes && c.memory_limit_bytes < c.memory_bytes
                             ? c.memory_limit_bytes
                             : c.memory_bytes;
  u.pids_limit = c.pids_limit;
  if (c.cpu_millis > 0) {
    u.cpu_period_usec = 100'000;
    u.cpu_quota_usec = std::max<uint32_t>(c.cpu_millis * 100, 1000);
  }
  return u;
}

void keep_limits(ContainerConfig& c, const protocol::Update& u) {
  c.memory_limit_bytes = u.memory_limit_bytes == 0 || u.memory_limit_bytes >= c.memory_bytes
                             ? 0
                             : u.memory_limit_bytes;
  c.pids_limit = u.pids_limit;
  // container_limits' inverse: the quota as millicpus of a 100 ms period
  // (at least 1); the VM's whole vCPUs are no quota.
  uint64_t period = u.cpu_period_usec ? u.cpu_period_usec : protocol::kDefaultCpuPeriodUsec;
  uint64_t millis =
      u.cpu_quota_usec ? std::max<uint64_t>(uint64_t{u.cpu_quota_usec} * 1000 / period, 1) : 0;
  c.cpu_millis = millis >= uint64_t{c.cpus} * 1000 ? 0 : static_cast<uint32_t>(millis);
}

protocol::Spawn main_spawn(const ContainerConfig& c, uint16_t rows, uint16_t cols) {
  protocol::Spawn s;
  s.argv = c.argv;
  s.env = c.env;
  s.cwd = c.workdir;
  s.uid = c.uid;
  s.gid = c.gid;
  s.groups = c.groups;
  s.user = c.user;
  s.tty = c.tty;
  s.stdin_open = c.open_stdin;
  s.rows = rows;
  s.cols = cols;
  for (const auto& u : c.ulimits)
    if (auto r = agent::parse_ulimit(u); r.ok()) s.rlimits.push_back(*r);  // checked at create
  if (c.capabilities) {
    s.capabilities = *c.capabilities;
  } else if (!c.machine.enabled) {
    // Checked at create; a configuration that no longer parses (edited by
    // hand) gets the default set rather than all of root's.
    auto set = agent::docker_capabilities(c.cap_add, c.cap_drop);
    s.capabilities =
        agent::container_capabilities(set.ok() ? *set : agent::docker_default_capabilities());
  }
  s.no_new_privileges = c.no_new_privileges;
  return s;
}

int exec_failure_code(int errnum) {
  if (errnum == ENOENT) return 127;
  if (errnum == EACCES || errnum == ENOEXEC) return 126;
  return 0;
}

vmm::Confinement vmm_confinement() {
  vmm::Confinement c;
  const char* env = ::getenv("VESSEL_CONFINE");
  c.enabled = !(env && (std::string_view(env) == "0" || std::string_view(env) == "off"));
  // This process (the container's monitor) lives as long as the VM: its
  // pid makes the VM's uid unique among running VMs.
  c.uid = c.gid = vmm::confined_id(::getpid());
  return c;
}

ConfinementStatus confinement_status() {
  ConfinementStatus s;
  s.enabled = vmm_confinement().enabled;
  bool root = ::geteuid() == 0;
  if (!s.enabled) {
    s.qemu = "unconfined (VESSEL_CONFINE=0): as this user, with its capabilities, no seccomp";
    s.virtiofsd = "its own sandbox (namespaces, seccomp, reduced capabilities)";
    s.host_cgroup = "none";
    return s;
  }
  s.qemu = root ? "jailed: uid " + std::to_string(vmm::kConfinedIdBase) +
                      "+monitor pid, no capabilities, no_new_privs, seccomp (-sandbox " +
                      vmm::kQemuSandbox +
                      "), own mount/pid/ipc/uts/net namespaces, root of read-only binds"
                : std::string("seccomp (-sandbox ") + vmm::kQemuSandbox +
                      "); not root, so no jail (runs as this user)";
  s.virtiofsd =
      "its own sandbox: mount/pid/net namespaces rooted at the share, seccomp, "
      "file-serving capabilities only";
  auto version = sys::cgroup_version();
  if (!root)
    s.host_cgroup = "none (not root)";
  else if (version != sys::CgroupVersion::kNone && sys::systemd_manages_cgroups())
    s.host_cgroup =
        std::string("systemd scope vessel-<id12>.scope in vessel.slice (Delegate=yes, ") +
        (version == sys::CgroupVersion::kV2 ? "cgroup v2)" : "cgroup v1)");
  else if (version == sys::CgroupVersion::kV2)
    s.host_cgroup = "cgroup v2: /sys/fs/cgroup/vessel.slice/vessel-<id12>.scope";
  else if (version == sys::CgroupVersion::kV1)
    s.host_cgroup = "cgroup v1: <controller>/<caller's cgroup>/vessel/<id12> (memory, pids, cpu)";
  else
    s.host_cgroup = "none (no cgroup filesystem)";
  if (version != sys::CgroupVersion::kNone && root)
    s.host_cgroup += "; memory = guest RAM + " + std::to_string(kHostOverheadBytes >> 20) +
                     " MiB, pids " + std::to_string(kHostPidsMax);
  return s;
}

uint64_t vm_memory_bytes(const ContainerConfig& c) {
  return c.machine.enabled ? c.memory_bytes : c.memory_bytes + kGuestReserve;
}

sys::HostLimits host_limits(const ContainerConfig& c) {
  return {.memory_max = vm_memory_bytes(c) + kHostOverheadBytes, .pids_max = kHostPidsMax};
}

Status make_pod_dir(const std::string& dir) {
  VESSEL_TRY(sys::make_dirs(dir, 0700));
  if (::mount("vessel-pod", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0755,size=1m,nr_inodes=4096") != 0)
    return Error::from_errno(errno, "mount tmpfs on '" + dir + "'");
  if (::mount(nullptr, dir.c_str(), nullptr, MS_SHARED, nullptr) != 0) {
    auto e = Error::from_errno(errno, "make '" + dir + "' shared");
    ::umount2(dir.c_str(), MNT_DETACH);
    return e;
  }
  return ok_status();
}

Status remove_pod_dir(const std::string& dir) {
  if (dir.empty()) return Error(ErrorCode::kInvalidArgument, "no pod directory");
  // MNT_DETACH takes the submounts too, here and where they propagated.
  if (::umount2(dir.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
    return Error::from_errno(errno, "unmount '" + dir + "'");
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
    return Error::from_errno(errno, "remove '" + dir + "'");
  return ok_status();
}

namespace {

// Binds `source` on `target` (made as an empty directory or file to match)
// with its submounts. Read-only as a detached copy made read-only before it
// is attached (open_tree, mount_setattr, move_mount): the mount propagates
// to the pod's other namespaces as it is attached, and a read-only remount
// afterwards would stay in this one.
Status bind_propagating(const std::string& source, const std::string& target, bool read_only) {
  struct stat st;
  if (::stat(source.c_str(), &st) != 0) return Error::from_errno(errno, "'" + source + "'");
  if (S_ISDIR(st.st_mode)) {
    if (::mkdir(target.c_str(), 0755) != 0)
      return Error::from_errno(errno, "mkdir '" + target + "'");
  } else {
    UniqueFd made(::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!made) return Error::from_errno(errno, "create '" + target + "'");
  }
  if (!read_only) {
    if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
      return Error::from_errno(errno, "bind '" + source + "' on '" + target + "'");
    return ok_status();
  }
  UniqueFd tree(static_cast<int>(
      ::open_tree(AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)));
  if (!tree) return Error::from_errno(errno, "clone the mount of '" + source + "'");
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0)
    return Error::from_errno(errno, "make '" + source + "' read-only");
  if (::move_mount(tree.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
    return Error::from_errno(errno, "bind '" + source + "' on '" + target + "'");
  return ok_status();
}

// A mount as the guest gets it: a tmpfs whole, a share's without its tag
// and subpath (where the caller serves it).
protocol::Mount guest_mount(const MountSpec& m) {
  protocol::Mount pm;
  pm.target = m.target;
  pm.read_only = m.read_only;
  pm.kind =
      m.type == MountSpec::Type::kTmpfs ? protocol::Mount::kTmpfs : protocol::Mount::kVirtiofs;
  if (m.type == MountSpec::Type::kTmpfs) pm.options = m.options;
  return pm;
}

// Setup's limits of the container cgroup.
void set_limits(protocol::Setup& setup, const protocol::Update& limits) {
  setup.memory_limit_bytes = limits.memory_limit_bytes;
  setup.pids_limit = limits.pids_limit;
  setup.cpu_quota_usec = limits.cpu_quota_usec;
  setup.cpu_period_usec = limits.cpu_period_usec;
}

// The host path of a bind mount's or volume's source.
std::string mount_source(const MountSpec& m, const std::string& state_root) {
  return m.type == MountSpec::Type::kVolume ? state_root + "/volumes/" + m.source + "/_data"
                                            : m.source;
}

}  // namespace

Status bind_into_pod(const ContainerConfig& c, const std::string& pod,
                     const std::string& state_root, bool mounts) {
  if (c.pod_dir.empty() || c.pod_dir.find('/') != std::string::npos || c.pod_dir[0] == '.')
    return Error(ErrorCode::kInvalidArgument, "pod directory '" + c.pod_dir + "' is not a name");
  std::string dir = pod + "/" + c.pod_dir;
  if (::mkdir(dir.c_str(), 0755) != 0) return Error::from_errno(errno, "mkdir '" + dir + "'");
  auto bind_all = [&]() -> Status {
    VESSEL_TRY(bind_propagating(c.rootfs, dir + "/rootfs", c.read_only));
    if (!mounts) return ok_status();
    size_t i = 0;
    for (const auto& m : c.mounts) {
      if (m.type == MountSpec::Type::kTmpfs) continue;
      std::string target = dir + "/m" + std::to_string(i++);
      if (auto s = bind_propagating(mount_source(m, state_root), target, m.read_only); !s.ok())
        return s.error().wrap(std::string(mount_type_name(m.type)) + " for '" + m.target + "'");
    }
    return ok_status();
  };
  if (auto s = bind_all(); !s.ok()) {
    (void)unbind_from_pod(pod, c.pod_dir);
    return s;
  }
  return ok_status();
}

Status unbind_from_pod(const std::string& pod, const std::string& pod_dir) {
  if (pod.empty() || pod_dir.empty() || pod_dir.find('/') != std::string::npos || pod_dir[0] == '.')
    return Error(ErrorCode::kInvalidArgument,
                 "pod directory '" + pod + "', container '" + pod_dir + "': not a pod's");
  struct stat pod_st;
  if (::stat(pod.c_str(), &pod_st) != 0) {
    if (errno == ENOENT) return ok_status();
    return Error::from_errno(errno, "'" + pod + "'");
  }
  std::string dir = pod + "/" + pod_dir;
  auto names = sys::list_dir(dir);
  if (!names.ok()) {
    if (names.error().errnum() == ENOENT) return ok_status();
    return names.error();
  }
  for (const auto& n : *names) {
    std::string path = dir + "/" + n;
    (void)::umount2(path.c_str(), MNT_DETACH);  // EINVAL: not a mount (a failed bind)
    // What is left is the empty mount point this made on the pod's tmpfs;
    // anything on another filesystem is not ours to remove.
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || st.st_dev != pod_st.st_dev) continue;
    if (S_ISDIR(st.st_mode))
      ::rmdir(path.c_str());
    else
      ::unlink(path.c_str());
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
    return Error::from_errno(errno, "remove '" + dir + "'");
  return ok_status();
}

protocol::Setup member_setup(const ContainerConfig& c, uint32_t index, const std::string& hosts,
                             const std::string& resolv_conf) {
  protocol::Setup setup;
  setup.container = index;
  setup.hostname = c.hostname;
  setup.hosts = hosts;
  setup.resolv_conf = resolv_conf;
  setup.read_only = c.read_only;
  setup.rootfs_tag = kRootfsTag;
  setup.rootfs_subpath = c.pod_dir + "/rootfs";
  set_limits(setup, container_limits(c));
  setup.memory_reclaim = 0;  // idle reclaim is container 0's
  size_t i = 0;
  for (const auto& m : c.mounts) {
    protocol::Mount pm = guest_mount(m);
    if (pm.kind == protocol::Mount::kVirtiofs) {
      pm.tag = kRootfsTag;
      pm.subpath = c.pod_dir + "/m" + std::to_string(i++);
    }
    setup.mounts.push_back(std::move(pm));
  }
  return setup;
}

Result<std::unique_ptr<ContainerVm>> ContainerVm::boot(const ContainerConfig& c,
                                                       const BootOptions& o) {
  VESSEL_ASSIGN_OR_RETURN(std::string root, real_root(c));
  std::optional<vmm::Accel> wanted;
  if (!c.accel.empty()) {
    VESSEL_ASSIGN_OR_RETURN(wanted, vmm::parse_accel(c.accel));
  }
  vmm::HostFacts facts = vmm::read_host_facts();
  VESSEL_ASSIGN_OR_RETURN(vmm::AccelChoice accel, vmm::resolve_accel(wanted, facts));

  vmm::VmConfig cfg;
  cfg.kernel = c.kernel;
  cfg.initrd = c.initrd;
  cfg.cpus = c.cpus;
  // A machine's memory is its VM's; a container's is its cgroup's limit,
  // with room beside it for the guest kernel and the agent.
  cfg.memory_bytes = vm_memory_bytes(c);
  cfg.accel = accel.accel;
  cfg.host_tsc_khz = vmm::cpu_khz(facts.cpuinfo);
  protocol::Setup setup{
      c.hostname, "", o.hosts.empty() ? container_hosts(c.hostname, {}, c.extra_hosts) : o.hosts,
      o.resolv_conf.empty()
          ? container_resolv_conf(std::nullopt, c.dns, c.dns_search, c.dns_options)
          : o.resolv_conf,
      static_cast<uint8_t>(c.read_only)};
  set_limits(setup, container_limits(c));
  // A machine's cgroups are its init's; free page reporting alone returns
  // what it frees.
  setup.memory_reclaim = !c.machine.enabled && c.memory_reclaim;
  // The main process's executable, read ahead by the guest while it sets
  // up (a cold exec from the image's disk cost ~50 ms of a start under TCG).
  if (!c.machine.enabled && !c.no_process && !c.argv.empty()) {
    setup.main_command = c.argv[0];
    for (const auto& e : c.env)
      if (e.starts_with("PATH=")) {
        setup.main_path = e.substr(5);
        break;
      }
  }
  if (c.machine.enabled) {
    // The machine's own disk, written in place; its init takes PID 1 after
    // Setup. Its console log spans the boots of one start (the monitor
    // boots a machine again when it rebooted).
    cfg.disks.push_back({root, kRootSerial, false});
    cfg.append_boot_log = true;
    cfg.acpi = true;
    // No getty on the serial console: `machine shell` is the way in, and
    // without udev in the image (a minimal one) systemd would wait 90 s
    // for a dev-ttyS0.device that never appears.
    cfg.cmdline = "systemd.show_status=1 systemd.getty_auto=0";
    setup.lower_serial = kRootSerial;
    setup.machine = 1;
    setup.init = c.machine.init;
    if (!c.machine.user.empty()) {
      setup.user.name = c.machine.user;
      setup.user.uid = c.machine.uid;
      setup.user.gid = c.machine.gid;
      setup.user.home = c.machine.home;
      setup.user.shell = c.machine.shell;
      setup.user.create_home = !c.machine.share_home;
    }
  } else if (c.root_disk) {
    // One disk read-write: the container's qcow2 over the image's base.
    cfg.disks.push_back({o.root_overlay, kRootSerial, false, root});
    setup.lower_serial = kRootSerial;
  } else if (!c.root_image.empty()) {
    cfg.disks.push_back({root, kLowerSerial, true});
    setup.lower_serial = kLowerSerial;
    if (!c.read_only) {
      cfg.disks.push_back({o.upper_disk, kUpperSerial, false});
      setup.upper_serial = kUpperSerial;
    }
  } else {
    // The root is the container's: nothing on the host changes it under a
    // running container, so the guest keeps its pages across opens.
    cfg.shared_dirs = {{kRootfsTag, root, true}};
    setup.rootfs_tag = kRootfsTag;
    // A pod's sandbox shares the pod directory: its own root is in there,
    // beside its members' (bind_into_pod).
    if (c.pod_role == kPodSandbox) setup.rootfs_subpath = c.pod_dir + "/rootfs";
  }
  // Bind mounts and volumes reach host directories (a file through its
  // directory and a subpath). As root they are all served by one virtiofsd
  // (make_share_tree); otherwise, without bind mounts to gather them, by
  // one virtiofsd per distinct directory.
  std::vector<HostShare> shares;
  std::map<HostShare, size_t> share_index;
  std::vector<std::pair<size_t, std::string>> reaches;  // per mount: share, file ("" = all)
  for (const auto& m : c.mounts) {
    protocol::Mount pm = guest_mount(m);
    if (pm.kind == protocol::Mount::kTmpfs) {
      setup.mounts.push_back(std::move(pm));
      reaches.emplace_back(SIZE_MAX, "");
      continue;
    }
    std::string source = mount_source(m, o.state_root);
    struct stat st;
    if (::stat(source.c_str(), &st) != 0)
      return Error::from_errno(errno, std::string(mount_type_name(m.type)) + " source '" + source +
                                          "' for '" + m.target + "'");
    char real_source[PATH_MAX];
    if (!::realpath(source.c_str(), real_source))
      return Error::from_errno(errno, "resolve '" + source + "'");
    std::string dir = real_source, file;
    if (!S_ISDIR(st.st_mode)) {
      file = dir.substr(dir.rfind('/') + 1);
      dir = dir.substr(0, dir.rfind('/'));
      if (dir.empty()) dir = "/";
    }
    HostShare key{dir, m.read_only};
    auto it = share_index.find(key);
    if (it == share_index.end()) {
      it = share_index.emplace(key, shares.size()).first;
      shares.push_back(std::move(key));
    }
    setup.mounts.push_back(std::move(pm));
    reaches.emplace_back(it->second, std::move(file));
  }
  bool share_tree = !shares.empty() && ::geteuid() == 0;
  size_t share_devices = share_tree ? 1 : shares.size();
  cfg.nics = o.nics;
  setup.interfaces = o.interfaces;
  setup.gateway = o.gateway;
  setup.addresses6 = o.addresses6;
  setup.routes = o.routes;
  // QEMU's microvm has 8 virtio-mmio transports without ACPI (more need a
  // second IO-APIC, which only ACPI describes): the agent's port, the root
  // (one disk, two for an overlay root, or a share), the network devices and the mounts' shares
  // must fit. Checked before anything is mounted or started.
  const size_t kTransports = cfg.acpi ? kAcpiTransports : 8;
  size_t root_devices = cfg.disks.size() + (c.root_image.empty() ? 1 : 0);
  // The agent's port and the balloon (free page reporting: freed guest
  // memory goes back to the host) are in every VM.
  cfg.balloon = true;
  cfg.confine = vmm_confinement();
  cfg.cache_dir = o.state_root.empty() ? "" : o.state_root + "/cache";
  cfg.name = "vessel-" + o.runtime_dir.substr(o.runtime_dir.rfind('/') + 1);
  size_t fixed = 2 + root_devices;
  auto n = [](size_t v) { return std::to_string(v); };
  if (fixed + cfg.nics.size() > kTransports)
    return Error(ErrorCode::kInvalidArgument,
                 "too many networks: a VM has " + n(kTransports) +
                     " device slots, and the agent, the balloon and the root leave " +
                     n(kTransports - fixed) + " for networks");
  if (fixed + cfg.nics.size() + share_devices > kTransports) {
    if (share_tree) {
      std::string left = n(kTransports - fixed - 1);
      return Error(ErrorCode::kInvalidArgument,
                   "too many networks for a container with mounts: a VM has " + n(kTransports) +
                       " device slots, and the agent, the balloon, the root and the mounts (one "
                       "slot for all) "
                       "leave " +
                       left + " for networks; use at most " + left +
                       " networks, or no bind mounts or volumes");
    }
    return Error(ErrorCode::kInvalidArgument,
                 "too many mounts: without root each host directory takes a device slot, and "
                 "this container can share at most " +
                     n(kTransports - fixed - cfg.nics.size()) +
                     " host directories (bind mounts of files in one directory count once)");
  }
  PrivateMounts private_mounts;
  if (share_tree) {
    std::string at = o.runtime_dir + "/shares";
    VESSEL_TRY(make_share_tree(at, shares, private_mounts));
    cfg.shared_dirs.push_back({kSharesTag, at});
  } else {
    for (size_t i = 0; i < shares.size(); ++i)
      cfg.shared_dirs.push_back({"m" + std::to_string(i), shares[i].dir});
  }
  for (size_t i = 0; i < setup.mounts.size(); ++i) {
    auto& [share, file] = reaches[i];
    if (share == SIZE_MAX) continue;  // a tmpfs
    protocol::Mount& pm = setup.mounts[i];
    std::string tag = "m" + std::to_string(share);
    if (share_tree) {
      pm.tag = kSharesTag;
      pm.subpath = file.empty() ? tag : tag + "/" + file;
    } else {
      pm.tag = tag;
      pm.subpath = file;
    }
  }
  cfg.serial_ports = {std::string(protocol::kPortName)};
  // The guest's step timings in the boot log at its power-off (guest/system.h).
  if (const char* t = ::getenv("VESSEL_GUEST_TIMINGS"); t && *t == '1')
    cfg.cmdline += cfg.cmdline.empty() ? "vessel.timings" : " vessel.timings";
  cfg.runtime_dir = o.runtime_dir;
  cfg.boot_log = o.boot_log;
  cfg.debug = o.debug;
  // Fresh randomness for the guest's pool, whether it boots or is restored.
  setup.entropy.resize(64);
  if (::getrandom(setup.entropy.data(), setup.entropy.size(), 0) !=
      static_cast<ssize_t>(setup.entropy.size()))
    setup.entropy.clear();
  // A container starts from a template when there is one (vm_template.h):
  // the guest is where a boot would bring it, waiting for its Setup, in
  // ~0.1 s instead of ~0.35 s under TCG. With shares (a --rootfs, bind
  // mounts, volumes) only on a QEMU that can restore them
  // (vmm::restores_with_shares).
  VmTemplate from;
  if (!c.machine.enabled)
    from = open_template(cfg, templates_dir(o.state_root), o.runtime_dir + "/template",
                         std::chrono::seconds(c.boot_timeout_seconds));
  const std::string cold_cmdline = cfg.cmdline;
  auto boot_cmdline = [&] {
    cfg.cmdline = cold_cmdline;
    // The root the Setup will name, for vessel-init to mount while it boots.
    if (std::string early = protocol::early_root(setup); !early.empty()) {
      if (!cfg.cmdline.empty()) cfg.cmdline += " ";
      cfg.cmdline += std::string(protocol::kEarlyRootArg) + early;
    }
  };
  vmm::QemuVmm qemu;
  std::unique_ptr<vmm::VmInstance> vm;
  if (from.state) {
    cfg.incoming_fd = from.state.get();
    auto started = qemu.start(cfg);
    cfg.incoming_fd = -1;
    if (!started.ok()) return started.error();
    vm = std::move(*started);
    Status loaded = vm->resume_incoming(std::chrono::seconds(c.boot_timeout_seconds));
    if (loaded.ok()) {
      setup.restored = 1;
      log::debug("VM restored from template " + from.path);
    } else {
      // A template QEMU cannot load (a damaged file; a QEMU changed in
      // place): it goes, and this VM boots.
      log::warn("VM template " + from.path + ": " + loaded.error().to_string() +
                "; removed, booting instead");
      (void)vm->kill();
      vm.reset();
      drop_template(from);
    }
  }
  if (!vm) {
    boot_cmdline();
    auto started = qemu.start(cfg);
    if (!started.ok()) return started.error();
    vm = std::move(*started);
  }
  int port = vm->port_fd(protocol::kPortName);
  ::fcntl(port, F_SETFL, ::fcntl(port, F_GETFL) | O_NONBLOCK);
  std::unique_ptr<ContainerVm> self(new ContainerVm(std::move(vm), port, o.abort_fd));
  self->accel_ = accel;
  self->private_mounts_ = private_mounts.release();
  self->host_shares_ = !cfg.shared_dirs.empty();

  auto fail = [&](Error e, const std::string& what) -> Error {
    // A guest that hangs up usually means QEMU is exiting: give it a moment
    // and say so; the boot log then tells why.
    if (e.code() == ErrorCode::kUnavailable && e.message() != "interrupted") {
      pollfd p{self->vm_->exit_fd(), POLLIN, 0};
      if (::poll(&p, 1, 1000) == 1)
        e = Error(ErrorCode::kUnavailable, "the VM stopped unexpectedly");
    }
    if (e.message() == "interrupted") return e;
    return self->with_boot_log(std::move(e).wrap(what));
  };

  // The Setup goes now, not after the guest's Hello: it waits in the port
  // until vessel-init opens it, which saves a round trip through QEMU's
  // main loop (3-8 ms under TCG). A booting guest answers it after its
  // Hello, whose version is checked below; a restored one (whose version
  // was checked when its template was made) answers it at once.
  const std::string set_up = c.machine.enabled ? "set up machine" : "set up container";
  if (setup.restored) {
    // The template's clock is the guest's: the host's time, sent now.
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    setup.realtime_ns =
        static_cast<uint64_t>(now.tv_sec) * 1000000000u + static_cast<uint64_t>(now.tv_nsec);
  }
  if (auto s = self->agent_.send_message(MsgType::kSetup, 0, setup); !s.ok())
    return fail(s.error(), set_up);
  // Boot: the guest says hello once vessel-init serves the port. A restored
  // guest said hello to the template's maker.
  if (!setup.restored) {
    auto hello_frame = self->await(std::chrono::seconds(c.boot_timeout_seconds));
    if (!hello_frame.ok()) return fail(hello_frame.error(), "boot VM");
    if (hello_frame->header.type != static_cast<uint16_t>(MsgType::kHello))
      return fail(Error(ErrorCode::kProtocol, "guest did not start with hello"), "boot VM");
    auto hello = agent::decode_as<protocol::Hello>(*hello_frame);
    if (!hello.ok()) return fail(hello.error(), "boot VM");
    if (hello->version != protocol::kVersion)
      return fail(Error(ErrorCode::kProtocol, "guest speaks protocol version " +
                                                  std::to_string(hello->version) + ", host " +
                                                  std::to_string(protocol::kVersion)),
                  "boot VM");
    log::debug("guest: " + hello->guest);
  }
  // A machine answers once its init takes commands (at most 30 s after it starts).
  auto reply = self->await(c.machine.enabled ? 90s : 30s);
  if (!reply.ok()) return fail(reply.error(), set_up);
  auto result = agent::decode_as<protocol::Reply>(*reply);
  if (!result.ok() || reply->header.type != static_cast<uint16_t>(MsgType::kSetupResult))
    return fail(Error(ErrorCode::kProtocol, "unexpected reply to setup"), set_up);
  if (result->errnum != 0)
    return fail(Error(ErrorCode::kInternal, result->message, result->errnum), set_up);
  return self;
}

Result<agent::Frame> ContainerVm::await(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  agent::Frame f;
  while (!agent_.next(f)) {
    // A channel error comes after the frames that arrived whole before it
    // (in one read with them, e.g. a reply and then a bad header).
    if (agent_.error()) return *agent_.error();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Error(ErrorCode::kTimeout, "timed out waiting for the guest");
    pollfd p[3] = {{agent_.fd(), POLLIN, 0}, {vm_->exit_fd(), POLLIN, 0}, {abort_fd_, POLLIN, 0}};
    if (::poll(p, 3, static_cast<int>(left.count())) < 0 && errno != EINTR)
      return Error::from_errno(errno, "poll");
    if (p[0].revents) {
      (void)agent_.read_available();  // an error is kept: returned above, after the frames
      continue;
    }
    if (p[1].revents) return Error(ErrorCode::kUnavailable, "the VM stopped");
    if (p[2].revents) return Error(ErrorCode::kUnavailable, "interrupted");
  }
  return f;
}

void ContainerVm::poweroff(std::chrono::milliseconds grace) {
  // The guest syncs, answers Poweroff, and reboots, which ends QEMU
  // (-no-reboot). Its answer means its data is on the host: QEMU is ended
  // then, not after the guest kernel's reboot. A machine's init shuts down
  // first and does not answer: QEMU ends with its reboot. Frames still on
  // their way (output of exec'd processes) are dropped: the VM is going.
  auto deadline = Clock::now() + grace;
  if (agent_.send(MsgType::kPoweroff, 0).ok()) {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) break;
      auto f = await(left);
      if (!f.ok()) break;  // the VM stopped, the channel ended, or the time ran out
      if (f->header.type == static_cast<uint16_t>(MsgType::kPoweroff)) {
        log::debug("poweroff: guest synced");
        (void)vm_->kill();
        return;
      }
    }
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  (void)vm_->stop(std::max(left, std::chrono::milliseconds(0)));
}

void ContainerVm::discard(std::chrono::milliseconds grace) {
  if (host_shares_) return poweroff(grace);
  (void)vm_->kill();
}

Error ContainerVm::with_boot_log(Error e) const {
  std::string tail = vm_->boot_log_tail(2048);
  if (tail.empty()) return e;
  return Error(e.code(), e.to_string() + "\n--- boot log (tail) ---\n" + tail);
}

}  // namespace vessel::runtime
