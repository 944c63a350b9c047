#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# DPDK both ways, packets counted on both sides.
#   virtio-user -> viod: one testpmd with two net_virtio_user ports on two
#     viod ports, io forwarding after "start tx_first 32", so frames circle
#     through the switch; split, packed (packed_vq=1), in_order=1, and
#     mergeable buffers off (mrg_rxbuf=0). testpmd's TX count per port must
#     equal what viod took from that port, and what viod delivered to a
#     port must cover what testpmd received there (at most a ring ahead).
#   vio's frontend -> DPDK's vhost PMD: testpmd with two net_vhost ports in
#     io forwarding; vio-bench net sends a counted run on one and receives
#     it on the other (split, packed, mergeable off, 9000-byte frames):
#     vio-bench and testpmd must both count every frame; and a ping-pong
#     through a net_vhost port in macswap mode.
# Prints PASS/FAIL/SKIP lines; bounded; ends its processes by PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=dpdk-net
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=dpdk_lib.sh
. "$here/dpdk_lib.sh"

need_testpmd || exit 0
build=$root/${VIO_BUILD:-build}
viod=$build/src/daemon/viod
bench=$build/tools/vio-bench/vio-bench
for b in "$viod" "$bench"; do
	[ -x "$b" ] || { echo "FAIL: $VIO_TEST/setup: $b is not built"; exit 1; }
done
tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }

# counter LOG SOCK NAME: NAME's value in the last stats line viod printed for SOCK.
counter() {
	local line
	line=$(grep -a "viod: info: $2: port " "$1" | tail -n 1)
	sed -nE "s/.* $3=([0-9]+).*/\1/p" <<<"$line" | grep . || echo 0
}

# ---- DPDK's virtio-user driving viod -------------------------------------
# virtio_user NAME DEVARGS: devargs are appended to each net_virtio_user port.
virtio_user() {
	local name=$1 dev=$2 log=$tmp/$1.viod.log a=$tmp/$1-a.sock b=$tmp/$1-b.sock v ok=1
	local tx0 tx1 rx0 rx1 vtx0 vtx1 vrx0 vrx1
	track_file "$a"; track_file "$b"
	start_bg "$viod" --net "sock=$a" --net "sock=$b" >"$log" 2>&1
	v=$VIO_LAST_PID
	if ! wait_for_socket "$a" 10 "$v" || ! wait_for_socket "$b" 10 "$v"; then
		echo "FAIL: $VIO_TEST/virtio-user/$name/start: viod made no sockets"
		show_log viod "$log"
		return
	fi
	if ! testpmd_start "vu-$name" '0@0,1@1' --vdev "net_virtio_user0,path=$a$dev" \
		--vdev "net_virtio_user1,path=$b$dev" -- --forward-mode=io; then
		echo "FAIL: $VIO_TEST/virtio-user/$name/testpmd: testpmd did not start"
		stop_pid "$v"
		return
	fi
	testpmd_do "vu-$name" "start tx_first 32" || ok=0
	sleep 2
	testpmd_do "vu-$name" stop "Accumulated forward statistics" || ok=0
	# viod has had every buffer testpmd queued before it stopped: now count.
	sleep 0.5
	kill -USR1 "$v"
	sleep 0.5
	tx0=$(testpmd_stat "vu-$name" 0 TX-packets) tx1=$(testpmd_stat "vu-$name" 1 TX-packets)
	rx0=$(testpmd_stat "vu-$name" 0 RX-packets) rx1=$(testpmd_stat "vu-$name" 1 RX-packets)
	vtx0=$(counter "$log" "$a" tx_packets) vtx1=$(counter "$log" "$b" tx_packets)
	vrx0=$(counter "$log" "$a" rx_packets) vrx1=$(counter "$log" "$b" rx_packets)
	echo "# virtio-user/$name: testpmd tx $tx0/$tx1 rx $rx0/$rx1; viod took $vtx0/$vtx1 delivered $vrx0/$vrx1"
	if [ $ok -eq 1 ] && [ "$tx0" -gt 1000 ] && [ "$tx1" -gt 1000 ] &&
		[ "$tx0" = "$vtx0" ] && [ "$tx1" = "$vtx1" ] &&
		[ "$vrx0" -ge "$rx0" ] && [ $((vrx0 - rx0)) -le 1024 ] &&
		[ "$vrx1" -ge "$rx1" ] && [ $((vrx1 - rx1)) -le 1024 ] && [ "$rx0" -gt 1000 ]; then
		echo "PASS: $VIO_TEST/virtio-user/$name"
	else
		echo "FAIL: $VIO_TEST/virtio-user/$name: counts disagree (or too few frames moved)"
		grep -a "port " "$log" | tail -n 2 | sed 's/^/#   /'
		tail -n 30 "${TP_LOGS[vu-$name]}" | sed 's/^/#   testpmd: /'
	fi
	testpmd_quit "vu-$name"
	expect_clean_exit "$VIO_TEST/virtio-user/$name" "$v" viod "$log"
}

virtio_user split ""
virtio_user packed ",packed_vq=1"
virtio_user in-order ",in_order=1"
virtio_user packed-in-order ",packed_vq=1,in_order=1"
virtio_user mrg-off ",mrg_rxbuf=0"
virtio_user packed-mrg-off ",packed_vq=1,mrg_rxbuf=0"

# ---- vio's frontend driving DPDK's vhost PMD ------------------------------
s0=$tmp/vhost0.sock s1=$tmp/vhost1.sock
if testpmd_start vhost '0@0,1@1' --vdev "net_vhost0,iface=$s0" --vdev "net_vhost1,iface=$s1" \
	-- --forward-mode=io --max-pkt-len=9600; then
	testpmd_do vhost start
	total=0 psent=0 pback=0
	# counted NAME COUNT ARGS...: COUNT frames vio -> vhost0 -> io -> vhost1 -> vio.
	counted() {
		local name=$1 count=$2 out rc line
		shift 2
		# DPDK's vhost PMD sets a new connection up (and tears the last one
		# down) in the background and drops frames meanwhile: probe first.
		sleep 1
		out=$(with_timeout 90 "$bench" net --socket "$s0" --rx-socket "$s1" --count "$count" \
			--ready-ms 5000 --seconds 60 --machine "$@" 2>&1)
		rc=$?
		line=$(grep '^mode=' <<<"$out" | tail -n 1)
		if [ $rc -eq 0 ] && grep -q " sent=$count received=$count " <<<"$line"; then
			echo "PASS: $VIO_TEST/vhost-pmd/$name"
			total=$((total + count))
			psent=$((psent + $(sed -nE 's/.* probes_sent=([0-9]+).*/\1/p' <<<"$line")))
			pback=$((pback + $(sed -nE 's/.* probes_back=([0-9]+).*/\1/p' <<<"$line")))
		else
			echo "FAIL: $VIO_TEST/vhost-pmd/$name: vio-bench net $* exited $rc: $line"
			sed 's/^/#   /' <<<"$out" | tail -n 5
		fi
	}
	counted jumbo 3000 --size 9000
	counted split 30000 --size 64
	counted packed 30000 --size 64 --packed
	counted mrg-off 30000 --size 256 --no-mrg
	testpmd_do vhost stop "Accumulated forward statistics"
	rx0=$(testpmd_stat vhost 0 RX-packets) tx1=$(testpmd_stat vhost 1 TX-packets)
	# testpmd took every frame and probe vio-bench sent; it delivered every
	# counted frame and at least the probes that came back.
	if [ "$rx0" = "$((total + psent))" ] && [ "$tx1" -ge "$((total + pback))" ] &&
		[ "$tx1" -le "$((total + psent))" ]; then
		echo "PASS: $VIO_TEST/vhost-pmd/testpmd-counted"
		echo "# testpmd received $rx0 and sent $tx1: $total counted frames, $psent probes ($pback back)"
	else
		echo "FAIL: $VIO_TEST/vhost-pmd/testpmd-counted: testpmd received $rx0 and sent $tx1, vio-bench moved $total (+ $psent probes, $pback back)"
	fi
	testpmd_quit vhost
else
	echo "FAIL: $VIO_TEST/vhost-pmd/testpmd: testpmd did not start"
fi

s2=$tmp/vhost2.sock
if testpmd_start macswap '0@0,1@1' --vdev "net_vhost0,iface=$s2" -- --forward-mode=macswap; then
	testpmd_do macswap start
	out=$(with_timeout 60 "$bench" net --socket "$s2" --mode pingpong --count 500 --seconds 30 \
		--machine 2>&1)
	rc=$?
	line=$(grep '^mode=' <<<"$out" | tail -n 1)
	if [ $rc -eq 0 ] && grep -q " received=500 " <<<"$line"; then
		echo "PASS: $VIO_TEST/vhost-pmd/pingpong"
		echo "# pingpong: $line"
	else
		echo "FAIL: $VIO_TEST/vhost-pmd/pingpong: exited $rc: $line"
		sed 's/^/#   /' <<<"$out" | tail -n 5
	fi
	testpmd_quit macswap
else
	echo "FAIL: $VIO_TEST/vhost-pmd/macswap: testpmd did not start"
fi
