#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What every tool does the same way (docs/tools.md, "Common to every tool"):
# --help on stdout with exit 0, --version one line, an unknown option exit
# 2, and --json - (JSON on stdout, with ferry_version, host and time).
# Usage: tools_cli_test.sh BUILD_ROOT. Exit 0 passed, 1 failed.
set -u
B=${1:?usage: tools_cli_test.sh BUILD_ROOT}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

tools=(tools/ferry-bench tools/ferry-kvbench tools/ferry-pingpong tools/ferry-info
       tools/ferry-check tools/ferry-idle tools/ferry-handshake tools/ferry-microbench
       tools/ferry-cuda-anchor tools/ferry-telemetry examples/ferry-demo)
[ -x "$B/tools/ferry-ucx-anchor" ] && tools+=(tools/ferry-ucx-anchor)

for t in "${tools[@]}"; do
    exe=$B/$t name=$(basename "$t")
    "$exe" --help >"$TMP/out" 2>"$TMP/err"; rc=$?
    [ $rc -eq 0 ] || fail "$name --help: exit $rc"
    grep -q "usage" "$TMP/out" || fail "$name --help: no usage on stdout"
    [ -s "$TMP/err" ] && fail "$name --help: wrote to stderr"
    "$exe" --version >"$TMP/out" 2>&1; rc=$?
    [ $rc -eq 0 ] || fail "$name --version: exit $rc"
    [ "$(wc -l <"$TMP/out")" -eq 1 ] || fail "$name --version: not one line"
    grep -qE "^$name [0-9]+\.[0-9]+\.[0-9]+ \(libferry [0-9.]+\)$" "$TMP/out" ||
        fail "$name --version: '$(cat "$TMP/out")'"
    "$exe" --no-such-option >/dev/null 2>&1; rc=$?
    [ $rc -eq 2 ] || fail "$name --no-such-option: exit $rc, want 2"
    echo "ok: $name"
done

# --json -: stdout is JSON only, every object with the meta fields.
check_json() { # NAME FILE LINES(1: JSON Lines)
    python3 - "$2" "$3" <<'PY' || fail "$1: JSON on stdout"
import json, sys
text = open(sys.argv[1]).read()
docs = [json.loads(l) for l in text.splitlines() if l.strip()] if sys.argv[2] == "1" \
    else [json.loads(text)]
assert docs, "nothing written"
for d in docs:
    assert isinstance(d["ferry_version"], str) and d["host"] and d["time"].endswith("Z"), d
PY
}
"$B/tools/ferry-info" -p --json - >"$TMP/out" 2>/dev/null || fail "ferry-info --json -"
check_json ferry-info "$TMP/out" 0
"$B/tools/ferry-info" -p --json >"$TMP/out" 2>/dev/null || fail "ferry-info --json"
check_json "ferry-info (no FILE)" "$TMP/out" 0
"$B/tools/ferry-check" --json - >"$TMP/out" 2>"$TMP/err"
check_json ferry-check "$TMP/out" 0
grep -q "^ferry-check: " "$TMP/err" || fail "ferry-check --json -: its lines not on stderr"
"$B/tools/ferry-check" --json "$TMP/check.json" >"$TMP/out" 2>/dev/null
check_json "ferry-check --json FILE" "$TMP/check.json" 0
grep -q "^ferry-check: " "$TMP/out" || fail "ferry-check --json FILE: its lines not on stdout"
small=(--backend LOCAL --start_block_size 4K --max_block_size 8K --num_iter 4 --warmup_iter 1
       --large_blk_iter_ftr 1 --total_buffer_size 1M)
"$B/tools/ferry-bench" "${small[@]}" --json - >"$TMP/out" 2>"$TMP/err" || fail "ferry-bench --json -"
check_json ferry-bench "$TMP/out" 1
grep -q "Block Size" "$TMP/err" || fail "ferry-bench --json -: the table not on stderr"
# Outputs are overwritten, never appended.
"$B/tools/ferry-bench" "${small[@]}" --json "$TMP/rows.jsonl" >/dev/null 2>&1
"$B/tools/ferry-bench" "${small[@]}" --json "$TMP/rows.jsonl" >/dev/null 2>&1
[ "$(wc -l <"$TMP/rows.jsonl")" -eq 2 ] || fail "ferry-bench --json FILE appended"
python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]
assert all(x["transport"].startswith("LOCAL") for x in r), r' "$TMP/rows.jsonl" ||
    fail "ferry-bench rows lack the transport"
[ $fails -eq 0 ] || exit 1
echo "PASS"
