#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every vio test: unit tests and the fuzz corpora replays plainly and
# under ASan+UBSan (meson test), the multi-threaded unit tests under
# ThreadSanitizer, each fuzz target for a short bounded time
# (VIO_CI_FUZZ_SECONDS, default 20), then the interop tests against real
# peers (tests/interop/test_*.sh). Prints a line per test and ends with
# "N passed, N failed, N skipped". A skip is never counted as a pass.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh test || { echo "run-tests: could not install packages"; echo "0 passed, 1 failed"; exit 1; }

passed=0 failed=0 skipped=0
failures=()

# meson test: one line per test executable; each executable is a cmocka group.
# UNIT_TESTS="a b": build and run only tests/unit/test_a, test_b.
run_unit() { # name builddir meson-options...
	local name=$1 dir=$2; shift 2
	local only=() targets=()
	for t in ${UNIT_TESTS:-}; do only+=("$t"); targets+=("tests/unit/test_$t"); done
	if [ ! -f "$dir/build.ninja" ]; then
		rm -rf "$dir"; mkdir -p "$dir"
		meson setup "$dir" "$@" >"$dir/vio-setup.log" 2>&1 || { cat "$dir/vio-setup.log"; return 1; }
	fi
	ninja -C "$dir" "${targets[@]}" >"$dir/vio-ninja.log" 2>&1 || { tail -40 "$dir/vio-ninja.log"; return 1; }
	meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 2 "${only[@]}" \
		>"$dir/vio-test.log" 2>&1
	local rc=$? t
	while read -r line; do
		# "12/18 vio:fuzz / fuzz_blk_request  OK  0.05s" -> fuzz_blk_request
		t=$(sed -E 's|^ *[0-9]+/[0-9]+ +||; s|^[^ ]+ / ||; s| +[A-Z]+ .*||' <<<"$line")
		case "$line" in
		*" OK "*) passed=$((passed + 1)); echo "PASS: $name/$t" ;;
		*" SKIP "*) skipped=$((skipped + 1)); echo "SKIP: $name/$t" ;;
		*" FAIL "* | *" TIMEOUT "* | *" ERROR "*)
			failed=$((failed + 1)); failures+=("$name/$t")
			echo "FAIL: $name/$t" ;;
		esac
	done < <(sed '/^Summary of Failures/,$d' "$dir/vio-test.log" | grep -E '^ *[0-9]+/[0-9]+ ')
	[ $rc -eq 0 ] || sed -n '/^--- /,/^-------/p' "$dir/vio-test.log" | tail -80
	return 0
}

run_unit unit build-test -Dbuildtype=debugoptimized || { failed=$((failed + 1)); failures+=(unit-build); }
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	run_unit asan+ubsan build-test-san -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
	|| { failed=$((failed + 1)); failures+=(san-build); }

# Count the "PASS: x", "FAIL: x" and "SKIP: x: reason" lines a script printed.
tally() { # name exit-code output
	local name=$1 rc=$2 out=$3 p f s
	p=$(grep -c '^PASS: ' <<<"$out")
	f=$(grep -c '^FAIL: ' <<<"$out")
	s=$(grep -c '^SKIP: ' <<<"$out")
	grep -E '^(PASS|FAIL|SKIP): ' <<<"$out"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1; echo "FAIL: $name exited $rc"; echo "$out" | tail -30
	elif [ "$f" -ne 0 ]; then
		echo "$out" | tail -60
	fi
	[ "$p$f$s" = "000" ] && { f=1; echo "FAIL: $name reported nothing"; }
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
	[ "$f" -eq 0 ] || failures+=("$name")
}

# ThreadSanitizer, on the tests with threads (clang's runtime: gcc's takes
# minutes on the poller tests). tests/unit/tsan.supp says what it may not
# see and why; test_mt_blk runs the same threads where it sees everything.
if command -v clang >/dev/null; then
	CC=clang UNIT_TESTS="virtq notify vhu_loop vhu_blk mt_blk" TSAN_OPTIONS=second_deadlock_stack=1 \
		run_unit tsan build-test-tsan -Dbuildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false \
		|| { failed=$((failed + 1)); failures+=(tsan-build); }
else
	echo "SKIP: tsan: clang is not installed"; skipped=$((skipped + 1))
fi

# Each fuzz target for a short bounded time (its committed inputs were replayed above).
out=$(scripts/fuzz.sh "${VIO_CI_FUZZ_SECONDS:-20}" 2>&1)
tally scripts/fuzz.sh $? "$out"

# Interop tests print "PASS: x", "FAIL: x" or "SKIP: x: reason" lines.
for t in tests/interop/test_*.sh; do
	[ -e "$t" ] || continue
	out=$(VIO_BUILD=build-test timeout 900 bash "$t" 2>&1)
	tally "$t" $? "$out"
done

[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
