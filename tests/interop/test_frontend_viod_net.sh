#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vio's frontend against viod's switch as separate processes over real
# sockets, split and packed rings: net_probe (flooding, learning, jumbo
# frames over mergeable buffers, a frame too big for a port, MQ and the
# receive filter through the control queue, TSO carried or segmented,
# misshaped chains), then viod's counters (SIGUSR1) must show exactly the
# drops net_probe caused; vio-bench net moves counted frames of 64, 1500
# and 9000 bytes through the switch with and without mergeable buffers and
# IN_ORDER, and a ping-pong through a reflector; viod survives frontends
# killed mid-traffic and exits 0 on SIGTERM. Prints PASS/FAIL/SKIP lines;
# bounded; ends its processes by PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=frontend-viod-net
# shellcheck source=lib.sh
. "$here/lib.sh"

build=$root/${VIO_BUILD:-build}
viod=$build/src/daemon/viod
probe=$build/tests/interop/net_probe
bench=$build/tools/vio-bench/vio-bench
for b in "$viod" "$probe" "$bench"; do
	[ -x "$b" ] || { echo "FAIL: $VIO_TEST/setup: $b is not built"; exit 1; }
done
tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }

# counter LOG SOCK NAME: NAME's value in the last stats line viod printed for SOCK (0 if absent).
counter() {
	local line
	line=$(grep -a "viod: info: $2: port " "$1" | tail -n 1)
	sed -nE "s/.* $3=([0-9]+).*/\1/p" <<<"$line" | grep . || echo 0
}

# run_probe LAYOUT: a fresh viod with three ports, net_probe, then the counters.
run_probe() {
	local layout=$1 log=$tmp/$1.viod.log a=$tmp/$1-a.sock b=$tmp/$1-b.sock c=$tmp/$1-c.sock
	local out v flag="" sock name want have
	track_file "$a"; track_file "$b"; track_file "$c"
	[ "$layout" = packed ] && flag=--packed
	start_bg "$viod" --net "sock=$a" --net "sock=$b,queues=2" --net "sock=$c" >"$log" 2>&1
	v=$VIO_LAST_PID
	for s in "$a" "$b" "$c"; do
		if ! wait_for_socket "$s" 10 "$v"; then
			echo "FAIL: $VIO_TEST/$layout/start: viod made no socket $s in 10 s"
			show_log viod "$log"
			return
		fi
	done
	out=$(with_timeout 120 "$probe" $flag "$a" "$b" "$c" 2>&1)
	grep -E '^(PASS|FAIL|SKIP): ' <<<"$out" | sed -E "s#^(PASS|FAIL|SKIP): #\1: $VIO_TEST/#"
	grep -qE '^(PASS|FAIL): ' <<<"$out" || {
		echo "FAIL: $VIO_TEST/$layout/probe: net_probe reported nothing"
		sed 's/^/#   /' <<<"$out" | tail -n 10
	}
	kill -USR1 "$v"
	sleep 0.5
	while read -r _ sock name want; do
		have=$(counter "$log" "$sock" "$name")
		if [ "$have" = "$want" ]; then
			echo "PASS: $VIO_TEST/$layout/counted/${sock##*/}/$name"
		else
			echo "FAIL: $VIO_TEST/$layout/counted/${sock##*/}/$name: viod counted $have, expected $want"
			grep -a "port " "$log" | tail -n 3 | sed 's/^/#   /'
		fi
	done < <(grep '^EXPECT ' <<<"$out")
	expect_clean_exit "$VIO_TEST/$layout" "$v" viod "$log"
	if grep -qiE 'sanitizer|runtime error' "$log"; then
		echo "FAIL: $VIO_TEST/$layout/no-sanitizer-reports: viod's log has sanitizer reports"
		grep -iE -A5 'sanitizer|runtime error' "$log" | head -n 20 | sed 's/^/# /'
	fi
}

run_probe split
run_probe packed

# ---- vio-bench net through the switch: every frame counted ----------------
log=$tmp/bench.viod.log a=$tmp/ba.sock b=$tmp/bb.sock
track_file "$a"; track_file "$b"
start_bg "$viod" --net "sock=$a" --net "sock=$b" >"$log" 2>&1
v=$VIO_LAST_PID
wait_for_socket "$a" 10 "$v" && wait_for_socket "$b" 10 "$v" || {
	echo "FAIL: $VIO_TEST/bench/start: viod made no sockets"
	show_log viod "$log"
	exit 1
}

# txrx NAME COUNT ARGS...: COUNT frames A -> switch -> B, all must arrive.
txrx() {
	local name=$1 count=$2 out rc line
	shift 2
	out=$(with_timeout 90 "$bench" net --socket "$a" --rx-socket "$b" --count "$count" \
		--seconds 60 --machine "$@" 2>&1)
	rc=$?
	line=$(grep '^mode=' <<<"$out" | tail -n 1)
	if [ $rc -eq 0 ] && grep -q " received=$count " <<<"$line"; then
		echo "PASS: $VIO_TEST/bench/$name"
		echo "# $name: $line"
	else
		echo "FAIL: $VIO_TEST/bench/$name: vio-bench net $* exited $rc: $line"
		sed 's/^/#   /' <<<"$out" | tail -n 5
	fi
}
txrx split-64 50000 --size 64
txrx split-1500 20000 --size 1500
txrx split-9000-mergeable 5000 --size 9000
txrx split-9000-big-buffers 5000 --size 9000 --no-mrg
txrx packed-64 50000 --size 64 --packed
txrx packed-9000-mergeable 5000 --size 9000 --packed
txrx in-order 20000 --size 256 --in-order
txrx packed-in-order 20000 --size 256 --in-order --packed

# Ping-pong: B reflects what A sends.
start_bg "$bench" net --socket "$b" --mode reflect --seconds 60 >"$tmp/reflect.out" 2>&1
r=$VIO_LAST_PID
sleep 0.5
out=$(with_timeout 60 "$bench" net --socket "$a" --mode pingpong --count 500 --seconds 30 \
	--machine 2>&1)
rc=$?
line=$(grep '^mode=' <<<"$out" | tail -n 1)
if [ $rc -eq 0 ] && grep -q " received=500 " <<<"$line"; then
	echo "PASS: $VIO_TEST/bench/pingpong"
	echo "# pingpong: $line"
else
	echo "FAIL: $VIO_TEST/bench/pingpong: exited $rc: $line"
	sed 's/^/#   /' <<<"$out" | tail -n 5
fi
stop_pid "$r" 3

# Frontends killed in the middle of traffic, then full service again.
for i in 1 2 3; do
	start_bg "$bench" net --socket "$a" --rx-socket "$b" --seconds 30 >/dev/null 2>&1
	sleep 0.$((2 * i))
	kill -KILL "$VIO_LAST_PID" 2>/dev/null
	wait "$VIO_LAST_PID" 2>/dev/null
done
if pid_alive "$v"; then
	echo "PASS: $VIO_TEST/survives-killed-frontends"
else
	echo "FAIL: $VIO_TEST/survives-killed-frontends: viod died"
	show_log viod "$log"
	exit 1
fi
txrx after-kills 20000 --size 512
expect_clean_exit "$VIO_TEST/bench" "$v" viod "$log"
if grep -qiE 'sanitizer|runtime error' "$log"; then
	echo "FAIL: $VIO_TEST/bench/no-sanitizer-reports: viod's log has sanitizer reports"
	grep -iE -A5 'sanitizer|runtime error' "$log" | head -n 20 | sed 's/^/# /'
fi
