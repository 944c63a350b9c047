# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Helpers for the tests that drive a vhost-user-blk backend with vio's own
# frontend (vio-bench blk, examples/read_frontend). Source after lib.sh.
# Owns: running one bounded vio-bench blk and judging its --machine line.

bench_bin=$root/${VIO_BUILD:-build}/tools/vio-bench/vio-bench
# Words put before vio-bench in bench_check (e.g. setpriv to run it as another user).
bench_prefix=()
read_frontend_bin=$root/${VIO_BUILD:-build}/examples/read_frontend

# machine_field LINE KEY: the value of KEY=... in a --machine line.
machine_field() {
	sed -nE "s/.*(^| )$2=([0-9.]+).*/\2/p" <<<"$1"
}

# bench_wants_checks ARGS...: true if the vio-bench blk ARGS write with
# --verify, so the run must have checked reads (it reads written blocks back).
bench_wants_checks() {
	local verify=0 rw=randread
	while [ $# -gt 0 ]; do
		case "$1" in
		--verify) verify=1 ;;
		--rw) rw=${2:-}; shift ;;
		--rw=*) rw=${1#--rw=} ;;
		esac
		shift
	done
	[ $verify -eq 1 ] && [ "$rw" != read ] && [ "$rw" != randread ]
}

# bench_check NAME SOCKET ARGS...: runs vio-bench blk --machine for a few
# seconds and prints PASS when it exits 0 with IOPS > 0, no I/O errors, no
# verify mismatches and, for a --verify run that writes, some reads checked;
# FAIL with its output otherwise. Sets bench_line.
bench_check() {
	local name=$1 sock=$2 out rc iops errs verr checked min=0
	shift 2
	bench_wants_checks "$@" && min=1
	out=$(with_timeout 60 "${bench_prefix[@]}" "$bench_bin" blk --socket "$sock" --machine "$@" 2>&1)
	rc=$?
	bench_line=$(grep -E '^iops=' <<<"$out" | tail -n 1)
	iops=$(machine_field "$bench_line" iops)
	errs=$(machine_field "$bench_line" errors)
	verr=$(machine_field "$bench_line" verify_errors)
	checked=$(machine_field "$bench_line" verified)
	if [ $rc -eq 0 ] && [ -n "$iops" ] && [ "${iops%.*}" -gt 0 ] && [ "$errs" = 0 ] &&
		[ "$verr" = 0 ] && [ "${checked:-0}" -ge $min ]; then
		echo "PASS: $VIO_TEST/$name"
		echo "# $VIO_TEST/$name: $bench_line"
	else
		echo "FAIL: $VIO_TEST/$name: vio-bench blk $* exited $rc (iops=$iops errors=$errs verify_errors=$verr verified=$checked)"
		sed 's/^/#   /' <<<"$out" | tail -n 15
	fi
}
