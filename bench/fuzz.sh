#!/usr/bin/env bash
# Fuzzes for a fixed time: builds the libFuzzer targets with clang (ASan and
# UBSan on, into build-fuzz/) and runs each for SECONDS on a scratch copy of
# its seed corpus. CI only replays the corpora (ctest *_fuzz_corpus); this is
# the benchmark job's fixed-time run. A finding stops the run: its input is
# left in build-fuzz/findings/TARGET/ and the script exits non-zero.
#
#   bench/fuzz.sh [--seconds N] [--targets agent,protocol,...]
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
seconds=60
targets=agent,protocol,netlink,docker_archive,manifest,auth,layer,guest_tar
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$self"; exit 0 ;;
    *) echo "fuzz.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
command -v clang++ >/dev/null || { echo "fuzz.sh: needs clang++ (Debian's clang)" >&2; exit 1; }
build=build-fuzz
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DVESSEL_GUEST=OFF -DVESSEL_KERNEL=OFF >/dev/null
status=0
for t in ${targets//,/ }; do
  ninja -C "$build" "${t}_fuzz" >/dev/null
  work=$(mktemp -d /tmp/vessel-fuzz.XXXXXX)
  cp -r "fuzz/corpus/$t/." "$work/"
  mkdir -p "$build/findings/$t"
  printf '%-16s ' "$t"
  if "$build/bin/${t}_fuzz" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$build/findings/$t/" "$work" > "$build/findings/$t.log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/findings/$t.log" | grep -o '[0-9]*$')
    cov=$(grep -o 'cov: [0-9]*' "$build/findings/$t.log" | tail -1)
    echo "ok: ${runs:-?} inputs in ${seconds} s, ${cov:-cov ?}, corpus $(ls "$work" | wc -l)"
  else
    echo "FINDING: see $build/findings/$t.log and $build/findings/$t/"
    status=1
  fi
  rm -rf "$work"
done
exit $status
