#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What dirty logging costs the data path: vio-bench blk against a viod RAM
# disk with logging off and with logging on (--log: VHOST_F_LOG_ALL and a
# bitmap the client collects once a second, as a VMM's migration thread
# does), 4 KiB random read (the device writes every byte it moves into guest
# memory: every page is logged) and random write (only the status byte and
# the used ring), iodepth 1 and 32, one queue. Runs are interleaved (off,
# on, off, on, ...), each IOPS cell is the median of --runs runs; each
# ratio is the median of the ratios within a round. Peer: the same viod and
# client with logging off; with --base DIR also the viod and vio-bench of another build (the code
# before logging existed, e.g. a `git archive` of an older commit built in
# DIR), so that off/base shows what logging costs while it is off.
#
# usage: bench/log.sh [--runs N] [--seconds S] [--build DIR] [--size SIZE] [--base DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

runs=5 secs=3 build=build size=256M base=
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) runs=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--base) base=$2; shift 2 ;;
	-h | --help) sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench/log.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
done
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null
bench=$build/tools/vio-bench/vio-bench
viod=$build/src/daemon/viod

tmp=$(mktemp -d /tmp/vio-logbench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

"$viod" -q --blk "sock=$tmp/ram.sock,ram=$size" &
pids+=($!)
if [ -n "$base" ]; then
	"$base/src/daemon/viod" -q --blk "sock=$tmp/base.sock,ram=$size" &
	pids+=($!)
fi
for s in ram ${base:+base}; do
	for _ in $(seq 200); do [ -S "$tmp/$s.sock" ] && break; sleep 0.05; done
done

iops() { # bench sock rw qd [--log]
	"$1" blk --socket "$tmp/$2.sock" --rw "$3" --bs 4k --iodepth "$4" --seconds "$secs" \
		--machine "${@:5}" 2>/dev/null | tail -1 | sed -E 's/.*iops=([0-9.]+).*/\1/'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "# $(date -u +%F) $(uname -r), $(nproc) CPUs; bench/log.sh --runs $runs --seconds $secs --size $size"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
printf '%-10s %3s %12s %12s %12s %8s %8s\n' workload qd "iops base" "iops off" "iops on" \
	"off/base" "on/off"
for rw in randread randwrite; do
	for qd in 1 32; do
		b=() off=() on=() rb=() ro=()
		for ((i = 0; i < runs; i++)); do
			[ -z "$base" ] || b+=("$(iops "$base/tools/vio-bench/vio-bench" base $rw $qd)")
			off+=("$(iops "$bench" ram $rw $qd)")
			on+=("$(iops "$bench" ram $rw $qd --log)")
			# Ratios within a round: slow drifts of a shared machine cancel out.
			[ -z "$base" ] || rb+=("$(ratio "${off[i]}" "${b[i]}")")
			ro+=("$(ratio "${on[i]}" "${off[i]}")")
		done
		mb=$([ -z "$base" ] && echo 0 || printf '%s\n' "${b[@]}" | median)
		mo=$(printf '%s\n' "${off[@]}" | median)
		mn=$(printf '%s\n' "${on[@]}" | median)
		printf '%-10s %3s %12.0f %12.0f %12.0f %8s %8s\n' $rw $qd "$mb" "$mo" "$mn" \
			"$([ -z "$base" ] && echo - || printf '%s\n' "${rb[@]}" | median)" \
			"$(printf '%s\n' "${ro[@]}" | median)"
	done
done
