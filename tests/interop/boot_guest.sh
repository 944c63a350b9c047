#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Boots the test guest (Debian's kernel + the busybox initramfs of
# mkinitramfs.sh) under QEMU TCG with the disk arguments the caller gives,
# kills QEMU by PID if it has not powered off in time, and prints the
# guest's VIOTEST lines. Exits 0 only if the guest said DONE and no FAIL.
# It must never leave QEMU running nor kill anything it did not start.
#
# Usage: boot_guest.sh [options] -- QEMU-ARGS-FOR-THE-DISK...
#   --append STR   kernel parameters for the guest test (vio.size=SECTORS
#                  vio.queues=N ...)
#   --test NAME    guest test script guest/NAME-test.sh (default blk)
#   --timeout S    seconds before QEMU is killed (default 180)
#   --mem SIZE     guest memory, shared memfd (default 256M)
#   --smp N        vCPUs (default 2: virtio_blk uses one queue per CPU)
#   --log FILE     keep the serial console log in FILE
# Environment: VIO_KERNEL (a vmlinuz; default the newest /boot/vmlinuz-*),
# VIO_CACHE (initramfs cache dir; default ${TMPDIR:-/tmp}/vio-initramfs),
# VIO_QEMU (default qemu-system-x86_64).
#
# Examples (a 64 MiB disk is vio.size=131072):
#   boot_guest.sh --append "vio.size=131072 vio.queues=2" -- \
#     -drive file=disk.raw,format=raw,if=none,id=d0,discard=unmap \
#     -device virtio-blk-pci,drive=d0,num-queues=2
#   boot_guest.sh --append "vio.size=131072 vio.queues=2" -- \
#     -chardev socket,id=c0,path=SOCK -device vhost-user-blk-pci,chardev=c0,num-queues=2
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
VIO_TEST=${VIO_TEST:-boot_guest}
# shellcheck source=lib.sh
. "$here/lib.sh"

append="" test=blk timeout=180 mem=256M smp=2 keep_log=""
while [ $# -gt 0 ]; do
	case "$1" in
	--append) append=$2; shift 2 ;;
	--test) test=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--log) keep_log=$2; shift 2 ;;
	--) shift; break ;;
	*) echo "boot_guest: unknown option $1" >&2; exit 2 ;;
	esac
done

qemu=${VIO_QEMU:-qemu-system-x86_64}
kernel=${VIO_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}
if [ -z "$kernel" ] || [ ! -r "$kernel" ]; then
	echo "VIOTEST FAIL boot: no readable kernel (/boot/vmlinuz-*, or set VIO_KERNEL)"
	exit 1
fi
kver=${kernel##*/vmlinuz-}

tmp=
mk_tmpdir tmp || exit 1
cache=${VIO_CACHE:-${TMPDIR:-/tmp}/vio-initramfs}
if ! initrd=$(VIO_KVER=$kver with_timeout 120 "$here/mkinitramfs.sh" "$cache" \
	2>"$tmp/mkinitramfs.err"); then
	echo "VIOTEST FAIL boot: mkinitramfs failed: $(tail -n 1 "$tmp/mkinitramfs.err")"
	exit 1
fi
log=${keep_log:-$tmp/console.log}
: >"$log"

# The memory is a shared memfd so that a vhost-user backend can map it; the
# same line serves QEMU's own devices, so only the disk arguments differ.
# shellcheck disable=SC2054 # commas belong to QEMU options
cmd=("$qemu" -accel tcg -nodefaults -no-user-config -nographic -no-reboot
	-smp "$smp" -m "$mem"
	-object "memory-backend-memfd,id=mem,size=$mem,share=on" -numa node,memdev=mem
	-kernel "$kernel" -initrd "$initrd"
	-append "console=ttyS0 panic=-1 quiet vio.test=$test $append"
	-serial "file:$log" "$@")
echo "boot_guest: ${cmd[*]}" >&2

start=$SECONDS
start_bg "${cmd[@]}" >"$tmp/qemu.out" 2>&1
qpid=$VIO_LAST_PID
echo "boot_guest: QEMU pid $qpid" >&2
wait_pid_timeout "$qpid" "$timeout"
qrc=$?
timed_out=0
if [ $qrc -eq 124 ]; then
	timed_out=1
	stop_pid "$qpid" 3
fi
echo "boot_guest: QEMU ran $((SECONDS - start)) s (exit $qrc)" >&2

# Serial lines end in \r\n; a kernel message may precede a VIOTEST on a line.
lines=$(tr -d '\r' <"$log" | grep -a -o 'VIOTEST .*')
[ -z "$lines" ] || echo "$lines"
rc=0
if [ $timed_out -eq 1 ]; then
	echo "VIOTEST FAIL boot: guest still running after $timeout s, QEMU killed"
	rc=1
elif ! grep -q '^VIOTEST DONE' <<<"$lines"; then
	echo "VIOTEST FAIL boot: QEMU exited $qrc before the guest said DONE"
	rc=1
fi
grep -q '^VIOTEST FAIL' <<<"$lines" && rc=1
if [ $rc -ne 0 ]; then
	{
		echo "boot_guest: QEMU output:"
		tail -n 20 "$tmp/qemu.out"
		echo "boot_guest: last console lines:"
		tr -d '\r' <"$log" | grep -av '^VIOTEST ' | tail -n 60
	} >&2
fi
exit $rc
