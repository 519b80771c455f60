// The floor of the start-latency benchmark: an init that reboots (which ends
// QEMU, run with -no-reboot) the moment the kernel starts it. Booting this
// with the same QEMU and kernel measures what Vessel cannot go below.
#include <sys/reboot.h>
#include <unistd.h>

int main() {
  ::reboot(RB_AUTOBOOT);
  return 0;
}
