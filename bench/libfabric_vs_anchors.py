#!/usr/bin/env python3
"""ferry's LIBFABRIC backend beside fi_pingpong and ucx_perftest, same sizes.

Per libfabric provider (tcp;ofi_rxm on the loopback interface, shm):
two-process DRAM WRITE and READ bandwidth with ferry-bench (pairwise, one
block per request), beside
  - fi_pingpong (Debian's libfabric-bin; fabtests' fi_rma_bw is not
    packaged): messages of the same size over the same provider, taking
    turns (a ping-pong, so a lower bound of what the provider streams);
  - ucx_perftest on the matching UCX transport (tcp: UCX_TLS=tcp; shm:
    UCX's default shared-memory transports), ucp_put_bw for WRITE and
    ucp_get for READ, as bench/ucx_vs_perftest.py runs it;
then the 8-byte latency: ferry-pingpong (two processes taking turns to
WRITE 8 bytes, one way, median) beside fi_pingpong's 8-byte messages
(usec/xfer) and ucp_put_lat. Prints markdown tables; each figure is the
best of --repeat runs (a shared host's noise only slows).

Usage: bench/libfabric_vs_anchors.py BUILD_DIR [--providers tcp,shm]
           [--sizes 4K,64K,1M,16M] [--iters N] [--repeat N] [--port P]
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ucx_vs_perftest as ux  # noqa: E402  (its runners of ferry tools and ucx_perftest)

# provider: (ferry backend params, fi_pingpong args, ucx_vs_perftest mode)
PROVIDERS = {
    "tcp": ("provider=tcp;ofi_rxm,domain=lo", ["-p", "tcp;ofi_rxm", "-d", "lo"], "tcp"),
    "shm": ("provider=shm", ["-p", "shm"], "peer"),
}


def ferry_bench(build, prov, op, size, iters):
    cmd = [os.path.join(build, "tools", "ferry-bench"), "--backend", "LIBFABRIC",
           "--backend_params", PROVIDERS[prov][0], "--op_type", op,
           "--start_block_size", str(size), "--max_block_size", str(size),
           "--num_iter", str(iters), "--warmup_iter", str(max(2, iters // 10)),
           "--large_blk_iter_ftr", "1"]
    return ux.last_json_row(cmd, ux.ferry_env(build, "peer"))


def ferry_pingpong(build, prov, iters):
    cmd = [os.path.join(build, "tools", "ferry-pingpong"), "--backend", "LIBFABRIC",
           "--backend_params", PROVIDERS[prov][0], "--block_size", "8",
           "--num_iter", str(iters), "--warmup_iter", str(max(1, iters // 10))]
    return ux.last_json_row(cmd, ux.ferry_env(build, "peer"))["one_way_median_us"]


def fi_pingpong(prov, size, iters, port):
    """fi_pingpong server and client of one size over the provider (rdm
    endpoints): (MB/s as 1e9 bytes, usec/xfer), from the client's row."""
    args = ["fi_pingpong", "-e", "rdm", "-I", str(iters), "-S", str(size)] + PROVIDERS[prov][1]
    server = subprocess.Popen(args + ["-B", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        try:
            out = subprocess.run(args + ["-P", str(port), "127.0.0.1"], capture_output=True,
                                 text=True, timeout=120).stdout
        except subprocess.TimeoutExpired:
            out = ""
    finally:
        server.kill()
        server.wait()
    # bytes iters =iters total time MB/sec usec/xfer Mxfers/sec
    rows = [l.split() for l in out.splitlines() if re.match(r"^\d", l.strip())]
    if not rows:  # (shm's fi_pingpong stalls at some sizes: a gap, not the end)
        print(f"fi_pingpong {prov} -S {size}: no result", file=sys.stderr)
        return float("nan"), float("nan")
    return float(rows[-1][5]) * 1e6 / 1e9, float(rows[-1][6])


def best(runs, key=max):
    runs = [r for r in runs if r == r]  # without the gaps (NaN)
    return key(runs) if runs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build")
    ap.add_argument("--providers", default="tcp,shm")
    ap.add_argument("--sizes", default="4K,64K,1M,16M")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--port", type=int, default=47700)
    a = ap.parse_args()
    provs = a.providers.split(",")
    sizes = [ux.parse_size(s) for s in a.sizes.split(",")]
    port = a.port
    print("| provider | op | block (B) | ferry (GB/s) | fi_pingpong (GB/s) | ucx_perftest (GB/s) "
          "| ferry / better anchor |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for prov in provs:
        for op, test in (("WRITE", "ucp_put_bw"), ("READ", "ucp_get")):
            for size in sizes:
                iters = max(8, min(a.iters, (256 << 20) // size))
                f, p, u = [], [], []
                for _ in range(a.repeat):
                    f.append(ferry_bench(a.build, prov, op, size, iters)["bandwidth_gbps"])
                    port += 1
                    p.append(fi_pingpong(prov, size, iters, port)[0])
                    port += 1
                    u.append(ux.perftest(PROVIDERS[prov][2], test, size, iters,
                                         max(2, iters // 10), port)["bw_gbps"])
                fb, pb, ub = best(f), best(p), best(u)
                anchor = max(v for v in (pb, ub, 0.0) if v == v)
                print(f"| {prov} | {op} | {size} | {fb:.3f} | {pb:.3f} | {ub:.3f} "
                      f"| {fb / anchor if anchor else float('nan'):.2f} |", flush=True)
    print()
    print("| provider | ferry 8 B WRITE one way (us) | fi_pingpong 8 B (usec/xfer) "
          "| ucp_put_lat 8 B (us) |")
    print("| --- | ---: | ---: | ---: |")
    for prov in provs:
        f, p, u = [], [], []
        for _ in range(a.repeat):
            f.append(ferry_pingpong(a.build, prov, 10 * a.iters))
            port += 1
            p.append(fi_pingpong(prov, 8, 10 * a.iters, port)[1])
            port += 1
            u.append(ux.perftest(PROVIDERS[prov][2], "ucp_put_lat", 8, 10 * a.iters, a.iters,
                                 port)["lat_p50_us"])
        print(f"| {prov} | {best(f, min):.2f} | {best(p, min):.2f} | {best(u, min):.2f} |",
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
