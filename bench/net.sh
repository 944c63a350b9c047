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
# each and the median of the per-round ratios viod / DPDK. It also gives
# the middle's busy time per frame (time in polls or bursts that moved
# frames, over the frames taken from the senders: viod --record-busy,
# testpmd --record-core-cycles) and the ratio DPDK / viod of that: how many
# times the work one switch does per frame the other does in the same time.
#
# Writes the table to net.txt, the figures to net.tsv and a chart net.png
# (bench/plot.sh) into --out (bench/results, what README.md shows).
#
# usage: bench/net.sh [--rounds N] [--seconds S] [--build DIR] [--out DIR] [--quick]
#   --quick: 64-byte frames, split rings, vm2vm only (a smoke run)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
VIO_TEST=bench-net
# shellcheck source=../tests/interop/lib.sh
. tests/interop/lib.sh
# shellcheck source=../tests/interop/dpdk_lib.sh
. tests/interop/dpdk_lib.sh

rounds=3 secs=3 build=build quick=0 out=bench/results
cmdline="bench/net.sh $*"
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--quick) quick=1; shift ;;
	--out) out=$2; shift 2 ;;
	-h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench/net.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
done

scripts/install-deps.sh bench || exit 1
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null || exit 1
ninja -C "$build" >/dev/null || exit 1
viod=$root/$build/src/daemon/viod
bench=$root/$build/tools/vio-bench/vio-bench
need_testpmd || exit 1
command -v gnuplot >/dev/null || { echo "bench/net.sh: gnuplot not found (scripts/install-deps.sh bench)" >&2; exit 1; }
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
		start_bg taskset -c 1 "$viod" -q --poll-us 1000000 --record-busy \
			--net "sock=$a" --net "sock=$b" >"$tmp/viod.log" 2>&1
		mid_pid=$VIO_LAST_PID
		wait_for_socket "$a" 10 "$mid_pid" && wait_for_socket "$b" 10 "$mid_pid"
	else
		testpmd_start mid '0@1,1@1' --vdev "net_vhost0,iface=$a" --vdev "net_vhost1,iface=$b" \
			-- --forward-mode=io --max-pkt-len=9600 --record-core-cycles || return 1
		testpmd_do mid start
	fi
}

# middle_stop viod|dpdk: ends the middle; prints its busy ns per frame taken
# from the senders over the whole run (-1 if it cannot tell).
middle_stop() {
	if [ "$1" = viod ]; then
		kill -USR1 "$mid_pid" 2>/dev/null
		sleep 0.5
		stop_pid "$mid_pid" 5
		awk '/ poller: busy_ns=/ { split($0, x, "busy_ns="); busy = x[2] + 0 }
		     / port [0-9]+: / { split($0, y, "tx_packets="); f[$3] = y[2] + 0 }
		     END { for (p in f) n += f[p]; printf "%.1f\n", (n && busy) ? busy / n : -1 }' \
			"$tmp/viod.log"
	else
		testpmd_do mid stop "Accumulated forward statistics" >/dev/null
		testpmd_quit mid
		sed -nE 's#.*CPU cycles/packet=([0-9.]+) .* at ([0-9]+) MHz.*#\1 \2#p' \
			"${TP_LOGS[mid]}" | tail -n 1 |
			awk '{ printf "%.1f\n", $2 ? $1 * 1000 / $2 : -1 } END { if (!NR) print -1 }'
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
		--ready-ms 2000 --warmup-ms 1000 --seconds "$secs" $flag --machine 2>&1)
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

declare -A res=() busy=()
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
				ns=$(middle_stop "$m")
			else
				v=-1
				ns=$(middle_stop "$m" 2>/dev/null)
			fi
			res["$c|$m|$r"]=$v
			busy["$c|$m|$r"]=$ns
			echo "  round $r: $t $size B $layout, $m: $v Mpps, middle busy $ns ns/frame"
		done
	done
done

# median: of the numbers on stdin (one per line; failed runs, -1 or 0, skipped).
median() {
	awk '$1 > 0' | sort -g | awk '{ v[NR] = $1 } END {
		if (!NR) { print "n/a"; exit }
		printf "%.3f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratios A B: per round, A's value over B's, one per line.
ratios() {
	local -n x=$1 y=$2
	for ((r = 1; r <= rounds; r++)); do
		awk -v x="${x["$c|$3|$r"]}" -v y="${y["$c|$4|$r"]}" \
			'BEGIN { if (x > 0 && y > 0) printf "%.4f\n", x / y; else print -1 }'
	done
}

mkdir -p "$out"
tsv=$out/net.tsv
printf '# %s, %s rounds of %s s, %s, load %s\n' "$cmdline" "$rounds" "$secs" "$(date -u +%F)" \
	"$(cut -d' ' -f1-3 /proc/loadavg)" >"$tsv"
printf 'test\tframe\trings\tviod_mpps\tdpdk_mpps\tviod_over_dpdk\tviod_ns\tdpdk_ns\tdpdk_over_viod\n' >>"$tsv"
{
echo
echo "| test     | frame  | rings  | viod Mpps | DPDK Mpps | viod/DPDK | viod ns/frame | DPDK ns/frame | DPDK/viod |"
echo "|----------|--------|--------|-----------|-----------|-----------|---------------|---------------|-----------|"
for c in "${cases[@]}"; do
	read -r t size layout <<<"$c"
	mv=$(for ((r = 1; r <= rounds; r++)); do echo "${res["$c|viod|$r"]}"; done | median)
	md=$(for ((r = 1; r <= rounds; r++)); do echo "${res["$c|dpdk|$r"]}"; done | median)
	bv=$(for ((r = 1; r <= rounds; r++)); do echo "${busy["$c|viod|$r"]}"; done | median)
	bd=$(for ((r = 1; r <= rounds; r++)); do echo "${busy["$c|dpdk|$r"]}"; done | median)
	ratio=$(ratios res res viod dpdk | median)
	bratio=$(ratios busy busy dpdk viod | median)
	printf "| %-8s | %4s B | %-6s | %9s | %9s | %9s | %13s | %13s | %9s |\n" "$t" "$size" \
		"$layout" "$mv" "$md" "$ratio" "$bv" "$bd" "$bratio"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$size" "$layout" "$mv" "$md" "$ratio" \
		"$bv" "$bd" "$bratio" >>"$tsv"
done
echo
echo "Mpps: vm2vm, frames/s the driving testpmd (2 virtio-user ports, io, tx_first 32)"
echo "receives; frontend, frames/s vio-bench net receives (txrx). ns/frame: the middle's busy"
echo "time (polls or bursts that moved frames) per frame taken from a sender. Ratios: medians"
echo "of the per-round ratios. Driver on CPU 0, middle on CPU 1; DPDK's middle is testpmd with"
echo "two net_vhost ports in io forwarding."
} | tee "$out/net.txt"
bench/plot.sh net "$out"
