#!/usr/bin/env bash
# Builds the systemd machine image (Debian bookworm, debootstrap minbase with
# systemd, systemd-sysv, dbus and sudo; /sbin/init as the command) as an OCI
# image layout, for `vessel machine create`:
#
#   scripts/make-machine-image.sh OUT_LAYOUT
#   scripts/make-machine-image.sh --with-kernel OUT_DIR
#
# The image is built once and cached outside the tree, keyed by this script's
# recipe (package list and the commands that shape the root filesystem), the
# host architecture, the debootstrap version and the release the mirror serves
# (Version and Date of its InRelease, as `apt-get update` last saw it). OUT is
# made a symlink to the cached copy, so a second call is instant. The cache is
# read-only to consumers: copy what you want to change.
# Cache root: $VESSEL_IMAGE_CACHE, default /var/cache/vessel/images.
# Mirror: the configured Debian mirror serving bookworm (apt sources), or
# $VESSEL_DEBIAN_MIRROR.
#
# --with-kernel (the benchmark baseline, bench/machine_baseline.sh): the same
# plus Debian's stock kernel (linux-image-amd64, initramfs-tools), not packed
# as OCI: OUT_DIR holds disk.img (raw ext4, the root filesystem with a few
# hundred MiB free), vmlinuz and initrd.img. It also has a unit that writes
# "BOOT-READY state=..." to the console once `systemctl is-system-running
# --wait` answers.
#
# On success the last line of stdout is OUT (the layout, or the directory).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
with_kernel=0
out=
while [ $# -gt 0 ]; do
  case "$1" in
    --with-kernel) with_kernel=1; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    -*) echo "make-machine-image.sh: unknown argument '$1'" >&2; exit 2 ;;
    *) [ -z "$out" ] || { echo "make-machine-image.sh: one OUT only" >&2; exit 2; }
       out=$1; shift ;;
  esac
done
[ -n "$out" ] || { echo "usage: make-machine-image.sh [--with-kernel] OUT" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "make-machine-image.sh: must run as root (debootstrap)" >&2; exit 1; }

suite=bookworm
variant=minbase
packages=(systemd systemd-sysv dbus sudo)
flavor=systemd
if [ "$with_kernel" = 1 ]; then
  packages+=(linux-image-amd64 initramfs-tools)
  flavor=kernel
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
arch=$(dpkg --print-architecture)
[ "$with_kernel" = 0 ] || [ "$arch" = amd64 ] || {
  echo "make-machine-image.sh: --with-kernel is for amd64 (linux-image-amd64)" >&2; exit 1; }
tools=(debootstrap flock)
if [ "$with_kernel" = 1 ]; then tools+=(mkfs.ext4); else tools+=(umoci); fi
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || {
    echo "make-machine-image.sh: $tool not found (run scripts/setup.sh --deps-only)" >&2; exit 1; }
done
[ -f "$keyring" ] || { echo "make-machine-image.sh: missing $keyring (debian-archive-keyring)" >&2; exit 1; }

# The mirror: the first apt source (deb822 .sources, then one-line .list)
# whose suites include $suite.
find_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '
      function flush() {
        if (enabled != "no" && (" " types " ") ~ / deb / && (" " suites " ") ~ (" " suite " ") && uris != "") {
          split(uris, u, " "); print u[1]; done = 1; exit
        }
        types = uris = suites = enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      /^[A-Za-z-]+:/ {
        key = tolower($0); sub(/:.*/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
        if (key == "types") types = val; else if (key == "uris") uris = val
        else if (key == "suites") suites = val; else if (key == "enabled") enabled = tolower(val)
      }
      END { if (!done) flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
      awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2; exit }'
  done
}
mirror=${VESSEL_DEBIAN_MIRROR:-$(find_mirror | head -n1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}

# The release the mirror serves: from apt's lists (no network), else fetched.
release_info() {
  local list
  list=/var/lib/apt/lists/$(printf '%s' "${mirror#*://}" | tr / _)_dists_${suite}_
  for f in "${list}InRelease" "${list}Release"; do
    [ -f "$f" ] && { cat "$f"; return; }
  done
  echo "make-machine-image.sh: no apt list for $mirror $suite; fetching its InRelease" >&2
  command -v curl >/dev/null && curl -fsSL --max-time 60 "$mirror/dists/$suite/InRelease" && return
  wget -qO- --timeout=60 "$mirror/dists/$suite/InRelease"
}
# The fields of a (signed) Release file that name the archive's state.
release_fields() { awk '/^(Version|Date):/ && !seen[$1]++ { $1 = ""; sub(/^ /, ""); printf "%s;", $0 }'; }
release=$(release_info | release_fields) || true
[ -n "$release" ] || { echo "make-machine-image.sh: cannot read the release of $mirror $suite" >&2; exit 1; }
release_version=$(printf '%s' "$release" | cut -d';' -f1)

# --- The recipe: what shapes the root filesystem (its text is in the key) ---

# Both flavours: small, no build host's traces, systemd's first-boot state.
customize_common() {
  local root=$1
  # Documentation and apt's caches: not needed in a machine; dpkg leaves them
  # out of later installs too (as Debian's slim images do).
  mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/groff/*' 'path-exclude /usr/share/lintian/*' \
    'path-exclude /usr/share/linda/*' 'path-exclude /usr/share/locale/*' \
    'path-include /usr/share/locale/locale.alias' > "$root/etc/dpkg/dpkg.cfg.d/01-nodoc"
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/groff" \
    "$root/usr/share/lintian" "$root/usr/share/linda"
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin \
    "$root/var/cache/apt/archives/"*.deb "$root/var/cache/apt/archives/partial/"* \
    "$root/var/cache/debconf/"*-old "$root/var/lib/dpkg/"*-old \
    "$root/var/log/"*.log "$root/var/log/apt/"* "$root/debootstrap"
  # debootstrap leaves a real id (systemd's postinst): every machine would
  # share it. An EMPTY /etc/machine-id makes systemd generate the id at boot
  # and write it to the (persistent, writable) disk: unique per machine and
  # stable from then on. machine-id(5): empty is not a "first boot"; a file
  # that says "uninitialized" (or none) is, and then systemd also runs
  # preset-all and systemd-firstboot, which enable more units: tried with
  # the baseline disk, that boot took 63 s instead of 41 s. D-Bus reads
  # /etc/machine-id when /var/lib/dbus/machine-id is absent.
  : > "$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id" "$root/var/lib/systemd/random-seed"
  # debootstrap copies the build host's name and resolver: the machine gets
  # its own (systemd's fallback hostname until one is set).
  rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
  # Device nodes come from devtmpfs at boot, not from the image.
  find "$root/dev" -mindepth 1 -delete
}

# The benchmark baseline disk: root on /dev/vda, and a console marker once
# `systemctl is-system-running --wait` answers (Type=simple: the unit does
# not hold up the boot it waits for).
customize_kernel() {
  local root=$1
  printf '/dev/vda\t/\text4\terrors=remount-ro\t0\t1\n' > "$root/etc/fstab"
  mkdir -p "$root/usr/local/sbin"
  cat > "$root/usr/local/sbin/boot-ready-marker" <<'EOF'
#!/bin/sh
state=$(systemctl is-system-running --wait)
{
  echo "BOOT-READY state=$state uptime=$(cut -d' ' -f1 /proc/uptime)"
  systemd-analyze time 2>&1 | sed 's/^/BOOT-INFO /'
  systemctl --failed --plain --no-legend | sed 's/^/BOOT-FAILED /'
} > /dev/console
EOF
  chmod 755 "$root/usr/local/sbin/boot-ready-marker"
  cat > "$root/etc/systemd/system/boot-ready-marker.service" <<'EOF'
[Unit]
Description=Write BOOT-READY to the console once the boot has finished

[Service]
Type=simple
ExecStart=/usr/local/sbin/boot-ready-marker

[Install]
WantedBy=multi-user.target
EOF
  ln -sf /etc/systemd/system/boot-ready-marker.service \
    "$root/etc/systemd/system/multi-user.target.wants/boot-ready-marker.service"
}

recipe=1  # bump for a change of the recipe that its text below does not show
key_text=$(printf '%s\n' "recipe=$recipe" "flavor=$flavor" "suite=$suite" "variant=$variant" \
  "arch=$arch" "packages=${packages[*]}" "release=$release" \
  "debootstrap=$(dpkg-query -W -f='${Version}' debootstrap 2>/dev/null)"
  declare -f customize_common customize_kernel)
hash=$(printf '%s' "$key_text" | sha256sum | cut -c1-16)
key="$flavor-$suite-${release_version//[^A-Za-z0-9.+-]/_}-$arch-$hash"
cache=${VESSEL_IMAGE_CACHE:-/var/cache/vessel/images}
entry="$cache/$key"
if [ "$with_kernel" = 1 ]; then product="$entry/disk.img"; else product="$entry/layout/index.json"; fi
target="$entry"; [ "$with_kernel" = 1 ] || target="$entry/layout"

# OUT -> the cached copy (a symlink, replaced atomically). An OUT that exists
# and is not a symlink is left alone (an error).
link_out() {
  if [ -e "$out" ] && [ ! -L "$out" ]; then
    echo "make-machine-image.sh: $out exists and is not a symlink; not replacing it" >&2; exit 1
  fi
  mkdir -p "$(dirname "$out")"
  ln -sfn "$target" "$out.lnk.$$"
  mv -T "$out.lnk.$$" "$out"
  echo "$out"
}
if [ -f "$product" ]; then link_out; exit 0; fi

mkdir -p "$cache"
exec 9>"$cache/.lock-$key"
flock 9
if [ -f "$product" ]; then link_out; exit 0; fi

tmp="$entry.tmp"
rootfs="$tmp/rootfs"
# Anything debootstrap left mounted under $tmp (a run that died) comes off
# before the tree is removed, and rm stays on this filesystem.
cleanup() {
  findmnt -rn -o TARGET | { grep -F "$tmp/" || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
cleanup
mkdir -p "$tmp"

start=$(date +%s)
echo "make-machine-image.sh: debootstrap $suite ($variant, ${packages[*]}) from $mirror into $key" >&2
if ! debootstrap --variant="$variant" --arch="$arch" --keyring="$keyring" \
      --include="$(IFS=,; echo "${packages[*]}")" "$suite" "$rootfs" "$mirror" \
      > "$tmp/debootstrap.log" 2>&1; then
  tail -n 30 "$tmp/debootstrap.log" >&2
  [ ! -f "$rootfs/debootstrap/debootstrap.log" ] || tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
  echo "make-machine-image.sh: debootstrap failed" >&2; exit 1
fi
# The release debootstrap really got (the key used apt's view of it).
got=
for f in "$rootfs"/var/lib/apt/lists/*_dists_"${suite}"_InRelease "$rootfs"/var/lib/apt/lists/*_dists_"${suite}"_Release; do
  [ -f "$f" ] && { got=$(release_fields < "$f"); break; }
done
[ -z "$got" ] || [ "$got" = "$release" ] || echo "make-machine-image.sh: warning: the mirror served" \
  "'$got', apt's lists say '$release' (run apt-get update): cached under the latter" >&2
if findmnt -rn -o TARGET | grep -qF "$rootfs/"; then
  echo "make-machine-image.sh: debootstrap left mounts under $rootfs" >&2; exit 1
fi

echo "make-machine-image.sh: debootstrap left /etc/machine-id $(if [ ! -e "$rootfs/etc/machine-id" ]; then
  echo absent; elif [ -s "$rootfs/etc/machine-id" ]; then echo set; else echo empty; fi); made empty" >&2
customize_common "$rootfs"
mkdir -p "$tmp/out"
if [ "$with_kernel" = 1 ]; then
  customize_kernel "$rootfs"
  vmlinuz=$(find "$rootfs/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n1)
  initrd=$(find "$rootfs/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n1)
  if [ -z "$vmlinuz" ] || [ -z "$initrd" ]; then
    echo "make-machine-image.sh: no kernel or initrd in /boot" >&2; exit 1
  fi
  cp "$vmlinuz" "$tmp/out/vmlinuz"
  cp "$initrd" "$tmp/out/initrd.img"
  kernel_version=${vmlinuz##*/vmlinuz-}
  used_mib=$(( $(du -sx --block-size=1M "$rootfs" | cut -f1) ))
  size_mib=$(( used_mib * 11 / 10 + 384 ))
  truncate -s "${size_mib}M" "$tmp/out/disk.img"
  mkfs.ext4 -q -F -L root -d "$rootfs" "$tmp/out/disk.img"
else
  kernel_version=
  "$here/make-oci-image.sh" "$rootfs" "$tmp/out/layout" /sbin/init >&2
fi
rm -rf --one-file-system "$rootfs"
{
  echo "key=$key"
  echo "suite=$suite"
  echo "mirror=$mirror"
  echo "release=$release"
  echo "packages=${packages[*]}"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "build_seconds=$(( $(date +%s) - start ))"
  [ -z "$kernel_version" ] || echo "kernel=$kernel_version"
} > "$tmp/out/info"
rm -f "$tmp/debootstrap.log"
rm -rf "$entry"
mv "$tmp/out" "$entry"
echo "make-machine-image.sh: built $key in $(( $(date +%s) - start )) s ($(du -sh "$entry" | cut -f1))" >&2
link_out
