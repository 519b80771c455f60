#!/usr/bin/env bash
# One change at a time: alternates `vessel run --rm --network none CASE true`
# between two environments, A and B, for --runs N each, and prints both
# medians. Everything else is the same build, so a difference is the
# change's (the start is noisy: medians of 12 runs move 15-20 ms between
# identical arms here; ~40 runs per arm resolve 10 ms).
#
#   bench/start_ab.sh [--build-dir DIR] [--runs N] [--case rootfs|image] ENV_A ENV_B
#   bench/start_ab.sh [...] --tb-size A,B
#
# ENV_A and ENV_B are `env` assignments, e.g. VESSEL_INITRD=/path/a.cpio.gz
# (another vessel-init) or VESSEL_CONFINE=0. --tb-size runs QEMU through a
# wrapper that changes only -accel tcg,tb-size (a wrapper cannot be
# confined: both arms run with VESSEL_CONFINE=0). As root the script
# re-executes itself under `unshare -n`.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
build=build
runs=30
case_=rootfs
tb=
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --case) case_=$2; shift 2 ;;
    --tb-size) tb=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$self"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ "$(id -u)" = 0 ] && [ "${VESSEL_BENCH_NETNS:-}" != 1 ]; then
  extra=()
  [ -n "$tb" ] && extra=(--tb-size "$tb")
  VESSEL_BENCH_NETNS=1 exec unshare -n -- "$self" --build-dir "$build" --runs "$runs" \
    --case "$case_" "${extra[@]}" "${args[@]}"
fi
[ "${VESSEL_BENCH_NETNS:-}" = 1 ] && ip link set lo up
root=$(mktemp -d /tmp/vessel-ab.XXXXXX)
trap 'rm -rf "$root"' EXIT
if [ -n "$tb" ]; then
  wrapper=$root/qemu-tb
  cat >"$wrapper" <<'WRAP'
#!/usr/bin/env bash
args=()
for a in "$@"; do
  [[ "$a" == tcg,tb-size=* ]] && a="tcg,tb-size=$BENCH_TB"
  args+=("$a")
done
exec qemu-system-x86_64 "${args[@]}"
WRAP
  chmod +x "$wrapper"
  args=("VESSEL_CONFINE=0 VESSEL_QEMU=$wrapper BENCH_TB=${tb%,*}"
        "VESSEL_CONFINE=0 VESSEL_QEMU=$wrapper BENCH_TB=${tb#*,}")
fi
[ "${#args[@]}" = 2 ] || { echo "start_ab.sh: give ENV_A and ENV_B, or --tb-size A,B" >&2; exit 2; }
case "$case_" in
  rootfs) what=(--rootfs "$(realpath "$build/rootfs/busybox")") ;;
  image) what=(vessel/busybox) ;;
  *) echo "start_ab.sh: unknown case '$case_' (rootfs, image)" >&2; exit 2 ;;
esac
vessel=$(realpath "$build/bin/vessel")
# shellcheck source=bench/lib.sh
. bench/lib.sh
export VESSEL_ACCEL=${VESSEL_ACCEL:-tcg}
# shellcheck disable=SC2086  # each arm is a list of assignments
run() { env $1 "$vessel" --root "$root" run --rm --network none "${what[@]}" true </dev/null; }
# Warm-up of each arm (and the image's snapshot), which also checks it runs;
# twice, so that an image-root arm whose VM templates are on (the default;
# an arm may say VESSEL_TEMPLATES=0) has made its shape's template.
for arm in "${args[@]}" "${args[@]}"; do
  run "$arm" >/dev/null || { echo "arm failed: $arm" >&2; exit 1; }
done
: >"$root/a"; : >"$root/b"
for _ in $(seq "$runs"); do
  t0=$(now); run "${args[0]}"; t1=$(now); echo "$t1 - $t0" | bc >>"$root/a"
  t0=$(now); run "${args[1]}"; t1=$(now); echo "$t1 - $t0" | bc >>"$root/b"
done
printf 'start A/B (%s, %s runs each alternated, run --rm %s true)\n' "$(uname -m)" "$runs" "$case_"
printf '  A %-50s: median %.3f s\n' "${args[0]}" "$(median <"$root/a")"
printf '  B %-50s: median %.3f s\n' "${args[1]}" "$(median <"$root/b")"
