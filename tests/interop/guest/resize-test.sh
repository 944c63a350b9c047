#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the test guest while the host resizes its disk with vioctl:
# checks the size it boots with (vio.size sectors), writes a pattern at the
# start, says "VIOTEST INFO ready-grow" and waits (bounded) for
# /sys/block/D/size to become vio.grow sectors (the kernel learns it from a
# config-change interrupt, nothing here rereads the disk), then writes and
# reads back past the old end; says "ready-shrink", waits for vio.shrink
# sectors, and checks the pattern at the start is intact. Touches nothing
# but the one virtio disk.

. /guest/common.sh

SIZE=$(param vio.size 0)
GROW=$(param vio.grow 0)
SHRINK=$(param vio.shrink 0)
WAIT=$(param vio.wait 120)

# wait_size N: true once the disk has N sectors, polling for WAIT seconds.
wait_size() {
	local i=0
	while [ $i -lt $((WAIT * 5)) ]; do
		[ "$(cat /sys/block/$D/size)" = "$1" ] && return 0
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

got=$(cat /sys/block/$D/size)
if [ "$got" = "$SIZE" ]; then
	pass boot-size
else
	fail boot-size "the disk has $got sectors, want $SIZE"
	finish
fi
dd if=/dev/urandom of=$P/head bs=65536 count=1 2>/dev/null
HEAD=$(sum <$P/head)
run write-head wr 0 65536 <$P/head

info "ready-grow"
if wait_size "$GROW"; then
	pass grown
	info "$(dmesg | grep -a 'capacity change' | tail -n 1)"
else
	fail grown "/sys/block/$D/size is $(cat /sys/block/$D/size) after $WAIT s, want $GROW"
	finish
fi
# The new end is usable: the last 64 KiB, past the old end, written and read back.
END=$((GROW * 512 - 65536))
dd if=/dev/urandom of=$P/tail bs=65536 count=1 2>/dev/null
if wr $END 65536 <$P/tail 2>$P/err && [ "$(rd $END 65536 | sum)" = "$(sum <$P/tail)" ]; then
	pass io-past-old-end
else
	fail io-past-old-end "$(tail -n 1 $P/err)"
fi

info "ready-shrink"
if wait_size "$SHRINK"; then
	pass shrunk
else
	fail shrunk "/sys/block/$D/size is $(cat /sys/block/$D/size) after $WAIT s, want $SHRINK"
fi
[ "$(rd 0 65536 | sum)" = "$HEAD" ] && pass data-kept || fail data-kept "the first 64 KiB changed"
finish
