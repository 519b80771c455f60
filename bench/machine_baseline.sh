#!/usr/bin/env bash
# The baseline for Vessel's machines: what a user would run instead of
# `vessel machine create`. A Debian bookworm disk (the same package set as the
# machine image, plus Debian's stock kernel and initramfs; built and cached by
# scripts/make-machine-image.sh --with-kernel) booted with plain QEMU:
#
#   qemu-system-x86_64 -M q35,accel=$VESSEL_ACCEL (tcg) -cpu Nehalem -smp 2 -m 1G
#     -kernel vmlinuz -initrd initrd.img -append "root=/dev/vda rw console=ttyS0 quiet"
#     -drive if=virtio (raw ext4) -nic none, serial console to a file, QMP socket
#
#   bench/machine_baseline.sh [--runs N] [--idle S] [--second-boot] [--keep]
#
# Each run boots a fresh copy of the disk and measures
#   boot_to_running_s  QEMU launch until `systemctl is-system-running --wait`
#                      answers in the guest (a unit in the image writes
#                      "BOOT-READY state=..." to the console, watched here)
#   pss_mib            PSS of the QEMU process (/proc/PID/smaps_rollup) once
#                      idle, --idle S (default 20) seconds after that, with its
#                      parts: guest RAM, TCG code buffers, the rest
#   shutdown_s         QMP system_powerdown until QEMU exits (killed after 60 s)
# --second-boot: boot copies of a disk that has booted (and powered off) once,
# as `vessel machine start` of an existing machine; the default is the first
# boot of a new disk, as `vessel machine create`. --keep: keep the work dir.
#
# Output, one line per metric (per-run values, then the median), so that
# Vessel's figures can stand beside it with another label:
#   baseline boot_to_running_s runs 41.2 40.8 42.0
#   baseline boot_to_running_s median 41.2
#
# Sourcing it (. bench/machine_baseline.sh) defines the functions without
# running anything: baseline_prepare, baseline_boot_once (sets BASELINE_*),
# and the helpers bench_wait_console, bench_pss_mib, bench_pss_parts,
# bench_qmp and bench_report, for bench/machine.sh to use on Vessel's QEMU too.

baseline_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$baseline_repo/bench/lib.sh"

BASELINE_IDLE_S=${BASELINE_IDLE_S:-20}
BASELINE_BOOT_TIMEOUT_S=${BASELINE_BOOT_TIMEOUT_S:-900}
BASELINE_SHUTDOWN_TIMEOUT_S=${BASELINE_SHUTDOWN_TIMEOUT_S:-60}
BASELINE_MEM=${BASELINE_MEM:-1G}
BASELINE_CPUS=${BASELINE_CPUS:-2}

# bench_wait_console FILE PATTERN TIMEOUT_S [PID]: wait until a line of FILE
# matches PATTERN (grep -E); fails on timeout or when PID has exited first.
bench_wait_console() {
  local file=$1 pattern=$2 timeout=$3 pid=${4:-} deadline
  deadline=$(( $(date +%s) + timeout ))
  until grep -qE "$pattern" "$file" 2>/dev/null; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      grep -qE "$pattern" "$file" 2>/dev/null && return 0
      echo "bench: process $pid exited before '$pattern' appeared in $file" >&2; return 1
    fi
    [ "$(date +%s)" -lt "$deadline" ] || { echo "bench: no '$pattern' in $file after ${timeout}s" >&2; return 1; }
    sleep 0.05
  done
}

# bench_pss_mib PID...: the summed PSS of the processes, in MiB (one decimal).
bench_pss_mib() {
  local pid kb=0 v
  for pid in "$@"; do
    v=$(awk '/^Pss:/ { print $2; exit }' "/proc/$pid/smaps_rollup") || return 1
    kb=$(( kb + v ))
  done
  awk -v kb="$kb" 'BEGIN { printf "%.1f\n", kb / 1024 }'
}

# bench_pss_parts PID RAM_MIB: "guest_ram tcg_code other" PSS in MiB of a
# QEMU process: guest RAM is its anonymous mapping of the guest's memory size
# (RAM_MIB), TCG code buffers its anonymous executable mappings.
bench_pss_parts() {
  awk -v ram_kb="$(( $2 * 1024 ))" '
    /^[0-9a-f]+-[0-9a-f]+ / { perms = $2; anon = (NF < 6 || $6 == ""); next }
    /^Size:/ { size = $2; next }
    /^Pss:/ {
      if (anon && perms ~ /^rw/ && size == ram_kb) ram += $2
      else if (anon && perms ~ /x/) code += $2
      else other += $2
    }
    END { printf "%.1f %.1f %.1f\n", ram / 1024, code / 1024, other / 1024 }' "/proc/$1/smaps"
}

# bench_qmp SOCKET COMMAND...: send QMP commands (after qmp_capabilities).
bench_qmp() {
  local sock=$1; shift
  { echo '{"execute":"qmp_capabilities"}'
    local c; for c in "$@"; do echo "{\"execute\":\"$c\"}"; done
  } | socat -t 3 - "UNIX-CONNECT:$sock" >/dev/null
}

# bench_report LABEL METRIC VALUE...: the per-run line and the median line.
bench_report() {
  local label=$1 metric=$2; shift 2
  echo "$label $metric runs $*"
  echo "$label $metric median $(printf '%s\n' "$@" | median)"
}

# baseline_prepare [WORKDIR]: build or find the disk (cached), make the work
# directory. Sets BASELINE_IMAGE (vmlinuz, initrd.img, disk.img) and
# BASELINE_WORK.
# shellcheck disable=SC2120  # WORKDIR is for callers that source this file
baseline_prepare() {
  BASELINE_WORK=${1:-$(mktemp -d /tmp/vessel-baseline.XXXXXX)}
  mkdir -p "$BASELINE_WORK"
  BASELINE_IMAGE=$("$baseline_repo/scripts/make-machine-image.sh" --with-kernel "$BASELINE_WORK/image" | tail -n1) || {
    echo "baseline: scripts/make-machine-image.sh --with-kernel failed" >&2; return 1; }
  local f
  for f in vmlinuz initrd.img disk.img; do
    [ -f "$BASELINE_IMAGE/$f" ] || { echo "baseline: missing $BASELINE_IMAGE/$f" >&2; return 1; }
  done
  for f in qemu-system-x86_64 socat; do
    command -v "$f" >/dev/null || { echo "baseline: $f not found (scripts/setup.sh --deps-only)" >&2; return 1; }
  done
}

# The QEMU command line of the baseline, for DISK, console to CONSOLE, QMP on SOCK.
baseline_qemu_cmd() {
  local disk=$1 console=$2 sock=$3 accel=${VESSEL_ACCEL:-tcg} cpu=Nehalem
  [ "$accel" != kvm ] || cpu=host
  BASELINE_QEMU=(qemu-system-x86_64 -M "q35,accel=$accel" -cpu "$cpu" -smp "$BASELINE_CPUS" -m "$BASELINE_MEM"
    -nodefaults -no-user-config -display none -nic none
    -kernel "$BASELINE_IMAGE/vmlinuz" -initrd "$BASELINE_IMAGE/initrd.img"
    -append "root=/dev/vda rw console=ttyS0 quiet"
    -drive "file=$disk,format=raw,if=virtio"
    -chardev "file,id=con,path=$console" -serial chardev:con
    -qmp "unix:$sock,server=on,wait=off")
}

# baseline_stop PID SOCK: powerdown through QMP, kill after the timeout.
# Sets BASELINE_SHUTDOWN_S (empty when it had to be killed).
baseline_stop() {
  local pid=$1 sock=$2 t0 deadline
  t0=$(now)
  bench_qmp "$sock" system_powerdown || echo "baseline: QMP system_powerdown failed" >&2
  deadline=$(( $(date +%s) + BASELINE_SHUTDOWN_TIMEOUT_S ))
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "baseline: no power-off after ${BASELINE_SHUTDOWN_TIMEOUT_S}s; killing QEMU" >&2
    kill "$pid" 2>/dev/null; sleep 2; kill -9 "$pid" 2>/dev/null
    BASELINE_SHUTDOWN_S=
  else
    BASELINE_SHUTDOWN_S=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
  fi
  wait "$pid" 2>/dev/null || true
  BASELINE_QEMU_PID=
}

# baseline_boot_once DISK DIR [IDLE_S]: boot DISK (modified in place), wait
# for BOOT-READY, measure PSS IDLE_S seconds later (0: skip), power off.
# Sets BASELINE_BOOT_S, BASELINE_STATE, BASELINE_GUEST_UPTIME_S,
# BASELINE_PSS_MIB, BASELINE_PSS_PARTS, BASELINE_SHUTDOWN_S; DIR keeps
# console.log (with BOOT-INFO/BOOT-FAILED lines) and qemu.log.
baseline_boot_once() {
  local disk=$1 dir=$2 idle=${3:-$BASELINE_IDLE_S} t0 t1 ready
  local console="$dir/console.log" sock="$dir/qmp.sock"
  rm -f "$console" "$sock"
  baseline_qemu_cmd "$disk" "$console" "$sock"
  t0=$(now)
  "${BASELINE_QEMU[@]}" </dev/null >"$dir/qemu.log" 2>&1 &
  BASELINE_QEMU_PID=$!
  if ! bench_wait_console "$console" '^BOOT-READY ' "$BASELINE_BOOT_TIMEOUT_S" "$BASELINE_QEMU_PID"; then
    tail -n 20 "$console" "$dir/qemu.log" >&2 || true
    [ -z "$BASELINE_QEMU_PID" ] || baseline_stop "$BASELINE_QEMU_PID" "$sock"
    return 1
  fi
  t1=$(now)
  BASELINE_BOOT_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  ready=$(grep -m1 '^BOOT-READY ' "$console")
  BASELINE_STATE=$(sed -n 's/.*state=\([^ ]*\).*/\1/p' <<<"$ready")
  BASELINE_GUEST_UPTIME_S=$(sed -n 's/.*uptime=\([^ ]*\).*/\1/p' <<<"$ready")
  BASELINE_PSS_MIB='' BASELINE_PSS_PARTS=''
  if [ "$idle" -gt 0 ]; then
    sleep "$idle"
    BASELINE_PSS_MIB=$(bench_pss_mib "$BASELINE_QEMU_PID")
    BASELINE_PSS_PARTS=$(bench_pss_parts "$BASELINE_QEMU_PID" "$(baseline_mem_mib)")
  fi
  baseline_stop "$BASELINE_QEMU_PID" "$sock"
}

baseline_mem_mib() {
  case "$BASELINE_MEM" in
    *G) echo $(( ${BASELINE_MEM%G} * 1024 )) ;;
    *M) echo "${BASELINE_MEM%M}" ;;
    *) echo "$BASELINE_MEM" ;;
  esac
}

# baseline_copy_disk SRC DST: a sparse copy (the cached disk stays pristine).
baseline_copy_disk() { rm -f "$2"; cp --reflink=auto --sparse=always "$1" "$2"; }

# Kills a QEMU still running, removes BASELINE_WORK (unless BASELINE_KEEP=1).
baseline_cleanup() {
  [ -z "${BASELINE_QEMU_PID:-}" ] || kill "$BASELINE_QEMU_PID" 2>/dev/null || true
  if [ "${BASELINE_KEEP:-0}" = 1 ]; then echo "baseline: kept $BASELINE_WORK" >&2
  elif [ -n "${BASELINE_WORK:-}" ]; then rm -rf "$BASELINE_WORK"; fi
}

baseline_main() {
  set -euo pipefail
  local runs=3 second=0 keep=0 i r c o
  while [ $# -gt 0 ]; do
    case "$1" in
      --runs) runs=$2; shift 2 ;;
      --idle) BASELINE_IDLE_S=$2; shift 2 ;;
      --second-boot) second=1; shift ;;
      --keep) keep=1; shift ;;
      -h|--help) sed -n '2,33p' "${BASH_SOURCE[0]}"; return 0 ;;
      *) echo "machine_baseline.sh: unknown argument '$1'" >&2; return 2 ;;
    esac
  done
  baseline_prepare
  BASELINE_KEEP=$keep
  trap baseline_cleanup EXIT
  local src="$BASELINE_IMAGE/disk.img" mode="first-boot"
  if [ "$second" = 1 ]; then
    mode="second-boot"
    mkdir -p "$BASELINE_WORK/prime"
    echo "baseline: first boot of the disk (not measured)" >&2
    baseline_copy_disk "$src" "$BASELINE_WORK/booted.img"
    baseline_boot_once "$BASELINE_WORK/booted.img" "$BASELINE_WORK/prime" 0
    [ -n "$BASELINE_SHUTDOWN_S" ] || { echo "baseline: the first boot did not power off cleanly" >&2; return 1; }
    src="$BASELINE_WORK/booted.img"
  fi
  local boot=() pss=() ram=() code=() other=() down=()
  local cpu_model
  cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  echo "# baseline: Debian $(sed -n 's/^release=\([^;]*\);.*/\1/p' "$BASELINE_IMAGE/info") stock kernel" \
    "$(sed -n 's/^kernel=//p' "$BASELINE_IMAGE/info"), $mode, ${VESSEL_ACCEL:-tcg}, -smp $BASELINE_CPUS -m $BASELINE_MEM," \
    "$runs runs, PSS ${BASELINE_IDLE_S}s after ready; host $(nproc) x $cpu_model"
  for i in $(seq "$runs"); do
    mkdir -p "$BASELINE_WORK/run$i"
    baseline_copy_disk "$src" "$BASELINE_WORK/disk.img"
    baseline_boot_once "$BASELINE_WORK/disk.img" "$BASELINE_WORK/run$i"
    boot+=("$BASELINE_BOOT_S"); pss+=("$BASELINE_PSS_MIB")
    read -r r c o <<<"$BASELINE_PSS_PARTS"
    ram+=("$r"); code+=("$c"); other+=("$o")
    down+=("${BASELINE_SHUTDOWN_S:-nan}")
    echo "# run $i: ready after ${BASELINE_BOOT_S}s (guest uptime ${BASELINE_GUEST_UPTIME_S}s, state $BASELINE_STATE)," \
      "PSS ${BASELINE_PSS_MIB} MiB (guest RAM $r, TCG code $c, other $o), power-off ${BASELINE_SHUTDOWN_S:-killed}s"
    sed -n 's/^BOOT-INFO /#   /p; s/^BOOT-FAILED /#   failed unit: /p' "$BASELINE_WORK/run$i/console.log" | tr -d '\r'
  done
  rm -f "$BASELINE_WORK/disk.img" "$BASELINE_WORK/booted.img"
  bench_report baseline boot_to_running_s "${boot[@]}"
  bench_report baseline pss_mib "${pss[@]}"
  bench_report baseline pss_guest_ram_mib "${ram[@]}"
  bench_report baseline pss_tcg_code_mib "${code[@]}"
  bench_report baseline pss_other_mib "${other[@]}"
  bench_report baseline shutdown_s "${down[@]}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  baseline_main "$@"
fi
