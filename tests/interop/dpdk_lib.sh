# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Helpers to run DPDK's testpmd as a peer (source after lib.sh; needs $tmp).
# Owns: an interactive testpmd fed through a fifo, started and ended by PID,
# commands with a bounded wait for their answer, and reading its per-port
# forward statistics. It never kills anything by name; a vhost PMD's socket
# file (DPDK leaves it behind) is removed before and after.

# Arguments every testpmd here takes: no hugepages, no PCI scan, a small pool.
TP_EAL=(--no-huge -m 512 --no-pci)
TP_APP=(-i --total-num-mbufs=16384)
declare -A TP_FD=() TP_PIDS=() TP_LOGS=() TP_MARK=()

# need_testpmd: prints a SKIP line and returns 1 when testpmd is missing.
need_testpmd() {
	need dpdk-testpmd dpdk-dev
}

# testpmd_start NAME LCORES EAL-ARGS... -- APP-ARGS...: an interactive
# testpmd (file prefix unique to this run), stdin from a fifo we hold open;
# waits up to 30 s for its prompt. Returns 1 (with its log shown) if it
# dies or never prompts. Sockets named by iface= are tracked for removal.
testpmd_start() {
	local name=$1 lcores=$2 fifo=$tmp/$1.tp.in log=$tmp/$1.tp.log fd a
	local eal=() app=() deadline
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		eal+=("$1")
		case "$1" in *iface=*) a=${1#*iface=}; a=${a%%,*}; rm -f "$a"; track_file "$a" ;; esac
		shift
	done
	[ $# -gt 0 ] && shift
	app=("$@")
	rm -f "$fifo"
	mkfifo "$fifo" || return 1
	exec {fd}<>"$fifo"
	TP_FD[$name]=$fd
	TP_LOGS[$name]=$log
	# Line-buffered: its statistics reach the log when printed, not at exit.
	start_bg sh -c 'exec "$@" <"$0"' "$fifo" stdbuf -oL dpdk-testpmd "${TP_EAL[@]}" --lcores "$lcores" \
		--file-prefix "vio-$$-$name" "${eal[@]}" -- "${TP_APP[@]}" "${app[@]}" >"$log" 2>&1
	TP_PIDS[$name]=$VIO_LAST_PID
	deadline=$((SECONDS + 30))
	while ! grep -aq 'testpmd> ' "$log"; do
		if ! pid_alive "${TP_PIDS[$name]}" || [ $SECONDS -ge $deadline ]; then
			show_log "testpmd $name" "$log"
			return 1
		fi
		sleep 0.1
	done
}

# testpmd_do NAME CMD [PATTERN [SECS]]: sends CMD; waits (default 10 s) for
# PATTERN in what testpmd prints after it (default: the next prompt).
testpmd_do() {
	local name=$1 cmd=$2 pat=${3:-testpmd> } secs=${4:-10} log=${TP_LOGS[$1]} mark deadline
	mark=$(wc -c <"$log")
	TP_MARK[$name]=$mark
	echo "$cmd" >&"${TP_FD[$name]}"
	deadline=$((SECONDS + secs))
	until tail -c +"$((mark + 1))" "$log" | grep -aq -- "$pat"; do
		[ $SECONDS -lt $deadline ] || return 1
		pid_alive "${TP_PIDS[$name]}" || return 1
		sleep 0.1
	done
}

# testpmd_rx_total NAME: runs "show port stats all" and prints the sum of
# the ports' RX-packets in its answer (-1 if there is none).
testpmd_rx_total() {
	testpmd_do "$1" "show port stats all" "Tx-bps" || { echo -1; return 1; }
	sleep 0.2
	tail -c +"$((TP_MARK[$1] + 1))" "${TP_LOGS[$1]}" |
		awk '/RX-packets:/ { s += $2; n++ } END { print (n ? s : -1) }'
}

# testpmd_stat NAME PORT FIELD: FIELD (RX-packets, TX-packets, TX-dropped...)
# of the last "Forward statistics for port PORT" block testpmd printed.
testpmd_stat() {
	awk -v port="$2" -v field="$3:" '
		/Forward statistics for port/ { cur = ($(NF - 1) == port) ? 1 : 0; next }
		cur && /-packets:|-dropped:/ {
			for (i = 1; i < NF; i++) if ($i == field) v = $(i + 1)
		}
		/^ *-+$|\+\+\+/ { cur = 0 }
		END { print (v == "" ? -1 : v) }' "${TP_LOGS[$1]}"
}

# testpmd_quit NAME: "quit", then ends it by PID if it lingers.
testpmd_quit() {
	local name=$1 fd=${TP_FD[$1]}
	echo quit >&"$fd" 2>/dev/null
	wait_pid_timeout "${TP_PIDS[$name]}" 10 >/dev/null || stop_pid "${TP_PIDS[$name]}" 3
	exec {fd}>&-
}
