#!/usr/bin/env bash
# Vessel's machines against the user's alternative, side by side in one run:
#
#   vessel: `vessel machine create --cpus 2 --memory 1g --network none
#           --user bench:4000:4000 --home DIR vessel-bench/debian-systemd`
#           (the image of scripts/make-machine-image.sh), then `machine stop`,
#           `machine start`, `machine stop` of the same machine;
#   baseline: the same Debian packages plus Debian's stock kernel and
#           initramfs, booted by plain QEMU (q35, -smp 2 -m 1G, no NIC):
#           bench/machine_baseline.sh, sourced.
#
#   bench/machine.sh [--build-dir DIR] [--runs N]
#
# Each run alternates: vessel first boot, baseline first boot (a fresh copy of
# its disk), vessel second boot (`machine start` of the stopped machine),
# baseline second boot (the disk of its first boot, booted again). Per boot:
#   first_boot_s / second_boot_s
#       vessel: `machine create` (resp. `machine start`) launched until
#       `vessel machine exec --root NAME systemctl is-system-running --wait`
#       has answered (the command is retried only while it fails with
#       "Failed to connect to bus"); the time `create`/`start` itself took
#       is printed per run. baseline: QEMU launched until the guest's
#       BOOT-READY console line (written once the same systemctl answers).
#   pss_mib (and first_pss_mib): host memory $BASELINE_IDLE_S (20) s after
#       ready: PSS (/proc/PID/smaps_rollup) of every host process of the
#       machine (vessel-monitor and its descendants: QEMU, virtiofsd) resp.
#       of the baseline's QEMU; split into guest RAM (the mapping of the guest
#       memory: anonymous for the baseline, a file shared by QEMU and
#       virtiofsd for Vessel: the unlinked /ram/qemu_back_mem.* in QEMU's
#       jail, or a memfd unconfined), TCG code buffers (anonymous executable
#       mappings) and the rest: pss_guest_ram_mib, pss_tcg_code_mib,
#       pss_other_mib, of the second boot (as pss_mib).
#   shutdown_s (and first_shutdown_s): `machine stop NAME` (clean power-off,
#       forced after 60 s) until it returns, resp. QMP system_powerdown until
#       QEMU exits. A forced stop is reported as nan.
# Output: one line per metric and side (the per-run values, then the median,
# as bench/machine_baseline.sh prints them), and `ratio METRIC` lines with
# the per-run vessel/baseline ratios and their median.
#
# Everything runs in a network namespace of its own (the script re-executes
# itself under `unshare -n`), with a throwaway state root; every machine and
# temporary file is removed at exit. Needs root.
# The machine kernel: $VESSEL_MACHINE_KERNEL, else <build>/share/vessel/kernel-machine.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
build=build
runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    -h|--help) sed -n '2,42p' "$self"; exit 0 ;;
    *) echo "machine.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "machine.sh: needs root (machines, the image caches)" >&2; exit 1; }
case "$runs" in ''|*[!0-9]*|0) echo "machine.sh: --runs needs a positive number" >&2; exit 2 ;; esac
build=$(realpath "$build")
if [ "${VESSEL_BENCH_NETNS:-}" != 1 ]; then
  # Our own network namespace: nothing here touches the host's network.
  VESSEL_BENCH_NETNS=1 exec unshare -n -- "$self" --build-dir "$build" --runs "$runs"
fi

# shellcheck source=bench/machine_baseline.sh
. bench/machine_baseline.sh  # defines functions only; sources bench/lib.sh

vessel=$build/bin/vessel
kernel=${VESSEL_MACHINE_KERNEL:-$build/share/vessel/kernel-machine}
for f in "$vessel" "$build/bin/vessel-monitor" "$kernel" "$build/share/vessel/initramfs.cpio.gz"; do
  [ -e "$f" ] || { echo "machine.sh: missing $f: build first (scripts/setup.sh)" >&2; exit 1; }
done
export VESSEL_ACCEL=${VESSEL_ACCEL:-tcg}
mem_mib=$(baseline_mem_mib)  # the same guest size for both
cpus=$BASELINE_CPUS
stop_timeout=$BASELINE_SHUTDOWN_TIMEOUT_S

work=$(mktemp -d /tmp/vessel-bench-machine.XXXXXX)
state=$work/state
home=$work/home
v() { "$vessel" --root "$state" "$@"; }
cleanup() {
  local rc=$? n p
  set +e
  if [ -d "$state" ]; then
    for n in $(v machine ls -q 2>/dev/null); do v machine rm -f "$n" >/dev/null 2>&1; done
    # A monitor that outlived its record (it should not): ours by its root.
    for p in $(pgrep -f "vessel-monitor --root $state " 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  fi
  baseline_cleanup
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Vessel's side ---

# The machine's id (full), from `machine inspect`.
machine_id() { v machine inspect "$1" | sed -n 's/^ *"Id": "\([0-9a-f]*\)",*$/\1/p' | head -n1; }

# The machine's host processes: its monitor and all the monitor's descendants.
machine_pids() {
  local id=$1 mon todo p c
  mon=$(pgrep -f "vessel-monitor --root $state --id $id( |$)" | head -n1) || return 1
  todo=("$mon")
  while [ ${#todo[@]} -gt 0 ]; do
    p=${todo[0]}; todo=("${todo[@]:1}")
    echo "$p"
    for c in $(pgrep -P "$p" || true); do todo+=("$c"); done
  done
}

# pss_parts RAM_MIB PID...: "guest_ram tcg_code other" PSS in MiB summed over
# the processes. Guest RAM: the file of QEMU's memory backend (Vessel; mapped by
# QEMU and by virtiofsd: /ram/qemu_back_mem.* confined, a memfd unconfined) or an anonymous rw mapping of the guest's size (as
# bench_pss_parts); TCG code: anonymous executable mappings.
pss_parts() {
  local ram_kb=$(( $1 * 1024 )) pid; shift
  for pid in "$@"; do cat "/proc/$pid/smaps"; done | awk -v ram_kb="$ram_kb" '
    /^[0-9a-f]+-[0-9a-f]+ / { perms = $2; anon = (NF < 6 || $6 == ""); memfd = ($6 ~ /^\/memfd:memory-backend-memfd|^\/ram\/qemu_back_mem\./); next }
    /^Size:/ { size = $2; next }
    /^Pss:/ {
      if (memfd || (anon && perms ~ /^rw/ && size == ram_kb)) ram += $2
      else if (anon && perms ~ /x/) code += $2
      else other += $2
    }
    END { printf "%.1f %.1f %.1f\n", ram / 1024, code / 1024, other / 1024 }'
}

# The PSS of each process, "comm=MiB ..." (for the per-run comment line).
pss_by_process() {
  local pid
  for pid in "$@"; do
    printf '%s=%s ' "$(cat "/proc/$pid/comm")" "$(bench_pss_mib "$pid")"
  done
}

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# wait_running NAME: `systemctl is-system-running --wait` in the machine,
# retried only while systemd's bus is not up yet. Sets V_STATE, V_RETRIES.
wait_running() {
  local name=$1 out err rc deadline
  V_RETRIES=0
  deadline=$(( $(date +%s) + BASELINE_BOOT_TIMEOUT_S ))
  while :; do
    rc=0
    out=$(v machine exec --root "$name" systemctl is-system-running --wait 2>"$work/exec.err" </dev/null) || rc=$?
    err=$(cat "$work/exec.err")
    V_STATE=$(printf '%s' "$out" | tr -d '\r' | tail -n1)
    # systemctl exits non-zero for "degraded" and the like: it answered.
    [ -z "$V_STATE" ] || return 0
    if grep -q "Failed to connect to bus" <<<"$err" && [ "$(date +%s)" -lt "$deadline" ]; then
      V_RETRIES=$(( V_RETRIES + 1 )); sleep 0.2; continue
    fi
    echo "machine.sh: machine exec failed (exit $rc): $err" >&2; return 1
  done
}

# vessel_boot VERB NAME: `machine create ...` or `machine start NAME`, wait for
# running, note what the guest says, measure the idle PSS, stop. Sets V_*.
vessel_boot() {
  local verb=$1 name=$2 t0 t1 t2 t3 info id pids r c o
  t0=$(now)
  if [ "$verb" = create ]; then
    v machine create --name "$name" --cpus "$cpus" --memory "${mem_mib}m" --network none \
      --user bench:4000:4000 --home "$home" vessel-bench/debian-systemd </dev/null >/dev/null
  else
    v machine start "$name" </dev/null >/dev/null
  fi
  t1=$(now)
  wait_running "$name"
  t2=$(now)
  V_CMD_S=$(secs "$t0" "$t1")
  V_BOOT_S=$(secs "$t0" "$t2")
  # What the guest says, as the baseline's marker unit writes it (uptime,
  # systemd-analyze time, failed units).
  info=$(v machine exec --root "$name" sh -c 'cut -d" " -f1 /proc/uptime; systemd-analyze time 2>&1 | sed "s/^/BOOT-INFO /"; systemctl --failed --plain --no-legend | sed "s/^/BOOT-FAILED /"' </dev/null 2>&1) || true
  V_UPTIME=$(head -n1 <<<"$info")
  V_INFO=$(tail -n +2 <<<"$info")
  sleep "$BASELINE_IDLE_S"
  id=$(machine_id "$name")
  mapfile -t pids < <(machine_pids "$id")
  [ ${#pids[@]} -ge 2 ] || { echo "machine.sh: found only '${pids[*]}' as the processes of $name ($id)" >&2; return 1; }
  V_PSS_MIB=$(bench_pss_mib "${pids[@]}")
  V_PSS_PARTS=$(pss_parts "$mem_mib" "${pids[@]}")
  V_PSS_PROCS=$(pss_by_process "${pids[@]}")
  read -r r c o <<<"$V_PSS_PARTS"
  t3=$(now)
  v machine stop -t "$stop_timeout" "$name" </dev/null >/dev/null
  V_STOP_S=$(secs "$t3" "$(now)")
  local stop_text=${V_STOP_S}s
  if grep -qs "did not power off in time" "$state/containers/$id/monitor.log"; then
    echo "machine.sh: $name did not power off cleanly: forced after ${stop_timeout}s" >&2
    stop_text="forced (${V_STOP_S}s)"
    V_STOP_S=nan
    : > "$state/containers/$id/monitor.log"
  fi
  # `machine stop` returns once the monitor has let go of the machine; the
  # process may take a moment more to exit.
  local tries=0
  while pgrep -f "vessel-monitor --root $state --id $id" >/dev/null; do
    tries=$(( tries + 1 ))
    [ "$tries" -le 100 ] || { echo "machine.sh: the monitor of $name still runs 10 s after machine stop" >&2; return 1; }
    sleep 0.1
  done
  [ "$tries" = 0 ] || stop_text="$stop_text (monitor exited ~$(( tries * 100 )) ms later)"
  echo "# vessel $verb: ready after ${V_BOOT_S}s (\`machine $verb\` ${V_CMD_S}s, bus retries $V_RETRIES," \
    "guest uptime ${V_UPTIME}s, state $V_STATE), PSS $V_PSS_MIB MiB (guest RAM $r, TCG code $c, other $o;" \
    "${V_PSS_PROCS% }), stop $stop_text"
  sed -n 's/^BOOT-INFO /#   /p; s/^BOOT-FAILED /#   failed unit: /p' <<<"$V_INFO" | tr -d '\r'
}

# --- Baseline's side ---

# base_boot DISK DIR LABEL: one boot with the baseline's functions; comment line.
base_boot() {
  local r c o
  baseline_boot_once "$1" "$2"
  read -r r c o <<<"$BASELINE_PSS_PARTS"
  echo "# baseline $3: ready after ${BASELINE_BOOT_S}s (guest uptime ${BASELINE_GUEST_UPTIME_S}s," \
    "state $BASELINE_STATE), PSS $BASELINE_PSS_MIB MiB (guest RAM $r, TCG code $c, other $o)," \
    "power-off ${BASELINE_SHUTDOWN_S:-killed}s"
  sed -n 's/^BOOT-INFO /#   /p; s/^BOOT-FAILED /#   failed unit: /p' "$2/console.log" | tr -d '\r'
}

# --- Setup ---
ip link set lo up 2>/dev/null || true
mkdir -p "$home"
chown 4000:4000 "$home"
baseline_prepare "$work/baseline"
layout=$(scripts/make-machine-image.sh "$work/image" | tail -n1)
v image load -i "$layout" --name vessel-bench/debian-systemd >/dev/null

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "# machines: vessel (kernel $(basename "$(dirname "$(readlink -f "$kernel")")"), --cpus $cpus --memory ${mem_mib}m," \
  "--network none) vs baseline (Debian $(sed -n 's/^release=\([^;]*\);.*/\1/p' "$BASELINE_IMAGE/info")" \
  "stock kernel $(sed -n 's/^kernel=//p' "$BASELINE_IMAGE/info"), -smp $cpus -m $BASELINE_MEM, no NIC);" \
  "$VESSEL_ACCEL, $runs runs alternated, PSS ${BASELINE_IDLE_S}s after ready; host $(nproc) x $cpu_model," \
  "load $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A M  # M[side.metric] = "v1 v2 ..."
add() { M[$1.$2]="${M[$1.$2]:+${M[$1.$2]} }$3"; }
for i in $(seq "$runs"); do
  name=bench-$i
  echo "# run $i"
  vessel_boot create "$name"
  add vessel first_boot_s "$V_BOOT_S"; add vessel first_pss_mib "$V_PSS_MIB"
  add vessel first_shutdown_s "$V_STOP_S"

  mkdir -p "$BASELINE_WORK/run$i-first" "$BASELINE_WORK/run$i-second"
  baseline_copy_disk "$BASELINE_IMAGE/disk.img" "$BASELINE_WORK/disk.img"
  base_boot "$BASELINE_WORK/disk.img" "$BASELINE_WORK/run$i-first" first-boot
  add baseline first_boot_s "$BASELINE_BOOT_S"; add baseline first_pss_mib "$BASELINE_PSS_MIB"
  add baseline first_shutdown_s "${BASELINE_SHUTDOWN_S:-nan}"
  [ -n "$BASELINE_SHUTDOWN_S" ] || { echo "machine.sh: the baseline's first boot did not power off cleanly" >&2; exit 1; }

  vessel_boot start "$name"
  add vessel second_boot_s "$V_BOOT_S"; add vessel pss_mib "$V_PSS_MIB"
  read -r r c o <<<"$V_PSS_PARTS"
  add vessel pss_guest_ram_mib "$r"; add vessel pss_tcg_code_mib "$c"; add vessel pss_other_mib "$o"
  add vessel shutdown_s "$V_STOP_S"

  base_boot "$BASELINE_WORK/disk.img" "$BASELINE_WORK/run$i-second" second-boot
  add baseline second_boot_s "$BASELINE_BOOT_S"; add baseline pss_mib "$BASELINE_PSS_MIB"
  read -r r c o <<<"$BASELINE_PSS_PARTS"
  add baseline pss_guest_ram_mib "$r"; add baseline pss_tcg_code_mib "$c"; add baseline pss_other_mib "$o"
  add baseline shutdown_s "${BASELINE_SHUTDOWN_S:-nan}"

  v machine rm "$name" >/dev/null
  rm -f "$BASELINE_WORK/disk.img"
done

metrics=(first_boot_s second_boot_s first_pss_mib pss_mib pss_guest_ram_mib pss_tcg_code_mib
  pss_other_mib first_shutdown_s shutdown_s)
for m in "${metrics[@]}"; do
  # shellcheck disable=SC2086  # the lists are words
  bench_report vessel "$m" ${M[vessel.$m]}
  # shellcheck disable=SC2086
  bench_report baseline "$m" ${M[baseline.$m]}
done
# Per-run ratios vessel/baseline (runs are paired: alternated), and their median.
for m in first_boot_s second_boot_s first_pss_mib pss_mib; do
  # shellcheck disable=SC2086
  mapfile -t ratios < <(paste <(printf '%s\n' ${M[vessel.$m]}) <(printf '%s\n' ${M[baseline.$m]}) |
    awk '{ printf "%.2f\n", $1 / $2 }')
  bench_report ratio "$m" "${ratios[@]}"
done
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
