#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vio's frontend against a backend we did not write: qemu-storage-daemon
# exports a raw file (two queues) over vhost-user-blk, and vio-bench blk
# writes and reads it with --verify in every mode on two queues; the
# capacity and queue count it reads must be the export's. Null-co exports
# (reads return zeroes, or transfer nothing) must make --verify fail: proof
# the check can fail. Prints PASS/FAIL/SKIP lines; bounded; ends its
# processes by PID and removes its temp dir.
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

# export NODE NAME: a qsd --export of node NODE on $tmp/NAME.sock, two queues.
export_arg() {
	echo "type=vhost-user-blk,id=e-$2,node-name=$1,addr.type=unix,addr.path=$tmp/$2.sock,writable=on,num-queues=2"
}

# qsd NAME SOCKNAMES ARGS...: starts qemu-storage-daemon with ARGS, logging
# to $tmp/NAME.log, and waits for each socket in SOCKNAMES (space-separated).
qsd() {
	local name=$1 socks=$2 s
	shift 2
	for s in $socks; do track_file "$tmp/$s.sock"; done
	start_bg qemu-storage-daemon "$@" >"$tmp/$name.log" 2>&1
	for s in $socks; do
		if ! wait_for_socket "$tmp/$s.sock" 10 "$VIO_LAST_PID"; then
			echo "FAIL: $VIO_TEST/$name/start: qemu-storage-daemon made no socket $s.sock in 10 s"
			sed 's/^/# qsd: /' "$tmp/$name.log" | tail -n 10
			return 1
		fi
	done
}

# verify_fails NAME SOCKET WHAT: --verify against a disk that loses writes
# must exit 1 with verify_errors > 0 and name the first bad sector.
verify_fails() {
	local name=$1 sock=$2 what=$3 out rc line verr
	out=$(with_timeout 60 "$bench_bin" blk --socket "$sock" --machine --rw randrw --verify \
		--queues 2 --seconds 1 --size 1M --iodepth 4 2>&1)
	rc=$?
	line=$(grep -E '^iops=' <<<"$out" | tail -n 1)
	verr=$(machine_field "$line" verify_errors)
	if [ $rc -eq 1 ] && [ -n "$verr" ] && [ "$verr" -gt 0 ] &&
		grep -q "first: sector [0-9]* .*held $what" <<<"$out"; then
		echo "PASS: $VIO_TEST/$name"
	else
		echo "FAIL: $VIO_TEST/$name: a disk that drops writes gave rc=$rc verify_errors='$verr'"
		sed 's/^/#   /' <<<"$out" | tail -n 8
	fi
}

out=$(with_timeout 30 "$bench_bin" blk --socket "$tmp/nobody.sock" --seconds 1 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q "$tmp/nobody.sock: .*No such file or directory" <<<"$out"; then
	echo "PASS: $VIO_TEST/no-backend-is-an-error"
else
	echo "FAIL: $VIO_TEST/no-backend-is-an-error: a missing socket gave rc=$rc:"
	sed 's/^/#   /' <<<"$out" | tail -n 4
fi

if qsd file file --blockdev "driver=file,node-name=n0,filename=$disk" \
	--export "$(export_arg n0 file)"; then
	qsd_pid=$VIO_LAST_PID
	sock=$tmp/file.sock
	out=$(with_timeout 30 "$bench_bin" blk --socket "$sock" --info 2>&1)
	if grep -q "^capacity $size bytes" <<<"$out" && grep -q "^num_queues 2$" <<<"$out"; then
		echo "PASS: $VIO_TEST/info"
	else
		echo "FAIL: $VIO_TEST/info: expected capacity $size bytes and num_queues 2, got:"
		sed 's/^/#   /' <<<"$out" | tail -n 10
	fi
	bench_check write-2q "$sock" --rw write --verify --queues 2 --seconds 2 --bs 64k --iodepth 8
	cap=$(machine_field "$bench_line" capacity)
	if [ "$cap" = "$size" ]; then
		echo "PASS: $VIO_TEST/capacity"
	else
		echo "FAIL: $VIO_TEST/capacity: vio-bench read capacity '$cap', the file has $size bytes"
	fi
	bench_check randwrite-2q "$sock" --rw randwrite --verify --queues 2 --seconds 2
	bench_check randrw-2q "$sock" --rw randrw --verify --queues 2 --seconds 3 --rwmixread 70
	bench_check read-2q "$sock" --rw read --verify --queues 2 --seconds 2 --bs 128k --iodepth 4
	bench_check randread-qd1 "$sock" --rw randread --seconds 1 --iodepth 1
	if [ -x "$read_frontend_bin" ]; then
		out=$(with_timeout 30 "$read_frontend_bin" "$sock" 2>&1)
		if [ $? -eq 0 ] && grep -q "capacity: $((size / 512)) sectors" <<<"$out"; then
			echo "PASS: $VIO_TEST/example-read-frontend"
		else
			echo "FAIL: $VIO_TEST/example-read-frontend: examples/read_frontend said:"
			sed 's/^/#   /' <<<"$out" | tail -n 8
		fi
	fi
	if pid_alive "$qsd_pid"; then
		echo "PASS: $VIO_TEST/qsd-survived"
	else
		echo "FAIL: $VIO_TEST/qsd-survived: qemu-storage-daemon died"
		sed 's/^/# qsd: /' "$tmp/file.log" | tail -n 10
	fi
	stop_pid "$qsd_pid" 5
fi

# Two ways to lose writes: reads that return zeroes, reads that transfer nothing.
if qsd null "zero none" \
	--blockdev "driver=null-co,node-name=z0,size=$size,read-zeroes=on" \
	--blockdev "driver=null-co,node-name=x0,size=$size,read-zeroes=off" \
	--export "$(export_arg z0 zero)" --export "$(export_arg x0 none)"; then
	verify_fails verify-detects-zeroes "$tmp/zero.sock" zeroes
	verify_fails verify-detects-no-transfer "$tmp/none.sock" nothing
	stop_pid "$VIO_LAST_PID" 5
fi
