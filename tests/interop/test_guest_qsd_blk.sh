#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Linux-guest harness over vhost-user-blk with qemu-storage-daemon as the
# backend: the exact QEMU command line viod's guest test will use (shared
# memfd memory, -chardev socket + vhost-user-blk-pci, two queues), proven
# with a reference backend. Prints PASS/FAIL/SKIP lines. Bounded; ends every
# process it started by PID and removes its socket and temp dir.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
VIO_TEST=guest-qsd-blk
# shellcheck source=lib.sh
. "$here/lib.sh"

need_guest_tools || exit 0
need qemu-storage-daemon qemu-system-common || exit 0

tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
disk=$tmp/disk.raw
sock=$tmp/blk.sock
track_file "$sock"
truncate -s 64M "$disk" || { echo "FAIL: $VIO_TEST/setup: truncate"; exit 1; }
sectors=$((64 * 2048))

qsd_export="type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=$sock"
qsd_export+=",writable=on,num-queues=2"
start_bg qemu-storage-daemon \
	--blockdev "driver=file,node-name=file0,filename=$disk,discard=unmap" \
	--blockdev "driver=raw,node-name=disk0,file=file0,discard=unmap" \
	--export "$qsd_export" \
	>"$tmp/qsd.log" 2>&1
qsd=$VIO_LAST_PID
if ! wait_for_socket "$sock" 10 "$qsd"; then
	echo "FAIL: $VIO_TEST/backend: qemu-storage-daemon made no socket in 10 s"
	sed 's/^/# /' "$tmp/qsd.log" | tail -n 20
	exit 1
fi

guest_on_vhost_user "$VIO_TEST" "$sock" "$sectors" qsd "$tmp/qsd.log"
expect_alive "$VIO_TEST" "$qsd" qemu-storage-daemon "$tmp/qsd.log"
