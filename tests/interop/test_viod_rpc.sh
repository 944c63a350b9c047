#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# viod's management API end to end (docs/rpc.md): every method through
# vioctl (list, create and delete of blk and net, stats with per-queue
# counters and the latency histogram, --json, stats --watch, --prometheus
# checked as exposition text, resize, qos, log, threads, version, help); an
# error object with the right code for each bad request; hostile clients
# (garbage, a huge line with no newline, a byte a second, 100 connections)
# while a front-end does verified I/O, which must keep going; the
# configuration file with command-line overrides and its error messages;
# the management socket's mode (--rpc-mode), its private default directory,
# and viod alone with the default socket taken.
# Prints PASS/FAIL/SKIP lines; bounded; ends its processes by PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=viod-rpc
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=frontend_lib.sh
. "$here/frontend_lib.sh"

viod=$root/${VIO_BUILD:-build}/src/daemon/viod
vioctl_bin=$root/${VIO_BUILD:-build}/tools/vioctl/vioctl
probe=$here/rpc_probe.py
for b in "$viod" "$vioctl_bin" "$bench_bin"; do
	[ -x "$b" ] || { echo "FAIL: $VIO_TEST/setup: $b is not built"; exit 1; }
done
need python3 python3 || exit 0
tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
rpc=$tmp/rpc.sock log=$tmp/viod.log

pass() { echo "PASS: $VIO_TEST/$1"; }
fail() {
	echo "FAIL: $VIO_TEST/$1: $2"
	[ -n "${3:-}" ] && sed 's/^/#   /' <<<"$3" | tail -n 8
}
vioctl() { with_timeout 20 "$vioctl_bin" --rpc "$rpc" "$@"; }
# jq-like: py EXPR reads JSON on stdin as `j` and prints EXPR.
py() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

# ---------------------------------------------------------------- config file
cat >"$tmp/viod.json" <<EOF
{
  "threads": 1,
  "log_level": "warning",
  "rpc_mode": "0640",
  "blk": ["sock=$tmp/cfg.sock,ram=16M,name=cfg"],
  "net": ["sock=$tmp/cfgnet.sock,name=cfgnet,pps=5000"]
}
EOF
start_bg "$viod" --config "$tmp/viod.json" --threads 2 --rpc "$rpc" --rpc-mode 0600 \
	--socket-mode 0660 --blk "sock=$tmp/b0.sock,ram=64M,name=b0,queues=2" \
	--net "sock=$tmp/n0.sock,name=n0" >"$log" 2>&1
v=$VIO_LAST_PID
if ! wait_for_socket "$rpc" 10 "$v"; then
	fail start "viod made no management socket in 10 s" "$(cat "$log")"
	exit 1
fi

names=$(vioctl --json list | py '" ".join(sorted(d["name"] for d in j["devices"]))')
if [ "$names" = "b0 cfg cfgnet n0" ]; then
	pass config/devices-from-file-and-flags
else
	fail config/devices-from-file-and-flags "devices '$names', want 'b0 cfg cfgnet n0'"
fi
nthreads=$(vioctl --json threads | py 'len(j["threads"])')
[ "$nthreads" = 2 ] && pass config/flag-overrides-file ||
	fail config/flag-overrides-file "threads $nthreads, want 2 (--threads over the file's 1)"
lvl=$(vioctl --json log | py 'j["level"]')
[ "$lvl" = warning ] && pass config/setting-from-file ||
	fail config/setting-from-file "log level '$lvl', want the file's warning"
modes=$(stat -c '%a' "$rpc" "$tmp/b0.sock" | tr '\n' ' ')
[ "$modes" = "600 660 " ] && pass rpc-mode-own ||
	fail rpc-mode-own "modes of rpc and vhost-user sockets '$modes', want '600 660' (--rpc-mode, --socket-mode)"
pps=$(vioctl --json list | py '[d for d in j["devices"] if d["name"]=="cfgnet"][0]["qos"]["pps"]')
[ "$pps" = 5000 ] && pass config/net-rate-limit || fail config/net-rate-limit "cfgnet pps '$pps', want 5000"

# Errors in the file name it and the line or the key.
cfg_err() { # NAME CONTENT WANT-REGEX
	local out rc
	printf '%s' "$2" >"$tmp/bad.json"
	out=$(with_timeout 10 "$viod" --config "$tmp/bad.json" --rpc none 2>&1)
	rc=$?
	if [ $rc -eq 2 ] && grep -Eq "$3" <<<"$out"; then
		pass "config/error-$1"
	else
		fail "config/error-$1" "exit $rc, want 2 and a message matching '$3'" "$out"
	fi
}
cfg_err syntax-line $'{\n  "threads": 2,\n  "blk": ["sock=/x,ram=1M"\n   "y"]\n}\n' "bad.json:4:[0-9]+: not valid JSON"
cfg_err unknown-key $'{"threads": 2, "treads": 1}' 'bad.json: unknown key "treads"'
cfg_err bad-type $'{"threads": "two"}' 'bad.json: "threads": expected a number'
cfg_err bad-device $'{"net": ["sock=/x,pps=fast"]}' "bad.json: net 'sock=/x,pps=fast': pps=fast"
cfg_err empty-file '' 'bad.json:1:1: not valid JSON'
out=$(with_timeout 10 "$viod" --config "$tmp/none.json" --rpc none 2>&1)
grep -q "none.json: No such file" <<<"$out" && pass config/error-no-file ||
	fail config/error-no-file "no message naming the missing file" "$out"

# ------------------------------------------------------------------ methods
ver=$(vioctl --json version | py 'j["version"]')
[ -n "$ver" ] && pass method/version || fail method/version "no version"
methods=$(vioctl --json list >/dev/null && python3 "$probe" send "$rpc" \
	'{"jsonrpc":"2.0","id":1,"method":"help"}\n' | py '" ".join(sorted(j["result"]["methods"]))')
want="create delete help list log prometheus qos resize stats threads version"
[ "$methods" = "$want" ] && pass method/help || fail method/help "methods '$methods', want '$want'"

out=$(vioctl list)
if grep -q '^NAME' <<<"$out" && grep -q '^b0 .*blk' <<<"$out" && grep -q '^n0 .*net' <<<"$out"; then
	pass vioctl/list-table
else
	fail vioctl/list-table "no table with b0 and n0" "$out"
fi

# create and delete, blk and net
if vioctl create blk "sock=$tmp/b1.sock,ram=8M,name=b1" >/dev/null &&
	vioctl create net "sock=$tmp/n1.sock,name=n1,queues=2" >/dev/null &&
	[ -S "$tmp/b1.sock" ] && [ -S "$tmp/n1.sock" ]; then
	pass method/create-blk-net
else
	fail method/create-blk-net "create failed or no socket" "$(tail -n 5 "$log")"
fi
bench_check created-blk-serves "$tmp/b1.sock" --rw randrw --verify --seconds 1
out=$(vioctl --json create blk "sock=$tmp/b9.sock,ram=8M,name=b1" 2>&1)
grep -q '"code":-32002' <<<"${out//[[:space:]]/}" && pass error/duplicate-name ||
	fail error/duplicate-name "want code -32002" "$out"
out=$(vioctl --json create net "sock=$tmp/n1.sock,name=other" 2>&1)
grep -q '"code":-32002' <<<"${out//[[:space:]]/}" && pass error/duplicate-socket ||
	fail error/duplicate-socket "want code -32002" "$out"
if vioctl delete b1 >/dev/null && vioctl delete n1 >/dev/null && [ ! -e "$tmp/b1.sock" ] &&
	! vioctl list | grep -q '^b1 '; then
	pass method/delete-blk-net
else
	fail method/delete-blk-net "still listed or socket left" "$(vioctl list 2>&1)"
fi
out=$(vioctl --json delete b1 2>&1)
grep -q '"code":-32001' <<<"${out//[[:space:]]/}" && pass error/delete-missing ||
	fail error/delete-missing "want code -32001" "$out"

# stats: per device, per queue, histogram
bench_check stats-load "$tmp/b0.sock" --rw randrw --queues 2 --seconds 1
sj=$(vioctl --json stats b0)
chk=$(py '(lambda d: "%d %d %d %d %d" % (d["blk"]["requests"], len(d["queues"]),
	sum(q["blk"]["requests"] for q in d["queues"]), sum(d["blk"]["latency_us_log2"]),
	min(q["blk"]["requests"] for q in d["queues"])))(j["devices"][0])' <<<"$sj")
read -r total nq qsum hist qmin <<<"$chk"
if [ "${total:-0}" -gt 0 ] && [ "$nq" = 2 ] && [ "$qsum" = "$total" ] && [ "$hist" = "$total" ] &&
	[ "${qmin:-0}" -gt 0 ]; then
	pass method/stats-per-queue-histogram
else
	fail method/stats-per-queue-histogram "requests=$total queues=$nq sum-of-queues=$qsum histogram=$hist min-queue=$qmin"
fi
out=$(with_timeout 30 timeout 3.5 "$vioctl_bin" --rpc "$rpc" stats b0 --watch 1 2>&1)
rc=$?
n=$(grep -c 'b0' <<<"$out")
[ $rc -eq 124 ] && [ "$n" -ge 2 ] && pass vioctl/stats-watch ||
	fail vioctl/stats-watch "exit $rc (want 124 from timeout), $n refreshes (want >= 2)" "$out"
vioctl stats --prometheus >"$tmp/prom.txt"
out=$(python3 "$probe" prom "$tmp/prom.txt")
if [ $? -eq 0 ] && grep -q 'viod_blk_latency_us_sum{device="b0"}' "$tmp/prom.txt"; then
	pass vioctl/prometheus-valid
	echo "# $VIO_TEST/prometheus: $out"
else
	fail vioctl/prometheus-valid "$out" "$(head -n 20 "$tmp/prom.txt")"
fi
sn=$(vioctl --json stats n0 | py 'j["devices"][0]["type"]')
[ "$sn" = net ] && pass method/stats-net || fail method/stats-net "stats n0 type '$sn'"

# resize
rz=$(vioctl --json resize b0 32M | py '"%s %s" % (j["size"], j["guest_notified"])')
if [ "$rz" = "33554432 False" ] && [ "$(vioctl --json list | py '[d for d in j["devices"] if d["name"]=="b0"][0]["size"]')" = 33554432 ]; then
	pass method/resize
else
	fail method/resize "answered '$rz' (want '33554432 False': nobody connected to notify) or list disagrees"
fi
out=$(vioctl --json resize b0 128M 2>&1)
grep -q '"code":-32003' <<<"${out//[[:space:]]/}" && pass error/resize-past-ram ||
	fail error/resize-past-ram "want -32003 for a RAM disk growing past its size" "$out"
out=$(vioctl --json resize n0 1G 2>&1)
grep -q '"code":-32602' <<<"${out//[[:space:]]/}" && pass error/resize-net ||
	fail error/resize-net "want -32602 for resizing a net port" "$out"

# qos and log
q=$(vioctl --json qos b0 iops=2000 bps=10M | py '"%d %d %d" % (j["qos"]["iops"], j["qos"]["iops_burst"], j["qos"]["bps"])')
[ "$q" = "2000 200 10485760" ] && pass method/qos-blk || fail method/qos-blk "qos '$q', want '2000 200 10485760'"
q=$(vioctl --json qos n0 pps=1000 bitrate=1M | py '"%d %d %d" % (j["qos"]["pps"], j["qos"]["pps_burst"], j["qos"]["bitrate"])')
[ "$q" = "1000 100 1048576" ] && pass method/qos-net || fail method/qos-net "qos '$q', want '1000 100 1048576'"
out=$(vioctl qos n0)
[ "$out" = "n0: 1000 frames/s (burst 100), 1048576 bit/s (burst 104857 bits)" ] && pass vioctl/qos-net-table ||
	fail vioctl/qos-net-table "vioctl qos n0 printed '$out'"
out=$(vioctl --json qos b0 pps=5 2>&1)
grep -q '"code":-32602' <<<"${out//[[:space:]]/}" && pass error/qos-unknown-field ||
	fail error/qos-unknown-field "want -32602" "$out"
vioctl qos b0 iops=0 bps=0 >/dev/null
vioctl qos n0 pps=0 bitrate=0 >/dev/null
l=$(vioctl --json log debug | py 'j["level"]')
l2=$(vioctl --json log | py 'j["level"]')
[ "$l" = debug ] && [ "$l2" = debug ] && pass method/log || fail method/log "level '$l' then '$l2'"
vioctl log info >/dev/null
out=$(vioctl --json log loud 2>&1)
grep -q '"code":-32602' <<<"${out//[[:space:]]/}" && pass error/log-level || fail error/log-level "want -32602" "$out"

# ------------------------------------------------------- bad requests, raw
err_case() { # NAME CODE TEXT
	local out
	out=$(python3 "$probe" error "$rpc" "$2" "$3")
	if [ $? -eq 0 ]; then pass "error/$1"; else fail "error/$1" "$out"; fi
}
err_case unknown-method -32601 '{"jsonrpc":"2.0","id":1,"method":"reboot"}\n'
err_case params-not-object -32602 '{"jsonrpc":"2.0","id":1,"method":"delete","params":"b0"}\n'
err_case params-array -32602 '{"jsonrpc":"2.0","id":1,"method":"delete","params":["b0"]}\n'
err_case name-wrong-type -32602 '{"jsonrpc":"2.0","id":1,"method":"delete","params":{"name":5}}\n'
err_case name-missing -32602 '{"jsonrpc":"2.0","id":1,"method":"delete","params":{}}\n'
err_case size-wrong-type -32602 '{"jsonrpc":"2.0","id":1,"method":"resize","params":{"name":"b0","size":true}}\n'
err_case size-negative -32602 '{"jsonrpc":"2.0","id":1,"method":"resize","params":{"name":"b0","size":-1}}\n'
err_case create-bad-type -32602 '{"jsonrpc":"2.0","id":1,"method":"create","params":{"type":"scsi","spec":"x"}}\n'
err_case create-bad-spec -32602 '{"jsonrpc":"2.0","id":1,"method":"create","params":{"type":"blk","spec":"sock=/x"}}\n'
err_case id-object -32600 '{"jsonrpc":"2.0","id":{},"method":"version"}\n'
err_case id-array -32600 '{"jsonrpc":"2.0","id":[1],"method":"version"}\n'
err_case id-bool -32600 '{"jsonrpc":"2.0","id":true,"method":"version"}\n'
err_case no-jsonrpc -32600 '{"id":1,"method":"version"}\n'
err_case method-number -32600 '{"jsonrpc":"2.0","id":1,"method":5}\n'
err_case not-an-object -32600 '42\n'
err_case empty-batch -32600 '[]\n'
err_case invalid-json -32700 '{"jsonrpc":"2.0",\n'
err_case two-values -32700 '{"jsonrpc":"2.0","id":1,"method":"version"} {}\n'
out=$(python3 "$probe" send "$rpc" '{"jsonrpc":"2.0","id":"a","method":"version"}\r\n')
grep -q '"id":"a"' <<<"$out" && grep -q '"result"' <<<"$out" && pass request/crlf ||
	fail request/crlf "a CRLF-ended request got '$out'"
out=$(python3 "$probe" send "$rpc" '[{"jsonrpc":"2.0","id":1,"method":"version"},{"jsonrpc":"2.0","id":2,"method":"nope"},{"jsonrpc":"2.0","method":"version"}]\n')
n=$(py 'len(j) if isinstance(j, list) and j[0]["id"] == 1 and j[1]["error"]["code"] == -32601 else -1' <<<"$out")
[ "$n" = 2 ] && pass request/batch || fail request/batch "batch answers '$out' (want 2: no answer to the notification)"

# ------------------------------------------- hostile clients under live I/O
start_bg "$bench_bin" blk --socket "$tmp/b0.sock" --rw randrw --verify --seconds 14 --machine \
	>"$tmp/bench.out" 2>&1
bp=$VIO_LAST_PID
sleep 1
# The table: a row per device, one per running queue.
out=$(vioctl stats b0)
grep -q '^b0 .*requests' <<<"$out" && grep -Eq '^  q0 +thread [0-9]+ kicks' <<<"$out" &&
	pass vioctl/stats-table || fail vioctl/stats-table "no device and queue rows for b0" "$out"
for c in "garbage" "huge 3" "slow 6" "many 100"; do
	# shellcheck disable=SC2086
	out=$(with_timeout 60 python3 "$probe" ${c%% *} "$rpc" ${c#"${c%% *}"} 2>&1)
	rc=$?
	name=hostile/${c%% *}
	if [ $rc -eq 0 ] && pid_alive "$v"; then pass "$name"; else fail "$name" "exit $rc, viod alive: $(pid_alive "$v" && echo yes || echo no)" "$out"; fi
done
# While a slow client holds a connection, others are answered at once.
start_bg python3 "$probe" slow "$rpc" 8 >/dev/null 2>&1
sp=$VIO_LAST_PID
sleep 1
t0=$(date +%s%N)
vioctl version >/dev/null
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
[ $ms -lt 2000 ] && pass hostile/others-answered-during-slow ||
	fail hostile/others-answered-during-slow "vioctl version took $ms ms"
wait_pid_timeout "$bp" 40
brc=$?
bline=$(grep -E '^iops=' "$tmp/bench.out" | tail -n 1)
iops=$(machine_field "$bline" iops)
errs=$(machine_field "$bline" errors)
verr=$(machine_field "$bline" verify_errors)
if [ $brc -eq 0 ] && [ "${iops%.*}" -gt 0 ] && [ "$errs" = 0 ] && [ "$verr" = 0 ]; then
	pass hostile/data-path-kept-going
	echo "# $VIO_TEST/hostile: $bline"
else
	fail hostile/data-path-kept-going "vio-bench exit $brc: $bline" "$(cat "$tmp/bench.out")"
fi
# The front-end's I/O was never stalled: its worst 1-in-1000 latency stays under a second.
p999=$(machine_field "$bline" p999_us)
[ -n "$p999" ] && [ "${p999%.*}" -lt 1000000 ] && pass hostile/no-stall ||
	fail hostile/no-stall "p999 ${p999:-?} us"
wait_pid_timeout "$sp" 20 >/dev/null
stop_pid "$sp" 1

# ------------------------------------------------------------ stop cleanly
stop_pid "$v" 10
rc=$?
[ $rc -eq 0 ] && [ ! -e "$rpc" ] && pass stop-clean ||
	fail stop-clean "viod exit $rc, rpc socket left: $([ -e "$rpc" ] && echo yes || echo no)" "$(tail -n 5 "$log")"

# ------------------------------------------- the default management socket
# Non-root default: /tmp/viod-UID/viod.sock in a 0700 directory, shared with vioctl.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	uid=65534
	as_user() { env -u XDG_RUNTIME_DIR setpriv --reuid=$uid --regid=$uid --clear-groups "$@"; }
	dir=/tmp/viod-$uid
	if [ -e "$dir" ]; then
		echo "SKIP: $VIO_TEST/default-dir: $dir exists already (not ours to remove)"
	elif ! as_user test -x "$viod"; then
		echo "SKIP: $VIO_TEST/default-dir: $viod is not executable by uid $uid"
	else
		track_file "$dir"
		start_bg env -u XDG_RUNTIME_DIR setpriv --reuid=$uid --regid=$uid --clear-groups \
			"$viod" --blk "sock=$tmp/nobody.sock,ram=8M" >"$tmp/nobody.log" 2>&1
		np=$VIO_LAST_PID
		chmod 0777 "$tmp"
		if wait_for_socket "$dir/viod.sock" 10 "$np" &&
			[ "$(stat -c '%a %u' "$dir")" = "700 $uid" ] &&
			as_user "$vioctl_bin" list >/dev/null 2>&1; then
			pass default-dir-private
		else
			fail default-dir-private "no $dir/viod.sock in a 0700 directory of uid $uid reachable by vioctl's default" "$(cat "$tmp/nobody.log")"
		fi
		# A second viod with nothing to serve and the default taken: a clear error, exit.
		out=$(with_timeout 10 env -u XDG_RUNTIME_DIR setpriv --reuid=$uid --regid=$uid \
			--clear-groups "$viod" 2>&1)
		rc=$?
		[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'nothing to do' <<<"$out" &&
			pass alone-default-taken-exits ||
			fail alone-default-taken-exits "exit $rc" "$out"
		stop_pid "$np" 5
		[ ! -e "$dir" ] && pass default-dir-removed-at-exit ||
			fail default-dir-removed-at-exit "$dir is still there after viod exited"
		rm -f "$dir/viod.sock"
		rmdir "$dir" 2>/dev/null
		# A directory that is not private is refused.
		mkdir -m 0777 "$dir" && chown $uid "$dir"
		out=$(with_timeout 10 env -u XDG_RUNTIME_DIR setpriv --reuid=$uid --regid=$uid \
			--clear-groups "$viod" --blk "sock=$tmp/nobody.sock,ram=8M" 2>&1)
		rc=$?
		[ $rc -eq 2 ] && grep -q "$dir is not a directory owned by uid $uid with mode 0700" <<<"$out" &&
			pass default-dir-refused-when-open ||
			fail default-dir-refused-when-open "exit $rc" "$out"
		out=$(with_timeout 10 env -u XDG_RUNTIME_DIR setpriv --reuid=$uid --regid=$uid \
			--clear-groups "$vioctl_bin" list 2>&1)
		rc=$?
		[ $rc -eq 3 ] && grep -q "$dir is not a directory owned by uid $uid with mode 0700" <<<"$out" &&
			pass vioctl-refuses-open-dir ||
			fail vioctl-refuses-open-dir "exit $rc" "$out"
		rmdir "$dir"
		chmod 0700 "$tmp"
	fi
else
	echo "SKIP: $VIO_TEST/default-dir: needs root and setpriv to run as another user"
fi
# --help names both modes.
h=$("$viod" --help)
grep -q -- '--rpc-mode' <<<"$h" && grep -q '/tmp/viod-UID/viod.sock' <<<"$h" && pass help-rpc-mode ||
	fail help-rpc-mode "viod --help lacks --rpc-mode or the private default path"
exit 0
