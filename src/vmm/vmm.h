// The hypervisor behind an interface. This layer knows nothing of OCI,
// containers or the agent protocol: it boots a kernel with some devices.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "vmm/accel.h"

namespace vessel::vmm {

/// A host directory served to the guest over virtio-fs under `tag`.
struct SharedDir {
  std::string tag;
  std::string host_path;
  /// The guest keeps a file's cached pages when it opens it again (a
  /// container's root, which the host does not change under it): without
  /// it every open drops them, so every exec read its binary again through
  /// virtiofsd (busybox's `true`: 30 ms instead of 3 under TCG). Attributes
  /// and names are revalidated after 1 s either way; a file the host
  /// changes is re-read when its size or mtime is seen to change.
  bool keep_cache = false;
};

/// A raw disk image attached as a virtio-blk device; the guest finds it by
/// `serial` (at most 20 bytes) in /sys/block/vd*/serial.
struct Disk {
  std::string path;
  std::string serial;
  bool read_only = false;
  /// Non-empty: `path` is a qcow2 image read-write over this raw image,
  /// read-only (its backing file, given here rather than named in the
  /// qcow2, so that a jailed QEMU gets it as an fd).
  std::string backing;
};

/// A virtio-net device backed by an open tap device. The caller owns `tap_fd`
/// and keeps it open until start() returns (QEMU inherits its own copy).
struct NetDevice {
  int tap_fd = -1;
  std::string mac;  // "02:..:..:..:..:.."
};

/// How the hypervisor's process is confined (docs/security.md).
struct Confinement {
  /// QEMU's own seccomp sandbox (-sandbox on, ...), and, when the caller is
  /// root, a jail (sys/jail.h): namespaces of its own, a root that holds
  /// only what QEMU loads, `uid`/`gid` with no capabilities. Disks and
  /// vhost-user sockets are then passed as fds.
  bool enabled = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

struct VmConfig {
  std::string kernel;   // kernel image (vmlinux on x86_64, Image on arm64)
  std::string initrd;   // initramfs
  std::string cmdline;  // appended to the backend's own kernel arguments
  unsigned cpus = 2;
  uint64_t memory_bytes = 512ull << 20;
  Accel accel = Accel::kTcg;
  std::vector<SharedDir> shared_dirs;
  std::vector<Disk> disks;
  std::vector<NetDevice> nics;
  /// Names of virtio-serial ports; the host end of each is a connected
  /// socket available from VmInstance::port_fd().
  std::vector<std::string> serial_ports;
  /// The VM's name (QEMU's -name: shown by ps and in QEMU's messages);
  /// letters, digits, '-', '_' and '.' only. "" for none.
  std::string name;
  /// Directory (existing, private) where the backend may keep what it
  /// learns once per host (a confined QEMU's list of libraries); "" for
  /// none.
  std::string cache_dir;
  /// Directory (existing, private) for sockets and the boot log.
  std::string runtime_dir;
  /// Where the boot log goes instead of <runtime_dir>/boot.log (kept after
  /// the VM is gone, e.g. for `vessel logs --boot`).
  std::string boot_log;
  /// Console and QEMU diagnostics go to stderr instead of the boot log.
  bool debug = false;
  /// Append to the boot log rather than start it afresh.
  bool append_boot_log = false;
  /// ACPI (the kernel must have it; the machine kernel does): the guest
  /// can power the VM off, QMP system_powerdown reaches it, and the devices
  /// are described by ACPI (up to 23 virtio-mmio devices, not 8). Without
  /// it (containers) the guest ends the VM by rebooting.
  bool acpi = false;
  /// Host TSC rate in kHz (0: unknown). Under TCG the guest's TSC runs at the
  /// host's rate, so the kernel can be told its delay-loop value up front.
  uint64_t host_tsc_khz = 0;
  /// A virtio-balloon device with free page reporting: pages the guest
  /// frees go back to the host within seconds (it never inflates).
  bool balloon = false;
  Confinement confine;
  /// An open file holding a VM state that VmInstance::save_state() wrote
  /// for a VM of this same configuration (its disks' files and the fds
  /// aside): the VM starts from it rather than booting, paused until
  /// VmInstance::resume_incoming(). -1: boot. The caller keeps it open
  /// until start() returns.
  int incoming_fd = -1;
  /// A template for VMs with shares (vm_template.h): the shares' devices are
  /// left out, and the virtio-mmio transports they would take are named on
  /// the kernel command line, empty. A VM of the same config without this
  /// flag, restored from the template's state, has its shares' devices
  /// there, and its guest binds them (protocol.md, "Templates"). No
  /// virtiofsd is started. Needs a QEMU that loads a state into a VM with
  /// a vhost-user-fs device (restores_with_shares()).
  bool shares_late = false;
};

/// A key (32 hex digits) of what a VM state saved from a VM of `config` depends on (the
/// QEMU binary, kernel and initramfs files, the machine, its devices and
/// their order), without what each VM has of its own (disk files, fds,
/// runtime paths, name, boot log): a VM of another config whose key is equal
/// can start from that state (VmConfig::incoming_fd). Network devices count,
/// their MACs and taps do not (a restored VM has its template's MACs). ""
/// when `config`'s files cannot be read, or its machine cannot name its
/// shares' devices ahead (MachineSpec::virtio_slots). A VM with shares
/// starts from the state of a VM of its config with `shares_late`: the
/// shares' tags are not part of the key (the guest reads them after the
/// restore), their number is.
std::string state_key(const VmConfig& config);

/// Whether the QEMU that VMs of `config` run can be restored with shares:
/// QEMU 8.2 and later. QEMU 7.2 marks vhost-user-fs unmigratable and then
/// refuses to load any state into a VM that has one ("State blocked by
/// non-migratable device"), even a state saved without it. Runs QEMU
/// (`--version`): for a template's maker, not for every start.
bool restores_with_shares(const VmConfig& config);

/// One running VM. Destruction forces it off and releases everything it
/// started (QEMU, virtiofsd); nothing outlives the object.
class VmInstance {
 public:
  virtual ~VmInstance() = default;
  /// Host end of the virtio-serial port `name`, or -1.
  virtual int port_fd(std::string_view name) const = 0;
  /// Becomes readable when the VM has stopped.
  virtual int exit_fd() const = 0;
  /// True until the VM stops.
  virtual bool running() = 0;
  /// The hypervisor's view of the VM ("running", "paused", "shutdown", ...).
  virtual Result<std::string> status() = 0;
  /// Freezes (`paused`) or thaws the VM's vCPUs (QMP stop / cont); devices
  /// and sockets stay as they are. Added for vessel-runtime's pause/resume.
  virtual Status pause(bool paused) = 0;
  /// Waits up to `grace` for the VM to stop by itself (the guest was asked
  /// to power off), then forces it off. Stops the device daemons too.
  virtual Status stop(std::chrono::milliseconds grace) = 0;
  /// Ends the VM and its daemons at once (SIGKILL), without asking anyone:
  /// for a guest that has written everything back and is only resetting.
  virtual Status kill() = 0;
  /// The hypervisor's host process (for host-side accounting: its memory).
  virtual pid_t pid() const = 0;
  /// The last `bytes` of the boot log (console and hypervisor messages).
  virtual std::string boot_log_tail(size_t bytes) const = 0;
  /// Pauses the VM and writes its state (CPUs, RAM, devices; not its
  /// disks' contents) to `fd`, for VmConfig::incoming_fd; the VM stays
  /// paused. Waits up to `timeout`.
  virtual Status save_state(int fd, std::chrono::milliseconds timeout) = 0;
  /// For a VM started with VmConfig::incoming_fd: waits up to `timeout` for
  /// the state to be loaded, then runs the VM.
  virtual Status resume_incoming(std::chrono::milliseconds timeout) = 0;
};

class Vmm {
 public:
  virtual ~Vmm() = default;
  /// Starts a VM; returns once the hypervisor runs (the guest may still be booting).
  virtual Result<std::unique_ptr<VmInstance>> start(const VmConfig& config) = 0;
};

}  // namespace vessel::vmm
