#!/usr/bin/env bash
# A container added to a pod's VM against a container with a VM of its own,
# both through vessel-runtime as a CRI calls it: `create` (the pod's
# container: its root bound into the pod directory and set up in the
# sandbox's running VM; the other: a VM booted), `start`, the process's
# exit as its caller sees it (the pid-file relay reaped), `delete`.
# busybox `true`, the same bundle but for the CRI's annotations.
#
# Runs in a mount and network namespace of its own (unshare) with a tmpfs
# on /run, so nothing reaches the host's.
#
#   bench/pod_member.sh [--build-dir DIR] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
runs=5
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "pod_member.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
rt=$(realpath "$build/bin/vessel-runtime")
rootfs=$(realpath "$build/rootfs/busybox")
[ -x "$rt" ] && [ -d "$rootfs" ] || { echo "missing $rt or $rootfs: build first" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "pod_member.sh: needs root (virtio-fs, namespaces)" >&2; exit 1; }
dir=$(mktemp -d /tmp/vessel-pod-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
bundle() {  # name annotations-json
  mkdir -p "$dir/$1"
  cat >"$dir/$1/config.json" <<J
{"ociVersion":"1.0.2","root":{"path":"$rootfs","readonly":true},
 "process":{"args":["true"],"cwd":"/","env":["PATH=/bin:/usr/bin"],"user":{"uid":0,"gid":0}},
 "hostname":"bench","linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"mount"}]},
 "annotations":$2}
J
}
bundle sandbox '{"io.kubernetes.cri.container-type":"sandbox"}'
bundle member '{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.sandbox-id":"sb"}'
bundle alone '{}'
cat >"$dir/bench.py" <<'PY'
import ctypes, os, subprocess, sys, time
rt, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the relays are ours to reap
env = dict(os.environ, VESSEL_ACCEL=os.environ.get("VESSEL_ACCEL", "tcg"))
def call(*args):
    # Files, not pipes: the monitor and the relay inherit stdio and outlive the call.
    with open("/run/bench.err", "w+") as err:
        r = subprocess.run([rt, "--root", "/run/bench"] + list(args), env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        err.seek(0)
        if r.returncode != 0:
            sys.exit(f"vessel-runtime {' '.join(args)}: {err.read()}")
call("create", "--bundle", f"{work}/sandbox", "sb")
call("start", "sb")
rows = {"in the pod's VM": [], "a VM of its own": []}
for i in range(runs):
    for kind, name in (("in the pod's VM", "member"), ("a VM of its own", "alone")):
        cid = f"{name}{i}"
        t0 = time.monotonic()
        call("create", "--bundle", f"{work}/{name}", "--pid-file", f"/run/{cid}.pid", cid)
        t1 = time.monotonic()
        relay = int(open(f"/run/{cid}.pid").read())
        call("start", cid)
        _, status = os.waitpid(relay, 0)
        t2 = time.monotonic()
        call("delete", "--force", cid)
        t3 = time.monotonic()
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{cid} exited with {os.waitstatus_to_exitcode(status)}")
        rows[kind].append((t1 - t0, t2 - t1, t3 - t2))
call("delete", "--force", "sb")
med = lambda xs: sorted(xs)[len(xs) // 2]
print(f"a pod's container vs a VM of its own ({runs} runs, accel={env['VESSEL_ACCEL']}, busybox true)")
for kind, r in rows.items():
    print(f"  {kind:16s}: create {med([x[0] for x in r]):.3f} s, start to exit "
          f"{med([x[1] for x in r]):.3f} s, delete {med([x[2] for x in r]):.3f} s (medians)")
PY
unshare -m -n --propagation slave sh -c \
  'mount -t tmpfs tmpfs /run && ip link set lo up && exec python3 "$0" "$@"' \
  "$dir/bench.py" "$rt" "$dir" "$runs"
