#!/usr/bin/env bash
# ferry-bench sweeps on the CPU host, each beside its anchor measured in the
# same run, written under OUT (default docs/sweeps): for LOCAL the anchor is
# memcpy of the same block (ctypes.memmove, single thread); for UCX it is
# ucx_perftest ucp_put_bw (same sizes, same UCX_TLS). Also draws the UCX
# sweep against ucx_perftest (PNG).
# Usage: bench/sweep_cpu.sh BUILD_DIR [OUT] [MAX_BLOCK]
set -euo pipefail
build=${1:?build dir}
out=${2:-docs/sweeps}
max=${3:-16M}
py=/usr/bin/python3
mkdir -p "$out"
export FERRY_PLUGIN_DIR=${FERRY_PLUGIN_DIR:-$build/plugins}
bench=$build/tools/ferry-bench
common=(--op_type WRITE --start_block_size 4K --max_block_size "$max" --num_iter 200
    --warmup_iter 20 --large_blk_iter_ftr 4 --check_consistency)

"$bench" --backend LOCAL "${common[@]}" --json "$out/local.jsonl" > "$out/local.txt"
"$py" - "$out/local.jsonl" > "$out/local-anchor.csv" <<'PY'
import ctypes, json, sys, time
print("label,block_size,gbps")
for row in map(json.loads, open(sys.argv[1])):
    n = row["block_size"]
    src, dst = ctypes.create_string_buffer(n), ctypes.create_string_buffer(n)
    reps = max(20, (256 << 20) // n)
    t0 = time.perf_counter()
    for _ in range(reps):
        ctypes.memmove(dst, src, n)
    print(f"memcpy,{n},{n * reps / (time.perf_counter() - t0) / 1e9:.4f}")
PY

for tls in tcp default; do
    env_tls=()
    [ "$tls" = default ] || env_tls=(UCX_TLS="$tls")
    env "${env_tls[@]}" "$bench" --backend UCX "${common[@]}" --json "$out/ucx-$tls.jsonl" \
        > "$out/ucx-$tls.txt"
    echo "label,block_size,gbps" > "$out/ucx-$tls-anchor.csv"
    port=13700
    for size in $("$py" -c 'import json,sys; print(" ".join(str(json.loads(l)["block_size"]) for l in open(sys.argv[1])))' "$out/ucx-$tls.jsonl"); do
        port=$((port + 1))
        env "${env_tls[@]}" ucx_perftest -t ucp_put_bw -s "$size" -n 200 -w 20 -p "$port" -f >/dev/null 2>&1 &
        server=$!
        sleep 0.5
        line=$(env "${env_tls[@]}" timeout 120 ucx_perftest localhost -t ucp_put_bw -s "$size" -n 200 -w 20 -p "$port" -f 2>/dev/null | tail -1)
        wait "$server" 2>/dev/null || true
        echo "ucx_perftest ($tls),$size,$(echo "$line" | awk '{printf "%.4f", $6 * 1048576 / 1e9}')" >> "$out/ucx-$tls-anchor.csv"
    done
done
cat "$out/ucx-tcp-anchor.csv" <(tail -n +2 "$out/ucx-default-anchor.csv") > "$out/ucx-anchors.csv"
"$py" tools/ferry-bench-plot.py --rows "$out/ucx-default.jsonl" --anchor_csv "$out/ucx-anchors.csv" \
    --out "$out/ucx-sweep.png" --title "ferry UCX WRITE (default transports) vs ucx_perftest" ||
    echo "plot: matplotlib missing (apt-get install python3-matplotlib)"
echo "sweeps written to $out"
