#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The ABI's cost on the data path: vio-bench ring linked against the static
# libvio (vio-bench) and against the shared one (vio-bench-shared, built
# from the same sources), interleaved run by run, medians of --rounds. With
# hidden visibility and -Bsymbolic-functions the library's internal calls
# are direct in both, so the two should be within noise of each other.
#
# usage: bench/abi.sh [--rounds N] [--seconds S] [--build DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=7 secs=0.3 build=build
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	-h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench/abi.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
	esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "bench/abi.sh: bad --rounds '$rounds'" >&2; exit 2; }
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" tools/vio-bench/vio-bench tools/vio-bench/vio-bench-shared >/dev/null
static=$build/tools/vio-bench/vio-bench
shared=$build/tools/vio-bench/vio-bench-shared
ldd "$shared" | grep -q 'libvio\.so' || { echo "bench/abi.sh: $shared does not load libvio.so" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One run of one configuration: layout mode burst -> Mdesc/s.
one() { # BIN LAYOUT MODE BURST
	local args=(ring --layout "$2" --event-idx on --burst "$4" --runs 1 --seconds "$secs" --json)
	[ "$3" = poll ] && args+=(--poll)
	[ "$3" = sleep ] && args+=(--spin 0)
	"$1" "${args[@]}" | sed -n 's/.*"mdesc_s":\([0-9.]*\).*/\1/p'
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

printf '%-7s %-5s %5s | %12s %12s %8s\n' layout mode burst static shared shared/st
for layout in split packed; do
	for mode in poll sleep; do
		for burst in 1 32; do
			key=$layout-$mode-$burst
			for ((r = 0; r < rounds; r++)); do
				one "$static" $layout $mode $burst >>"$tmp/$key.s"
				one "$shared" $layout $mode $burst >>"$tmp/$key.d"
			done
			s=$(median <"$tmp/$key.s")
			d=$(median <"$tmp/$key.d")
			printf '%-7s %-5s %5s | %12.4f %12.4f %7.2fx\n' $layout $mode $burst "$s" "$d" \
				"$(awk -v a="$d" -v b="$s" 'BEGIN {print (b > 0) ? a / b : 0}')"
		done
	done
done
echo "Mdesc/s, medians of $rounds interleaved runs of ${secs}s; $(nproc) CPUs"
