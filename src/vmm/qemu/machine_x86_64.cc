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
  // Debian's (and Ubuntu's) build of QEMU for the microvm machine alone:
  // KVM only, 13 libraries instead of 50, a 7.8 MB binary instead of 29, and
  // every device a VM without shares has; no vhost-user-fs-device. Measured
  // before the guest runs (bench/vmm_footprint.sh, 10 QEMUs): 9.7 MiB per
  // QEMU beyond guest RAM against 15.7, of it relocated data 1.2 against
  // 5.0 MiB (docs/performance.md, "Session 17").
  if (kvm && c.shared_dirs.empty()) m.lean_binary = "qemu-system-x86_64-microvm";
  // The accelerator is not a machine property here: qemu_command_line
  // gives it as -accel, which takes TCG's options (both cannot be given).
  m.machine_args = {
      "-M", std::string("microvm") + (c.acpi ? ",acpi=on" : ",acpi=off") + ",rtc=on,isa-serial=on",
      // Not "max" under TCG: with QEMU 7.2 about 1 run in 8 of
      // `sh -c 'echo "$X"'` died of SIGSEGV in the guest (a newer instruction
      // emulated wrongly; max without AVX still failed 1 in 20). Nehalem
      // (x86-64-v2, as RHEL 9 images need) failed 0 in 30, qemu64 0 in 50.
      "-cpu", kvm ? "host" : "Nehalem"};
  m.kernel_args = "console=ttyS0 reboot=t panic=-1";
  if (!c.acpi) {
    // microvm's layout without ACPI (hw/i386/microvm.h: VIRTIO_MMIO_BASE,
    // VIRTIO_NUM_TRANSPORTS, VIRTIO_IRQ_BASE), QEMU 7.2 and 10.0 alike; QEMU
    // names each used transport on the kernel command line as
    // `virtio_mmio.device=512@<base + 512 i>:<5 + i>`. Transport 3's
    // interrupt, 8, is the RTC's (rtc=on): the fifth device QEMU placed
    // itself landed there and failed its probe ("genirq: Flags mismatch
    // irq 8 ... (virtio4) vs. ... (rtc0)"): the balloon of a container with
    // a network and a volume. So 7 transports, not 8.
    m.virtio_slots = 8;
    m.virtio_mmio_base = 0xfeb00000;
    m.virtio_irq_base = 5;
    m.busy_irq = 8;
  }
  if (!kvm) {
    // Under TCG the guest TSC follows the host's: tell the kernel it is
    // reliable, skip the IO-APIC timer check, and hand it the delay-loop
    // value it would calibrate (TSC ticks per jiffy, HZ=100 in our config).
    // Measured: floor boot 1.13 s -> 0.81 s (docs/performance.md).
    m.kernel_args += " tsc=reliable no_timer_check";
    if (c.host_tsc_khz) {
      m.kernel_args += " lpj=" + std::to_string(c.host_tsc_khz * 1000 / 100);
      // The TSC's rate, so the kernel does not measure it against the PIT.
      // That measurement is timed in host time and fails whenever the
      // emulation is slow (a busy host, several VMs booting at once): the
      // guest printed "tsc: Unable to calibrate against PIT ... Marking TSC
      // unstable" and fell back to the refined-jiffies clocksource, which
      // is not good for high resolution timers, so the tick never became
      // one-shot and NO_HZ_IDLE never stopped it: 100 timer interrupts a
      // second per vCPU forever, and clock_gettime() in 10 ms steps. 10 idle
      // containers started in a row on a loaded host: 3.3 % of a host core
      // each (all 10 on refined-jiffies); with the rate given, 0.2 % (all
      // on the TSC).
      // microvm with ACPI ("hardware-reduced") skips the PIT altogether and
      // then hung calibrating the APIC timer without it (10 boots in 10).
      m.kernel_args += " tsc_early_khz=" + std::to_string(c.host_tsc_khz);
    }
    // TCG keeps translated guest code until a write through the emulated
    // CPU or QEMU's own device code hits its page. virtiofsd (vhost-user)
    // writes guest RAM through its own mapping, unseen: when a page whose
    // code was translated is freed and the page cache reuses it for a file
    // read over virtio-fs, a later exec from that page can run the stale
    // translation. That was the "1 run in 500 of busybox sh dies of
    // SIGSEGV": a loop that drops the guest's caches and execs two static
    // binaries from virtio-fs crashed 2 times in 1000 (4 in 1300 in all);
    // with the kernel zeroing every page it hands out (a CPU write, which
    // invalidates the stale code) 0 in 2000. QEMU 10.0 crashes more often
    // (44 runs in 150) and is fixed the same way. Start time: no change
    // measured (docs/architecture.md, "TCG and vhost-user writes").
    m.kernel_args += " init_on_alloc=1";
    // QEMU's emulated local APIC counts at 1 GHz, and TCG offers neither
    // TSC deadline mode nor CPUID leaf 0x15, so the kernel measured the
    // APIC timer for 10 ticks against the TSC and 10 more against the PIT:
    // ~0.25 s of every boot. lapic_timer_khz= (kernel/patches/0001) gives
    // it the rate. With KVM and -cpu host the timer runs in TSC deadline
    // mode and is not calibrated.
    m.kernel_args += " lapic_timer_khz=1000000";
  }
  return m;
}

}  // namespace vessel::vmm
