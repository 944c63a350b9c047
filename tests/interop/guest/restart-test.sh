#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the test guest while the host kills and restarts the disk's
# backend: W writers (vio.writers, default 6), each on its own region of
# vio.wmib MiB (default 2), rewrite their region with O_DIRECT, one system
# call per block (1 MiB blocks, which the block layer splits into several
# requests in flight at once, 64 KiB and 4 KiB blocks, by turns), with a new
# random pattern each pass, for vio.passes passes (default 8). Meanwhile two
# readers read the disk's last MiB (never written: zeros) in 64 KiB
# requests, so that reads overtake slower writes and requests complete out
# of order. Before each pass it prints "VIOTEST INFO pass N" so the host
# can time its kills. Then every block of every region must read back as
# the last pass wrote it, every read must have returned zeros, no request
# may have failed, and the kernel must have logged no I/O error. Touches
# nothing but the one virtio disk.

. /guest/common.sh

PASSES=$(param vio.passes 8)
WRITERS=$(param vio.writers 6)
WMIB=$(param vio.wmib 2)
MIB=1048576
BYTES=$(($(cat /sys/block/$D/size) * 512))
if [ $(((WRITERS * WMIB + 1) * MIB)) -gt $BYTES ]; then
	fail setup "$WRITERS writers of $WMIB MiB do not fit a disk of $BYTES bytes"
	finish
fi

# writer W PASS: rewrite region W with the pass's pattern, one MiB at a time.
writer() {
	local w=$1 p=$2 bs=1048576 m=0
	[ $((w % 3)) -eq 1 ] && bs=65536
	[ $((w % 3)) -eq 2 ] && bs=4096
	while [ $m -lt $WMIB ]; do
		wr $(((w * WMIB + m) * MIB)) $bs <$P/pat.$p 2>>$P/err.$w || return 1
		m=$((m + 1))
	done
}

# reader R: until the writers are done, read the last MiB; count what is not zeros.
dd if=/dev/zero of=$P/zero bs=65536 count=16 2>/dev/null
ZERO=$(sum <$P/zero)
reader() {
	local n=0 bad=0
	while [ ! -e $P/writes-done ]; do
		[ "$(rd $((BYTES - MIB)) $MIB | sum)" = "$ZERO" ] || bad=$((bad + 1))
		n=$((n + 1))
	done
	echo "$n $bad" >$P/reader.$1
}
reader 0 &
r0=$!
reader 1 &
r1=$!

p=1
werr=0
while [ $p -le $PASSES ]; do
	dd if=/dev/urandom of=$P/pat.$p bs=65536 count=16 2>/dev/null
	info "pass $p"
	pids=""
	w=0
	while [ $w -lt $WRITERS ]; do
		writer $w $p &
		pids="$pids $!"
		w=$((w + 1))
	done
	for pid in $pids; do
		wait $pid || werr=$((werr + 1))
	done
	[ $p -gt 1 ] && rm -f $P/pat.$((p - 1))
	p=$((p + 1))
done
last=$((p - 1))
touch $P/writes-done
wait $r0
wait $r1
info "writes done"
reads=0
rbad=0
for r in 0 1; do
	set -- $(cat $P/reader.$r 2>/dev/null || echo 0 1)
	reads=$((reads + $1))
	rbad=$((rbad + $2))
done
if [ $rbad -eq 0 ] && [ $reads -gt 0 ]; then
	pass restart-reads
else
	fail restart-reads "$rbad of $reads reads of the last MiB were not zeros"
fi
if [ $werr -eq 0 ]; then
	pass restart-writes
else
	fail restart-writes "$werr writer passes failed: $(cat $P/err.* | grep -v wrote | tail -n 1)"
fi

drop_caches
want=$(sum <$P/pat.$last)
bad=0
w=0
while [ $w -lt $WRITERS ]; do
	m=0
	while [ $m -lt $WMIB ]; do
		[ "$(rd $(((w * WMIB + m) * MIB)) $MIB | sum)" = "$want" ] || bad=$((bad + 1))
		m=$((m + 1))
	done
	w=$((w + 1))
done
if [ $bad -eq 0 ]; then
	pass restart-verify
else
	fail restart-verify "$bad of $((WRITERS * WMIB)) MiB differ from the last pass"
fi

n=$(dmesg | grep -c 'I/O error')
if [ "$n" -eq 0 ]; then
	pass restart-no-io-errors
else
	fail restart-no-io-errors "$n kernel I/O errors: $(dmesg | grep 'I/O error' | tail -n 1)"
fi
finish
