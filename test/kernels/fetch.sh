#!/bin/sh
# Fetch Debian's 6.1 cloud kernel image (the kernel of Debian 12) into
# .cache/kernels, for `make test-kernels`: the steering programs are loaded
# and exercised on it under qemu. Needs apt sources for bookworm.
set -eu
dest="${1:-.cache/kernels}"
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
# linux-image-cloud-amd64 is a metapackage; download what it points at.
resolve() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}'; }
pkg=$(resolve)
if [ -z "$pkg" ]; then
	apt-get update -qq
	pkg=$(resolve)
fi
[ -n "$pkg" ] || { echo "fetch.sh: cannot resolve linux-image-cloud-amd64 (apt-get update?)" >&2; exit 1; }
apt-get download "$pkg" >/dev/null 2>&1 || apt-get download "$pkg"
dpkg -x ./*.deb x
cd - >/dev/null
for k in "$tmp"/x/boot/vmlinuz-*; do
	cp "$k" "$dest/"
	echo "kernel: $dest/$(basename "$k")"
done
