# SPDX-License-Identifier: Apache-2.0
"""Telemetry from Python: ferry_kv.Agent.metrics()/metrics_text() against a
known workload, the switches, and the registration cap through ferry_kv
and through the nixl import tree (FERRY_MAX_REGISTERED_BYTES)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import ferry_kv as ferry
from conftest import COMPAT_DIR


def series(agent, name, **labels):
    """The one series of name with those labels (or None)."""
    found = [m for m in agent.metrics()
             if m["name"] == name and all(m["labels"].get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, found
    return found[0] if found else None


def loopback(name, **opts):
    a = ferry.Agent(name, **opts)
    a.create_backend("LOCAL")
    src = np.arange(1 << 16, dtype=np.uint8)
    dst = np.zeros(1 << 16, np.uint8)
    a.register([(src.ctypes.data, src.nbytes, 0), (dst.ctypes.data, dst.nbytes, 0)],
               mem_type="DRAM")
    a.load_metadata(a.metadata())
    return a, src, dst


def post(a, op, src, dst, size, count):
    """count requests of size bytes; the sum of their transfer times."""
    total = 0
    for _ in range(count):
        with a.create_xfer(op, [(src.ctypes.data, size, 0)], [(dst.ctypes.data, size, 0)],
                           a.name, mem_type="DRAM") as x:
            x.post()
            assert x.wait(5.0)
            total += x.telemetry().xfer_us
    return total


def test_metrics_match_workload():
    a, src, dst = loopback("py-tm", telemetry=True, telemetry_buckets_us="10,100,1000")
    us = post(a, "WRITE", src, dst, 4096, 5) + post(a, "READ", src, dst, 1024, 2)
    assert series(a, "agent_tx_bytes", backend="LOCAL")["value"] == 5 * 4096
    assert series(a, "agent_rx_bytes", backend="LOCAL")["value"] == 2 * 1024
    assert series(a, "agent_tx_requests_num", backend="LOCAL")["kind"] == "counter"
    h = series(a, "agent_xfer_time_us", backend="LOCAL")
    assert h["kind"] == "histogram" and h["count"] == 7 and h["value"] == us
    assert [b for b, _ in h["buckets"]] == [10.0, 100.0, 1000.0, float("inf")]
    assert h["buckets"][-1][1] == 7
    reg = series(a, "ferry_registered_bytes", backend="LOCAL", mem_type="DRAM")
    assert reg["kind"] == "gauge" and reg["value"] == 2 << 16
    text = a.metrics_text()
    assert "# TYPE agent_tx_bytes_total counter" in text
    assert 'agent_tx_bytes_total{agent_name="py-tm"' in text
    a.close()
    with pytest.raises(ferry.Error):
        a.metrics()


def test_off_keeps_ledger_only():
    a, _, _ = loopback("py-tm-off")
    names = {m["name"] for m in a.metrics()}
    assert "agent_tx_bytes" not in names
    assert {"ferry_registered_bytes", "ferry_process_resident_bytes",
            "ferry_host_mem_available_bytes", "ferry_memlock_limit_bytes"} <= names
    a.close()


def test_bad_setting_is_refused():
    with pytest.raises(ferry.InvalidParamError):
        ferry.Agent("py-bad", telemetry=True, telemetry_buckets_us="5,4")
    with pytest.raises(ValueError):
        ferry.Agent("py-bad", telemetry_prometheus_port=70000)


def test_backend_cap():
    a = ferry.Agent("py-cap", reg_cap_backends="LOCAL=64K")
    a.create_backend("LOCAL")
    buf = np.zeros(1 << 17, np.uint8)
    base = buf.ctypes.data
    a.register([(base, 32 << 10, 0), (base + (32 << 10), 32 << 10, 0)], mem_type="DRAM")
    with pytest.raises(ferry.NoResourcesError, match="cap of 65536 bytes"):
        a.register([(base + (64 << 10), 1, 0)], mem_type="DRAM")
    assert a.mem_usage()["DRAM"] == (64 << 10, 2)
    a.deregister([(base, 32 << 10, 0)], mem_type="DRAM")
    a.register([(base + (64 << 10), 32 << 10, 0)], mem_type="DRAM")
    a.close()


NIXL_CAP_CHILD = """
import numpy as np
import ferry_kv
from nixl._api import nixl_agent, nixl_agent_config
import nixl
assert nixl.BACKEND == "ferry"
agent = nixl_agent("nixl-cap", nixl_agent_config(backends=["LOCAL"]))
bufs = [np.zeros(64 << 10, np.uint8) for _ in range(3)]
descs = [(b.ctypes.data, b.nbytes, 0, "") for b in bufs]
first = agent.register_memory(descs[:2], "DRAM")
try:
    agent.register_memory(descs[2:], "DRAM")
    raise SystemExit("a registration over the cap succeeded")
except ferry_kv.NoResourcesError as e:
    assert "registration cap of 131072 bytes" in str(e), e
ledger = [m["value"] for m in agent.get_metrics() if m["name"] == "ferry_agent_registered_bytes"]
assert ledger == [128 << 10], ledger
agent.deregister_memory(first)
agent.deregister_memory(agent.register_memory(descs[2:], "DRAM"))
assert "ferry_registered_cap_bytes" in agent.get_metrics_text()
print("nixl-cap ok")
"""


def test_cap_through_nixl_tree():
    """The agent's cap from the environment, through the `nixl` import tree
    (python/nixl-compat, in a child so this process's modules stay as they
    are): registrations up to it succeed, the next fails cleanly,
    deregistration frees room."""
    env = dict(os.environ, FERRY_MAX_REGISTERED_BYTES="128K", FERRY_NIXL="1",
               PYTHONPATH=os.pathsep.join([COMPAT_DIR, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", NIXL_CAP_CHILD], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "nixl-cap ok" in out.stdout, out.stdout + out.stderr
