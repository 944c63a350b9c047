# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shared helpers for the interop tests (source it, do not run it).
# Owns: peer checks that turn a missing tool into a SKIP line, background
# processes recorded by PID, temp dirs and network namespaces, and one
# EXIT/INT/TERM trap that ends exactly those PIDs and removes exactly those
# dirs and namespaces. It must never kill by
# name, never touch a process or file it did not create.

# The name test lines carry ("PASS: $VIO_TEST/..."); callers set it first.
: "${VIO_TEST:=$(basename "${0%.sh}")}"

VIO_PIDS=()
VIO_TMPDIRS=()
VIO_FILES=()
VIO_NETNS=()
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

# mk_netns NAME: creates network namespace NAME (lo up) and registers it for
# deletion at exit. Returns 1 (nothing registered) if it cannot be made.
mk_netns() {
	ip netns add "$1" 2>/dev/null || return 1
	VIO_NETNS+=("$1")
	ip netns exec "$1" ip link set lo up
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

# need_guest_tools: what booting the test guest takes (QEMU, busybox, cpio,
# gcc with a static libc for the guest's odirect tool, a readable kernel).
# Prints a SKIP line naming the missing piece and returns 1 if one is absent.
need_guest_tools() {
	local kernel
	need qemu-system-x86_64 qemu-system-x86 || return 1
	need /bin/busybox busybox-static || return 1
	need cpio cpio || return 1
	need gcc gcc || return 1
	if [ ! -f "$(gcc -print-file-name=libc.a)" ]; then
		echo "SKIP: $VIO_TEST: no static libc for the guest's odirect tool (Debian package libc6-dev)"
		return 1
	fi
	kernel=${VIO_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}
	if [ -z "$kernel" ]; then
		echo "SKIP: $VIO_TEST: no /boot/vmlinuz-* (Debian package linux-image-amd64)"
		return 1
	fi
	if [ ! -r "$kernel" ]; then
		echo "SKIP: $VIO_TEST: $kernel is not readable (run as root)"
		return 1
	fi
}

# show_log LABEL FILE: the tail of a backend's log, as "# LABEL: " comments.
show_log() {
	sed "s/^/# $1: /" "$2" | tail -n 20
}

# guest_on_vhost_user PREFIX SOCK SECTORS LABEL LOG: boots the test guest
# (bounded, ended by PID) with a two-queue vhost-user-blk-pci device on SOCK,
# turns its console into "PREFIX/check" lines, and on a failed boot shows the
# tail of boot_guest.sh's stderr and of the backend's LOG. Files go to $tmp.
guest_on_vhost_user() {
	local prefix=$1 sock=$2 sectors=$3 label=$4 log=$5 tag bg rc t0=$SECONDS
	tag=${prefix//\//_}
	# Optional, from the caller: VIO_GUEST_PRE (array: QEMU arguments before
	# the disk, e.g. a machine and a vIOMMU), VIO_GUEST_DEV (",opt=v" for the
	# disk), VIO_GUEST_APPEND (kernel parameters), VIO_GUEST_TIMEOUT (s).
	start_bg "$here/boot_guest.sh" --timeout "${VIO_GUEST_TIMEOUT:-180}" \
		--append "vio.size=$sectors vio.queues=2 ${VIO_GUEST_APPEND:-}" -- \
		${VIO_GUEST_PRE[@]+"${VIO_GUEST_PRE[@]}"} -chardev "socket,id=c0,path=$sock" \
		-device "vhost-user-blk-pci,chardev=c0,num-queues=2${VIO_GUEST_DEV:-}" \
		>"$tmp/$tag.out" 2>"$tmp/$tag.err"
	bg=$VIO_LAST_PID
	wait_pid_timeout "$bg" $((${VIO_GUEST_TIMEOUT:-180} + 120))
	rc=$?
	[ $rc -ne 124 ] || stop_pid "$bg" 5
	report_viotest "$prefix" <"$tmp/$tag.out"
	if [ $rc -ne 0 ]; then
		echo "FAIL: $prefix/boot: boot_guest.sh exited $rc"
		sed 's/^/# /' "$tmp/$tag.err" | tail -n 80
		show_log "$label" "$log"
	fi
	echo "# $prefix: one guest run took $((SECONDS - t0)) s"
}

# expect_alive PREFIX PID LABEL LOG: "PREFIX/backend-survived" passes if PID
# still runs; else it fails with the tail of LOG and this returns 1.
expect_alive() {
	if pid_alive "$2"; then
		echo "PASS: $1/backend-survived"
		return 0
	fi
	echo "FAIL: $1/backend-survived: $3 died during the run"
	show_log "$3" "$4"
	return 1
}

# expect_clean_exit PREFIX PID LABEL LOG: sends SIGTERM; "PREFIX/clean-exit"
# passes if PID exits 0 within 10 s (else it is killed and the check fails).
expect_clean_exit() {
	local rc
	kill -TERM "$2"
	wait_pid_timeout "$2" 10
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "PASS: $1/clean-exit"
		return 0
	fi
	[ $rc -ne 124 ] || stop_pid "$2" 5
	echo "FAIL: $1/clean-exit: $3 exited $rc on SIGTERM"
	show_log "$3" "$4"
	return 1
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
	local rc=$? pid ns
	trap - EXIT INT TERM
	for pid in "${VIO_PIDS[@]}"; do
		stop_pid "$pid" 3
	done
	for ns in "${VIO_NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	[ ${#VIO_FILES[@]} -eq 0 ] || rm -f -- "${VIO_FILES[@]}"
	[ ${#VIO_TMPDIRS[@]} -eq 0 ] || rm -rf -- "${VIO_TMPDIRS[@]}"
	exit "$rc"
}

trap vio_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
