#!/usr/bin/env bash
# Builds the image bench/pull.sh pulls: an OCI layout (tag `latest`) of about
# 200 MB uncompressed in 5 layers, without the internet. Layer 1 is the static
# busybox root (so `run IMAGE true` works) plus ~40 MB of host files; layers
# 2-5 are ~40 MB each of the host's /usr (one source directory per layer).
# Each layer is one umoci unpack / copy / repack round.
#
#   bench/make_layered_image.sh OUT_LAYOUT [--build-dir DIR]
#
# OUT_LAYOUT is reused as is if it already holds the tag `latest`: delete it
# to rebuild (bench/pull.sh keeps it under /var/cache/vessel/bench/).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: make_layered_image.sh OUT_LAYOUT [--build-dir DIR]" >&2; exit 2; }
out=$1; shift
build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    *) echo "make_layered_image.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
busybox=$build/rootfs/busybox
[ -x "$busybox/bin/busybox" ] || { echo "missing $busybox/bin/busybox: build first (scripts/setup.sh)" >&2; exit 1; }
command -v umoci >/dev/null || { echo "umoci not found (apt-get install umoci)" >&2; exit 1; }

if [ -f "$out/index.json" ] && umoci list --layout "$out" 2>/dev/null | grep -qx latest; then
  echo "reusing $out"
  exit 0
fi

chunk_mb=${VESSEL_BENCH_LAYER_MB:-40}
sources=(/usr/lib/x86_64-linux-gnu /usr/share /usr/bin /usr/include /usr/libexec)
work=$(mktemp -d /tmp/vessel-mkimage.XXXXXX)
trap 'rm -rf "$work"' EXIT
tmp_out=$out.tmp.$$
rm -rf "$tmp_out"
mkdir -p "$(dirname "$out")"

umoci init --layout "$tmp_out"
umoci new --image "$tmp_out:latest"
umoci config --image "$tmp_out:latest" --config.cmd /bin/sh \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --os linux --architecture amd64

n=0
for src in "${sources[@]}"; do
  n=$((n + 1))
  [ -d "$src" ] || { echo "missing $src" >&2; exit 1; }
  # Regular files under src in path order, skipping any that would overflow
  # chunk_mb MB.
  find "$src" -xdev -type f -readable -printf '%s\t%p\n' | sort -t$'\t' -k2 |
    awk -F'\t' -v max=$((chunk_mb * 1024 * 1024)) 't + $1 <= max { t += $1; print $2 } END { print t > "/dev/stderr" }' \
    > "$work/list$n" 2> "$work/size$n"
  bundle=$work/bundle
  rm -rf "$bundle"
  umoci unpack --image "$tmp_out:latest" "$bundle" >/dev/null
  if [ $n -eq 1 ]; then cp -a "$busybox/." "$bundle/rootfs/"; fi
  tar -C / -cf - --no-recursion -T "$work/list$n" | tar -C "$bundle/rootfs" -xf -
  umoci repack --image "$tmp_out:latest" "$bundle"
  printf 'layer %d: %s, %s files, %d MB\n' $n "$src" "$(wc -l < "$work/list$n")" \
    $(($(cat "$work/size$n") / 1024 / 1024))
done
rm -rf "$work/bundle"
umoci gc --layout "$tmp_out"
rm -rf "$out"
mv "$tmp_out" "$out"
echo "built $out: $(du -sh "$out" | cut -f1) compressed"
