#!/usr/bin/env bash
# What QEMU itself costs the host per VM, beyond guest RAM, for each
# accelerator and QEMU binary this host has, side by side in one run.
#
# This machine's /dev/kvm cannot run a guest kernel (it stops at the
# kernel's first int3), so an idle container under KVM cannot be measured
# here. What can be measured is QEMU with a container's devices before its
# guest runs (-S: the machine, its devices, guest RAM mapped, the kernel
# and initramfs loaded, the vCPUs created and waiting): its heap, its
# binary's and libraries' relocated data, its threads. That is the floor of
# an idle container's cost beyond guest RAM; a running guest adds the
# devices' queue buffers and, under TCG only, translated code and TCG's
# per-vCPU state (bench/density.sh measures those, as running containers).
#
# The arms (each one N QEMUs at once, so shared pages divide as they do
# among N containers):
#   tcg        qemu-system-x86_64, -accel tcg,tb-size=48 -cpu Nehalem
#   kvm        qemu-system-x86_64, -accel kvm -cpu host
#   kvm-microvm  qemu-system-x86_64-microvm (Debian's build for the microvm
#              machine only: KVM only, no vhost-user-fs), when installed
# Each QEMU has what a `vessel run -d -m 128m vessel/busybox` container has
# (src/vmm/qemu_args.cc): microvm machine without ACPI, 2 vCPUs, 192 MiB, a
# qcow2 disk over a raw base, a tap NIC (vhost-net under KVM when
# /dev/vhost-net exists), virtio-serial with one port, the balloon with
# free page reporting, QMP, -sandbox. The monitor (~1.3 MiB) is not in it.
#
# Printed per QEMU (sums over the N divided by N), from /proc/PID/smaps:
#   beyond guest RAM  Pss of every mapping except guest RAM (size 192 MiB)
#     anonymous       heap, malloc arenas, stacks, TCG's buffers
#     files private   relocated data of the binary and its libraries
#     files shared    their text and read-only data, divided among the N
#   libraries         how many files QEMU maps
#
#   bench/vmm_footprint.sh [--count N] [--build-dir DIR]
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
build=build
count=10
usage() { sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "vmm_footprint.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ "$count" =~ ^[1-9][0-9]*$ ]] || { echo "vmm_footprint.sh: --count takes a number" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "vmm_footprint.sh: needs root (taps in a namespace)" >&2; exit 1; }
if [ "${VESSEL_BENCH_NETNS:-}" != 1 ]; then
  VESSEL_BENCH_NETNS=1 exec unshare -n -- "$self" --build-dir "$build" --count "$count"
fi
# shellcheck source=bench/lib.sh
. bench/lib.sh
kernel=$build/share/vessel/kernel
initrd=$build/share/vessel/initramfs.cpio.gz
for f in "$kernel" "$initrd"; do
  [ -f "$f" ] || { echo "missing $f: build first (scripts/setup.sh)" >&2; exit 1; }
done
qemu=$(command -v "${VESSEL_QEMU:-qemu-system-x86_64}")
qemu_dir=$(dirname "$(readlink -f "$qemu")")
data=$(dirname "$qemu_dir")/share/qemu
[ -d "$data" ] || data=/usr/share/qemu
microvm=$qemu_dir/qemu-system-x86_64-microvm
ram_mib=192
# Vessel's -cpu host, less the one MSR this machine's /dev/kvm refuses
# (QEMU asserts on "failed to set MSR 0x10a" at the vCPUs' reset).
kvm_cpu=host,-arch-capabilities
dir=$(mktemp -d /tmp/vessel-vmmfoot.XXXXXX)
pids=()
cleanup() {
  [ ${#pids[@]} -eq 0 ] || kill -KILL "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
ip link set lo up
qemu-img create -q -f raw "$dir/base.raw" 64M

# start ARM I: one QEMU of ARM, its pid in pids.
start() {
  local arm=$1 i=$2 bin=$qemu accel cpu vhost=off
  case "$arm" in
    tcg) accel=tcg,tb-size=48; cpu=Nehalem ;;
    kvm) accel=kvm; cpu=$kvm_cpu ;;
    kvm-microvm) accel=kvm; cpu=$kvm_cpu; bin=$microvm ;;
  esac
  if [ "$accel" = kvm ] && [ -c /dev/vhost-net ]; then vhost=on; fi
  ip tuntap add "tap$i" mode tap vnet_hdr 2>/dev/null || true
  ip link set "tap$i" up
  qemu-img create -q -f qcow2 -b "$dir/base.raw" -F raw "$dir/disk$i.qcow2"
  "$bin" -L "$data" -M microvm,acpi=off,rtc=on,isa-serial=on -cpu "$cpu" -accel "$accel" \
    -smp 2 -m "${ram_mib}M" -nodefaults -no-user-config -display none -no-reboot \
    -chardev "file,id=con,path=$dir/console$i" -serial chardev:con \
    -kernel "$kernel" -initrd "$initrd" -append "console=ttyS0 reboot=t panic=-1 quiet" \
    -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny \
    -global virtio-mmio.force-legacy=false \
    -blockdev "driver=raw,node-name=d-base,read-only=on,file.driver=file,file.filename=$dir/base.raw" \
    -blockdev "driver=qcow2,node-name=d,discard=unmap,file.driver=file,file.filename=$dir/disk$i.qcow2,file.discard=unmap,backing=d-base" \
    -device virtio-blk-device,drive=d,serial=root,bus=virtio-mmio-bus.7 \
    -netdev "tap,id=net0,ifname=tap$i,script=no,downscript=no,vhost=$vhost" \
    -device virtio-net-device,netdev=net0,mac=52:54:00:12:34:56,bus=virtio-mmio-bus.6 \
    -device virtio-serial-device,max_ports=2,bus=virtio-mmio-bus.5 \
    -chardev "socket,id=port0,path=$dir/port$i,server=on,wait=off" \
    -device virtserialport,chardev=port0,name=vessel \
    -device virtio-balloon-device,free-page-reporting=on,bus=virtio-mmio-bus.4 \
    -qmp "unix:$dir/qmp$i,server=on,wait=off" -S </dev/null >"$dir/qemu$i.log" 2>&1 &
  pids+=($!)
}

mib() { printf "%.1f" "$(echo "$1 / 1024 / $count" | bc -l)"; }

arms=(tcg kvm)
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
  echo "no usable /dev/kvm: only the tcg arm" >&2
  arms=(tcg)
elif [ -x "$microvm" ]; then
  arms+=(kvm-microvm)
else
  echo "no $microvm: no kvm-microvm arm" >&2
fi
printf '%-13s %9s %9s %9s %9s %6s   (MiB per QEMU, %s QEMUs, guest not started)\n' \
  arm beyond anon f.priv f.shared files "$count"
for arm in "${arms[@]}"; do
  pids=()
  for i in $(seq "$count"); do start "$arm" "$i"; done
  sleep 3
  for i in $(seq "$count"); do
    kill -0 "${pids[$((i - 1))]}" 2>/dev/null || {
      echo "$arm: QEMU $i exited:" >&2; cat "$dir/qemu$i.log" >&2; exit 1
    }
  done
  read -r _ code anon fpriv fshared < <(smaps_split $((ram_mib * 1024)) "${pids[@]}")
  anon=$((anon + code))  # TCG's code buffer counts as anonymous here (none while paused)
  beyond=$((anon + fpriv + fshared))
  files=$(awk '$6 ~ /^\// {print $6}' "/proc/${pids[0]}/maps" | sort -u | wc -l)
  printf '%-13s %9s %9s %9s %9s %6s\n' "$arm" "$(mib "$beyond")" "$(mib "$anon")" \
    "$(mib "$fpriv")" "$(mib "$fshared")" "$files"
  kill -KILL "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  for i in $(seq "$count"); do ip link del "tap$i" 2>/dev/null || true; rm -f "$dir/disk$i.qcow2"; done
done
