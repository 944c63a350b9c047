#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Network benchmark: viod's switch against DPDK's io forwarding between two
# vhost ports, doing the same work, in one run, interleaved.
#   vm2vm:  "VM to VM through a switch" without VMs: one dpdk-testpmd with
#           two net_virtio_user ports in io forwarding, primed with
#           "start tx_first 32", keeps frames circling through the middle:
#           viod (--net a --net b) or testpmd with two net_vhost ports in io
#           forwarding. Figure: frames per second the driving testpmd
#           receives (both ports), counted over --seconds after a warm-up.
#   frontend: vio-bench net (vio's frontend) sends on one port and receives
#           on the other through the same two middles.
# 64 and 1500-byte frames, split and packed rings. The driver (testpmd or
# vio-bench) runs on CPU 0, the middle on CPU 1. Every round measures every
# case on both middles back to back; the table gives the median Mpps of
# each and the median of the per-round ratios viod / DPDK.
#
# usage: bench/net.sh [--rounds N] [--seconds S] [--build DIR] [--quick]
#   --quick: 64-byte frames, split rings, vm2vm only (a smoke run)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
VIO_TEST=bench-net
# shellcheck source=../tests/interop/lib.sh
. tests/interop/lib.sh
# shellcheck source=../tests/interop/dpdk_lib.sh
. tests/interop/dpdk_lib.sh

rounds=3 secs=3 build=build quick=0
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--quick) quick=1; shift ;;
	-h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench/net.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
done

scripts/install-deps.sh bench || exit 1
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null || exit 1
ninja -C "$build" >/dev/null || exit 1
viod=$root/$build/src/daemon/viod
bench=$root/$build/tools/vio-bench/vio-bench
need_testpmd || exit 1
[ "$(nproc)" -ge 2 ] || { echo "bench/net.sh: needs 2 CPUs (driver and middle pinned apart)"; exit 1; }
tmp=
mk_tmpdir tmp || exit 1
a=$tmp/a.sock b=$tmp/b.sock
track_file "$a"
track_file "$b"
mid_pid=

# middle_start viod|dpdk: the switch under test on CPU 1, sockets a and b.
middle_start() {
	rm -f "$a" "$b"
	if [ "$1" = viod ]; then
		# Polls without sleeping, as testpmd does.
		start_bg taskset -c 1 "$viod" -q --poll-us 1000000 --net "sock=$a" --net "sock=$b" \
			>"$tmp/viod.log" 2>&1
		mid_pid=$VIO_LAST_PID
		wait_for_socket "$a" 10 "$mid_pid" && wait_for_socket "$b" 10 "$mid_pid"
	else
		testpmd_start mid '0@1,1@1' --vdev "net_vhost0,iface=$a" --vdev "net_vhost1,iface=$b" \
			-- --forward-mode=io --max-pkt-len=9600 || return 1
		testpmd_do mid start
	fi
}

middle_stop() {
	if [ "$1" = viod ]; then
		stop_pid "$mid_pid" 5
	else
		testpmd_quit mid
	fi
	rm -f "$a" "$b"
}

# vm2vm SIZE LAYOUT: Mpps through the middle (already running), or -1.
vm2vm() {
	local size=$1 dev="" n
	[ "$2" = packed ] && dev=",packed_vq=1"
	testpmd_start drv '0@0,1@0' --vdev "net_virtio_user0,path=$a$dev" \
		--vdev "net_virtio_user1,path=$b$dev" -- --forward-mode=io --txpkts="$size" ||
		{ echo -1; return; }
	testpmd_do drv "start tx_first 32" >/dev/null
	sleep 1
	testpmd_do drv "clear port stats all" >/dev/null
	sleep "$secs"
	n=$(testpmd_rx_total drv)
	testpmd_do drv stop >/dev/null
	testpmd_quit drv
	awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.4f\n", n < 0 ? -1 : n / s / 1e6 }'
}

# frontend SIZE LAYOUT: Mpps vio-bench net received through the middle, or -1.
frontend() {
	local flag="" out
	[ "$2" = packed ] && flag=--packed
	out=$(taskset -c 0 "$bench" net --socket "$a" --rx-socket "$b" --size "$1" \
		--warmup-ms 1000 --seconds "$secs" $flag --machine 2>&1)
	sed -nE 's/.* mpps=([0-9.]+).*/\1/p' <<<"$out" | tail -n 1 | grep . || echo -1
}

cases=()
if [ $quick -eq 1 ]; then
	cases=("vm2vm 64 split")
else
	for t in vm2vm frontend; do
		for size in 64 1500; do
			for layout in split packed; do
				cases+=("$t $size $layout")
			done
		done
	done
fi

declare -A res=()
k=0
echo "bench/net.sh: $rounds rounds of ${#cases[@]} cases on viod and DPDK, ${secs} s each"
for ((r = 1; r <= rounds; r++)); do
	for c in "${cases[@]}"; do
		read -r t size layout <<<"$c"
		# Alternate which middle goes first, so neither always runs on a warmer machine.
		order=(viod dpdk)
		[ $((k++ % 2)) -eq 1 ] && order=(dpdk viod)
		for m in "${order[@]}"; do
			if middle_start "$m"; then
				v=$($t "$size" "$layout")
				middle_stop "$m"
			else
				v=-1
				middle_stop "$m" 2>/dev/null
			fi
			res["$c|$m|$r"]=$v
			echo "  round $r: $t $size B $layout, $m: $v Mpps"
		done
	done
done

# median: of the numbers on stdin (one per line; failed runs, -1 or 0, skipped).
median() {
	awk '$1 > 0' | sort -g | awk '{ v[NR] = $1 } END {
		if (!NR) { print "n/a"; exit }
		printf "%.3f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo
echo "| test     | frame  | rings  | viod Mpps | DPDK Mpps | viod / DPDK (median of rounds) |"
echo "|----------|--------|--------|-----------|-----------|--------------------------------|"
for c in "${cases[@]}"; do
	read -r t size layout <<<"$c"
	mv=$(for ((r = 1; r <= rounds; r++)); do echo "${res["$c|viod|$r"]}"; done | median)
	md=$(for ((r = 1; r <= rounds; r++)); do echo "${res["$c|dpdk|$r"]}"; done | median)
	ratio=$(for ((r = 1; r <= rounds; r++)); do
		awk -v x="${res["$c|viod|$r"]}" -v y="${res["$c|dpdk|$r"]}" \
			'BEGIN { if (x > 0 && y > 0) printf "%.4f\n", x / y; else print -1 }'
	done | median)
	printf "| %-8s | %4s B | %-6s | %9s | %9s | %30s |\n" "$t" "$size" "$layout" "$mv" "$md" "$ratio"
done
echo
echo "vm2vm: frames/s the driving testpmd (2 virtio-user ports, io, tx_first 32) receives;"
echo "frontend: frames/s vio-bench net receives (txrx, half a ring in flight). Driver on CPU 0,"
echo "middle on CPU 1; DPDK's middle is testpmd with two net_vhost ports in io forwarding."
