#!/usr/bin/env bash
# Repeated execs on a virtio-fs root: a `--rootfs` container runs /bin/true
# N times in a shell loop and reports the time per exec (from the guest's
# /proc/uptime), with the root's virtiofsd as Vessel starts it (cache=always,
# timeout=1: the guest keeps file pages across opens) and, alternated in the
# same run, through a $VESSEL_VIRTIOFSD wrapper that gives it cache=auto (the
# guest drops a file's pages at every open, so every exec reads its binary
# again). Prints medians over --runs containers of each.
#
#   bench/rootfs_exec.sh [--build-dir DIR] [--runs N] [--execs N]
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
build=build
runs=5
execs=50
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --execs) execs=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$self"; exit 0 ;;
    *) echo "rootfs_exec.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" = 0 ] && [ "${VESSEL_BENCH_NETNS:-}" != 1 ]; then
  VESSEL_BENCH_NETNS=1 exec unshare -n -- "$self" --build-dir "$build" --runs "$runs" \
    --execs "$execs"
fi
[ "${VESSEL_BENCH_NETNS:-}" = 1 ] && ip link set lo up
vessel=$(realpath "$build/bin/vessel")
rootfs=$(realpath "$build/rootfs/busybox")
root=$(mktemp -d /tmp/vessel-rootfs-exec.XXXXXX)
trap 'rm -rf "$root"' EXIT
export VESSEL_ROOT=$root
virtiofsd=${VESSEL_VIRTIOFSD:-/usr/lib/qemu/virtiofsd}
cat >"$root/virtiofsd-auto" <<EOF
#!/bin/sh
# cache=auto instead of cache=always, without timeout=1 (auto's default is 1 s)
for a do
  shift
  case "\$a" in cache=always) set -- "\$@" cache=auto ;; timeout=1) set -- "\$@" log_level=err ;; *) set -- "\$@" "\$a" ;; esac
done
exec "$virtiofsd" "\$@"
EOF
chmod +x "$root/virtiofsd-auto"

# One container: ms per exec of the loop, from the guest's uptime (10 ms ticks).
once() {
  "$vessel" run --rm --network none --rootfs "$rootfs" sh -c \
    "/bin/true; a=\$(cut -d' ' -f1 /proc/uptime); i=0; while [ \$i -lt $execs ]; do /bin/true; i=\$((i+1)); done; b=\$(cut -d' ' -f1 /proc/uptime); echo \$a \$b" |
    awk -v n="$execs" '{ printf "%.2f\n", ($2 - $1) * 1000 / n }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

once >/dev/null  # warm-up
: >"$root/kept" ; : >"$root/auto"
for i in $(seq "$runs"); do
  once >>"$root/kept"
  VESSEL_VIRTIOFSD=$root/virtiofsd-auto once >>"$root/auto"
done
printf 'exec of /bin/true on a --rootfs root (%s, %s containers x %s execs, load %s)\n' \
  "$(uname -m)" "$runs" "$execs" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '  cache=always,timeout=1 (Vessel) : median %s ms per exec\n' "$(median <"$root/kept")"
printf '  cache=auto (before)             : median %s ms per exec\n' "$(median <"$root/auto")"
