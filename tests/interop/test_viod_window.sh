#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A blk device served as a window (offset, length) of a larger image: its
# capacity is the window's length, verified writes and reads over all of it
# land inside the slice only (every byte of the image outside the window
# keeps its pattern, bytes inside changed), and resizing never grows it past
# the window's length (the image file keeps its size), while shrinking and
# growing back within it works. A window without a length (to the end of
# the image) may grow, and grows the file.
# Prints PASS/FAIL/SKIP lines; bounded; ends its processes by PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=viod-window
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=frontend_lib.sh
. "$here/frontend_lib.sh"

viod=$root/${VIO_BUILD:-build}/src/daemon/viod
vioctl_bin=$root/${VIO_BUILD:-build}/tools/vioctl/vioctl
for b in "$viod" "$vioctl_bin" "$bench_bin"; do
	[ -x "$b" ] || { echo "FAIL: $VIO_TEST/setup: $b is not built"; exit 1; }
done
need python3 python3 || exit 0
tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
rpc=$tmp/rpc.sock log=$tmp/viod.log img=$tmp/image.raw
M=$((1 << 20))

pass() { echo "PASS: $VIO_TEST/$1"; }
fail() {
	echo "FAIL: $VIO_TEST/$1: $2"
	[ -n "${3:-}" ] && sed 's/^/#   /' <<<"$3" | tail -n 8
}
vioctl() { with_timeout 20 "$vioctl_bin" --rpc "$rpc" "$@"; }
py() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
size_of() { vioctl --json list | py "[d for d in j['devices'] if d['name']=='$1'][0]['size']"; }

# 16 MiB of 0xAA: the window is [4 MiB, 8 MiB), the tail device [12 MiB, end).
python3 -c "open('$img','wb').write(b'\xaa' * (16 << 20))" || { echo "FAIL: $VIO_TEST/setup: image"; exit 1; }
start_bg "$viod" --rpc "$rpc" --blk "sock=$tmp/w.sock,file=$img,offset=4M,length=4M,name=w" \
	--blk "sock=$tmp/t.sock,file=$img,offset=12M,name=t" >"$log" 2>&1
v=$VIO_LAST_PID
for s in "$rpc" "$tmp/w.sock" "$tmp/t.sock"; do
	if ! wait_for_socket "$s" 10 "$v"; then
		fail start "viod made no socket $s in 10 s" "$(cat "$log")"
		exit 1
	fi
done

bench_check window/verified-io "$tmp/w.sock" --rw randwrite --bs 4k --verify --seconds 2
cap=$(machine_field "$bench_line" capacity)
[ "$cap" = $((4 * M)) ] && pass window/capacity-is-length ||
	fail window/capacity-is-length "capacity ${cap:-?}, want $((4 * M))"

# Every byte outside [4M, 8M) is still 0xAA; inside, the writes landed.
# (io_uring writes go through the page cache: reading the file sees them.)
out=$(python3 - "$img" <<'EOF'
import sys
d = open(sys.argv[1], 'rb').read()
M = 1 << 20
outside = [(0, 4 * M), (8 * M, 12 * M), (12 * M, 16 * M)]
bad = [(a, b) for a, b in outside if d[a:b] != b'\xaa' * (b - a)]
inside = d[4 * M:8 * M]
changed = sum(1 for i in range(0, 4 * M, 4096) if inside[i:i + 4096] != b'\xaa' * 4096)
print("outside-touched=%s blocks-changed-inside=%d of 1024" % (bad or "none", changed))
sys.exit(1 if bad or changed < 512 else 0)
EOF
)
if [ $? -eq 0 ]; then
	pass window/only-its-slice
	echo "# $VIO_TEST: $out"
else
	fail window/only-its-slice "$out"
fi

# Resizing: within the window yes, past its length never.
fsize() { stat -c %s "$img"; }
if vioctl resize w 2M >/dev/null && [ "$(size_of w)" = $((2 * M)) ]; then
	pass resize/shrink-in-window
else
	fail resize/shrink-in-window "size $(size_of w) after resize to 2M"
fi
out=$(vioctl --json resize w 8M 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -q '"code":-32003' <<<"${out//[[:space:]]/}" && [ "$(size_of w)" = $((2 * M)) ] &&
	[ "$(fsize)" = $((16 * M)) ]; then
	pass resize/never-past-window
else
	fail resize/never-past-window "exit $rc, size $(size_of w), image $(fsize) bytes" "$out"
fi
if vioctl resize w 4M >/dev/null && [ "$(size_of w)" = $((4 * M)) ] && [ "$(fsize)" = $((16 * M)) ]; then
	pass resize/back-to-window-length
else
	fail resize/back-to-window-length "size $(size_of w), image $(fsize) bytes"
fi
bench_check window/io-after-resize "$tmp/w.sock" --rw randrw --verify --seconds 1
# A window to the end of the image may grow, and grows the file.
if vioctl resize t 8M >/dev/null && [ "$(size_of t)" = $((8 * M)) ] && [ "$(fsize)" = $((20 * M)) ]; then
	pass resize/open-ended-window-grows-file
else
	fail resize/open-ended-window-grows-file "size $(size_of t), image $(fsize) bytes (want 8 MiB, 20 MiB)"
fi

stop_pid "$v" 10
rc=$?
[ $rc -eq 0 ] && pass stop-clean || fail stop-clean "viod exit $rc" "$(tail -n 5 "$log")"
exit 0
