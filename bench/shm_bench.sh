#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# SHM between two processes beside memcpy in one process: DRAM, WRITE and
# READ, 4 KiB to 64 MiB, batch 1 and 64, for both memory kinds (memfd from
# ferry_mem_alloc, and malloc'd memory by cross-memory attach). Prints one
# markdown table per kind (docs/benchmarks.md, "SHM beside memcpy").
#
#   bench/shm_bench.sh [BUILD_DIR] [MIN_SECONDS]
set -eu
build=${1:-build}
secs=${2:-0.3}
test -x "$build/plugins/shm/tests/bench_shm" || {
    echo "shm_bench: build first (ninja -C $build)" >&2
    exit 1
}
export LD_LIBRARY_PATH="$build${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export FERRY_PLUGIN_DIR="$build/plugins" FERRY_LOG_LEVEL=error
for kind in memfd malloc; do
    echo "### $kind"
    echo
    "$build/plugins/shm/tests/bench_shm" "$build/plugins/shm/tests/shm_peer" "$kind" "$secs"
    echo
done
