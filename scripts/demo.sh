#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: the virtqueue benchmark, then a RAM disk served by viod and
# driven by vio's own vhost-user frontend (vio-bench blk), no VM needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/tools/vio-bench/vio-bench

echo "== vio-bench ring: one queue, driver thread vs device thread =="
"$bin" ring --runs 3

viod=build/src/daemon/viod
if [ -x "$viod" ]; then
	echo
	echo "== viod serving a 256 MiB RAM disk, driven by vio-bench blk over vhost-user =="
	dir=$(mktemp -d)
	"$viod" --rpc "$dir/viod-rpc.sock" --blk "sock=$dir/blk.sock,ram=256M,queues=1" &
	pid=$!
	trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
	for _ in $(seq 100); do [ -S "$dir/blk.sock" ] && break; sleep 0.05; done
	"$bin" blk --socket "$dir/blk.sock" --rw randrw --bs 4k --iodepth 32 --seconds 3 --verify
	echo
	echo "== the same disk as viod's management API sees it (vioctl stats) =="
	build/tools/vioctl/vioctl --rpc "$dir/viod-rpc.sock" stats
fi
