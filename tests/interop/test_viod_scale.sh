#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Scale and idle (issue 15): one viod, 128 blk devices (64 KiB RAM disks)
# and 128 net ports created at run time over the management socket. Every
# device is reachable: scale_probe connects vio's frontend to all 256 at
# once, writes and reads back a sector on each disk and passes a checked
# frame each way between pairs of ports. viod's CPU (utime + stime from
# /proc/PID/stat over IDLE_SECS) must stay below 1% of one CPU idle with
# nobody connected and with all 256 connected and silent; its resident
# memory per device (VmRSS growth over the empty viod, the RAM disks'
# storage taken out) below 1 MiB in both states. Figures go to "# scale:"
# lines. Bounded (about a minute); ends every process it starts.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST="viod-scale"
# shellcheck source=lib.sh
. "$here/lib.sh"

N_BLK=${N_BLK:-128}
N_NET=${N_NET:-128}
IDLE_SECS=${IDLE_SECS:-5}
RAM_KIB=64
build=$root/${VIO_BUILD:-build}
viod=$build/src/daemon/viod
vioctl=$build/tools/vioctl/vioctl
probe=$build/tests/interop/scale_probe
for b in "$viod" "$vioctl" "$probe"; do
	[ -x "$b" ] || { echo "FAIL: $VIO_TEST/setup: $b is not built"; exit 1; }
done
tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
rpc=$tmp/rpc.sock
log=$tmp/viod.log
ndev=$((N_BLK + N_NET))
hz=$(getconf CLK_TCK)

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# CPU ticks (user + system) of PID; fields counted after the ")" that ends comm.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# idle_check NAME PID: CPU share of PID over IDLE_SECS, asserted below 1% of one CPU.
idle_check() {
	local name=$1 pid=$2 t0 t1 pct
	t0=$(cpu_ticks "$pid")
	sleep "$IDLE_SECS"
	t1=$(cpu_ticks "$pid")
	pct=$(awk -v d=$((t1 - t0)) -v s="$IDLE_SECS" -v hz="$hz" 'BEGIN { printf "%.2f", 100 * d / (s * hz) }')
	echo "# scale: $name: viod used $((t1 - t0)) ticks in ${IDLE_SECS} s = ${pct}% of one CPU ($ndev devices)"
	if awk -v p="$pct" 'BEGIN { exit !(p < 1.0) }'; then
		echo "PASS: $VIO_TEST/$name/cpu-below-1pct"
	else
		echo "FAIL: $VIO_TEST/$name/cpu-below-1pct: ${pct}% of one CPU"
	fi
	idle_pct=$pct
}

# rss_check NAME PID BASE: resident KiB per device beyond BASE and the RAM disks, below 1 MiB.
rss_check() {
	local name=$1 pid=$2 base=$3 now per
	now=$(rss_kib "$pid")
	per=$(((now - base - N_BLK * RAM_KIB) / ndev))
	echo "# scale: $name: VmRSS $now KiB, empty viod $base KiB, RAM disks $((N_BLK * RAM_KIB)) KiB: $per KiB per device"
	if [ "$per" -lt 1024 ]; then
		echo "PASS: $VIO_TEST/$name/rss-below-1MiB-per-device"
	else
		echo "FAIL: $VIO_TEST/$name/rss-below-1MiB-per-device: $per KiB"
	fi
}

start_bg "$viod" --rpc "$rpc" --threads 1 >"$log" 2>&1
vpid=$VIO_LAST_PID
if ! wait_for_socket "$rpc" 10 "$vpid"; then
	echo "FAIL: $VIO_TEST/start: viod made no management socket in 10 s"
	show_log viod "$log"
	exit 1
fi
sleep 1
base=$(rss_kib "$vpid")

# The devices, at run time, the way an operator adds them.
failed=0
for ((i = 0; i < N_BLK; i++)); do
	"$vioctl" --rpc "$rpc" create blk "sock=$tmp/b$i.sock,ram=${RAM_KIB}K,name=b$i" >/dev/null ||
		failed=$((failed + 1))
done
for ((i = 0; i < N_NET; i++)); do
	"$vioctl" --rpc "$rpc" create net "sock=$tmp/n$i.sock,name=n$i" >/dev/null ||
		failed=$((failed + 1))
done
listed=$("$vioctl" --rpc "$rpc" list | grep -cE '^(b|n)[0-9]+ ')
if [ "$failed" -eq 0 ] && [ "$listed" -eq "$ndev" ]; then
	echo "PASS: $VIO_TEST/create-$N_BLK-blk-$N_NET-net"
else
	echo "FAIL: $VIO_TEST/create-$N_BLK-blk-$N_NET-net: $failed creates failed, $listed devices listed"
	show_log viod "$log"
	stop_pid "$vpid"
	exit 1
fi
sleep 1
idle_check nobody-connected "$vpid"
idle_unconnected=$idle_pct
rss_check nobody-connected "$vpid" "$base"

# Everyone connected, one checked exchange per device, then silence.
probe_out=$tmp/probe.out
start_bg "$probe" --hold --blk "$N_BLK" "$tmp/b" --net "$N_NET" "$tmp/n" >"$probe_out" 2>&1
ppid=$VIO_LAST_PID
for ((i = 0; i < 120; i++)); do
	grep -q '^READY' "$probe_out" && break
	pid_alive "$ppid" || break
	sleep 0.5
done
grep -E '^(PASS|FAIL|#)' "$probe_out" | sed -E "s#^(PASS|FAIL): scale_probe/#\1: $VIO_TEST/probe/#"
if ! grep -q '^READY' "$probe_out"; then
	echo "FAIL: $VIO_TEST/probe: scale_probe did not finish connecting in 60 s"
	sed 's/^/#   /' "$probe_out" | tail -n 10
	stop_pid "$ppid"
	stop_pid "$vpid"
	exit 1
fi
connected=$("$vioctl" --rpc "$rpc" list | grep -cE ' (connected|running) ')
if [ "$connected" -eq "$ndev" ]; then
	echo "PASS: $VIO_TEST/all-connected"
else
	echo "FAIL: $VIO_TEST/all-connected: viod lists $connected of $ndev devices connected"
fi
sleep 1
idle_check connected-idle "$vpid"
idle_connected=$idle_pct
rss_check connected-idle "$vpid" "$base"
echo "# scale: summary: idle CPU ${idle_unconnected}% (nobody connected), ${idle_connected}% (all connected, idle) with $N_BLK blk + $N_NET net"

stop_pid "$ppid" 10
rc=$?
if [ $rc -eq 0 ]; then
	echo "PASS: $VIO_TEST/probe-disconnects-cleanly"
else
	echo "FAIL: $VIO_TEST/probe-disconnects-cleanly: scale_probe exited $rc"
fi
expect_clean_exit "$VIO_TEST" "$vpid" viod "$log"
