#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The data-path cost of the vIOMMU: vio-bench blk against one viod RAM disk,
# with VIRTIO_F_ACCESS_PLATFORM (--iommu: every ring and buffer address goes
# through the IOTLB, which vio-bench fills with one identity entry) and
# without (guest-physical addresses), 4 KiB random reads at iodepth 1 and
# 32, one queue. Runs are interleaved (off, on, off, on ...); each row gives
# the medians and the median of the per-pair ratios on/off.
#
# --disk null serves a null disk instead (no copy: the request path alone).
#
# usage: bench/iommu.sh [--runs N] [--seconds S] [--build DIR] [--rw MODE] [--disk ram|null]
set -euo pipefail
cd "$(dirname "$0")/.."

runs=5 secs=3 build=build rw=randread disk=ram
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) runs=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--rw) rw=$2; shift 2 ;;
	--disk) disk=$2; shift 2 ;;
	-h | --help) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench/iommu.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
done
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null
bench=$build/tools/vio-bench/vio-bench
viod=$build/src/daemon/viod

tmp=$(mktemp -d /tmp/vio-iommubench.XXXXXX)
vpid=
cleanup() {
	[ -z "$vpid" ] || { kill "$vpid" 2>/dev/null; wait "$vpid" 2>/dev/null; } || true
	rm -rf -- "$tmp"
}
trap cleanup EXIT INT TERM

"$viod" --rpc "$tmp/rpc.sock" --blk "sock=$tmp/disk.sock,$disk=1G,name=d0" >"$tmp/viod.log" 2>&1 &
vpid=$!
for _ in $(seq 100); do [ -S "$tmp/disk.sock" ] && break; sleep 0.1; done
[ -S "$tmp/disk.sock" ] || { echo "bench/iommu.sh: viod made no socket" >&2; exit 1; }

# one QD FLAG: the IOPS of one run.
one() {
	local line
	line=$("$bench" blk --socket "$tmp/disk.sock" --rw "$rw" --bs 4k --iodepth "$1" \
		--seconds "$secs" --machine $2 2>/dev/null | tail -n 1)
	sed -n 's/^iops=\([0-9]*\).*/\1/p' <<<"$line"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "# $(date -u +%F) $(uname -m), $(nproc) CPUs; bench/iommu.sh --runs $runs --seconds $secs --rw $rw --disk $disk"
printf '%-6s %12s %12s %10s\n' depth "off_iops" "iommu_iops" "ratio"
for qd in 1 32; do
	offs=() ons=() ratios=()
	for _ in $(seq "$runs"); do
		a=$(one "$qd" "")
		b=$(one "$qd" --iommu)
		offs+=("$a")
		ons+=("$b")
		ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}')")
	done
	printf '%-6s %12s %12s %10s\n' "QD$qd" "$(printf '%s\n' "${offs[@]}" | median)" \
		"$(printf '%s\n' "${ons[@]}" | median)" "$(printf '%s\n' "${ratios[@]}" | median)"
	echo "#   QD$qd runs off: ${offs[*]}; iommu: ${ons[*]}"
done
"$build/tools/vioctl/vioctl" --rpc "$tmp/rpc.sock" --json stats d0 |
	python3 -c 'import json,sys; print("# iotlb:", json.dumps(json.load(sys.stdin)["devices"][0]["iotlb"]))' 2>/dev/null || true
