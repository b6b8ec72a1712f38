#!/usr/bin/env python3
"""LIBFABRIC over one rail and over two, between two network namespaces.

Two namespaces joined by two veth pairs (10.87.0.0/24 and 10.88.0.0/24,
one subnet per pair, so that each rail's packets leave by its own veth):
a target process in one, an initiator in the other, each a ferry agent
with the LIBFABRIC backend on tcp;ofi_rxm, over one rail (domain=the first
veth) and over two (rails=both veths, striping_threshold as given). The
initiator reposts one WRITE (then one READ) of each size and reports GB/s
(1e9 bytes); beside it fi_pingpong over the first veth, same sizes
(messages taking turns, a lower bound of what the provider streams).
Prints a markdown table; each figure is the best of --repeat runs. Run as
root; the namespaces go away at exit.

--rate R (tc's units, e.g. 2gbit) shapes each veth's sending side to R
with a token bucket (tc tbf), in both namespaces: each rail then stands
for a NIC slower than the host, whose two rails do not share one
bottleneck as two unshaped veths on a small VM share its CPUs.

Usage: bench/libfabric_rails.py [--python PY] [--sizes 1M,16M,64M]
           [--iters N] [--repeat N] [--threshold 128K] [--rate 2gbit]
PY: a Python with ferry_kv installed (default build/pyenv/bin/python).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)
PID = os.getpid()
NS = (f"fy-lfb-a-{PID}", f"fy-lfb-b-{PID}")
PAIRS = [(f"fylba{PID}", f"fylbb{PID}", "10.87.0"), (f"fylbc{PID}", f"fylbd{PID}", "10.88.0")]
PORT = 18515


def size_of(text):
    m = re.fullmatch(r"(\d+)([KMG]?)", text.strip().upper())
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


# ---- the two processes (run inside the namespaces) ----

def worker_target(params, host, size):
    import numpy as np

    import ferry_kv as ferry
    agent = ferry.Agent("lfb-target", progress_thread=True, listen=True, listen_host=host)
    agent.create_backend("LIBFABRIC", params)
    buf = np.ones(size, dtype=np.uint8)
    agent.register([(buf.ctypes.data, size, 0)], mem_type="DRAM")
    print(json.dumps({"port": agent.listen_port, "addr": buf.ctypes.data}), flush=True)
    sys.stdin.read()  # until the driver closes it
    agent.close()


def timed(x, iters):
    t0 = time.perf_counter()
    for _ in range(iters):
        x.post()
        assert x.wait(60), "a transfer did not complete"
    return time.perf_counter() - t0


def worker_initiator(params, host, port, addr, sizes, iters):
    import numpy as np

    import ferry_kv as ferry
    out = []
    with ferry.Agent("lfb-initiator", progress_thread=True) as agent:
        agent.create_backend("LIBFABRIC", params)
        buf = np.zeros(max(sizes), dtype=np.uint8)
        agent.register([(buf.ctypes.data, buf.nbytes, 0)], mem_type="DRAM")
        agent.fetch_metadata("lfb-target", host, port, wait_ms=20000)
        for size in sizes:
            for op in ("WRITE", "READ"):
                x = agent.create_xfer(op, [(buf.ctypes.data, size, 0)], [(addr, size, 0)],
                                      "lfb-target", mem_type="DRAM")
                timed(x, 2)  # warm-up: connections made, pages touched
                secs = timed(x, iters)
                x.release()
                out.append({"op": op, "size": size, "gbps": size * iters / secs / 1e9})
    print(json.dumps(out), flush=True)


# ---- the driver ----

def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def netns_up():
    for ns in NS:
        sh("ip", "netns", "add", ns)
    for a, b, net in PAIRS:
        sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        for ns, dev, host in ((NS[0], a, 1), (NS[1], b, 2)):
            sh("ip", "link", "set", dev, "netns", ns)
            sh("ip", "-n", ns, "addr", "add", f"{net}.{host}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
    for a, _, _ in PAIRS:
        for _ in range(50):
            if "LOWER_UP" in sh("ip", "-n", NS[0], "link", "show", a).stdout:
                break
            time.sleep(0.1)


def shape(rate):
    """Each veth end sends at most rate (token bucket; 1 MB of burst)."""
    for a, b, _ in PAIRS:
        for ns, dev in ((NS[0], a), (NS[1], b)):
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf",
               "rate", rate, "burst", "1mb", "latency", "50ms")


def netns_down():
    for ns in NS:
        sh("ip", "netns", "del", ns, check=False)


def ferry_run(py, params, sizes, iters):
    """Target in b, initiator in a: [{op, size, gbps}]."""
    host = PAIRS[0][2] + ".2"
    target = subprocess.Popen(["ip", "netns", "exec", NS[1], py, HERE, "--role", "target",
                               "--params", json.dumps(params[1]), "--host", host,
                               "--size", str(max(sizes))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        where = json.loads(target.stdout.readline())
        ini = subprocess.run(["ip", "netns", "exec", NS[0], py, HERE, "--role", "initiator",
                              "--params", json.dumps(params[0]), "--host", host,
                              "--port", str(where["port"]), "--addr", str(where["addr"]),
                              "--sizes", ",".join(map(str, sizes)), "--iters", str(iters)],
                             capture_output=True, text=True, timeout=600, check=True)
        return json.loads(ini.stdout.strip().splitlines()[-1])
    finally:
        target.stdin.close()
        target.wait(30)


def fi_pingpong(size, iters):
    """GB/s of fi_pingpong over the first veth pair (tcp;ofi_rxm, rdm), from
    the client's row (bytes iters total time MB/sec usec/xfer Mxfers/sec)."""
    common = ["-p", "tcp;ofi_rxm", "-e", "rdm", "-I", str(iters), "-S", str(size)]
    server = subprocess.Popen(["ip", "netns", "exec", NS[1], "fi_pingpong", *common,
                               "-d", PAIRS[0][1], "-B", str(PORT)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        out = subprocess.run(["ip", "netns", "exec", NS[0], "fi_pingpong", *common, "-d",
                              PAIRS[0][0], "-P", str(PORT), PAIRS[0][2] + ".2"],
                             capture_output=True, text=True, timeout=120).stdout
    finally:
        server.kill()
        server.wait()
    rows = [line.split() for line in out.splitlines() if re.match(r"^\d", line.strip())]
    return float(rows[-1][5]) * 1e6 / 1e9 if rows else float("nan")


def configs(threshold):
    tcp = {"provider": "tcp;ofi_rxm"}
    one = ({**tcp, "domain": PAIRS[0][0]}, {**tcp, "domain": PAIRS[0][1]})
    two = ({**tcp, "rails": f"{PAIRS[0][0]},{PAIRS[1][0]}", "striping_threshold": threshold},
           {**tcp, "rails": f"{PAIRS[0][1]},{PAIRS[1][1]}", "striping_threshold": threshold})
    return one, two


def best(runs):
    """Per (op, size), the best GB/s of several runs."""
    keyed = [{(r["op"], r["size"]): r["gbps"] for r in run} for run in runs]
    return {k: max(run[k] for run in keyed) for k in keyed[0]}


def carried():
    """Bytes each veth of the initiator's side sent and received so far."""
    def of(dev):
        path = f"/sys/class/net/{dev}/statistics/"
        return sum(int(sh("ip", "netns", "exec", NS[0], "cat", path + f).stdout)
                   for f in ("tx_bytes", "rx_bytes"))
    return [of(a) for a, _, _ in PAIRS]


def measure(args, sizes):
    one, two = configs(args.threshold)
    res = {"one": best([ferry_run(args.python, one, sizes, args.iters)
                        for _ in range(args.repeat)])}
    before = carried()
    res["two"] = best([ferry_run(args.python, two, sizes, args.iters)
                       for _ in range(args.repeat)])
    res["split"] = [after - b for after, b in zip(carried(), before)]
    res["fi"] = {s: max(fi_pingpong(s, args.iters) for _ in range(args.repeat)) for s in sizes}
    return res


def table(res, sizes):
    print("| op | block (B) | one rail (GB/s) | two rails, striped (GB/s) | two / one "
          "| fi_pingpong, one veth (GB/s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for op in ("WRITE", "READ"):
        for s in sizes:
            one, two = res["one"][(op, s)], res["two"][(op, s)]
            print(f"| {op} | {s} | {one:.3f} | {two:.3f} | {two / one:.2f} | {res['fi'][s]:.3f} |")
    print("\nbytes each veth carried during the two-rail runs: "
          + ", ".join(f"{a} {n}" for (a, _, _), n in zip(PAIRS, res["split"])))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role")
    ap.add_argument("--params")
    ap.add_argument("--host")
    ap.add_argument("--port", type=int)
    ap.add_argument("--addr", type=int)
    ap.add_argument("--size", type=int)
    ap.add_argument("--python", default=os.path.join("build", "pyenv", "bin", "python"))
    ap.add_argument("--sizes", default="1M,16M,64M")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threshold", default="128K")
    ap.add_argument("--rate", help="shape each veth to this rate (tc units, e.g. 2gbit)")
    args = ap.parse_args()
    if args.role == "target":
        return worker_target(json.loads(args.params), args.host, args.size)
    sizes = [size_of(s) for s in args.sizes.split(",")]
    if args.role == "initiator":
        return worker_initiator(json.loads(args.params), args.host, args.port, args.addr,
                                sizes, args.iters)
    try:
        netns_up()
        if args.rate:
            shape(args.rate)
            print(f"each veth shaped to {args.rate} (tc tbf, both directions)")
        table(measure(args, sizes), sizes)
    finally:
        netns_down()


if __name__ == "__main__":
    main()
