#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# WRITE + notification latency between two processes of this host, 4 KiB
# one way (ferry-pingpong --notif: the receiver waits for the notification,
# then checks the data), on SHM for both memory kinds and on UCX 1.22 with
# rma=on, each beside the same ping-pong without the notification and
# beside the anchor in the same run: the wheel's ucp_put_lat with error
# handling (-e: CMA, the transport of ordinary memory) and without (shared
# memory, the transport of memory UCX or ferry_mem_alloc allocated), and
# UCX's active-message latency with error handling (ucp_am_lat -e: TCP on
# one host), what a notification over UCX rides on.
# ROUNDS rounds, taken in turns. Prints one line per measurement.
#
#   bench/notif_latency.sh [BUILD_DIR] [ROUNDS]
set -eu
build=${1:-build}
rounds=${2:-3}
W=$build/ucx-wheel/libucx
pp="$build/tools/ferry-pingpong --block_size 4096 --num_iter 5000 --warmup_iter 500"
# UCX's cma transport declines ucp_put with error handling unless told
# that the kernel invalidates its mappings (UCX_CMA_MEMORY_INVALIDATE).
export FERRY_LOG_LEVEL=error UCX_CMA_MEMORY_INVALIDATE=y
median() { sed -n 's/.*one way median \([0-9.]*\) us.*/\1/p'; }
perftest() { # test $1 one way, median in us, with $2 (-e or nothing)
    port=$((13600 + $(od -An -N1 -tu1 /dev/urandom)))
    LD_LIBRARY_PATH=$W/lib "$W/bin/ucx_perftest" -p $port -t $1 -s 4096 -n 20000 $2 \
        > /dev/null 2>&1 &
    sleep 0.5
    LD_LIBRARY_PATH=$W/lib "$W/bin/ucx_perftest" localhost -p $port -t $1 -s 4096 \
        -n 20000 $2 2>/dev/null | awk '/Final:/ {print $3}'
    wait
}
for r in $(seq "$rounds"); do
    for kind in "" --mem_alloc; do
        for n in --notif ""; do
            echo "round $r SHM ${kind:-malloc} ${n:-data} $($pp --backend SHM $kind $n 2>&1 | median)"
        done
    done
    if [ -x "$W/bin/ucx_perftest" ]; then
        for n in --notif ""; do
            echo "round $r UCX-1.22-rma malloc ${n:-data} $(FERRY_PLUGIN_DIR=$build/plugins/ucx/wheel \
                $pp --backend UCX --backend_params rma=on $n 2>&1 | median)"
        done
        echo "round $r ucp_put_lat -e (cma) $(perftest ucp_put_lat -e)"
        echo "round $r ucp_put_lat (shared memory) $(perftest ucp_put_lat '')"
        echo "round $r ucp_am_lat -e (tcp) $(perftest ucp_am_lat -e)"
    fi
done
