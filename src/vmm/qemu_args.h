// The QEMU command line for a VmConfig: a pure function, unit-tested.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "vmm/vmm.h"

namespace vessel::vmm {

/// Host resources already prepared for QEMU: fd numbers as QEMU will see
/// them (inherited), and the vhost-user sockets of the virtio-fs daemons.
struct QemuLaunch {
  std::vector<int> port_fds;            // one per VmConfig::serial_ports
  int qmp_fd = -1;                      // connected QMP socket
  std::vector<std::string> fs_sockets;  // one per VmConfig::shared_dirs
  std::vector<int> tap_fds;             // one per VmConfig::nics
  /// Let the taps use vhost-net (the kernel moves the packets, not QEMU).
  /// Only with KVM and a /dev/vhost-net: see use_vhost_net().
  bool vhost_net = false;
  /// With vhost_net, an open /dev/vhost-net per NIC (fds as QEMU sees them).
  std::vector<int> vhost_fds;
  /// Confined (VmConfig::confine): QEMU's seccomp sandbox with every
  /// optional part denied.
  bool sandbox = false;
  /// Paths of the kernel and initramfs as QEMU sees them (in its jail);
  /// "" = VmConfig's.
  std::string kernel_path;
  std::string initrd_path;
  /// With shared directories: a directory (in the jail, a tmpfs with huge
  /// pages) where QEMU creates, and at once unlinks, the guest RAM file that
  /// virtiofsd maps too; "" = a memfd.
  std::string ram_dir;
  /// Firmware directory (-L); "" = QEMU's own.
  std::string data_dir;
  /// Per disk, the fds (as QEMU sees them) of its image, put in an fd set
  /// (-add-fd) that the drive names as /dev/fdset/N: a read-only disk needs
  /// an O_RDONLY fd, a writable one an O_RDWR and an O_RDONLY one (QEMU
  /// opens it both ways). Empty: disks are opened by path.
  std::vector<std::vector<int>> disk_fds;
  /// Per disk with a backing file (Disk::backing): the fd of the backing
  /// (read-only); empty or short: by path.
  std::vector<std::vector<int>> backing_fds;
  /// Per shared dir, a connected vhost-user socket (fd as QEMU sees it)
  /// instead of fs_sockets.
  std::vector<int> fs_fds;
  /// The VM starts from a saved state (VmConfig::incoming_fd): -incoming
  /// defer. The file goes over QMP once the state's format is set
  /// (QemuInstance::resume_incoming), so QEMU keeps no fd of it afterwards.
  bool incoming = false;
};

/// The -sandbox argument of a confined QEMU.
inline constexpr const char* kQemuSandbox =
    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

/// vhost-net needs /dev/vhost-net and KVM: the kernel's vhost worker is
/// kicked and interrupts the guest through KVM's ioeventfd and irqfd, which
/// TCG does not have.
bool use_vhost_net(Accel accel, bool vhost_net_device_exists);

/// A VM restored from a template under TCG holds its guest RAM in 4 KiB
/// pages (QEMU without transparent huge pages, or its jail's RAM tmpfs
/// without huge=): the template's ~21 MiB of state lies in ~20 of the
/// guest's 2 MiB ranges, so huge pages would cost an idle container 40 MiB
/// instead of 24, for ~30 ms of faults in its start. Booted VMs touch their
/// RAM densely; under KVM huge pages also back the guest's second-level
/// page tables (docs/architecture.md, "Guest RAM").
bool guest_ram_in_small_pages(const VmConfig& config);

/// True for a MAC as QEMU's mac= takes it: six pairs of hex digits joined by
/// ':' (nothing else can reach the command line through it).
bool valid_mac(std::string_view mac);

/// Per-architecture pieces (qemu/machine_<arch>.cc).
struct MachineSpec {
  std::string binary;  // qemu-system-<arch>
  /// A smaller build of the same QEMU for this VM, used when it is
  /// installed beside `binary` (after links): "" = none.
  std::string lean_binary;
  std::vector<std::string> machine_args;  // -M ..., -cpu ...
  std::string kernel_args;                // console and reboot handling
  /// The machine's virtio-mmio transports when the kernel learns them from
  /// its command line: `virtio_slots` of them, 512 bytes each from
  /// `virtio_mmio_base`, transport i on interrupt `virtio_irq_base` + i and
  /// QEMU bus "virtio-mmio-bus.<i>". Each device is put on one explicitly
  /// (virtio_buses()), which also lets a template name the transports of
  /// devices it leaves out (VmConfig::shares_late). 0: the machine
  /// describes its devices otherwise (ACPI, a device tree).
  int virtio_slots = 0;
  uint64_t virtio_mmio_base = 0;
  int virtio_irq_base = 0;
  /// An interrupt a transport must not have: another device's, which does
  /// not share it (-1: none).
  int busy_irq = -1;
};

/// The transports a VM's virtio-mmio devices get, in the order
/// qemu_command_line() gives them: from the highest index down (as QEMU
/// would pick them), skipping the one on MachineSpec::busy_irq. Empty if the
/// machine has no such layout.
std::vector<int> virtio_buses(const MachineSpec& machine);
MachineSpec machine_spec(const VmConfig& config);

std::vector<std::string> qemu_command_line(const VmConfig& config, const QemuLaunch& launch);

/// The kernel arguments that name the transports a VM of `config` gives its
/// shares' devices (` virtio_mmio.device=512@0x...:N` each), for a template
/// that leaves them out (VmConfig::shares_late); "" if the machine has no
/// such layout or too few transports.
std::string late_share_args(const VmConfig& config, const QemuLaunch& launch,
                            const MachineSpec& machine);

}  // namespace vessel::vmm
