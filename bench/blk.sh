#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Block benchmark: vio-bench blk (vio's vhost-user frontend) against viod
# and qemu-storage-daemon, 4 KiB random read and write at iodepth 1 and 32,
# one queue, in pairs doing the same work: viod's RAM disk vs qsd on a raw
# file in tmpfs (data kept in memory), and viod's null disk vs qsd's null-co
# with read-zeroes (request path only). Runs are interleaved (viod-ram,
# viod-null, qsd-null, qsd-file, viod-ram, ...), each figure is the median
# of --runs runs. Prints IOPS, p50, p99 and the viod / qsd ratio per pair.
#
# usage: bench/blk.sh [--runs N] [--seconds S] [--build DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3 secs=3 build=build
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) runs=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	-h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench/blk.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
done

scripts/install-deps.sh bench
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null
bench=$build/tools/vio-bench/vio-bench
viod=$build/src/daemon/viod
command -v qemu-storage-daemon >/dev/null || { echo "qemu-storage-daemon: not found (apt-get install qemu-system-common)"; exit 1; }

dir=$(mktemp -d /tmp/vio-blkbench.XXXXXX)
shm=$(mktemp -d /dev/shm/vio-blkbench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$dir" "$shm"
}
trap cleanup EXIT INT TERM

wait_sock() { for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; return 1; }

size=1G
truncate -s $size "$shm/disk.img"
"$viod" -q --blk "sock=$dir/viod-ram.sock,ram=$size,queues=1" \
	--blk "sock=$dir/viod-null.sock,null=$size,queues=1" &
pids+=($!)
qemu-storage-daemon \
	--blockdev driver=null-co,node-name=null0,size=1073741824,read-zeroes=on \
	--export type=vhost-user-blk,id=e0,node-name=null0,addr.type=unix,addr.path="$dir/qsd-null.sock",writable=on,num-queues=1 &
pids+=($!)
qemu-storage-daemon \
	--blockdev driver=file,node-name=file0,filename="$shm/disk.img",cache.direct=off,aio=threads \
	--export type=vhost-user-blk,id=e1,node-name=file0,addr.type=unix,addr.path="$dir/qsd-file.sock",writable=on,num-queues=1 &
pids+=($!)
for s in viod-ram viod-null qsd-null qsd-file; do wait_sock "$dir/$s.sock"; done

targets=(viod-ram viod-null qsd-null qsd-file)
declare -A pair=([qsd-null]=viod-null [qsd-file]=viod-ram)
declare -A iops p50 p99
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

for rw in randread randwrite; do
	for qd in 1 32; do
		declare -A samples_i=() samples_50=() samples_99=()
		for r in $(seq "$runs"); do
			for t in "${targets[@]}"; do
				line=$("$bench" blk --socket "$dir/$t.sock" --rw $rw --bs 4k --iodepth $qd \
					--queues 1 --seconds "$secs" --machine | tail -1)
				samples_i[$t]+="$(sed -E 's/.*iops=([0-9.]+).*/\1/' <<<"$line") "
				samples_50[$t]+="$(sed -E 's/.*p50_us=([0-9.]+).*/\1/' <<<"$line") "
				samples_99[$t]+="$(sed -E 's/.*p99_us=([0-9.]+).*/\1/' <<<"$line") "
			done
		done
		for t in "${targets[@]}"; do
			iops[$rw/$qd/$t]=$(tr ' ' '\n' <<<"${samples_i[$t]}" | grep . | median)
			p50[$rw/$qd/$t]=$(tr ' ' '\n' <<<"${samples_50[$t]}" | grep . | median)
			p99[$rw/$qd/$t]=$(tr ' ' '\n' <<<"${samples_99[$t]}" | grep . | median)
		done
	done
done

printf '\n4 KiB, 1 queue, %s s per run, median of %s interleaved runs\n' "$secs" "$runs"
printf '%-10s %3s  %-9s %10s %9s %9s   %s\n' rw qd target IOPS p50_us p99_us "ratio (same work)"
for rw in randread randwrite; do
	for qd in 1 32; do
		for t in "${targets[@]}"; do
			ratio=""
			v=${pair[$t]:-}
			if [ -n "$v" ]; then
				ratio=$(awk -v a="${iops[$rw/$qd/$v]}" -v b="${iops[$rw/$qd/$t]}" \
					-v c="${p99[$rw/$qd/$v]}" -v d="${p99[$rw/$qd/$t]}" -v v="$v" \
					'BEGIN {printf "%s/this: %.2fx IOPS, p99 %.2fx", v, (b>0)?a/b:0, (d>0)?c/d:0}')
			fi
			printf '%-10s %3s  %-9s %10.0f %9.1f %9.1f   %s\n' $rw $qd $t "${iops[$rw/$qd/$t]}" \
				"${p50[$rw/$qd/$t]}" "${p99[$rw/$qd/$t]}" "$ratio"
		done
	done
done
