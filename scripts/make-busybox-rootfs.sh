#!/usr/bin/env bash
# Builds a small root filesystem from Debian's busybox-static:
#   scripts/make-busybox-rootfs.sh OUT_DIR
# /bin/busybox plus a symlink per applet, /etc/passwd and /etc/group (root,
# nobody and a uid 1000 user), empty /etc/hosts and /etc/resolv.conf for the
# guest to mount over. Written to OUT_DIR.tmp and renamed: never half-made.
set -euo pipefail
out=${1:?usage: make-busybox-rootfs.sh OUT_DIR}
bb=/bin/busybox
[ -x "$bb" ] && file -L "$bb" 2>/dev/null | grep -q 'statically linked' || {
  echo "make-busybox-rootfs.sh: $bb is not a static busybox (install busybox-static)" >&2; exit 1; }

tmp="$out.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,root,home/user,tmp,var/tmp}
chmod 1777 "$tmp/tmp" "$tmp/var/tmp"
chmod 0700 "$tmp/root"
cp "$bb" "$tmp/bin/busybox"
"$bb" --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  dir=$(dirname "$applet")
  # Relative by string: realpath would follow the host's merged /bin.
  up=$(echo "$dir" | sed -E 's#[^/]+#..#g')
  rel="$up/bin/busybox"; [ "$dir" = bin ] && rel=busybox
  ln -sf "$rel" "$tmp/$applet"
done
cat > "$tmp/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$tmp/etc/group" <<'G'
root:x:0:
tty:x:5:
user:x:1000:
nogroup:x:65534:
G
: > "$tmp/etc/hosts"
: > "$tmp/etc/resolv.conf"
echo vessel > "$tmp/etc/hostname"
chown 1000:1000 "$tmp/home/user" 2>/dev/null || true
rm -rf "$out"
mv "$tmp" "$out"
