#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A real Linux guest (QEMU TCG, Debian's kernel, the busybox initramfs) on a
# file disk served by viod sees `vioctl resize` at once: viod tells QEMU
# with a config-change message over the backend request channel, QEMU
# interrupts the guest, and /sys/block/vda/size becomes the new size, first
# grown (and usable past the old end), then shrunk (guest/resize-test.sh).
# viod must answer guest_notified=true, survive and exit 0 on SIGTERM.
# Prints PASS/FAIL/SKIP lines; bounded; ends every process it started by PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=guest-viod-resize
# shellcheck source=lib.sh
. "$here/lib.sh"

need_guest_tools || exit 0
need python3 python3 || exit 0
viod=$root/${VIO_BUILD:-build}/src/daemon/viod
vioctl_bin=$root/${VIO_BUILD:-build}/tools/vioctl/vioctl
for b in "$viod" "$vioctl_bin"; do
	[ -x "$b" ] || { echo "FAIL: $VIO_TEST/setup: $b is not built"; exit 1; }
done
tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
sock=$tmp/vda.sock rpc=$tmp/rpc.sock log=$tmp/viod.log con=$tmp/console disk=$tmp/disk.raw
truncate -s 64M "$disk" || { echo "FAIL: $VIO_TEST/setup: truncate"; exit 1; }
: >"$con"

# wait_console FILE REGEX SECS PID: until the guest printed REGEX (PID alive).
wait_console() {
	local deadline=$((SECONDS + $3))
	until tr -d '\r' <"$1" | grep -aq "$2"; do
		[ $SECONDS -lt $deadline ] || return 1
		pid_alive "$4" || return 1
		sleep 0.2
	done
}
# resize SIZE NAME: vioctl resize; PASS NAME when viod notified the guest.
resize() {
	local out notified
	out=$(timeout 20 "$vioctl_bin" --rpc "$rpc" --json resize vda "$1" 2>&1)
	notified=$(python3 -c "import json,sys; print(json.load(sys.stdin).get('guest_notified'))" \
		<<<"$out" 2>/dev/null)
	if [ "$notified" = True ]; then
		echo "PASS: $VIO_TEST/$2"
	else
		echo "FAIL: $VIO_TEST/$2: vioctl resize vda $1 answered: $out"
	fi
}

start_bg "$viod" --rpc "$rpc" --blk "sock=$sock,file=$disk,name=vda,queues=2" >"$log" 2>&1
v=$VIO_LAST_PID
if ! wait_for_socket "$sock" 10 "$v" || ! wait_for_socket "$rpc" 10 "$v"; then
	echo "FAIL: $VIO_TEST/backend: viod made no sockets in 10 s"
	show_log viod "$log"
	exit 1
fi
t0=$SECONDS
start_bg "$here/boot_guest.sh" --test resize --timeout 400 --log "$con" \
	--append "vio.size=131072 vio.grow=196608 vio.shrink=98304 vio.queues=2" -- \
	-chardev "socket,id=c0,path=$sock" -device vhost-user-blk-pci,chardev=c0,num-queues=2 \
	>"$tmp/boot.out" 2>"$tmp/boot.err"
boot=$VIO_LAST_PID
if wait_console "$con" 'VIOTEST INFO ready-grow' 300 "$boot"; then
	resize 96M notified-grow
	if wait_console "$con" 'VIOTEST INFO ready-shrink' 200 "$boot"; then
		resize 48M notified-shrink
	else
		echo "FAIL: $VIO_TEST/notified-shrink: the guest never got ready to shrink"
	fi
else
	echo "FAIL: $VIO_TEST/notified-grow: the guest never got ready to grow"
fi
wait_pid_timeout "$boot" 400
rc=$?
[ $rc -ne 124 ] || stop_pid "$boot" 5
report_viotest "$VIO_TEST/guest" <"$tmp/boot.out"
if [ $rc -ne 0 ]; then
	echo "FAIL: $VIO_TEST/boot: boot_guest.sh exited $rc"
	sed 's/^/# /' "$tmp/boot.err" | tail -n 40
	show_log viod "$log"
fi
echo "# $VIO_TEST: the guest run took $((SECONDS - t0)) s"
size=$(stat -c %s "$disk")
[ "$size" = $((96 << 20)) ] && echo "PASS: $VIO_TEST/file-grew" ||
	echo "FAIL: $VIO_TEST/file-grew: the image is $size bytes, want $((96 << 20)) (grown, never truncated)"
expect_alive "$VIO_TEST" "$v" viod "$log" && expect_clean_exit "$VIO_TEST" "$v" viod "$log"
exit 0
