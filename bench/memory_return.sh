#!/usr/bin/env bash
# Memory that comes back: how much of what a container frees leaves the
# host's memory, and how fast, each scenario with the return path on and off
# in one run.
#
# (a) allocate and free: a container (`-m 512m --tmpfs /t:size=450m`,
#     vessel/busybox, `sleep infinity`) writes 400 MiB into its tmpfs (`dd
#     if=/dev/zero of=/t/f bs=1M count=400`: guest RAM touched), then
#     deletes it. QEMU's RSS (Rss of /proc/QEMU/smaps_rollup) before, at the
#     peak, and every second for --seconds after the `rm`: bytes returned
#     (peak - last) and seconds until 90 % of (peak - before) came back.
#     "on": the defaults (virtio-balloon with free page reporting, always
#     there: `--memory-reclaim off` does not remove it). "off": the same
#     container with QEMU started through a wrapper ($VESSEL_QEMU, in the
#     script's temporary directory) that drops `-device
#     virtio-balloon-device,...` from QEMU's arguments: nothing is reported,
#     as before the balloon existed. The two run one after the other.
# (b) read-once page cache: two containers at once, `--memory-reclaim auto`
#     and `--memory-reclaim off` (balloon on in both), each writes a 200 MiB
#     file to its image root (`/big`, on the ext4 writable layer), `sync; echo
#     3 > /proc/sys/vm/drop_caches` (the written pages go, and are reported
#     free), `cat /big >/dev/null` (200 MiB of page cache, read once), then
#     both go idle: VMMemUsage of each (`vessel stats --no-stream --format
#     json`: the host memory of the VM, QEMU's anonymous pages + its guest RAM file)
#     and MemUsage (the container's own use in the guest, page cache
#     included) every 2 s for 40 s. With auto, vessel-init samples the
#     container's cgroup every 4 s and, after 2 idle periods, reclaims its
#     unmapped page cache with memory.reclaim (guest/reclaim.h), which free
#     page reporting then hands back.
#
# As root the script re-executes itself under `unshare -n` (the containers
# use --network none anyway).
#
#   bench/memory_return.sh [--build-dir DIR] [--seconds S]
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
build=build
seconds=20
usage() { sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "memory_return.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "memory_return.sh: needs root" >&2; exit 1; }
if [ "${VESSEL_BENCH_NETNS:-}" != 1 ]; then
  VESSEL_BENCH_NETNS=1 exec unshare -n -- "$self" --build-dir "$build" --seconds "$seconds"
fi
ip link set lo up
vessel=$(realpath "$build/bin/vessel")
[ -x "$vessel" ] || { echo "missing $build/bin/vessel: build first (scripts/setup.sh)" >&2; exit 1; }
qemu=$(command -v "${VESSEL_QEMU:-qemu-system-x86_64}") || { echo "QEMU not found" >&2; exit 1; }
# shellcheck source=bench/lib.sh
. bench/lib.sh
accel=${VESSEL_ACCEL:-tcg}
export VESSEL_ACCEL=$accel
root=$(mktemp -d /tmp/vessel-memret.XXXXXX)
trap '"$vessel" --root "$root" rm -f --all >/dev/null 2>&1 || true; rm -rf "$root"' EXIT
v() { "$vessel" --root "$root" "$@"; }

# QEMU without the balloon: the "off" case of (a).
cat > "$root/qemu-no-balloon" <<EOF
#!/usr/bin/env bash
args=()
while [ \$# -gt 0 ]; do
  if [ "\$1" = -device ] && [[ "\${2:-}" == virtio-balloon-device* ]]; then shift 2; continue; fi
  args+=("\$1"); shift
done
exec "$qemu" "\${args[@]}"
EOF
chmod +x "$root/qemu-no-balloon"

qemu_of() {  # container -> QEMU's pid (the monitor's child)
  local m
  m=$(v inspect "$1" | awk -F': ' '/"Pid"/ {gsub(/,/, "", $2); print $2; exit}')
  pgrep -P "$m" qemu
}
rss_kb() { awk '/^Rss:/ {print $2}' "/proc/$1/smaps_rollup"; }
mib() { printf "%.1f" "$(echo "$1 / 1024" | bc -l)"; }

printf 'memory return (%s, accel=%s, %s cores, load %s)\n' "$(uname -m)" "$accel" "$(nproc)" \
  "$(cut -d' ' -f1-3 /proc/loadavg)"

# (a) ------------------------------------------------------------------------
alloc_free() {  # mode (on|off) -> series in $root/a-MODE.txt, summary in $root/a-MODE.sum
  local mode=$1 name=alloc-$1 q before peak t0 t r i t90=-
  if [ "$mode" = off ]; then
    VESSEL_QEMU=$root/qemu-no-balloon v run -d --network none --name "$name" -m 512m \
      --tmpfs /t:size=450m vessel/busybox sleep infinity >/dev/null
  else
    v run -d --network none --name "$name" -m 512m --tmpfs /t:size=450m \
      vessel/busybox sleep infinity >/dev/null
  fi
  q=$(qemu_of "$name")
  if [ "$mode" = off ] && tr '\0' ' ' < "/proc/$q/cmdline" | grep -q virtio-balloon; then
    echo "the wrapper did not take the balloon out" >&2; exit 1
  fi
  if [ "$mode" = on ] && ! tr '\0' ' ' < "/proc/$q/cmdline" | grep -q free-page-reporting=on; then
    echo "QEMU has no balloon with free page reporting" >&2; exit 1
  fi
  sleep 5
  before=$(rss_kb "$q")
  v exec "$name" dd if=/dev/zero of=/t/f bs=1M count=400 2>/dev/null
  peak=$(rss_kb "$q")
  v exec "$name" rm /t/f
  t0=$(now)
  : > "$root/a-$mode.txt"
  for i in $(seq "$seconds"); do
    sleep "$(echo "$t0 + $i - $(now)" | bc -l | awk '{print ($1 > 0 ? $1 : 0)}')"
    r=$(rss_kb "$q")
    echo "$i $r" >> "$root/a-$mode.txt"
    if [ "$t90" = - ] && [ $((peak - r)) -ge $(((peak - before) * 9 / 10)) ]; then t90=$i; fi
  done
  echo "$before $peak $r $t90" > "$root/a-$mode.sum"
  v rm -f "$name" >/dev/null
}
alloc_free on
alloc_free off
echo "(a) allocate 400 MiB in a tmpfs, rm it: QEMU RSS, MiB (on: balloon with free page reporting; off: QEMU without the balloon)"
read -r b_on p_on l_on t_on < "$root/a-on.sum"
read -r b_off p_off l_off t_off < "$root/a-off.sum"
printf '  %-22s %10s %10s\n' "" on off
printf '  %-22s %10s %10s\n' "before" "$(mib "$b_on")" "$(mib "$b_off")"
printf '  %-22s %10s %10s\n' "peak (after dd)" "$(mib "$p_on")" "$(mib "$p_off")"
paste -d' ' "$root/a-on.txt" "$root/a-off.txt" | while read -r i r1 _ r2; do
  printf '  %-22s %10s %10s\n' "${i} s after rm" "$(mib "$r1")" "$(mib "$r2")"
done
printf '  %-22s %10s %10s\n' "returned (peak - last)" "$(mib $((p_on - l_on)))" "$(mib $((p_off - l_off)))"
printf '  %-22s %10s %10s\n' "90 % back after, s" "$t_on" "$t_off"

# (b) ------------------------------------------------------------------------
for mode in auto off; do
  v run -d --network none --name "cache-$mode" -m 512m --memory-reclaim "$mode" \
    vessel/busybox sleep infinity >/dev/null
done
sleep 5
stats_line() {  # label: "label autoVM offVM autoMem offMem", MiB
  v stats --no-stream --format json | python3 -c '
import json, sys
by = {e["Name"]: e for e in json.load(sys.stdin)}
a, o = by["cache-auto"], by["cache-off"]
m = lambda x: "%.1f" % (x / 2**20)
print(sys.argv[1], m(a["VMMemUsage"]), m(o["VMMemUsage"]), m(a["MemUsage"]), m(o["MemUsage"]))' "$1"
}
fmt() { awk '{printf "  %8s %12s %12s %12s %12s\n", $1, $2, $3, $4, $5}'; }
stats_line before > "$root/b-before.txt"
for mode in auto off; do
  v exec "cache-$mode" sh -c 'dd if=/dev/zero of=/big bs=1M count=200 2>/dev/null && sync &&
    echo 3 > /proc/sys/vm/drop_caches && cat /big > /dev/null' &
done
wait
t0=$(now)
echo "(b) 200 MiB read once, then idle: VMMemUsage (host memory of the VM) and MemUsage (in the container), MiB"
printf '  %8s %12s %12s %12s %12s\n' "t, s" "auto VM" "off VM" "auto cont." "off cont."
fmt < "$root/b-before.txt"
: > "$root/b.txt"
for t in $(seq 0 2 40); do
  sleep "$(echo "$t0 + $t - $(now)" | bc -l | awk '{print ($1 > 0 ? $1 : 0)}')"
  stats_line "$t" | tee -a "$root/b.txt" | fmt
done
# Returned: from the first sample after the read to the last, also as a
# share of what the read added over the idle VM before it; seconds until 90 %
# of what came back in the 40 s had come back.
for col in 2 3; do
  awk -v col="$col" -v before="$(cut -d' ' -f"$col" "$root/b-before.txt")" '
    {t[NR] = $1; m[NR] = $col} END {
      ret = m[1] - m[NR]; t90 = "-"
      for (i = 1; i <= NR; i++) if (ret > 4 && m[1] - m[i] >= 0.9 * ret) { t90 = t[i]; break }
      printf "  %-5s returned in 40 s %6.1f MiB of the %.1f MiB the read added (%.0f %%), 90 %% of it after %s s\n",
        (col == 2 ? "auto" : "off"), ret, m[1] - before, 100 * ret / (m[1] - before), t90 }' "$root/b.txt"
done
v rm -f cache-auto cache-off >/dev/null
