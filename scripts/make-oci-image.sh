#!/usr/bin/env bash
# Packs a root filesystem directory into an OCI image layout with umoci:
#   scripts/make-oci-image.sh ROOTFS OUT_LAYOUT [CMD...]
# One layer, tag "latest", Cmd as given (default: /bin/sh). Written to
# OUT_LAYOUT.tmp and renamed: never half-made. This is how the build makes
# the embedded default image (vessel/busybox:latest) from the busybox rootfs.
set -euo pipefail
rootfs=${1:?usage: make-oci-image.sh ROOTFS OUT_LAYOUT [CMD...]}
out=${2:?usage: make-oci-image.sh ROOTFS OUT_LAYOUT [CMD...]}
shift 2
[ $# -gt 0 ] || set -- /bin/sh
command -v umoci >/dev/null || { echo "make-oci-image.sh: umoci not found (apt-get install umoci)" >&2; exit 1; }
tmp="$out.tmp"
rm -rf "$tmp" "$tmp.bundle"
mkdir -p "$(dirname "$out")"
umoci init --layout "$tmp"
umoci new --image "$tmp:latest"
umoci unpack --image "$tmp:latest" "$tmp.bundle" >/dev/null
cp -a "$rootfs/." "$tmp.bundle/rootfs/"
umoci repack --image "$tmp:latest" "$tmp.bundle"
cfg=(--image "$tmp:latest" --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
for arg in "$@"; do cfg+=(--config.cmd "$arg"); done
umoci config "${cfg[@]}"
umoci gc --layout "$tmp"
rm -rf "$tmp.bundle" "$out"
mv "$tmp" "$out"
