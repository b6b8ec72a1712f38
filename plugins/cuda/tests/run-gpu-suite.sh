#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs ferry's GPU suite (plugins/cuda/tests, meson suite 'gpu') and the CUDA
# benchmark from a build folder, without meson: for a GPU host that got a
# build made elsewhere (the programs find libferry through their
# $ORIGIN-relative run path, the plugins through FERRY_PLUGIN_DIR).
#
#   plugins/cuda/tests/run-gpu-suite.sh [BUILD] [--quick] [--no-bench] [--bench-only]
#                              [--mock] [--logs DIR]
#
#   BUILD        the build folder (default: build)
#   --quick      a shorter benchmark (fewer sizes and iterations)
#   --no-bench   the tests only; --bench-only: the benchmark only
#   --mock       also the same programs against the mock driver
#   --logs DIR   write gpu-suite.log (everything printed) and bench.md there
#
# Prints one TAP stream: each program is a test whose own TAP lines follow it,
# indented; then the benchmark's table, then "N passed, N failed, N skipped".
# Exit status 0 when nothing failed. Programs skip (77) where there is no
# GPU. Each program is bounded by `timeout` ($GPU_TEST_TIMEOUT s, 600).
set -u
BUILD=build
QUICK= BENCH=1 TESTS=1 MOCK= LOGS=
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=--quick ;;
    --no-bench) BENCH= ;;
    --bench-only) TESTS= ;;
    --mock) MOCK=1 ;;
    --logs) shift; LOGS=$1 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) BUILD=$1 ;;
    esac
    shift
done
G=$BUILD/plugins/cuda/tests
if [ ! -x "$G/test_cuda_reg" ]; then
    echo "no GPU test programs in $G: build ferry first (meson setup $BUILD && ninja -C $BUILD)" >&2
    exit 2
fi
if [ -n "$LOGS" ]; then
    mkdir -p "$LOGS"
    exec > "$LOGS/gpu-suite.log.tmp" 2>&1
    trap 'cat "$LOGS/gpu-suite.log.tmp" > "$LOGS/gpu-suite.log"; rm -f "$LOGS/gpu-suite.log.tmp"' EXIT
fi
export FERRY_PLUGIN_DIR="$BUILD/plugins:$G"
export FERRY_LOG_LEVEL="${FERRY_LOG_LEVEL:-error}"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# NVLink multicast stays off on shared hosts (ferry never uses it anyway).
export NCCL_NVLS_ENABLE=0
unset FERRY_CUDA_LIB

echo "# ferry GPU suite, build $BUILD, $(date -u '+%Y-%m-%d %H:%M UTC')"
if command -v nvidia-smi > /dev/null 2>&1; then
    nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader |
        sed 's/^/# GPU /'
    nvidia-smi topo -m 2> /dev/null | sed 's/^/# topo: /' | head -12
else
    echo "# no nvidia-smi here"
fi

N=0 PASS=0 FAIL=0 SKIP=0
SUMMARY=
# run NAME ENV... -- PROGRAM ARGS...
run() {
    name=$1; shift
    envs=
    while [ "$1" != "--" ]; do envs="$envs $1"; shift; done
    shift
    N=$((N + 1))
    out=$(env $envs timeout "${GPU_TEST_TIMEOUT:-600}" "$@" 2>&1)
    rc=$?
    subs_ok=$(printf '%s\n' "$out" | grep -c '^ok ')
    subs_bad=$(printf '%s\n' "$out" | grep -c '^not ok ')
    printf '%s\n' "$out" | sed 's/^/    /'
    if [ $rc -eq 77 ]; then
        SKIP=$((SKIP + 1))
        reason=$(printf '%s\n' "$out" | sed -n 's/^1\.\.0 # SKIP //p' | head -1)
        echo "ok $N - $name # SKIP ${reason:-skipped}"
        SUMMARY="$SUMMARY\n  $name: skipped (${reason:-})"
    elif [ $rc -eq 0 ] && [ "$subs_bad" -eq 0 ]; then
        PASS=$((PASS + 1))
        echo "ok $N - $name ($subs_ok subtests)"
        SUMMARY="$SUMMARY\n  $name: passed ($subs_ok subtests)"
    else
        FAIL=$((FAIL + 1))
        [ $rc -eq 124 ] && why="timed out" || why="exit $rc"
        echo "not ok $N - $name ($why, $subs_bad of $((subs_ok + subs_bad)) subtests failed)"
        SUMMARY="$SUMMARY\n  $name: FAILED ($why, $subs_bad subtests failed)"
    fi
}

if [ -n "$TESTS" ]; then
    run gpu_reg -- "$G/test_cuda_reg"
    run gpu_local -- "$G/test_cuda_local"
    run gpu_ipc -- "$G/test_cuda_ipc"
    run gpu_strided -- "$G/test_cuda_strided"
    # Each process one GPU: we see GPU 0 only, the peer GPU 1 only.
    run gpu_ipc_isolated CUDA_VISIBLE_DEVICES=0 -- "$G/test_cuda_ipc" --child-visible=1
    run gpu_conformance -- "$G/conformance_vram" CUDA mode=kernel
    run gpu_conformance_loopback -- "$G/conformance_vram" CUDA mode=kernel --loopback
    run gpu_conformance_copy_engine -- "$G/conformance_vram" CUDA mode=copy_engine
    # VRAM to files through the POSIX backend's staged path (skips without POSIX).
    if [ -e "$BUILD/plugins/libferry_plugin_posix.so" ]; then
        run gpu_conformance_posix_file -- "$G/conformance_vram" POSIX --store=FILE
        run gpu_conformance_posix_file_direct -- "$G/conformance_vram" POSIX --store=FILE --direct
    fi
    run cuda_nodriver FERRY_CUDA_LIB=/nonexistent/libcuda.so.1 -- "$G/test_cuda_reg" nodriver
    if [ -n "$MOCK" ]; then
        M="FERRY_CUDA_LIB=$BUILD/tests/gpu/libfy_mockcuda.so"
        run cuda_mock_local "$M" -- "$G/test_cuda_local"
        run cuda_mock_ipc "$M" -- "$G/test_cuda_ipc"
        run cuda_mock_conformance "$M" -- "$G/conformance_vram" CUDA
    fi
    echo "1..$N"
fi

if [ -n "$BENCH" ]; then
    echo "# ---- benchmark (bench_cuda $QUICK) ----"
    md=
    [ -n "$LOGS" ] && md="--md $LOGS/bench.md"
    timeout 600 "$G/bench_cuda" $QUICK $md 2>&1
    brc=$?
    if [ $brc -eq 77 ]; then
        echo "# benchmark skipped: no GPU"
    elif [ $brc -ne 0 ]; then
        echo "# benchmark FAILED (exit $brc)"
        FAIL=$((FAIL + 1))
    fi
fi

if [ -n "$TESTS" ]; then
    printf "# summary:$SUMMARY\n"
    echo "$PASS passed, $FAIL failed, $SKIP skipped"
fi
[ $FAIL -eq 0 ]
