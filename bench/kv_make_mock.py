#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What making a GPU KV request costs the CPU, without a GPU (a benchmark, not a test).

The CUDA backend over the mock driver of the test suite (tests/gpu/mock_cuda.c,
FERRY_CUDA_LIB): two "VRAM" caches of 524288 block slots, both prepared as
lists of every slot (the strided form, as bench/kv_make_nixl.py prepares them
on a GPU host), then per request make_prepped_xfer from fresh random index
arrays through the nixl_agent API, timed, and release_xfer_handle. Nothing is
posted: the figure is the host's part of making a request (the index arrays
read, narrowed, checked and written where the copy kernel reads them).

The anchor, timed the same way on the same fresh arrays: numpy narrowing both
arrays to uint32 (astype), one pass over the same bytes, the least any make
that takes int64 arrays and hands 32-bit ones to a GPU can cost.

    FERRY_CUDA_LIB=build/tests/gpu/libfy_mockcuda.so FY_MOCK_DELAY=0 \\
        build/pyenv/bin/python bench/kv_make_mock.py [--blocks N] [--dtype int64|int32]

Prints: dtype blocks make_median_us make_min_us anchor_median_us ratio
"""
import argparse
import ctypes
import os
import statistics
import time

import numpy as np

SLOTS = 524288  # a 4 GiB cache in 8 KiB blocks
SLOT_BYTES = 64  # the mock's "VRAM" is host memory: keep it small


def mock_driver():
    """The mock driver, loaded by path as the plugin loads it (one instance),
    with a current context for cuMemAlloc."""
    cu = ctypes.CDLL(os.environ["FERRY_CUDA_LIB"])
    dev, ctx = ctypes.c_int(), ctypes.c_void_p()
    if cu.cuInit(0) or cu.cuDeviceGet(ctypes.byref(dev), 0) or \
            cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev) or cu.cuCtxPushCurrent_v2(ctx):
        raise SystemExit("kv_make_mock: the mock driver did not start")
    return cu


def vram(cu, size):
    p = ctypes.c_uint64()
    if cu.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(size)):
        raise SystemExit("kv_make_mock: cuMemAlloc failed")
    return p.value


def slots(base):
    return np.stack([base + np.arange(SLOTS, dtype=np.int64) * SLOT_BYTES,
                     np.full(SLOTS, SLOT_BYTES, np.int64), np.zeros(SLOTS, np.int64)], axis=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=16384)
    ap.add_argument("--dtype", choices=("int64", "int32"), default="int64")
    ap.add_argument("--iters", type=int, default=400)
    args = ap.parse_args()
    cu = mock_driver()
    from ferry_kv.nixl import nixl_agent, nixl_agent_config
    agent = nixl_agent("mock-kv", nixl_agent_config(enable_prog_thread=False, backends=["CUDA"]))
    a, b = vram(cu, SLOTS * SLOT_BYTES), vram(cu, SLOTS * SLOT_BYTES)
    agent.register_memory([(a, SLOTS * SLOT_BYTES, 0, ""), (b, SLOTS * SLOT_BYTES, 0, "")], "VRAM")
    agent.add_remote_agent(agent.get_agent_metadata())  # loopback: the remote is ourselves
    lp = agent.prep_xfer_dlist("", slots(a), "VRAM")
    rp = agent.prep_xfer_dlist("mock-kv", slots(b), "VRAM")
    rng = np.random.default_rng(1)
    make, anchor = [], []
    for it in range(args.iters + 5):
        li = rng.choice(SLOTS, args.blocks, replace=False).astype(args.dtype)
        ri = rng.choice(SLOTS, args.blocks, replace=False).astype(args.dtype)
        t0 = time.perf_counter()
        li.astype(np.uint32), ri.astype(np.uint32)
        t1 = time.perf_counter()
        li = rng.choice(SLOTS, args.blocks, replace=False).astype(args.dtype)
        ri = rng.choice(SLOTS, args.blocks, replace=False).astype(args.dtype)
        t2 = time.perf_counter()
        h = agent.make_prepped_xfer("WRITE", lp, li, rp, ri, b"kv")
        t3 = time.perf_counter()
        agent.release_xfer_handle(h)
        if it >= 5:
            anchor.append(t1 - t0)
            make.append(t3 - t2)
    m, a_ = statistics.median(make) * 1e6, statistics.median(anchor) * 1e6
    print(f"{args.dtype} {args.blocks} {m:.1f} {min(make) * 1e6:.1f} {a_:.1f} {m / a_:.2f}")


if __name__ == "__main__":
    main()
