#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Restart without losing a write, vio's own frontend in place of a guest:
# vio-bench blk --verify --reconnect (two queues, 32 requests in flight
# each) on viod serving a file, viod SIGKILLed twice mid-run and restarted
# on the same socket and image, then stopped once with SIGTERM (it must
# finish and answer what it had taken before it exits) and restarted.
# Passes only if vio-bench reconnected every time, no request failed, and every block written (checked on every read
# during the run and read back after it) holds what was last written to
# it. Once with split rings, once with packed ones. Bounded; ends every
# process it started by PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=frontend-restart-blk
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=frontend_lib.sh
. "$here/frontend_lib.sh"

viod=$root/${VIO_BUILD:-build}/src/daemon/viod
for b in "$viod" "$bench_bin"; do
	if [ ! -x "$b" ]; then
		echo "FAIL: $VIO_TEST/setup: $b is not built"
		exit 1
	fi
done
tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }

# run NAME BENCH-ARGS...: the bench on a fresh image; viod killed at 1.5 s
# and 3 s, terminated at 4.5 s, each time restarted.
run() {
	local name=$1 pfx=$VIO_TEST/$1 sock=$tmp/$1.sock disk=$tmp/$1.raw log=$tmp/$1.log
	local out=$tmp/$1.out v bench rc line k
	shift
	truncate -s 64M "$disk"
	track_file "$sock"
	start_bg "$viod" --blk "sock=$sock,file=$disk,queues=2" >"$log" 2>&1
	v=$VIO_LAST_PID
	if ! wait_for_socket "$sock" 10 "$v"; then
		echo "FAIL: $pfx/backend: viod made no socket in 10 s"
		show_log viod "$log"
		return
	fi
	start_bg "$bench_bin" blk --socket "$sock" --machine --verify --reconnect --queues 2 \
		--seconds 6 "$@" >"$out" 2>&1
	bench=$VIO_LAST_PID
	for sig in KILL KILL TERM; do
		sleep 1.5
		kill -"$sig" "$v"
		{ wait_pid_timeout "$v" 10; } 2>/dev/null # no "Killed" notice
		rm -f "$sock"
		start_bg "$viod" --blk "sock=$sock,file=$disk,queues=2" >>"$log" 2>&1
		v=$VIO_LAST_PID
		wait_for_socket "$sock" 10 "$v" || break
	done
	wait_pid_timeout "$bench" 90
	rc=$?
	[ $rc -ne 124 ] || stop_pid "$bench" 5
	line=$(grep -E '^iops=' "$out" | tail -n 1)
	k=$(grep -c 'reconnected$' "$out")
	if [ $rc -eq 0 ] && [ "$k" -eq 3 ] && [ "$(machine_field "$line" errors)" = 0 ] &&
		[ "$(machine_field "$line" verify_errors)" = 0 ] &&
		[ "$(machine_field "$line" verified)" -gt 0 ]; then
		echo "PASS: $pfx/no-loss"
		echo "# $pfx: $line"
	else
		echo "FAIL: $pfx/no-loss: vio-bench exited $rc after $k reconnects ($line)"
		sed 's/^/#   /' "$out" | tail -n 15
		show_log viod "$log"
	fi
	grep -a "resubmitting" "$log" | sed "s|^|# $name: |"
	expect_alive "$pfx" "$v" viod "$log" && expect_clean_exit "$pfx" "$v" viod "$log"
}

run split --rw randwrite --bs 4k
run packed --rw randrw --bs 16k --packed
