#!/usr/bin/env bash
# Debian 12 only: QEMU from bookworm-backports (10.0) beside the system's
# 7.2, for VM templates of containers with virtio-fs shares (a --rootfs,
# bind mounts, volumes, the OCI runtime's bundles). QEMU 7.2 refuses to load
# any saved state into a VM that has a vhost-user-fs device, so those
# containers could only boot (docs/architecture.md, "VM templates").
#
#   scripts/install-backports-qemu.sh [--remove]
#
# The packages (qemu-system-x86 or -arm, qemu-system-common, qemu-system-data)
# are fetched through a private apt configuration (the host's sources are not
# changed), checked by apt against the archive's signed index, unpacked into
# /opt/vessel/qemu-<version> and linked as /usr/local/bin/qemu-system-<arch>,
# which comes before /usr/bin in PATH. Nothing else of the host changes: its
# QEMU 7.2 stays installed, and its virtiofsd (part of 7.2's
# qemu-system-common; QEMU 10's has none, and Debian 12 has no other) serves
# the shares either way. --remove undoes it. Idempotent; on any failure it
# says why and leaves the host as it was (VMs with shares then boot).
set -euo pipefail

case "$(uname -m)" in
  x86_64) pkg=qemu-system-x86 bin=qemu-system-x86_64 ;;
  aarch64) pkg=qemu-system-arm bin=qemu-system-aarch64 ;;
  *) echo "install-backports-qemu.sh: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
link=/usr/local/bin/$bin
top=/opt/vessel

if [ "${1:-}" = --remove ]; then
  if [ -L "$link" ] && [[ "$(readlink "$link")" == "$top"/qemu-* ]]; then rm -f "$link"; fi
  rm -rf "$top"/qemu-*
  exit 0
fi

. /etc/os-release
if [ "${VERSION_CODENAME:-}" != bookworm ]; then
  exit 0  # other releases: their own QEMU (8.2 and later on Debian 13, Ubuntu 24.04)
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-backports-qemu.sh: run as root" >&2
  exit 1
fi

cache=/var/cache/vessel/backports
mkdir -p "$cache/lists/partial" "$cache/archives/partial" "$cache/debs"
echo "deb http://deb.debian.org/debian bookworm-backports main" > "$cache/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$cache/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$cache/lists" -o "Dir::Cache=$cache" -o "APT::Sandbox::User=root"
  -o "Debug::NoLocking=1")
if ! apt-get "${apt_opts[@]}" update -qq 2>"$cache/update.log"; then
  echo "install-backports-qemu.sh: cannot read bookworm-backports (see $cache/update.log);" \
    "containers with shares will boot rather than start from templates" >&2
  exit 0
fi
version=$(apt-cache "${apt_opts[@]}" show "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | head -1)
if [ -z "$version" ]; then
  echo "install-backports-qemu.sh: no $pkg in bookworm-backports" >&2
  exit 0
fi
# 1:10.0.2+ds-2+deb13u1~bpo12+1 -> 10.0.2+ds-2+deb13u1~bpo12+1
dir=$top/qemu-${version#*:}
if [ ! -x "$dir/usr/bin/$bin" ]; then
  (cd "$cache/debs" && rm -f ./*.deb &&
    apt-get "${apt_opts[@]}" download -qq "$pkg=$version" "qemu-system-common=$version" \
      "qemu-system-data=$version") || {
    echo "install-backports-qemu.sh: download of QEMU $version failed" >&2
    exit 0
  }
  stage=$(mktemp -d "$top/.stage-XXXXXX" 2>/dev/null || { mkdir -p "$top" && mktemp -d "$top/.stage-XXXXXX"; })
  for deb in "$cache/debs"/*.deb; do dpkg-deb -x "$deb" "$stage"; done
  # Every library it needs must be on the host (they are Debian 12's own).
  if ldd "$stage/usr/bin/$bin" | grep -q "not found"; then
    echo "install-backports-qemu.sh: QEMU $version needs libraries this host lacks:" >&2
    ldd "$stage/usr/bin/$bin" | grep "not found" >&2
    rm -rf "$stage"
    exit 0
  fi
  rm -rf "$dir"
  mv "$stage" "$dir"
fi
# microvm with ACPI (a machine) loads bios-microvm.bin, which Debian 13's
# QEMU takes from its seabios package (/usr/share/seabios, not unpacked
# here, and outside a confined QEMU's jail, which has only this data
# directory). Debian 12's QEMU links it to qboot.rom, which microvm without
# ACPI (a container) loads anyway; so does this one.
if [ "$bin" = qemu-system-x86_64 ] && [ ! -e "$dir/usr/share/qemu/bios-microvm.bin" ]; then
  ln -s qboot.rom "$dir/usr/share/qemu/bios-microvm.bin"
fi
"$dir/usr/bin/$bin" --version >/dev/null
ln -sfn "$dir/usr/bin/$bin" "$link"
# Older versions this script unpacked.
for old in "$top"/qemu-*; do
  [ "$old" = "$dir" ] || rm -rf "$old"
done
echo "install-backports-qemu.sh: $link -> QEMU $version from bookworm-backports"
