#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ferry's VRAM benchmarks on a GPU host, in one go (about 3 minutes on 1-2
# H200s), from a build folder made elsewhere (no meson needed here):
#
#   bench/sweep_gpu.sh BUILD OUTDIR        (from the repository root)
#
#  1. ferry-bench --check_consistency, VRAM -> VRAM with the CUDA backend,
#     WRITE and READ, batch 1 (4 KiB..64 MiB) and 64 (4 KiB..1 MiB): every
#     received byte checked through host memory (a short pass);
#  2. ferry-bench sweeps VRAM -> VRAM with the CUDA backend, WRITE and READ,
#     4 KiB..64 MiB at batch 1, 4 KiB..16 MiB at batch 64, each beside ferry-cuda-anchor run on
#     the same GPUs and sizes right after it: the bare CUDA IPC copy
#     (cuMemcpyAsync per block + event; for batch 64 also one contiguous
#     copy of the same bytes, the link's ceiling);
#  3. ferry-kvbench VRAM -> VRAM with the CUDA backend for Llama-3.1-8B (TP1),
#     Llama-3.1-70B (TP8), Qwen3-32B (TP4), DeepSeek-R1 (TP1), GPT-OSS-120B
#     (TP4): one 8192-token request per rank, page 16, decode READs, checked.
#
# Processes: initiator on GPU 0, target on GPU 1 when the host has two or
# more GPUs, else both on GPU 0 (two processes sharing a GPU through IPC).
# OUTDIR gets at most six files, flat:
#   gpu-sweep.md       tables (ferry beside its anchor, checks, kvbench), commands, host
#   gpu-bench.jsonl    ferry-bench rows (sweeps and checked passes)
#   gpu-anchor.jsonl   ferry-cuda-anchor rows
#   gpu-kvbench.jsonl  ferry-kvbench results, one a line
#   gpu-sweep.log      everything the programs printed
#   gpu-sweep.png      WRITE sweep against the anchors (only with matplotlib)
# Exit status: 0 when every step passed, 1 otherwise (the files are written
# either way), 2 for bad arguments or a build without the programs.
#
# Environment: SWEEP_GPU_BUDGET (seconds, default 230: steps that would
# start later are skipped and reported), SWEEP_GPU_QUICK=1 (tiny sizes: the
# test suite runs this script against the mock driver that way),
# FERRY_CUDA_LIB (the driver; unset on a GPU host).
set -u

usage() { echo "usage: bench/sweep_gpu.sh BUILD OUTDIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
BUILD=$1 OUT=$2
REPO=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$BUILD/tools/ferry-bench KV=$BUILD/tools/ferry-kvbench ANCHOR=$BUILD/tools/ferry-cuda-anchor
for p in "$BENCH" "$KV" "$ANCHOR"; do
    [ -x "$p" ] || { echo "sweep_gpu: $p missing: build ferry first (ninja -C $BUILD)" >&2; exit 2; }
done
[ -d "$BUILD/plugins" ] || { echo "sweep_gpu: no $BUILD/plugins" >&2; exit 2; }
mkdir -p "$OUT" || exit 2
TMP=$(mktemp -d) || exit 2
trap 'rm -rf "$TMP"' EXIT

# As plugins/cuda/tests/run-gpu-suite.sh: plugins from the build folder, data files
# from this checkout (the build may come from another path or host).
export FERRY_PLUGIN_DIR=$BUILD/plugins
export FERRY_KVBENCH_MODELS=$REPO/tools/kvbench/models
export FERRY_BENCH_PLOT=${FERRY_BENCH_PLOT:-$REPO/tools/ferry-bench-plot.py}
export FERRY_LOG_LEVEL=${FERRY_LOG_LEVEL:-error}
export NCCL_NVLS_ENABLE=0 # NVLink multicast stays off on shared hosts

BUDGET=${SWEEP_GPU_BUDGET:-230}
if [ "${SWEEP_GPU_QUICK:-0}" = 1 ]; then
    MAX=64K SWEEP64=32K CHECK64=16K ITERS=(--num_iter 32 --warmup_iter 16) ISL=128 KVITER=2
else
    # batch 64: requests up to 1 GiB in the sweep, 64 MiB in the checked pass
    MAX=64M SWEEP64=16M CHECK64=1M ITERS=(--num_iter 1000 --warmup_iter 100) ISL=8192 KVITER=20
fi
LOG=$OUT/gpu-sweep.log
: >"$LOG"
: >"$TMP/steps"
START=$(date +%s)
FAILED=0

# step NAME PROGRAM ARGS...: runs it under timeout (what is left of
# the budget, at most 150 s), its output into the log; records the command
# and how it ended in $TMP/steps (name, status, seconds, command). Rows the
# program writes go to $TMP/NAME.jsonl (passed in its args by the caller).
step() {
    local name=$1 shown rc status t0 left
    shift
    shown=$(printf '%q ' "$@")
    shown=${shown//"$BUILD"/BUILD}
    shown=${shown//"$TMP"/TMP}
    left=$((START + BUDGET - $(date +%s)))
    if [ "$left" -lt 5 ]; then
        printf '%s\tskipped (budget of %ss spent)\t0\t%s\n' "$name" "$BUDGET" "$shown" >>"$TMP/steps"
        echo "sweep_gpu: $name skipped: budget spent" | tee -a "$LOG" >&2
        FAILED=1
        return
    fi
    [ "$left" -gt 150 ] && left=150
    echo "sweep_gpu: $name" >&2
    { echo; echo "==== $name: $shown"; } >>"$LOG"
    t0=$(date +%s)
    timeout -k 5 "$left" "$@" >>"$LOG" 2>&1
    rc=$?
    case $rc in
    0) status=ok ;;
    124 | 137) status="TIMED OUT after ${left}s" ;;
    2) status="usage error (exit 2, see gpu-sweep.log)" ;;
    3) status="CONSISTENCY FAILED (exit 3)" ;;
    *) status="FAILED (exit $rc)" ;;
    esac
    [ $rc -eq 0 ] || FAILED=1
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$(($(date +%s) - t0))" "$shown" >>"$TMP/steps"
    echo "==== $name: $status" >>"$LOG"
}

VRAM=(--backend CUDA --initiator_seg_type VRAM --target_seg_type VRAM --no_progress)

# 1. checked passes: short, and first, so a broken path shows at once.
for op in WRITE READ; do
    step "check $op batch 1" "$BENCH" "${VRAM[@]}" --op_type $op --check_consistency \
        --start_block_size 4K --max_block_size "$MAX" --num_iter 16 --warmup_iter 16 \
        --json "$TMP/check-$op-1.jsonl"
    step "check $op batch 64" "$BENCH" "${VRAM[@]}" --op_type $op --check_consistency \
        --start_block_size 4K --max_block_size "$CHECK64" --start_batch_size 64 \
        --max_batch_size 64 --num_iter 16 --warmup_iter 16 --json "$TMP/check-$op-64.jsonl"
done

# 2. sweeps, each followed by its anchor on the same GPUs and sizes.
for batch in 1 64; do
    max=$MAX
    [ $batch = 1 ] || max=$SWEEP64
    for op in WRITE READ; do
        step "ferry-bench $op batch $batch" "$BENCH" "${VRAM[@]}" --op_type $op \
            --start_block_size 4K --max_block_size "$max" --start_batch_size $batch \
            --max_batch_size $batch "${ITERS[@]}" --json "$TMP/sweep-$op-$batch.jsonl"
        step "anchor $op batch $batch" "$ANCHOR" --op_type $op --start_block_size 4K \
            --max_block_size "$max" --batch_size $batch "${ITERS[@]}" \
            --json "$TMP/anchor-$op-$batch.jsonl" --anchor_csv "$TMP/anchor-$op-$batch.csv"
    done
done

# 3. one request's KV cache per model, GPU to GPU.
KVFILES=()
for mt in Llama-3.1-8B:1 Llama-3.1-70B:8 Qwen3-32B:4 DeepSeek-R1:1 GPT-OSS-120B:4; do
    model=${mt%:*} tp=${mt#*:}
    KVFILES+=("$TMP/kv-$model.json")
    step "kvbench $model" "$KV" --model "$model" --tp "$tp" --isl $ISL --page_size 16 \
        --backend CUDA --initiator_seg_type VRAM --target_seg_type VRAM \
        --num_iter $KVITER --warmup_iter 2 --check_consistency --json "$TMP/kv-$model.json"
done

# ---- results ----
cat "$TMP"/check-*.jsonl "$TMP"/sweep-*.jsonl >"$OUT/gpu-bench.jsonl" 2>/dev/null
cat "$TMP"/anchor-*.jsonl >"$OUT/gpu-anchor.jsonl" 2>/dev/null
cat "${KVFILES[@]}" >"$OUT/gpu-kvbench.jsonl" 2>/dev/null
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "host: $(uname -srm), $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "ferry: $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
    [ -n "${FERRY_CUDA_LIB:-}" ] && echo "driver: FERRY_CUDA_LIB=$FERRY_CUDA_LIB (not the real driver)"
    [ -n "${CUDA_VISIBLE_DEVICES:-}" ] && echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader |
            sed 's/^/GPU /'
        nvidia-smi topo -m 2>/dev/null | head -4 | sed 's/^/topo: /'
    else
        echo "nvidia-smi: not here"
    fi
    grep -m1 'Initiator seg type' "$LOG" | sed 's/.*: /initiator: /'
    grep -m1 'Target seg type' "$LOG" | sed 's/.*: /target: /'
} >"$TMP/host" 2>&1

PY=python3
command -v $PY >/dev/null 2>&1 || PY=/usr/bin/python3
# matplotlib may live with another python3 (apt's) than the first on PATH.
PLOTPY=
for p in python3 /usr/bin/python3; do
    if [ -z "$PLOTPY" ] && "$p" "$FERRY_BENCH_PLOT" --check >/dev/null 2>&1; then PLOTPY=$p; fi
done
if ! "$PY" - "$OUT" "$TMP/steps" "$TMP/host" <<'PY'; then
import json, os, sys

out, steps_path, host_path = sys.argv[1:4]


def rows(name):
    try:
        with open(os.path.join(out, name)) as f:
            return [json.loads(l) for l in f if l.strip()]
    except (OSError, ValueError) as e:
        print("note: %s: %s" % (name, e), file=sys.stderr)
        return []


def size(n):
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return "%d %siB" % (n >> shift, unit)
    return "%d B" % n


bench, anchor, kv = rows("gpu-bench.jsonl"), rows("gpu-anchor.jsonl"), rows("gpu-kvbench.jsonl")
steps = [l.rstrip("\n").split("\t") for l in open(steps_path) if l.strip()]
md = ["# ferry on GPUs: VRAM sweeps (bench/sweep_gpu.sh)", ""]
md += ["    " + l.rstrip() for l in open(host_path)] + [""]

md += ["## Checked passes (ferry-bench --check_consistency, CUDA, VRAM -> VRAM)", ""]
md += ["| op | batch | block sizes | steps | every byte |", "| --- | ---: | --- | ---: | --- |"]
checked = [r for r in bench if r.get("consistency") != "unchecked"]
for op in ("WRITE", "READ"):
    for batch in (1, 64):
        rs = [r for r in checked if r["op_type"] == op and r["batch_size"] == batch]
        if rs:
            bad = [r for r in rs if r["consistency"] != "ok"]
            md.append("| %s | %d | %s..%s | %d | %s |" % (
                op, batch, size(rs[0]["block_size"]), size(rs[-1]["block_size"]), len(rs),
                "ok" if not bad else "FAILED at %s" % size(bad[0]["block_size"])))
md.append("")

sweep = [r for r in bench if r.get("consistency") == "unchecked"]
for batch in (1, 64):
    for op in ("WRITE", "READ"):
        rs = [r for r in sweep if r["op_type"] == op and r["batch_size"] == batch]
        if not rs:
            continue
        anc = {(a["block_size"], a["method"]): a for a in anchor
               if a["op_type"] == op and a["batch_size"] == batch}
        md += ["## ferry-bench %s, batch %d, CUDA backend, VRAM -> VRAM, beside the bare IPC copy"
               % (op, batch), ""]
        head = "| block | ferry GB/s | ferry lat us | post us | anchor GB/s (per block) | ferry/anchor |"
        line = "| ---: | ---: | ---: | ---: | ---: | ---: |"
        if batch > 1:
            head += " contiguous copy GB/s | ferry/contiguous |"
            line += " ---: | ---: |"
        md += [head, line]
        for r in rs:
            a = anc.get((r["block_size"], "per_block"))
            c = anc.get((r["block_size"], "contiguous"))
            ag = a["bandwidth_gbps"] if a else 0
            cells = [size(r["block_size"]), "%.2f" % r["bandwidth_gbps"],
                     "%.1f" % r["avg_latency_us"], "%.1f" % r["post_avg_us"],
                     "%.2f" % ag if a else "-",
                     "%.2f" % (r["bandwidth_gbps"] / ag) if ag else "-"]
            if batch > 1:
                cg = c["bandwidth_gbps"] if c else 0
                cells += ["%.2f" % cg if c else "-",
                          "%.2f" % (r["bandwidth_gbps"] / cg) if cg else "-"]
            md.append("| " + " | ".join(cells) + " |")
        md.append("")

md += ["## ferry-kvbench, CUDA backend, VRAM -> VRAM (decode READs, page 16, checked)", ""]
md += ["| model | TP | ISL | descriptors per request (per rank) | MiB | ms per request | GB/s | "
       "make+post share | check |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
for r in kv:
    md.append("| %s | %d | %d | %d | %.1f | %.3f | %.2f | %.1f%% | %s |" % (
        r["model"], r["tp"], r["isl"], r["descriptors"], r["bytes"] / 2**20,
        r["time_avg_us"] / 1e3, r["bandwidth_gbps"], 100 * r["make_post_share"],
        r["consistency"]))
md.append("")

md += ["## Steps and commands (BUILD: the build folder)", ""]
md += ["| step | result | seconds |", "| --- | --- | ---: |"]
md += ["| %s | %s | %s |" % (s[0], s[1], s[2]) for s in steps]
md += [""] + ["    " + s[3] for s in steps] + [""]
with open(os.path.join(out, "gpu-sweep.md"), "w") as f:
    f.write("\n".join(md) + "\n")
PY
    echo "sweep_gpu: no python3 to write gpu-sweep.md; the .jsonl files hold the rows" >&2
    FAILED=1
fi

# The WRITE sweeps against their anchors, where matplotlib is installed.
grep -h '"op_type": "WRITE"' "$TMP"/sweep-WRITE-*.jsonl >"$TMP/write.jsonl" 2>/dev/null
{ echo "label,block_size,gbps"; tail -q -n +2 "$TMP"/anchor-WRITE-*.csv 2>/dev/null; } >"$TMP/anchors.csv"
if [ -s "$TMP/write.jsonl" ] && [ -n "$PLOTPY" ]; then
    "$PLOTPY" "$FERRY_BENCH_PLOT" --rows "$TMP/write.jsonl" --anchor_csv "$TMP/anchors.csv" \
        --out "$OUT/gpu-sweep.png" \
        --title "ferry CUDA WRITE VRAM->VRAM (2 processes) vs cuMemcpyAsync over IPC" >>"$LOG" 2>&1 ||
        echo "sweep_gpu: the plot failed (see gpu-sweep.log)" >&2
fi

echo "sweep_gpu: $(($(date +%s) - START)) s; results in $OUT:" >&2
ls -1 "$OUT" | sed 's/^/  /' >&2
if [ $FAILED != 0 ]; then
    grep -hE 'FAILED|TIMED OUT|skipped|usage error' "$OUT/gpu-sweep.md" >&2
    echo "sweep_gpu: the first complaint in gpu-sweep.log:" >&2
    grep -m1 -E '^(ferry-[a-z-]+( \([a-z0-9 ]+\))?|mock-cuda\[[0-9]+\]|ferry error.*): ' "$LOG" >&2
fi
exit $FAILED
