#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Live migration of a guest on viod's switch: guest B on one port, guest A
# on a second; a third port waits for A's destination. A (guest/net-test.sh
# with vio.transfers) fetches a file from B several times, checking each
# copy; meanwhile QMP `migrate` moves A to a second QEMU started with
# -incoming on the third port. A finishes there: every transfer's checksum
# must match (a received frame viod did not log would reach the destination
# stale) and B must have its own transfer. Prints the migration's total time
# and downtime. Traffic stays inside viod. Bounded; ends every process it
# started by PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=migrate-qemu-net
# shellcheck source=lib.sh
. "$here/lib.sh"

need_guest_tools || exit 0
need python3 python3 || exit 0
viod=$root/${VIO_BUILD:-build}/src/daemon/viod
if [ ! -x "$viod" ]; then
	echo "FAIL: $VIO_TEST/setup: $viod is not built"
	exit 1
fi
qmp() { with_timeout 20 python3 "$here/qmp.py" "$@"; }
tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
NET=10.78.0
MAC_A=52:54:00:78:00:01
MAC_B=52:54:00:78:00:02
XFERS=24 # A's transfers: the migration lands among them

# guest TAG SOCK MAC APPEND EXTRA-QEMU-ARGS...: one guest in the background.
guest() {
	local tag=$1 sock=$2 mac=$3 append=$4
	shift 4
	start_bg "$here/boot_guest.sh" --test net --timeout 400 --mem 192M --log "$tmp/$tag.console" \
		--append "vio.queues=2 $append" -- \
		-chardev "socket,id=n0,path=$sock,reconnect=1" \
		-netdev "vhost-user,id=net0,chardev=n0,queues=2" \
		-device "virtio-net-pci,netdev=net0,mac=$mac,mq=on,vectors=0" "$@" \
		>"$tmp/$tag.out" 2>"$tmp/$tag.err"
}

# wait_console TAG TEXT SECS: true once the guest's console shows TEXT.
wait_console() {
	local deadline=$((SECONDS + $3))
	while [ $SECONDS -lt $deadline ]; do
		{ tr -d '\r' <"$tmp/$1.console"; } 2>/dev/null | grep -aq "$2" && return 0
		sleep 0.3
	done
	return 1
}

t0=$SECONDS
sa=$tmp/a.sock sd=$tmp/a-dst.sock sb=$tmp/b.sock log=$tmp/viod.log
for s in "$sa" "$sd" "$sb"; do track_file "$s"; done
start_bg "$viod" --net "sock=$sa,queues=2,name=a" --net "sock=$sd,queues=2,name=a-dst" \
	--net "sock=$sb,queues=2,name=b" >"$log" 2>&1
v=$VIO_LAST_PID
for s in "$sa" "$sd" "$sb"; do
	if ! wait_for_socket "$s" 10 "$v"; then
		echo "FAIL: $VIO_TEST/backend: viod made no socket $s in 10 s"
		show_log viod "$log"
		exit 1
	fi
done
guest a "$sa" "$MAC_A" "vio.ip=$NET.1 vio.peer=$NET.2 vio.transfers=$XFERS" \
	-qmp "unix:$tmp/a.qmp,server=on,wait=off"
src=$VIO_LAST_PID
guest a-dst "$sd" "$MAC_A" "vio.ip=$NET.1 vio.peer=$NET.2 vio.transfers=$XFERS" \
	-qmp "unix:$tmp/a-dst.qmp,server=on,wait=off" -incoming "unix:$tmp/mig.sock"
dst=$VIO_LAST_PID
guest b "$sb" "$MAC_B" "vio.ip=$NET.2 vio.peer=$NET.1"
gb=$VIO_LAST_PID

st=
if ! wait_console a "VIOTEST INFO transfers" 240; then
	echo "FAIL: $VIO_TEST/ready: guest A never began its transfers"
	tr -d '\r' <"$tmp/a.console" | tail -n 20 | sed 's/^/# /'
else
	sleep 0.$((RANDOM % 5 + 3))
	qmp "$tmp/a.qmp" migrate-set-parameters '{"max-bandwidth": 4294967296}' >/dev/null
	qmp "$tmp/a.qmp" migrate "{\"uri\": \"unix:$tmp/mig.sock\"}" >/dev/null 2>"$tmp/qmp.err" ||
		echo "FAIL: $VIO_TEST/migrate: QMP migrate refused: $(cat "$tmp/qmp.err")"
	for ((k = 0; k < 600; k++)); do
		info=$(qmp "$tmp/a.qmp" query-migrate 2>/dev/null) || break
		st=$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("status",""))' <<<"$info")
		case "$st" in completed|failed|cancelled) break ;; esac
		sleep 0.2
	done
	if [ "$st" = completed ]; then
		python3 -c 'import json,sys
m = json.load(sys.stdin)
print("PASS: %s/migrated (total %s ms, downtime %s ms, %.1f MiB of RAM sent)" % (
    sys.argv[1], m.get("total-time"), m.get("downtime"),
    m.get("ram", {}).get("transferred", 0) / 1048576.0))' "$VIO_TEST" <<<"$info"
		n=$(tr -d '\r' <"$tmp/a.console" | grep -ac 'VIOTEST PASS transfer-')
		echo "# $VIO_TEST: A had finished $n of $XFERS transfers on the source"
		[ "$n" -lt "$XFERS" ] || echo "FAIL: $VIO_TEST/mid-transfer: A had finished every transfer before the switch-over"
	else
		echo "FAIL: $VIO_TEST/migrated: query-migrate says '${st:-no answer}': ${info:-}"
	fi
fi
qmp "$tmp/a.qmp" quit >/dev/null 2>&1
wait_pid_timeout "$src" 20
[ $? -ne 124 ] || stop_pid "$src" 5
for p in "$dst:a-dst" "$gb:b"; do
	wait_pid_timeout "${p%%:*}" 300
	rc=$?
	[ $rc -ne 124 ] || stop_pid "${p%%:*}" 5
	report_viotest "$VIO_TEST/${p#*:}" <"$tmp/${p#*:}.out"
	if [ $rc -ne 0 ]; then
		echo "FAIL: $VIO_TEST/${p#*:}/boot: boot_guest.sh exited $rc"
		sed 's/^/# /' "$tmp/${p#*:}.err" | tail -n 30
	fi
done
# What A said on the source before it moved.
tr -d '\r' <"$tmp/a.console" | grep -a '^VIOTEST FAIL' | sed "s|^VIOTEST FAIL |FAIL: $VIO_TEST/a-source/|"
grep -a 'dirty log' "$log" | head -n 3 | sed 's/^/# viod: /'
expect_alive "$VIO_TEST" "$v" viod "$log" && expect_clean_exit "$VIO_TEST" "$v" viod "$log"
echo "# $VIO_TEST: took $((SECONDS - t0)) s"
