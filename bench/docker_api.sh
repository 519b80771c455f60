#!/usr/bin/env bash
# The Docker Engine API's overhead: `docker run --rm vessel/busybox true`
# through `vessel system service` against `vessel run --rm vessel/busybox
# true`, alternated in one run (medians), then requests per second of
# `docker ps` (GET /containers/json) with N containers running.
#
#   bench/docker_api.sh [--build-dir DIR] [--runs N] [--containers N] [--ps N]
#
# Uses /usr/bin/docker (Debian's docker.io; DOCKER=... for another CLI). As
# root the script re-executes itself under `unshare -n`: bridges and taps
# stay in a namespace of its own.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
build=build
runs=10
containers=20
ps_requests=50
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --containers) containers=$2; shift 2 ;;
    --ps) ps_requests=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$self"; exit 0 ;;
    *) echo "docker_api.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" = 0 ] && [ "${VESSEL_BENCH_NETNS:-}" != 1 ]; then
  VESSEL_BENCH_NETNS=1 exec unshare -n -- "$self" --build-dir "$build" --runs "$runs" \
    --containers "$containers" --ps "$ps_requests"
fi
[ "${VESSEL_BENCH_NETNS:-}" = 1 ] && ip link set lo up
. bench/lib.sh
vessel=$(realpath "$build/bin/vessel")
docker=${DOCKER:-/usr/bin/docker}
[ -x "$vessel" ] || { echo "missing $vessel: build first (scripts/setup.sh)" >&2; exit 1; }
[ -x "$docker" ] || { echo "missing $docker (install docker.io)" >&2; exit 1; }
root=$(mktemp -d /tmp/vessel-bench.XXXXXX)
export VESSEL_ACCEL=${VESSEL_ACCEL:-tcg} DOCKER_CONFIG=$root/docker-config
export DOCKER_HOST=unix://$root/docker.sock
"$vessel" --root "$root" system service --time 0 "$DOCKER_HOST" 2>"$root/service.log" &
service=$!
cleanup() {
  "$vessel" --root "$root" rm -f --all >/dev/null 2>&1 || true
  kill "$service" 2>/dev/null || true
  wait "$service" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
for _ in $(seq 50); do "$docker" version >/dev/null 2>&1 && break; sleep 0.1; done
# Warm up: the embedded image is loaded and its snapshot made once.
"$vessel" --root "$root" run --rm vessel/busybox true
"$docker" run --rm vessel/busybox true

api=() cli=()
for _ in $(seq "$runs"); do
  t0=$(now); "$docker" run --rm vessel/busybox true; t1=$(now)
  api+=("$(echo "$t1 - $t0" | bc)")
  t0=$(now); "$vessel" --root "$root" run --rm vessel/busybox true; t1=$(now)
  cli+=("$(echo "$t1 - $t0" | bc)")
done
api_median=$(printf '%s\n' "${api[@]}" | median)
cli_median=$(printf '%s\n' "${cli[@]}" | median)
printf 'run --rm true, median of %d: docker (API) %.3f s, vessel %.3f s, overhead %.3f s\n' \
  "$runs" "$api_median" "$cli_median" "$(echo "$api_median - $cli_median" | bc)"

for i in $(seq "$containers"); do
  "$docker" run -d -m 64m --name "idle$i" vessel/busybox sleep 100000 >/dev/null
done
t0=$(now)
for _ in $(seq "$ps_requests"); do "$docker" ps -q >/dev/null; done
t1=$(now)
printf 'docker ps with %d containers: %.1f per second (%d in %.2f s, each a new docker CLI)\n' \
  "$containers" "$(echo "$ps_requests / ($t1 - $t0)" | bc -l)" "$ps_requests" "$(echo "$t1 - $t0" | bc)"
