#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Scale benchmark: one viod with many devices (default 128 blk RAM disks of
# 64 KiB and 128 net ports, created at run time with vioctl), one
# data-plane thread (--threads), measured as an operator would see it:
#   idle     viod's CPU (utime + stime over --idle-secs, from /proc/PID/stat)
#            and resident memory per device (VmRSS over the empty viod, the
#            RAM disks' storage taken out), with nobody connected and with
#            every device connected (tests/interop/scale_probe: a checked
#            exchange on each, then silence)
#   load     vio-bench blk (4 KiB randread, --iodepth, its own process and
#            eventfd sleeping) on 1, 8 and 64 devices at once, all polled by
#            the same viod thread: aggregate IOPS, IOPS per device, viod's
#            CPU, and the aggregate against the 1-device figure of the same
#            round (the peer: one device alone on the same thread)
# Rounds are interleaved (1, 8, 64, 1, 8, 64, ...); figures are medians.
# Prints the table, writes scale.txt, scale.tsv and scale.png (bench/plot.sh)
# into --out (bench/results, the figures README.md shows).
#
# usage: bench/scale.sh [--blk N] [--net N] [--active "1 8 64"] [--rounds R]
#          [--seconds S] [--idle-secs S] [--iodepth D] [--threads T]
#          [--build DIR] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

nblk=128 nnet=128 active="1 8 64" rounds=3 secs=3 idle_secs=10 iodepth=8 threads=1
build=build out=bench/results
cmdline="bench/scale.sh $*"
while [ $# -gt 0 ]; do
	case "$1" in
	--blk) nblk=$2; shift 2 ;;
	--net) nnet=$2; shift 2 ;;
	--active) active=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--idle-secs) idle_secs=$2; shift 2 ;;
	--iodepth) iodepth=$2; shift 2 ;;
	--threads) threads=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h | --help) sed -n '3,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench/scale.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
done
for a in $active; do
	[ "$a" -le "$nblk" ] || { echo "bench/scale.sh: --active $a is more than --blk $nblk" >&2; exit 2; }
done

scripts/install-deps.sh bench
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null
viod=$build/src/daemon/viod
vioctl=$build/tools/vioctl/vioctl
bench=$build/tools/vio-bench/vio-bench
probe=$build/tests/interop/scale_probe
command -v gnuplot >/dev/null || { echo "bench/scale.sh: gnuplot not found (scripts/install-deps.sh bench)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/vio-scalebench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

ram_kib=64
ndev=$((nblk + nnet))
hz=$(getconf CLK_TCK)
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
pct() { awk -v d="$1" -v s="$2" -v hz="$hz" 'BEGIN { printf "%.2f", 100 * d / (s * hz) }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (!NR) { print "-"; exit }
	printf "%.0f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
medianf() { sort -g | awk '{ v[NR] = $1 } END { if (!NR) { print "-"; exit }
	printf "%.2f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rpc=$tmp/rpc.sock
"$viod" --rpc "$rpc" --threads "$threads" -q </dev/null >"$tmp/viod.log" 2>&1 &
vpid=$!
pids+=("$vpid")
for _ in $(seq 200); do [ -S "$rpc" ] && break; sleep 0.05; done
[ -S "$rpc" ] || { echo "bench/scale.sh: viod made no management socket" >&2; exit 1; }
sleep 1
base=$(rss_kib "$vpid")
for ((i = 0; i < nblk; i++)); do
	"$vioctl" --rpc "$rpc" create blk "sock=$tmp/b$i.sock,ram=${ram_kib}K,name=b$i" >/dev/null
done
for ((i = 0; i < nnet; i++)); do
	"$vioctl" --rpc "$rpc" create net "sock=$tmp/n$i.sock,name=n$i" >/dev/null
done
sleep 1

# idle NAME: CPU % over idle_secs and KiB per device, into idle_cpu[NAME] / idle_rss[NAME].
declare -A idle_cpu idle_rss
idle() {
	local t0 t1 now
	t0=$(cpu_ticks "$vpid")
	sleep "$idle_secs"
	t1=$(cpu_ticks "$vpid")
	now=$(rss_kib "$vpid")
	idle_cpu[$1]=$(pct $((t1 - t0)) "$idle_secs")
	idle_rss[$1]=$(((now - base - nblk * ram_kib) / ndev))
	echo "  idle $1: $((t1 - t0)) ticks in $idle_secs s, VmRSS $now KiB (empty viod $base KiB)" >&2
}
idle nobody
"$probe" --hold --blk "$nblk" "$tmp/b" --net "$nnet" "$tmp/n" </dev/null >"$tmp/probe.out" 2>&1 &
ppid=$!
pids+=("$ppid")
for _ in $(seq 240); do grep -q '^READY' "$tmp/probe.out" && break; sleep 0.5; done
if ! grep -q '^READY' "$tmp/probe.out" || grep -q '^FAIL' "$tmp/probe.out"; then
	echo "bench/scale.sh: scale_probe could not reach every device:" >&2
	cat "$tmp/probe.out" >&2
	exit 1
fi
sleep 1
idle connected
kill "$ppid"
wait "$ppid" || { echo "bench/scale.sh: scale_probe failed on exit" >&2; exit 1; }
sleep 1

# run_load N: N vio-bench blk at once on b0..b(N-1); prints "aggregate_iops viod_cpu_pct".
run_load() {
	local n=$1 i t0 t1 sum=0 bp=() f
	t0=$(cpu_ticks "$vpid")
	for ((i = 0; i < n; i++)); do
		"$bench" blk --socket "$tmp/b$i.sock" --rw randread --bs 4k --iodepth "$iodepth" \
			--seconds "$secs" --spin-us 0 --machine </dev/null >"$tmp/load$i.out" 2>&1 &
		bp+=($!)
	done
	for i in "${!bp[@]}"; do
		wait "${bp[$i]}" || { echo "bench/scale.sh: vio-bench on b$i failed:" >&2; cat "$tmp/load$i.out" >&2; exit 1; }
	done
	t1=$(cpu_ticks "$vpid")
	for ((i = 0; i < n; i++)); do
		f=$(sed -nE 's/^iops=([0-9.]+).*/\1/p' "$tmp/load$i.out" | tail -n 1)
		sum=$(awk -v a="$sum" -v b="${f:-0}" 'BEGIN { printf "%.0f", a + b }')
	done
	# The run lasts secs plus connecting: CPU over the wall time of the whole batch would
	# undercount; over secs it slightly overcounts (set-up included). Say so in the table.
	echo "$sum $(pct $((t1 - t0)) "$secs")"
}

declare -A agg cpu ratio
echo "bench/scale.sh: $rounds rounds of ${active// /, } active devices, $secs s each" >&2
for ((r = 1; r <= rounds; r++)); do
	one=
	for a in $active; do
		res=$(run_load "$a")
		read -r s c <<<"$res"
		agg[$a]+="$s " cpu[$a]+="$c "
		[ "$a" = 1 ] && one=$s
		[ -n "$one" ] && ratio[$a]+="$(awk -v x="$s" -v y="$one" 'BEGIN { printf "%.3f", x / y }') "
		echo "  round $r: $a active: $s IOPS, viod $c% of one CPU" >&2
	done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$out"
tsv=$out/scale.tsv
{
	printf '# bench/scale.sh: %s blk (RAM %s KiB) + %s net, viod --threads %s, %s; load %s -> %s\n' \
		"$nblk" "$ram_kib" "$nnet" "$threads" "$(date -u +%F)" "$load_before" "$load_after"
	printf 'row\tactive\tagg_iops\tper_dev_iops\tvs_one\tviod_cpu_pct\trss_kib_per_dev\n'
	printf 'idle-nobody\t0\t-\t-\t-\t%s\t%s\n' "${idle_cpu[nobody]}" "${idle_rss[nobody]}"
	printf 'idle-connected\t0\t-\t-\t-\t%s\t%s\n' "${idle_cpu[connected]}" "${idle_rss[connected]}"
} >"$tsv"
{
	echo "bench/scale.sh: one viod, $nblk blk (${ram_kib} KiB RAM disks) + $nnet net ports, $threads data-plane thread(s)"
	echo "command: $cmdline"
	echo "machine: $(nproc) CPUs, $(uname -r), load before $load_before, after $load_after"
	echo
	echo "idle ($idle_secs s)            viod CPU (% of one)   RSS per device (KiB, storage excluded)"
	printf '  %-28s %10s %22s\n' "nobody connected" "${idle_cpu[nobody]}" "${idle_rss[nobody]}"
	printf '  %-28s %10s %22s\n' "all $ndev connected, idle" "${idle_cpu[connected]}" "${idle_rss[connected]}"
	echo
	echo "load: vio-bench blk 4 KiB randread, iodepth $iodepth each, $secs s, median of $rounds interleaved rounds"
	printf '  %6s | %12s %12s %10s | %14s\n' active "IOPS total" "per device" "vs 1 dev" "viod CPU %"
} | tee "$out/scale.txt"
for a in $active; do
	s=$(tr ' ' '\n' <<<"${agg[$a]}" | grep . | median)
	c=$(tr ' ' '\n' <<<"${cpu[$a]}" | grep . | medianf)
	q=$(tr ' ' '\n' <<<"${ratio[$a]:-}" | grep . | medianf)
	per=$(awk -v s="$s" -v a="$a" 'BEGIN { printf "%.0f", s / a }')
	printf '  %6s | %12s %12s %9sx | %14s\n' "$a" "$s" "$per" "$q" "$c" | tee -a "$out/scale.txt"
	printf 'load\t%s\t%s\t%s\t%s\t%s\t-\n' "$a" "$s" "$per" "$q" "$c" >>"$tsv"
done
echo "vs 1 dev: the round's total over its 1-device total (median of rounds); viod CPU % over the load's seconds" |
	tee -a "$out/scale.txt"
bench/plot.sh scale "$out"
echo "wrote $out/scale.txt, $out/scale.tsv, $out/scale.png"
