#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Linux-guest harness over vhost-user-blk with qemu-storage-daemon as the
# backend: the exact QEMU command line viod's guest test will use (shared
# memfd memory, -chardev socket + vhost-user-blk-pci, two queues), proven
# with a reference backend. Prints PASS/FAIL/SKIP lines. Bounded; ends every
# process it started by PID and removes its socket and temp dir.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
VIO_TEST=guest-qsd-blk
# shellcheck source=lib.sh
. "$here/lib.sh"

need qemu-system-x86_64 qemu-system-x86 || exit 0
need qemu-storage-daemon qemu-system-common || exit 0
need /bin/busybox busybox-static || exit 0
need cpio cpio || exit 0
need gcc gcc || exit 0
if [ ! -f "$(gcc -print-file-name=libc.a)" ]; then
	echo "SKIP: $VIO_TEST: no static libc for the guest's odirect tool (Debian package libc6-dev)"
	exit 0
fi
kernel=${VIO_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}
if [ -z "$kernel" ] || [ ! -r "$kernel" ]; then
	echo "SKIP: $VIO_TEST: no readable /boot/vmlinuz-* (linux-image-amd64, run as root)"
	exit 0
fi

tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
disk=$tmp/disk.raw
sock=$tmp/blk.sock
track_file "$sock"
truncate -s 64M "$disk" || { echo "FAIL: $VIO_TEST/setup: truncate"; exit 1; }
sectors=$((64 * 2048))

qsd_export="type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=$sock"
qsd_export+=",writable=on,num-queues=2"
start_bg qemu-storage-daemon \
	--blockdev "driver=file,node-name=file0,filename=$disk,discard=unmap" \
	--blockdev "driver=raw,node-name=disk0,file=file0,discard=unmap" \
	--export "$qsd_export" \
	>"$tmp/qsd.log" 2>&1
qsd=$VIO_LAST_PID
if ! wait_for_socket "$sock" 10 "$qsd"; then
	echo "FAIL: $VIO_TEST/backend: qemu-storage-daemon made no socket in 10 s"
	sed 's/^/# /' "$tmp/qsd.log" | tail -n 20
	exit 1
fi

t0=$SECONDS
start_bg "$here/boot_guest.sh" --append "vio.size=$sectors vio.queues=2" -- \
	-chardev "socket,id=c0,path=$sock" -device vhost-user-blk-pci,chardev=c0,num-queues=2 \
	>"$tmp/out" 2>"$tmp/err"
bg=$VIO_LAST_PID
wait_pid_timeout "$bg" 300
rc=$?
[ $rc -ne 124 ] || stop_pid "$bg" 5
report_viotest "$VIO_TEST" <"$tmp/out"
if [ $rc -ne 0 ]; then
	echo "FAIL: $VIO_TEST/boot: boot_guest.sh exited $rc"
	sed 's/^/# /' "$tmp/err" | tail -n 80
	sed 's/^/# qsd: /' "$tmp/qsd.log" | tail -n 20
fi
echo "# $VIO_TEST: one guest run took $((SECONDS - t0)) s"
if pid_alive "$qsd"; then
	echo "PASS: $VIO_TEST/backend-survived"
else
	echo "FAIL: $VIO_TEST/backend-survived: qemu-storage-daemon died during the run"
	sed 's/^/# qsd: /' "$tmp/qsd.log" | tail -n 20
fi
