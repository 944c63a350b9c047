#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every vio test: unit tests plainly and under ASan+UBSan (meson test),
# then the interop tests against real peers (tests/interop/test_*.sh).
# Prints a line per test and ends with "N passed, N failed, N skipped".
# A skip is never counted as a pass.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh test || { echo "run-tests: could not install packages"; echo "0 passed, 1 failed"; exit 1; }

passed=0 failed=0 skipped=0
failures=()

# meson test: one line per test executable; each executable is a cmocka group.
run_unit() { # name builddir meson-options...
	local name=$1 dir=$2; shift 2
	if [ ! -f "$dir/build.ninja" ]; then
		rm -rf "$dir"; mkdir -p "$dir"
		meson setup "$dir" "$@" >"$dir/vio-setup.log" 2>&1 || { cat "$dir/vio-setup.log"; return 1; }
	fi
	ninja -C "$dir" >"$dir/vio-ninja.log" 2>&1 || { tail -40 "$dir/vio-ninja.log"; return 1; }
	meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 2 >"$dir/vio-test.log" 2>&1
	local rc=$?
	while read -r line; do
		case "$line" in
		*" OK "*) passed=$((passed + 1)); echo "PASS: $name/$(awk '{print $2}' <<<"$line")" ;;
		*" SKIP "*) skipped=$((skipped + 1)); echo "SKIP: $name/$(awk '{print $2}' <<<"$line")" ;;
		*" FAIL "* | *" TIMEOUT "* | *" ERROR "*)
			failed=$((failed + 1)); failures+=("$name/$(awk '{print $2}' <<<"$line")")
			echo "FAIL: $name/$(awk '{print $2}' <<<"$line")" ;;
		esac
	done < <(grep -E '^ *[0-9]+/[0-9]+ ' "$dir/vio-test.log")
	[ $rc -eq 0 ] || sed -n '/^--- /,/^-------/p' "$dir/vio-test.log" | tail -80
	return 0
}

run_unit unit build-test -Dbuildtype=debugoptimized || { failed=$((failed + 1)); failures+=(unit-build); }
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	run_unit asan+ubsan build-test-san -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
	|| { failed=$((failed + 1)); failures+=(san-build); }

# Interop tests print "PASS: x", "FAIL: x" or "SKIP: x: reason" lines.
for t in tests/interop/test_*.sh; do
	[ -e "$t" ] || continue
	out=$(VIO_BUILD=build-test timeout 900 bash "$t" 2>&1)
	rc=$?
	p=$(grep -c '^PASS: ' <<<"$out")
	f=$(grep -c '^FAIL: ' <<<"$out")
	s=$(grep -c '^SKIP: ' <<<"$out")
	grep -E '^(PASS|FAIL|SKIP): ' <<<"$out"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1; echo "FAIL: $t exited $rc"; echo "$out" | tail -30
	elif [ "$f" -ne 0 ]; then
		echo "$out" | tail -60
	fi
	[ "$p$f$s" = "000" ] && { f=1; echo "FAIL: $t reported nothing"; }
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
	[ "$f" -eq 0 ] || failures+=("$t")
done

[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
