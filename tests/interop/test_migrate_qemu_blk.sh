#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Live migration of a guest whose disk viod serves: one viod serves one raw
# image on two sockets (two devices, both ',shared'); QEMU TCG "source" boots
# the test guest on the first socket, a second QEMU with the same command
# line plus -incoming waits on the second. While the guest rewrites and
# verifies its pattern (guest/restart-test.sh), QMP `migrate` moves it; the
# guest finishes on the destination. Passes only if the migration completed,
# the guest logged no I/O error and read every block back as last written,
# and viod survived. Prints the migration's total time and downtime (from
# query-migrate). Also checks that without ',shared' the second device on the
# image is refused with a message naming the file. Bounded; ends every
# process it started by PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=migrate-qemu-blk
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
size_mib=16
sectors=$((size_mib * 2048))
disk=$tmp/disk.raw
truncate -s ${size_mib}M "$disk" || { echo "FAIL: $VIO_TEST/setup: truncate"; exit 1; }

# ---- the image lock: a second exclusive device on the image is refused, by name
log=$tmp/lock.log
with_timeout 20 "$viod" --blk "sock=$tmp/l1.sock,file=$disk" --blk "sock=$tmp/l2.sock,file=$disk" \
	>"$log" 2>&1
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "$disk.*locked" "$log"; then
	echo "PASS: $VIO_TEST/image-lock (second exclusive device refused: $(grep -m1 -o 'another device.*locked' "$log"))"
else
	echo "FAIL: $VIO_TEST/image-lock: viod exited $rc; it should refuse a second device on $disk"
	show_log viod "$log"
fi
rm -f "$tmp/l1.sock" "$tmp/l2.sock"

# wait_console FILE PATTERN SECS PID: until FILE has a line matching PATTERN.
wait_console() {
	local deadline=$((SECONDS + $3))
	until tr -d '\r' <"$1" | grep -aq "$2"; do
		[ $SECONDS -lt $deadline ] || return 1
		pid_alive "$4" || return 1
		sleep 0.2
	done
}

# qemu_pid ERRFILE: the QEMU pid boot_guest.sh announced.
qemu_pid() {
	local k p
	for ((k = 0; k < 100; k++)); do
		p=$(sed -n 's/^boot_guest: QEMU pid \([0-9]*\)$/\1/p' "$1")
		[ -n "$p" ] && { echo "$p"; return 0; }
		sleep 0.2
	done
	return 1
}

# run_migrate NAME DEVICE-OPTS: one migration with the disk device given these options.
run_migrate() {
	local name=$1 devopt=$2 pfx=$VIO_TEST/$1 t0=$SECONDS
	local s1=$tmp/$1-src.sock s2=$tmp/$1-dst.sock vlog=$tmp/$1-viod.log
	local q1=$tmp/$1-src.qmp q2=$tmp/$1-dst.qmp mig=$tmp/$1-mig.sock
	local con1=$tmp/$1-src.console con2=$tmp/$1-dst.console
	local v src dst spid dpid st info k rc
	local guest=(--test restart --timeout 400 --mem 192M --append "vio.size=$sectors vio.queues=2 vio.passes=10")
	track_file "$s1"
	track_file "$s2"
	: >"$con1"
	: >"$con2"
	start_bg "$viod" --blk "sock=$s1,file=$disk,queues=2,shared,name=src" \
		--blk "sock=$s2,file=$disk,queues=2,shared,name=dst" >"$vlog" 2>&1
	v=$VIO_LAST_PID
	if ! wait_for_socket "$s1" 10 "$v" || ! wait_for_socket "$s2" 10 "$v"; then
		echo "FAIL: $pfx/backend: viod made no sockets in 10 s"
		show_log viod "$vlog"
		stop_pid "$v" 5
		return
	fi
	echo "PASS: $pfx/shared-image (one image served on two sockets)"
	start_bg "$here/boot_guest.sh" "${guest[@]}" --log "$con1" -- \
		-chardev "socket,id=c0,path=$s1" -device "vhost-user-blk-pci,chardev=c0,$devopt" \
		-qmp "unix:$q1,server=on,wait=off" >"$tmp/$1-src.out" 2>"$tmp/$1-src.err"
	src=$VIO_LAST_PID
	start_bg "$here/boot_guest.sh" "${guest[@]}" --log "$con2" -- \
		-chardev "socket,id=c0,path=$s2" -device "vhost-user-blk-pci,chardev=c0,$devopt" \
		-qmp "unix:$q2,server=on,wait=off" -incoming "unix:$mig" \
		>"$tmp/$1-dst.out" 2>"$tmp/$1-dst.err"
	dst=$VIO_LAST_PID
	if ! spid=$(qemu_pid "$tmp/$1-src.err") || ! dpid=$(qemu_pid "$tmp/$1-dst.err"); then
		echo "FAIL: $pfx/boot: a QEMU did not start"
		sed 's/^/# /' "$tmp/$1-src.err" "$tmp/$1-dst.err" | tail -n 30
		stop_pid "$src" 5
		stop_pid "$dst" 5
		stop_pid "$v" 5
		return
	fi
	# Migrate in the middle of the writes: once pass 2 has begun.
	if ! wait_console "$con1" "VIOTEST INFO pass 2\$" 240 "$spid"; then
		echo "FAIL: $pfx/writing: the guest never reached pass 2 on the source"
		tr -d '\r' <"$con1" | tail -n 20 | sed 's/^/# /'
		stop_pid "$src" 5
		stop_pid "$dst" 5
		stop_pid "$v" 5
		return
	fi
	sleep 0.$((RANDOM % 5 + 3))
	qmp "$q1" migrate-set-parameters '{"max-bandwidth": 4294967296}' >/dev/null
	if ! qmp "$q1" migrate "{\"uri\": \"unix:$mig\"}" >/dev/null 2>"$tmp/$1-qmp.err"; then
		echo "FAIL: $pfx/migrate: QMP migrate refused: $(cat "$tmp/$1-qmp.err")"
	fi
	st=
	for ((k = 0; k < 600; k++)); do
		info=$(qmp "$q1" query-migrate 2>/dev/null) || break
		st=$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("status",""))' <<<"$info")
		case "$st" in completed|failed|cancelled) break ;; esac
		sleep 0.2
	done
	if [ "$st" = completed ]; then
		python3 -c 'import json,sys
m = json.load(sys.stdin)
r = m.get("ram", {})
print("PASS: %s/migrated (total %s ms, downtime %s ms, setup %s ms, %.1f MiB of RAM sent)" % (
    sys.argv[1], m.get("total-time"), m.get("downtime"), m.get("setup-time"),
    r.get("transferred", 0) / 1048576.0))' "$pfx" <<<"$info"
		grep -a 'writes done' "$con1" >/dev/null &&
			echo "FAIL: $pfx/mid-write: the guest had finished writing before the switch-over"
	else
		echo "FAIL: $pfx/migrated: query-migrate says '${st:-no answer}': ${info:-}"
		qmp "$q1" query-migrate 2>&1 | sed 's/^/# /'
	fi
	# The source is left in postmigrate: it needs quit.
	qmp "$q1" quit >/dev/null 2>&1
	wait_pid_timeout "$src" 20
	[ $? -ne 124 ] || stop_pid "$src" 5
	wait_pid_timeout "$dst" 420
	rc=$?
	[ $rc -ne 124 ] || stop_pid "$dst" 5
	echo "# $pfx: the source ran up to $(tr -d '\r' <"$con1" | grep -ao 'pass [0-9]*' | tail -n 1); the destination went on"
	report_viotest "$pfx" <"$tmp/$1-dst.out"
	if [ $rc -ne 0 ]; then
		echo "FAIL: $pfx/destination: boot_guest.sh exited $rc"
		sed 's/^/# /' "$tmp/$1-dst.err" | tail -n 40
		show_log viod "$vlog"
	fi
	if cat "$con1" "$con2" | tr -d '\r' | grep -aqE 'I/O error|Input/output error'; then
		echo "FAIL: $pfx/console-no-io-errors: $(cat "$con1" "$con2" | tr -d '\r' | grep -aE 'I/O error|Input/output error' | head -n 1)"
	else
		echo "PASS: $pfx/console-no-io-errors"
	fi
	grep -a 'dirty log' "$vlog" | head -n 4 | sed 's/^/# viod: /'
	expect_alive "$pfx" "$v" viod "$vlog" && expect_clean_exit "$pfx" "$v" viod "$vlog"
	echo "# $pfx: took $((SECONDS - t0)) s"
}

# VIO_MIGRATE_RUNS picks the runs (default: split and packed rings).
for r in ${VIO_MIGRATE_RUNS:-split packed}; do
	case "$r" in
	split) run_migrate split num-queues=2 ;;
	packed) run_migrate packed num-queues=2,packed=on ;;
	esac
done
