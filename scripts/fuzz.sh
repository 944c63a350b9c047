#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets (tests/fuzz; clang with ASan and UBSan, in
# build-fuzz/) and runs each for SECONDS (default 60), starting from the
# committed corpus and regressions. New inputs it finds go to
# build-fuzz/corpus/<target> (kept between runs, never committed); a crash
# goes to build-fuzz/crashes/<target>/ with its reproducer command.
# Prints one line per target, "PASS: fuzz/<target>: ..." with executions,
# exec/s and corpus size, or "FAIL: ..." (a crash, leak, timeout or
# invariant), then the totals. Usage: scripts/fuzz.sh [SECONDS [TARGET...]]
set -uo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(split_walker packed_walker blk_request vhu_backend net)
dir=build-fuzz

if ! command -v clang >/dev/null; then
	for t in "${targets[@]}"; do
		echo "SKIP: fuzz/$t: clang is not installed (scripts/install-deps.sh test)"
	done
	exit 0
fi
if [ ! -f "$dir/build.ninja" ]; then
	rm -rf "$dir"
	CC=clang meson setup "$dir" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
		-Dtests=disabled -Dbuildtype=debugoptimized >"$dir.setup.log" 2>&1 ||
		{ cat "$dir.setup.log"; echo "FAIL: fuzz: meson setup"; exit 1; }
	mv "$dir.setup.log" "$dir/vio-setup.log"
fi
ninja -C "$dir" "${targets[@]/#/tests/fuzz/fuzz_}" >"$dir/vio-ninja.log" 2>&1 ||
	{ tail -40 "$dir/vio-ninja.log"; echo "FAIL: fuzz: build"; exit 1; }

failed=0 total=0
for t in "${targets[@]}"; do
	work="$dir/corpus/$t" crashes="$dir/crashes/$t" log="$dir/fuzz-$t.log"
	dirs=("$work" "tests/fuzz/corpus/$t")
	[ -d "tests/fuzz/regressions/$t" ] && dirs+=("tests/fuzz/regressions/$t")
	mkdir -p "$work"
	rm -rf "$crashes"
	mkdir -p "$crashes"
	# A hang or a leak is a crash too: -timeout per input, LeakSanitizer at the end of each.
	# (The outer 2>/dev/null keeps bash's "Aborted" notice out: the log says it all.)
	{ ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		"$dir/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$crashes/" "${dirs[@]}" >"$log" 2>&1; } 2>/dev/null
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	corpus=$(find "$work" -type f | wc -l)
	found=$(find "$crashes" -type f | wc -l)
	total=$((total + ${execs:-0}))
	if [ "$rc" -eq 0 ] && [ "$found" -eq 0 ] && [ -n "$execs" ]; then
		echo "PASS: fuzz/$t: $execs executions in ${secs}s ($eps exec/s)," \
			"corpus $corpus, 0 crashes"
	else
		failed=$((failed + 1))
		echo "FAIL: fuzz/$t: exit $rc after ${execs:-?} executions," \
			"$found crash input(s) in $crashes/"
		grep -E 'ERROR|invariant failed|runtime error|SUMMARY' "$log" | head -5
		for c in "$crashes"/*; do
			[ -e "$c" ] && echo "  reproduce: $dir/tests/fuzz/fuzz_$t $c"
		done
	fi
done
echo "fuzz: ${#targets[@]} targets, $total executions, $failed failed"
[ "$failed" -eq 0 ]
