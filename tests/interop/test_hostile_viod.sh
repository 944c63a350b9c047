#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A hostile front-end against viod (issue 12): every case of vio-hostile
# (bad rings, bad blk requests, bad control messages, bad fds) against a RAM
# disk, the blk request cases again against a file disk (io_uring), while a
# third device stands by. After each case vio-hostile checks that viod is
# alive, the attacked and the other devices serve a fresh front-end
# (verified write + read), and viod's fds and mappings did not grow; where
# the driver broke a ring rule, that NEEDS_RESET shows and the log names the
# cause. A case that kills or wedges viod is a FAIL, and viod is restarted
# for the next one. At the end viod must exit 0 within 5 s of SIGTERM.
# Prints PASS/FAIL/SKIP lines; every wait is bounded; ends its PIDs only.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=hostile
# shellcheck source=lib.sh
. "$here/lib.sh"

viod=${VIOD:-$root/${VIO_BUILD:-build}/src/daemon/viod} # VIOD: test another viod
hostile=$root/${VIO_BUILD:-build}/tests/hostile/vio-hostile
for b in "$viod" "$hostile"; do
	[ -x "$b" ] || { echo "FAIL: $VIO_TEST/setup: $b is not built"; exit 1; }
done
tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
truncate -s 64M "$tmp/disk.raw" || { echo "FAIL: $VIO_TEST/setup: truncate"; exit 1; }
ram=$tmp/ram.sock file=$tmp/file.sock small=$tmp/small.sock log=$tmp/viod.log
: >"$log"
v=
restarts=0

# start_viod: a fresh viod on the three sockets, its output appended to $log.
start_viod() {
	local s
	# A dead viod leaves its socket files: gone first, so the wait below sees the new ones.
	rm -f -- "$ram" "$file" "$small"
	start_bg "$viod" --blk "sock=$ram,ram=64M" --blk "sock=$file,file=$tmp/disk.raw" \
		--blk "sock=$small,ram=16M" >>"$log" 2>&1
	v=$VIO_LAST_PID
	for s in "$ram" "$file" "$small"; do
		if ! wait_for_socket "$s" 10 "$v"; then
			echo "FAIL: $VIO_TEST/start: viod made no socket $s in 10 s"
			show_log viod "$log"
			exit 1
		fi
	done
}

# healthy: viod runs and all three devices serve (bounded by vio-hostile's own timeouts).
healthy() {
	pid_alive "$v" &&
		with_timeout 30 "$hostile" verify --sock "$ram" --sock "$file" --sock "$small" >/dev/null
}

# after_failure CASE: a viod that died or no longer serves is replaced for the next case.
after_failure() {
	local rc
	healthy && return 0
	if pid_alive "$v"; then
		echo "# $VIO_TEST/$1: viod no longer serves; restarting it"
		stop_pid "$v" 3
		rc=$?
	else
		wait "$v" 2>/dev/null
		rc=$?
	fi
	[ $rc -gt 128 ] && rc="$rc (signal $(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128))))"
	echo "# $VIO_TEST/$1: viod exited with status $rc; restarting it"
	sed 's/^/# viod: /' "$log" | tail -n 5
	restarts=$((restarts + 1))
	start_viod
}

# run_case LABEL SOCK OTHER1 OTHER2 CASE: one case, its lines relabelled under LABEL.
run_case() {
	local label=$1 sock=$2 o1=$3 o2=$4 case=$5 out rc
	out=$(with_timeout 60 "$hostile" run --pid "$v" --log "$log" --sock "$sock" \
		--other "$o1" --other "$o2" "$case" 2>&1)
	rc=$?
	[ -z "$out" ] || echo "${out//hostile\//$label/}"
	if [ $rc -eq 124 ]; then
		echo "FAIL: $label/$case: vio-hostile did not finish in 60 s (viod wedged?)"
	elif [ $rc -eq 2 ]; then
		echo "FAIL: $label/$case: vio-hostile usage error"
	fi
	[ $rc -eq 0 ] || after_failure "$case"
}

start_viod
t0=$SECONDS
out=$(with_timeout 30 "$hostile" verify --sock "$ram" --sock "$file" --sock "$small" 2>&1)
echo "$out"
grep -q '^PASS' <<<"$out" || exit 1

cases=$("$hostile" list) || { echo "FAIL: $VIO_TEST/setup: vio-hostile list"; exit 1; }
# VIO_HOSTILE_ONLY=REGEX: only the cases whose names match (a developer's shortcut).
[ -z "${VIO_HOSTILE_ONLY:-}" ] || cases=$(grep -E "$VIO_HOSTILE_ONLY" <<<"$cases")
for c in $cases; do
	run_case "$VIO_TEST" "$ram" "$file" "$small" "$c"
done
# The request cases go through the device and its engine: again on the io_uring file disk.
for c in $(grep '^req-' <<<"$cases"); do
	run_case "$VIO_TEST/file" "$file" "$ram" "$small" "$c"
done
echo "# $VIO_TEST: $(wc -w <<<"$cases") cases in $((SECONDS - t0)) s; viod restarted $restarts times"

kill -TERM "$v"
wait_pid_timeout "$v" 5
rc=$?
if [ $rc -eq 0 ]; then
	echo "PASS: $VIO_TEST/sigterm-exit"
else
	[ $rc -ne 124 ] || stop_pid "$v" 3
	echo "FAIL: $VIO_TEST/sigterm-exit: viod gave status $rc to SIGTERM (124: still running after 5 s)"
	show_log viod "$log"
fi
if grep -qiE 'sanitizer|runtime error' "$log"; then
	echo "FAIL: $VIO_TEST/no-sanitizer-reports: viod's log has sanitizer reports"
	grep -iE -A5 'sanitizer|runtime error' "$log" | head -n 20 | sed 's/^/# /'
fi
