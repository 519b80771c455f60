#!/usr/bin/env bash
# Installs Vessel's dependencies from Debian packages (only what is missing)
# and builds everything: host code, vessel-init and its initramfs, the busybox
# root filesystem and the guest kernel (cached outside the tree).
#
#   scripts/setup.sh [--deps-only] [--build-dir DIR]
#
# Idempotent: a second run installs nothing and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
deps_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --deps-only) deps_only=1; shift ;;
    --build-dir) build_dir=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

case "$(uname -m)" in
  x86_64) qemu_pkg=qemu-system-x86 ;;
  aarch64) qemu_pkg=qemu-system-arm ;;
  *) echo "setup.sh: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac

packages=(
  # host build
  g++ cmake ninja-build pkg-config file clang-format
  libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev libssl-dev
  libcurl4-openssl-dev libarchive-dev libsqlite3-dev sqlite3
  # sd-bus: a systemd scope per VM where systemd manages the cgroups
  libsystemd-dev
  # VMs: QEMU (virtiofsd comes with qemu-system-common; qemu-img, from
  # qemu-utils, makes the empty qcow2 a container's root disk is copied from)
  "$qemu_pkg" qemu-system-common qemu-utils
  # guest kernel build
  linux-source-6.12 make bc bison flex libelf-dev libssl-dev cpio xz-utils kmod patch
  # fixtures (debootstrap: the systemd machine image, scripts/make-machine-image.sh)
  busybox-static e2fsprogs gzip zstd debootstrap
  # networking: netlink (libmnl), nftables (libnftables), DNS per network (dnsmasq)
  libmnl-dev libnftables-dev nftables dnsmasq-base iproute2
  # network benchmark
  iperf3
  # machine baseline benchmark: QMP client (bench/machine_baseline.sh)
  socat
  # image tests: a registry on 127.0.0.1 and tools that build OCI images
  docker-registry skopeo umoci apache2-utils openssl
  # OCI runtime tests (tests/oci): containerd 1.6 with ctr and the runc shim,
  # Podman 4.3 (with conmon), curl for their network tests
  containerd podman conmon curl
  # Docker Engine API (`vessel system service`): Boost.Beast (header-only),
  # and the clients its tests drive (docker.io for its CLI only: the tests
  # never start dockerd; docker-py; docker-compose)
  libboost-dev docker.io python3-docker docker-compose
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: missing packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages such as docker.io and containerd ship services; nothing here
  # may start one (dockerd would change the host's network). Debian's
  # policy-rc.d says no to every start while we install.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT  # ours: gone again however this ends
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian 12: QEMU 10.0 from bookworm-backports beside its 7.2, which cannot
# restore VM templates with shares (the script says why).
if [ "$(id -u)" = 0 ]; then scripts/install-backports-qemu.sh; fi
[ "$deps_only" = 1 ] && exit 0

cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build_dir"
echo "setup.sh: built into $build_dir (vessel: $build_dir/bin/vessel)"
