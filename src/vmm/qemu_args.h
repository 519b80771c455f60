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
};

/// vhost-net needs /dev/vhost-net and KVM: the kernel's vhost worker is
/// kicked and interrupts the guest through KVM's ioeventfd and irqfd, which
/// TCG does not have.
bool use_vhost_net(Accel accel, bool vhost_net_device_exists);

/// True for a MAC as QEMU's mac= takes it: six pairs of hex digits joined by
/// ':' (nothing else can reach the command line through it).
bool valid_mac(std::string_view mac);

/// Per-architecture pieces (qemu/machine_<arch>.cc).
struct MachineSpec {
  std::string binary;                     // qemu-system-<arch>
  std::vector<std::string> machine_args;  // -M ..., -cpu ...
  std::string kernel_args;                // console and reboot handling
};
MachineSpec machine_spec(const VmConfig& config);

std::vector<std::string> qemu_command_line(const VmConfig& config, const QemuLaunch& launch);

}  // namespace vessel::vmm
