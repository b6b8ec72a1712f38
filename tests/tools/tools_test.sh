#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ferry-bench and ferry-kvbench on small sizes: tools_test.sh CASE
# Environment (set by meson): FERRY_BENCH, FERRY_KVBENCH, FERRY_CUDA_ANCHOR
# (the programs), FERRY_SWEEP_GPU (bench/sweep_gpu.sh) and FERRY_BUILD_ROOT,
# FERRY_MOCK_CUDA (the mock CUDA driver, when the CUDA plugin was built),
# FERRY_TEST_UCX (1 when the UCX plugin was built), FERRY_PLUGIN_DIR.
# Exit 0 passed, 1 failed, 77 skipped.
set -u

BENCH=${FERRY_BENCH:?}
KVBENCH=${FERRY_KVBENCH:?}
CUDA_ANCHOR=${FERRY_CUDA_ANCHOR:-}
SWEEP_GPU=${FERRY_SWEEP_GPU:-}
TMP=$(mktemp -d)
ETCD_PID=
BG_PIDS=()
# Whatever a case started (etcd, processes in the background) ends with it.
cleanup() {
    for pid in "${BG_PIDS[@]}" $ETCD_PID; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
# Small sweeps: this host has 2 cores, and UCX RMA between processes on it
# is emulated with active messages (well under 1 GB/s).
SMALL=(--start_block_size 4K --max_block_size 16K --num_iter 16 --warmup_iter 16)

fail() {
    echo "FAIL: $*"
    for f in "$TMP"/out "$TMP"/err; do
        [ -f "$f" ] && { echo "--- $(basename "$f")"; tail -n 40 "$f"; }
    done
    exit 1
}

# run WANT_RC PROGRAM ARGS...: runs it (output in $TMP/out, $TMP/err) and
# fails unless it exits with WANT_RC.
run() {
    local want=$1 rc=0
    shift
    echo "+ $* (want exit $want)"
    "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
    [ "$rc" -eq "$want" ] || fail "exit $rc, wanted $want: $*"
}

has() { # FILE TEXT: the file holds the text
    grep -qF -- "$2" "$1" || fail "$(basename "$1") lacks '$2'"
}

need_ucx() {
    [ "${FERRY_TEST_UCX:-0}" = 1 ] || { echo "SKIP: the UCX plugin was not built"; exit 77; }
}

need_libfabric() {
    [ "${FERRY_TEST_LIBFABRIC:-0}" = 1 ] || { echo "SKIP: the LIBFABRIC plugin was not built"; exit 77; }
}

kv_backend() { if [ "${FERRY_TEST_UCX:-0}" = 1 ]; then echo UCX; else echo LOCAL; fi; }

# check_rows FILE N_ROWS: every JSON row has the fields, numbers, "ok".
check_rows() {
    python3 - "$1" "$2" <<'PY' || fail "JSON rows in $1"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
want = int(sys.argv[2])
assert len(rows) == want, "%d rows, want %d" % (len(rows), want)
keys = ["block_size", "batch_size", "bandwidth_gbps", "avg_latency_us", "prep_avg_us",
        "prep_p99_us", "post_avg_us", "post_p99_us", "xfer_avg_us", "xfer_p99_us"]
for r in rows:
    for k in keys:
        assert isinstance(r[k], (int, float)) and r[k] >= 0, (k, r)
    assert r["bandwidth_gbps"] > 0 and r["avg_latency_us"] > 0, r
    assert r["consistency"] == "ok", r
    assert r["bytes"] == r["iterations"] * r["block_size"] * r["batch_size"] * max(
        r["initiators"], r["targets"]), r
sizes = sorted({r["block_size"] for r in rows})
assert all(b == 2 * a for a, b in zip(sizes, sizes[1:])), sizes
print("rows ok:", len(rows))
PY
}

# ---- ferry-bench ----

bench_consistency() { # BACKEND OP [more ferry-bench options]
    local backend=$1 op=$2
    shift 2
    run 0 "$BENCH" --backend "$backend" --op_type "$op" --check_consistency "${SMALL[@]}" \
        --max_batch_size 2 --json "$TMP/rows.jsonl" "$@"
    has "$TMP/out" "Block Size (B)"
    has "$TMP/out" "P99 Tx (us)"
    [ "$(grep -c ' ok$' "$TMP/out")" -eq 6 ] || fail "want 6 rows checked ok"
    check_rows "$TMP/rows.jsonl" 6
}

bench_corrupt() { # BACKEND OP: a flipped source byte must fail the run
    run 3 "$BENCH" --backend "$1" --op_type "$2" --check_consistency --inject_corruption \
        "${SMALL[@]}"
    has "$TMP/err" "consistency check FAILED at block 4096 x batch 1 ($2)"
    has "$TMP/err" "first bad byte at offset 2048"
    has "$TMP/out" "FAILED"
}

case_bench_local_read() { bench_consistency LOCAL READ; }
case_bench_local_write() { bench_consistency LOCAL WRITE; }
case_bench_local_corrupt() { bench_corrupt LOCAL READ; bench_corrupt LOCAL WRITE; }
case_bench_ucx_read() { need_ucx; bench_consistency UCX READ; }
case_bench_ucx_write() { need_ucx; bench_consistency UCX WRITE; }
# LIBFABRIC on its two software providers: tcp on the loopback interface
# (--device_list is its domain), shm; then ferry-pingpong over shm.
case_bench_libfabric() {
    need_libfabric
    for op in WRITE READ; do
        bench_consistency LIBFABRIC "$op" --backend_params "provider=tcp;ofi_rxm" --device_list lo
        bench_consistency LIBFABRIC "$op" --backend_params provider=shm
    done
    run 0 "${FERRY_PINGPONG:?}" --backend LIBFABRIC --backend_params provider=shm \
        --num_iter 300 --warmup_iter 30
    has "$TMP/out" "ferry-pingpong: LIBFABRIC provider=shm, 8 B, 300 round trips: one way median"
}
case_bench_ucx_corrupt() { need_ucx; bench_corrupt UCX READ; bench_corrupt UCX WRITE; }

# Several processes, threads, new requests each time, CSV.
case_bench_ucx_schemes() {
    need_ucx
    run 0 "$BENCH" --backend UCX --scheme manytoone --num_initiator_dev 2 --op_type WRITE \
        --check_consistency "${SMALL[@]}" --num_threads 2 --json "$TMP/m2o.jsonl"
    has "$TMP/out" "2 initiator + 1 target processes"
    check_rows "$TMP/m2o.jsonl" 3
    run 0 "$BENCH" --backend UCX --scheme tp --num_initiator_dev 1 --num_target_dev 2 \
        --op_type READ --check_consistency "${SMALL[@]}" --recreate_xfer --csv "$TMP/tp.csv"
    has "$TMP/tp.csv" "block_size,batch_size,bandwidth_gbps,avg_latency_us"
    [ "$(wc -l <"$TMP/tp.csv")" -eq 4 ] || fail "want a header and 3 CSV rows"
}

case_bench_local_options() {
    run 0 "$BENCH" --backend=LOCAL --op-type=READ --check_consistency --scheme onetomany \
        --num_target_dev 3 --num_threads 2 --reregister_mem --enable_pt --start_block_size 4KiB \
        --max_block_size 8k --max_batch_size 4 -num_iter 8 --warmup_iter=0 \
        --json "$TMP/rows.jsonl"
    has "$TMP/err" "adjusting --num_iter to 32"
    check_rows "$TMP/rows.jsonl" 6
    printf 'backend = "LOCAL"\nop_type = "WRITE"  # a comment\nmax_block_size = 8192\n' \
        >"$TMP/cfg.toml"
    printf 'check_consistency = true\nnum_iter = 16\nwarmup_iter = 16\n' >>"$TMP/cfg.toml"
    run 0 "$BENCH" --config_file "$TMP/cfg.toml" --max_batch_size 2 --json "$TMP/cfg.jsonl"
    has "$TMP/out" "Op type (--op_type)"
    check_rows "$TMP/cfg.jsonl" 4
}

case_bench_usage() {
    run 2 "$BENCH" --runtime_type ASIO
    has "$TMP/err" "--runtime_type ASIO: want ETCD"
    run 2 "$BENCH" --etcd_endpoints http://127.0.0.1:1 --benchmark_group a/b
    has "$TMP/err" "--benchmark_group 'a/b': want 1 to 64 letters"
    run 2 "$BENCH" --etcd_endpoints http://127.0.0.1:1 --scheme tp --num_initiator_dev 2
    has "$TMP/err" "etcd mode runs one initiator process"
    run 2 "$BENCH" --runtime_type ETCD --etcd_timeout 0
    has "$TMP/err" "want --etcd_timeout >= 1"
    run 2 "$BENCH" --backend LOCAL --initiator_seg_type VRAM
    has "$TMP/err" "--initiator_seg_type VRAM: not supported by backend LOCAL"
    run 2 "$BENCH" --backend LOCAL --target_seg_type FILE --filepath /tmp/x
    has "$TMP/err" "--target_seg_type FILE: not supported"
    run 2 "$BENCH" --backend NOSUCH
    has "$TMP/err" "backend NOSUCH: not found (available:"
    run 2 "$BENCH" --op_type MOVE
    run 2 "$BENCH" --mode MG
    has "$TMP/err" "not supported by this build"
    run 2 "$BENCH" --scheme pairwise --num_initiator_dev 2 --num_target_dev 1
    has "$TMP/err" "pairwise needs"
    run 2 "$BENCH" --max_block_size 64Q
    has "$TMP/err" "want a size"
    run 2 "$BENCH" --no_such_option
    has "$TMP/err" "unknown option --no_such_option"
    run 2 "$BENCH" --max_block_size 1G --total_buffer_size 512M
    has "$TMP/err" "--total_buffer_size"
    run 0 "$BENCH" --help
    has "$TMP/out" "--start_block_size"
}

case_bench_plot() {
    printf 'label,block_size,gbps\nanchor,4K,1.5\nanchor,16384,3\n' >"$TMP/anchor.csv"
    local args=(--backend LOCAL "${SMALL[@]}" --plot "$TMP/sweep.png" --anchor_csv "$TMP/anchor.csv")
    # ferry-bench uses python3 on PATH, else Debian's /usr/bin/python3.
    if python3 -c 'import matplotlib' 2>/dev/null ||
        /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
        run 0 "$BENCH" "${args[@]}"
        python3 -c 'import sys; sys.exit(open(sys.argv[1], "rb").read(8) != b"\x89PNG\r\n\x1a\n")' \
            "$TMP/sweep.png" || fail "$TMP/sweep.png is not a PNG"
    else
        run 4 "$BENCH" "${args[@]}"
        has "$TMP/err" "matplotlib is missing"
        [ ! -e "$TMP/sweep.png" ] || fail "a PNG without matplotlib?"
    fi
}

# ---- ferry-kvbench ----

case_kvbench_shapes() {
    run 0 "$KVBENCH" --model Llama-3.1-70B --tp 8 --page_size 16 --isl 8192 --dry_run
    has "$TMP/out" "per rank 8/8 = 1 KV head(s), 80 layers, K and V: 160 regions"
    has "$TMP/out" "= 4096 B per layer and K/V"
    has "$TMP/out" "512 blocks per request"
    has "$TMP/out" "81920 descriptors (per_block), 320.00 MiB"
    run 0 "$KVBENCH" --model DeepSeek-R1 --tp 8 --isl 1000 --access per_layer --dry_run
    has "$TMP/out" "block = 16 tokens x 576 values x 2 B = 18432 B per layer"
    has "$TMP/out" "63 blocks per request"
    has "$TMP/out" "61 descriptors (per_layer)"
    run 0 "$KVBENCH" --model GPT-OSS-120B --tp 16 --dry_run
    has "$TMP/out" "replicated"
    run 0 "$KVBENCH" --model Qwen3-32B --tp 4 --pp 2 --kv_dtype fp8 --dry_run
    has "$TMP/out" "per rank 8/4 = 2 KV head(s), 32 layers"
    has "$TMP/out" "16 tokens x 256 values x 1 B = 4096 B"
    run 0 "$KVBENCH" --list_models
    for m in Llama-3.1-8B Llama-3.1-70B Qwen3-32B DeepSeek-R1 GPT-OSS-120B; do has "$TMP/out" "$m"; done
    run 2 "$KVBENCH" --model Llama-3.1-8B --tp 3 --dry_run
    run 2 "$KVBENCH" --model NoSuchModel
}

check_kv_json() { # FILE MODEL DESCRIPTORS
    python3 - "$@" <<'PY' || fail "kvbench JSON in $1"
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert r["model"] == sys.argv[2] and r["descriptors"] == int(sys.argv[3]), r
assert r["consistency"] == "ok" and r["bandwidth_gbps"] > 0 and r["time_avg_us"] > 0, r
assert 0 <= r["make_post_share"] <= 1, r
print("kvbench json ok")
PY
}

case_kvbench_llama() {
    run 0 "$KVBENCH" --model Llama-3.1-8B --isl 128 --backend "$(kv_backend)" \
        --check_consistency --num_iter 3 --json "$TMP/kv.json"
    has "$TMP/out" "time per request"
    has "$TMP/out" "of the time; moving data"
    check_kv_json "$TMP/kv.json" Llama-3.1-8B 512
}

case_kvbench_deepseek() {
    run 0 "$KVBENCH" --model DeepSeek-R1 --isl 100 --access per_layer --op_type WRITE \
        --backend "$(kv_backend)" --check_consistency --num_iter 3 --json "$TMP/kv.json"
    check_kv_json "$TMP/kv.json" DeepSeek-R1 61
    run 0 "$KVBENCH" --model DeepSeek-R1 --isl 64 --backend LOCAL --check_consistency \
        --num_iter 2 --json "$TMP/kv2.json"
    check_kv_json "$TMP/kv2.json" DeepSeek-R1 244
}

case_kvbench_corrupt() {
    run 3 "$KVBENCH" --model Llama-3.1-8B --isl 64 --backend LOCAL --check_consistency \
        --inject_corruption --num_iter 1
    has "$TMP/err" "first bad byte at offset 16384 of 32768"
    run 3 "$KVBENCH" --model DeepSeek-R1 --isl 64 --backend "$(kv_backend)" --op_type WRITE \
        --check_consistency --inject_corruption --num_iter 1
    has "$TMP/err" "layer 0 latent, request block 0"
}

# ---- etcd mode: processes started apart find each other through etcd ----

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# etcd_kv count PREFIX | put KEY VALUE: through etcd's JSON gateway at $ETCD.
etcd_kv() {
    python3 - "$ETCD" "$@" <<'PY'
import base64, json, sys, urllib.request
url, op, key = sys.argv[1:4]
b64 = lambda s: base64.b64encode(s.encode()).decode()
end = key[:-1] + chr(ord(key[-1]) + 1)
path, body = {
    "count": ("/v3/kv/range", {"key": b64(key), "range_end": b64(end), "count_only": True}),
    "put": ("/v3/kv/put", {"key": b64(key), "value": b64(sys.argv[-1])}),
}[op]
req = urllib.request.Request(url + path, json.dumps(body).encode(),
                             {"Content-Type": "application/json"})
ans = json.load(urllib.request.urlopen(req, timeout=5))
if op == "count":
    print(int(ans.get("count", 0)))
PY
}

# An etcd on free loopback ports with its data in $TMP (Debian etcd-server;
# skipped without it), up within 10 s; $ETCD is its URL. cleanup stops it.
start_etcd() {
    command -v etcd >/dev/null || { echo "SKIP: no etcd binary (Debian etcd-server)"; exit 77; }
    local port peer
    port=$(free_port) peer=$(free_port)
    ETCD=http://127.0.0.1:$port
    etcd --data-dir "$TMP/etcd" --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
        --listen-peer-urls "http://127.0.0.1:$peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "default=http://127.0.0.1:$peer" >"$TMP/etcd.log" 2>&1 &
    ETCD_PID=$!
    for _ in $(seq 100); do
        etcd_kv count / >/dev/null 2>&1 && return
        sleep 0.1
    done
    fail "etcd did not start at $ETCD: $(tail -n 3 "$TMP/etcd.log")"
}

# wait_keys GROUP[/WHAT] WANT SECONDS: until etcd holds WANT keys under
# the group's prefix (or its WHAT/, e.g. rank), at least WANT with +; or fail.
wait_keys() {
    local n
    for _ in $(seq $(($3 * 10))); do
        n=$(etcd_kv count "/ferry/bench/$1/")
        case $2 in
        +*) [ "$n" -ge "${2#+}" ] && return ;;
        *) [ "$n" -eq "$2" ] && return ;;
        esac
        sleep 0.1
    done
    fail "etcd holds $n keys of /ferry/bench/$1/ after $3 s, want $2"
}

# start_apart TAG PROGRAM ARGS...: one process of a run, in the background
# (output in $TMP/TAG.out, .err); its pid in $LAST.
start_apart() {
    local tag=$1
    shift
    echo "+ $* & (as $tag)"
    "$@" >"$TMP/$tag.out" 2>"$TMP/$tag.err" &
    LAST=$!
    BG_PIDS+=("$LAST")
}

# finish TAG PID WANT_RC: waits for it; on another exit code its output is
# shown ($TMP/out, $TMP/err are the ones has() then reads).
finish() {
    local rc=0
    wait "$2" || rc=$?
    cp "$TMP/$1.out" "$TMP/out"
    cp "$TMP/$1.err" "$TMP/err"
    [ "$rc" -eq "$3" ] || fail "$1: exit $rc, wanted $3"
}

# The processes of one run: the first to join (the one started first here,
# given its rank before the next starts) is the initiator.
ETCD_SMALL=(--backend SHM --check_consistency "${SMALL[@]}" --etcd_timeout 60)

case_bench_etcd_pair() {
    start_etcd
    local g=(--etcd_endpoints "$ETCD" --benchmark_group pair)
    start_apart init "$BENCH" "${g[@]}" "${ETCD_SMALL[@]}" --max_batch_size 2 \
        --json "$TMP/rows.jsonl"
    local init=$LAST
    wait_keys pair/rank +1 20
    start_apart target "$BENCH" "${g[@]}" "${ETCD_SMALL[@]}" --max_batch_size 2
    finish target $LAST 0
    has "$TMP/out" "ferry-bench: target 0 of group pair (rank 1 of 2, etcd $ETCD)"
    has "$TMP/out" "ferry-bench: target 0: done"
    finish init "$init" 0
    has "$TMP/out" "etcd $ETCD, group pair: 1 initiator + 1 target processes started apart"
    [ "$(grep -c ' ok$' "$TMP/out")" -eq 6 ] || fail "want 6 rows checked ok"
    check_rows "$TMP/rows.jsonl" 6
    wait_keys pair 0 5 # both left: no key stays behind
    # nixlbench's spelling: --runtime_type ETCD, READ, two targets.
    g=(--runtime_type ETCD --etcd_endpoints "$ETCD" --benchmark_group pair2 --op_type READ
        --scheme onetomany --num_target_dev 2)
    start_apart init "$BENCH" "${g[@]}" "${ETCD_SMALL[@]}"
    init=$LAST
    wait_keys pair2/rank +1 20
    start_apart t0 "$BENCH" "${g[@]}" "${ETCD_SMALL[@]}"
    local t0=$LAST
    wait_keys pair2/rank +2 20
    start_apart t1 "$BENCH" "${g[@]}" "${ETCD_SMALL[@]}"
    finish t1 $LAST 0
    has "$TMP/out" "target 1 of group pair2 (rank 2 of 3"
    finish t0 "$t0" 0
    finish init "$init" 0
    [ "$(grep -c ' ok$' "$TMP/out")" -eq 3 ] || fail "want 3 rows checked ok"
}

# Two runs at once on one etcd, in two groups: neither sees the other.
# A third process in a full group, and one whose options differ from rank
# 0's, are refused; the initiator left alone then times out.
case_bench_etcd_groups() {
    start_etcd
    local pids=() tag
    for tag in a b; do
        start_apart "init_$tag" "$BENCH" --etcd_endpoints "$ETCD" --benchmark_group "run_$tag" \
            "${ETCD_SMALL[@]}"
        pids+=("$LAST")
        wait_keys "run_$tag"/rank +1 20
    done
    for tag in a b; do
        start_apart "target_$tag" "$BENCH" --etcd_endpoints "$ETCD" \
            --benchmark_group "run_$tag" "${ETCD_SMALL[@]}"
        pids+=("$LAST")
    done
    finish target_a "${pids[2]}" 0
    has "$TMP/out" "target 0 of group run_a (rank 1 of 2"
    finish target_b "${pids[3]}" 0
    has "$TMP/out" "target 0 of group run_b (rank 1 of 2"
    for tag in a b; do
        finish "init_$tag" "${pids[0]}" 0
        has "$TMP/out" "group run_$tag: 1 initiator + 1 target processes"
        [ "$(grep -c ' ok$' "$TMP/out")" -eq 3 ] || fail "init_$tag: want 3 rows checked ok"
        pids=("${pids[@]:1}")
    done
    # Two ranks held (keys written as a run's processes write them).
    etcd_kv put /ferry/bench/full/rank/0 "options of rank 0"
    etcd_kv put /ferry/bench/full/rank/1 "options of rank 1"
    run 1 "$BENCH" --etcd_endpoints "$ETCD" --benchmark_group full "${ETCD_SMALL[@]}"
    has "$TMP/err" "group full at $ETCD is full: its 2 processes are there already"
    start_apart init "$BENCH" --etcd_endpoints "$ETCD" --benchmark_group mixed "${ETCD_SMALL[@]}" \
        --etcd_timeout 5
    local init=$LAST
    wait_keys mixed/rank +1 20
    run 2 "$BENCH" --etcd_endpoints "$ETCD" --benchmark_group mixed --backend SHM \
        --check_consistency --max_block_size 32K --num_iter 16 --warmup_iter 16
    has "$TMP/err" "group mixed: options differ from rank 0's"
    finish init "$init" 1
    has "$TMP/err" "timed out after 5 s (--etcd_timeout) at barrier 'joined': 1 of 2 processes there (1 in the group)"
}

# A process alone times out with the reason, within its --etcd_timeout; a
# killed one's rank frees itself (its lease runs out); no etcd: the reason.
case_bench_etcd_timeout() {
    start_etcd
    local t0=$SECONDS
    run 1 "$BENCH" --etcd_endpoints "$ETCD" --benchmark_group alone "${ETCD_SMALL[@]}" \
        --etcd_timeout 2
    [ $((SECONDS - t0)) -le 15 ] || fail "a 2 s timeout took $((SECONDS - t0)) s"
    has "$TMP/err" "group alone at $ETCD: timed out after 2 s (--etcd_timeout) at barrier 'joined': 1 of 2 processes there (1 in the group); start the others"
    wait_keys alone 0 5
    start_apart killed "$BENCH" --etcd_endpoints "$ETCD" --benchmark_group alone "${ETCD_SMALL[@]}"
    local pid=$LAST
    wait_keys alone/rank +1 20
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    wait_keys alone 0 20 # the lease's TTL is 10 s
    # An initiator killed mid-run: its target learns it from etcd.
    local long=(--etcd_endpoints "$ETCD" --benchmark_group dies --backend SHM
        --max_block_size 16K --num_iter 5000000)
    start_apart init "$BENCH" "${long[@]}"
    pid=$LAST
    wait_keys dies/rank +1 20
    start_apart target "$BENCH" "${long[@]}"
    local target=$LAST
    wait_keys dies/barrier/ready +2 20
    sleep 1
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    t0=$SECONDS
    finish target "$target" 1
    [ $((SECONDS - t0)) -le 20 ] || fail "the target took $((SECONDS - t0)) s to notice"
    has "$TMP/err" "group dies: rank 0 left without saying goodbye"
    run 1 "$BENCH" --etcd_endpoints "http://127.0.0.1:$(free_port)" "${ETCD_SMALL[@]}"
    has "$TMP/err" "(--etcd_endpoints): lease: I/O error; is etcd running there?"
}

case_kvbench_etcd() {
    start_etcd
    local args=(--model Llama-3.1-8B --isl 64 --backend SHM --check_consistency --num_iter 3
        --etcd_endpoints "$ETCD" --benchmark_group kv --etcd_timeout 60)
    start_apart decode "$KVBENCH" "${args[@]}" --json "$TMP/kv.json"
    local decode=$LAST
    wait_keys kv/rank +1 20
    start_apart prefill "$KVBENCH" "${args[@]}"
    finish prefill $LAST 0
    has "$TMP/out" "ferry-kvbench: kv-prefill (rank 1 of group kv at $ETCD): serving"
    has "$TMP/out" "ferry-kvbench: kv-prefill: done"
    finish decode "$decode" 0
    has "$TMP/out" "decode READs from prefill (2 processes)"
    check_kv_json "$TMP/kv.json" Llama-3.1-8B 256
    wait_keys kv 0 5
}

# ---- storage: POSIX on files and volumes, OBJ against moto_server ----

# The tools create their files in $TMP/files and remove them at the end.
STORE=$TMP/files
mkdir -p "$STORE"
no_files_left() {
    [ -z "$(ls -A "$STORE")" ] || fail "files left in $STORE: $(ls "$STORE")"
}

# S3: with_s3.py starts moto_server and runs the command against a fresh
# bucket (AWS_* variables); it exits 77 where moto is not installed.
WITH_S3=${FERRY_WITH_S3:-}
need_s3() {
    local rc=0
    [ -n "$WITH_S3" ] || { echo "SKIP: FERRY_WITH_S3 not set"; exit 77; }
    "$WITH_S3" true >"$TMP/out" 2>&1 || rc=$?
    [ $rc -eq 77 ] && { echo "SKIP: $(cat "$TMP/out")"; exit 77; }
    [ $rc -eq 0 ] || fail "with_s3.py true: exit $rc"
}

need_posix() {
    [ -e "$FERRY_PLUGIN_DIR/libferry_plugin_posix.so" ] ||
        { echo "SKIP: the POSIX plugin was not built"; exit 77; }
}

FILE_BENCH=(--backend POSIX --filepath "$STORE" "${SMALL[@]}" --max_batch_size 2
            --check_consistency)

# FILE and BLOCK, both engines, buffered and O_DIRECT, threads spread over
# files: written, then read back, every byte checked.
case_storage_bench_file() {
    need_posix
    local seg api direct
    for seg in FILE BLOCK; do
        for api in URING AIO; do
            for direct in false true; do
                run 0 "$BENCH" "${FILE_BENCH[@]}" --target_seg_type $seg --op_type WRITE \
                    --posix_api_type $api --storage_enable_direct=$direct --num_threads 2 \
                    --num_files 2 --json "$TMP/w.jsonl"
                check_rows "$TMP/w.jsonl" 6
                check_seg "$TMP/w.jsonl" DRAM $seg
                run 0 "$BENCH" "${FILE_BENCH[@]}" --target_seg_type $seg --op_type READ \
                    --posix_api_type $api --storage_enable_direct=$direct --json "$TMP/r.jsonl"
                check_rows "$TMP/r.jsonl" 6
                no_files_left
            done
        done
    done
    has "$TMP/out" "Num files (--num_files)"
    has "$TMP/out" "transport: POSIX"
    run 3 "$BENCH" "${FILE_BENCH[@]}" --target_seg_type FILE --op_type READ --inject_corruption
    has "$TMP/err" "consistency check FAILED at block 4096 x batch 1 (READ)"
    run 3 "$BENCH" "${FILE_BENCH[@]}" --target_seg_type FILE --op_type WRITE --inject_corruption
    has "$TMP/err" "first bad byte at offset 2048"
    no_files_left
    printf 'x' >"$TMP/mine.bin"
    run 0 "$BENCH" "${FILE_BENCH[@]}" --target_seg_type FILE --filenames "$TMP/mine.bin"
    [ -f "$TMP/mine.bin" ] || fail "--filenames: a file the user named was removed"
}

case_storage_bench_obj() {
    need_s3
    local op
    for op in WRITE READ; do
        run 0 "$WITH_S3" "$BENCH" --backend OBJ --target_seg_type OBJ --op_type $op \
            "${SMALL[@]}" --max_batch_size 2 --check_consistency --json "$TMP/o.jsonl"
        check_rows "$TMP/o.jsonl" 6
        check_seg "$TMP/o.jsonl" DRAM OBJ
    done
    has "$TMP/out" "Objects"
    run 3 "$WITH_S3" "$BENCH" --backend OBJ --target_seg_type OBJ --op_type READ \
        "${SMALL[@]}" --check_consistency --inject_corruption
    has "$TMP/err" "first bad byte at offset 2048"
    # nixlbench's --obj_* options become the backend's params.
    run 0 "$WITH_S3" sh -c 'exec "$0" --backend OBJ --target_seg_type OBJ \
        --obj_bucket_name "$AWS_DEFAULT_BUCKET" --obj_endpoint_override "$FERRY_S3_URL" \
        --obj_access_key testing --obj_secret_key testing --obj_region us-east-1 \
        --obj_req_checksum required --start_block_size 4K --max_block_size 4K --num_iter 4 \
        --warmup_iter 0 --check_consistency' "$BENCH"
    has "$TMP/out" "bucket=ferry-"
    run 1 "$WITH_S3" "$BENCH" --backend OBJ --target_seg_type OBJ --obj_bucket_name no-such-bkt \
        --op_type READ --start_block_size 4K --max_block_size 4K --num_iter 4 --warmup_iter 0
    has "$TMP/err" "no-such-bkt"
}

case_storage_bench_usage() {
    need_posix
    run 2 "$BENCH" --backend POSIX --initiator_seg_type FILE
    has "$TMP/err" "storage is the target side"
    run 2 "$BENCH" --backend POSIX --target_seg_type FILE --num_files 3 --filepath "$STORE"
    has "$TMP/err" "must spread evenly over the files"
    run 2 "$BENCH" --backend POSIX --target_seg_type FILE --posix_api_type FOO
    has "$TMP/err" "want AIO, URING or POSIXAIO"
    run 2 "$BENCH" --backend POSIX --target_seg_type FILE --posix_api_type POSIXAIO
    has "$TMP/err" "POSIX AIO (glibc aio_*) is not an engine"
    run 2 "$BENCH" --backend OBJ --target_seg_type OBJ --obj_scheme ftp
    has "$TMP/err" "want http or https"
    run 2 "$BENCH" --backend OBJ --target_seg_type OBJ --obj_accelerated_enable
    has "$TMP/err" "no accelerated client"
    run 2 "$BENCH" --backend POSIX --target_seg_type FILE --filepath "$TMP/none" "${SMALL[@]}"
    has "$TMP/err" "cannot open $TMP/none/"
    run 2 "$BENCH" --backend POSIX --target_seg_type FILE --filenames a,b --num_target_dev 2 \
        --scheme onetomany
    has "$TMP/err" "--filenames: one target"
    run 0 "$BENCH" "${FILE_BENCH[@]}" --target_seg_type FILE --obj_bucket_name b
    has "$TMP/err" "--obj_* options apply to the OBJ backend only"
    no_files_left
}

# A model's KV blocks offloaded (WRITE) and read back (READ), verified.
KV_SMALL=(--model Llama-3.1-8B --isl 128 --num_iter 3 --warmup_iter 1 --check_consistency)

case_kvbench_storage_file() {
    need_posix
    local seg
    for seg in FILE BLOCK; do
        run 0 "$KVBENCH" "${KV_SMALL[@]}" --backend POSIX --target_seg_type $seg \
            --filepath "$STORE" --op_type WRITE --json "$TMP/kv.json"
        has "$TMP/out" "offload to storage (WRITE), DRAM -> $seg"
        check_kv_json "$TMP/kv.json" Llama-3.1-8B 512
        run 0 "$KVBENCH" "${KV_SMALL[@]}" --backend POSIX --target_seg_type $seg \
            --filepath "$STORE" --op_type READ --storage_enable_direct --json "$TMP/kv.json"
        has "$TMP/out" "read back (READ)"
        check_kv_json "$TMP/kv.json" Llama-3.1-8B 512
        no_files_left
    done
    run 0 "$KVBENCH" --model DeepSeek-R1 --isl 100 --access per_layer --backend POSIX \
        --target_seg_type FILE --filepath "$STORE" --op_type WRITE --check_consistency \
        --num_iter 2 --json "$TMP/kv.json"
    check_kv_json "$TMP/kv.json" DeepSeek-R1 61
    run 3 "$KVBENCH" "${KV_SMALL[@]}" --backend POSIX --target_seg_type FILE \
        --filepath "$STORE" --op_type WRITE --inject_corruption
    has "$TMP/err" "first bad byte at offset 16384 of 32768"
    run 2 "$KVBENCH" "${KV_SMALL[@]}" --backend POSIX --target_seg_type FILE \
        --filepath "$TMP/none"
    has "$TMP/err" "--filepath $TMP/none"
    no_files_left
}

case_kvbench_storage_obj() {
    need_s3
    run 0 "$WITH_S3" "$KVBENCH" "${KV_SMALL[@]}" --isl 64 --backend OBJ --target_seg_type OBJ \
        --op_type WRITE --json "$TMP/kv.json"
    check_kv_json "$TMP/kv.json" Llama-3.1-8B 256
    run 0 "$WITH_S3" "$KVBENCH" "${KV_SMALL[@]}" --isl 64 --backend OBJ --target_seg_type OBJ \
        --op_type READ --access per_layer --json "$TMP/kv.json"
    check_kv_json "$TMP/kv.json" Llama-3.1-8B 64
    run 3 "$WITH_S3" "$KVBENCH" "${KV_SMALL[@]}" --isl 64 --backend OBJ --target_seg_type OBJ \
        --op_type READ --inject_corruption
    has "$TMP/err" "first bad byte at offset 16384 of 32768"
}

# ---- VRAM (the CUDA backend against the mock driver) ----

# The mock driver stands in for libcuda.so.1 (tests/gpu/mock_cuda.c): its
# "GPU memory" is shared memory another process can map, so ferry-bench's
# target processes and CUDA IPC work here. FY_MOCK_GPUS: GPUs it shows (2).
need_mock() {
    [ -n "${FERRY_MOCK_CUDA:-}" ] || { echo "SKIP: the CUDA plugin was not built"; exit 77; }
    export FERRY_CUDA_LIB=$FERRY_MOCK_CUDA
}
VRAM=(--backend CUDA --initiator_seg_type VRAM --target_seg_type VRAM)

# check_seg FILE INITIATOR TARGET: every JSON row names the memory types.
check_seg() {
    python3 - "$@" <<'PY' || fail "segment types in $1"
import json, sys
for r in map(json.loads, filter(str.strip, open(sys.argv[1]))):
    assert (r["initiator_seg_type"], r["target_seg_type"]) == tuple(sys.argv[2:4]), r
PY
}

case_vram_bench() {
    need_mock
    for op in WRITE READ; do
        run 0 "$BENCH" "${VRAM[@]}" --op_type $op --check_consistency "${SMALL[@]}" \
            --max_batch_size 4 --json "$TMP/rows.jsonl"
        has "$TMP/out" "1 initiator + 1 target processes"
        has "$TMP/out" "Initiator seg type (--initiator_seg_type)           : VRAM (GPU 0)"
        has "$TMP/out" "Target seg type (--target_seg_type)                 : VRAM (GPU 1)"
        check_rows "$TMP/rows.jsonl" 9
        check_seg "$TMP/rows.jsonl" VRAM VRAM
    done
    # One GPU: both processes share it (CUDA IPC on one device).
    FY_MOCK_GPUS=1 run 0 "$BENCH" "${VRAM[@]}" --op_type WRITE --check_consistency \
        "${SMALL[@]}" --json "$TMP/one.jsonl"
    has "$TMP/out" "Target seg type (--target_seg_type)                 : VRAM (GPU 0)"
    check_rows "$TMP/one.jsonl" 3
    # Several targets, threads, new requests: processes take GPUs in turn.
    run 0 "$BENCH" "${VRAM[@]}" --scheme tp --num_target_dev 2 --num_threads 2 --recreate_xfer \
        --op_type READ --check_consistency "${SMALL[@]}" --json "$TMP/tp.jsonl"
    has "$TMP/out" "VRAM (GPUs 1 0)"
    check_rows "$TMP/tp.jsonl" 3
}

# GPU memory against files: the POSIX backend's staged path (and GDS with
# the fake libcufile of plugins/gds/tests when it was built), both
# directions, buffered and O_DIRECT, every byte checked.
case_vram_storage_file() {
    need_mock
    need_posix
    local op direct
    for op in WRITE READ; do
        for direct in false true; do
            run 0 "$BENCH" "${FILE_BENCH[@]}" --initiator_seg_type VRAM --target_seg_type FILE \
                --op_type $op --storage_enable_direct=$direct --backend_params bounce_size=8192 \
                --json "$TMP/v.jsonl"
            has "$TMP/out" "Initiator seg type (--initiator_seg_type)           : VRAM (GPU 0, one process)"
            check_seg "$TMP/v.jsonl" VRAM FILE
        done
    done
    run 0 "$KVBENCH" "${KV_SMALL[@]}" --backend POSIX --initiator_seg_type VRAM \
        --target_seg_type FILE --filepath "$STORE" --op_type WRITE --json "$TMP/kv.json"
    has "$TMP/out" "VRAM (GPU 0) -> FILE"
    check_seg "$TMP/kv.json" VRAM FILE
    local cufile=$FERRY_BUILD_ROOT/plugins/gds/tests/libfy_mockcufile.so
    if [ -e "$cufile" ]; then
        FERRY_CUFILE_LIB=$cufile run 0 "$BENCH" --backend GDS_MT --gds_mt_num_threads 2 \
            --filepath "$STORE" "${SMALL[@]}" --max_batch_size 2 --check_consistency \
            --initiator_seg_type VRAM --target_seg_type FILE --json "$TMP/g.jsonl"
        check_seg "$TMP/g.jsonl" VRAM FILE
    fi
    no_files_left
}

case_vram_bench_corrupt() {
    need_mock
    for op in READ WRITE; do
        run 3 "$BENCH" "${VRAM[@]}" --op_type $op --check_consistency --inject_corruption \
            "${SMALL[@]}"
        has "$TMP/err" "consistency check FAILED at block 4096 x batch 1 ($op)"
        has "$TMP/err" "first bad byte at offset 2048"
    done
}

# DRAM on one side: CUDA pins it, but reaches only its own process's DRAM.
case_vram_bench_mixed() {
    need_mock
    for op in READ WRITE; do
        run 0 "$BENCH" --backend CUDA --initiator_seg_type DRAM --target_seg_type VRAM \
            --op_type $op --check_consistency "${SMALL[@]}" --json "$TMP/rows.jsonl"
        check_rows "$TMP/rows.jsonl" 3
        check_seg "$TMP/rows.jsonl" DRAM VRAM
    done
    run 2 "$BENCH" --backend CUDA --initiator_seg_type VRAM --target_seg_type DRAM "${SMALL[@]}"
    has "$TMP/err" "backend CUDA cannot move VRAM -> DRAM with fb-target-0"
    run 2 "$BENCH" --backend CUDA "${SMALL[@]}"
    has "$TMP/err" "backend CUDA cannot move DRAM -> DRAM with fb-target-0"
    run 2 "$KVBENCH" --model Llama-3.1-8B --isl 64 --backend CUDA --initiator_seg_type VRAM
    has "$TMP/err" "backend CUDA cannot move VRAM -> DRAM with kv-prefill"
}

# Combinations that cannot run: one clear line, exit 2, no crash.
case_vram_usage() {
    need_mock
    run 2 "$BENCH" --backend LOCAL --initiator_seg_type VRAM --target_seg_type VRAM
    has "$TMP/err" "--initiator_seg_type VRAM: not supported by backend LOCAL (it serves: DRAM)"
    run 2 "$KVBENCH" --model Llama-3.1-8B --backend LOCAL --target_seg_type VRAM
    has "$TMP/err" "--target_seg_type VRAM: not supported by backend LOCAL"
    if [ "${FERRY_TEST_UCX:-0}" = 1 ]; then
        # This host's UCX has no CUDA transports, so the plugin serves DRAM only.
        run 2 "$BENCH" --backend UCX "${VRAM[@]:2}"
        has "$TMP/err" "--initiator_seg_type VRAM: not supported by backend UCX"
    fi
    run 2 "$BENCH" "${VRAM[@]}" --target_seg_type HBM
    has "$TMP/err" "--target_seg_type HBM: unknown segment type"
    FERRY_CUDA_LIB=/nonexistent/libcuda.so.1 run 2 "$BENCH" "${VRAM[@]}"
    has "$TMP/err" "backend CUDA: not supported on this host (no usable CUDA driver:"
    FERRY_CUDA_LIB=/nonexistent/libcuda.so.1 run 2 "$KVBENCH" --model Llama-3.1-8B "${VRAM[@]}"
    has "$TMP/err" "no usable CUDA driver"
    FERRY_CUDA_LIB=/nonexistent/libcuda.so.1 run 2 "$CUDA_ANCHOR"
    has "$TMP/err" "ferry-cuda-anchor: no usable CUDA driver"
    # No GPU at all: the driver loads and sees none.
    FY_MOCK_GPUS=0 run 2 "$BENCH" "${VRAM[@]}"
    has "$TMP/err" "no usable CUDA driver"
}

case_vram_kvbench() {
    need_mock
    run 0 "$KVBENCH" --model Llama-3.1-8B --isl 128 "${VRAM[@]}" --check_consistency \
        --num_iter 3 --json "$TMP/kv.json"
    has "$TMP/out" "decode READs from prefill (2 processes), VRAM (GPU 0) -> VRAM (GPU 1)"
    check_kv_json "$TMP/kv.json" Llama-3.1-8B 512
    check_seg "$TMP/kv.json" VRAM VRAM
    FY_MOCK_GPUS=1 run 0 "$KVBENCH" --model DeepSeek-R1 --isl 100 --access per_layer \
        --op_type WRITE "${VRAM[@]}" --check_consistency --num_iter 3 --json "$TMP/kv.json"
    has "$TMP/out" "VRAM (GPU 0) -> VRAM (GPU 0)"
    check_kv_json "$TMP/kv.json" DeepSeek-R1 61
    run 0 "$KVBENCH" --model Llama-3.1-70B --tp 8 --isl 64 --backend CUDA \
        --target_seg_type VRAM --check_consistency --num_iter 2 --json "$TMP/kv.json"
    check_kv_json "$TMP/kv.json" Llama-3.1-70B 640
    check_seg "$TMP/kv.json" DRAM VRAM
    for op in READ WRITE; do
        run 3 "$KVBENCH" --model Qwen3-32B --tp 4 --isl 64 "${VRAM[@]}" --op_type $op \
            --check_consistency --inject_corruption --num_iter 1
        has "$TMP/err" "layer 0 K, request block 0"
    done
}

case_vram_anchor() {
    need_mock
    run 0 "$CUDA_ANCHOR" --op_type READ --max_block_size 16K --batch_size 4 --num_iter 8 \
        --json "$TMP/a.jsonl" --anchor_csv "$TMP/a.csv"
    has "$TMP/out" "READ, GPU 0 <- GPU 1 (target process), CUDA IPC"
    [ "$(grep -c '"method": "per_block"' "$TMP/a.jsonl")" -eq 3 ] || fail "want 3 per_block rows"
    [ "$(grep -c '"method": "contiguous"' "$TMP/a.jsonl")" -eq 3 ] || fail "want 3 contiguous rows"
    has "$TMP/a.csv" "label,block_size,gbps"
    has "$TMP/a.csv" "cuMemcpyAsync IPC (per_block batch 4),16384,"
    FY_MOCK_GPUS=1 run 0 "$CUDA_ANCHOR" --max_block_size 8K --num_iter 8
    has "$TMP/out" "WRITE, GPU 0 -> GPU 0"
    run 2 "$CUDA_ANCHOR" --batch_size 0
}

# bench/sweep_gpu.sh on tiny sizes: what the GPU host will run, end to end.
case_vram_sweep_script() {
    need_mock
    local build=${FERRY_BUILD_ROOT:?} out="$TMP/sweep"
    SWEEP_GPU_QUICK=1 run 0 "$SWEEP_GPU" "$build" "$out"
    [ "$(find "$out" -type f | wc -l)" -le 6 ] || fail "more than 6 files in $out"
    [ -z "$(find "$out" -mindepth 1 -type d)" ] || fail "$out is not flat"
    local md="$out/gpu-sweep.md"
    has "$md" "| WRITE | 64 | 4 KiB..16 KiB | 3 | ok |"
    has "$md" "| READ | 1 | 4 KiB..64 KiB | 5 | ok |"
    has "$md" "## ferry-bench READ, batch 64, CUDA backend, VRAM -> VRAM, beside the bare IPC copy"
    has "$md" "| 64 KiB |"
    for m in Llama-3.1-8B Llama-3.1-70B Qwen3-32B DeepSeek-R1 GPT-OSS-120B; do has "$md" "| $m |"; done
    has "$md" "BUILD/tools/ferry-kvbench --model GPT-OSS-120B --tp 4"
    ! grep -qE 'FAILED|TIMED OUT|skipped' "$md" || fail "a step failed in $md"
    [ "$(grep -c . "$out/gpu-kvbench.jsonl")" -eq 5 ] || fail "want 5 kvbench results"
    # A spent budget skips steps, says so and fails; no driver fails every step.
    SWEEP_GPU_QUICK=1 SWEEP_GPU_BUDGET=1 run 1 "$SWEEP_GPU" "$build" "$TMP/spent"
    has "$TMP/spent/gpu-sweep.md" "| kvbench GPT-OSS-120B | skipped (budget of 1s spent) | 0 |"
    FERRY_CUDA_LIB=/nonexistent/libcuda.so.1 SWEEP_GPU_QUICK=1 run 1 "$SWEEP_GPU" "$build" \
        "$TMP/nodriver"
    has "$TMP/err" "no usable CUDA driver"
    run 2 "$SWEEP_GPU" "$build"
    run 2 "$SWEEP_GPU" "$TMP/nobuild" "$TMP/x"
    has "$TMP/err" "build ferry first"
}

# ferry-pingpong between two processes: a JSON result with sane figures,
# both UCX modes, bad options refused, and a pong killed mid-run ends the
# run with the request's error (not a hang).
case_pingpong_ucx() {
    need_ucx
    local pp=${FERRY_PINGPONG:?}
    run 0 "$pp" --num_iter 300 --warmup_iter 30 --json "$TMP/pp.jsonl"
    has "$TMP/out" "ferry-pingpong: UCX, 8 B, 300 round trips: one way median"
    run 0 "$pp" --backend_params error_handling=dual --mem_alloc --block_size 4K \
        --num_iter 300 --json "$TMP/pp2.jsonl"
    python3 - "$TMP/pp.jsonl" "$TMP/pp2.jsonl" <<'PY' || fail "JSON rows in $TMP/pp*.jsonl"
import json, sys
rows = [json.loads(line) for f in sys.argv[1:] for line in open(f)]
assert [(r["block_size"], r["mem_alloc"]) for r in rows] == [(8, False), (4096, True)], rows
for r in rows:
    assert r["backend"] == "UCX" and r["iterations"] == 300, r
    assert 0 < r["one_way_median_us"] <= r["one_way_p99_us"], r
    assert r["one_way_avg_us"] > 0, r
PY
    # With notifications: each turn awaited by its notification, data checked.
    run 0 "$pp" --notif --block_size 4K --num_iter 300 --warmup_iter 30 --json "$TMP/pp3.jsonl"
    has "$TMP/out" "ferry-pingpong: UCX, WRITE + notification, 4096 B, 300 round trips"
    grep -q '"notif": *true' "$TMP/pp3.jsonl" || fail "no notif in $TMP/pp3.jsonl"
    run 2 "$pp" --block_size 12
    has "$TMP/err" "--block_size 12: want 8..1M, a multiple of 8"
    run 2 "$pp" --num_iter 0
    run 2 "$pp" --backend NOSUCH
    pp_kill_pong "$pp"
    pp_kill_pong "$pp" --backend_params error_handling=dual --mem_alloc
}

# pp_kill_pong PINGPONG ARGS...: kill -9 of the pong process during a long
# run; ping must exit 1 with a clear error within seconds.
pp_kill_pong() {
    local pp=$1 ping pong="" rc=0
    shift
    echo "+ $pp $* --num_iter 100000000, pong killed after 1 s"
    "$pp" "$@" --num_iter 100000000 >"$TMP/out" 2>"$TMP/err" &
    ping=$!
    for _ in $(seq 100); do
        pong=$(pgrep -P "$ping" | head -1)
        [ -n "$pong" ] && break
        sleep 0.1
    done
    [ -n "$pong" ] || { kill "$ping"; fail "no pong process"; }
    sleep 1
    kill -9 "$pong"
    local t0=$SECONDS
    wait "$ping" || rc=$?
    [ "$rc" -eq 1 ] || fail "ping exited $rc after the pong was killed, wanted 1"
    [ $((SECONDS - t0)) -le 30 ] || fail "ping took $((SECONDS - t0)) s to notice"
    grep -qE "fp-pong.*(disconnect|went away|did not answer)" "$TMP/err" ||
        fail "no clear error after the pong died"
}

# ferry-ucx-anchor (the bare UCX ping-pong): with and without a flush a
# turn, both memory kinds, JSON checked, bad options refused.
case_ucx_anchor() {
    need_ucx
    local ua=${FERRY_BUILD_ROOT:?}/tools/ferry-ucx-anchor
    run 0 "$ua" --num_iter 300 --warmup_iter 30 --json "$TMP/ua.jsonl"
    has "$TMP/out" "ferry-ucx-anchor: UCX put + flush, 8 B, 300 round trips: one way median"
    run 0 "$ua" --noflush --mem_alloc --peer_errors --block_size 64 --num_iter 300 \
        --json "$TMP/ua2.jsonl"
    has "$TMP/out" "ferry-ucx-anchor: UCX put, 64 B, 300 round trips"
    python3 - "$TMP/ua.jsonl" "$TMP/ua2.jsonl" <<'PY' || fail "JSON rows in $TMP/ua*.jsonl"
import json, sys
rows = [json.loads(line) for f in sys.argv[1:] for line in open(f)]
assert [(r["anchor"], r["block_size"], r["mem_alloc"], r["peer_errors"]) for r in rows] == \
    [("ucp_put+flush", 8, False, False), ("ucp_put", 64, True, True)], rows
for r in rows:
    assert r["iterations"] == 300 and 0 < r["one_way_median_us"] <= r["one_way_p99_us"], r
PY
    run 2 "$ua" --block_size 4
    has "$TMP/err" "--block_size 4: want 8..1M, a multiple of 8"
}

# bench/ucx_vs_perftest.py on one tiny size: every row and anchor present,
# ratios are numbers, each run listed on stderr; a bad mode is refused.
case_ucx_perftest_script() {
    need_ucx
    command -v ucx_perftest >/dev/null || { echo "SKIP: no ucx_perftest (ucx-utils)"; exit 77; }
    # Below the ephemeral range (32768-), where a listener of a test running
    # beside could hold the port: the script tries port, +997, +1994.
    local script=${FERRY_UCX_VS_PERFTEST:?} port=$((20000 + RANDOM % 9000))
    run 0 python3 "$script" "${FERRY_BUILD_ROOT:?}" --modes dual-alloc --sizes 4K \
        --batches 1,2 --iters 200 --step_mib 1 --repeat 2 --stat median --port "$port" \
        --lat_iters 300
    for row in "| dual-alloc | WRITE | 4096 | 1 |" "| dual-alloc | WRITE | 4096 | 2 |" \
        "| dual-alloc | READ | 4096 | 1 |" "| dual-alloc | READ | 4096 | 2 |"; do
        has "$TMP/out" "$row"
    done
    python3 - "$TMP/out" <<'PY' || fail "table cells in $TMP/out"
import sys
rows = [l.strip("|\n").split("|") for l in open(sys.argv[1]) if l.startswith("| dual-alloc")]
assert len(rows) == 5, rows
for r in rows[:4]:
    cells = [c.strip() for c in r]
    assert len(cells) == 11, cells
    for c in cells[4:9]:
        assert float(c) > 0, cells  # ferry, both ucx_perftest anchors, their ratios
    assert cells[9:] == ["—", "—"], cells  # no memcpy anchor below 1 MiB
lat = [c.strip() for c in rows[4]]
assert len(lat) == 8, lat
assert all(float(c) > 0 for c in lat[1:3] + lat[4:6] + lat[7:]), lat
PY
    [ "$(grep -c '^dual-alloc .* ferry .*; ucx_perftest ' "$TMP/err")" -eq 4 ] ||
        fail "want 4 raw-run lines on stderr"
    has "$TMP/err" "dual-alloc latency: ferry "
    run 2 python3 "$script" "$FERRY_BUILD_ROOT" --modes nosuch
    has "$TMP/err" "unknown mode nosuch"
}

# The real driver, where there is one (a GPU host): skipped here.
case_vram_real() {
    unset FERRY_CUDA_LIB
    local rc=0
    "$BENCH" "${VRAM[@]}" --check_consistency "${SMALL[@]}" --max_batch_size 8 \
        >"$TMP/out" 2>"$TMP/err" || rc=$?
    if [ $rc -eq 2 ] && grep -q "no usable CUDA driver" "$TMP/err"; then
        echo "SKIP: $(grep -m1 'no usable CUDA driver' "$TMP/err")"
        exit 77
    fi
    [ $rc -eq 0 ] || fail "exit $rc on the real driver"
    run 0 "$KVBENCH" --model Llama-3.1-70B --tp 8 --isl 1024 "${VRAM[@]}" --check_consistency \
        --num_iter 3 --json "$TMP/kv.json"
    check_kv_json "$TMP/kv.json" Llama-3.1-70B 10240
    run 0 "$CUDA_ANCHOR" --max_block_size 1M --batch_size 4 --num_iter 16
}

name=${1:?usage: tools_test.sh CASE}
declare -F "case_$name" >/dev/null || { echo "no case $name"; exit 1; }
"case_$name"
echo "PASS: $name"
