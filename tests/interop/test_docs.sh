#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The operator documents stay true to the code:
#  - every example of docs/rpc.md is replayed, in order, against a real viod
#    started as the document says; each answer must have the documented
#    shape (keys, types, array lengths) and error code; every method viod
#    has and every error code of rpc.h is documented; the documented limits
#    (64 clients, 1 MiB lines, 16 MiB unread) hold;
#  - examples/systemd/viod.json starts a viod serving its devices;
#  - viod --help, vioctl --help and their man pages name every long option
#    of the getopt tables (and vioctl's commands); the man pages render
#    without groff warnings;
#  - every relative link of README.md and docs/*.md points to a file;
#  - docs/viod.md lists exactly the configuration keys config.c knows;
#  - the systemd unit passes systemd-analyze verify, the libvirt domain
#    virt-xml-validate (each a SKIP where the tool is missing).
# Prints PASS/FAIL/SKIP lines; bounded; ends its processes by PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=docs
# shellcheck source=lib.sh
. "$here/lib.sh"

build=$root/${VIO_BUILD:-build}
viod=$build/src/daemon/viod
vioctl=$build/tools/vioctl/vioctl
for b in "$viod" "$vioctl"; do
	[ -x "$b" ] || { echo "FAIL: $VIO_TEST/setup: $b is not built"; exit 1; }
done
need python3 python3 || exit 0
check() { python3 "$here/docs_check.py" "$@"; }

tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }

# ---- docs/rpc.md: the example session against a real viod
if ! mapfile -t args < <(check rpc-setup "$root/docs/rpc.md" "$tmp/rpc") || [ ${#args[@]} -eq 0 ]; then
	echo "FAIL: $VIO_TEST/rpc.md/setup: the session-setup block cannot be run"
else
	sock=
	for ((i = 0; i + 1 < ${#args[@]}; i++)); do
		[ "${args[i]}" = --rpc ] && sock=${args[i + 1]}
	done
	start_bg "$viod" "${args[@]}" >"$tmp/rpc-viod.log" 2>&1
	v=$VIO_LAST_PID
	if [ -z "$sock" ] || ! wait_for_socket "$sock" 10 "$v"; then
		echo "FAIL: $VIO_TEST/rpc.md/start: viod ${args[*]} made no management socket in 10 s"
		show_log viod "$tmp/rpc-viod.log"
	else
		with_timeout 60 python3 "$here/docs_check.py" rpc-session "$root/docs/rpc.md" "$tmp/rpc" "$sock"
		with_timeout 30 python3 "$here/docs_check.py" rpc-coverage "$root/docs/rpc.md" \
			"$root/src/daemon/rpc.h" "$sock"
		with_timeout 90 python3 "$here/docs_check.py" rpc-limits "$sock"
		expect_clean_exit "$VIO_TEST/rpc.md" "$v" viod "$tmp/rpc-viod.log"
	fi
fi

# ---- examples/systemd/viod.json: a viod starts from it and serves its devices
mkdir -p "$tmp/sd/run/ctl" "$tmp/sd/lib"
truncate -s 1G "$tmp/sd/lib/vm1.raw"
sed -e "s|/run/viod|$tmp/sd/run|g" -e "s|/var/lib/viod|$tmp/sd/lib|g" \
	"$root/examples/systemd/viod.json" >"$tmp/sd/viod.json"
if grep -q '"/\(run\|var\)/' "$tmp/sd/viod.json"; then
	echo "FAIL: $VIO_TEST/systemd-config: examples/systemd/viod.json has paths outside /run/viod and /var/lib/viod"
else
	start_bg "$viod" --config "$tmp/sd/viod.json" >"$tmp/sd-viod.log" 2>&1
	v=$VIO_LAST_PID
	if ! wait_for_socket "$tmp/sd/run/ctl/viod.sock" 10 "$v"; then
		echo "FAIL: $VIO_TEST/systemd-config: viod --config made no management socket in 10 s"
		show_log viod "$tmp/sd-viod.log"
	else
		out=$(with_timeout 10 "$vioctl" --rpc "$tmp/sd/run/ctl/viod.sock" list 2>&1)
		mode=$(stat -c %a "$tmp/sd/run/vm1-disk.sock" 2>/dev/null)
		if grep -q '^vm1-disk  *blk' <<<"$out" && grep -q '^vm1-net  *net' <<<"$out" && [ "$mode" = 660 ]; then
			echo "PASS: $VIO_TEST/systemd-config (vm1-disk and vm1-net served, sockets 0660)"
		else
			echo "FAIL: $VIO_TEST/systemd-config: socket mode '$mode', vioctl list said:"
			sed 's/^/#   /' <<<"$out"
		fi
		expect_clean_exit "$VIO_TEST/systemd-config" "$v" viod "$tmp/sd-viod.log"
	fi
fi

# ---- options, man pages, links, configuration keys
check options "$root" "$viod" "$vioctl"
check links "$root"
check config "$root"

# ---- the systemd unit and the libvirt domain, with their own validators
if command -v systemd-analyze >/dev/null 2>&1; then
	# The unit as installed, but with the viod just built and its man pages findable.
	mkdir -p "$tmp/unit" "$tmp/man/man8"
	cp "$root"/docs/man/*.8 "$tmp/man/man8/"
	sed "s|^ExecStart=/usr/local/bin/viod|ExecStart=$viod|" "$root/examples/systemd/viod.service" \
		>"$tmp/unit/viod.service"
	out=$(MANPATH=$tmp/man with_timeout 60 systemd-analyze verify "$tmp/unit/viod.service" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && [ -z "$out" ]; then
		echo "PASS: $VIO_TEST/systemd-analyze-verify"
	else
		echo "FAIL: $VIO_TEST/systemd-analyze-verify: exit $rc"
		sed 's/^/#   /' <<<"$out" | head -n 10
	fi
else
	echo "SKIP: $VIO_TEST/systemd-analyze-verify: systemd-analyze not found (Debian package systemd)"
fi
if command -v virt-xml-validate >/dev/null 2>&1; then
	if out=$(with_timeout 60 virt-xml-validate "$root/examples/libvirt/vm-with-viod.xml" domain 2>&1); then
		echo "PASS: $VIO_TEST/virt-xml-validate"
	else
		echo "FAIL: $VIO_TEST/virt-xml-validate"
		sed 's/^/#   /' <<<"$out" | head -n 10
	fi
else
	echo "SKIP: $VIO_TEST/virt-xml-validate: virt-xml-validate not found (Debian package libvirt-clients)"
fi
