#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Ring benchmark: vio-bench ring (vio's split and packed virtqueues, one
# driver and one device thread) against Linux's tools/virtio/ringtest
# (virtio_ring_0_9: the split ring as Linux drives it; ring: its packed-style
# descriptor ring), same machine, same CPUs, same ring size, interleaved
# (vio, ringtest, vio, ringtest, ...), medians of --runs runs.
# Modes compared like with like:
#   poll:  both sides busy-poll, nobody notifies or decides whether to
#          (ringtest default, --relax; vio-bench --poll --pause on, whose
#          driver publishes with vio_virtq_publish, no kick decision)
#   sleep: eventfd kicks and calls with event index, a side sleeps as soon as
#          it finds nothing (ringtest --sleep --batch B, which also spends 500
#          + 500 TSC cycles around each notification to mimic a VM exit;
#          vio-bench --spin 0 --vmexit-cycles 500 --event-idx on)
# The burst is vio's buffers per publish/kick_prepare, per pop/push and per
# reap; ringtest's --batch is buffers per kick (only matters in sleep mode:
# in poll mode ringtest publishes and reaps one buffer at a time whatever
# --batch says, so only burst 1 is like for like there). bench/README.md
# says what each side does per buffer.
#
# Writes the table to ring.txt, the figures to ring.tsv and a chart ring.png
# (bench/plot.sh) into --out (bench/results, what README.md shows).
#
# usage: bench/ring.sh [RINGTEST_DIR] [--runs N] [--seconds S] [--size N]
#                      [--bursts LIST] [--modes poll,sleep] [--build DIR] [--out DIR] [--raw]
# RINGTEST_DIR (or env RINGTEST_DIR): a tools/virtio/ringtest directory; if
# absent, it is extracted from /usr/src/linux-source-*.tar.xz into
# ${TMPDIR:-/tmp}/vio-ringtest and built there.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=5 secs=0.3 size=256 bursts=1,8,32 modes=poll,sleep build=build raw=0 out=bench/results
cmdline="bench/ring.sh $*"
rtdir=${RINGTEST_DIR:-}
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) runs=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--bursts) bursts=$2; shift 2 ;;
	--modes) modes=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--raw) raw=1; shift ;;
	--out) out=$2; shift 2 ;;
	-h | --help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "bench/ring.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
	*) rtdir=$1; shift ;;
	esac
done
for v in "$runs" "$size"; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || { echo "bench/ring.sh: bad number '$v'" >&2; exit 2; }
done
[[ $secs =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "bench/ring.sh: bad --seconds '$secs'" >&2; exit 2; }
[[ $bursts =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "bench/ring.sh: bad --bursts '$bursts'" >&2; exit 2; }
for m in ${modes//,/ }; do
	[[ $m == poll || $m == sleep ]] || { echo "bench/ring.sh: bad mode '$m' (poll, sleep)" >&2; exit 2; }
done

command -v gnuplot >/dev/null || { echo "bench/ring.sh: gnuplot not found (scripts/install-deps.sh bench)" >&2; exit 1; }

# ---- vio-bench ----
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" >/dev/null
fi
# Only our target: a half-written file elsewhere in the tree must not stop the bench.
ninja -C "$build" tools/vio-bench/vio-bench >/dev/null
bench=$build/tools/vio-bench/vio-bench

# ---- ringtest: find or extract, then build ----
rt_ok=0
find_ringtest() {
	local tarball out
	if [ -n "$rtdir" ]; then
		[ -f "$rtdir/main.c" ] && [ -f "$rtdir/virtio_ring_0_9.c" ] && return 0
		echo "ringtest: '$rtdir' has no main.c / virtio_ring_0_9.c" >&2
	fi
	out=${TMPDIR:-/tmp}/vio-ringtest
	if [ -f "$out/ringtest/main.c" ]; then
		rtdir=$out/ringtest
		return 0
	fi
	tarball=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n1 || true)
	[ -n "$tarball" ] || return 1
	echo "ringtest: extracting tools/virtio/ringtest from $tarball into $out" >&2
	mkdir -p "$out"
	local top
	top=$(basename "$tarball" .tar.xz)
	tar -xJf "$tarball" -C "$out" --strip-components=3 "$top/tools/virtio/ringtest" || return 1
	rtdir=$out/ringtest
	[ -f "$rtdir/main.c" ]
}
if find_ringtest; then
	# ring and virtio_ring_0_9 need only libc and <linux/virtio_ring.h> (linux-libc-dev).
	if make -s -C "$rtdir" ring virtio_ring_0_9 >/dev/null 2>"${TMPDIR:-/tmp}/vio-ringtest-make.log"; then
		rt_ok=1
	else
		echo "ringtest: build failed in $rtdir (see ${TMPDIR:-/tmp}/vio-ringtest-make.log)" >&2
	fi
else
	echo "ringtest: not found (give its directory or apt-get install linux-source-6.1)"
fi

# ---- runners: each prints one figure, million descriptors per second ----
ncpu=$(nproc)
if [ "$ncpu" -ge 2 ]; then cpus=(0 1); else cpus=(); fi

now_ns() { date +%s%N; }

# vio_run MODE LAYOUT BURST -> Mdesc/s
vio_run() {
	local mode=$1 layout=$2 burst=$3 extra out
	if [ "$mode" = poll ]; then extra=(--poll --pause on); else extra=(--spin 0 --vmexit-cycles 500); fi
	out=$("$bench" ring --layout "$layout" --event-idx on --burst "$burst" --size "$size" \
		--runs 1 --seconds "$secs" --json "${extra[@]}") || { echo FAIL; return 0; }
	out=$(sed -n 's/.*"mdesc_s":\([0-9.]*\).*/\1/p' <<<"$out")
	echo "${out:-FAIL}"
}

# rt_time VARIANT MODE BURST CYCLES -> seconds of wall time, or FAIL
rt_time() {
	local v=$1 mode=$2 burst=$3 cycles=$4 t0 t1 args=()
	[ ${#cpus[@]} -eq 2 ] && args+=(--guest-affinity 0 --host-affinity 1)
	if [ "$mode" = poll ]; then args+=(--relax); else args+=(--sleep); fi
	t0=$(now_ns)
	# ringtest can deadlock in --sleep with --batch > 1 (both sides asleep): bound
	# each run (runs are sized to --seconds, so 5 s is far beyond a healthy one).
	timeout 5 "$rtdir/$v" "${args[@]}" --ring-size "$size" --batch "$burst" \
		--run-cycles "$cycles" >/dev/null 2>&1 || { echo FAIL; return 0; }
	t1=$(now_ns)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", (b - a) / 1e9 }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (!NR) { print "nan"; exit }
	if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A res cycles
rt_startup=0
if [ $rt_ok = 1 ]; then
	# Process start, thread creation and the date calls: measured and taken off each
	# run. Noise only ever adds to it, so the least of five.
	rt_startup=$(for _ in 1 2 3 4 5; do rt_time virtio_ring_0_9 poll 1 1; done | sort -g | head -n1)
	for m in ${modes//,/ }; do
		for b in ${bursts//,/ }; do
			for v in virtio_ring_0_9 ring; do
				# Size each run to about --seconds from the fastest of three
				# 1M-cycle probes (a probe can stall or hang; none is too slow).
				t=$(for _ in 1 2 3; do rt_time $v "$m" "$b" 1000000; done | grep -v FAIL |
					sort -g | head -n1)
				[ -z "$t" ] && t=0.1 # sized blind; its runs will say if it keeps failing
				cycles[$v,$m,$b]=$(awk -v t="$t" -v s="$rt_startup" -v w="$secs" \
					'BEGIN { d = t - s; if (d < 1e-3) d = 1e-3; c = int(1e6 * w / d);
						 if (c < 1000000) c = 1000000; print c }')
			done
		done
	done
fi

# rt_rate VARIANT MODE BURST -> Mdesc/s of one sized run, or FAIL (hung, or so short
# that start-up would be most of it: a figure we cannot trust)
rt_rate() {
	local c=${cycles[$1,$2,$3]} t
	t=$(rt_time "$1" "$2" "$3" "$c")
	awk -v t="$t" -v s="$rt_startup" -v c="$c" 'BEGIN {
		if (t == "FAIL" || t - s < t / 2) print "FAIL"; else printf "%.4f\n", c / (t - s) / 1e6 }'
}

started=$(date -u +%FT%TZ)
for ((r = 0; r < runs; r++)); do
	for m in ${modes//,/ }; do
		for b in ${bursts//,/ }; do
			res[vs,$m,$b]+="$(vio_run "$m" split "$b") "
			if [ $rt_ok = 1 ]; then
				res[r9,$m,$b]+="$(rt_rate virtio_ring_0_9 "$m" "$b") "
			fi
			res[vp,$m,$b]+="$(vio_run "$m" packed "$b") "
			if [ $rt_ok = 1 ]; then
				res[rr,$m,$b]+="$(rt_rate ring "$m" "$b") "
			fi
		done
	done
done

med() { # key -> median of the runs that worked, marked * if some failed; FAIL if all did
	local vals=${res[$1]:-} ok m
	[ -z "$vals" ] && { echo "-"; return; }
	ok=$(tr ' ' '\n' <<<"$vals" | grep -v FAIL | grep . || true)
	[ -z "$ok" ] && { echo FAIL; return; }
	m=$(median <<<"$ok")
	[[ $vals == *FAIL* ]] && m="$m*"
	echo "$m"
}
ratio() { awk -v a="${1%\*}" -v b="${2%\*}" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else print "-" }'; }

mkdir -p "$out"
tsv=$out/ring.tsv
printf '# %s, queue size %s, median of %s runs of %s s, %s\n' "$cmdline" "$size" "$runs" "$secs" \
	"$started" >"$tsv"
printf 'mode\tburst\tvio_split\trt_0_9\tvio_packed\trt_ring\n' >>"$tsv"
{
echo "# bench/ring.sh: queue size $size, runs $runs x ${secs}s, CPUs ${cpus[*]:-unpinned}, started $started"
echo "# Mdesc/s = million descriptors per second, median of $runs runs; ratio = vio / ringtest"
echo "# ringtest: ${rtdir:-none}; vio: $bench"
printf "%-6s %5s | %9s %9s %9s | %10s %9s %11s %10s\n" mode burst "vio-split" "rt-0_9" "split/0_9" \
	"vio-packed" "rt-ring" "packed/ring" "packed/0_9"
for m in ${modes//,/ }; do
	for b in ${bursts//,/ }; do
		vs=$(med "vs,$m,$b") vp=$(med "vp,$m,$b") r9=$(med "r9,$m,$b") rr=$(med "rr,$m,$b")
		printf "%-6s %5s | %9s %9s %9s | %10s %9s %11s %10s\n" "$m" "$b" "$vs" "$r9" \
			"$(ratio "$vs" "$r9")" "$vp" "$rr" "$(ratio "$vp" "$rr")" "$(ratio "$vp" "$r9")"
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$b" "$vs" "$r9" "$vp" "$rr" >>"$tsv"
	done
done
} | tee "$out/ring.txt"
if [ $raw = 1 ]; then
	echo "# every run, in order (vs vio split, r9 virtio_ring_0_9, vp vio packed, rr ring):"
	for k in $(printf '%s\n' "${!res[@]}" | sort); do echo "#   $k: ${res[$k]}"; done
	for k in $(printf '%s\n' "${!cycles[@]}" | sort); do echo "#   cycles $k: ${cycles[$k]}"; done
	echo "#   ringtest start-up: $rt_startup s"
fi
if grep -q FAIL <<<"${res[*]}"; then
	echo "# * some runs failed, hung (ringtest --sleep --batch can deadlock; 5 s timeout) or were too short to time: median of the rest"
fi
bench/plot.sh ring "$out"
