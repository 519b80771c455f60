#!/usr/bin/env bash
# Where a start spends its time: runs `vessel run --network none ... true`
# N times per case with the monitor's phase timings (VESSEL_PHASES=1, in
# monitor.log) and the guest's step marks (VESSEL_GUEST_TIMINGS=1, written to
# the boot log at power-off), and prints the median of each step. The runs
# keep their container (no --rm) so that the logs can be read, then remove
# it; the console stays quiet, as in bench/start_latency.sh.
#
#   bench/start_phases.sh [--build-dir DIR] [--runs N] [--cases rootfs,image]
#
# Guest marks are milliseconds of the guest's CLOCK_MONOTONIC (from its
# kernel's start); each line's "step" is the time since the mark before.
# Monitor phases are milliseconds since the monitor started. As root the
# script re-executes itself under `unshare -n`.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
build=build
runs=5
cases=rootfs,image
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$self"; exit 0 ;;
    *) echo "start_phases.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" = 0 ] && [ "${VESSEL_BENCH_NETNS:-}" != 1 ]; then
  VESSEL_BENCH_NETNS=1 exec unshare -n -- "$self" --build-dir "$build" --runs "$runs" \
    --cases "$cases"
fi
[ "${VESSEL_BENCH_NETNS:-}" = 1 ] && ip link set lo up
vessel=$(realpath "$build/bin/vessel")
rootfs=$(realpath "$build/rootfs/busybox")
root=$(mktemp -d /tmp/vessel-phases.XXXXXX)
trap 'rm -rf "$root"' EXIT
# Booted, not restored from a VM template: the guest's marks are of its
# boot (a restored guest's start from the template's marks and clock).
export VESSEL_ROOT=$root VESSEL_PHASES=1 VESSEL_GUEST_TIMINGS=1 VESSEL_TEMPLATES=0
v() { "$vessel" "$@"; }

# Warm-up: the image's snapshot and writable base, the caches.
v run --rm --network none vessel/busybox true >/dev/null 2>&1
v run --rm --network none --rootfs "$rootfs" true >/dev/null 2>&1

printf 'start phases (%s, %s runs, load %s)\n' "$(uname -m)" "$runs" \
  "$(cut -d' ' -f1-3 /proc/loadavg)"
for c in ${cases//,/ }; do
  case "$c" in
    rootfs) args=(--rootfs "$rootfs") ;;
    image) args=(vessel/busybox) ;;
    *) echo "start_phases.sh: unknown case '$c'" >&2; exit 2 ;;
  esac
  out=$root/$c.txt
  : >"$out"
  for i in $(seq "$runs"); do
    id=$(v run -d --network none --name "p$i" "${args[@]}" true)
    v wait "p$i" >/dev/null
    dir=$root/containers/$id
    # Monitor: "vessel-monitor ID: debug: +N ms: phase".
    sed -n 's/.*debug: +\([0-9]*\) ms: \(.*\)/monitor \1 \2/p' "$dir/monitor.log" >>"$out"
    # (The console ends its lines with CR LF; its last line may be cut
    # short by QEMU's end, without a newline: awk ends every line.)
    tr -d '\r' <"$dir/boot.log" |
      sed -n 's/.*vessel-init: mark *\([0-9.]*\) *\([0-9.]*\) \(.*\)/guest \1 \2 \3/p' |
      awk '{ print }' >>"$out"
    v rm "p$i" >/dev/null
  done
  echo "== $c (medians)"
  awk '
    function median(list,   n, a, i, j, t) {
      n = split(list, a, " ")
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    $1 == "guest" { k = $4; for (i = 5; i <= NF; i++) k = k " " $i
                    if (!(k in gat)) order[++n] = "g" SUBSEP k
                    gat[k] = gat[k] " " $2; gstep[k] = gstep[k] " " $3 }
    $1 == "monitor" { k = $3; for (i = 4; i <= NF; i++) k = k " " $i
                      if (!(k in mat)) order[++n] = "m" SUBSEP k
                      mat[k] = mat[k] " " $2 }
    END {
      printf "  %-34s %10s %8s\n", "guest mark", "at, ms", "step"
      for (i = 1; i <= n; i++) { split(order[i], p, SUBSEP)
        if (p[1] == "g") printf "  %-34s %10.1f %8.1f\n", p[2], median(gat[p[2]]), median(gstep[p[2]]) }
      printf "  %-34s %10s\n", "monitor phase", "at, ms"
      for (i = 1; i <= n; i++) { split(order[i], p, SUBSEP)
        if (p[1] == "m") printf "  %-34s %10.1f\n", p[2], median(mat[p[2]]) }
    }' "$out"
done
