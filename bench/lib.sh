# Helpers shared by the benchmarks (sourced, not run).
now() { date +%s.%N; }
# The kernel arguments vmm/qemu/machine_x86_64.cc gives a VM under TCG, for
# the floors (a bare boot) to boot like Vessel's VMs: lpj and tsc_early_khz
# from the host TSC, init_on_alloc=1, the APIC timer's rate.
floor_tcg_kernel_args() {
  local khz
  khz=$(awk -F: '/^cpu MHz/ {printf "%d", $2 * 1000; exit}' /proc/cpuinfo)
  echo "tsc=reliable no_timer_check${khz:+ lpj=$((khz * 1000 / 100)) tsc_early_khz=$khz}" \
    "init_on_alloc=1 lapic_timer_khz=1000000"
}
# The floor of the start benchmarks: a bare boot of KERNEL with INITRD (an
# init that reboots at once) on the machine vmm/qemu/machine_x86_64.cc
# builds: its accelerator options, CPU model, CPUs, memory and, under TCG,
# kernel arguments. The console goes to stdout.
#   floor_boot KERNEL INITRD [tcg|kvm]
floor_boot() {
  local kernel=$1 initrd=$2 cpu=Nehalem accel_opts=tcg,tb-size=48 args
  args=$(floor_tcg_kernel_args)
  if [ "${3:-tcg}" = kvm ]; then cpu=host; accel_opts=kvm; args=; fi
  # The QEMU Vessel runs (PATH's, or $VESSEL_QEMU) with its own firmware, as
  # Vessel gives it (vmm::qemu_data_dir).
  local qemu bin_dir data
  qemu=$(command -v "${VESSEL_QEMU:-qemu-system-x86_64}")
  bin_dir=$(dirname "$(readlink -f "$qemu")")
  # Under KVM, as vmm::find_qemu: the microvm-only build beside it, if any.
  if [ "${3:-tcg}" = kvm ] && [ -z "${VESSEL_QEMU:-}" ] &&
    [ -x "$bin_dir/qemu-system-x86_64-microvm" ]; then
    qemu=$bin_dir/qemu-system-x86_64-microvm
  fi
  data=$(dirname "$bin_dir")/share/qemu
  [ -d "$data" ] || data=/usr/share/qemu
  "$qemu" -L "$data" -M microvm,acpi=off,rtc=on,isa-serial=on -accel "$accel_opts" \
    -cpu "$cpu" -smp 2 -m 576M -nodefaults -no-user-config -display none -no-reboot \
    -chardev stdio,id=con,signal=off -serial chardev:con \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 reboot=t panic=-1 $args quiet" </dev/null 2>&1
}
# smaps_split RAM_KB PID...: one pass over /proc/PID/smaps of each PID,
# printing "guest code anon fpriv fshared" (KiB, Pss summed): guest RAM (the
# mappings of exactly RAM_KB), TCG's translated code (anonymous executable
# mappings), other anonymous memory (heap, arenas, stacks), the private
# (relocated) data of binaries and libraries (Private_Dirty of file
# mappings), and the rest of their pages (shared, divided among users).
smaps_split() {
  local ram=$1 p; shift
  for p in "$@"; do cat "/proc/$p/smaps" 2>/dev/null || true; done | awk -v ram="$ram" '
    /^[0-9a-f]+-[0-9a-f]+ / {file = (NF >= 6 && $6 ~ /^\//); code = ($2 ~ /x/ && NF == 5)}
    /^Size:/ {guest = ($2 == ram)}
    /^Pss:/ {if (guest) g += $2; else if (file) fpss += $2; else if (code) c += $2; else anon += $2}
    /^Private_Dirty:/ && !guest && file {fpriv += $2}
    END {printf "%d %d %d %d %d\n", g, c, anon, fpriv, fpss - fpriv}'
}
# median: of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# Memory of one container: PSS of its monitor and the monitor's children
# (QEMU, virtiofsd), and the PSS of QEMU's guest RAM mapping (the largest
# anonymous mapping in QEMU, the size of the VM's memory).
pss_kb() { awk '/^Pss:/ {s += $2} END {print s + 0}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
guest_ram_kb() {  # qemu pid, ram size in kB
  awk -v want="$2" '
    /^[0-9a-f]+-[0-9a-f]+ / { split($1, r, "-"); in_ram = 0 }
    /^Size:/ { in_ram = ($2 == want) }
    /^Pss:/ && in_ram { s += $2 }
    END { print s + 0 }' "/proc/$1/smaps" 2>/dev/null || echo 0
}
container_memory() {  # id vm_ram_kb -> "total_kb guest_kb" (the caller defines v)
  local mpid qpid total guest=0 p
  mpid=$(v inspect "$1" | awk -F': ' '/"Pid"/ {gsub(/,/, "", $2); print $2; exit}')
  total=$(pss_kb "$mpid")
  for p in $(pgrep -P "$mpid"); do
    total=$((total + $(pss_kb "$p")))
    if [ "$(cat /proc/$p/comm)" = qemu-system-x86 ]; then qpid=$p; fi
    for c in $(pgrep -P "$p"); do total=$((total + $(pss_kb "$c"))); done  # virtiofsd's children
  done
  [ -n "${qpid:-}" ] && guest=$(guest_ram_kb "$qpid" "$2")
  echo "$total $guest"
}
