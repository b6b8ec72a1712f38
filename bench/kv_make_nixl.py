#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The GPU KV request path through the nixl_agent API (a benchmark, not a test).

Two processes on one GPU host, each with a VRAM cache (--cache-gib, 4 by
default) cut into blocks. The target registers its cache and hands its
metadata and address over a pipe; the initiator registers its own, prepares
both caches as lists of every block slot (prep_xfer_dlist, timed), then per
request: make_prepped_xfer from index arrays of n random distinct blocks on
each side (timed), transfer (post, timed), check_xfer_state until DONE
(post -> done), release_xfer_handle. Patterns: 1024 x 128 KiB, 16384 x 8 KiB,
4096 x 4 KiB. Beside it the bare copy: one cudaMemcpy of as many bytes
between the two processes' caches (torch, through CUDA IPC of the target's
tensor), timed the same way, from and to a different part of the caches
each time (copy_us: cold in the GPU's cache, as the requests' random
blocks are) and from and to the same part each time (copy_same_us: what
stays in the GPU's 50 MB L2 cache runs faster).

The same program runs on ferry's nixl tree or on NIXL's wheel: --nixl names
the module to import (nixl: whatever `import nixl` gives; nixl_cu12: NIXL's
wheel directly). Prints one line per pattern:
  <module> <backend> <n> <block KiB> prep_l_ms prep_r_ms make_us post_us done_us total_us copy_us
  copy_same_us

    python bench/kv_make_nixl.py --nixl nixl --backend CUDA
    python bench/kv_make_nixl.py --nixl nixl_cu12 --backend UCX
"""
import argparse
import importlib
import multiprocessing as mp
import statistics
import time

PATTERNS = ((1024, 128 << 10), (16384, 8 << 10), (4096, 4 << 10))
MEM = {"cuda:0": "VRAM", "cpu": "DRAM"}  # --device cpu: a smoke run without a GPU


def _api(name):
    mod = importlib.import_module(name)
    api = getattr(mod, "_api", None) or importlib.import_module(name + "._api")
    return api.nixl_agent, api.nixl_agent_config


def target(conn, args):
    import torch
    import torch.multiprocessing  # noqa: F401
    agent_cls, cfg_cls = _api(args.nixl)
    # The target keeps its progress thread whatever --progress-thread says:
    # it only waits on the pipe, and nothing else would take in the
    # notifications (its socket would fill and the initiator's posts stall).
    agent = make_agent(agent_cls, cfg_cls, "kv-target", args, thread=True)
    cache = torch.zeros(args.cache_gib << 30, dtype=torch.uint8, device=args.device)
    agent.register_memory(cache)
    # torch.multiprocessing makes the pipe pass a CUDA tensor by IPC handle
    # (a CPU one it would move to shared memory, freeing what is registered).
    conn.send((agent.get_agent_metadata(), cache.data_ptr(), cache if cache.is_cuda else None))
    conn.recv()  # the initiator is done


def slots(base, cache_bytes, bs):
    """Every block slot as an Nx3 array (addr, len, dev): both APIs' fast form."""
    import numpy as np
    n = cache_bytes // bs
    return np.stack([base + np.arange(n, dtype=np.int64) * bs, np.full(n, bs, np.int64),
                     np.zeros(n, np.int64)], axis=1)


def make_agent(agent_cls, cfg_cls, name, args, thread=None):
    """An agent with args.backend, created with --params when given; its
    progress thread as --progress-thread says unless thread is given."""
    thread = args.progress_thread == "on" if thread is None else thread
    if not args.params:
        return agent_cls(name, cfg_cls(enable_prog_thread=thread, backends=[args.backend]))
    agent = agent_cls(name, cfg_cls(enable_prog_thread=thread, backends=[]))
    agent.create_backend(args.backend, dict(kv.split("=", 1) for kv in args.params.split(",")))
    return agent


def time_pattern(agent, lp, rp, n, bs, cache_bytes, iters, rng):
    make, post, done, total = [], [], [], []
    for it in range(iters + 2):
        li = rng.choice(cache_bytes // bs, n, replace=False)
        ri = rng.choice(cache_bytes // bs, n, replace=False)
        t0 = time.perf_counter()
        h = agent.make_prepped_xfer("WRITE", lp, li, rp, ri, b"kv")
        t1 = time.perf_counter()
        state = agent.transfer(h)
        t2 = time.perf_counter()
        while state != "DONE":
            if state == "ERR":
                raise RuntimeError("transfer failed")
            state = agent.check_xfer_state(h)
        t3 = time.perf_counter()
        agent.release_xfer_handle(h)
        if it >= 2:
            make.append(t1 - t0), post.append(t2 - t1), done.append(t3 - t2), total.append(t3 - t0)
    return [statistics.median(v) * 1e6 for v in (make, post, done, total)]


def bare_copy_us(dst, src, nbytes, iters, rotate):
    """Median time of one copy of nbytes; rotate: a different part of the
    caches each time (the next nbytes-long slice, wrapping)."""
    import torch
    sync = torch.cuda.synchronize if dst.is_cuda else (lambda: None)
    slices = max(1, dst.numel() // nbytes)
    out = []
    for i in range(iters):
        off = (i % slices) * nbytes if rotate else 0
        sync()
        t0 = time.perf_counter()
        dst[off:off + nbytes].copy_(src[off:off + nbytes], non_blocking=True)
        sync()
        out.append(time.perf_counter() - t0)
    return statistics.median(out) * 1e6


def initiator(args):
    import numpy as np
    import torch
    import torch.multiprocessing  # noqa: F401  (CUDA tensors through the pipe)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    peer = ctx.Process(target=target, args=(child, args))
    peer.start()
    md, raddr, peer_cache = parent.recv()
    agent_cls, cfg_cls = _api(args.nixl)
    agent = make_agent(agent_cls, cfg_cls, "kv-initiator", args)
    cache_bytes = args.cache_gib << 30
    cache = torch.ones(cache_bytes, dtype=torch.uint8, device=args.device)
    agent.register_memory(cache)
    name = agent.add_remote_agent(md)
    if peer_cache is None:  # --device cpu: the bare copy within this process
        peer_cache = torch.zeros_like(cache)
    rng = np.random.default_rng(1)
    for n, bs in PATTERNS:
        t0 = time.perf_counter()
        lp = agent.prep_xfer_dlist("", slots(cache.data_ptr(), cache_bytes, bs), MEM[args.device])
        t1 = time.perf_counter()
        rp = agent.prep_xfer_dlist(name, slots(raddr, cache_bytes, bs), MEM[args.device])
        t2 = time.perf_counter()
        make, post, done, total = time_pattern(agent, lp, rp, n, bs, cache_bytes, args.iters, rng)
        copy = bare_copy_us(peer_cache, cache, n * bs, args.iters, True)
        copy_same = bare_copy_us(peer_cache, cache, n * bs, args.iters, False)
        print(f"{args.nixl} {args.backend} {n} {bs >> 10} {(t1 - t0) * 1e3:.2f} "
              f"{(t2 - t1) * 1e3:.2f} {make:.1f} {post:.1f} {done:.1f} {total:.1f} {copy:.1f} "
              f"{copy_same:.1f}", flush=True)
        agent.release_dlist_handle(lp)
        agent.release_dlist_handle(rp)
    parent.send("done")
    peer.join(30)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nixl", default="nixl", help="module to import (nixl, nixl_cu12, ...)")
    ap.add_argument("--backend", default="CUDA", help="backend (ferry: CUDA; NIXL: UCX)")
    ap.add_argument("--params", default="", help="backend params key=value,... (ferry UCX: rma=on)")
    ap.add_argument("--cache-gib", type=int, default=4)
    ap.add_argument("--progress-thread", choices=("on", "off"), default="on",
                    help="the initiator's progress thread (nixl_agent_config's "
                         "enable_prog_thread); the target keeps its own")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--device", choices=MEM, default="cuda:0")
    initiator(ap.parse_args())


if __name__ == "__main__":
    main()
