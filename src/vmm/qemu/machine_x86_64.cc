// x86_64: QEMU's microvm machine. No PCI, no ACPI for containers: QEMU then
// lists the virtio-mmio devices on the kernel command line itself (with ACPI
// on, a kernel without ACPI sees none). Machines (VmConfig::acpi) have ACPI:
// their kernel powers the VM off through it, and finds the devices in it. rtc=on avoids a 1 s RTC
// probe timeout. The PIT and PIC stay: without the PIT the kernel finds no working timer and panics
// ("IO-APIC + timer doesn't work"); without the PIC it hangs. The kernel is an uncompressed vmlinux
// booted through its PVH entry point.
#include "vmm/qemu_args.h"

namespace vessel::vmm {

MachineSpec machine_spec(const VmConfig& c) {
  MachineSpec m;
  m.binary = "qemu-system-x86_64";
  bool kvm = c.accel == Accel::kKvm;
  m.machine_args = {"-M",
                    std::string("microvm,accel=") + (kvm ? "kvm" : "tcg") +
                        (c.acpi ? ",acpi=on" : ",acpi=off") + ",rtc=on,isa-serial=on",
                    // Not "max" under TCG: with QEMU 7.2 about 1 run in 8 of
                    // `sh -c 'echo "$X"'` died of SIGSEGV in the guest (a newer instruction
                    // emulated wrongly; max without AVX still failed 1 in 20). Nehalem
                    // (x86-64-v2, as RHEL 9 images need) failed 0 in 30, qemu64 0 in 50.
                    "-cpu", kvm ? "host" : "Nehalem"};
  m.kernel_args = "console=ttyS0 reboot=t panic=-1";
  if (!kvm) {
    // Under TCG the guest TSC follows the host's: tell the kernel it is
    // reliable, skip the IO-APIC timer check, and hand it the delay-loop
    // value it would calibrate (TSC ticks per jiffy, HZ=100 in our config).
    // Measured: floor boot 1.13 s -> 0.81 s (docs/performance.md).
    m.kernel_args += " tsc=reliable no_timer_check";
    if (c.host_tsc_khz) m.kernel_args += " lpj=" + std::to_string(c.host_tsc_khz * 1000 / 100);
    // microvm's ACPI is "hardware-reduced": the kernel then skips the PIT
    // and, without the TSC's rate, hung calibrating the APIC timer (10 boots
    // in 10 under load). Its rate is the host's under TCG.
    if (c.acpi && c.host_tsc_khz)
      m.kernel_args += " tsc_early_khz=" + std::to_string(c.host_tsc_khz);
  }
  return m;
}

}  // namespace vessel::vmm
