#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages vio needs that this machine lacks (apt-get
# update only when something is missing). Usage: install-deps.sh [build|test|bench|docs|all]
set -euo pipefail

build_pkgs=(gcc meson ninja-build pkg-config liburing-dev libjson-c-dev)
# dpdk-dev: dpdk-testpmd, the net tests' peer; iproute2: network namespaces for the tap.
# groff-base, libvirt-clients, systemd: test_docs.sh renders the man pages, validates the
# libvirt example (virt-xml-validate) and the systemd unit (systemd-analyze verify).
test_pkgs=(libcmocka-dev clang llvm libclang-rt-14-dev qemu-system-x86 qemu-system-common
	qemu-utils linux-image-amd64 busybox-static cpio e2fsprogs util-linux kmod xz-utils
	libc6-dev procps dpdk-dev iproute2 coreutils
	groff-base libvirt-clients systemd python3)
# The reference documentation (ninja -C build docs).
docs_pkgs=(doxygen)
# Peers and limits the benchmarks measure against: qemu-storage-daemon, fio on the
# same file, Linux's ringtest, DPDK's testpmd; gnuplot draws the charts.
bench_pkgs=(qemu-system-common linux-source-6.1 xz-utils make dpdk-dev util-linux coreutils fio
	gnuplot-nox)

case "${1:-all}" in
build) want=("${build_pkgs[@]}") ;;
test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
bench) want=("${build_pkgs[@]}" "${bench_pkgs[@]}") ;;
docs) want=("${build_pkgs[@]}" "${docs_pkgs[@]}") ;;
all) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}" "${docs_pkgs[@]}") ;;
*) echo "install-deps.sh: unknown set '$1' (build, test, bench, docs or all)" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
