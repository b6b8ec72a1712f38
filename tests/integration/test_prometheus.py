#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A real Prometheus scrapes ferry's /metrics endpoint on loopback.

Two processes of tm_peer (TM_PEER) export on one port: the first (agents
rank0a and rank0b, which share its endpoint) binds it; the second (rank1)
finds it taken and publishes its samples to the first through the
telemetry directory. The test starts Prometheus (Debian `prometheus`) with
a temporary config and data directory, waits until a query of its HTTP API
returns agent_tx_bytes_total of each agent with the bytes that agent wrote,
then stops the first process and checks that the second takes the port
over. Exit 0 passed, 1 failed, 77 skipped (no prometheus binary).

usage: test_prometheus.py  (env TM_PEER, FERRY_TELEMETRY_TOOL optional)
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

DEADLINE_S = 40
EXPECTED = {"rank0a": 3 * 4096, "rank0b": 3 * 4096, "rank1": 5 * 1024}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def start_peer(names, port, tdir, count, size):
    p = subprocess.Popen([os.environ["TM_PEER"], names, str(port), tdir, str(count), str(size)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if line != "ready":
        p.kill()
        raise RuntimeError(f"tm_peer {names} did not start ({line!r})")
    return p


def stop(p):
    if p.stdin:
        p.stdin.close()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def start_prometheus(binary, work, target_port):
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: ferry\n    static_configs:\n"
                f"      - targets: ['127.0.0.1:{target_port}']\n")
    port = free_port()
    log = open(os.path.join(work, "prometheus.log"), "w")
    p = subprocess.Popen([binary, f"--config.file={config}",
                          f"--storage.tsdb.path={os.path.join(work, 'data')}",
                          f"--web.listen-address=127.0.0.1:{port}"],
                         stdout=log, stderr=subprocess.STDOUT)
    return p, port, log


def query(prom_port, expr):
    url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    answer = json.loads(http_get(url))
    return answer["data"]["result"] if answer.get("status") == "success" else []


def scraped_bytes(prom_port):
    """{agent_name: value} of agent_tx_bytes_total as Prometheus has it."""
    try:
        rows = query(prom_port, 'agent_tx_bytes_total{job="ferry",backend="LOCAL"}')
    except OSError:
        return {}
    return {r["metric"]["agent_name"]: int(float(r["value"][1])) for r in rows}


def wait_for(what, check, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def check_scrape(prom_port):
    got = wait_for("Prometheus to hold every agent's byte counter",
                   lambda: (lambda b: b if b == EXPECTED else None)(scraped_bytes(prom_port)),
                   DEADLINE_S)
    print(f"# Prometheus: agent_tx_bytes_total = {got}")
    up = query(prom_port, 'up{job="ferry"}')
    assert up and up[0]["value"][1] == "1", up
    hist = query(prom_port, 'agent_xfer_time_us_count{agent_name="rank1"}')
    assert hist and hist[0]["value"][1] == "5", hist


def check_takeover(first, port):
    """With the serving process gone, the publishing one binds the port."""
    stop(first)

    def serving_rank1_only():
        try:
            text = http_get(f"http://127.0.0.1:{port}/metrics")
        except OSError:
            return None
        return 'agent_name="rank1"' in text and 'agent_name="rank0a"' not in text
    wait_for("rank1 to take the endpoint over", serving_rank1_only, 10)
    print("# the second process took the endpoint over")


def check_ring_tool(tdir):
    """ferry-telemetry, another process, reads rank1's ring."""
    tool = os.environ.get("FERRY_TELEMETRY_TOOL")
    if not tool:
        return
    out = subprocess.run([tool, "--dir", tdir, "--json", "-", "summary", "rank1"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    s = json.loads(out.splitlines()[0])
    assert s["agent"] == "rank1" and s["events"]["xfer_done"] == 5, s
    assert s["bytes"]["write"] == 5 * 1024 and s["ferry_version"], s
    out = subprocess.run([tool, "--dir", tdir, "--json", "-", "tail", "rank0b"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    events = [json.loads(line) for line in out.splitlines()]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(len(seqs))) and len(seqs) == 2 + 2 * 3, seqs
    assert [e["event"] for e in events[2:4]] == ["xfer_post", "xfer_done"], events
    t0 = time.monotonic()
    out = subprocess.run([tool, "--dir", tdir, "tail", "--follow", "--seconds", "1", "rank1"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert 0.9 <= time.monotonic() - t0 < 10 and out.count("xfer_done") == 5, out
    out = subprocess.run([tool, "--dir", tdir, "list"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    assert all(f"{a} " in out for a in EXPECTED) and "alive" in out, out
    print("# ferry-telemetry read the rings of the other processes")


def main():
    binary = shutil.which("prometheus")
    if not binary:
        print("1..0 # SKIP prometheus not installed (Debian: apt-get install prometheus)")
        return 77
    work = tempfile.mkdtemp(prefix="ferry-prom-")
    tdir = os.path.join(work, "telemetry")
    port = free_port()
    peers, prom, log = [], None, None
    try:
        peers.append(start_peer("rank0a,rank0b", port, tdir, 3, 4096))
        peers.append(start_peer("rank1", port, tdir, 5, 1024))
        prom, prom_port, log = start_prometheus(binary, work, port)
        check_scrape(prom_port)
        check_ring_tool(tdir)
        check_takeover(peers[0], port)
    except (AssertionError, RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"not ok - {e}")
        if log:
            log.flush()
            with open(log.name) as f:
                print("".join("# " + line for line in f.readlines()[-20:]))
        return 1
    finally:
        for p in peers:
            stop(p)
        if prom:
            prom.terminate()
            prom.wait(timeout=20)
        if log:
            log.close()
        shutil.rmtree(work, ignore_errors=True)
    print("ok - Prometheus scraped the shared endpoint; the byte counters match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
