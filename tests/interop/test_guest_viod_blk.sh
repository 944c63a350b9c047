#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A real Linux guest on a disk served by viod: QEMU TCG with Debian's kernel
# and the busybox initramfs, -device vhost-user-blk-pci on viod's socket with
# two queues. Runs the guest test (guest/blk-test.sh: size and queue count,
# O_DIRECT pattern, mkfs, files across a remount, discard, flush) once on a
# RAM disk and once on a raw file through io_uring with O_DIRECT, then checks
# viod survived and exits 0 on SIGTERM. Prints PASS/FAIL/SKIP lines. Bounded;
# ends every process it started by PID and removes its files.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=guest-viod-blk
# shellcheck source=lib.sh
. "$here/lib.sh"

need qemu-system-x86_64 qemu-system-x86 || exit 0
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
viod=$root/${VIO_BUILD:-build}/src/daemon/viod
if [ ! -x "$viod" ]; then
	echo "FAIL: $VIO_TEST/setup: $viod is not built"
	exit 1
fi

tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
size_mib=64
sectors=$((size_mib * 2048))

# run_guest NAME BLK-SPEC-TAIL: viod serves the disk, the guest tests it.
run_guest() {
	local name=$1 spec=$2 sock=$tmp/$1.sock v bg rc t0=$SECONDS
	track_file "$sock"
	start_bg "$viod" --blk "sock=$sock,$spec,queues=2" >"$tmp/$name.viod.log" 2>&1
	v=$VIO_LAST_PID
	if ! wait_for_socket "$sock" 10 "$v"; then
		echo "FAIL: $VIO_TEST/$name/backend: viod made no socket in 10 s"
		sed 's/^/# viod: /' "$tmp/$name.viod.log" | tail -n 20
		stop_pid "$v" 5
		return
	fi
	start_bg "$here/boot_guest.sh" --append "vio.size=$sectors vio.queues=2" -- \
		-chardev "socket,id=c0,path=$sock" -device vhost-user-blk-pci,chardev=c0,num-queues=2 \
		>"$tmp/$name.out" 2>"$tmp/$name.err"
	bg=$VIO_LAST_PID
	wait_pid_timeout "$bg" 300
	rc=$?
	[ $rc -ne 124 ] || stop_pid "$bg" 5
	report_viotest "$VIO_TEST/$name" <"$tmp/$name.out"
	if [ $rc -ne 0 ]; then
		echo "FAIL: $VIO_TEST/$name/boot: boot_guest.sh exited $rc"
		sed 's/^/# /' "$tmp/$name.err" | tail -n 80
		sed 's/^/# viod: /' "$tmp/$name.viod.log" | tail -n 20
	fi
	echo "# $VIO_TEST/$name: one guest run took $((SECONDS - t0)) s"
	if ! pid_alive "$v"; then
		echo "FAIL: $VIO_TEST/$name/backend-survived: viod died during the run"
		sed 's/^/# viod: /' "$tmp/$name.viod.log" | tail -n 20
		return
	fi
	echo "PASS: $VIO_TEST/$name/backend-survived"
	kill -TERM "$v"
	wait_pid_timeout "$v" 10
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "PASS: $VIO_TEST/$name/clean-exit"
	else
		[ $rc -ne 124 ] || stop_pid "$v" 5
		echo "FAIL: $VIO_TEST/$name/clean-exit: viod exited $rc on SIGTERM"
		sed 's/^/# viod: /' "$tmp/$name.viod.log" | tail -n 20
	fi
	[ ! -e "$sock" ] || echo "FAIL: $VIO_TEST/$name/socket-removed: $sock is still there"
}

run_guest ram "ram=${size_mib}M"
disk=$tmp/disk.raw
truncate -s ${size_mib}M "$disk" || { echo "FAIL: $VIO_TEST/setup: truncate"; exit 1; }
# O_DIRECT needs a filesystem that supports it: tmpfs does not.
if dd if=/dev/zero of="$disk" bs=4096 count=1 oflag=direct conv=notrunc status=none 2>/dev/null; then
	run_guest file-direct "file=$disk,direct"
else
	run_guest file "file=$disk"
fi
