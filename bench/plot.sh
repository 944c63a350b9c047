#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Draws a benchmark's saved results as a PNG chart with gnuplot: DIR/KIND.tsv
# (written by bench/KIND.sh) becomes DIR/KIND.png. The one place the charts
# are drawn; the bench scripts call it after saving their figures, and it
# redraws committed results without running anything:
#   bench/plot.sh blk|net|ring|scale|all [DIR]     (DIR: bench/results)
# A line of KIND.tsv starting with "# " becomes the chart's subtitle (the
# run: command, date, load); the first line without "#" names the columns.
set -euo pipefail

kind=${1:-}
dir=${2:-$(dirname "$0")/results}
case "$kind" in
blk | net | ring | scale) ;;
all)
	for k in blk net ring scale; do
		[ -f "$dir/$k.tsv" ] && "$0" "$k" "$dir"
	done
	exit 0
	;;
-h | --help | "") sed -n '3,10p' "$0" | sed 's/^# \{0,1\}//'; [ -n "$kind" ]; exit ;;
*) echo "bench/plot.sh: unknown kind '$kind' (blk, net, ring, scale, all)" >&2; exit 2 ;;
esac
command -v gnuplot >/dev/null ||
	{ echo "bench/plot.sh: gnuplot not found (scripts/install-deps.sh bench)" >&2; exit 1; }
tsv=$dir/$kind.tsv
png=$dir/$kind.png
[ -f "$tsv" ] || { echo "bench/plot.sh: no $tsv" >&2; exit 1; }
tmp=$(mktemp -d /tmp/vio-plot.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# rows: the data lines of the tsv (no comments, no header), tab-separated.
rows() { grep -v '^#' "$tsv" | tail -n +2; }
sub=$( (grep -m1 '^# ' "$tsv" || true) | sed 's/^# //; s/"/'"'"'/g')

# What every chart shares: size, font, bars, a grid, the key outside.
common() {
	cat <<EOF
set terminal pngcairo size 1200,$1 font ",10" noenhanced
set output "$png"
set datafile separator "\t"
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside right top vertical
set grid ytics
EOF
}

case "$kind" in
blk)
	# IOPS per row at iodepth 1 and 32 (log scale), p99 at iodepth 1.
	for qd in 1 32; do
		rows | awk -F'\t' -v qd=$qd '$3 == qd { lim = ($14 == "-") ? "NaN" : $14
			printf "%s %s\t%s\t%s\t%s\t%s\t%s\n", $1, ($2 == "randread" ? "rd" : "wr"), $4, $9, lim, $6, $11 }' \
			>"$tmp/qd$qd.dat"
	done
	{
		common 900
		cat <<EOF
set multiplot layout 3,1 title "bench/blk.sh: vio-bench blk, 4 KiB random, 1 queue (null2q: 2)\n$sub"
set logscale y
set ylabel "IOPS"
set title "iodepth 1 (higher is better)"
plot "$tmp/qd1.dat" using 2:xtic(1) title "viod", '' using 3 title "peer (same work)", '' using 4 title "limit (fio / memcpy)"
set title "iodepth 32"
plot "$tmp/qd32.dat" using 2:xtic(1) title "viod", '' using 3 title "peer (same work)", '' using 4 title "limit (fio / memcpy)"
set ylabel "p99 us"
set title "p99 latency at iodepth 1 (lower is better)"
plot "$tmp/qd1.dat" using 5:xtic(1) title "viod", '' using 6 title "peer"
unset multiplot
EOF
	} | gnuplot
	;;
net)
	# Mpps of both middles per case, and each middle's busy time per frame.
	rows | awk -F'\t' '{ n = function_na($4); d = function_na($5)
		printf "%s %s B %s\t%s\t%s\t%s\t%s\n", $1, $2, $3, n, d, function_na($7), function_na($8) }
		function function_na(x) { return (x == "n/a" || x + 0 <= 0) ? "NaN" : x }' >"$tmp/net.dat"
	{
		common 760
		cat <<EOF
set multiplot layout 2,1 title "bench/net.sh: viod's switch against DPDK testpmd's io forwarding\n$sub"
set xtics rotate by -20 left
set bmargin 5
set ylabel "Mpps"
set title "frames per second the driver receives (higher is better)"
plot "$tmp/net.dat" using 2:xtic(1) title "viod", '' using 3 title "DPDK testpmd"
set ylabel "ns per frame"
set title "the middle's busy time per frame (lower is better)"
plot "$tmp/net.dat" using 4:xtic(1) title "viod", '' using 5 title "DPDK testpmd"
unset multiplot
EOF
	} | gnuplot
	;;
ring)
	# Million descriptors per second, one panel per mode, bursts on the x axis.
	modes=$(rows | cut -f1 | awk '!seen[$0]++')
	n=0
	for m in $modes; do
		rows | awk -F'\t' -v m="$m" '$1 == m { for (i = 3; i <= 6; i++) { sub(/\*$/, "", $i); if ($i == "FAIL" || $i == "") $i = "NaN" }
			printf "burst %s\t%s\t%s\t%s\t%s\n", $2, $3, $4, $5, $6 }' >"$tmp/$m.dat"
		n=$((n + 1))
	done
	{
		common $((250 + 300 * n))
		echo "set multiplot layout $n,1 title \"bench/ring.sh: one virtqueue, vio-bench ring against Linux's ringtest\\n$sub\""
		echo 'set ylabel "Mdesc/s"'
		for m in $modes; do
			echo "set title \"$m (higher is better)\""
			echo "plot \"$tmp/$m.dat\" using 2:xtic(1) title \"vio split\", '' using 3 title \"ringtest virtio_ring_0_9\", '' using 4 title \"vio packed\", '' using 5 title \"ringtest ring\""
		done
		echo 'unset multiplot'
	} | gnuplot
	;;
scale)
	# Throughput by active devices; idle CPU and memory per device against their targets.
	rows | awk -F'\t' '$1 == "load" { printf "%s active\t%s\t%s\n", $2, $3, $4 }' >"$tmp/load.dat"
	ymax=$(awk -F'\t' '{ if ($2 > m) m = $2 } END { printf "%.0f", (m > 0 ? m : 1) * 3 }' "$tmp/load.dat")
	rows | awk -F'\t' '$1 ~ /^idle/ { l = ($1 == "idle-nobody") ? "nobody connected" : "all connected, idle"
		printf "%s\t%s\t%s\n", l, $6, $7 }' >"$tmp/idle.dat"
	{
		common 900
		cat <<EOF
set multiplot layout 3,1 title "bench/scale.sh: one viod, many devices, one data-plane thread\n$sub"
set ylabel "IOPS"
set logscale y
set yrange [*:$ymax]
set title "vio-bench blk 4 KiB randread on that many devices at once, one viod thread (higher is better)"
plot "$tmp/load.dat" using 2:xtic(1) title "total", '' using 3 title "per device", \
	'' using (\$0 - 0.15):2:(sprintf("%.0f", \$2)) with labels offset 0,0.7 notitle, \
	'' using (\$0 + 0.15):3:(sprintf("%.0f", \$3)) with labels offset 0,0.7 notitle
unset logscale y
set yrange [0:1.5]
set ylabel "% of one CPU"
set title "viod idle (target: below 1%)"
plot "$tmp/idle.dat" using 2:xtic(1) title "viod CPU", 1 with lines lw 2 dt 2 title "1% target", \
	'' using 0:2:(sprintf("%.2f%%", \$2)) with labels offset 0,0.7 notitle
set yrange [0:1300]
set ylabel "KiB per device"
set title "resident memory per device, storage excluded (target: below 1024 KiB)"
plot "$tmp/idle.dat" using 3:xtic(1) title "VmRSS per device", 1024 with lines lw 2 dt 2 title "1 MiB target", \
	'' using 0:3:(sprintf("%d KiB", \$3)) with labels offset 0,0.7 notitle
unset multiplot
EOF
	} | gnuplot
	;;
esac
echo "wrote $png"
