#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""OBJ beside boto3: the same objects uploaded and downloaded through the
same S3 server (moto_server on loopback, started and stopped here), in the
same run. Not a test: prints a table (seconds, MB/s, ratio; >1: ferry is
faster).

ferry: one transfer request per phase holding every object (OBJ backend:
num_threads HTTP requests in flight on one curl multi handle, multipart
above multipart_threshold). boto3: its transfer manager (upload_fileobj /
download_fileobj) with the same part size, threshold and concurrency, the
objects themselves spread over as many threads. The last column is the
CPU time and minor page faults of the server process in the phase (least
of the rounds): on one small machine the server is what both clients wait
for.

    make python   # ferry_kv, moto[server] and boto3 in build/pyenv
    build/pyenv/bin/python bench/obj_vs_boto3.py [--rounds 3] [--threads 16]
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python", "tests"))
from s3server import MotoServer  # noqa: E402

import ferry_kv as ferry  # noqa: E402

MiB = 1024 * 1024
PART = 8 * MiB
THRESHOLD = 16 * MiB
PROGRESS_US = 100


def ferry_phase(srv, bucket, keys, bufs, op, threads) -> float:
    # The agent's progress thread drives curl (napping progress_delay_us
    # between polls); this thread sleeps too. A loop spinning on wait()
    # would take a core from the server on a small machine.
    a = ferry.Agent("bench-obj", progress_thread=True, progress_delay_us=PROGRESS_US)
    try:
        a.create_backend("OBJ", srv.obj_params(bucket, num_threads=threads,
                                                part_size=PART, multipart_threshold=THRESHOLD))
        a.register([(0, b.nbytes, i, k) for i, (k, b) in enumerate(zip(keys, bufs))],
                   mem_type="OBJ")
        a.register([(b.ctypes.data, b.nbytes, 0) for b in bufs], mem_type="DRAM")
        a.load_metadata(a.metadata())
        local = ferry.descs([(b.ctypes.data, b.nbytes, 0) for b in bufs], "DRAM")
        remote = ferry.descs([(0, b.nbytes, i) for i, b in enumerate(bufs)], "OBJ")
        with a.create_xfer(op, local, remote, a.name) as x:
            t0 = time.perf_counter()
            x.post()
            while x.status() == ferry.IN_PROGRESS:
                time.sleep(0.0005)
            return time.perf_counter() - t0
    finally:
        a.close()


def boto3_phase(srv, bucket, keys, bufs, op, threads) -> float:
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    import boto3
    c = boto3.client("s3", endpoint_url=srv.url, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing",
                     config=Config(max_pool_connections=threads))
    cfg = TransferConfig(multipart_threshold=THRESHOLD, multipart_chunksize=PART,
                         max_concurrency=threads)

    def up(i):
        c.upload_fileobj(io.BytesIO(memoryview(bufs[i])), bucket, keys[i], Config=cfg)

    def down(i):
        out = io.BytesIO()
        c.download_fileobj(bucket, keys[i], out, Config=cfg)
        bufs[i][:] = np.frombuffer(out.getbuffer(), np.uint8)

    fn = up if op == ferry.OP_WRITE else down
    t0 = time.perf_counter()
    with ThreadPoolExecutor(min(threads, len(keys))) as pool:
        list(pool.map(fn, range(len(keys))))
    return time.perf_counter() - t0


def server_usage(srv) -> tuple[float, int]:
    """CPU seconds (user + system) and minor page faults of moto_server so
    far: its system time is mostly faults on memory it allocates per body."""
    with open(f"/proc/{srv.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), int(fields[7])


def workload(srv, name, count, size, rounds, threads):
    bucket = "bench-" + name.replace(" ", "").replace("x", "-").lower()
    srv.client().create_bucket(Bucket=bucket)
    data = [np.random.default_rng(i).integers(0, 256, size, dtype=np.uint8) for i in range(count)]
    rows = []
    for op, opname in ((ferry.OP_WRITE, "upload"), (ferry.OP_READ, "download")):
        best, cpu, faults = {}, {}, {}
        for who, phase in (("ferry", ferry_phase), ("boto3", boto3_phase)):
            keys = [f"{who}/{i}" for i in range(count)]
            times, cpu[who], faults[who] = [], [], []
            for _ in range(rounds):
                bufs = data if op == ferry.OP_WRITE else [np.zeros(size, np.uint8)
                                                            for _ in range(count)]
                c0, f0 = server_usage(srv)
                times.append(phase(srv, bucket, keys, bufs, op, threads))
                c1, f1 = server_usage(srv)
                cpu[who].append(c1 - c0)
                faults[who].append(f1 - f0)
                if op == ferry.OP_READ:
                    assert all(np.array_equal(a, b) for a, b in zip(bufs, data)), who
            best[who] = min(times)
        total = count * size / 1e6
        rows.append((name, opname, best["ferry"], total / best["ferry"], best["boto3"],
                     total / best["boto3"], best["boto3"] / best["ferry"],
                     min(cpu["ferry"]), min(cpu["boto3"]),
                     min(faults["ferry"]) // 1000, min(faults["boto3"]) // 1000))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="best of this many runs per cell")
    ap.add_argument("--threads", type=int, default=16, help="concurrency of both clients")
    args = ap.parse_args()
    srv = MotoServer(part_min=5 * MiB)
    try:
        rows = []
        for name, count, size in (("64 x 1 MiB", 64, MiB), ("8 x 64 MiB", 8, 64 * MiB)):
            rows += workload(srv, name, count, size, args.rounds, args.threads)
    finally:
        srv.stop()
    print("| workload | phase | ferry OBJ s | MB/s | boto3 s | MB/s | boto3 time / ferry time "
          "| server CPU s, ferry / boto3 | server page faults (k), ferry / boto3 |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]:.0f} | {r[4]:.3f} | {r[5]:.0f} | "
              f"{r[6]:.2f} | {r[7]:.2f} / {r[8]:.2f} | {r[9]} / {r[10]} |")


if __name__ == "__main__":
    main()
