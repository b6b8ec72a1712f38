#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The GPU KV request path on a GPU host, from gpu-kv/ (bench/gpu-kv-prepare.sh
# makes it; nothing is built on the host but the Python extension):
#   1. the CUDA suite and bench_cuda --quick (plugins/cuda/tests/run-gpu-suite.sh)
#   2. the Python suite's GPU tests (python/tests/run-gpu-host.sh)
#   3. bench/kv_make_nixl.py through ferry's nixl tree (CUDA backend), twice,
#      and through NIXL's wheel (UCX backend) when gpu-kv/nixl.tar.gz is there
#   4. the TCPStore tests against the host's PyTorch (FERRY_TEST_PYTHON)
#   5. VRAM over UCX 1.22 (the libucx wheel's, which has CUDA transports):
#      the conformance suite, ferry-bench beside ucx_perftest and the CUDA
#      backend, kv_make_nixl.py with the UCX backend
# Run from the repository root:  sh gpu-kv/run-kv.sh
# STEPS (default "suite py kv tcpstore") picks steps. Logs go to $OUT
# (default gpu-kv/out). KV_BUILD names another build folder to run (default
# gpu-kv/build), KV_ARGS adds arguments to step 3's ferry runs. Exit status
# 0 when no step failed.
set -u
X=gpu-kv
B=${KV_BUILD:-$PWD/$X/build}
OUT=${OUT:-$X/out}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0
STEPS=${STEPS:-suite py kv tcpstore ucx}
fail=0
step() { echo "## $(date -u +%T) $*"; }
want() { case " $STEPS " in *" $1 "*) return 0 ;; esac; return 1; }

# Shared libraries the programs link that this host lacks.
for lib in "$X"/extlib/*; do
    [ -e "$lib" ] || continue
    ldconfig -p | grep -q "/$(basename "$lib")\$" || cp "$lib" /usr/local/lib/
done
ldconfig
for p in "$B"/libferry.so.0 "$B"/plugins/*.so "$B"/plugins/cuda/tests/bench_cuda; do
    miss=$(ldd "$p" 2>&1 | grep "not found")
    [ -z "$miss" ] || echo "# MISSING for $p: $miss"
done

suite() {
    step "CUDA suite and bench_cuda --quick"
    sh plugins/cuda/tests/run-gpu-suite.sh "$B" --quick --logs "$OUT" > /dev/null 2>&1 || fail=1
    grep -E "^(ok|not ok) |passed|make->done|make [0-9]" "$OUT/gpu-suite.log"
}

py() {
    step "Python GPU tests"
    PYTEST_TIMEOUT=300 bash python/tests/run-gpu-host.sh "$OUT/pytest" "$B" -- \
        "$PWD/python/tests/test_gpu.py" "$PWD/python/tests/test_vllm_pattern.py" > /dev/null 2>&1 || fail=1
    cat "$OUT/pytest/summary.txt"
}

# ferry_kv installed into a venv that also sees this Python's packages.
kv_install() {
    mkdir -p "$W/stage/plugins"
    ln -s "$(readlink -f "$B/libferry.so.0")" "$W/stage/libferry.so.0"
    ln -s "$(readlink -f "$B/libferry.so.0")" "$W/stage/libferry.so"
    for so in "$B"/plugins/libferry_plugin_*.so; do ln -s "$(readlink -f "$so")" "$W/stage/plugins/"; done
    { "$PY" -m venv "$W/venv" &&
      "$PY" -c 'import sys; print("\n".join(p for p in sys.path if p.endswith("-packages")))' \
          > "$("$W/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/base.pth" &&
      "$W/venv/bin/python" scripts/prebuilt-wheel.py --build-dir "$W/stage" --out "$W/dist" &&
      "$W/venv/bin/python" -m pip install -q --no-deps --no-index "$W"/dist/ferry_kv-*.whl; } \
        > "$OUT/kv-install.log" 2>&1 || { echo "install failed: $OUT/kv-install.log"; fail=1; }
}

kv() {
    step "kv_make_nixl.py"
    kv_install
    echo "columns: api backend blocks KiB prep_l_ms prep_r_ms make_us post_us done_us total_us copy_us copy_same_us"
    for i in 1 2; do
        PYTHONPATH=$PWD/python/nixl-compat timeout 300 "$W/venv/bin/python" bench/kv_make_nixl.py \
            --nixl nixl --backend CUDA ${KV_ARGS:-} 2>> "$OUT/kv-ferry.err" | grep "^nixl " || fail=1
    done
    if [ -f "$X/nixl.tar.gz" ]; then
        mkdir -p "$W/nixl" && tar xzf "$X/nixl.tar.gz" -C "$W/nixl"
        PYTHONPATH=$W/nixl LD_LIBRARY_PATH=$W/nixl timeout 300 "$PY" bench/kv_make_nixl.py \
            --nixl nixl_cu12 --backend UCX 2>> "$OUT/kv-nixl.err" | grep "^nixl_cu12 " || fail=1
    fi
}

tcpstore() {
    step "TCPStore tests against this host's PyTorch ($("$PY" -c 'import torch; print(torch.__version__)' 2>&1))"
    export FERRY_TEST_PYTHON=$(command -v "$PY") FERRY_PLUGIN_DIR=$B/plugins
    timeout 120 "$B/tests/integration/test_tcpstore" tests/integration/tcpstore_server.py \
        > "$OUT/tcpstore.tap" 2>&1 || fail=1
    grep -E "^(ok|not ok|1\.\.)" "$OUT/tcpstore.tap"
    timeout 120 "$B/tests/integration/test_mesh" tcpstore 8 tests/integration/tcpstore_server.py \
        > "$OUT/mesh_tcpstore.tap" 2>&1 || fail=1
    grep -E "^(ok|not ok|1\.\.|#.*mesh)" "$OUT/mesh_tcpstore.tap"
}

# ferry-bench, two processes on GPU 0, VRAM -> VRAM WRITE of SIZE bytes.
fbench() { # backend size [params]
    timeout 120 "$B/tools/ferry-bench" --backend "$1" ${3:+--backend_params "$3"} --op_type WRITE \
        --initiator_seg_type VRAM --target_seg_type VRAM --start_block_size "$2" --max_block_size "$2" --start_batch_size 1 \
        --max_batch_size 1 --num_iter 200 --warmup_iter 20 2>&1 | grep -E "^[0-9]+ +1 +[0-9.]+ " | tail -1
}

ucx() {
    step "VRAM over UCX 1.22"
    [ -d "$X/ucx-wheel" ] || { echo "no $X/ucx-wheel: skipped"; return; }
    mkdir -p build && ln -sfn "$PWD/$X/ucx-wheel" build/ucx-wheel # the wheel plugin's run path
    UW=$B/plugins/ucx/wheel
    PERF=$X/ucx-wheel/libucx/bin/ucx_perftest
    # VRAM over UCX needs its RMA lanes (rma=on: trusted peers, plugins/ucx/README.md).
    export LD_LIBRARY_PATH=$PWD/$X/ucx-wheel/libucx/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    FERRY_PLUGIN_DIR=$UW timeout 300 "$B/plugins/cuda/tests/conformance_vram" UCX rma=on \
        > "$OUT/conformance_ucx_vram.tap" 2>&1 || fail=1
    echo "conformance_vram UCX: $(grep -c '^ok' "$OUT/conformance_ucx_vram.tap") ok, $(grep -c '^not ok' "$OUT/conformance_ucx_vram.tap") not ok"
    grep "^not ok\|^# transports\|^1\.\." "$OUT/conformance_ucx_vram.tap" | head -5
    FERRY_PLUGIN_DIR=$UW "$B/tools/ferry-info" 2>&1 | grep -i -A3 "ucx" | head -8
    for size in 1048576 16777216; do
        echo "WRITE $size: ferry UCX rma=on: $(FERRY_PLUGIN_DIR=$UW fbench UCX $size rma=on)"
        echo "WRITE $size: ferry CUDA: $(FERRY_PLUGIN_DIR=$B/plugins fbench CUDA $size)"
        "$PERF" -p 13611 -t ucp_put_bw -m cuda,cuda -s $size -n 200 -f > /dev/null 2>&1 &
        sleep 1
        echo "WRITE $size: ucx_perftest ucp_put_bw cuda: $(timeout 60 "$PERF" localhost -p 13611 \
            -t ucp_put_bw -m cuda,cuda -s $size -n 200 -f 2>&1 | tail -1)"
        wait
    done
    echo "columns: api backend blocks KiB prep_l_ms prep_r_ms make_us post_us done_us total_us copy_us copy_same_us"
    [ -x "$W/venv/bin/python" ] || kv_install
    FERRY_PLUGIN_DIR=$UW PYTHONPATH=$PWD/python/nixl-compat timeout 300 "$W/venv/bin/python" \
        bench/kv_make_nixl.py --nixl nixl --backend UCX --params rma=on 2>> "$OUT/kv-ferry-ucx.err" |
        grep "^nixl " || fail=1
}

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for s in suite py kv tcpstore ucx; do want $s && $s; done
exit $fail
