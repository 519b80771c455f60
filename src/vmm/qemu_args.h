// The QEMU command line for a VmConfig: a pure function, unit-tested.
#pragma once

#include <string>
#include <vector>

#include "vmm/vmm.h"

namespace vessel::vmm {

/// Host resources already prepared for QEMU: fd numbers as QEMU will see
/// them (inherited), and the vhost-user sockets of the virtio-fs daemons.
struct QemuLaunch {
  std::vector<int> port_fds;            // one per VmConfig::serial_ports
  int qmp_fd = -1;                      // connected QMP socket
  std::vector<std::string> fs_sockets;  // one per VmConfig::shared_dirs
};

/// Per-architecture pieces (qemu/machine_<arch>.cc).
struct MachineSpec {
  std::string binary;                     // qemu-system-<arch>
  std::vector<std::string> machine_args;  // -M ..., -cpu ...
  std::string kernel_args;                // console and reboot handling
};
MachineSpec machine_spec(const VmConfig& config);

std::vector<std::string> qemu_command_line(const VmConfig& config, const QemuLaunch& launch);

}  // namespace vessel::vmm
