#!/usr/bin/env bash
# Start latency: `vessel run --rm --rootfs <busybox> true` (a virtio-fs root)
# and `vessel run --rm vessel/busybox true` (an image root: the container's
# own disk over the image's cached base; its VM restored from the shape's
# template, made by the warm-up) against the floor, the same QEMU, kernel,
# machine and memory booting an init that reboots at once (no Vessel code),
# alternated in one run. Prints medians and each case's ratio. The cases
# image-boot and rootfs-boot are those cases booted (VESSEL_TEMPLATES=0), as
# every start was before templates (and a --rootfs start is where QEMU
# cannot restore a VM with shares: Debian 12's 7.2).
#
#   bench/start_latency.sh [--build-dir DIR] [--runs N]
#                          [--cases rootfs,rootfs-boot,image,image-boot]
#                          [--network none|default] [--compare-confinement]
#
# --compare-confinement adds each case again with the VMM unconfined
# (VESSEL_CONFINE=0: QEMU as root, no jail, no seccomp, no host cgroup) and
# prints what confinement costs a start (docs/security.md).
#
# The floor has no NIC, so ours runs with --network none by default (the
# like-for-like comparison, and the method of the history in
# docs/performance.md); --network default adds a NIC on the default network
# (bench/network.sh measures what that costs). As root the script re-executes
# itself under `unshare -n`: bridges and taps stay in a namespace of its own.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
build=build
runs=10
cases=rootfs,rootfs-boot,image,image-boot
network=none
compare=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    --network) network=$2; shift 2 ;;
    --compare-confinement) compare=1; shift ;;
    -h|--help) sed -n '2,23p' "$self"; exit 0 ;;
    *) echo "start_latency.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
case "$network" in none|default) ;; *) echo "start_latency.sh: --network none or default" >&2; exit 2 ;; esac
if [ "$(id -u)" = 0 ] && [ "${VESSEL_BENCH_NETNS:-}" != 1 ]; then
  extra=()
  [ "$compare" = 1 ] && extra=(--compare-confinement)
  VESSEL_BENCH_NETNS=1 exec unshare -n -- "$self" --build-dir "$build" --runs "$runs" \
    --cases "$cases" --network "$network" "${extra[@]}"
fi
[ "${VESSEL_BENCH_NETNS:-}" = 1 ] && ip link set lo up
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
# shellcheck source=bench/lib.sh
. bench/lib.sh  # the script has cd'd to the repository root
# The floor: bench/lib.sh's floor_boot, the machine vmm/qemu/machine_x86_64.cc
# builds.
floor() {
  floor_console "$@" >/dev/null
}
floor_console() {
  floor_boot "$kernel" "$floor_initrd" "$accel"
}
# ours CASE CMD...: the case's `vessel run --rm` of CMD.
ours() {
  local what=$1; shift
  local confine=1 templates=1
  case "$what" in *-unconfined) confine=0; what=${what%-unconfined} ;; esac
  case "$what" in *-boot) templates=0; what=${what%-boot} ;; esac
  if [ "$what" = rootfs ]; then set -- --rootfs "$rootfs" "$@"; else set -- vessel/busybox "$@"; fi
  VESSEL_CONFINE=$confine VESSEL_TEMPLATES=$templates VESSEL_ACCEL=$accel "$vessel" --root "$root" \
    run --rm --network "$network" "$@" </dev/null
}

selected=()
for c in ${cases//,/ }; do
  case "$c" in
    rootfs|rootfs-boot|image|image-boot) selected+=("$c"); [ "$compare" = 1 ] && selected+=("$c-unconfined") ;;
    *) echo "start_latency.sh: unknown case '$c' (rootfs, rootfs-boot, image, image-boot)" >&2; exit 2 ;;
  esac
done
# Warm the page cache, and check that each really ran. The image case's
# first run also loads the embedded image and makes its ext4 snapshot
# (cached from then on: the runs below measure a start, not a pull), and
# its second makes the shape's VM template (a start restores it from then
# on; image-boot boots, as every start did before templates).
floor_console > "$root/floor.log" || true
grep -q vessel-floor-init "$root/floor.log" || { echo "floor init did not run" >&2; exit 1; }
: > "$root/floor.txt"
for c in "${selected[@]}"; do
  for _ in 1 2; do
    [ "$(ours "$c" echo ok)" = ok ] || { echo "vessel run ($c) failed" >&2; exit 1; }
  done
  : > "$root/$c.txt"
done
for i in $(seq "$runs"); do
  t0=$(now); floor; t1=$(now)
  echo "$t1 - $t0" | bc >> "$root/floor.txt"
  for c in "${selected[@]}"; do
    t0=$(now); ours "$c" true; t1=$(now)
    echo "$t1 - $t0" | bc >> "$root/$c.txt"
  done
done
line() {  # label file
  printf '  %-37s: median %.3f s  (min %.3f, max %.3f)\n' "$1" "$(median < "$2")" \
    "$(sort -n "$2" | head -1)" "$(sort -n "$2" | tail -1)"
}
m_floor=$(median < "$root/floor.txt")
printf 'start latency (%s, %d runs alternated, accel=%s, --network %s, %s)\n' "$(uname -m)" \
  "$runs" "$accel" "$network" \
  "$("${VESSEL_QEMU:-qemu-system-x86_64}" --version | head -1 | sed 's/ emulator version / /; s/ (.*//')"
line "floor (bare boot)" "$root/floor.txt"
for c in "${selected[@]}"; do
  case "$c" in
    rootfs-boot*) label="run --rm --rootfs busybox true (booted)" ;;
    rootfs*) label="run --rm --rootfs busybox true" ;;
    image-boot*) label="run --rm vessel/busybox true (booted)" ;;
    *) label="run --rm vessel/busybox true (image)" ;;
  esac
  case "$c" in *-unconfined) label="$label, unconfined" ;; esac
  line "$label" "$root/$c.txt"
  printf '  %-37s: %.2f\n' "  ratio" "$(echo "$(median < "$root/$c.txt") / $m_floor" | bc -l)"
done
if [ "$compare" = 1 ]; then
  for c in ${cases//,/ }; do
    printf '  %-37s: %.3f (confined / unconfined medians)\n' "confinement cost, $c" \
      "$(echo "$(median < "$root/$c.txt") / $(median < "$root/$c-unconfined.txt")" | bc -l)"
  done
fi
