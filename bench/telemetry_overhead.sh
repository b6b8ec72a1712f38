#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What telemetry costs the hot path: small transfers with telemetry off, on
# (counters, histograms, per-request timings), and on with both exporters
# (Prometheus endpoint and event ring), run in turns so that drift of the
# machine hits every mode alike. docs/benchmarks.md has the figures.
#
#   bench/telemetry_overhead.sh [BUILD_DIR] [ROUNDS]      (default build, 5)
#
# Per round and mode:
#   LOCAL: ferry-microbench 1000 64 20: post + status of a made 1-descriptor
#          request, reposted (ns per post, best of 20 x 100k), and make +
#          post + complete + release of 1000 random descriptors (ns/desc);
#   UCX:   ferry-pingpong --block_size 8 (and 4096): one-way latency of
#          small writes between two processes over loopback (µs; skipped
#          when the UCX plugin was not built).
# Prints each measure's median per mode and the ratios to "off".
set -euo pipefail
B=${1:-build}
ROUNDS=${2:-5}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# mode -> the environment it runs in
run_mode() { # MODE CMD...
    local mode=$1
    shift
    case $mode in
    off) env -u FERRY_TELEMETRY -u FERRY_TELEMETRY_ENABLE -u NIXL_TELEMETRY_ENABLE "$@" ;;
    on) FERRY_TELEMETRY_ENABLE=1 "$@" ;;
    export) FERRY_TELEMETRY_ENABLE=1 FERRY_TELEMETRY_EXPORTER=prometheus,ring \
        FERRY_TELEMETRY_DIR="$TMP/telemetry" FERRY_TELEMETRY_PROMETHEUS_PORT=$PORT \
        FERRY_TELEMETRY_PROMETHEUS_LOCAL=y "$@" ;;
    esac
}

record() { # MEASURE MODE VALUE
    echo "$1 $2 $3" >>"$TMP/results"
}

local_round() { # MODE
    local out
    out=$(run_mode "$1" "$B/tools/ferry-microbench" 1000 64 20)
    record "LOCAL_post_status_ns" "$1" "$(awk -F: '/post\+status of a made/ {print $2+0}' <<<"$out")"
    record "LOCAL_make_post_complete_ns_per_desc" "$1" \
        "$(awk -F: '/make\+post\+complete, random/ {print $2+0}' <<<"$out")"
}

ucx_round() { # MODE
    [ -f "$B/plugins/libferry_plugin_ucx.so" ] || return 0
    local size
    for size in 8 4096; do
        rm -f "$TMP/pp.json"
        run_mode "$1" "$B/tools/ferry-pingpong" --block_size "$size" --num_iter 20000 \
            --warmup_iter 2000 --json "$TMP/pp.json" >/dev/null 2>&1
        record "UCX_pingpong_${size}B_us" "$1" \
            "$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["one_way_median_us"])' "$TMP/pp.json")"
    done
}

for r in $(seq "$ROUNDS"); do
    for mode in off on export; do
        local_round "$mode"
        ucx_round "$mode"
    done
    echo "round $r of $ROUNDS done" >&2
done

python3 - "$TMP/results" <<'PY'
import collections, statistics, sys
vals = collections.defaultdict(list)
for line in open(sys.argv[1]):
    m, mode, v = line.split()
    vals[(m, mode)].append(float(v))
measures = sorted({m for m, _ in vals})
print(f"{'measure':40} {'off':>10} {'on':>10} {'export':>10} {'on/off':>8} {'exp/off':>8}")
for m in measures:
    med = {mode: statistics.median(vals[(m, mode)]) for mode in ("off", "on", "export")}
    print(f"{m:40} {med['off']:10.3f} {med['on']:10.3f} {med['export']:10.3f} "
          f"{med['on'] / med['off']:8.3f} {med['export'] / med['off']:8.3f}")
PY
