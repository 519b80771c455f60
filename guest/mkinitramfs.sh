#!/usr/bin/env bash
# Write the Vessel initramfs: a gzip'd newc cpio archive holding vessel-init
# as /init, the directories it mounts on, and /dev/console.
#
#   guest/mkinitramfs.sh INIT OUT
#
# No root and no mknod are needed: the archive is written here byte by byte
# (newc is ASCII hex headers; see the kernel's
# Documentation/driver-api/early-userspace/buffer-format.rst), so the device
# node is just a header. OUT is written to OUT.tmp and renamed into place.
set -euo pipefail
export LC_ALL=C

if [ $# -ne 2 ]; then
  echo "usage: mkinitramfs.sh INIT OUT" >&2
  exit 2
fi
init=$1
out=$2
[ -f "$init" ] || { echo "mkinitramfs.sh: '$init' is not a file" >&2; exit 1; }

ino=0

# pad N: the zero bytes that bring an offset of N up to a multiple of 4.
pad() {
  local n=$(( (4 - $1 % 4) % 4 ))
  if [ "$n" -gt 0 ]; then head -c "$n" /dev/zero; fi
}

# entry NAME MODE SIZE NLINK RDEV_MAJOR RDEV_MINOR: one newc header and the
# padded name. Times, owners and device numbers are zero: the archive is the
# same for the same binary.
entry() {
  local name=$1 mode=$2 size=$3 nlink=$4 rmajor=$5 rminor=$6
  local namesize=$(( ${#name} + 1 ))
  ino=$(( ino + 1 ))
  #       magic  ino mode uid gid nlink mtime size devmaj devmin rdevmaj rdevmin namesize check
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    "$ino" "$mode" 0 0 "$nlink" 0 "$size" 0 0 "$rmajor" "$rminor" "$namesize" 0
  printf '%s\0' "$name"
  pad $(( 110 + namesize ))
}

dir() { entry "$1" $(( 8#040000 | $2 )) 0 2 0 0; }

write_archive() {
  dir . 0755
  dir dev 0755
  entry dev/console $(( 8#020000 | 8#0600 )) 0 1 5 1
  dir proc 0755
  dir sys 0755
  dir run 0755
  dir tmp 01777
  local size
  size=$(stat -c %s "$init")
  entry init $(( 8#0100000 | 8#0755 )) "$size" 1 0 0
  cat "$init"
  pad "$size"
  ino=-1  # the trailer's inode is 0
  entry 'TRAILER!!!' 0 0 1 0 0
}

mkdir -p "$(dirname "$out")"
write_archive | gzip -9 -n > "$out.tmp"
mv -f "$out.tmp" "$out"
