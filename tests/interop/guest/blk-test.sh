#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the test guest (busybox sh, started by /init): loads the virtio
# block modules, then checks the one virtio disk against what the kernel
# command line says it should be (vio.size=SECTORS vio.queues=N, optional
# vio.discard=0 vio.disk=vdX). Prints "VIOTEST PASS name", "VIOTEST FAIL
# name: reason" or "VIOTEST SKIP name: reason" per check, then "VIOTEST DONE",
# then powers the guest off. It must never touch a disk other than that one.

. /guest/common.sh
Q=/sys/block/$D/queue
VDEV=$(basename "$(readlink /sys/block/$D/device)")
info "disk=$D virtio=$VDEV features=$(cat /sys/block/$D/device/features 2>/dev/null)"
info "lbs=$(cat $Q/logical_block_size) pbs=$(cat $Q/physical_block_size)" \
	"write_cache=$(cat $Q/write_cache) ro=$(cat /sys/block/$D/ro)" \
	"max_segments=$(cat $Q/max_segments) max_hw_kb=$(cat $Q/max_hw_sectors_kb)" \
	"discard_max=$(cat $Q/discard_max_bytes) wzeroes_max=$(cat $Q/write_zeroes_max_bytes)"

SECTORS=$(cat /sys/block/$D/size)
want=$(param vio.size "")
if [ -z "$want" ]; then
	fail size "vio.size= missing from the kernel command line (disk has $SECTORS)"
elif [ "$SECTORS" = "$want" ]; then
	pass size
else
	fail size "disk has $SECTORS sectors, expected $want"
fi

NQ=$(ls -d /sys/block/$D/mq/*/ 2>/dev/null | wc -l)
NCPU=$(nproc)
want=$(param vio.queues "")
if [ -z "$want" ]; then
	fail queues "vio.queues= missing from the kernel command line (disk has $NQ)"
else
	# virtio_blk uses at most one request queue per CPU.
	exp=$want
	[ "$exp" -gt "$NCPU" ] && exp=$NCPU
	if [ "$NQ" -eq "$exp" ]; then
		pass queues
	else
		fail queues "disk has $NQ queues, expected $exp (vio.queues=$want, $NCPU CPUs)"
	fi
fi

BYTES=$((SECTORS * 512))
MIB=1048576
if [ $BYTES -lt $((16 * MIB)) ]; then
	fail io "disk of $BYTES bytes is too small for the I/O checks (need 16 MiB)"
	finish
fi

# ---- O_DIRECT pattern I/O ------------------------------------------------
dd if=/dev/urandom of=$P/pat bs=65536 count=16 2>/dev/null
PAT=$(sum <$P/pat)
dd if=$P/pat of=$P/pat64k bs=65536 count=1 2>/dev/null
PAT64K=$(sum <$P/pat64k)
TAIL=$((BYTES - MIB))

w0=$(stat_field 5)
# Head: 256 page-sized writes. Tail: one 1 MiB write that the block layer
# splits to the device's limits, ending on the last sector. Middle: 128
# one-sector writes. Each write is one system call, so one request or more.
ok=1
wr 0 4096 <$P/pat 2>$P/out || ok=0
wr $TAIL $MIB <$P/pat 2>>$P/out || ok=0
wr $((2 * MIB)) 512 <$P/pat64k 2>>$P/out || ok=0
w1=$(stat_field 5)
if [ $ok -eq 1 ]; then
	pass odirect-write
else
	fail odirect-write "$(grep -v wrote $P/out | tail -n 1)"
fi
if [ $((w1 - w0)) -ge $((256 + 128 + 1)) ]; then
	pass odirect-reached-device
else
	fail odirect-reached-device "only $((w1 - w0)) write requests completed, expected >= 385"
fi

drop_caches
bad=""
[ "$(rd 0 $MIB | sum)" = "$PAT" ] || bad="$bad head"
[ "$(rd $TAIL $MIB | sum)" = "$PAT" ] || bad="$bad tail(last sector)"
[ "$(rd $((2 * MIB)) 65536 | sum)" = "$PAT64K" ] || bad="$bad middle(512-byte writes)"
# Buffered read through the page cache must see the same bytes.
[ "$(dd if=/dev/$D bs=65536 count=16 2>/dev/null | sum)" = "$PAT" ] || bad="$bad buffered-head"
if [ -z "$bad" ]; then
	pass odirect-readback
else
	fail odirect-readback "checksum mismatch in:$bad"
fi

# ---- every request queue carries I/O -------------------------------------
c=0
while [ $c -lt $NCPU ]; do
	taskset "$(printf '%x' $((1 << c)))" \
		odirect read /dev/$D 0 262144 4096 >/dev/null
	c=$((c + 1))
done
# virtio_blk names its MSI-X vectors "<virtioN>-req.<queue>".
if grep -q "$VDEV-req\.0\$" /proc/interrupts; then
	bad=""
	q=0
	while [ $q -lt $NQ ]; do
		n=$(awk -v name="$VDEV-req.$q" '$NF == name {
			s = 0
			for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i
			print s }' /proc/interrupts)
		info "queue $q: ${n:-no} interrupts, cpus $(cat /sys/block/$D/mq/$q/cpu_list)"
		[ "${n:-0}" -gt 0 ] || bad="$bad $q"
		q=$((q + 1))
	done
	if [ -z "$bad" ]; then
		pass mq-io
	else
		fail mq-io "no completion interrupt on queue(s):$bad"
	fi
else
	skip mq-io "no per-queue MSI-X vectors ($VDEV-req.N): cannot tell queues apart"
fi

# ---- discard, write zeroes, flush ----------------------------------------
if [ "$(param vio.discard 1)" = 0 ]; then
	skip discard "vio.discard=0"
elif [ "$(cat $Q/discard_max_bytes)" -eq 0 ]; then
	fail discard "the disk does not offer discard (discard_max_bytes=0)"
else
	d0=$(stat_field 12)
	if run discard blkdiscard -o $((4 * MIB)) -l $MIB /dev/$D; then
		d1=$(stat_field 12)
		if [ "$d0" -ge 0 ] && [ "$d1" -le "$d0" ]; then
			fail discard-reached-device "discard I/O count stayed at $d0"
		else
			pass discard-reached-device
		fi
	fi
fi

# util-linux's blkdiscard -z is BLKZEROOUT: the device's WRITE_ZEROES when
# offered, else the kernel writes zero pages; the region must read as zeroes.
# Named by path: busybox sh prefers its own applet, which lacks -z.
if [ -x /sbin/blkdiscard ] && /sbin/blkdiscard -h 2>&1 | grep -q -- '--zeroout'; then
	wr $((6 * MIB)) 65536 <$P/pat 2>/dev/null
	dd if=/dev/zero of=$P/zero bs=65536 count=16 2>/dev/null
	ZERO=$(sum <$P/zero)
	if run write-zeroes /sbin/blkdiscard -z -o $((6 * MIB)) -l $MIB /dev/$D; then
		drop_caches
		if [ "$(rd $((6 * MIB)) $MIB | sum)" = "$ZERO" ]; then
			pass write-zeroes-readback
		else
			fail write-zeroes-readback "region not zero after BLKZEROOUT"
		fi
	fi
else
	skip write-zeroes "no util-linux blkdiscard (-z) in the guest"
fi

# A device offering CONFIG_WCE may start in writethrough mode; switching it
# to writeback through virtio_blk's cache_type writes the config space, and
# then the kernel sends flushes, which the next check wants to see.
if [ "$(cat $Q/write_cache)" != "write back" ] &&
	[ "$(cut -c12 /sys/block/$D/device/features)" = 1 ]; then
	echo "write back" >/sys/block/$D/cache_type 2>$P/out
	if [ "$(cat $Q/write_cache)" = "write back" ]; then
		pass wce-writeback
	else
		fail wce-writeback "config wce write ignored: still '$(cat $Q/write_cache)'"
	fi
fi
f0=$(stat_field 16)
if run flush-fsync dd if=$P/pat64k of=/dev/$D bs=65536 seek=128 conv=notrunc,fsync; then
	f1=$(stat_field 16)
	if [ "$(cat $Q/write_cache)" != "write back" ]; then
		skip flush-reached-device "write_cache is '$(cat $Q/write_cache)': the kernel sends no flush"
	elif [ "$f0" -lt 0 ]; then
		skip flush-reached-device "this kernel does not count flushes"
	elif [ "$f1" -gt "$f0" ]; then
		pass flush-reached-device
	else
		fail flush-reached-device "flush count stayed at $f0 after fsync"
	fi
fi
run flush-blockdev blockdev --flushbufs /dev/$D

# ---- a filesystem --------------------------------------------------------
if [ -x /sbin/mke2fs ]; then
	FS=ext4
	run mkfs mkfs.ext4 -F -q -L viotest /dev/$D || finish
else
	FS=ext2
	run mkfs mke2fs -F /dev/$D || finish
fi
run mount mount -t $FS /dev/$D /mnt || finish
ok=1
i=1
while [ $i -le 12 ]; do
	dd if=/dev/urandom of=/mnt/f$i bs=1024 count=$((i * 37 + i % 3)) 2>/dev/null || ok=0
	i=$((i + 1))
done
mkdir -p /mnt/dir/sub || ok=0
dd if=/dev/urandom of=/mnt/dir/sub/big bs=$MIB count=8 2>/dev/null || ok=0
: >/mnt/dir/direct
odirect write /mnt/dir/direct 0 65536 <$P/pat 2>/dev/null || ok=0
echo "vio" >/mnt/dir/small || ok=0
(cd /mnt && find . -type f | sort | xargs sha256sum) >$P/sums || ok=0
sync
if [ $ok -eq 1 ]; then pass fs-write; else fail fs-write "writing files on $FS failed"; fi
run umount umount /mnt
if [ -x /sbin/e2fsck ]; then
	run fsck e2fsck -fn /dev/$D
fi
drop_caches
run remount mount -t $FS /dev/$D /mnt || finish
if (cd /mnt && sha256sum -c $P/sums) >$P/out 2>&1 && [ "$(wc -l <$P/sums)" -eq 15 ]; then
	pass fs-readback
else
	fail fs-readback "$(grep -v ': OK' $P/out | head -n 1)"
fi
if [ "$(odirect read /mnt/dir/direct 0 $MIB 65536 | sum)" = "$PAT" ]; then
	pass fs-odirect-readback
else
	fail fs-odirect-readback "O_DIRECT read of an O_DIRECT-written file differs"
fi
rm -f /mnt/dir/sub/big
sync
if [ "$(param vio.discard 1)" = 0 ] || [ "$(cat $Q/discard_max_bytes)" -eq 0 ]; then
	skip fstrim "no discard"
else
	run fstrim fstrim /mnt
fi
run umount-final umount /mnt

finish
