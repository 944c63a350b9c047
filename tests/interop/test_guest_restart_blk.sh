#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Restart without losing a write: a QEMU TCG guest rewrites and verifies a
# pattern (guest/restart-test.sh) on a vhost-user-blk-pci disk (two queues,
# -chardev socket,...,reconnect=1) while its backend is SIGKILLed twice
# mid-write and restarted on the same socket and image. viod-client turns
# the roles around: QEMU listens (server=on) and viod connects (,client),
# and reconnects when restarted. Passes only if the
# guest logged no I/O error, every block read back as last written, no
# write failed and QEMU ran on through both restarts. Runs against viod
# (its inflight region carries the requests across) and, when installed,
# against qemu-storage-daemon as the reference backend, which proves the
# test itself can pass. Bounded; ends every process it started by PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=guest-restart-blk
# shellcheck source=lib.sh
. "$here/lib.sh"

need_guest_tools || exit 0
viod=$root/${VIO_BUILD:-build}/src/daemon/viod
if [ ! -x "$viod" ]; then
	echo "FAIL: $VIO_TEST/setup: $viod is not built"
	exit 1
fi

tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
size_mib=16
sectors=$((size_mib * 2048))
KILLS=2

# Backend starters: start_NAME SOCK DISK LOG; leave the PID in VIO_LAST_PID.
start_viod() {
	local spec="sock=$1,file=$2,queues=2"
	[ "$direct" = 1 ] && spec+=",direct"
	start_bg "$viod" --blk "$spec" >>"$3" 2>&1
}

# Client mode: QEMU listens, viod connects (and reconnects when restarted).
start_viod-client() {
	local spec="sock=$1,file=$2,queues=2,client"
	[ "$direct" = 1 ] && spec+=",direct"
	start_bg "$viod" --blk "$spec" >>"$3" 2>&1
}

start_qsd() {
	start_bg qemu-storage-daemon \
		--blockdev "driver=file,node-name=file0,filename=$2" \
		--blockdev "driver=raw,node-name=disk0,file=file0" \
		--export "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=$1,writable=on,num-queues=2" \
		>>"$3" 2>&1
}

# Slow the backends' disk writes (cgroup v1 blkio throttle on the image's
# device, where this machine allows it), so that a kill finds many requests
# in flight, completing out of order, rather than the one or none a fast
# disk leaves a slow TCG guest. Without it the test still runs, with fewer.
cg=
setup_throttle() {
	local dev base=/sys/fs/cgroup/blkio
	[ "$direct" = 1 ] && [ -w "$base" ] || return 0
	dev=$(stat -c '%d' "$tmp") || return 0
	dev="$((dev >> 8)):$((dev & 255))"
	cg=$base/vio-restart-$$
	if mkdir "$cg" 2>/dev/null &&
		echo "$dev ${VIO_RESTART_IOPS:-400}" >"$cg/blkio.throttle.write_iops_device" 2>/dev/null; then
		echo "# $VIO_TEST: backend writes throttled to ${VIO_RESTART_IOPS:-400}/s on $dev"
	else
		[ -d "$cg" ] && rmdir "$cg"
		cg=
	fi
}
throttle() {
	[ -z "$cg" ] || echo "$1" >"$cg/cgroup.procs" 2>/dev/null || true
}
cleanup_throttle() {
	[ -z "$cg" ] || rmdir "$cg" 2>/dev/null || true
}

# wait_console FILE PATTERN SECS PID: until FILE has a line matching
# PATTERN; gives up after SECS or when PID (QEMU) is gone.
wait_console() {
	local deadline=$((SECONDS + $3))
	until tr -d '\r' <"$1" | grep -aq "$2"; do
		[ $SECONDS -lt $deadline ] || return 1
		pid_alive "$4" || return 1
		sleep 0.2
	done
}

# last_pass FILE: the number of the last "pass N" the guest announced.
last_pass() {
	tr -d '\r' <"$1" | grep -ao 'VIOTEST INFO pass [0-9]*' | tail -n 1 | awk '{print $4}'
}

# run_restart NAME: the guest on backend NAME (start_NAME; NAME-packed: the
# same with a packed ring), killed KILLS times.
run_restart() {
	local name=${1%-packed} pfx=$VIO_TEST/$1 sock=$tmp/$1.sock disk=$tmp/$1.raw log=$tmp/$1.log
	local con=$tmp/$1.console bpid= qpid boot rc k p want t0=$SECONDS dev=num-queues=2
	local client=0 chardev="socket,id=c0,path=$sock,reconnect=1"
	[ "$name" = "$1" ] || dev+=",packed=on"
	[ "$name" = viod-client ] && client=1 chardev="socket,id=c0,path=$sock,server=on,wait=off"
	truncate -s ${size_mib}M "$disk" || { echo "FAIL: $pfx/setup: truncate"; return; }
	track_file "$sock"
	: >"$log"
	: >"$con"
	if [ $client = 0 ]; then
		"start_$name" "$sock" "$disk" "$log"
		bpid=$VIO_LAST_PID
		throttle "$bpid"
		if ! wait_for_socket "$sock" 10 "$bpid"; then
			echo "FAIL: $pfx/backend: $name made no socket in 10 s"
			show_log "$name" "$log"
			stop_pid "$bpid" 5
			return
		fi
	fi
	start_bg "$here/boot_guest.sh" --test restart --timeout 300 --log "$con" \
		--append "vio.size=$sectors vio.queues=2" -- \
		-chardev "$chardev" \
		-device "vhost-user-blk-pci,chardev=c0,$dev" \
		>"$tmp/$1.out" 2>"$tmp/$1.err"
	boot=$VIO_LAST_PID
	if [ $client = 1 ]; then
		# QEMU listens; viod connects once the socket is there (it retries until then).
		"start_$name" "$sock" "$disk" "$log"
		bpid=$VIO_LAST_PID
		throttle "$bpid"
	fi
	for ((k = 0; k < 50; k++)); do
		qpid=$(sed -n 's/^boot_guest: QEMU pid \([0-9]*\)$/\1/p' "$tmp/$1.err")
		[ -n "$qpid" ] && break
		sleep 0.2
	done
	if [ -z "$qpid" ]; then
		echo "FAIL: $pfx/boot: QEMU did not start"
		sed 's/^/# /' "$tmp/$1.err" | tail -n 20
		stop_pid "$boot" 5
		stop_pid "$bpid" 5
		return
	fi
	want=2
	for ((k = 1; k <= KILLS; k++)); do
		# Kill in the middle of a pass that began while this backend served.
		if ! wait_console "$con" "VIOTEST INFO pass $want\$" 240 "$qpid"; then
			echo "FAIL: $pfx/kill-$k: the guest never reached pass $want"
			break
		fi
		sleep 0.$((RANDOM % 5 + 3))
		kill -KILL "$bpid"
		{ wait_pid_timeout "$bpid" 10; } 2>/dev/null # no "Killed" notice
		[ $client = 1 ] || rm -f "$sock" # a client's socket is QEMU's
		"start_$name" "$sock" "$disk" "$log"
		bpid=$VIO_LAST_PID
		throttle "$bpid"
		if [ $client = 0 ] && ! wait_for_socket "$sock" 10 "$bpid"; then
			echo "FAIL: $pfx/restart-$k: $name made no socket in 10 s"
			show_log "$name" "$log"
			break
		fi
		p=$(last_pass "$con")
		echo "# $pfx: killed and restarted $name during pass ${p:-?}"
		if tr -d '\r' <"$con" | grep -aq 'VIOTEST INFO writes done'; then
			echo "FAIL: $pfx/kill-$k: the guest had finished writing (test too short)"
			break
		fi
		want=$((${p:-0} + 1))
		if pid_alive "$qpid"; then
			echo "PASS: $pfx/qemu-survived-kill-$k"
		else
			echo "FAIL: $pfx/qemu-survived-kill-$k: QEMU exited"
			break
		fi
	done
	wait_pid_timeout "$boot" 320
	rc=$?
	[ $rc -ne 124 ] || stop_pid "$boot" 5
	report_viotest "$pfx" <"$tmp/$1.out"
	if [ $rc -ne 0 ]; then
		echo "FAIL: $pfx/boot: boot_guest.sh exited $rc"
		sed 's/^/# /' "$tmp/$1.err" | tail -n 40
		show_log "$name" "$log"
	fi
	# The guest checks dmesg itself; the console shows what it printed meanwhile.
	if tr -d '\r' <"$con" | grep -aqE 'I/O error|Input/output error'; then
		echo "FAIL: $pfx/console-no-io-errors: $(tr -d '\r' <"$con" | grep -aE 'I/O error|Input/output error' | head -n 1)"
	else
		echo "PASS: $pfx/console-no-io-errors"
	fi
	grep -a 'resubmitting' "$log" | sed "s/^/# $name: /"
	expect_alive "$pfx" "$bpid" "$name" "$log" && expect_clean_exit "$pfx" "$bpid" "$name" "$log"
	echo "# $pfx: took $((SECONDS - t0)) s"
}

# viod on the image with O_DIRECT where the filesystem allows it (io_uring's path).
direct=0
probe=$tmp/probe.raw
truncate -s 1M "$probe"
dd if=/dev/zero of="$probe" bs=4096 count=1 oflag=direct conv=notrunc status=none 2>/dev/null &&
	direct=1
rm -f "$probe"

setup_throttle
# VIO_RESTART_BACKENDS picks the runs (default: viod split and packed, viod
# in client mode, qsd).
for b in ${VIO_RESTART_BACKENDS:-viod viod-packed viod-client qsd}; do
	if [ "$b" = qsd ] && ! command -v qemu-storage-daemon >/dev/null 2>&1; then
		echo "SKIP: $VIO_TEST/qsd: qemu-storage-daemon not found (Debian package qemu-system-common)"
		continue
	fi
	run_restart "$b"
done
cleanup_throttle
