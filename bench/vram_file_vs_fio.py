#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""GPU memory to and from a file through the POSIX backend's staged path,
beside fio moving the same file into host memory, in one run.

For each block size (128 KiB, 1 MiB, 16 MiB) and direction: ferry-bench
moves batches of 64 blocks between GPU 0 and the file (--initiator_seg_type
VRAM --target_seg_type FILE, O_DIRECT, io_uring, queue depth 64, 64 bounce
buffers), and fio runs one io_uring job on the same file with the same
block size, iodepth 64 and direct=1, into host memory. The file is
64 blocks long, so both sweep all of it. Best of --reps runs each. Prints
a table: ferry's GB/s (1e9 bytes), fio's, and ferry / fio: the share of
the disk's speed left after the GPU hop, which the pipeline hides.

    python3 bench/vram_file_vs_fio.py --dir /mnt/nvme [--build build] [--fio FIO]

Needs a GPU with its driver, a build folder (ferry-bench and the plugins),
and fio (--fio, else fio on PATH; gpu-extra/ holds an unpacked Debian fio
for hosts without a package registry). Files are made in a temp dir under
--dir and deleted at the end.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

BLOCKS = [128 << 10, 1 << 20, 16 << 20]
BATCH = 64
DEPTH = 64


def fio_gbps(fio, path, bs, op, seconds):
    size = bs * BATCH
    cmd = [fio, "--name=ref", f"--filename={path}", f"--size={size}", f"--bs={bs}",
           f"--iodepth={DEPTH}", "--ioengine=io_uring", "--direct=1", f"--rw={op}",
           "--numjobs=1", "--time_based", f"--runtime={seconds}", "--output-format=json"]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    job = out["jobs"][0][op]
    return job["io_bytes"] / (job["runtime"] / 1000.0) / 1e9 if job["runtime"] else 0.0


def ferry_gbps(build, path, bs, op, iters):
    with tempfile.NamedTemporaryFile(suffix=".json") as js:
        cmd = [os.path.join(build, "tools", "ferry-bench"), "--backend", "POSIX",
               "--backend_params", f"engine=uring,queue_depth={DEPTH},bounce_buffers={DEPTH}",
               "--initiator_seg_type", "VRAM", "--target_seg_type", "FILE",
               "--filenames", path, "--storage_enable_direct", "--op_type", op.upper(),
               "--start_block_size", str(bs), "--max_block_size", str(bs),
               "--start_batch_size", str(BATCH), "--max_batch_size", str(BATCH),
               "--num_iter", str(iters), "--warmup_iter", str(max(1, iters // 10)),
               "--json", js.name]
        env = dict(os.environ, FERRY_PLUGIN_DIR=os.path.join(build, "plugins"))
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode:
            sys.exit(f"ferry-bench failed (exit {done.returncode}): {' '.join(cmd)}\n"
                     f"{done.stderr.strip()}")
        rows = [json.loads(line) for line in open(js.name) if line.strip()]
    return rows[-1]["bandwidth_gbps"]


def make_file(path, size):
    with open(path, "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(size // len(chunk)):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())


def run(args):
    rows = []
    work = tempfile.mkdtemp(prefix="ferry-vramfile-", dir=args.dir)
    try:
        for bs in BLOCKS:
            path = os.path.join(work, f"blocks-{bs}.dat")
            make_file(path, bs * BATCH)
            # About --gib per timed run, so small blocks are not all setup.
            iters = max(5, int(args.gib * (1 << 30)) // (bs * BATCH))
            for op in ("write", "read"):
                f = max(ferry_gbps(args.build, path, bs, op, iters) for _ in range(args.reps))
                r = max(fio_gbps(args.fio, path, bs, op, args.seconds) for _ in range(args.reps))
                rows.append((bs, op, f, r))
                print_row(rows[-1])
            os.unlink(path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def print_head():
    print(f"{'block':>8} {'batch':>5} {'op':>5} {'ferry VRAM<->FILE GB/s':>23} "
          f"{'fio DRAM<->FILE GB/s':>21} {'ratio':>6}")


def print_row(r):
    bs, op, f, ref = r
    label = f"{bs >> 20} MiB" if bs >= 1 << 20 else f"{bs >> 10} KiB"
    ratio = f / ref if ref else 0.0
    dirn = "VRAM->FILE" if op == "write" else "FILE->VRAM"
    print(f"{label:>8} {BATCH:>5} {op:>5} {f:>12.3f} ({dirn}) {ref:>21.3f} {ratio:>6.2f}",
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default="/tmp", help="where the test files go (the disk measured)")
    ap.add_argument("--build", default="build", help="ferry's build folder")
    ap.add_argument("--fio", default=shutil.which("fio") or "fio", help="the fio program")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5, help="fio's time per run")
    ap.add_argument("--gib", type=float, default=2.0, help="GiB per timed ferry-bench run")
    args = ap.parse_args()
    print(f"# dir {args.dir}, batches of {BATCH}, queue depth {DEPTH}, O_DIRECT, io_uring")
    print_head()
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
