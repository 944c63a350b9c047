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

need_guest_tools || exit 0
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
	local name=$1 spec=$2 sock=$tmp/$1.sock log=$tmp/$1.viod.log v
	track_file "$sock"
	start_bg "$viod" --blk "sock=$sock,$spec,queues=2" >"$log" 2>&1
	v=$VIO_LAST_PID
	if ! wait_for_socket "$sock" 10 "$v"; then
		echo "FAIL: $VIO_TEST/$name/backend: viod made no socket in 10 s"
		show_log viod "$log"
		stop_pid "$v" 5
		return
	fi
	guest_on_vhost_user "$VIO_TEST/$name" "$sock" "$sectors" viod "$log"
	expect_alive "$VIO_TEST/$name" "$v" viod "$log" || return
	expect_clean_exit "$VIO_TEST/$name" "$v" viod "$log"
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
