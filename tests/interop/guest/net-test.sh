#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside a test guest (busybox sh, started by /init) whose one NIC is a
# virtio-net device on a switch port; its peer guest runs the same script.
# Kernel command line: vio.ip=A.B.C.D vio.peer=A.B.C.D [vio.tap=A.B.C.D]
# [vio.queues=N] [vio.restart=1] [vio.blob=LINES] [vio.transfers=N].
# Loads the virtio-net
# modules, configures the address, checks the queue pairs, pings the peer
# (and the tap's namespace), then fetches a file the peer serves over HTTP
# and compares its checksum; with vio.restart=1 it first waits for the
# link to drop and come back (the host restarts the switch) and pings again.
# vio.transfers=N fetches the file N times (each checked), announcing
# "transfers" first: the host live-migrates the guest meanwhile.
# Prints "VIOTEST PASS|FAIL|SKIP name ..." lines, then "VIOTEST DONE", and
# powers off. Every wait is bounded. It only talks to the addresses given.

P=/tmp/vio
mkdir -p $P /www
FAILED=0

pass() { echo "VIOTEST PASS $1"; }
fail() { echo "VIOTEST FAIL $1: $2"; FAILED=1; }
info() { echo "VIOTEST INFO $*"; }

finish() {
	if [ $FAILED -ne 0 ]; then
		ip addr 2>&1 | sed 's/^/VIOLOG /'
		dmesg | tail -n 30 | sed 's/^/VIOLOG /'
	fi
	echo "VIOTEST DONE"
	sync
	poweroff -f
	sleep 10
	exit 1
}

param() {
	local w
	for w in $(cat /proc/cmdline); do
		case "$w" in "$1="*) echo "${w#*=}"; return 0 ;; esac
	done
	echo "$2"
}

IP=$(param vio.ip "")
PEER=$(param vio.peer "")
TAP=$(param vio.tap "")
WANTQ=$(param vio.queues 1)
RESTART=$(param vio.restart 0)
LINES=$(param vio.blob 400000)
TRANSFERS=$(param vio.transfers 1)
if [ -z "$IP" ] || [ -z "$PEER" ]; then
	fail params "vio.ip= and vio.peer= are required"
	finish
fi

# ---- modules and the interface --------------------------------------------
for m in $(cat /etc/vio/net.modules); do
	if ! insmod /lib/modules/$m.ko >$P/out 2>&1; then
		fail modules "insmod $m: $(tail -n 1 $P/out)"
		finish
	fi
done
pass modules

E=
i=0
while [ $i -lt 100 ]; do
	for n in /sys/class/net/*; do
		[ -e "$n/device" ] && E=${n##*/} && break
	done
	[ -n "$E" ] && break
	sleep 0.1
	i=$((i + 1))
done
if [ -z "$E" ]; then
	fail nic "no virtio NIC appeared in 10 s"
	finish
fi
pass nic
info "nic=$E mac=$(cat /sys/class/net/$E/address) features=$(cat /sys/class/net/$E/device/features)"

ip link set lo up
ip addr add "$IP/24" dev "$E"
ip link set "$E" up

# carrier N: wait up to N seconds for the link to be up.
carrier() {
	local i=0
	while [ $i -lt $(($1 * 10)) ]; do
		[ "$(cat /sys/class/net/$E/carrier 2>/dev/null)" = 1 ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
if carrier 20; then pass link-up; else fail link-up "no carrier after 20 s"; fi

NRX=$(ls -d /sys/class/net/$E/queues/rx-* | wc -l)
NTX=$(ls -d /sys/class/net/$E/queues/tx-* | wc -l)
exp=$WANTQ
[ "$exp" -gt "$(nproc)" ] && exp=$(nproc)
if [ "$NRX" -eq "$exp" ] && [ "$NTX" -eq "$exp" ]; then
	pass queue-pairs
else
	fail queue-pairs "$NRX rx / $NTX tx queues in use, expected $exp"
fi

# Serve the blob before anything else, so the peer finds it whenever it asks.
seq 1 "$LINES" >/www/blob
BLOB_SUM=$(sha256sum </www/blob | cut -d' ' -f1)
httpd -p 8080 -h /www
info "blob $(wc -c </www/blob) bytes"

# ping_until HOST SECS: true once HOST answers, trying for SECS seconds.
ping_until() {
	local t=0
	while [ $t -lt "$2" ]; do
		ping -c 1 -W 1 "$1" >$P/ping 2>&1 && return 0
		t=$((t + 1))
	done
	return 1
}

if ping_until "$PEER" 90; then
	pass ping-peer
	ping -c 5 -i 0.2 -W 2 "$PEER" >$P/ping 2>&1
	info "peer $(tail -n 2 $P/ping | tr '\n' ' ')"
else
	fail ping-peer "$PEER did not answer in 90 s: $(tail -n 1 $P/ping)"
fi

if [ -n "$TAP" ]; then
	if ping_until "$TAP" 20; then
		pass ping-tap
	else
		fail ping-tap "$TAP (the tap's namespace) did not answer in 20 s"
	fi
fi

if [ "$RESTART" = 1 ]; then
	# The host restarts the switch once both guests said this.
	down0=$(cat /sys/class/net/$E/carrier_down_count)
	info "phase1-done"
	t=0
	while [ $t -lt 1200 ] && [ "$(cat /sys/class/net/$E/carrier_down_count)" = "$down0" ]; do
		sleep 0.1
		t=$((t + 1))
	done
	if [ "$(cat /sys/class/net/$E/carrier_down_count)" = "$down0" ]; then
		fail link-dropped "the link never went down in 120 s (was the switch restarted?)"
	else
		pass link-dropped
		if carrier 60; then pass link-back; else fail link-back "no carrier 60 s later"; fi
		if ping_until "$PEER" 60; then
			pass ping-after-restart
		else
			fail ping-after-restart "$PEER did not answer within 60 s of the link coming back"
		fi
	fi
fi

# ---- a larger transfer, checksum compared ----------------------------------
[ "$TRANSFERS" -gt 1 ] && info "transfers $TRANSFERS"
n=1
while [ $n -le "$TRANSFERS" ]; do
	name=transfer
	[ "$TRANSFERS" -gt 1 ] && name=transfer-$n
	got=
	for try in 1 2 3; do
		if timeout 60 wget -q -O $P/got "http://$PEER:8080/blob" 2>$P/wget; then
			got=$(sha256sum <$P/got | cut -d' ' -f1)
			break
		fi
		sleep 1
	done
	if [ -z "$got" ]; then
		fail $name "wget from $PEER failed: $(tail -n 1 $P/wget)"
	elif [ "$got" = "$BLOB_SUM" ]; then
		pass $name
		info "fetched $(wc -c <$P/got) bytes, sha256 matches"
	else
		fail $name "sha256 $got differs from the blob's $BLOB_SUM ($(wc -c <$P/got) bytes)"
	fi
	n=$((n + 1))
done

# Power off only once the peer has its copy too: it says so by serving /fetched.
[ -n "$got" ] && : >/www/fetched
t=0
while [ $t -lt 60 ]; do
	timeout 3 wget -q -O $P/peer-fetched "http://$PEER:8080/fetched" 2>/dev/null && break
	sleep 1
	t=$((t + 1))
done
[ $t -lt 60 ] || info "the peer never reported its transfer (it fails on its own side)"
# Give the peer's last request time to see our /fetched before we vanish.
sleep 2
finish
