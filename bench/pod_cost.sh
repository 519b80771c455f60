#!/usr/bin/env bash
# A pod's second container: what it costs as a second VM (today's
# vessel-runtime: one VM per container) against a second process tree in
# the first container's VM (the pod-VM design, docs/kubernetes.md "Pods").
#
# Per run: container A (`vessel run -d --network none vessel/busybox sleep`)
# settles; then B, a second VM of the same kind, is started (timed), and a
# second long-lived process is started in A's VM with `vessel exec -d`
# (timed). After 5 s to settle, B's whole host cost (PSS of its monitor,
# QEMU and virtiofsd) is set against what A's cost grew by.
#
# The exec is a lower bound for a container in the pod's VM: a real one
# also mounts its root (one more virtiofsd for a directory root, ~2-3 MiB,
# docs/performance.md, or a directory of a pod-wide share: none), a mount
# namespace and a cgroup in the guest.
#
#   bench/pod_cost.sh [--build-dir DIR] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "pod_cost.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
vessel=$build/bin/vessel
[ -x "$vessel" ] || { echo "missing $vessel: build first (scripts/setup.sh)" >&2; exit 1; }
root=$(mktemp -d /tmp/vessel-bench.XXXXXX)
cleanup() {
  "$vessel" --root "$root" rm -f $("$vessel" --root "$root" ls -aq) >/dev/null 2>&1 || true
  rm -rf "$root"
}
trap cleanup EXIT
accel=${VESSEL_ACCEL:-tcg}
export VESSEL_ACCEL=$accel
v() { "$vessel" --root "$root" "$@"; }
# shellcheck source=bench/lib.sh
. bench/lib.sh
vm_kb=$(((512 + 64) * 1024))  # -m 512m (the default) => a 576 MiB VM
start() { v run -d --network none vessel/busybox sleep 100000; }

# Warm up: the image in the store, the page cache warm.
id=$(start)
[ "$(v exec "$id" echo ok)" = ok ] || { echo "vessel exec failed" >&2; exit 1; }
v rm -f "$id" >/dev/null

: > "$root/vm_t"; : > "$root/vm_m"; : > "$root/proc_t"; : > "$root/proc_m"
for i in $(seq "$runs"); do
  a=$(start)
  sleep 5
  read -r a_before _ < <(container_memory "$a" "$vm_kb")
  t0=$(now); b=$(start); t1=$(now)
  v exec -d "$a" sleep 100000; t2=$(now)
  sleep 5
  read -r b_total _ < <(container_memory "$b" "$vm_kb")
  read -r a_after _ < <(container_memory "$a" "$vm_kb")
  echo "$t1 - $t0" | bc >> "$root/vm_t"
  echo "$t2 - $t1" | bc >> "$root/proc_t"
  echo "$b_total" >> "$root/vm_m"
  echo "$((a_after - a_before))" >> "$root/proc_m"
  v rm -f "$a" "$b" >/dev/null
done
printf 'a pod'"'"'s second container (%s, %d runs, accel=%s, busybox sleep, 576 MiB VMs)\n' \
  "$(uname -m)" "$runs" "$accel"
printf '  %-44s: median %.3f s, host PSS %6.1f MiB\n' "second VM (vessel run -d)" \
  "$(median < "$root/vm_t")" "$(echo "$(median < "$root/vm_m") / 1024" | bc -l)"
printf '  %-44s: median %.3f s, host PSS %+6.1f MiB\n' "second process tree in the VM (exec -d)" \
  "$(median < "$root/proc_t")" "$(echo "$(median < "$root/proc_m") / 1024" | bc -l)"
