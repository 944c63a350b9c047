#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The ABI check: the shared libvio exports exactly the functions that
# include/vio declares with VIO_API, all under the version node VIO_0.1,
# and every function a public header declares carries VIO_API (else an
# embedder could compile against it and fail to link).
# Usage: check-exports.sh LIBVIO_SO INCLUDE_DIR
set -euo pipefail
so=$1 inc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every top-level declaration of a vio_ function in the public headers, with
# or without the marker. Declarations may span lines: join each statement.
perl -0777 -ne '
	s{/\*.*?\*/}{}gs;            # comments
	s{^#.*$}{}mg;                # preprocessor lines
	s{\{[^{}]*\}}{;}gs for 1..3; # struct / inline bodies
	for my $st (split /;/) {
		next if $st =~ /\btypedef\b/ || $st =~ /\bstatic\b/;
		next unless $st =~ /\b(vio_\w+)\s*\(/;
		my $name = $1;
		print(($st =~ /\bVIO_API\b/ ? "api " : "bare "), "$name\n");
	}' "$inc"/*.h | sort -u >"$tmp/decl"

grep '^api ' "$tmp/decl" | cut -d' ' -f2 | sort -u >"$tmp/declared"
grep '^bare ' "$tmp/decl" | cut -d' ' -f2 | sort -u >"$tmp/unmarked" || true
nm -D --defined-only "$so" | awk '$2 == "T" || $2 == "W" {print $3}' >"$tmp/raw"
sed 's/@.*//' "$tmp/raw" | sort -u >"$tmp/exported"

rc=0
if [ -s "$tmp/unmarked" ]; then
	echo "declared in include/vio without VIO_API:"; sed 's/^/  /' "$tmp/unmarked"; rc=1
fi
if ! diff -q "$tmp/declared" "$tmp/exported" >/dev/null; then
	echo "exported but not declared (internal symbols leaking):"
	comm -13 "$tmp/declared" "$tmp/exported" | sed 's/^/  /'
	echo "declared but not exported (an embedder cannot link them):"
	comm -23 "$tmp/declared" "$tmp/exported" | sed 's/^/  /'
	rc=1
fi
unversioned=$(grep -v '@@VIO_0.1$' "$tmp/raw" || true)
if [ -n "$unversioned" ]; then
	echo "exported without the VIO_0.1 version node:"; echo "$unversioned" | sed 's/^/  /'; rc=1
fi
[ "$(wc -l <"$tmp/declared")" -gt 50 ] || { echo "suspiciously few declarations parsed"; rc=1; }
echo "$(wc -l <"$tmp/exported") exported, $(wc -l <"$tmp/declared") declared"
exit $rc
