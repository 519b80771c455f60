#!/usr/bin/env bash
# Runs the whole test suite: the README's test command, and what CI runs.
#
#   scripts/test.sh [--build-dir DIR] [--quick]
#
# 1. builds (incrementally) and runs every ctest test: unit, VM (QEMU under
#    TCG here) and the checks (static guest init, fuzz corpus replay);
# 2. builds the host code with ASan+UBSan and runs the unit tests;
# 3. checks clang-format.
# --quick skips 2 and 3. Exit status is non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

export VESSEL_ACCEL=${VESSEL_ACCEL:-}
jobs=$(nproc)

echo "== build ($build_dir)"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build_dir"

# The machine tests' image comes from the Debian mirror (debootstrap), but
# every test runs in a network namespace of its own with no way out
# (tests/support/cli_runner.cc), so it is made here, once, and cached
# (/var/cache/vessel/images); the tests find it there.
if [ "$(id -u)" = 0 ] && command -v debootstrap >/dev/null; then
  echo "== fixtures: the machine image (cached after the first run)"
  mkdir -p "$build_dir/fixtures"
  scripts/make-machine-image.sh "$build_dir/fixtures/machine-image" >/dev/null ||
    echo "test.sh: warning: no machine image (see above): the machine tests will fail" >&2
fi

echo "== tests: unit, VM"
# No retries: a test that fails once is a failure. (A guest crash under TCG
# once made the suite retry; its cause was found and fixed, see
# docs/architecture.md, "TCG and vhost-user writes".)
(cd "$build_dir" && ctest -j"$jobs" --output-on-failure --timeout 300)

if [ "$quick" = 0 ]; then
  echo "== unit tests under ASan+UBSan"
  cmake -S . -B "$build_dir-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DVESSEL_SANITIZE=ON \
    -DVESSEL_GUEST=OFF -DVESSEL_KERNEL=OFF >/dev/null
  ninja -C "$build_dir-asan"
  (cd "$build_dir-asan" && ctest -j"$jobs" -L unit --output-on-failure)

  echo "== clang-format"
  git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror
fi
echo "== all tests passed"
