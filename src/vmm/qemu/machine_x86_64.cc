// x86_64: QEMU's microvm machine. No PCI, no ACPI: QEMU then lists the
// virtio-mmio devices on the kernel command line itself (with ACPI on, a
// kernel without ACPI sees none). rtc=on avoids a 1 s RTC probe timeout.
// The PIT and PIC stay: without the PIT the kernel finds no working timer
// and panics ("IO-APIC + timer doesn't work"); without the PIC it hangs.
// The kernel is an uncompressed vmlinux booted through its PVH entry point.
#include "vmm/qemu_args.h"

namespace vessel::vmm {

MachineSpec machine_spec(const VmConfig& c) {
  MachineSpec m;
  m.binary = "qemu-system-x86_64";
  bool kvm = c.accel == Accel::kKvm;
  m.machine_args = {
      "-M",
      std::string("microvm,accel=") + (kvm ? "kvm" : "tcg") + ",acpi=off,rtc=on,isa-serial=on",
      "-cpu", kvm ? "host" : "max"};
  m.kernel_args = "console=ttyS0 reboot=t panic=-1";
  return m;
}

}  // namespace vessel::vmm
