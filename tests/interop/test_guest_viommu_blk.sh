#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A Linux guest behind a virtual IOMMU on a viod disk: QEMU TCG q35 with
# intel-iommu (device-iotlb), vhost-user-blk-pci with iommu_platform=on and
# ats=on, the guest kernel with intel_iommu=on. Every ring and buffer address
# viod sees is then an IOVA it must translate through the IOTLB QEMU fills on
# its misses. The guest runs the usual disk test (guest/blk-test.sh), once
# on split rings and once on packed ones; the test then checks the guest
# agreed on ACCESS_PLATFORM and asks viod (vioctl stats) for its IOTLB
# counters: misses sent, updates and invalidations applied, none refused.
# Prints PASS/FAIL/SKIP lines; bounded; ends every process it started by
# PID; removes its files.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VIO_TEST=guest-viommu-blk
# shellcheck source=lib.sh
. "$here/lib.sh"

need_guest_tools || exit 0
need python3 || exit 0
viod=$root/${VIO_BUILD:-build}/src/daemon/viod
vioctl=$root/${VIO_BUILD:-build}/tools/vioctl/vioctl
for b in "$viod" "$vioctl"; do
	if [ ! -x "$b" ]; then
		echo "FAIL: $VIO_TEST/setup: $b is not built"
		exit 1
	fi
done
if ! ${VIO_QEMU:-qemu-system-x86_64} -device help 2>/dev/null | grep -q '"intel-iommu"'; then
	echo "SKIP: $VIO_TEST: this QEMU has no intel-iommu device"
	exit 0
fi

tmp=
mk_tmpdir tmp || { echo "FAIL: $VIO_TEST/setup: mktemp"; exit 1; }
size_mib=64

# The vIOMMU's machine: split irqchip (interrupt remapping), the IOMMU before
# the disk, and the disk behind a PCIe root port. On the root bus QEMU makes
# it a conventional PCI device without the ATS capability; the guest then
# never sends device-IOTLB invalidations, and QEMU 7.2's vhost registers
# for those only (8.1 falls back to IOTLB unmaps): the backend would never
# hear of an unmap and would keep translating IOVAs the guest reused.
VIO_GUEST_PRE=(-machine q35,kernel-irqchip=split -device intel-iommu,intremap=on,device-iotlb=on
	-device pcie-root-port,id=rp0,bus=pcie.0,chassis=1)
VIO_GUEST_APPEND="intel_iommu=on"
VIO_GUEST_TIMEOUT=${VIO_GUEST_TIMEOUT:-300}

# check_iotlb PREFIX STATS-JSON GUEST-OUT: what the guest agreed and what viod counted.
check_iotlb() {
	python3 - "$1" "$2" "$3" <<'PY'
import json, re, sys
t, stats, guest = sys.argv[1:4]
def check(name, ok, why):
    print(f"PASS: {t}/{name}" if ok else f"FAIL: {t}/{name}: {why}")
# The guest's own view: bit 33 of the feature string its driver agreed on.
m = re.search(r"VIOTEST INFO disk=.* features=([01]+)", open(guest, errors="replace").read())
check("guest-agreed-access-platform", m is not None and len(m.group(1)) > 33 and
      m.group(1)[33] == "1", "the guest's features show no VIRTIO_F_ACCESS_PLATFORM (bit 33)"
      if m else "the guest reported no features")
io = json.load(open(stats))["devices"][0].get("iotlb")
if io is None:
    check("iotlb-stats", False, "viod's stats have no iotlb object")
    sys.exit(0)
print(f"# {t}: iotlb {json.dumps(io)}")
check("iotlb-misses-sent", io["miss_msgs"] > 0, "no IOTLB miss was sent")
check("iotlb-updates", io["updates"] > 0, "no IOTLB update arrived")
check("iotlb-invalidates", io["invalidates"] > 0, "no IOTLB invalidation arrived")
check("iotlb-none-refused", io["refused"] == 0, f"{io['refused']} IOTLB messages refused")
PY
}

# run_guest NAME DEVICE-OPTIONS: a fresh viod, one guest run, its counters, a clean exit.
run_guest() {
	local name=$1 prefix=$VIO_TEST/$1 sock=$tmp/$1.sock rpc=$tmp/$1.rpc log=$tmp/$1.viod.log v
	track_file "$sock"
	track_file "$rpc"
	start_bg "$viod" ${VIO_VIOD_ARGS:-} --rpc "$rpc" \
		--blk "sock=$sock,ram=${size_mib}M,queues=2,name=d0" >"$log" 2>&1
	v=$VIO_LAST_PID
	if ! wait_for_socket "$sock" 10 "$v"; then
		echo "FAIL: $prefix/backend: viod made no socket in 10 s"
		show_log viod "$log"
		stop_pid "$v" 5
		return
	fi
	VIO_GUEST_DEV=",bus=rp0,iommu_platform=on,ats=on$2"
	guest_on_vhost_user "$prefix" "$sock" $((size_mib * 2048)) viod "$log"
	if "$vioctl" --rpc "$rpc" --json stats d0 >"$tmp/$name.stats" 2>"$tmp/$name.err"; then
		check_iotlb "$prefix" "$tmp/$name.stats" "$tmp/${prefix//\//_}.out"
	else
		echo "FAIL: $prefix/iotlb-stats: vioctl stats: $(tail -n 1 "$tmp/$name.err")"
	fi
	expect_alive "$prefix" "$v" viod "$log" || return
	expect_clean_exit "$prefix" "$v" viod "$log"
}

run_guest split ""
run_guest packed ",packed=on"
