#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Allocation-failure torture of the core's unit tests: runs a test once to
# count the allocations libferry makes (tests/torture/failmalloc.c, an
# LD_PRELOAD shim), then again for N = 1..count (every STEP-th N when there
# are more than RUNS), with the Nth allocation failing, under valgrind.
# A run may fail its test (the call that met the failure returns an error:
# that is the clean outcome); it must not crash, hang, touch bad memory or
# leak. Each bad N is printed with the allocation site (addr2line). A leak
# valgrind finds only in the test's own memory (no libferry or plugin frame:
# the test stops at its failed requirement without freeing) is counted
# apart, not as bad.
#
# Usage: scripts/alloc-torture.sh [BUILD_DIR] [TEST...]
#   BUILD_DIR  default build (the tests and build/tests/torture's shim)
#   TEST       unit tests (default: test_agent test_dlist test_registry
#              test_metadata)
# Environment: TORTURE_RUNS (N values per test, default 25; 0: every N),
#   TORTURE_VALGRIND (0: no valgrind, crashes only; default 1),
#   TORTURE_TIMEOUT (seconds per run, default 60).
# Output: one line per bad N, a summary per test; exit 1 when any was bad.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
B=${1:-build}
[ $# -gt 0 ] && shift
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test_agent test_dlist test_registry test_metadata)
RUNS=${TORTURE_RUNS:-25}
TMO=${TORTURE_TIMEOUT:-60}
SHIM=$PWD/$B/tests/torture/libfy_failmalloc.so
[ -f "$SHIM" ] || { echo "alloc-torture: $SHIM missing (ninja -C $B)" >&2; exit 2; }
VG=()
if [ "${TORTURE_VALGRIND:-1}" = 1 ] && command -v valgrind >/dev/null; then
    VG=(valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
        --show-leak-kinds=definite --num-callers=30 --child-silent-after-fork=yes
        --soname-synonyms=somalloc=nouserintercepts)
fi
export FERRY_PLUGIN_DIR=$PWD/$B/plugins FERRY_LOG_LEVEL=${FERRY_LOG_LEVEL:-error}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

site() { # the "failed" line of a report: function and file:line of the site
    local obj off
    read -r _ _ _ where < <(grep '^failed' "$1") || { echo "site unknown"; return; }
    obj=${where%+0x*} off=0x${where##*+0x}
    addr2line -f -i -p -e "$obj" "$(printf 0x%x $((off - 1)))" 2>/dev/null | head -2 | tr '\n' ' '
}

bad_total=0
for t in "${tests[@]}"; do
    exe=$B/tests/unit/$t
    [ -x "$exe" ] || { echo "alloc-torture: $exe missing" >&2; bad_total=$((bad_total + 1)); continue; }
    FY_FAILMALLOC_REPORT=$TMP/count LD_PRELOAD=$SHIM "$exe" >/dev/null 2>&1
    count=$(awk '/^count/ {print $2}' "$TMP/count" 2>/dev/null)
    count=${count:-0}
    step=1
    if [ "$RUNS" -gt 0 ] && [ "$count" -gt "$RUNS" ]; then step=$(( (count + RUNS - 1) / RUNS )); fi
    runs=0 bad=0 clean=0 passed=0 testside=0
    for ((n = 1; n <= count; n += step)); do
        runs=$((runs + 1))
        rm -f "$TMP/rep"
        FY_FAILMALLOC_N=$n FY_FAILMALLOC_REPORT=$TMP/rep LD_PRELOAD=$SHIM \
            timeout -k 5 "$TMO" "${VG[@]}" "$exe" >"$TMP/out" 2>&1
        rc=$?
        what=
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then what="hung (killed after ${TMO}s)"
        elif [ $rc -eq 99 ] && ! grep -qE '(libferry\.so|/src/|/plugins/)' "$TMP/out"; then
            testside=$((testside + 1)) # only the test's own memory: it stops at a failed requirement
            continue
        elif [ $rc -eq 99 ]; then what="valgrind: $(grep -m1 -E 'definitely lost|Invalid|uninitialised|Mismatched' "$TMP/out" | sed 's/^==[0-9]*== //')"
        elif [ $rc -ge 128 ]; then what="killed by signal $((rc - 128))"
        elif grep -q "AddressSanitizer\|runtime error" "$TMP/out"; then what="sanitizer report"
        fi
        [ -f "$TMP/rep" ] || : >"$TMP/rep"
        if [ -n "$what" ]; then
            bad=$((bad + 1))
            echo "$t N=$n: $what; allocation site: $(site "$TMP/rep")"
            cp "$TMP/out" "$TMP/../alloc-torture-$t-$n.log" 2>/dev/null || true
        elif [ $rc -eq 0 ]; then passed=$((passed + 1))
        else clean=$((clean + 1))
        fi
    done
    echo "alloc-torture: $t: $count allocations, $runs runs (every ${step}th): $bad bad, $clean failed cleanly, $passed passed anyway${VG:+, $testside leaked only memory of the test itself (valgrind)}"
    bad_total=$((bad_total + bad))
done
[ $bad_total -eq 0 ]
