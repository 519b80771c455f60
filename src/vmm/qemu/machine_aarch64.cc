// arm64: QEMU's virt machine with its virtio-mmio transports described in
// the device tree, a PL011 console, and the kernel's Image format.
#include "vmm/qemu_args.h"

namespace vessel::vmm {

MachineSpec machine_spec(const VmConfig& c) {
  MachineSpec m;
  m.binary = "qemu-system-aarch64";
  bool kvm = c.accel == Accel::kKvm;
  // The accelerator is given by qemu_command_line (-accel, with TCG's options).
  m.machine_args = {"-M", "virt,gic-version=max", "-cpu", kvm ? "host" : "max"};
  m.kernel_args = "console=ttyAMA0 reboot=t panic=-1";
  // Stale TCG translations after virtiofsd writes guest RAM: see
  // machine_x86_64.cc (the cause is in QEMU's TCG, not the architecture).
  if (!kvm) m.kernel_args += " init_on_alloc=1";
  return m;
}

}  // namespace vessel::vmm
