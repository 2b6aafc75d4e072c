#!/bin/sh
# Builds (once) the "fresh host" the install tests use: a minimal Debian bookworm root
# filesystem with curl and CA certificates, like a bare cloud image. libbpf1/libelf1 are only
# *downloaded* into apt's cache (not installed), so the installer still has to install them but
# does not wait on the network for it. Usage: make-rootfs.sh <cache-dir>; prints the rootfs path.
set -eu
cache=${1:-/var/cache/hdrcap-test}
rootfs="$cache/bookworm-rootfs"
if [ -f "$rootfs/.hdrcap-ready" ]; then echo "$rootfs"; exit 0; fi
mkdir -p "$cache"
tmp="$cache/bookworm-rootfs.tmp.$$"
trap 'for m in proc sys dev; do umount "$tmp/$m" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
mirror=${HDRCAP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
debootstrap --variant=minbase bookworm "$tmp" "$mirror" >&2
cp /etc/resolv.conf "$tmp/etc/resolv.conf"
mount -t proc proc "$tmp/proc"
chroot "$tmp" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c '
  apt-get update -q >/dev/null &&
  apt-get install -y -q --no-install-recommends curl ca-certificates >/dev/null &&
  apt-get install -y -q --download-only --no-install-recommends libbpf1 libelf1 >/dev/null' >&2
umount "$tmp/proc"
touch "$tmp/.hdrcap-ready"
rm -rf "$rootfs"
mv "$tmp" "$rootfs"
trap - EXIT
echo "$rootfs"
