#!/usr/bin/env python3
"""ferry's UCX backend against ucx_perftest, in one run, same sizes, same transports.

For each mode, block size and batch size: ferry-bench (two processes,
pairwise, READ and WRITE) and ucx_perftest (ucp_put_bw for WRITE, ucp_get
for READ) one after the other; then the small-message latency: 8 B WRITEs
taking turns between two processes (tools/ferry-pingpong), half a round
trip (medians), against the same ping-pong on bare UCP
(tools/ferry-ucx-anchor) with a flush after each put, as ferry's
completion needs, and without, and against ucp_put_lat, which measures UCX
the way the latter does; beside them the time from a ferry-bench WRITE's
post to its completion. Prints markdown tables with ratios.

A mode makes both sides pick the same UCX transports and memory path:
  peer        ferry's default (error_handling=peer, malloc'd buffers) against
              ucx_perftest -e (endpoints with error handling): UCX then uses
              only transports that detect a dead peer, on both.
  dual-alloc  ferry error_handling=dual with buffers from ferry_mem_alloc
              (memory UCX maps itself) against plain ucx_perftest, whose
              buffers UCX allocates too: the shared-memory path on one host.
  tcp         UCX_TLS=tcp on both, ferry's default against ucx_perftest -e.
Each also with the suffix -rma: the same with the backend param rma=on,
unchecked puts and gets where the default sends checked active messages
(the target checks every range against its registered memory).

Usage: bench/ucx_vs_perftest.py BUILD_DIR [--modes peer,dual-alloc,tcp,peer-rma,...]
                                [--sizes 4K,64K,1M,16M] [--batches 1,64] [--iters N]
                                [--repeat N] [--stat best|median] [--step_mib MIB]
                                [--same_max_mib MIB] [--port P] [--perftest PATH]

On UCX 1.22 (the libucx wheel): FERRY_PLUGIN_DIR=BUILD_DIR/plugins/ucx/wheel
and --perftest BUILD_DIR/ucx-wheel/libucx/bin/ucx_perftest (run with the
wheel's libraries and UCX_CMA_MEMORY_INVALIDATE=y, as ferry runs UCX there).

--repeat N runs each pair N times, alternating ferry and ucx_perftest, and
keeps the best of each (on a shared VM the noise is one-sided: slower), or
with --stat median the median of each.

Two more anchors per row, because a batch of distinct blocks is not the
same work as ucx_perftest repeating one hot buffer: ucx_perftest moving one
message of block x batch bytes (the same bytes per request, the same
working set; rows up to --same_max_mib), and a one-thread memcpy of
block x batch bytes in this process (what one core copies at all; rows of
1 MiB and more, where a Python call's own cost does not show).
"""
import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SIZES = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text):
    text = text.strip().upper()
    return int(text[:-1]) * SIZES[text[-1]] if text[-1] in SIZES else int(text)


# mode: (UCX_TLS or None, ferry-bench extra args, ucx_perftest extra args,
#        ferry-pingpong extra args, ferry-ucx-anchor extra args)
DUAL_ALLOC = ["--backend_params", "error_handling=dual,tls=all", "--mem_alloc"]
RMA = ["--backend_params", "rma=on"]
DUAL_ALLOC_RMA = ["--backend_params", "error_handling=dual,tls=all,rma=on", "--mem_alloc"]
MODES = {
    "peer": (None, [], ["-e"], [], ["--peer_errors"]),
    "dual-alloc": (None, DUAL_ALLOC, [], DUAL_ALLOC, ["--mem_alloc"]),
    "tcp": ("tcp", [], ["-e"], [], ["--peer_errors"]),
    "peer-rma": (None, RMA, ["-e"], RMA, ["--peer_errors"]),
    "dual-alloc-rma": (None, DUAL_ALLOC_RMA, [], DUAL_ALLOC_RMA, ["--mem_alloc"]),
    "tcp-rma": ("tcp", RMA, ["-e"], RMA, ["--peer_errors"]),
}


def env_for(mode):
    env = dict(os.environ)
    env.pop("UCX_TLS", None)
    if MODES[mode][0]:
        env["UCX_TLS"] = MODES[mode][0]
    return env


def iterations(size, batch, base, step_bytes):
    """Fewer iterations for big steps (at most step_bytes a step), so a sweep
    stays in minutes. Short runs (a 1 MiB step of 200 puts lasts ~10 ms on
    shared memory) are at the mercy of one scheduler tick: raise --iters and
    --step_mib there (TCP modes, where ucx_perftest's 16 MiB puts crawl at
    ~0.03 GB/s, want the default)."""
    per_step = max(4, min(base, step_bytes // (size * batch)))
    return per_step, max(2, per_step // 10)


def last_json_row(cmd, env):
    """Runs a tool with --json FILE added; returns the last row it wrote."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        subprocess.run(cmd + ["--json", out.name], env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=600)
        return json.loads(open(out.name).read().strip().splitlines()[-1])


def ferry_env(build, mode):
    env = env_for(mode)
    env.setdefault("FERRY_PLUGIN_DIR", os.path.join(build, "plugins"))
    return env


def ferry_bench(build, mode, op, size, batch, iters, warmup):
    cmd = [os.path.join(build, "tools", "ferry-bench"), "--backend", "UCX",
           "--op_type", op, "--start_block_size", str(size), "--max_block_size", str(size),
           "--start_batch_size", str(batch), "--max_batch_size", str(batch),
           "--num_iter", str(iters), "--warmup_iter", str(warmup),
           "--large_blk_iter_ftr", "1"] + MODES[mode][1]
    return last_json_row(cmd, ferry_env(build, mode))


def ferry_pingpong(build, mode, size, iters):
    """ferry-pingpong (two processes taking turns to WRITE, as ucp_put_lat
    does): its JSON result, one-way figures in us."""
    cmd = [os.path.join(build, "tools", "ferry-pingpong"), "--backend", "UCX",
           "--block_size", str(size), "--num_iter", str(iters),
           "--warmup_iter", str(max(1, iters // 10))] + MODES[mode][3]
    return last_json_row(cmd, ferry_env(build, mode))


def ucx_anchor(build, mode, flush, iters):
    """tools/ferry-ucx-anchor: the same ping-pong on bare UCP, the put
    followed by a flush (what ferry's completion costs UCX) or not (what
    ucp_put_lat does). Its JSON result."""
    cmd = [os.path.join(build, "tools", "ferry-ucx-anchor"), "--block_size", "8",
           "--num_iter", str(iters), "--warmup_iter", str(max(1, iters // 10)),
           "--flush" if flush else "--noflush"] + MODES[mode][4]
    return last_json_row(cmd, env_for(mode))


PERFTEST = ["ucx_perftest"]


def perftest_env(mode):
    """The environment of ucx_perftest: the mode's; for one from a libucx
    wheel (--perftest .../libucx/bin/ucx_perftest) also the wheel's
    libraries, and CMA in peer error mode as ferry turns it on there."""
    env = env_for(mode)
    lib = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(PERFTEST[0]))), "lib")
    if PERFTEST[0] != "ucx_perftest" and os.path.exists(os.path.join(lib, "libucp.so.0")):
        env["LD_LIBRARY_PATH"] = lib
        env.setdefault("UCX_CMA_MEMORY_INVALIDATE", "y")
    return env


def perftest_once(mode, test, size, iters, warmup, port):
    """Runs server and client of one ucx_perftest; returns its final line's
    numbers, or None with the client's last words when it gave none."""
    env = perftest_env(mode)
    args = ["-t", test, "-s", str(size), "-n", str(iters), "-w", str(warmup), "-p", str(port),
            "-f"] + MODES[mode][2]
    server = subprocess.Popen(PERFTEST + args, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            time.sleep(0.1)
            client = subprocess.run(PERFTEST + ["localhost"] + args, env=env,
                                    capture_output=True, text=True, timeout=600)
            if client.returncode == 0:
                break
        # With -f the last line is: iters, p50 lat, avg lat, overall lat (us),
        # avg bw, overall bw (MB/s), avg rate, overall rate.
        rows = [l.split() for l in client.stdout.splitlines() if l.split()[:1]
                and l.split()[0].isdigit()]
        if client.returncode != 0 or not rows:
            return None, " ".join(client.stderr.strip().splitlines()[-2:])
        fields = rows[-1]
        return {"lat_us": float(fields[2]), "lat_p50_us": float(fields[1]),
                "bw_gbps": float(fields[5]) * (1 << 20) / 1e9}, ""
    finally:
        server.kill()
        server.wait()


def perftest(mode, test, size, iters, warmup, port):
    """ucx_perftest_once, tried on three ports: another program (a test
    running beside, an ephemeral port) may hold the first, and the client
    then talks to it and reports nothing."""
    for attempt in range(3):
        result, why = perftest_once(mode, test, size, iters, warmup, port + 997 * attempt)
        if result:
            return result
    sys.exit(f"ucx_perftest -t {test} -s {size} -p {port}: no result ({why})")


def memcpy_gbps(nbytes, step_bytes, repeat, pick):
    """One thread's memmove of nbytes between two touched buffers, repeat
    times, reduced by pick."""
    src, dst = ctypes.create_string_buffer(nbytes), ctypes.create_string_buffer(nbytes)
    ctypes.memmove(dst, src, nbytes)
    reps = max(4, step_bytes // nbytes)
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(reps):
            ctypes.memmove(dst, src, nbytes)
        runs.append(nbytes * reps / (time.perf_counter() - t0) / 1e9)
    return pick(runs)


def fmt_runs(values):
    return " ".join(f"{v:.2f}" for v in values)


def cell(value, ferry):
    return ("—", "—") if value is None else (f"{value:.3f}", f"{ferry / value:.3g}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--modes", default="peer,dual-alloc,tcp")
    ap.add_argument("--perftest", default="ucx_perftest",
                    help="the ucx_perftest to run (build/ucx-wheel/libucx/bin/ucx_perftest: "
                         "UCX 1.22, beside ferry's plugin of FERRY_PLUGIN_DIR=build/plugins/ucx/wheel)")
    ap.add_argument("--sizes", default="4K,64K,1M,16M")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--step_mib", type=int, default=256)
    ap.add_argument("--lat_iters", type=int, default=10000,
                    help="round trips of each latency run (ferry-pingpong, ucp_put_lat)")
    ap.add_argument("--port", type=int, default=13400,
                    help="first TCP port for ucx_perftest (one more per run)")
    ap.add_argument("--stat", choices=("best", "median"), default="best",
                    help="how --repeat runs reduce to one figure (latency: lowest or median)")
    ap.add_argument("--same_max_mib", type=int, default=64,
                    help="largest block x batch message for the same-bytes anchor")
    a = ap.parse_args()
    PERFTEST[0] = a.perftest
    modes = a.modes.split(",")
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m}: one of {', '.join(MODES)}")
    pick = max if a.stat == "best" else statistics.median
    pick_lat = min if a.stat == "best" else statistics.median
    port = a.port
    print("| mode | op | block | batch | ferry GB/s | ucx_perftest, same block | ratio "
          "| ucx_perftest, one block x batch message | ratio | memcpy of block x batch | ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    step = a.step_mib << 20
    for mode in modes:
        for op, test in (("WRITE", "ucp_put_bw"), ("READ", "ucp_get")):
            for size in map(parse_size, a.sizes.split(",")):
                for batch in map(int, a.batches.split(",")):
                    iters, warm = iterations(size, batch, a.iters, step)
                    whole = size * batch
                    same = batch > 1 and whole <= a.same_max_mib << 20
                    fbws, pbws, wbws = [], [], []
                    for _ in range(a.repeat):
                        fbws.append(ferry_bench(a.build, mode, op, size, batch, iters,
                                                warm)["bandwidth_gbps"])
                        port += 1
                        pbws.append(perftest(mode, test, size, iters * batch, warm * batch,
                                             port)["bw_gbps"])
                        if same:
                            port += 1
                            wbws.append(perftest(mode, test, whole, iters, warm, port)["bw_gbps"])
                    fbw, pbw, wbw = (pick(v) if v else 0.0 for v in (fbws, pbws, wbws))
                    print(f"{mode} {op} {size}x{batch}: ferry {fmt_runs(fbws)}; "
                          f"ucx_perftest {fmt_runs(pbws)}", file=sys.stderr, flush=True)
                    whole_bw = wbw if same else (pbw if batch == 1 else None)
                    # Below 1 MiB a Python call's own cost would show in the copy.
                    mbw = memcpy_gbps(whole, step, a.repeat, pick) if whole >= 1 << 20 else None
                    cells = [c for v in (pbw, whole_bw, mbw) for c in cell(v, fbw)]
                    print(f"| {mode} | {op} | {size} | {batch} | {fbw:.3f} | " + " | ".join(cells)
                          + " |", flush=True)
    print()
    print("| mode | ferry one way (us) | bare UCX put + flush (us) | ferry over it "
          "| bare UCX put (us) | ucp_put_lat (us) | ferry over it "
          "| ferry WRITE post to completion (us) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode in modes:
        runs = {k: [] for k in ("ferry", "flush", "put", "lat", "comp")}
        for _ in range(a.repeat):
            runs["ferry"].append(ferry_pingpong(a.build, mode, 8, a.lat_iters)["one_way_median_us"])
            runs["flush"].append(ucx_anchor(a.build, mode, True, a.lat_iters)["one_way_median_us"])
            runs["put"].append(ucx_anchor(a.build, mode, False, a.lat_iters)["one_way_median_us"])
            port += 1
            runs["lat"].append(perftest(mode, "ucp_put_lat", 8, a.lat_iters, a.lat_iters // 10,
                                        port)["lat_p50_us"])
            runs["comp"].append(ferry_bench(a.build, mode, "WRITE", 8, 1, 2000, 200)["avg_latency_us"])
        print(f"{mode} latency: " + "; ".join(f"{k} {fmt_runs(v)}" for k, v in runs.items()),
              file=sys.stderr, flush=True)
        f, fl, pu, lat, comp = (pick_lat(runs[k]) for k in ("ferry", "flush", "put", "lat", "comp"))
        print(f"| {mode} | {f:.2f} | {fl:.2f} | {f - fl:+.2f} | {pu:.2f} | {lat:.2f} | "
              f"{f - lat:+.2f} | {comp:.2f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
