#!/usr/bin/env bash
# Detached containers: how long `vessel run -d` and `vessel exec` take, and
# what an idle container costs the host in memory.
#
# 1. Latency, alternated in one run: `vessel run -d IMAGE sleep` (returns
#    once the process runs) against the floor (the same QEMU and kernel
#    booting an init that reboots at once), then `vessel exec ID true`
#    against `vessel ls -q` (the CLI's own start and a state store read, the
#    least any verb costs).
# 2. Memory: with 1 and then 10 idle containers, each container's monitor,
#    QEMU and virtiofsd processes: summed PSS (shared pages divided among
#    their users), and the part of that which is guest RAM the VM touched
#    (QEMU's guest RAM mapping), so the rest is what Vessel's processes cost.
#
#   bench/containers.sh [--build-dir DIR] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
runs=7
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "containers.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
vessel=$build/bin/vessel
kernel=$build/share/vessel/kernel
floor_initrd=$build/bench/floor-initramfs.cpio.gz
for f in "$vessel" "$kernel" "$floor_initrd"; do
  [ -e "$f" ] || { echo "missing $f: build first (scripts/setup.sh)" >&2; exit 1; }
done
root=$(mktemp -d /tmp/vessel-bench.XXXXXX)
cleanup() {
  "$vessel" --root "$root" rm -f $("$vessel" --root "$root" ls -aq) >/dev/null 2>&1 || true
  rm -rf "$root"
}
trap cleanup EXIT
accel=${VESSEL_ACCEL:-tcg}
export VESSEL_ACCEL=$accel
# shellcheck source=bench/lib.sh
. bench/lib.sh
# The floor: bench/lib.sh's floor_boot (the machine Vessel builds; it had
# lacked the translation buffer's size here).
floor() { floor_boot "$kernel" "$floor_initrd" "$accel" >/dev/null; }
v() { "$vessel" --root "$root" "$@"; }

# Warm up: the image is loaded into the store, page cache is warm.
id=$(v run -d vessel/busybox sleep 100000)
[ "$(v exec "$id" echo ok)" = ok ] || { echo "vessel exec failed" >&2; exit 1; }
v rm -f "$id" >/dev/null

: > "$root/rund.txt"; : > "$root/floor.txt"; : > "$root/exec.txt"; : > "$root/ls.txt"
for i in $(seq "$runs"); do
  t0=$(now); floor; t1=$(now); id=$(v run -d vessel/busybox sleep 100000); t2=$(now)
  echo "$t1 - $t0" | bc >> "$root/floor.txt"
  echo "$t2 - $t1" | bc >> "$root/rund.txt"
  for j in 1 2 3; do
    t0=$(now); v ls -q >/dev/null; t1=$(now); v exec "$id" true; t2=$(now)
    echo "$t1 - $t0" | bc >> "$root/ls.txt"
    echo "$t2 - $t1" | bc >> "$root/exec.txt"
  done
  v rm -f "$id" >/dev/null
done
report() {  # label file
  printf '  %-34s: median %.3f s  (min %.3f, max %.3f)\n' "$1" "$(median < "$2")" \
    "$(sort -n "$2" | head -1)" "$(sort -n "$2" | tail -1)"
}
printf 'detached containers (%s, %d runs alternated, accel=%s)\n' "$(uname -m)" "$runs" "$accel"
report "vessel run -d IMAGE sleep" "$root/rund.txt"
report "floor (bare boot)" "$root/floor.txt"
printf '  %-34s: %.2f\n' "ratio" "$(echo "$(median < "$root/rund.txt") / $(median < "$root/floor.txt")" | bc -l)"
report "vessel exec ID true" "$root/exec.txt"
report "vessel ls -q (CLI floor)" "$root/ls.txt"
printf '  %-34s: %.2f\n' "ratio" "$(echo "$(median < "$root/exec.txt") / $(median < "$root/ls.txt")" | bc -l)"

measure() {  # n
  local ids=() i t g sum_t=0 sum_g=0
  for i in $(seq "$1"); do ids+=("$(v run -d vessel/busybox sleep 100000)"); done
  sleep 5  # let the guests settle (boot-time page cache, lazy init)
  for i in "${ids[@]}"; do
    read -r t g < <(container_memory "$i" $((576 * 1024)))
    sum_t=$((sum_t + t)); sum_g=$((sum_g + g))
  done
  printf '  %2d idle: per container PSS %6.1f MiB = guest RAM touched %6.1f MiB + Vessel/QEMU %5.1f MiB\n' \
    "$1" "$(echo "$sum_t / $1 / 1024" | bc -l)" "$(echo "$sum_g / $1 / 1024" | bc -l)" \
    "$(echo "($sum_t - $sum_g) / $1 / 1024" | bc -l)"
  v rm -f "${ids[@]}" >/dev/null
}
printf 'host memory per idle container (busybox sleep, -m 512m => 576 MiB VM)\n'
measure 1
measure 10
