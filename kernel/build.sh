#!/usr/bin/env bash
# Build the Vessel guest kernel from Debian's linux-source-6.12 package.
#
#   kernel/build.sh [--arch x86_64|arm64] [--flavor container|machine]
#                   [--print-path] [--config-only]
#
# Two flavors: the container kernel (config-$arch, the default) and the
# machine kernel, for VMs whose PID 1 is the image's systemd: config-$arch
# with config-machine-$arch merged on top (ACPI power-off and power button,
# systemd's kernel requirements).
# Both flavors are built from the source with kernel/patches/*.patch applied
# (in name order; each says why it exists).
# The kernel is cached outside the source tree, keyed by the source package
# version, the flavor and the hash of its config fragments and patches, so a
# second build is instant. Cache root: $VESSEL_KERNEL_CACHE, default /var/cache/vessel/kernel.
# On success the last line of stdout is the path of the kernel image.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
arch=$(uname -m)
flavor=container
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=$2; shift 2 ;;
    --flavor) flavor=$2; shift 2 ;;
    --print-path) print_only=1; shift ;;
    --config-only) config_only=1; shift ;;  # resolve and check the config, print it
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

case "$arch" in
  x86_64) karch=x86; image=vmlinux ;;            # booted through PVH, uncompressed
  aarch64|arm64) arch=arm64; karch=arm64; image=arch/arm64/boot/Image ;;
  *) echo "build.sh: unsupported arch '$arch'" >&2; exit 2 ;;
esac

# The fragments in the order they are merged: a later one overrides an
# earlier one's setting of the same option.
case "$flavor" in
  container) fragments=("$here/config-$arch") ;;
  machine) fragments=("$here/config-$arch" "$here/config-machine-$arch") ;;
  *) echo "build.sh: unknown flavor '$flavor' (container or machine)" >&2; exit 2 ;;
esac
for f in "${fragments[@]}"; do
  [ -f "$f" ] || { echo "build.sh: missing config '$f'" >&2; exit 1; }
done

pkg=linux-source-6.12
tarball=/usr/src/$pkg.tar.xz
version=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
[ -n "$version" ] && [ -f "$tarball" ] || {
  echo "build.sh: '$pkg' is not installed (run scripts/setup.sh)" >&2; exit 1; }

patches=("$here"/patches/*.patch)
[ -e "${patches[0]}" ] || patches=()
patch_hash=$(cat "${patches[@]}" /dev/null | sha256sum | cut -c1-16)

cache=${VESSEL_KERNEL_CACHE:-/var/cache/vessel/kernel}
# Bump when a change to this script changes the kernel it produces (not for
# changes to messages or options): it is part of the cache key.
recipe=1
if [ "$flavor" = container ]; then
  # Unchanged from before flavors existed, so that cached kernels stay valid.
  hash=$( (cat "${fragments[0]}"; echo "recipe=$recipe"
           [ "${#patches[@]}" = 0 ] || echo "patches=$patch_hash") | sha256sum | cut -c1-16)
  key="$arch-${version//[^A-Za-z0-9.+-]/_}-$hash"
else
  # Each fragment hashed on its own: moving a line from one to the other
  # changes the key.
  hash=$( (for f in "${fragments[@]}"; do sha256sum < "$f"; done
           echo "recipe=$recipe"; echo "flavor=$flavor"
           [ "${#patches[@]}" = 0 ] || echo "patches=$patch_hash") | sha256sum | cut -c1-16)
  key="$arch-$flavor-${version//[^A-Za-z0-9.+-]/_}-$hash"
fi
out="$cache/$key"

if [ -f "$out/kernel" ] && [ -z "${config_only:-}" ]; then echo "$out/kernel"; exit 0; fi
[ -z "${print_only:-}" ] || { echo "$out/kernel"; exit 1; }

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -f "$out/kernel" ] && [ -z "${config_only:-}" ]; then echo "$out/kernel"; exit 0; fi

# Unpack and patch the source once per package version and patch set
# (atomically: a crash leaves only a temporary directory that the next run
# removes). A patch that does not apply is an error, not a kernel without it.
src="$cache/src-${version//[^A-Za-z0-9.+-]/_}"
[ "${#patches[@]}" = 0 ] || src="$src-p$patch_hash"
if [ ! -d "$src" ]; then
  rm -rf "$src.tmp"; mkdir -p "$src.tmp"
  echo "build.sh: unpacking $tarball" >&2
  tar -C "$src.tmp" -xf "$tarball" --strip-components=1
  for p in "${patches[@]}"; do
    patch -d "$src.tmp" -p1 --forward --quiet < "$p" || {
      echo "build.sh: patch does not apply: $p" >&2; rm -rf "$src.tmp"; exit 1; }
  done
  mv "$src.tmp" "$src"
fi

build="$cache/build-$key"
rm -rf "$build"; mkdir -p "$build"
cross=()
if [ "$arch" = arm64 ] && [ "$(uname -m)" != aarch64 ]; then
  cross=(CROSS_COMPILE=aarch64-linux-gnu-)
fi
mk() { make -s -C "$src" O="$build" ARCH="$karch" "${cross[@]}" "$@"; }

echo "build.sh: configuring $key" >&2
mk tinyconfig >/dev/null
KCONFIG_CONFIG="$build/.config" "$src/scripts/kconfig/merge_config.sh" -m -O "$build" \
  "$build/.config" "${fragments[@]}" >/dev/null
mk olddefconfig >/dev/null

# Every option the fragments ask for must have survived Kconfig's dependency
# resolution; a silently dropped option is a kernel that lacks a driver. An
# option set in several fragments is checked against its last setting, the
# one merge_config.sh applies.
effective() {
  awk '/^CONFIG_[A-Za-z0-9_]+=/ { o = $0; sub(/=.*/, "", o) }
       /^# CONFIG_[A-Za-z0-9_]+ is not set$/ { o = $2 }
       o != "" { if (!(o in last)) order[n++] = o; last[o] = $0; o = "" }
       END { for (i = 0; i < n; i++) print last[order[i]] }' "$@"
}
missing=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*) grep -qxF "$line" "$build/.config" || { echo "build.sh: not applied: $line" >&2; missing=1; } ;;
    "# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}
      ! grep -q "^$opt=" "$build/.config" || { echo "build.sh: not disabled: $opt" >&2; missing=1; } ;;
  esac
done < <(effective "${fragments[@]}")
[ "$missing" = 0 ] || {
  echo "build.sh: config fragments not fully applied" >&2; rm -rf "$build"; exit 1; }
if [ -n "${config_only:-}" ]; then
  cat "$build/.config"; rm -rf "$build"; exit 0
fi

echo "build.sh: building ($(nproc) jobs), a few minutes" >&2
start=$(date +%s)
mk -j"$(nproc)" "$(basename "$image")" >/dev/null
echo "build.sh: built in $(( $(date +%s) - start )) s" >&2

mkdir -p "$out.tmp"
cp "$build/$image" "$out.tmp/kernel"
cp "$build/.config" "$out.tmp/config"
echo "$version" > "$out.tmp/source-version"
rm -rf "$out"; mv "$out.tmp" "$out"
rm -rf "$build"
echo "$out/kernel"
