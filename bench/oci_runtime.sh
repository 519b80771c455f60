#!/usr/bin/env bash
# The price of a VM per container through Podman: `podman run --rm
# --network none IMAGE true` with `--runtime vessel-runtime` against
# `--runtime runc` (the same image, alternated in one run; crun where it is
# installed), and against `vessel run --rm --network none vessel/busybox
# true`. Prints medians and the ratios.
#
#   bench/oci_runtime.sh [--build-dir DIR] [--runs N]
#
# Podman's storage, run root and containers.conf live in a temporary
# directory; as root the script re-executes itself in network and mount
# namespaces of its own with a tmpfs on /run, /var/lib/containers and
# /var/lib/cni (Podman's network namespaces and caches, vessel-runtime's
# default root stay there).
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
build=build
runs=10
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$self"; exit 0 ;;
    *) echo "oci_runtime.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then echo "oci_runtime.sh: run as root" >&2; exit 1; fi
if [ "${VESSEL_BENCH_NETNS:-}" != 1 ]; then
  VESSEL_BENCH_NETNS=1 exec unshare -n -m --propagation slave -- "$self" --build-dir "$build" \
    --runs "$runs"
fi
mount -t tmpfs tmpfs /run
for d in /var/lib/containers /var/lib/cni; do  # Podman's and CNI's state, covered here
  mkdir -p "$d" && mount -t tmpfs tmpfs "$d"
done
ip link set lo up
build=$(realpath "$build")
vessel=$build/bin/vessel
runtime=$build/bin/vessel-runtime
for f in "$vessel" "$runtime" /usr/bin/podman; do
  [ -e "$f" ] || { echo "missing $f: build first (scripts/setup.sh)" >&2; exit 1; }
done
other=runc
command -v crun >/dev/null && other=crun
other_path=$(command -v "$other")
dir=$(mktemp -d /tmp/vessel-bench-oci.XXXXXX)
trap 'rm -rf "$dir"' EXIT
printf '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' \
  > "$dir/containers.conf"
export CONTAINERS_CONF=$dir/containers.conf VESSEL_ACCEL=${VESSEL_ACCEL:-tcg}
pod() { podman --root "$dir/storage" --runroot "$dir/run" --tmpdir "$dir/tmp" "$@"; }
image=docker.io/vessel/busybox:latest
"$vessel" --root "$dir/vessel" image save -o "$dir/busybox.tar" vessel/busybox
pod load -q -i "$dir/busybox.tar" >/dev/null
# shellcheck source=bench/lib.sh
. bench/lib.sh

case_run() {  # vessel|other|cli
  case "$1" in
    vessel) pod --runtime "$runtime" run --rm --network none "$image" true ;;
    other) pod --runtime "$other_path" run --rm --network none "$image" true ;;
    cli) "$vessel" --root "$dir/vessel" run --rm --network none vessel/busybox true </dev/null ;;
  esac
}
for c in vessel other cli; do
  case_run "$c" || { echo "oci_runtime.sh: the $c case failed" >&2; exit 1; }  # warm up
  : > "$dir/$c.txt"
done
for i in $(seq "$runs"); do
  for c in vessel other cli; do
    t0=$(now); case_run "$c"; t1=$(now)
    echo "$t1 - $t0" | bc >> "$dir/$c.txt"
  done
done
line() {  # label file
  printf '  %-46s: median %.3f s  (min %.3f, max %.3f)\n' "$1" "$(median < "$2")" \
    "$(sort -n "$2" | head -1)" "$(sort -n "$2" | tail -1)"
}
printf 'podman run --rm --network none IMAGE true (%s, %d runs alternated, accel=%s)\n' \
  "$(uname -m)" "$runs" "$VESSEL_ACCEL"
line "podman --runtime vessel-runtime" "$dir/vessel.txt"
line "podman --runtime $other" "$dir/other.txt"
line "vessel run --rm --network none vessel/busybox" "$dir/cli.txt"
printf '  %-46s: %.2f\n' "ratio vessel-runtime / $other" \
  "$(echo "$(median < "$dir/vessel.txt") / $(median < "$dir/other.txt")" | bc -l)"
printf '  %-46s: %.2f\n' "ratio vessel-runtime / vessel run" \
  "$(echo "$(median < "$dir/vessel.txt") / $(median < "$dir/cli.txt")" | bc -l)"
