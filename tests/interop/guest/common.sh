#!/bin/sh
# SPDX-License-Identifier: MIT
# Sourced by every guest test (guest/NAME-test.sh, busybox sh): the
# VIOTEST reporting helpers, kernel command line parameters, O_DIRECT
# wrappers, then the virtio block modules loaded and the one virtio disk
# found ($D). Prints "VIOTEST PASS name", "VIOTEST FAIL name: reason" or
# "VIOTEST SKIP name: reason" per check; finish prints "VIOTEST DONE" and
# powers the guest off. It must never touch a disk other than that one.

P=/tmp/vio
mkdir -p $P /mnt
FAILED=0

pass() { echo "VIOTEST PASS $1"; }
fail() { echo "VIOTEST FAIL $1: $2"; FAILED=1; }
skip() { echo "VIOTEST SKIP $1: $2"; }
info() { echo "VIOTEST INFO $*"; }

finish() {
	if [ $FAILED -ne 0 ]; then
		dmesg | tail -n 40 | sed 's/^/VIOLOG /'
	fi
	echo "VIOTEST DONE"
	sync
	poweroff -f
	sleep 10
	exit 1
}

# param NAME DEFAULT: the value of NAME= on the kernel command line.
param() {
	local w
	for w in $(cat /proc/cmdline); do
		case "$w" in "$1="*) echo "${w#*=}"; return 0 ;; esac
	done
	echo "$2"
}

# run NAME CMD...: PASS if CMD exits 0, else FAIL with its last output line.
run() {
	local name=$1 rc
	shift
	"$@" >$P/out 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		pass "$name"
		return 0
	fi
	fail "$name" "$* exited $rc: $(tail -n 1 $P/out)"
	return 1
}

# stat_field N: field N (1-based) of the disk's /sys/block/X/stat: 5 write
# I/Os, 12 discard I/Os, 16 flush I/Os.
stat_field() {
	awk -v n="$1" '{ print (NF >= n) ? $n : -1 }' /sys/block/$D/stat
}

sum() { sha256sum | cut -d' ' -f1; }

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# wr OFFSET BS < data: O_DIRECT write of stdin, one request per BS bytes.
wr() { odirect write /dev/$D "$1" "$2"; }

# rd OFFSET LEN [BS]: O_DIRECT read of a region to stdout.
rd() { odirect read /dev/$D "$1" "$2" "${3:-65536}"; }

# ---- modules -------------------------------------------------------------
for m in $(cat /etc/vio/blk.modules); do
	if ! insmod /lib/modules/$m.ko >$P/out 2>&1; then
		fail modules "insmod $m: $(tail -n 1 $P/out)"
		finish
	fi
done
pass modules

# ---- the disk ------------------------------------------------------------
D=$(param vio.disk "")
i=0
while [ $i -lt 100 ]; do
	if [ -z "$D" ]; then
		for b in /sys/block/vd*; do
			[ -e "$b" ] && D=${b##*/} && break
		done
	fi
	[ -n "$D" ] && [ -b /dev/$D ] && break
	sleep 0.1
	i=$((i + 1))
done
if [ -z "$D" ] || [ ! -b /dev/$D ]; then
	fail disk "no virtio disk appeared in 10 s ($(ls /sys/block | tr '\n' ' '))"
	finish
fi
pass disk
