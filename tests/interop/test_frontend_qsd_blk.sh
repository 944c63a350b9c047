#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vio's frontend against a backend we did not write: qemu-storage-daemon
# exports a raw file (two queues) over vhost-user-blk, and vio-bench blk
# writes and reads it back with --verify in every mode, on one and two
# queues; the capacity it reads must be the file's size. A null-co export
# (reads return zeros) must make --verify fail: proof the check can fail.
# Prints PASS/FAIL/SKIP lines; bounded; ends its processes by PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=frontend-qsd-blk
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=frontend_lib.sh
. "$here/frontend_lib.sh"

need qemu-storage-daemon qemu-system-common || exit 0
[ -x "$bench_bin" ] || { echo "FAIL: $VIO_TEST/setup: $bench_bin is not built"; exit 1; }

tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
disk=$tmp/disk.raw
size=$((128 << 20))
truncate -s $size "$disk" || { echo "FAIL: $VIO_TEST/setup: truncate"; exit 1; }

# qsd NAME BLOCKDEV...: starts qemu-storage-daemon exporting node "n0" on $tmp/NAME.sock.
qsd() {
	local name=$1
	shift
	track_file "$tmp/$name.sock"
	start_bg qemu-storage-daemon "$@" \
		--export "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=$tmp/$name.sock,writable=on,num-queues=2" \
		>"$tmp/$name.log" 2>&1
	if ! wait_for_socket "$tmp/$name.sock" 10 "$VIO_LAST_PID"; then
		echo "FAIL: $VIO_TEST/$name/start: qemu-storage-daemon made no socket in 10 s"
		sed 's/^/# qsd: /' "$tmp/$name.log" | tail -n 10
		return 1
	fi
}

if qsd file --blockdev "driver=file,node-name=n0,filename=$disk"; then
	qsd_pid=$VIO_LAST_PID
	sock=$tmp/file.sock
	bench_check write "$sock" --rw write --verify --seconds 2 --bs 64k --iodepth 8
	cap=$(machine_field "$bench_line" capacity)
	if [ "$cap" = "$size" ]; then
		echo "PASS: $VIO_TEST/capacity"
	else
		echo "FAIL: $VIO_TEST/capacity: vio-bench read capacity '$cap', the file has $size bytes"
	fi
	bench_check randwrite "$sock" --rw randwrite --verify --seconds 2
	bench_check randrw-2q "$sock" --rw randrw --verify --queues 2 --seconds 3
	bench_check read "$sock" --rw read --seconds 2 --bs 128k --iodepth 4
	bench_check randread-qd1 "$sock" --rw randread --seconds 1 --iodepth 1
	out=$(with_timeout 30 "$read_frontend_bin" "$sock" 2>&1)
	if [ $? -eq 0 ] && grep -q "capacity: $((size / 512)) sectors" <<<"$out"; then
		echo "PASS: $VIO_TEST/example-read-frontend"
	else
		echo "FAIL: $VIO_TEST/example-read-frontend: examples/read_frontend said:"
		sed 's/^/#   /' <<<"$out" | tail -n 8
	fi
	if pid_alive "$qsd_pid"; then
		echo "PASS: $VIO_TEST/qsd-survived"
	else
		echo "FAIL: $VIO_TEST/qsd-survived: qemu-storage-daemon died"
		sed 's/^/# qsd: /' "$tmp/file.log" | tail -n 10
	fi
	stop_pid "$qsd_pid" 5
fi

if qsd null --blockdev "driver=null-co,node-name=n0,size=$size,read-zeroes=on"; then
	out=$(with_timeout 60 "$bench_bin" blk --socket "$tmp/null.sock" --machine --rw randrw \
		--verify --seconds 1 --size 1M --iodepth 4 2>&1)
	rc=$?
	line=$(grep -E '^iops=' <<<"$out" | tail -n 1)
	verr=$(machine_field "$line" verify_errors)
	if [ $rc -eq 1 ] && [ -n "$verr" ] && [ "$verr" -gt 0 ]; then
		echo "PASS: $VIO_TEST/verify-detects-lost-writes"
	else
		echo "FAIL: $VIO_TEST/verify-detects-lost-writes: a disk that drops writes gave rc=$rc verify_errors='$verr'"
		sed 's/^/#   /' <<<"$out" | tail -n 8
	fi
	stop_pid "$VIO_LAST_PID" 5
fi
