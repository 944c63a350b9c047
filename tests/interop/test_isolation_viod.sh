#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Isolation inside one viod (issue 12): front-end A misbehaves on its device
# in each way the issue names (SIGBUS memory, blocking kick/call/err fds, a
# dripped message, a full listener backlog in client mode, 4 TiB regions, a
# 16M-entry indirect table, more requests than the device's slots,
# synchronous write-zeroes, a scribbled ring) while front-end B keeps
# verified I/O and GET_STATUS round trips going on another device and a
# fresh front-end connects to a third. One data-plane thread serves them
# all. Bounds: B's slowest request and round trip BOUND_MS (100 ms: a
# request takes well under 1 ms here and every failure above takes seconds
# or forever), the fresh connection 1000 ms. Then no fd or mapping growth
# once A has left, and SIGTERM with A attacking again stops viod in 5 s.
# A fresh viod per mode; prints PASS/FAIL/SKIP lines; bounded; ends its PIDs.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=isolation
# shellcheck source=lib.sh
. "$here/lib.sh"

BOUND_MS=${BOUND_MS:-500}
viod=${VIOD:-$root/${VIO_BUILD:-build}/src/daemon/viod} # VIOD: test another viod
hostile=$root/${VIO_BUILD:-build}/tests/hostile/vio-hostile
for b in "$viod" "$hostile"; do
	[ -x "$b" ] || { echo "FAIL: $VIO_TEST/setup: $b is not built"; exit 1; }
done
tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
# Real data, read with O_DIRECT: requests that stay in flight a while.
if ! dd if=/dev/urandom of="$tmp/disk.raw" bs=1M count=64 status=none conv=fsync; then
	echo "FAIL: $VIO_TEST/setup: cannot write $tmp/disk.raw"
	exit 1
fi

# run_mode MODE: a fresh viod, the isolation program, then viod's exit status.
run_mode() {
	local mode=$1 log=$tmp/viod-$1.log v rc out s
	rm -f -- "$tmp"/*.sock
	start_bg "$viod" --threads 1 --blk "sock=$tmp/a.sock,ram=256M" \
		--blk "sock=$tmp/f.sock,file=$tmp/disk.raw,direct" --blk "sock=$tmp/b.sock,ram=64M" \
		--blk "sock=$tmp/c.sock,ram=16M" --blk "sock=$tmp/d.sock,ram=16M,client" >"$log" 2>&1
	v=$VIO_LAST_PID
	for s in a f b c; do
		if ! wait_for_socket "$tmp/$s.sock" 10 "$v"; then
			echo "FAIL: $VIO_TEST/$mode/start: viod made no socket $s.sock in 10 s"
			show_log viod "$log"
			stop_pid "$v" 3
			return
		fi
	done
	out=$(with_timeout 60 "$hostile" isolate --pid "$v" --dir "$tmp" --log "$log" \
		--mode "$mode" --bound-ms "$BOUND_MS" 2>&1)
	rc=$?
	echo "$out"
	[ $rc -ne 124 ] || echo "FAIL: $VIO_TEST/$mode/finished: vio-hostile isolate did not finish in 60 s"
	# vio-hostile sent SIGTERM; a viod still here after that has failed "sigterm" already.
	wait_pid_timeout "$v" 1
	rc=$?
	if [ $rc -eq 124 ]; then
		stop_pid "$v" 2
		echo "# $VIO_TEST/$mode: viod had to be killed"
	elif [ $rc -ne 0 ]; then
		[ $rc -gt 128 ] && rc="$rc (signal $(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128))))"
		echo "FAIL: $VIO_TEST/$mode/exit-status: viod exited with status $rc"
		show_log viod "$log"
	fi
	if grep -qiE 'sanitizer|runtime error' "$log"; then
		echo "FAIL: $VIO_TEST/$mode/no-sanitizer-reports: viod's log has sanitizer reports"
		grep -iE -A5 'sanitizer|runtime error' "$log" | head -n 20 | sed 's/^/# /'
	fi
}

modes=$("$hostile" isolate --list) || { echo "FAIL: $VIO_TEST/setup: vio-hostile isolate --list"; exit 1; }
t0=$SECONDS
for m in ${ISOLATION_MODES:-$modes}; do
	run_mode "$m"
done
echo "# $VIO_TEST: $(wc -w <<<"${ISOLATION_MODES:-$modes}") modes in $((SECONDS - t0)) s"
