#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Two processes, DRAM, READ and WRITE through the nixl_agent API: the same
program for NIXL's wheel (module nixl._api) and for ferry (ferry_kv.nixl), so
the two are measured the same way. A benchmark, not a test.

The initiator starts the target (this file with --target) as a child; the
target registers one buffer, prints its metadata and address, and serves
until told to stop (its agent's progress thread does the work). For each
operation, block size and batch size the initiator makes one request of
`batch` descriptors of `block` bytes (distinct blocks on both sides), posts
it again and again, polling check_xfer_state until "DONE" (the initiator
without a progress thread unless --initiator_pt 1, so each poll makes
progress itself), and reports the median and best time of one request and
the GB/s of the median.

Usage: python bench/nixl_pair.py --impl nixl|ferry [--sizes 4K,64K,1M,16M,64M]
           [--batches 1,64] [--iters N] [--max_total 256M] [--ops WRITE,READ]
           [--params key=value,...] [--backend UCX|SHM] [--memcpy] [--alloc]
--impl nixl needs NIXL's wheel in the interpreter (pip install nixl-cu12);
--impl ferry needs ferry_kv (make python), and takes its UCX plugin from
FERRY_PLUGIN_DIR when set (build/plugins/ucx/wheel: the UCX 1.22 build).
--backend names the backend both agents create (default UCX; ferry's SHM:
host memory between processes of one host). --alloc (ferry): both buffers
come from the backend's allocator (Agent.mem_alloc: with SHM, memfd
memory the peer maps) instead of ctypes. --memcpy adds, per row, the
anchor: the same blocks copied by memmove between two buffers of the
initiator's process (one call per block), median of as many repeats.
Rows whose batch x block exceeds --max_total are left out. Prints one JSON
line per row, then a markdown table.
"""
import argparse
import base64
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

SIZES = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
HELLO = "nixl_pair target: "  # the libraries may print on stdout too


def parse_size(text):
    text = text.strip().upper()
    return int(text[:-1]) * SIZES[text[-1]] if text[-1] in SIZES else int(text)


def load(impl):
    if impl == "nixl":
        from nixl._api import nixl_agent, nixl_agent_config
    else:
        from ferry_kv.nixl import nixl_agent, nixl_agent_config
    return nixl_agent, nixl_agent_config


def make_agent(impl, name, params, backend, prog_thread=True):
    nixl_agent, nixl_agent_config = load(impl)
    if not params:
        return nixl_agent(name, nixl_agent_config(enable_prog_thread=prog_thread, backends=[backend]))
    agent = nixl_agent(name, nixl_agent_config(enable_prog_thread=prog_thread, backends=[]))
    agent.create_backend(backend, params)
    return agent


def buffer(size, agent=None):
    """size bytes of 0x5A: ctypes memory, or the agent's backend's (--alloc)."""
    if agent is None:
        buf = ctypes.create_string_buffer(size)
        addr = ctypes.addressof(buf)
    else:
        buf = agent.agent._agent.mem_alloc(size)  # ferry_kv.Alloc under the nixl layer
        addr = buf.addr
    ctypes.memset(addr, 0x5A, size)
    return buf, addr


def target(args):
    agent = make_agent(args.impl, "bench-target", args.params, args.backend)
    buf, addr = buffer(args.buf, agent if args.alloc else None)
    agent.register_memory(agent.get_reg_descs([(addr, args.buf, 0, "")], "DRAM"))
    meta = base64.b64encode(agent.get_agent_metadata()).decode()
    print(HELLO + json.dumps({"meta": meta, "addr": addr}), flush=True)
    sys.stdin.readline()  # the initiator is done
    del buf


def one_row(agent, peer, op, block, batch, local, remote, iters):
    descs = lambda base: [(base + i * block, block, 0) for i in range(batch)]
    ldl = agent.get_xfer_descs(descs(local), "DRAM")
    rdl = agent.get_xfer_descs(descs(remote), "DRAM")
    handle = agent.initialize_xfer(op, ldl, rdl, peer)
    times = []
    for i in range(iters + max(2, iters // 10)):
        t0 = time.perf_counter()
        state = agent.transfer(handle)
        while state == "PROC":
            state = agent.check_xfer_state(handle)
        if state != "DONE":
            raise RuntimeError(f"{op} {block}x{batch}: {state}")
        if i >= max(2, iters // 10):
            times.append(time.perf_counter() - t0)
    agent.release_xfer_handle(handle)
    best, med = min(times), statistics.median(times)
    return {"op": op, "block": block, "batch": batch, "median_us": med * 1e6,
            "best_us": best * 1e6, "gbps_median": block * batch / med / 1e9}


def memcpy_row(block, batch, dst, src, iters):
    """The anchor: the row's blocks memmoved within this process."""
    times = []
    for i in range(iters + max(2, iters // 10)):
        t0 = time.perf_counter()
        for k in range(batch):
            ctypes.memmove(dst + k * block, src + k * block, block)
        if i >= max(2, iters // 10):
            times.append(time.perf_counter() - t0)
    return block * batch / statistics.median(times) / 1e9


def initiator(args):
    child = subprocess.Popen([sys.executable, __file__, "--target", "--impl", args.impl,
                              "--buf", str(args.buf), "--params_json", json.dumps(args.params),
                              "--backend", args.backend] + (["--alloc"] if args.alloc else []),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = ""
    while not line.startswith(HELLO):
        line = child.stdout.readline()
        if not line:
            raise RuntimeError("the target ended before it was ready")
    hello = json.loads(line[len(HELLO):])
    agent = make_agent(args.impl, "bench-initiator", args.params, args.backend, args.initiator_pt)
    buf, addr = buffer(args.buf, agent if args.alloc else None)
    if args.memcpy:
        dst_buf, dst = buffer(args.buf)
    agent.register_memory(agent.get_reg_descs([(addr, args.buf, 0, "")], "DRAM"))
    peer = agent.add_remote_agent(base64.b64decode(hello["meta"]))
    rows = []
    try:
        for op in args.ops:
            for batch in args.batches:
                for block in args.sizes:
                    if block * batch > args.buf:
                        continue
                    iters = max(5, min(args.iters, (1 << 30) // (block * batch)))
                    row = one_row(agent, peer, op, block, batch, addr, hello["addr"], iters)
                    row["impl"] = args.impl
                    if args.memcpy:
                        row["memcpy_gbps"] = memcpy_row(block, batch, dst, addr, iters)
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    finally:
        child.stdin.write("done\n")
        child.stdin.flush()
        child.wait(timeout=30)
    return rows


def table(rows):
    anchor = rows and "memcpy_gbps" in rows[0]
    extra = " memcpy GB/s | ratio |" if anchor else ""
    print("\n| op | block | batch | median us | best us | GB/s (median) |" + extra)
    print("| --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: | ---: |" if anchor else ""))
    for r in rows:
        cells = (f" {r['memcpy_gbps']:.2f} | {r['gbps_median'] / r['memcpy_gbps']:.2f} |"
                 if anchor else "")
        print(f"| {r['op']} | {r['block']} | {r['batch']} | {r['median_us']:.1f} | "
              f"{r['best_us']:.1f} | {r['gbps_median']:.2f} |" + cells)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--impl", choices=["nixl", "ferry"], required=True)
    ap.add_argument("--target", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="4K,64K,1M,16M,64M")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--ops", default="WRITE,READ")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--max_total", default="256M")
    ap.add_argument("--buf", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--params", default="", help="backend params key=value,...")
    ap.add_argument("--initiator_pt", type=int, default=0,
                    help="progress thread in the initiator (default 0: check_xfer_state "
                         "progresses; the target always has one)")
    ap.add_argument("--params_json", default="", help=argparse.SUPPRESS)
    ap.add_argument("--backend", default="UCX", help="backend of both agents (UCX, SHM, ...)")
    ap.add_argument("--memcpy", action="store_true", help="add the in-process memmove anchor")
    ap.add_argument("--alloc", action="store_true",
                    help="ferry: buffers from Agent.mem_alloc (SHM: memfd memory the peer maps)")
    args = ap.parse_args()
    args.params = (json.loads(args.params_json) if args.params_json else
                   dict(kv.split("=", 1) for kv in args.params.split(",") if kv))
    if args.target:
        return target(args)
    args.sizes = [parse_size(s) for s in args.sizes.split(",")]
    args.batches = [int(b) for b in args.batches.split(",")]
    args.ops = args.ops.split(",")
    args.buf = parse_size(args.max_total)
    table(initiator(args))


if __name__ == "__main__":
    main()
