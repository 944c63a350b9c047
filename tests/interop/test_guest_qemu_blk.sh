#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Self-test of the Linux-guest harness with QEMU's own virtio-blk-pci on a
# raw file, so that a viod run differs only in the -device line. Also proves
# the harness notices a wrong disk and a hung guest. Prints "PASS: x",
# "FAIL: x: why" and "SKIP: x: why" lines. Bounded: every boot has a
# deadline, every process started here is ended by PID, every file removed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
VIO_TEST=guest-qemu-blk
# shellcheck source=lib.sh
. "$here/lib.sh"

need_guest_tools || exit 0

tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
disk=$tmp/disk.raw
size_mib=64
truncate -s ${size_mib}M "$disk" || { echo "FAIL: $VIO_TEST/setup: truncate"; exit 1; }
sectors=$((size_mib * 2048))

# guest OUT ERR BOOT_GUEST_ARGS...: runs boot_guest.sh in the background
# (so the EXIT trap can end it by PID), bounded by its own deadline plus a
# margin. Returns boot_guest's status.
guest() {
	local out=$1 err=$2 pid rc
	shift 2
	start_bg "$here/boot_guest.sh" "$@" >"$out" 2>"$err"
	pid=$VIO_LAST_PID
	wait_pid_timeout "$pid" 300
	rc=$?
	if [ $rc -eq 124 ]; then
		echo "boot_guest.sh overran its own deadline" >>"$err"
		stop_pid "$pid" 5
	fi
	return $rc
}

drive=(-drive "file=$disk,format=raw,if=none,id=d0,discard=unmap,werror=report,rerror=report")

# 1. The full guest test against QEMU's virtio-blk with two request queues.
t0=$SECONDS
guest "$tmp/ok.out" "$tmp/ok.err" --append "vio.size=$sectors vio.queues=2" -- \
	"${drive[@]}" -device virtio-blk-pci,drive=d0,num-queues=2
rc=$?
report_viotest "$VIO_TEST" <"$tmp/ok.out"
if [ $rc -ne 0 ]; then
	echo "FAIL: $VIO_TEST/boot: boot_guest.sh exited $rc"
	sed 's/^/# /' "$tmp/ok.err" | tail -n 80
fi
echo "# $VIO_TEST: one guest run took $((SECONDS - t0)) s"

# 2. A disk that is not what the command line says must fail the size and
# queue checks (the harness can fail), and the guest must still finish.
guest "$tmp/bad.out" "$tmp/bad.err" \
	--append "vio.size=$((sectors + 8)) vio.queues=2 vio.discard=0" -- \
	"${drive[@]}" -device virtio-blk-pci,drive=d0,num-queues=1
rc=$?
if [ $rc -ne 0 ] && grep -q '^VIOTEST FAIL size: ' "$tmp/bad.out" &&
	grep -q '^VIOTEST FAIL queues: ' "$tmp/bad.out" &&
	grep -q '^VIOTEST DONE' "$tmp/bad.out"; then
	echo "PASS: $VIO_TEST/harness-detects-wrong-disk"
else
	echo "FAIL: $VIO_TEST/harness-detects-wrong-disk: exit $rc, lines:"
	sed 's/^/# /' "$tmp/bad.out" "$tmp/bad.err" | tail -n 60
fi

# 3. A guest that does not finish in time is killed and reported.
guest "$tmp/hang.out" "$tmp/hang.err" --timeout 3 --append "vio.size=$sectors vio.queues=1" -- \
	"${drive[@]}" -device virtio-blk-pci,drive=d0
rc=$?
qpid=$(sed -n 's/^boot_guest: QEMU pid \([0-9]*\)$/\1/p' "$tmp/hang.err")
if [ $rc -ne 0 ] && grep -q '^VIOTEST FAIL boot: guest still running' "$tmp/hang.out" &&
	[ -n "$qpid" ] && ! pid_alive "$qpid"; then
	echo "PASS: $VIO_TEST/harness-kills-hung-guest"
else
	echo "FAIL: $VIO_TEST/harness-kills-hung-guest: exit $rc, qemu pid '${qpid}'"
	sed 's/^/# /' "$tmp/hang.out" "$tmp/hang.err" | tail -n 30
fi
