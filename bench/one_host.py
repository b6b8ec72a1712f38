#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Host memory between two processes of one host, every path in one run:
NIXL's wheel (UCX), ferry on SHM (ctypes buffers: cross-memory attach;
--alloc buffers from Agent.mem_alloc: memfd memory the peer maps), on UCX 1.22 (the libucx wheel; `rma=on`
and the default checked path) and on UCX 1.13 (Debian's), each through
bench/nixl_pair.py (the same nixl_agent program), beside memcpy within one
process (measured by the SHM alloc run, per row) and the wheel's ucx_perftest
(put and get, peer error mode, batch 1). A benchmark, not a test.

    python3 bench/one_host.py --build build --ferry-python build/pyenv/bin/python \\
        --nixl-python /tmp/nixlwheel-env/bin/python [--sizes 4K,64K,1M,4M,16M,64M]
        [--batches 1,64] [--iters 200] [--only ferry-shm,nixl,...]

Prints each configuration's rows as it goes, then one markdown table of
GB/s (median request) per operation, batch and block size, with SHM over
NIXL and SHM on allocated memory over memcpy.
"""
import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def configs(args):
    """name -> (python, nixl_pair arguments, extra environment)"""
    wheel_plugins = os.path.join(args.build, "plugins", "ucx", "wheel")
    deb_plugins = os.path.join(args.build, "plugins")
    common = ["--sizes", args.sizes, "--batches", args.batches, "--iters", str(args.iters)]
    return {
        "nixl": (args.nixl_python, ["--impl", "nixl"] + common, {}),
        "ferry-shm": (args.ferry_python, ["--impl", "ferry", "--backend", "SHM", "--memcpy"] + common,
                      {"FERRY_PLUGIN_DIR": deb_plugins}),
        "ferry-shm-alloc": (args.ferry_python,
                            ["--impl", "ferry", "--backend", "SHM", "--alloc", "--memcpy"] + common,
                            {"FERRY_PLUGIN_DIR": deb_plugins}),
        "ferry-ucx22-rma": (args.ferry_python, ["--impl", "ferry", "--params", "rma=on"] + common,
                            {"FERRY_PLUGIN_DIR": wheel_plugins}),
        "ferry-ucx22": (args.ferry_python, ["--impl", "ferry"] + common,
                        {"FERRY_PLUGIN_DIR": wheel_plugins}),
        "ferry-ucx13": (args.ferry_python, ["--impl", "ferry"] + common,
                        {"FERRY_PLUGIN_DIR": deb_plugins}),
    }


def run_pair(name, python, argv, env_extra):
    env = dict(os.environ, FERRY_LOG_LEVEL="error", **env_extra)
    cmd = [python, os.path.join(HERE, "nixl_pair.py")] + argv
    print(f"# {name}: {' '.join(cmd)}", flush=True)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0:
        print(f"# {name} failed (exit {out.returncode}): {out.stderr[-600:]}", flush=True)
    for r in rows:
        print(json.dumps(dict(r, config=name)), flush=True)
    return {(r["op"], r["batch"], r["block"]): r for r in rows}


def perftest(args, test, size):
    """GB/s of the wheel's ucx_perftest (server and client on loopback)."""
    wheel = os.path.join(args.build, "ucx-wheel", "libucx")
    exe = os.path.join(wheel, "bin", "ucx_perftest")
    if not os.path.exists(exe):
        return None
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(wheel, "lib"), UCX_CMA_MEMORY_INVALIDATE="y")
    port = str(13700 + (size.bit_length() % 50))
    n = str(max(20, min(2000, (1 << 30) // size)))
    base = ["-p", port, "-t", test, "-s", str(size), "-n", n, "-e", "-f"]
    server = subprocess.Popen([exe] + base, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            out = subprocess.run([exe, "localhost"] + base, env=env, capture_output=True, text=True,
                                 timeout=120)
            if out.returncode == 0:
                break
        last = [ln for ln in out.stdout.splitlines() if ln.strip()][-1]
        # Final line: ... bandwidth columns in MB/s (average is the second to last but one)
        nums = [float(x) for x in re.findall(r"[\d.]+", last)]
        return nums[-3] * 1e6 / 1e9 if len(nums) >= 3 else None
    finally:
        server.kill()
        server.wait()


def parse_size(text):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper()
    return int(text[:-1]) * mult[text[-1]] if text[-1] in mult else int(text)


def table(results, perf, args):
    names = [n for n in configs(args) if n in results]
    print("\n| op | batch | block | " + " | ".join(names) +
          " | memcpy | ucx_perftest -e | SHM / NIXL | SHM alloc / memcpy |")
    print("| --- | ---: | ---: |" + " ---: |" * (len(names) + 4))
    keys = sorted({k for r in results.values() for k in r}, key=lambda k: (k[0] != "WRITE", k[1], k[2]))
    for op, batch, block in keys:
        cell = lambda n: results[n].get((op, batch, block), {}).get("gbps_median")
        vals = [cell(n) for n in names]
        shm = cell("ferry-shm") if "ferry-shm" in results else None
        shm_alloc = cell("ferry-shm-alloc") if "ferry-shm-alloc" in results else None
        mc = results.get("ferry-shm-alloc", {}).get((op, batch, block), {}).get("memcpy_gbps")
        nx = cell("nixl") if "nixl" in results else None
        pt = perf.get((op, block)) if batch == 1 else None
        fmt = lambda v: f"{v:.2f}" if v else ""
        ratio = lambda a, b: f"{a / b:.2f}" if a and b else ""
        size = f"{block >> 20} MiB" if block >= 1 << 20 else f"{block >> 10} KiB"
        print(f"| {op} | {batch} | {size} | " + " | ".join(fmt(v) for v in vals) +
              f" | {fmt(mc)} | {fmt(pt)} | {ratio(shm, nx)} | {ratio(shm_alloc, mc)} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--ferry-python", default="build/pyenv/bin/python")
    ap.add_argument("--nixl-python", default="/tmp/nixlwheel-env/bin/python")
    ap.add_argument("--sizes", default="4K,64K,1M,4M,16M,64M")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--only", default="", help="comma-separated configurations")
    args = ap.parse_args()
    results = {}
    for name, (python, argv, env) in configs(args).items():
        if args.only and name not in args.only.split(","):
            continue
        if not python or not os.path.exists(python):
            print(f"# {name}: no {python}: left out", flush=True)
            continue
        results[name] = run_pair(name, python, argv, env)
    perf = {}
    for size in [parse_size(s) for s in args.sizes.split(",")]:
        for op, test in (("WRITE", "ucp_put_bw"), ("READ", "ucp_get")):
            perf[(op, size)] = perftest(args, test, size)
    table(results, perf, args)


if __name__ == "__main__":
    sys.exit(main())
