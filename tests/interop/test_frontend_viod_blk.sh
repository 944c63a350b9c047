#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vio's frontend against viod as separate processes over a real socket:
# verified I/O in every mode on a RAM disk and on a file (io_uring), two
# queues; a frontend killed with requests in flight, then a new one that
# must get full service; a read-only disk that must refuse writes; viod
# still alive at the end and exiting 0 on SIGTERM. Request types and
# misshaped requests are covered in-process by tests/unit/test_vhu_blk.c.
# Prints PASS/FAIL/SKIP lines; bounded; ends its processes by PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=frontend-viod-blk
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=frontend_lib.sh
. "$here/frontend_lib.sh"

viod=$root/${VIO_BUILD:-build}/src/daemon/viod
for b in "$viod" "$bench_bin" "$read_frontend_bin"; do
	[ -x "$b" ] || { echo "FAIL: $VIO_TEST/setup: $b is not built"; exit 1; }
done
tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
truncate -s 128M "$tmp/disk.raw" || { echo "FAIL: $VIO_TEST/setup: truncate"; exit 1; }

sock=$tmp/viod.sock file_sock=$tmp/file.sock ro_sock=$tmp/ro.sock
track_file "$sock"; track_file "$file_sock"; track_file "$ro_sock"
start_bg "$viod" --blk "sock=$sock,ram=256M,queues=2" --blk "sock=$file_sock,file=$tmp/disk.raw,queues=2" \
	--blk "sock=$ro_sock,ram=16M,readonly" >"$tmp/viod.log" 2>&1
v=$VIO_LAST_PID
for s in "$sock" "$file_sock" "$ro_sock"; do
	if ! wait_for_socket "$s" 10 "$v"; then
		echo "FAIL: $VIO_TEST/start: viod made no socket $s in 10 s"
		sed 's/^/# viod: /' "$tmp/viod.log" | tail -n 10
		exit 1
	fi
done

bench_check ram/write "$sock" --rw write --verify --seconds 1 --bs 128k --iodepth 8
bench_check ram/randrw-2q "$sock" --rw randrw --verify --queues 2 --seconds 2
bench_check ram/randread-qd1 "$sock" --rw randread --iodepth 1 --seconds 1
bench_check file/randwrite "$file_sock" --rw randwrite --verify --seconds 2
bench_check file/randrw-2q "$file_sock" --rw randrw --verify --queues 2 --seconds 2 --bs 16k
# Behind an IOMMU: every ring and buffer address through viod's IOTLB (docs/viommu.md).
bench_check ram/iommu-randrw-2q "$sock" --rw randrw --verify --queues 2 --seconds 2 --iommu
bench_check ram/iommu-packed-128k "$sock" --rw randrw --verify --seconds 1 --bs 128k --packed --iommu

# Abrupt disconnects: kill frontends with requests in flight, several times.
for i in 1 2 3; do
	start_bg "$bench_bin" blk --socket "$sock" --rw randrw --queues 2 --seconds 30 >/dev/null 2>&1
	sleep 0.$((3 * i))
	kill -KILL "$VIO_LAST_PID" 2>/dev/null
	wait "$VIO_LAST_PID" 2>/dev/null
done
sleep 0.2
if pid_alive "$v"; then
	echo "PASS: $VIO_TEST/survives-killed-frontends"
else
	echo "FAIL: $VIO_TEST/survives-killed-frontends: viod died"
	sed 's/^/# viod: /' "$tmp/viod.log" | tail -n 20
	exit 1
fi
bench_check reconnect-after-kill "$sock" --rw randrw --verify --queues 2 --seconds 2
out=$(with_timeout 30 "$read_frontend_bin" "$sock" 2>&1)
if [ $? -eq 0 ] && grep -q "capacity: 524288 sectors" <<<"$out" && grep -q "serial: vio" <<<"$out"; then
	echo "PASS: $VIO_TEST/example-read-frontend"
else
	echo "FAIL: $VIO_TEST/example-read-frontend: examples/read_frontend said:"
	sed 's/^/#   /' <<<"$out" | tail -n 8
fi

out=$(with_timeout 30 "$bench_bin" blk --socket "$ro_sock" --rw randwrite --seconds 1 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q "read-only" <<<"$out"; then
	echo "PASS: $VIO_TEST/readonly-refuses-writes"
else
	echo "FAIL: $VIO_TEST/readonly-refuses-writes: randwrite on a read-only disk gave rc=$rc:"
	sed 's/^/#   /' <<<"$out" | tail -n 5
fi
bench_check readonly-reads "$ro_sock" --rw randread --seconds 1

expect_clean_exit "$VIO_TEST" "$v" viod "$tmp/viod.log"
if grep -qiE 'sanitizer|runtime error' "$tmp/viod.log"; then
	echo "FAIL: $VIO_TEST/no-sanitizer-reports: viod's log has sanitizer reports"
	grep -iE -A5 'sanitizer|runtime error' "$tmp/viod.log" | head -n 20 | sed 's/^/# /'
fi
