#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the busybox initramfs the QEMU guest tests boot, into OUTDIR (never
# inside the repo), cached by kernel version + a hash of this script, the
# guest scripts and the binaries copied in. Prints the image's path.
# It must never write outside OUTDIR and never need the network.
#
# Usage: mkinitramfs.sh [-k KVER] OUTDIR
#   KVER defaults to $VIO_KVER, else the newest /boot/vmlinuz-*'s version.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
kver=${VIO_KVER:-}
if [ "${1:-}" = -k ]; then
	kver=$2
	shift 2
fi
[ $# -eq 1 ] || { echo "usage: mkinitramfs.sh [-k KVER] OUTDIR" >&2; exit 2; }
outdir=$1

if [ -z "$kver" ]; then
	k=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)
	[ -n "$k" ] || { echo "mkinitramfs: no /boot/vmlinuz-*" >&2; exit 3; }
	kver=${k#/boot/vmlinuz-}
fi
moddir=/lib/modules/$kver
[ -d "$moddir" ] || { echo "mkinitramfs: no $moddir" >&2; exit 3; }
busybox=$(command -v busybox || echo /bin/busybox)
[ -x "$busybox" ] || { echo "mkinitramfs: busybox-static is not installed" >&2; exit 3; }
# A static busybox is what lets /init run before any library is there.
if ldd "$busybox" >/dev/null 2>&1; then
	echo "mkinitramfs: $busybox is dynamic; install busybox-static" >&2
	exit 3
fi

# Modules each guest test loads, in this order; dependencies are added in
# front of their users from modinfo. crc32c_generic: ext4 and jbd2 ask the
# crypto API for "crc32c" (metadata_csum) and nothing would load it for them.
blk_modules=(virtio_pci virtio_blk crc32c_generic ext4)
net_modules=(virtio_pci virtio_net)

# Optional tools from the host (e2fsprogs, util-linux); the guest falls back
# to busybox's applets when one is missing.
host_tools=(/sbin/mke2fs /sbin/e2fsck /sbin/blkdiscard)

# Cache key: everything that changes the image.
key_input() {
	echo "$kver"
	stat -c '%n %s %Y' "$moddir/modules.dep" "$busybox"
	for t in "${host_tools[@]}"; do
		[ -e "$t" ] && stat -L -c '%n %s %Y' "$t"
	done
	cat "$0" "$here"/guest/*
	gcc --version | head -n 1
}
key=$(key_input | sha256sum | cut -c1-16)
image=$outdir/initramfs-$kver-$key.cpio.gz
if [ -s "$image" ]; then
	echo "$image"
	exit 0
fi

mkdir -p "$outdir"
root=$(mktemp -d "$outdir/build.XXXXXX")
trap 'rm -rf -- "$root" "$image.tmp.$$"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Build dirs of a run killed with SIGKILL: an hour is far past any build.
find "$outdir" -maxdepth 1 -name 'build.*' ! -path "$root" -mmin +60 -exec rm -rf -- {} +

mkdir -p "$root"/{bin,sbin,etc/vio,lib/modules,lib64,proc,sys,dev,tmp,mnt,run,guest}
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# mod_add NAME: appends NAME's dependency closure to mod_order, dependencies first.
declare -A mod_seen=()
mod_order=()
mod_add() {
	local m=${1//-/_} d deps
	[ -z "${mod_seen[$m]:-}" ] || return 0
	mod_seen[$m]=1
	deps=$(modinfo -k "$kver" -F depends "$m") || { echo "mkinitramfs: no module $m" >&2; exit 3; }
	for d in ${deps//,/ }; do
		mod_add "$d"
	done
	mod_order+=("$m")
}

# mod_copy NAME: copies NAME's module uncompressed (busybox insmod cannot
# read .ko.xz / .ko.zst / .ko.gz).
mod_copy() {
	local m=$1 f dst=$root/lib/modules/$1.ko
	f=$(modinfo -k "$kver" -n "$m")
	case "$f" in
	*.ko) cp "$f" "$dst" ;;
	*.ko.xz) xz -dc "$f" >"$dst" ;;
	*.ko.zst) zstd -qdc "$f" >"$dst" ;;
	*.ko.gz) gzip -dc "$f" >"$dst" ;;
	*) echo "mkinitramfs: unknown module file $f" >&2; exit 3 ;;
	esac
}

# mod_list TEST MODULES...: copies MODULES with their dependencies and
# writes the load order the guest test TEST reads, /etc/vio/TEST.modules.
mod_list() {
	local test=$1 m
	shift
	mod_seen=()
	mod_order=()
	for m in "$@"; do
		mod_add "$m"
	done
	for m in "${mod_order[@]}"; do
		[ -e "$root/lib/modules/$m.ko" ] || mod_copy "$m"
	done
	printf '%s\n' "${mod_order[@]}" >"$root/etc/vio/$test.modules"
}

mod_list blk "${blk_modules[@]}"
mod_list net "${net_modules[@]}"

# copy_elf PATH: copies a dynamic binary and the libraries ldd names, each at
# its own path, so the guest's loader finds them as on the host.
copy_elf() {
	local bin=$1 lib
	mkdir -p "$root$(dirname "$bin")"
	cp -L "$bin" "$root$bin"
	for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*'); do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

for t in "${host_tools[@]}"; do
	[ -x "$t" ] && copy_elf "$t"
done
if [ -x "$root/sbin/mke2fs" ]; then
	ln -sf mke2fs "$root/sbin/mkfs.ext4"
	[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$root/etc/"
fi

# The guest's O_DIRECT tool: static, so it needs nothing from the image.
if ! gcc -static -O2 -Wall -Wextra -Werror -o "$root/bin/odirect" "$here/guest/odirect.c"; then
	echo "mkinitramfs: cannot build guest/odirect.c with gcc -static (libc6-dev)" >&2
	exit 3
fi

cp "$here"/guest/*.sh "$root/guest/"
chmod +x "$root"/guest/*.sh

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
# PID 1 of the vio test guest: mounts the pseudo filesystems, runs the test
# named by vio.test= (default blk), and powers off whatever happens.
/bin/busybox --install -s /bin
export PATH=/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tmpfs tmpfs /tmp
# Kernel messages would break VIOTEST lines apart on the shared console;
# the test prints dmesg itself when a check fails.
echo 1 >/proc/sys/kernel/printk
t=blk
for w in $(cat /proc/cmdline); do
	case "$w" in vio.test=*) t=${w#vio.test=} ;; esac
done
if [ -f "/guest/$t-test.sh" ]; then
	sh "/guest/$t-test.sh"
	echo "VIOTEST FAIL init: /guest/$t-test.sh returned $? without powering off"
else
	echo "VIOTEST FAIL init: no guest test '$t'"
fi
echo "VIOTEST DONE"
sync
poweroff -f
EOF
chmod +x "$root/init"

(cd "$root" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --quiet --owner=0:0 | gzip -1) >"$image.tmp.$$"
mv -f "$image.tmp.$$" "$image"
# Keep the cache small: images of other keys are stale once an hour old (a
# younger one may belong to another checkout running right now).
find "$outdir" -maxdepth 1 -name 'initramfs-*.cpio.gz' ! -path "$image" -mmin +60 -delete
echo "$image"
