#!/usr/bin/env bash
# A pod's second container: what it costs as a second VM (vessel-runtime
# before pods: one VM per container) against a second process tree in the
# first container's VM (the pod-VM design, docs/kubernetes.md "Pods"; what
# a container added to a pod's VM costs as built: bench/pod_member.sh).
#
# Per run: container A (`vessel run -d --network none vessel/busybox sleep`)
# settles; a second long-lived process is started in A's VM with `vessel
# exec -d` (timed), and after 5 s A's growth is measured (PSS of its
# monitor, QEMU and virtiofsd, and of that the guest RAM the VM touched);
# then B, a second VM of the same kind, is started (timed) and, after 5 s,
# its whole host cost measured.
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

: > "$root/vm_t"; : > "$root/vm_m"; : > "$root/proc_t"; : > "$root/proc_m"; : > "$root/proc_g"
for i in $(seq "$runs"); do
  # The process tree first, while A's VM is the only one (a second VM would
  # share pages with A and lower A's PSS, hiding the difference).
  a=$(start)
  sleep 5
  read -r a_before a_guest_before < <(container_memory "$a" "$vm_kb")
  t0=$(now); v exec -d "$a" sleep 100000; t1=$(now)
  sleep 5
  read -r a_after a_guest_after < <(container_memory "$a" "$vm_kb")
  t2=$(now); b=$(start); t3=$(now)
  sleep 5
  read -r b_total _ < <(container_memory "$b" "$vm_kb")
  echo "$t1 - $t0" | bc >> "$root/proc_t"
  echo "$t3 - $t2" | bc >> "$root/vm_t"
  echo "$b_total" >> "$root/vm_m"
  echo "$((a_after - a_before))" >> "$root/proc_m"
  echo "$((a_guest_after - a_guest_before))" >> "$root/proc_g"
  v rm -f "$a" "$b" >/dev/null
done
printf 'a pod'"'"'s second container (%s, %d runs, accel=%s, busybox sleep, 576 MiB VMs)\n' \
  "$(uname -m)" "$runs" "$accel"
printf '  %-44s: median %.3f s, host PSS %6.1f MiB\n' "second VM (vessel run -d)" \
  "$(median < "$root/vm_t")" "$(echo "$(median < "$root/vm_m") / 1024" | bc -l)"
printf '  %-44s: median %.3f s, host PSS %+6.1f MiB (guest RAM touched %+5.1f MiB)\n' \
  "second process tree in the VM (exec -d)" "$(median < "$root/proc_t")" \
  "$(echo "$(median < "$root/proc_m") / 1024" | bc -l)" \
  "$(echo "$(median < "$root/proc_g") / 1024" | bc -l)"
