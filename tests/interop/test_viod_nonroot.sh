#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# viod needs no root: run as an unprivileged user (nobody, through setpriv)
# it serves a RAM disk and a file disk that user owns, its sockets are mode
# 0600 and owned by that user, verified I/O from the same user works, a
# third user is refused at connect(), and SIGTERM ends it with status 0.
# Prints PASS/FAIL/SKIP lines; bounded; ends its processes by PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=viod-nonroot
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=frontend_lib.sh
. "$here/frontend_lib.sh"

viod=$root/${VIO_BUILD:-build}/src/daemon/viod
for b in "$viod" "$bench_bin"; do
	[ -x "$b" ] || { echo "FAIL: $VIO_TEST/setup: $b is not built"; exit 1; }
done
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: $VIO_TEST: needs root to switch to an unprivileged user (already unprivileged)"
	exit 0
fi
need setpriv util-linux || exit 0
user_uid=65534 other_uid=65533
as_user() { setpriv --reuid=$user_uid --regid=$user_uid --clear-groups "$@"; }
# The binaries must be reachable by that user.
if ! as_user test -x "$viod"; then
	echo "SKIP: $VIO_TEST: $viod is not executable by uid $user_uid (build tree not world-readable)"
	exit 0
fi

tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
chown $user_uid:$user_uid "$tmp"
chmod 0711 "$tmp"
as_user truncate -s 64M "$tmp/disk.raw" || { echo "FAIL: $VIO_TEST/setup: truncate"; exit 1; }
sock=$tmp/ram.sock file_sock=$tmp/file.sock
track_file "$sock"; track_file "$file_sock"

start_bg setpriv --reuid=$user_uid --regid=$user_uid --clear-groups "$viod" \
	--blk "sock=$sock,ram=64M" --blk "sock=$file_sock,file=$tmp/disk.raw" >"$tmp/viod.log" 2>&1
v=$VIO_LAST_PID
for s in "$sock" "$file_sock"; do
	if ! wait_for_socket "$s" 10 "$v"; then
		echo "FAIL: $VIO_TEST/start: viod made no socket $s in 10 s"
		sed 's/^/# viod: /' "$tmp/viod.log" | tail -n 10
		exit 1
	fi
done

uid=$(awk '/^Uid:/ {print $2}' "/proc/$v/status" 2>/dev/null)
if [ "$uid" = "$user_uid" ]; then
	echo "PASS: $VIO_TEST/runs-unprivileged"
else
	echo "FAIL: $VIO_TEST/runs-unprivileged: viod's uid is '$uid', want $user_uid"
fi
mode=$(stat -c '%a %u' "$sock")
if [ "$mode" = "600 $user_uid" ]; then
	echo "PASS: $VIO_TEST/socket-0600"
else
	echo "FAIL: $VIO_TEST/socket-0600: socket mode/owner '$mode', want '600 $user_uid'"
fi

# Verified I/O as the same unprivileged user.
bench_prefix=(setpriv --reuid=$user_uid --regid=$user_uid --clear-groups)
bench_check ram/randrw "$sock" --rw randrw --verify --seconds 1
bench_check file/randrw "$file_sock" --rw randrw --verify --seconds 1
bench_prefix=()

# Another user may not connect (the socket is the owner's only).
out=$(with_timeout 20 setpriv --reuid=$other_uid --regid=$other_uid --clear-groups \
	"$bench_bin" blk --socket "$sock" --seconds 1 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -qi 'permission denied' <<<"$out"; then
	echo "PASS: $VIO_TEST/other-user-refused"
else
	echo "FAIL: $VIO_TEST/other-user-refused: exit $rc, output:"
	sed 's/^/#   /' <<<"$out" | tail -n 5
fi

stop_pid "$v" 5
rc=$?
if [ $rc -eq 0 ]; then
	echo "PASS: $VIO_TEST/clean-exit"
else
	echo "FAIL: $VIO_TEST/clean-exit: viod exited $rc"
	sed 's/^/# viod: /' "$tmp/viod.log" | tail -n 10
fi
