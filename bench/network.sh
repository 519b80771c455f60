#!/usr/bin/env bash
# Container networking: TCP throughput and the start cost of a NIC.
#
# 1. Throughput (iperf3, TCP, one stream, S seconds each), alternated in one
#    run:
#      - reference: two network namespaces on a veth pair (no VM);
#      - host -> container: iperf3 on the host against a server in a
#        container on the default network (bridge + tap + virtio-net);
#      - container -> container: a client container against the server
#        container, both on the default network.
#    The containers run iperf3 from a root filesystem the script builds:
#    the build's busybox rootfs plus the host's /usr/bin/iperf3 and the
#    shared libraries ldd lists (vessel run --rootfs DIR).
# 2. Start latency: `vessel run --rm vessel/busybox true` on the default
#    network against the same with `--network none`, alternated.
#
# Everything runs in a network namespace the script makes (it re-executes
# itself under `unshare -n`): the host's network is not touched. Needs root.
#
#   bench/network.sh [--build-dir DIR] [--runs N] [--seconds S]
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
build=build
runs=3
seconds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "network.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "network.sh: needs root (network namespaces, bridges, taps)" >&2; exit 1; }
for tool in iperf3 ip unshare nsenter; do
  command -v "$tool" >/dev/null || { echo "network.sh: $tool not found (apt-get install iperf3 iproute2 util-linux)" >&2; exit 1; }
done
if [ "${VESSEL_BENCH_NETNS:-}" != 1 ]; then
  # Our own network namespace: bridges, taps, rules and traffic stay in it.
  VESSEL_BENCH_NETNS=1 exec unshare -n -- "$self" --build-dir "$build" --runs "$runs" --seconds "$seconds"
fi
ip link set lo up

vessel=$build/bin/vessel
busybox_rootfs=$build/rootfs/busybox
for f in "$vessel" "$busybox_rootfs/bin/busybox" "$build/share/vessel/kernel"; do
  [ -e "$f" ] || { echo "missing $f: build first (scripts/setup.sh)" >&2; exit 1; }
done
root=$(mktemp -d /tmp/vessel-bench.XXXXXX)
export VESSEL_ACCEL=${VESSEL_ACCEL:-tcg}
v() { "$vessel" --root "$root/state" "$@"; }
peer_pid=''
ref_server=''
cleanup() {
  v rm -f --all >/dev/null 2>&1 || true
  v network prune -f >/dev/null 2>&1 || true
  [ -n "$ref_server" ] && kill "$ref_server" 2>/dev/null
  [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null
  # Whatever else is left in this namespace (an iperf3 server, a resolver):
  # ours alone, since the namespace is.
  local ns p
  ns=$(readlink /proc/$$/ns/net)
  for p in $(pgrep -x 'iperf3|dnsmasq' || true); do
    [ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "$ns" ] && kill "$p" 2>/dev/null
  done
  rm -rf "$root"
}
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh

# The iperf3 root filesystem: busybox + iperf3 + its libraries + the loader.
make_iperf_rootfs() {  # dir
  cp -a "$busybox_rootfs" "$1"
  mkdir -p "$1/usr/bin"
  cp -L /usr/bin/iperf3 "$1/usr/bin/iperf3"
  ldd /usr/bin/iperf3 | awk '/=> \// {print $3} /^\t\// {print $1}' | while read -r lib; do
    mkdir -p "$1$(dirname "$lib")"
    cp -L "$lib" "$1$lib"
  done
}
make_iperf_rootfs "$root/server-rootfs"
make_iperf_rootfs "$root/client-rootfs"

# The reference: a second namespace on a veth pair, its iperf3 server.
unshare -n sleep infinity &
peer_pid=$!
until [ "$(readlink /proc/$peer_pid/ns/net 2>/dev/null)" != "$(readlink /proc/$$/ns/net)" ]; do sleep 0.05; done
ip link add vbench0 type veth peer name vbench1
ip link set vbench1 netns "$peer_pid"
ip addr add 198.51.100.1/24 dev vbench0
ip link set vbench0 up
nsenter -t "$peer_pid" -n sh -c 'ip link set lo up; ip addr add 198.51.100.2/24 dev vbench1; ip link set vbench1 up'
nsenter -t "$peer_pid" -n iperf3 -s -B 198.51.100.2 >/dev/null 2>&1 &
ref_server=$!  # nsenter execs iperf3 (no pid namespace): the server's pid

# The container server.
v run -d --name iperf-server --rootfs "$root/server-rootfs" /usr/bin/iperf3 -s >/dev/null
srv_ip=$(v inspect iperf-server | awk -F'"' '/"IPAddress": "[0-9]/ {print $4; exit}')
[ -n "$srv_ip" ] || { echo "no address for the server container" >&2; exit 1; }

# Mbit/s the receiver saw, from iperf3's text output on stdin.
receiver_mbits() { awk '/receiver/ {v = $(NF-2)} END {if (v == "") exit 1; print v}'; }
# Waits until an iperf3 server answers (the VM boots, iperf3 starts).
wait_server() {  # address
  for _ in $(seq 120); do
    iperf3 -c "$1" -t 1 -f m >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "no iperf3 server at $1" >&2; exit 1
}
wait_server 198.51.100.2
wait_server "$srv_ip"

: > "$root/ref.txt"; : > "$root/h2c.txt"; : > "$root/c2c.txt"
for _ in $(seq "$runs"); do
  iperf3 -c 198.51.100.2 -t "$seconds" -f m | receiver_mbits >> "$root/ref.txt"
  iperf3 -c "$srv_ip" -t "$seconds" -f m | receiver_mbits >> "$root/h2c.txt"
  v run --rm --rootfs "$root/client-rootfs" /usr/bin/iperf3 -c "$srv_ip" -t "$seconds" -f m \
    | receiver_mbits >> "$root/c2c.txt"
done
v rm -f iperf-server >/dev/null

# Start latency: with the default network, and with --network none.
v run --rm vessel/busybox true  # warm: the image in the store, the bridge made
: > "$root/net.txt"; : > "$root/none.txt"
for _ in $(seq "$runs"); do
  t0=$(now); v run --rm --network none vessel/busybox true; t1=$(now)
  v run --rm vessel/busybox true; t2=$(now)
  echo "$t1 - $t0" | bc >> "$root/none.txt"
  echo "$t2 - $t1" | bc >> "$root/net.txt"
done

stats() {  # file -> "median min max"
  echo "$(median < "$1") $(sort -n "$1" | head -1) $(sort -n "$1" | tail -1)"
}
m_ref=$(median < "$root/ref.txt")
printf 'network (%s, %d runs alternated, %d s each, accel=%s)\n' "$(uname -m)" "$runs" "$seconds" "$VESSEL_ACCEL"
printf '  iperf3 %s, one TCP stream; server container at %s\n' "$(iperf3 --version | awk 'NR == 1 {print $2}')" "$srv_ip"
printf '  %-38s %10s %10s %10s %8s\n' "TCP throughput, Mbit/s" median min max "vs veth"
for row in "veth, namespace -> namespace:ref" "host -> container:h2c" "container -> container:c2c"; do
  read -r m lo hi < <(stats "$root/${row##*:}.txt")
  printf '  %-38s %10.1f %10.1f %10.1f %8.3f\n' "${row%:*}" "$m" "$lo" "$hi" "$(echo "$m / $m_ref" | bc -l)"
done
read -r m_none lo hi < <(stats "$root/none.txt")
printf '  %-38s %10s %10s %10s %8s\n' "start, run --rm true, s" median min max ratio
printf '  %-38s %10.3f %10.3f %10.3f %8s\n' "--network none" "$m_none" "$lo" "$hi" ""
read -r m_net lo hi < <(stats "$root/net.txt")
printf '  %-38s %10.3f %10.3f %10.3f %8.3f\n' "default network" "$m_net" "$lo" "$hi" "$(echo "$m_net / $m_none" | bc -l)"
printf '  %-38s %10.3f\n' "added by the network" "$(echo "$m_net - $m_none" | bc -l)"
