#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The POSIX backend beside fio, in one run, on the same file.

For each block size, engine (io_uring, libaio), mode (buffered, O_DIRECT)
and direction (read, write): ferry moves the whole file in one request of
size/bs descriptors of bs bytes each (skip_merge: one I/O per descriptor,
as fio issues them), queue_depth = fio's iodepth; fio runs one job with
the same file, bs, iodepth and ioengine. Before every read the file's page
cache is dropped (fio does it too: invalidate=1). Best of --reps runs each,
ferry's and fio's in turns.
--progress says who reaps ferry's completions: `caller` (default; the
caller's thread drives progress through status() while it waits, one
thread submitting and reaping, as fio's job thread does) or `thread` (the
agent's progress thread, the caller sleeping 0.2 ms between status polls).
Prints ferry's GB/s, fio's, and the ratio.

    build/pyenv/bin/python bench/posix_vs_fio.py [--dir /tmp] [--size-mib 256]

Needs fio (Debian fio) and ferry_kv with the POSIX plugin (make python).
The file is created in a temp dir under --dir and deleted at the end.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import ferry_kv as ferry

ENGINES = {"uring": "io_uring", "aio": "libaio"}


def fio_gbps(path, size, bs, depth, engine, direct, op):
    cmd = ["fio", "--name=ref", f"--filename={path}", f"--size={size}", f"--bs={bs}",
           f"--iodepth={depth}", f"--ioengine={ENGINES[engine]}", f"--direct={int(direct)}",
           f"--rw={op}", "--numjobs=1", "--invalidate=1", "--output-format=json"]
    # fio's invalidate=1 drops the file's clean cached pages before reading
    # or writing: write the dirty ones back first, as ferry's side does.
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    job = out["jobs"][0][op]
    return job["io_bytes"] / (job["runtime"] / 1000.0) / 1e9 if job["runtime"] else 0.0


class FerrySide:
    """One agent with a POSIX backend (engine, depth) and the file opened
    (O_DIRECT or not) and registered whole."""

    def __init__(self, path, size, engine, depth, direct, progress):
        self.thread = progress == "thread"
        self.agent = ferry.Agent("bench-posix", progress_thread=self.thread, progress_delay_us=20)
        self.agent.create_backend("POSIX", {"engine": engine, "queue_depth": str(depth)})
        flags = os.O_RDWR | (os.O_DIRECT if direct else 0)
        self.fd = os.open(path, flags)
        self.buf = np.zeros(size + 4096, dtype=np.uint8)
        off = (-self.buf.ctypes.data) % 4096  # O_DIRECT: page-aligned buffer
        self.mem = self.buf[off:off + size]
        self.mem[:] = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8)
        self.agent.register([(self.mem.ctypes.data, size, 0)], mem_type="DRAM")
        self.agent.register([(0, size, self.fd, path)], mem_type="FILE")
        self.agent.load_metadata(self.agent.metadata())
        self.size = size

    def lists(self, bs):
        n = self.size // bs
        offs = np.arange(n, dtype=np.uint64) * np.uint64(bs)
        local = np.stack([offs + np.uint64(self.mem.ctypes.data),
                          np.full(n, bs, np.uint64), np.zeros(n, np.uint64)], axis=1)
        remote = np.stack([offs, np.full(n, bs, np.uint64), np.full(n, self.fd, np.uint64)], axis=1)
        return ferry.DList("DRAM", local), ferry.DList("FILE", remote)

    def gbps(self, bs, op):
        local, remote = self.lists(bs)
        x = self.agent.create_xfer(op.upper(), local, remote, "bench-posix", skip_merge=True)
        # The file's cache dropped, as fio's invalidate=1 does for reads and
        # writes alike. Writes care too: 4 KiB writes into the large folios
        # that one big write() left in the cache cost the kernel several
        # times more than into a fresh cache (0.37 against 1.0 GB/s here).
        os.fsync(self.fd)
        os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)
        t0 = time.perf_counter()
        x.post()
        while x.status() != 0:
            if self.thread:  # the progress thread reaps: leave it the CPU
                time.sleep(0.0002)
        dt = time.perf_counter() - t0
        x.release()
        return self.size / dt / 1e9

    def close(self):
        self.agent.close()
        os.close(self.fd)


def run(args):
    size = args.size_mib << 20
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="ferry-bench-posix-") as d:
        path = os.path.join(d, "data.bin")
        with open(path, "wb") as f:  # laid out once, fully allocated
            f.write(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
        for engine in args.engines:
            for direct in (m == "direct" for m in args.modes):
                side = FerrySide(path, size, engine, args.depth, direct, args.progress)
                for bs in (k << 10 for k in args.blocks_kib):
                    for op in args.ops:
                        # Turns, not one tool's runs then the other's: the
                        # VM's disk speeds up and slows down over seconds.
                        fy = fi = 0.0
                        for _ in range(args.reps):
                            fy = max(fy, side.gbps(bs, op))
                            fi = max(fi, fio_gbps(path, size, bs, args.depth, engine, direct, op))
                        rows.append((engine, "O_DIRECT" if direct else "buffered", bs, op, fy, fi))
                        print_row(rows[-1])
                side.close()
    return rows


def print_row(r):
    engine, mode, bs, op, fy, fi = r
    ratio = fy / fi if fi else float("nan")
    print(f"| {engine:5} | {mode:8} | {bs >> 10:5} KiB | {op:5} | {fy:6.2f} | {fi:6.2f} | {ratio:5.2f} |",
          flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default="/tmp", help="where the temp file goes (needs O_DIRECT)")
    p.add_argument("--size-mib", type=int, default=256, help="file size in MiB (<= 1024)")
    p.add_argument("--depth", type=int, default=32, help="queue depth / fio iodepth")
    p.add_argument("--progress", choices=("caller", "thread"), default="caller",
                   help="who reaps ferry's completions: the waiting caller or the progress thread")
    p.add_argument("--reps", type=int, default=3, help="runs per cell, best kept")
    p.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    p.add_argument("--modes", nargs="+", choices=("buffered", "direct"), default=["buffered", "direct"])
    p.add_argument("--blocks-kib", nargs="+", type=int, default=[4, 128, 1024])
    p.add_argument("--ops", nargs="+", choices=("read", "write"), default=["read", "write"])
    args = p.parse_args()
    if args.size_mib > 1024:
        sys.exit("--size-mib: at most 1024")
    print(f"file {args.size_mib} MiB in {args.dir}, queue depth {args.depth}, best of {args.reps}, "
          f"progress by the {args.progress}")
    print("| engine | mode | block | op | ferry GB/s | fio GB/s | ferry/fio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    run(args)


if __name__ == "__main__":
    main()
