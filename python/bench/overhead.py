#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Python overhead of ferry.nixl on the transfer hot path (a benchmark, not a test).

For 1, 1k and 20k indices: make_prepped_xfer + transfer + completion
(check_xfer_state until "DONE") + release_xfer_handle, through ferry.nixl,
against the same loop in C (overhead_c.c, compiled here against the very
libferry the package bundles). LOCAL backend, loopback, inline copies of
small descriptors: the figures are software cost. Indices are numpy int32
arrays (--indices int64: numpy's default integer; --indices list: Python lists).

Usage: python3 python/bench/overhead.py [--repeats N] [--desc-bytes B] [--indices KIND]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import ferry_kv as ferry
from ferry_kv.nixl import nixl_agent, nixl_agent_config
from ferry_kv.nixl_utils import ba_buf, free_passthru, malloc_passthru, verify_transfer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PKG = os.path.dirname(ferry.__file__)
SIZES = (1, 1000, 20000)


def c_driver() -> str:
    """overhead_c, built against the package's libferry.so.0 (rebuilt when stale)."""
    exe = os.path.join(HERE, "overhead_c")
    src = os.path.join(HERE, "overhead_c.c")
    lib = os.path.join(PKG, "libferry.so.0")
    if not os.path.exists(exe) or os.path.getmtime(exe) < max(os.path.getmtime(src),
                                                               os.path.getmtime(lib)):
        subprocess.check_call(["cc", "-std=c11", "-O2", "-D_GNU_SOURCE", "-I",
                               os.path.join(ROOT, "include"), src, "-o", exe, lib,
                               f"-Wl,-rpath,{PKG}"])
    return exe


def run_c(n: int, desc_bytes: int, repeats: int) -> tuple:
    out = subprocess.check_output([c_driver(), str(n), str(desc_bytes), str(repeats)], text=True)
    _, _, median, best = out.split()
    return float(median), float(best)


def run_python(n: int, desc_bytes: int, repeats: int, kind: str) -> tuple:
    agent = nixl_agent("bench", nixl_agent_config(enable_prog_thread=False, backends=[]))
    agent.create_backend("LOCAL", {"workers": "0", "inline_max": str(1 << 40)})
    # Page-aligned buffers, as the C driver's (numpy's are not: 64 B blocks
    # would then straddle two cache lines and every copy would cost more).
    size = n * desc_bytes
    src, dst = malloc_passthru(size), malloc_passthru(size)
    ba_buf(src, size)
    reg = agent.register_memory([(src, size, 0, ""), (dst, size, 0, "")], "DRAM")
    agent.add_remote_agent(agent.get_agent_metadata())

    def blocks(base):
        return np.stack([base + np.arange(n, dtype=np.uint64) * desc_bytes,
                         np.full(n, desc_bytes, np.uint64), np.zeros(n, np.uint64)], axis=1)

    local = agent.prep_xfer_dlist("NIXL_INIT_AGENT", blocks(src), "DRAM")
    remote = agent.prep_xfer_dlist("bench", blocks(dst), "DRAM")
    rng = np.random.default_rng(7)
    idx = rng.permutation(n).astype(np.int64 if kind == "int64" else np.int32)
    if kind == "list":
        idx = idx.tolist()

    def one() -> float:
        t0 = time.perf_counter_ns()
        h = agent.make_prepped_xfer("WRITE", local, idx, remote, idx)
        state = agent.transfer(h)
        while state != "DONE":
            state = agent.check_xfer_state(h)
        agent.release_xfer_handle(h)
        return time.perf_counter_ns() - t0

    for _ in range(repeats // 10 + 1):
        one()
    times = sorted(one() for _ in range(repeats))
    verify_transfer(src, dst, size)
    agent.release_dlist_handle(local)
    agent.release_dlist_handle(remote)
    agent.deregister_memory(reg)
    agent.close()
    free_passthru(src)
    free_passthru(dst)
    return statistics.median(times), times[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=2000)
    ap.add_argument("--desc-bytes", type=int, default=64)
    ap.add_argument("--indices", choices=("int32", "int64", "list"), default="int32",
                    help="index arrays as numpy int32 (default), numpy int64 or Python lists")
    args = ap.parse_args()
    print(f"ferry {ferry.version()}: make_prepped_xfer + transfer + completion + release, "
          f"LOCAL loopback, {args.desc_bytes} B descriptors, random order, "
          f"indices as {args.indices}; median (best) of "
          f"{args.repeats}, microseconds per request")
    print(f"{'indices':>8} {'C':>16} {'ferry.nixl':>16} {'ratio':>7} {'best ratio':>10} "
          f"{'extra/req':>10}")
    for n in SIZES:
        reps = max(20, args.repeats if n < 10000 else args.repeats // 10)
        c_med, c_best = run_c(n, args.desc_bytes, reps)
        p_med, p_best = run_python(n, args.desc_bytes, reps, args.indices)
        print(f"{n:>8} {c_med / 1e3:>8.2f} ({c_best / 1e3:>5.2f}) {p_med / 1e3:>8.2f} "
              f"({p_best / 1e3:>5.2f}) {p_med / c_med:>7.2f} {p_best / c_best:>10.2f} "
              f"{(p_med - c_med) / 1e3:>10.2f}",
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
