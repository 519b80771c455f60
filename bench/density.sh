#!/usr/bin/env bash
# Density: what N idle containers cost the host, for each N of --counts,
# beside the same N as plain processes in one run.
#
# Vessel: N containers `vessel run -d -m 128m vessel/busybox sleep infinity`
# (image root: ext4 snapshot + writable layer on virtio-blk, so no
# virtiofsd; guest RAM is QEMU's anonymous memory; VM of 128 + 64 MiB
# reserve = 192 MiB), started one after another, then 10 s to settle.
# Baseline: N `unshare -fp --mount-proc --kill-child sleep infinity` (a pid and a mount
# namespace each, what a container runtime's process costs without its
# runtime; Podman is not installed here).
#
# For each N, per container (sums over the N divided by N):
# - PSS: Pss of /proc/PID/smaps_rollup of the container's monitor and all
#   its descendants (QEMU; virtiofsd and its sandbox child when there is
#   one): shared pages (QEMU's binary and libraries, the guest kernel in the
#   host's page cache) divided among their users.
# - guest RAM touched: the Pss of the mappings whose size is exactly the
#   VM's RAM (192 MiB), in /proc/PID/smaps of those processes: QEMU's
#   anonymous guest RAM for an image root (for a --rootfs root or bind
#   mounts it is a file shared with virtiofsd, in QEMU's jail: the same rule counts both
#   halves). Pages the guest gave back through free page reporting are no
#   longer there. beyond guest RAM = PSS - guest RAM: QEMU's own heap, TCG's
#   translated code (tb-size=48), the monitor, shared binaries. Of it, TCG
#   code: the Pss of anonymous executable mappings (none under KVM). The
#   rest of beyond guest RAM, split: anonymous (heap, malloc arenas,
#   stacks, TCG's tables), files private (the relocated data of binaries
#   and libraries: Private_Dirty of file mappings), files shared (their
#   text, divided among the N); and, inside those, the monitors' PSS.
# - VMMemUsage: what `vessel stats --no-stream --format json` reports (QEMU's
#   Anonymous + its shared guest RAM file's pages), mean, as a cross-check.
# - host CPU: the time on CPU of every thread of those processes, from the
#   first field of /proc/PID/task/TID/schedstat (ns, exact; utime ticks
#   over-count QEMU's timer-aligned wakeups 10-20x), over --cpu-seconds,
#   in % of one core.
# - exec: median over the N of `vessel exec NAME true` (baseline:
#   `nsenter -t PID -p -m true`).
#
# As root the script re-executes itself under `unshare -n`: the default
# network's bridge, taps and dnsmasq stay in a namespace of its own.
#
# The containers start from the shape's VM template, which the warm-up makes
# (docs/architecture.md, "VM templates"); --templates off boots each.
#
#   bench/density.sh [--build-dir DIR] [--counts 10,25,50] [--cpu-seconds S]
#                    [--templates on|off] [--memory-reclaim auto|off]
#
# --memory-reclaim is passed to each `run -d` (default auto, the run
# default): off leaves out the guest's idle page cache reclaim, whose
# sampling every 4 s is about half of an idle VM's CPU under TCG
# (docs/performance.md, session 15).
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
build=build
counts=10,25,50
cpu_seconds=20
templates=on
reclaim=auto
usage() { sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --counts) counts=$2; shift 2 ;;
    --cpu-seconds) cpu_seconds=$2; shift 2 ;;
    --templates) templates=$2; shift 2 ;;
    --memory-reclaim) reclaim=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "density.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "density.sh: needs root (networks, namespaces)" >&2; exit 1; }
if [ "${VESSEL_BENCH_NETNS:-}" != 1 ]; then
  VESSEL_BENCH_NETNS=1 exec unshare -n -- "$self" --build-dir "$build" --counts "$counts" \
    --cpu-seconds "$cpu_seconds" --templates "$templates" --memory-reclaim "$reclaim"
fi
case "$reclaim" in
  auto|off) ;;
  *) echo "density.sh: --memory-reclaim auto or off" >&2; exit 2 ;;
esac
case "$templates" in
  on) export VESSEL_TEMPLATES=1 ;;
  off) export VESSEL_TEMPLATES=0 ;;
  *) echo "density.sh: --templates on or off" >&2; exit 2 ;;
esac
ip link set lo up
vessel=$(realpath "$build/bin/vessel")
[ -x "$vessel" ] || { echo "missing $build/bin/vessel: build first (scripts/setup.sh)" >&2; exit 1; }
# shellcheck source=bench/lib.sh
. bench/lib.sh
accel=${VESSEL_ACCEL:-tcg}
export VESSEL_ACCEL=$accel
vm_kb=$(((128 + 64) * 1024))
root=$(mktemp -d /tmp/vessel-density.XXXXXX)
baseline_pids=()
cleanup() {
  "$vessel" --root "$root" rm -f --all >/dev/null 2>&1 || true
  # unshare -f ignores SIGTERM while it waits; SIGKILL it, --kill-child takes sleep.
  [ ${#baseline_pids[@]} -eq 0 ] || kill -KILL "${baseline_pids[@]}" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
v() { "$vessel" --root "$root" "$@"; }

# descendants PID: PID and every process below it.
descendants() {
  local p c
  for p in "$@"; do
    echo "$p"
    for c in $(pgrep -P "$p"); do descendants "$c"; done
  done
}
# pss_kb PID...: summed Pss.
pss_kb() {
  local p s=0 k
  for p in "$@"; do
    k=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    s=$((s + ${k:-0}))
  done
  echo "$s"
}
# cpu_ns PID...: "TID NS" for every thread.
cpu_ns() {
  local p t
  for p in "$@"; do
    for t in /proc/"$p"/task/*; do
      [ -r "$t/schedstat" ] && echo "${t##*/} $(cut -d' ' -f1 "$t/schedstat" 2>/dev/null)"
    done
  done 2>/dev/null || true
}
# cpu_percent SECONDS PID...: % of one core the threads of PIDs used over SECONDS.
cpu_percent() {
  local secs=$1 t0 t1; shift
  cpu_ns "$@" > "$root/cpu0"; t0=$(now)
  sleep "$secs"
  cpu_ns "$@" > "$root/cpu1"; t1=$(now)
  awk -v wall="$(echo "($t1 - $t0) * 1000000000" | bc -l)" '
    NR == FNR {b[$1] = $2; next}
    {d = $2 - ($1 in b ? b[$1] : 0); if (d > 0) s += d}
    END {printf "%.4f\n", 100 * s / wall}' "$root/cpu0" "$root/cpu1"
}
mib() { printf "%.1f" "$(echo "$1 / 1024" | bc -l)"; }
div() { echo "scale=4; $1 / $2" | bc -l; }

declare -A R  # results: R[key,N]
vessel_round() {  # n
  local n=$1 i pids=() mpids=() mpid t0 total=0 guest=0 tcg=0 p anon fpriv fshared
  : > "$root/start.txt"; : > "$root/exec.txt"
  for i in $(seq "$n"); do
    t0=$(now)
    v run -d --name "d$i" -m 128m --memory-reclaim "$reclaim" vessel/busybox sleep infinity >/dev/null
    echo "$(now) - $t0" | bc >> "$root/start.txt"
  done
  sleep 10
  for i in $(seq "$n"); do
    mpid=$(v inspect "d$i" | awk -F': ' '/"Pid"/ {gsub(/,/, "", $2); print $2; exit}')
    mapfile -t own < <(descendants "$mpid")
    pids+=("${own[@]}"); mpids+=("$mpid")
  done
  total=$(pss_kb "${pids[@]}")
  read -r guest tcg anon fpriv fshared < <(smaps_split "$vm_kb" "${pids[@]}")
  R[tcg,$n]=$(mib $((tcg / n)))
  R[monitor,$n]=$(mib $(($(pss_kb "${mpids[@]}") / n)))
  R[anon,$n]=$(mib $((anon / n))); R[fpriv,$n]=$(mib $((fpriv / n)))
  R[fshared,$n]=$(mib $((fshared / n)))
  R[pss,$n]=$(mib $((total / n))); R[guest,$n]=$(mib $((guest / n)))
  R[beyond,$n]=$(mib $(((total - guest) / n)))
  R[cpu,$n]=$(div "$(cpu_percent "$cpu_seconds" "${pids[@]}")" "$n")
  R[vmmem,$n]=$(v stats --no-stream --format json |
    python3 -c 'import json,sys; a=json.load(sys.stdin); print("%.1f" % (sum(e["VMMemUsage"] for e in a) / len(a) / 2**20))')
  for i in $(seq "$n"); do
    t0=$(now)
    v exec "d$i" true || echo "exec d$i failed" >&2
    echo "$(now) - $t0" | bc >> "$root/exec.txt"
  done
  R[exec,$n]=$(median < "$root/exec.txt"); R[start,$n]=$(median < "$root/start.txt")
  t0=$(now); v rm -f --all >/dev/null; R[rm,$n]=$(echo "$(now) - $t0" | bc)
  printf '  vessel   N=%-3s PSS %s MiB = guest RAM %s + beyond %s (TCG code %s); VMMemUsage %s MiB; CPU %s %%; exec %.3f s; run -d %.3f s; rm -f --all %.1f s\n' \
    "$n" "${R[pss,$n]}" "${R[guest,$n]}" "${R[beyond,$n]}" "${R[tcg,$n]}" "${R[vmmem,$n]}" "${R[cpu,$n]}" \
    "${R[exec,$n]}" "${R[start,$n]}" "${R[rm,$n]}"
  printf '           beyond guest RAM = TCG code %s + anonymous %s + files private %s + files shared %s MiB (the monitors: %s)\n' \
    "${R[tcg,$n]}" "${R[anon,$n]}" "${R[fpriv,$n]}" "${R[fshared,$n]}" "${R[monitor,$n]}"
}
baseline_round() {  # n
  local n=$1 i pids=() sleeps=() t0 total p
  baseline_pids=()
  : > "$root/exec.txt"
  for i in $(seq "$n"); do
    unshare -fp --mount-proc --kill-child sleep infinity &
    baseline_pids+=("$!")
    disown "$!"  # no job notice when it is killed
  done
  sleep 2
  for p in "${baseline_pids[@]}"; do
    pids+=("$p"); sleeps+=("$(pgrep -P "$p" || true)")
  done
  pids+=("${sleeps[@]}")
  total=$(pss_kb "${pids[@]}")
  R[bpss,$n]=$(mib $((total / n)))
  R[bcpu,$n]=$(div "$(cpu_percent "$cpu_seconds" "${pids[@]}")" "$n")
  for p in "${sleeps[@]}"; do
    t0=$(now)
    nsenter -t "$p" -p -m true
    echo "$(now) - $t0" | bc >> "$root/exec.txt"
  done
  R[bexec,$n]=$(median < "$root/exec.txt")
  kill -KILL "${baseline_pids[@]}"
  for p in "${baseline_pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
  baseline_pids=()
  printf '  baseline N=%-3s PSS %s MiB; CPU %s %%; nsenter true %.3f s\n' \
    "$n" "${R[bpss,$n]}" "${R[bcpu,$n]}" "${R[bexec,$n]}"
}

# Warm up: the embedded image is loaded and its snapshot made; two starts of
# the measured shape make its VM template (with --templates on).
[ "$(v run --rm --network none vessel/busybox echo ok)" = ok ] || { echo "vessel run failed" >&2; exit 1; }
for _ in 1 2; do
  [ "$(v run --rm -m 128m vessel/busybox echo ok)" = ok ] || { echo "vessel run failed" >&2; exit 1; }
done
IFS=, read -r -a ns <<< "$counts"
printf 'density (%s, accel=%s, %s cores, load %s): idle `sleep infinity`, vessel/busybox image root, -m 128m (192 MiB VM), templates %s, memory reclaim %s\n' \
  "$(uname -m)" "$accel" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$templates" "$reclaim"
for n in "${ns[@]}"; do
  vessel_round "$n"
  baseline_round "$n"
done
printf '\nper idle container            '; for n in "${ns[@]}"; do printf '%10s' "N=$n"; done; echo
row() {  # label key format
  printf '  %-28s' "$1"
  for n in "${ns[@]}"; do printf "%10$3" "${R[$2,$n]}"; done
  echo
}
row 'vessel PSS, MiB' pss .1f
row '  guest RAM touched, MiB' guest .1f
row '  beyond guest RAM, MiB' beyond .1f
row '    of it TCG code, MiB' tcg .1f
row '    anonymous, MiB' anon .1f
row '    files private, MiB' fpriv .1f
row '    files shared, MiB' fshared .1f
row '    (the monitors, MiB)' monitor .1f
row '  VMMemUsage (stats), MiB' vmmem .1f
row 'vessel host CPU, %' cpu .3f
row 'vessel exec true, s' exec .3f
row 'vessel run -d, s' start .3f
row 'baseline PSS, MiB' bpss .2f
row 'baseline host CPU, %' bcpu .4f
row 'baseline nsenter true, s' bexec .3f
