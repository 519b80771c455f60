#!/usr/bin/env bash
# Start latency: `vessel run --rm --rootfs <busybox> true` against the floor,
# the same QEMU, kernel, machine and memory booting an init that reboots at
# once (no Vessel code), alternated in one run. Prints medians and the ratio.
#
#   bench/start_latency.sh [--build-dir DIR] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
runs=10
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "start_latency.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
vessel=$build/bin/vessel
kernel=$build/share/vessel/kernel
floor_initrd=$build/bench/floor-initramfs.cpio.gz
rootfs=$build/rootfs/busybox
for f in "$vessel" "$kernel" "$floor_initrd" "$rootfs/bin/busybox"; do
  [ -e "$f" ] || { echo "missing $f: build first (scripts/setup.sh)" >&2; exit 1; }
done
root=$(mktemp -d /tmp/vessel-bench.XXXXXX)
trap 'rm -rf "$root"' EXIT
accel=${VESSEL_ACCEL:-tcg}
if [ "$accel" = kvm ]; then cpu=host; tcg_args=; else
  cpu=Nehalem
  # The same TCG hints vmm/qemu/machine_x86_64.cc gives (lpj from the host TSC).
  khz=$(awk -F: '/^cpu MHz/ {printf "%d", $2 * 1000; exit}' /proc/cpuinfo)
  tcg_args="tsc=reliable no_timer_check${khz:+ lpj=$((khz * 1000 / 100))}"
fi

# The floor's command line mirrors the machine vmm/qemu/machine_x86_64.cc builds.
floor() {
  floor_console "$@" >/dev/null
}
floor_console() {
  qemu-system-x86_64 -M microvm,accel=$accel,acpi=off,rtc=on,isa-serial=on \
    -cpu $cpu -smp 2 -m 576M -nodefaults -no-user-config -display none -no-reboot \
    -chardev stdio,id=con,signal=off -serial chardev:con \
    -kernel "$kernel" -initrd "$floor_initrd" \
    -append "console=ttyS0 reboot=t panic=-1 $tcg_args quiet" </dev/null 2>&1
}
ours() {
  VESSEL_ACCEL=$accel "$vessel" --root "$root" run --rm --rootfs "$rootfs" true </dev/null
}
ours_echo() {
  VESSEL_ACCEL=$accel "$vessel" --root "$root" run --rm --rootfs "$rootfs" echo ok </dev/null
}
# shellcheck source=bench/lib.sh
. bench/lib.sh  # the script has cd'd to the repository root

# Warm the page cache, and check that both really ran.
floor_console | grep -q vessel-floor-init || { echo "floor init did not run" >&2; exit 1; }
[ "$(ours_echo)" = ok ] || { echo "vessel run failed" >&2; exit 1; }
: > "$root/ours.txt"; : > "$root/floor.txt"
for i in $(seq "$runs"); do
  t0=$(now); floor; t1=$(now); ours; t2=$(now)
  echo "$t1 - $t0" | bc >> "$root/floor.txt"
  echo "$t2 - $t1" | bc >> "$root/ours.txt"
done
m_ours=$(median < "$root/ours.txt")
m_floor=$(median < "$root/floor.txt")
printf 'start latency (%s, %d runs alternated, accel=%s)\n' "$(uname -m)" "$runs" "$accel"
printf '  vessel run --rm true : median %.3f s  (min %.3f, max %.3f)\n' "$m_ours" \
  "$(sort -n "$root/ours.txt" | head -1)" "$(sort -n "$root/ours.txt" | tail -1)"
printf '  floor (bare boot)    : median %.3f s  (min %.3f, max %.3f)\n' "$m_floor" \
  "$(sort -n "$root/floor.txt" | head -1)" "$(sort -n "$root/floor.txt" | tail -1)"
printf '  ratio                : %.2f\n' "$(echo "$m_ours / $m_floor" | bc -l)"
