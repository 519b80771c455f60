#!/usr/bin/env bash
# Writes the seed corpus of guest_tar_fuzz into fuzz/corpus/guest_tar/.
# Each seed is one flags byte (see guest_tar_fuzz.cc: bit 0 keep_owner,
# 1 no_overwrite_dir_non_dir, 2 devices, 3 fix checksums, 4 through a pipe,
# 5-7 the pipe's write size) followed by a tar archive:
#   - gnu_*: GNU tar 1.34 (gnu, pax and ustar formats) of a small tree with
#     files, a directory, symlinks, a hardlink, a fifo and long names;
#   - own_*: the same tree through the project's writer
#     (guest::tar::write_archive, compiled here with g++);
#   - the rest: hand-made with python3's tarfile, mostly hostile ones
#     (bad_*: each is refused or must leave outside/ alone).
# Everything is deterministic (fixed mtimes, owners 0), so rerunning gives
# the same files. Needs tar, g++ and python3.
#
#   fuzz/make_guest_tar_corpus.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/fuzz/corpus/guest_tar
work=$(mktemp -d /tmp/guest-tar-corpus.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# seed NAME FLAGS TARFILE: the flags byte, then the archive.
seed() {
  { printf "\\x$(printf %02x "$2")"; cat "$3"; } > "$out/$1"
}

# The tree.
t=$work/tree
mkdir -p "$t/dir/sub" "$t/d$(printf 'e%.0s' {1..60})/$(printf 'p%.0s' {1..80})"
printf 'hello\n' > "$t/file"
printf 'inner\n' > "$t/dir/sub/inner"
head -c 700 /dev/zero | tr '\0' 'x' > "$t/dir/big"
ln "$t/file" "$t/dir/hard"
ln -s file "$t/link"
ln -s ../file "$t/dir/rel"
long=$(printf 'n%.0s' {1..150})
printf 'long\n' > "$t/$long"
mkfifo "$t/fifo"
chmod 0750 "$t/dir"
chmod 4755 "$t/file"
find "$t" -exec touch -h -d @1700000000 {} +

gnu() {  # gnu FORMAT OUT [OPTION...]
  local format=$1 file=$2
  shift 2
  tar -C "$t" -b1 --format="$format" --owner=0 --group=0 --numeric-owner \
    --mtime=@1700000000 --sort=name "$@" -cf "$file" .
}
gnu gnu "$work/gnu.tar"
# Without atime and ctime records, which would change on every run.
gnu pax "$work/pax.tar" --pax-option=delete=atime,delete=ctime

# ustar cannot hold the 150-byte name: leave it out.
gnu ustar "$work/ustar.tar" --exclude="$long"
seed gnu_tree 0 "$work/gnu.tar"
seed gnu_pax_keep_owner_devices $((1 | 4)) "$work/pax.tar"
seed gnu_ustar_pipe_100 $((16 | 2 << 5)) "$work/ustar.tar"

# The project's writer.
cat > "$work/writer.cc" <<'EOF'
#include <sys/stat.h>
#include <cstdio>
#include "guest/tar.h"
int main(int argc, char** argv) {
  struct stat st;
  if (argc != 2 || lstat(argv[1], &st) != 0) return 2;
  vessel::guest::tar::WriteOptions options;
  options.name = "tree";
  auto r = vessel::guest::tar::write_archive(argv[1], st, false, options, 1, 2);
  return r.ok() && r.value() == 0 ? 0 : 1;
}
EOF
g++ -std=c++20 -O1 -I"$root/src" -I"$root" -o "$work/writer" "$work/writer.cc" \
  "$root/guest/tar.cc" "$root/guest/system.cc"
"$work/writer" "$t" > "$work/own.tar"
seed own_tree 0 "$work/own.tar"
seed own_tree_no_overwrite_pipe_1 $((2 | 16)) "$work/own.tar"

# Hand-made and hostile archives.
python3 - "$work" <<'EOF'
import io, sys, tarfile

work = sys.argv[1]

def entry(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644, uid=0, gid=0, dev=(0, 0)):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode, ti.uid, ti.gid = kind, link, mode, uid, gid
    ti.mtime, ti.size = 1700000000, len(data)
    ti.devmajor, ti.devminor = dev
    return ti, data

def write(name, entries, fmt=tarfile.USTAR_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if data else None)
    # The end-of-archive blocks without tarfile's padding to 10 KiB.
    tar = buf.getvalue().rstrip(b"\0")
    tar += b"\0" * (-len(tar) % 512 + 1024)
    with open(f"{work}/{name}.tar", "wb") as f:
        f.write(tar)
    return tar

D = tarfile.DIRTYPE
write("dotdot", [entry("../x", data=b"escape\n")])
write("absolute", [entry("/tmp/vessel-guest-tar-fuzz-abs", data=b"escape\n")])
write("symlink_then_file", [entry("l", tarfile.SYMTYPE, link="../outside"),
                            entry("l/x", data=b"escape\n")])
# out -> ../outside is made by the harness before extracting.
write("premade_symlink", [entry("out/x", data=b"escape\n")])
write("hardlink_outside", [entry("h", tarfile.LNKTYPE, link="../outside/sentinel")])
write("hardlink_through_symlink", [entry("h", tarfile.LNKTYPE, link="out/sentinel")])
write("hardlink_absolute", [entry("h", tarfile.LNKTYPE, link="/etc/passwd")])
# sentinel -> ../outside/sentinel is the harness's: replacing it or linking
# it must leave the real sentinel alone.
write("replace_premade_symlink", [entry("sentinel", data=b"overwritten\n"),
                                  entry("out", D, mode=0o700)])
write("hardlink_premade_symlink", [entry("h", tarfile.LNKTYPE, link="sentinel"),
                                   entry("abs", data=b"replaced\n")])
write("dir_then_file", [entry("d", D, mode=0o755), entry("d/f", data=b"f\n"),
                        entry("d", data=b"not a dir\n")])
write("devices_owner", [entry("null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
                        entry("fifo", tarfile.FIFOTYPE, uid=1234, gid=1234),
                        entry("owned", data=b"x\n", uid=1234, gid=5678, mode=0o4755),
                        entry("nomode", D, mode=0)])
write("pax_long", [entry("p/" + "q" * 200 + "/" + "r" * 150, data=b"pax\n"),
                   entry("s", tarfile.SYMTYPE, link="t" * 300)], tarfile.PAX_FORMAT)
good = write("checksum", [entry("f", data=b"body\n")])
bad = bytearray(good)
bad[0] ^= 1  # the name changes, the checksum does not
open(f"{work}/bad_checksum.tar", "wb").write(bad)
zero = bytearray(good)
zero[148:156] = b"\0" * 8  # no checksum: valid once the harness fixes it
open(f"{work}/zero_checksum.tar", "wb").write(zero)
EOF
seed bad_dotdot 0 "$work/dotdot.tar"
seed bad_absolute 0 "$work/absolute.tar"
seed bad_symlink_then_file 0 "$work/symlink_then_file.tar"
seed bad_premade_symlink 0 "$work/premade_symlink.tar"
seed bad_hardlink_outside 0 "$work/hardlink_outside.tar"
seed bad_hardlink_through_symlink 0 "$work/hardlink_through_symlink.tar"
seed bad_hardlink_absolute 0 "$work/hardlink_absolute.tar"
seed replace_premade_symlink 1 "$work/replace_premade_symlink.tar"
seed hardlink_premade_symlink 0 "$work/hardlink_premade_symlink.tar"
seed dir_then_file 0 "$work/dir_then_file.tar"
seed bad_dir_then_file_no_overwrite 2 "$work/dir_then_file.tar"
seed devices_keep_owner $((1 | 4)) "$work/devices_owner.tar"
seed pax_long_pipe_512 $((16 | 4 << 5)) "$work/pax_long.tar"
seed bad_checksum 0 "$work/bad_checksum.tar"
seed zero_checksum_fixed 8 "$work/zero_checksum.tar"
seed bad_truncated 0 <(head -c 700 "$work/checksum.tar")
ls -l "$out"
