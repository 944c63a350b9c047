#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Live migration with vio's own frontend playing both VMMs: viod serves one
# image on two sockets (two devices, ',shared'); vio-bench blk --verify runs
# a load on the first and, half way, migrates to the second
# (--migrate-to): dirty logging on, guest memory copied while the load runs
# (the pages viod logged and those the bench wrote), the load parked, the
# source's queues stopped (each answers once its requests completed), the
# last pages copied, and the second device takes the rings over where the
# first stopped. Passes only if the migration happened, no request failed,
# every read found what was last written (reads the source completed while
# parked are checked in the destination's memory, so a page viod did not
# log shows up as a mismatch or a lost completion) and both devices served
# requests. Split and packed rings. Bounded; ends its processes by PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=frontend-migrate-blk
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

# run NAME BENCH-ARGS...: one migration under load on a fresh image.
run() {
	local name=$1 pfx=$VIO_TEST/$1 s1=$tmp/$1-src.sock s2=$tmp/$1-dst.sock disk=$tmp/$1.raw
	local log=$tmp/$1.log out=$tmp/$1.out v rc line mig src dst
	shift
	truncate -s 64M "$disk"
	track_file "$s1"
	track_file "$s2"
	start_bg "$viod" --blk "sock=$s1,file=$disk,queues=2,shared,name=src" \
		--blk "sock=$s2,file=$disk,queues=2,shared,name=dst" >"$log" 2>&1
	v=$VIO_LAST_PID
	if ! wait_for_socket "$s1" 10 "$v" || ! wait_for_socket "$s2" 10 "$v"; then
		echo "FAIL: $pfx/backend: viod made no sockets in 10 s"
		show_log viod "$log"
		return
	fi
	with_timeout 90 "$bench_bin" blk --socket "$s1" --machine --verify --queues 2 --seconds 4 \
		--migrate-to "$s2" "$@" >"$out" 2>&1
	rc=$?
	line=$(grep -E '^iops=' "$out" | tail -n 1)
	mig=$(grep -o 'total_ms=.*' "$out")
	if [ $rc -eq 0 ] && [ -n "$mig" ] && [ "$(machine_field "$line" errors)" = 0 ] &&
		[ "$(machine_field "$line" verify_errors)" = 0 ] &&
		[ "$(machine_field "$line" verified)" -gt 0 ]; then
		echo "PASS: $pfx/migrated-no-loss ($mig)"
		echo "# $pfx: $line"
	else
		echo "FAIL: $pfx/migrated-no-loss: vio-bench exited $rc (${mig:-not migrated}; $line)"
		sed 's/^/#   /' "$out" | tail -n 15
		show_log viod "$log"
	fi
	expect_alive "$pfx" "$v" viod "$log" && expect_clean_exit "$pfx" "$v" viod "$log"
	# Both devices did work: the source before the switch-over, the destination after.
	src=$(sed -nE 's/.*src: blk: requests=([0-9]+).*/\1/p' "$log")
	dst=$(sed -nE 's/.*dst: blk: requests=([0-9]+).*/\1/p' "$log")
	if [ "${src:-0}" -gt 0 ] && [ "${dst:-0}" -gt 0 ]; then
		echo "PASS: $pfx/both-served (source $src requests, destination $dst)"
	else
		echo "FAIL: $pfx/both-served: source ${src:-?} requests, destination ${dst:-?}"
		show_log viod "$log"
	fi
}

run split --rw randrw --bs 4k
run packed --rw randrw --bs 16k --packed
