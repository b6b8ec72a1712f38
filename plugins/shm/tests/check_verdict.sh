#!/bin/sh
# check_verdict.sh FERRY_CHECK NO_CMA: ferry-check reports SHM's path to
# peers on this host: served by SHM where cross-memory attach is allowed,
# declined (UCX carries the data) where the kernel refuses it.
set -u
check=$1 no_cma=$2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail=0
"$check" -v >"$out" 2>&1
if grep -q "SHM: cross-memory attach between processes is allowed" "$out"; then
    echo "ok 1 - allowed: $(grep 'SHM: cross' "$out")"
elif grep -q "SHM: cross-memory attach is refused" "$out"; then
    echo "ok 1 - # SKIP this host refuses cross-memory attach itself: $(grep 'SHM: cross' "$out")"
else
    echo "not ok 1 - no SHM verdict"; cat "$out"; fail=1
fi
"$no_cma" "$check" -v >"$out" 2>&1
if grep -q "SHM: cross-memory attach is refused here (process_vm_readv: Operation not permitted" "$out"; then
    echo "ok 2 - refused: $(grep 'SHM: cross' "$out")"
else
    echo "not ok 2 - no refusal under the seccomp filter"; cat "$out"; fail=1
fi
echo "1..2"
exit $fail
