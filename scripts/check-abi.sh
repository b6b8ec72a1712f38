#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Compares the ABI of a built libferry with the committed baseline
# abi/libferry.abi (libabigail: Debian abigail-tools). docs/building.md, "ABI".
#
# Usage: scripts/check-abi.sh [--update] [BUILD_DIR]      (default: build)
#   Builds libferry in BUILD_DIR (configuring it when needed; it must carry
#   debug info: meson's default buildtype debugoptimized does), then:
#   check (default): fails on any change abidiff reports between the baseline
#     and this library (a function removed, a type or a signature changed,
#     a symbol's version changed), apart from what abi/libferry.abignore
#     allows (size-prefixed structures growing at their end), and on a new
#     function exported under a version node the baseline already has: new
#     functions go into a new node of src/libferry.map.
#   --update: rewrites abi/libferry.abi from this library. Do it on purpose,
#     when a release's ABI is final, and commit it with the map.
# Exit: 0 compatible (or updated), 1 an ABI break or a setup error.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
update=0
if [ "${1:-}" = --update ]; then update=1; shift; fi
build=${1:-build}
baseline=abi/libferry.abi
suppr=abi/libferry.abignore

die() { echo "check-abi: $*" >&2; exit 1; }
for t in abidw abidiff; do
    command -v $t >/dev/null 2>&1 || die "$t not found (Debian: apt-get install abigail-tools; scripts/install-deps.sh does)"
done

if [ ! -f "$build/build.ninja" ]; then
    echo "check-abi: meson setup $build"
    meson setup "$build" ${MESON_ARGS:-} >/dev/null || die "meson setup $build failed"
fi
meson compile -C "$build" ferry:shared_library >/dev/null || die "building libferry in $build failed"
lib=$(readlink -f "$build/libferry.so")
readelf -S "$lib" | grep -q '\.debug_info' ||
    die "$lib has no debug info: configure $build with debug=true (the default buildtype debugoptimized has it)"

# What abidw writes: only types reachable from the public headers
# (private types, such as the opaque handles' definitions, dropped), no
# absolute paths and no line numbers, so the file is the same from any
# checkout; type ids are hashes, stable across unrelated edits.
dump() {
    abidw --headers-dir include/ferry --drop-private-types --no-corpus-path \
        --no-comp-dir-path --no-show-locs --type-id-style hash --out-file "$2" "$1"
}

if [ $update -eq 1 ]; then
    mkdir -p abi
    dump "$lib" "$baseline"
    echo "check-abi: $baseline rewritten from $lib ($(grep -c '<elf-symbol ' "$baseline") symbols)"
    exit 0
fi
[ -f "$baseline" ] || die "no baseline $baseline: make one with scripts/check-abi.sh --update"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dump "$lib" "$tmp/current.abi"

fail=0
# 1. Everything abidiff sees, but added functions (judged below).
rc=0
abidiff --no-added-syms --suppressions "$suppr" \
    "$baseline" "$tmp/current.abi" > "$tmp/diff.txt" 2>&1 || rc=$?
if [ $rc -ne 0 ]; then
    # abidiff's exit status: bit 1 error, 2 usage, 4 ABI change, 8 incompatible.
    echo "check-abi: libferry's ABI differs from $baseline (abidiff exit $rc):"
    cat "$tmp/diff.txt"
    fail=1
fi

# 2. Added functions: each under a version node the baseline does not have.
syms() { # ABI_XML: "name version" of each function symbol
    grep -o "<elf-symbol name='[^']*' version='[^']*'" "$1" | sed "s/.*name='\([^']*\)' version='\([^']*\)'/\1 \2/" | sort
}
syms "$baseline" > "$tmp/old.txt"
syms "$tmp/current.abi" > "$tmp/new.txt"
old_nodes=$(awk '{print $2}' "$tmp/old.txt" | sort -u)
added=$(join -v 2 <(awk '{print $1}' "$tmp/old.txt") "$tmp/new.txt" || true)
if [ -n "$added" ]; then
    while read -r name node; do
        if grep -qxF "$node" <<<"$old_nodes"; then
            echo "check-abi: $name is new but exported under $node, a version node of $baseline: list it in a new node of src/libferry.map"
            fail=1
        else
            echo "check-abi: new function $name@$node (allowed: a new version node)"
        fi
    done <<<"$added"
fi

if [ $fail -ne 0 ]; then
    echo "check-abi: FAILED. If the change is meant (a new release's baseline), run scripts/check-abi.sh --update and commit abi/libferry.abi."
    exit 1
fi
echo "check-abi: libferry's ABI is compatible with $baseline ($(wc -l < "$tmp/old.txt") functions of the baseline, $(printf '%s' "$added" | grep -c . || true) added)"
