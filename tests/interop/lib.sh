# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shared helpers for the interop tests (source it, do not run it).
# Owns: peer checks that turn a missing tool into a SKIP line, background
# processes recorded by PID, temp dirs, and one EXIT/INT/TERM trap that ends
# exactly those PIDs and removes exactly those dirs. It must never kill by
# name, never touch a process or file it did not create.

# The name test lines carry ("PASS: $VIO_TEST/..."); callers set it first.
: "${VIO_TEST:=$(basename "${0%.sh}")}"

VIO_PIDS=()
VIO_TMPDIRS=()
VIO_FILES=()
VIO_LAST_PID=

# need CMD PKG: true if CMD is on PATH (or an executable path); otherwise
# prints "SKIP: <test>: <reason>" and returns 1, so a caller writes
# `need qemu-system-x86_64 qemu-system-x86 || exit 0`.
need() {
	local cmd=$1 pkg=${2:-$1}
	if [[ $cmd == */* ]]; then
		[ -x "$cmd" ] && return 0
	elif command -v "$cmd" >/dev/null 2>&1; then
		return 0
	fi
	echo "SKIP: $VIO_TEST: $cmd not found (Debian package $pkg)"
	return 1
}

# mk_tmpdir VAR: makes a temp dir under ${TMPDIR:-/tmp}, stores its path in
# VAR and registers it for removal. Not meant for $(...): a subshell's
# registration would be lost.
mk_tmpdir() {
	local __d
	__d=$(mktemp -d "${TMPDIR:-/tmp}/vio-${VIO_TEST//[^A-Za-z0-9_.-]/_}.XXXXXX") || return 1
	VIO_TMPDIRS+=("$__d")
	printf -v "$1" '%s' "$__d"
}

# track_file PATH: removes PATH (a socket, a log) at exit.
track_file() {
	VIO_FILES+=("$1")
}

# start_bg CMD ARGS...: starts CMD in the background with stdin from
# /dev/null, records its PID in VIO_PIDS and in VIO_LAST_PID. Redirect its
# output at the call site: start_bg qemu ... >log 2>&1. Not for $(...).
start_bg() {
	"$@" </dev/null &
	VIO_LAST_PID=$!
	VIO_PIDS+=("$VIO_LAST_PID")
}

# pid_alive PID: true while PID runs and is not a zombie we could reap.
pid_alive() {
	kill -0 "$1" 2>/dev/null || return 1
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$st" != Z ]
}

# stop_pid PID [GRACE]: SIGTERM, then SIGKILL after GRACE seconds (default
# 3), then reaps it if it is our child. Returns the process's exit status
# when it is our child, else 0.
stop_pid() {
	local pid=$1 grace=${2:-3} i
	if pid_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < grace * 10; i++)); do
			pid_alive "$pid" || break
			sleep 0.1
		done
		pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
}

# wait_pid_timeout PID SECS: waits for PID (our child) to end by itself for
# at most SECS seconds. Returns its exit status, or 124 if it still runs
# (it is left running: the caller decides, usually stop_pid).
wait_pid_timeout() {
	local pid=$1 secs=$2 deadline
	deadline=$((SECONDS + secs))
	while pid_alive "$pid"; do
		[ $SECONDS -lt $deadline ] || return 124
		sleep 0.2
	done
	wait "$pid" 2>/dev/null
}

# wait_for_socket PATH TIMEOUT [PID]: waits until PATH is a listening unix
# socket's file, at most TIMEOUT seconds; gives up early if PID (the process
# meant to create it) has died. Returns 0 when the socket is there.
wait_for_socket() {
	local path=$1 secs=$2 pid=${3:-} deadline
	deadline=$((SECONDS + secs))
	while [ ! -S "$path" ]; do
		[ $SECONDS -lt $deadline ] || return 1
		if [ -n "$pid" ] && ! pid_alive "$pid"; then
			return 1
		fi
		sleep 0.1
	done
}

# with_timeout SECS CMD ARGS...: runs CMD in the foreground, SIGTERM after
# SECS and SIGKILL 5 s later. Returns CMD's status, 124 on timeout.
with_timeout() {
	local secs=$1
	shift
	timeout --kill-after=5 "$secs" "$@"
}

# report_viotest PREFIX: turns a guest's VIOTEST lines (stdin, as printed
# by boot_guest.sh) into this project's "PASS: PREFIX/check" / "FAIL:
# PREFIX/check: reason" / "SKIP: PREFIX/check: reason" lines; INFO lines
# become "# " comments. Returns 0 if the guest said DONE and nothing failed.
report_viotest() {
	local prefix=$1 line rest done=0 failed=0
	while IFS= read -r line; do
		rest=${line#VIOTEST }
		case "$line" in
		"VIOTEST PASS "*) echo "PASS: $prefix/${rest#PASS }" ;;
		"VIOTEST FAIL "*) echo "FAIL: $prefix/${rest#FAIL }"; failed=1 ;;
		"VIOTEST SKIP "*) echo "SKIP: $prefix/${rest#SKIP }" ;;
		"VIOTEST INFO "*) echo "# $prefix: ${rest#INFO }" ;;
		"VIOTEST DONE") done=1 ;;
		esac
	done
	[ $done -eq 1 ] && [ $failed -eq 0 ]
}

vio_cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in "${VIO_PIDS[@]}"; do
		stop_pid "$pid" 3
	done
	[ ${#VIO_FILES[@]} -eq 0 ] || rm -f -- "${VIO_FILES[@]}"
	[ ${#VIO_TMPDIRS[@]} -eq 0 ] || rm -rf -- "${VIO_TMPDIRS[@]}"
	exit "$rc"
}

trap vio_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
