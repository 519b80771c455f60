#!/usr/bin/env bash
# Where a start's time goes between the host and QEMU: alternates the floor
# (bench/lib.sh's floor_boot, as bench/start_latency.sh boots it), `vessel
# run --rm --network none --rootfs busybox true` and `vessel run --rm
# --network none vessel/busybox true` for --runs N, and splits each of
# Vessel's runs with the kernel's own clock (tracefs events
# sched_process_exec and sched_process_exit):
#
#   pre   the CLI's exec to QEMU's exec (CLI, monitor, host cgroup, jail)
#   qemu  QEMU's exec to its exit (the boot, the guest's work, power-off)
#   post  QEMU's exit to the CLI's exit (reaping, removal, the exit report)
#
# beside the floor's QEMU life, and prints the medians. Needs root (tracefs;
# mounted at /sys/kernel/tracing if it is not). As root the script
# re-executes itself under `unshare -n`.
#
#   bench/start_split.sh [--build-dir DIR] [--runs N]
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
build=build
runs=10
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$self"; exit 0 ;;
    *) echo "start_split.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "start_split.sh: needs root (tracefs)" >&2; exit 1; }
if [ "${VESSEL_BENCH_NETNS:-}" != 1 ]; then
  VESSEL_BENCH_NETNS=1 exec unshare -n -- "$self" --build-dir "$build" --runs "$runs"
fi
ip link set lo up
T=/sys/kernel/tracing
[ -e "$T/trace_marker" ] || mount -t tracefs nodev "$T"
vessel=$(realpath "$build/bin/vessel")
rootfs=$(realpath "$build/rootfs/busybox")
kernel=$build/share/vessel/kernel
floor_initrd=$build/bench/floor-initramfs.cpio.gz
root=$(mktemp -d /tmp/vessel-split.XXXXXX)
events=(sched/sched_process_exec sched/sched_process_exit)
cleanup() {
  echo 0 >"$T/tracing_on"
  for e in "${events[@]}"; do echo 0 >"$T/events/$e/enable"; done
  rm -rf "$root"
}
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh
export VESSEL_ACCEL=tcg
floor() { floor_boot "$kernel" "$floor_initrd" >/dev/null; }
ours() {
  local what=(vessel/busybox)
  [ "$1" = rootfs ] && what=(--rootfs "$rootfs")
  "$vessel" --root "$root" run --rm --network none "${what[@]}" true </dev/null
}
# Warm-up (the image's snapshot, the caches; two image starts make its VM
# template, so the image case is restored), which also checks each runs.
floor
ours rootfs 2>/dev/null || { echo "run --rootfs failed" >&2; exit 1; }
ours image 2>/dev/null || { echo "run (image) failed" >&2; exit 1; }
ours image 2>/dev/null || { echo "run (image) failed" >&2; exit 1; }

echo 0 >"$T/tracing_on"
echo 8192 >"$T/buffer_size_kb"
for e in "${events[@]}"; do echo 1 >"$T/events/$e/enable"; done
# One run traced: "floor QEMU" or "CASE PRE QEMU POST" in ms.
traced() {
  local c=$1
  echo >"$T/trace"
  echo 1 >"$T/tracing_on"
  if [ "$c" = floor ]; then floor; else ours "$c" 2>/dev/null; fi
  echo 0 >"$T/tracing_on"
  # Fields: task-pid, [cpu], flags, timestamp "123.456789:", event, ...
  grep -v '^#' "$T/trace" | awk -v c="$c" '
    { t = $4 + 0 }
    /sched_process_exec: filename=[^ ]*\/vessel pid/ && !cli { cli = t }
    /sched_process_exec: filename=[^ ]*qemu-system/ { q0 = t }
    /sched_process_exit: comm=qemu-system/ && /group_dead=true/ { q1 = t }
    /sched_process_exit: comm=vessel pid/ && /group_dead=true/ { end = t }
    END {
      if (c == "floor") printf "%.1f\n", (q1 - q0) * 1000
      else printf "%.1f %.1f %.1f\n", (q0 - cli) * 1000, (q1 - q0) * 1000, (end - q1) * 1000
    }'
}
for _ in $(seq "$runs"); do
  traced floor >>"$root/floor.txt"
  traced rootfs >>"$root/rootfs.txt"
  traced image >>"$root/image.txt"
done
col() { awk -v n="$2" '{ print $n }' "$root/$1.txt" | median; }
printf 'start split (%s, %s runs alternated, accel=tcg, --network none, load %s)\n' \
  "$(uname -m)" "$runs" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '  floor: QEMU %.1f ms\n' "$(col floor 1)"
for c in rootfs image; do
  printf '  %-6s: pre %.1f ms, QEMU %.1f ms, post %.1f ms (medians)\n' "$c" \
    "$(col "$c" 1)" "$(col "$c" 2)" "$(col "$c" 3)"
done
