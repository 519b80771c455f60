#!/usr/bin/env bash
# Image pull: `vessel image pull` (download + verify + unpack into an ext4
# snapshot) of a ~200 MB, 5-layer image from a loopback docker-registry into a
# cold store, against `skopeo copy docker://… oci:…` + `umoci unpack` of the
# same image, alternated in one run. Prints medians and the ratio, then the
# median of `vessel run --rm IMAGE true` with the snapshot cached.
#
#   bench/pull.sh [--build-dir DIR] [--runs N]
#
# The image is built once by bench/make_layered_image.sh and kept under
# /var/cache/vessel/bench/ (delete it to rebuild).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
runs=5
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "pull.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
vessel=$build/bin/vessel
[ -x "$vessel" ] || { echo "missing $vessel: build first (scripts/setup.sh)" >&2; exit 1; }
for t in skopeo umoci docker-registry curl; do
  command -v $t >/dev/null || { echo "$t not found" >&2; exit 1; }
done
layout=/var/cache/vessel/bench/big-oci
bench/make_layered_image.sh "$layout" --build-dir "$build" >&2

tmp=$(mktemp -d /tmp/vessel-bench-pull.XXXXXX)
reg_pid=
cleanup() {
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# A free port on 127.0.0.1, then the registry (temp storage, loopback only).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$tmp/registry"
cat > "$tmp/registry/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $tmp/registry/data
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$tmp/registry/config.yml" >"$tmp/registry/log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do
  curl -fs -o /dev/null "http://127.0.0.1:$port/v2/" && break
  kill -0 "$reg_pid" 2>/dev/null || { cat "$tmp/registry/log" >&2; exit 1; }
  sleep 0.1
done
curl -fs -o /dev/null "http://127.0.0.1:$port/v2/" || { echo "registry did not start" >&2; cat "$tmp/registry/log" >&2; exit 1; }
ref=127.0.0.1:$port/bench/big:latest
skopeo copy -q --insecure-policy --dest-tls-verify=false "oci:$layout:latest" "docker://$ref" >&2

accel=${VESSEL_ACCEL:-tcg}
ours() {  # cold store: a fresh root each time
  rm -rf "$tmp/root"
  "$vessel" --root "$tmp/root" image pull --progress none "$ref" </dev/null >/dev/null
}
theirs() {
  rm -rf "$tmp/oci" "$tmp/bundle"
  skopeo copy -q --insecure-policy --src-tls-verify=false "docker://$ref" "oci:$tmp/oci:latest" >/dev/null &&
    umoci unpack --image "$tmp/oci:latest" "$tmp/bundle" >/dev/null
}
start() {
  VESSEL_ACCEL=$accel "$vessel" --root "$tmp/warm" run --rm "$ref" "$@" </dev/null
}
# shellcheck source=bench/lib.sh
. bench/lib.sh  # the script has cd'd to the repository root
stats() { printf 'median %.3f s  (min %.3f, max %.3f)' "$(median < "$1")" "$(sort -n "$1" | head -1)" "$(sort -n "$1" | tail -1)"; }

# Warm the registry's page cache, and check that both really worked.
ours; [ -n "$(ls -A "$tmp/root")" ] || { echo "vessel pull left no store" >&2; exit 1; }
theirs; [ -x "$tmp/bundle/rootfs/bin/busybox" ] || { echo "umoci unpack failed" >&2; exit 1; }
: > "$tmp/ours.txt"; : > "$tmp/theirs.txt"; : > "$tmp/run.txt"
for i in $(seq "$runs"); do
  sync; t0=$(now); theirs; t1=$(now); sync; t2=$(now); ours; t3=$(now)
  echo "$t1 - $t0" | bc >> "$tmp/theirs.txt"
  echo "$t3 - $t2" | bc >> "$tmp/ours.txt"
done
rm -rf "$tmp/root" "$tmp/oci" "$tmp/bundle"

# Start from the cached snapshot.
"$vessel" --root "$tmp/warm" image pull --progress none "$ref" </dev/null >/dev/null
[ "$(start echo ok)" = ok ] || { echo "vessel run $ref failed" >&2; exit 1; }
for i in $(seq "$runs"); do
  t0=$(now); start true; t1=$(now)
  echo "$t1 - $t0" | bc >> "$tmp/run.txt"
done

m_ours=$(median < "$tmp/ours.txt")
m_theirs=$(median < "$tmp/theirs.txt")
printf 'image pull (%s, %d runs alternated, %s MB uncompressed in %s layers, loopback registry)\n' \
  "$(uname -m)" "$runs" "~200" 5
printf '  vessel image pull (cold store) : %s\n' "$(stats "$tmp/ours.txt")"
printf '  skopeo copy + umoci unpack     : %s\n' "$(stats "$tmp/theirs.txt")"
printf '  ratio                          : %.2f\n' "$(echo "$m_ours / $m_theirs" | bc -l)"
printf '  vessel run --rm IMAGE true (snapshot cached, accel=%s) : %s\n' "$accel" "$(stats "$tmp/run.txt")"
