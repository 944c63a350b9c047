#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Two real Linux guests on viod's switch: QEMU TCG, virtio-net-pci on
# -netdev vhost-user with 2 queue pairs each, on two viod ports. Each guest
# (guest/net-test.sh) configures its address, pings the other, fetches a
# file the other serves and compares checksums. Three runs:
#   split:   split rings, full offloads; a third port is a tap viod opens,
#            moved into a network namespace this test creates; guest A
#            pings an address inside that namespace.
#   packed:  packed rings; guest B takes no checksum/TSO offloads, so the
#            switch completes checksums and segments A's TSO frames for it.
#   restart: viod killed (SIGKILL) once both guests have pinged, started
#            again on the same sockets; QEMU reconnects, the switch relearns,
#            the guests see their link drop and come back, then ping and
#            transfer again.
# Traffic never leaves the machine: guest to guest stays inside viod, the
# tap lives in a namespace of its own. Prints PASS/FAIL/SKIP lines; bounded;
# ends every process it started by PID, removes its namespace and files.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=guest-viod-net
# shellcheck source=lib.sh
. "$here/lib.sh"

need_guest_tools || exit 0
need ip iproute2 || exit 0
viod=$root/${VIO_BUILD:-build}/src/daemon/viod
if [ ! -x "$viod" ]; then
	echo "FAIL: $VIO_TEST/setup: $viod is not built"
	exit 1
fi
tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
NET=10.77.0
MAC_A=52:54:00:77:00:01
MAC_B=52:54:00:77:00:02

# boot_net_guest TAG SOCK MAC APPEND [DEVICE-OPTIONS]: one guest in the
# background (PID in VIO_LAST_PID), console kept in $tmp/TAG.console.
boot_net_guest() {
	local tag=$1 sock=$2 mac=$3 append=$4 devopts=${5:-}
	start_bg "$here/boot_guest.sh" --test net --timeout 300 --log "$tmp/$tag.console" \
		--append "vio.queues=2 $append" -- \
		-chardev "socket,id=n0,path=$sock,reconnect=1" \
		-netdev "vhost-user,id=net0,chardev=n0,queues=2" \
		-device "virtio-net-pci,netdev=net0,mac=$mac,mq=on,vectors=0$devopts" \
		>"$tmp/$tag.out" 2>"$tmp/$tag.err"
}

# start_viod LOG ARGS...: viod in the background, waiting for its sockets.
start_viod() {
	local log=$1 s
	shift
	start_bg "$viod" "$@" >>"$log" 2>&1
	v=$VIO_LAST_PID
	for s in "$sock_a" "$sock_b"; do
		wait_for_socket "$s" 10 "$v" || return 1
	done
}

# wait_console TAG TEXT SECS: true once the guest's console shows TEXT.
wait_console() {
	local deadline=$((SECONDS + $3))
	while [ $SECONDS -lt $deadline ]; do
		grep -aq "$2" "$tmp/$1.console" 2>/dev/null && return 0
		sleep 0.5
	done
	return 1
}

# run NAME RESTART TAP DEVOPTS-A DEVOPTS-B
run() {
	local name=$1 restart=$2 tap=$3 da=$4 db=$5 log=$tmp/$1.viod.log args ns="" ifn="" ga gb
	local rc_a rc_b tap_append=""
	local t0=$SECONDS
	sock_a=$tmp/$name-a.sock sock_b=$tmp/$name-b.sock
	track_file "$sock_a"
	track_file "$sock_b"
	args=(--net "sock=$sock_a,queues=2" --net "sock=$sock_b,queues=2")
	if [ "$tap" = 1 ]; then
		ns=vio-net-$$
		ifn=viot$$
		if ! mk_netns "$ns"; then
			echo "SKIP: $VIO_TEST/$name/tap: cannot create a network namespace (ip netns add)"
			tap=0
		else
			args+=(--tap "ifname=$ifn")
		fi
	fi
	if ! start_viod "$log" "${args[@]}"; then
		echo "FAIL: $VIO_TEST/$name/backend: viod made no sockets in 10 s"
		show_log viod "$log"
		return
	fi
	if [ "$tap" = 1 ]; then
		# The tap exists while viod holds it; move it away before giving it an address.
		if ip link set "$ifn" netns "$ns" &&
			ip netns exec "$ns" ip addr add "$NET.3/24" dev "$ifn" &&
			ip netns exec "$ns" ip link set "$ifn" up; then
			tap_append="vio.tap=$NET.3"
		else
			echo "FAIL: $VIO_TEST/$name/tap-setup: could not move $ifn into $ns"
		fi
	fi
	boot_net_guest "$name-a" "$sock_a" "$MAC_A" \
		"vio.ip=$NET.1 vio.peer=$NET.2 vio.restart=$restart $tap_append" "$da"
	ga=$VIO_LAST_PID
	boot_net_guest "$name-b" "$sock_b" "$MAC_B" \
		"vio.ip=$NET.2 vio.peer=$NET.1 vio.restart=$restart" "$db"
	gb=$VIO_LAST_PID

	if [ "$restart" = 1 ]; then
		if wait_console "$name-a" phase1-done 240 && wait_console "$name-b" phase1-done 60; then
			kill -KILL "$v"
			wait "$v" 2>/dev/null
			echo "# $VIO_TEST/$name: viod killed at $((SECONDS - t0)) s, restarting it"
			sleep 1
			if start_viod "$log" "${args[@]}"; then
				echo "PASS: $VIO_TEST/$name/viod-restarted"
			else
				echo "FAIL: $VIO_TEST/$name/viod-restarted: no sockets 10 s after restart"
				show_log viod "$log"
			fi
		else
			echo "FAIL: $VIO_TEST/$name/phase1: the guests never reported their first pings"
		fi
	fi

	wait_pid_timeout "$ga" 360
	rc_a=$?
	[ $rc_a -ne 124 ] || stop_pid "$ga" 5
	wait_pid_timeout "$gb" 60
	rc_b=$?
	[ $rc_b -ne 124 ] || stop_pid "$gb" 5
	report_viotest "$VIO_TEST/$name/a" <"$tmp/$name-a.out"
	report_viotest "$VIO_TEST/$name/b" <"$tmp/$name-b.out"
	for g in a:$rc_a b:$rc_b; do
		if [ "${g#*:}" -ne 0 ]; then
			echo "FAIL: $VIO_TEST/$name/${g%%:*}/boot: boot_guest.sh exited ${g#*:}"
			sed 's/^/# /' "$tmp/$name-${g%%:*}.err" | tail -n 40
		fi
	done
	if expect_alive "$VIO_TEST/$name" "$v" viod "$log"; then
		kill -USR1 "$v"
		sleep 0.5
		grep -a '^viod: port ' "$log" | tail -n "$((2 + tap))" | sed "s/^/# $name: /"
		expect_clean_exit "$VIO_TEST/$name" "$v" viod "$log"
	fi
	[ -z "$ns" ] || { ip netns del "$ns" 2>/dev/null; }
	echo "# $VIO_TEST/$name: took $((SECONDS - t0)) s"
}

run split 0 1 "" ""
run packed 0 0 ",packed=on" ",packed=on,guest_csum=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off"
run restart 1 0 "" ""
