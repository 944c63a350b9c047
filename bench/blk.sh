#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Block benchmark, like for like: viod against qemu-storage-daemon doing the
# same work, with the machine's own limit beside every row. 4 KiB random read
# and write at iodepth 1 and 32, one queue, vio-bench blk as the client.
#   null    viod null disk         vs qsd null-co (read-zeroes): request path only
#   ram     viod RAM disk          vs qsd null-co (qsd does no work, viod copies);
#           limit: vio-bench copy, the same 4 KiB copies alone on one thread (its best)
#   shm     viod file on tmpfs     vs qsd, same file, cache.direct=off aio=io_uring;
#           limit: fio on the file (pvsync2: one thread, the page-cache copy alone)
#   dio     viod file, O_DIRECT    vs qsd, same file, cache.direct=on aio=io_uring;
#           limit: fio on the file (io_uring, direct, same iodepth)
#   null2q  viod null disk, 2 queues on 2 threads (client: 2 queues, iodepth each)
#           vs the 1-queue null row: scaling
# Runs are interleaved (every target of a cell once, then again), each figure
# is the median of --runs runs; latency is submit to completion (fio too: lat, not clat).
# Prints the table, writes blk.txt, blk.tsv and blk.png (gnuplot) into --out
# (bench/results, the figures README.md shows).
#
# usage: bench/blk.sh [--runs N] [--seconds S] [--build DIR] [--size SIZE]
#          [--works "null ram shm dio null2q"] [--shm-dir DIR] [--disk-dir DIR]
#          [--out DIR] [--raw]
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3 secs=3 build=build size=1G out=bench/results raw=0
works="null ram shm dio null2q" shm_dir=/dev/shm disk_dir=/var/tmp
cmdline="bench/blk.sh $*"
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) runs=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--works) works=$2; shift 2 ;;
	--shm-dir) shm_dir=$2; shift 2 ;;
	--disk-dir) disk_dir=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--raw) raw=1; shift ;;
	-h | --help) sed -n '3,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench/blk.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
done

scripts/install-deps.sh bench
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null
bench=$build/tools/vio-bench/vio-bench
viod=$build/src/daemon/viod
for t in qemu-storage-daemon fio gnuplot; do
	command -v $t >/dev/null || { echo "bench/blk.sh: $t not found (scripts/install-deps.sh bench)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/vio-blkbench.XXXXXX)
shm=$(mktemp -d "$shm_dir/vio-blkbench.XXXXXX")
disk=$(mktemp -d "$disk_dir/vio-blkbench.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp" "$shm" "$disk"
}
trap cleanup EXIT INT TERM

has() { [[ " $works " == *" $1 "* ]]; }
wait_sock() {
	for _ in $(seq 600); do [ -S "$1" ] && return 0; sleep 0.05; done
	echo "bench/blk.sh: no socket $1" >&2; return 1
}
bytes=$(numfmt --from=iec "$size")

# The files: written through once, so that reads find data and O_DIRECT
# writes find allocated blocks; the tmpfs file then lives in the page cache.
if has shm; then
	dd if=/dev/urandom of="$shm/disk.img" bs=1M count=$((bytes >> 20)) status=none
fi
if has dio; then
	dd if=/dev/urandom of="$disk/disk.img" bs=1M count=$((bytes >> 20)) oflag=direct status=none
	sync
fi

viod_start() { # name spec [threads]
	"$viod" -q --threads "${3:-1}" --blk "sock=$tmp/$1.sock,$2" &
	pids+=($!)
}
qsd_start() { # name blockdev
	qemu-storage-daemon --blockdev "$2" \
		--export "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=$tmp/$1.sock,writable=on,num-queues=1" &
	pids+=($!)
}
targets=()
if has null || has ram || has null2q; then
	viod_start viod-null "null=$size"; targets+=(viod-null)
	qsd_start qsd-null "driver=null-co,node-name=n0,size=$bytes,read-zeroes=on"; targets+=(qsd-null)
fi
if has ram; then
	viod_start viod-ram "ram=$size"; targets+=(viod-ram copy)
fi
# viod and qsd hold the same file open at once (only one is driven at a
# time): viod's device says ,shared and qsd takes no image locks.
if has shm; then
	viod_start viod-shm "file=$shm/disk.img,shared"; targets+=(viod-shm)
	qsd_start qsd-shm "driver=file,node-name=n0,filename=$shm/disk.img,cache.direct=off,aio=io_uring,locking=off"
	targets+=(qsd-shm fio-shm)
fi
if has dio; then
	viod_start viod-dio "file=$disk/disk.img,direct,shared"; targets+=(viod-dio)
	qsd_start qsd-dio "driver=file,node-name=n0,filename=$disk/disk.img,cache.direct=on,aio=io_uring,locking=off"
	targets+=(qsd-dio fio-dio)
fi
if has null2q; then
	viod_start viod-null2q "null=$size,queues=2" 2; targets+=(viod-null2q)
fi
for t in "${targets[@]}"; do
	case $t in copy | fio-*) ;; *) wait_sock "$tmp/$t.sock" ;; esac
done

# One run of target t: prints "iops p50 p99 p999" (microseconds; "-" where none).
client() { # socket rw qd [queues]
	"$bench" blk --socket "$1" --rw "$2" --bs 4k --iodepth "$3" --queues "${4:-1}" \
		--seconds "$secs" --machine 2>/dev/null | tail -1 |
		sed -E 's/.*iops=([0-9.]+).*p50_us=([0-9.]+) p99_us=([0-9.]+) p999_us=([0-9.]+).*/\1 \2 \3 \4/'
}
fio_run() { # file rw qd engine direct
	fio --name=limit --filename="$1" --rw="$2" --bs=4k --iodepth="$3" --ioengine="$4" \
		--direct="$5" --size="$bytes" --time_based --runtime="$secs" --norandommap \
		--randrepeat=0 --lat_percentiles=1 --clat_percentiles=0 --output-format=terse \
		--terse-version=3 2>/dev/null |
		awk -F';' '{ iops = $8 + $49
			for (i = 1; i <= NF; i++) {
				split($i, kv, "%=")
				if (kv[1] == "50.000000" && kv[2] > p50) p50 = kv[2]
				if (kv[1] == "99.000000" && kv[2] > p99) p99 = kv[2]
				if (kv[1] == "99.900000" && kv[2] > p999) p999 = kv[2]
			}
			print iops, p50, p99, p999 }'
}
measure() { # target rw qd
	case $1 in
	copy) "$bench" copy --size "$size" --iodepth "$3" --seconds "$secs" --machine \
		$([ "$2" = randwrite ] && echo --write) | tail -1 |
		sed -E 's/copies=([0-9.]+).*/\1 - - -/' ;;
	fio-shm) fio_run "$shm/disk.img" "$2" 1 pvsync2 0 ;;
	fio-dio) fio_run "$disk/disk.img" "$2" "$3" io_uring 1 ;;
	viod-null2q) client "$tmp/$1.sock" "$2" "$3" 2 ;;
	*) client "$tmp/$1.sock" "$2" "$3" ;;
	esac
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g |
	awk '{a[NR] = $1} END { if (!NR || a[1] == "-") print "-"; else print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A S # samples: S[rw/qd/target/field] = "v v v"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for rw in randread randwrite; do
	for qd in 1 32; do
		for r in $(seq "$runs"); do
			for t in "${targets[@]}"; do
				read -r i a b c <<<"$(measure "$t" $rw $qd)"
				[ -n "${i:-}" ] || { echo "bench/blk.sh: $t $rw qd$qd: no result" >&2; i=0 a=- b=- c=-; }
				S[$rw/$qd/$t/iops]+="$i " S[$rw/$qd/$t/p50]+="$a "
				S[$rw/$qd/$t/p99]+="$b " S[$rw/$qd/$t/p999]+="$c "
				[ $raw = 1 ] && echo "raw $rw qd$qd run$r $t: iops=$i p50=$a p99=$b p99.9=$c" >&2
			done
		done
	done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
M() { median <<<"${S[$1/$2/$3/$4]:-}"; } # rw qd target field

# work: viod target, peer target, peer label, limit target, limit label
declare -A W_V W_P W_PL W_L W_LL
W_V[null]=viod-null W_P[null]=qsd-null W_PL[null]="qsd null-co"
W_V[ram]=viod-ram W_P[ram]=qsd-null W_PL[ram]="qsd null-co" W_L[ram]=copy W_LL[ram]="4K memcpy"
W_V[shm]=viod-shm W_P[shm]=qsd-shm W_PL[shm]="qsd buffered" W_L[shm]=fio-shm W_LL[shm]="fio pvsync2"
W_V[dio]=viod-dio W_P[dio]=qsd-dio W_PL[dio]="qsd direct" W_L[dio]=fio-dio W_LL[dio]="fio io_uring"
W_V[null2q]=viod-null2q W_P[null2q]=viod-null W_PL[null2q]="viod 1 queue"

mkdir -p "$out"
tsv=$out/blk.tsv
printf '# %s, median of %s runs of %s s, %s, load %s -> %s\n' "$cmdline" "$runs" "$secs" \
	"$(date -u +%F)" "$load_before" "$load_after" >"$tsv"
printf 'work\trw\tqd\tviod_iops\tviod_p50\tviod_p99\tviod_p999\tpeer\tpeer_iops\tpeer_p50\tpeer_p99\tpeer_p999\tlimit\tlimit_iops\n' >>"$tsv"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2fx", a / b }'; }
{
	echo "bench/blk.sh: 4 KiB random I/O, 1 queue (null2q: 2), $secs s per run, median of $runs interleaved runs"
	echo "command: $cmdline"
	echo "machine: $(nproc) CPUs, $(uname -r), load before $load_before, after $load_after; client vio-bench blk"
	echo "latency in us, submit to completion (fio: total latency, lat_percentiles); ratio = viod / peer"
	printf '%-7s %-9s %3s | %9s %6s %7s %7s | %-13s %9s %6s %7s %7s | %6s %6s | %-12s %9s %6s %7s %6s\n' \
		work rw qd viod p50 p99 p99.9 peer IOPS p50 p99 p99.9 ratio p99r limit IOPS p50 p99 "v/lim"
} | tee "$out/blk.txt"
for w in null ram shm dio null2q; do
	has $w || continue
	for rw in randread randwrite; do
		for qd in 1 32; do
			v=${W_V[$w]} p=${W_P[$w]} l=${W_L[$w]:-}
			vi=$(M $rw $qd $v iops) pi=$(M $rw $qd $p iops) li=-
			[ -n "$l" ] && li=$(M $rw $qd $l iops)
			printf '%-7s %-9s %3s | %9.0f %6s %7s %7s | %-13s %9.0f %6s %7s %7s | %6s %6s | %-12s %9s %6s %7s %6s\n' \
				$w $rw $qd "$vi" "$(M $rw $qd $v p50)" "$(M $rw $qd $v p99)" "$(M $rw $qd $v p999)" \
				"${W_PL[$w]}" "$pi" "$(M $rw $qd $p p50)" "$(M $rw $qd $p p99)" "$(M $rw $qd $p p999)" \
				"$(ratio "$vi" "$pi")" "$(ratio "$(M $rw $qd $p p99)" "$(M $rw $qd $v p99)")" \
				"${W_LL[$w]:--}" "$(awk -v x="$li" 'BEGIN { if (x == "-") print "-"; else printf "%.0f", x }')" \
				"$(if [ -n "$l" ]; then M $rw $qd $l p50; else echo -; fi)" \
				"$(if [ -n "$l" ]; then M $rw $qd $l p99; else echo -; fi)" \
				"$(ratio "$vi" "$li")" | tee -a "$out/blk.txt"
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $w $rw $qd "$vi" \
				"$(M $rw $qd $v p50)" "$(M $rw $qd $v p99)" "$(M $rw $qd $v p999)" "${W_PL[$w]// /_}" \
				"$pi" "$(M $rw $qd $p p50)" "$(M $rw $qd $p p99)" "$(M $rw $qd $p p999)" \
				"$(l=${W_LL[$w]:--}; echo "${l// /_}")" "$li" >>"$tsv"
		done
	done
done
echo "p99r: peer p99 / viod p99 (above 1: viod's tail is lower)" | tee -a "$out/blk.txt"

bench/plot.sh blk "$out"
echo "wrote $out/blk.txt, $out/blk.tsv, $out/blk.png"
