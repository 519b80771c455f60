// The floor of the start-latency benchmark: an init that reboots (which ends
// QEMU, run with -no-reboot) the moment the kernel starts it. Booting this
// with the same QEMU and kernel measures what Vessel cannot go below.
#include <sys/reboot.h>
#include <unistd.h>

int main() {
  // The benchmark checks for this line once: a kernel that panics also
  // "boots fast", and must not pass for the floor.
  static const char kMarker[] = "vessel-floor-init\n";
  ssize_t unused = ::write(1, kMarker, sizeof kMarker - 1);
  (void)unused;
  ::reboot(RB_AUTOBOOT);
  return 0;
}
