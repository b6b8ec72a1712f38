# SPDX-License-Identifier: Apache-2.0
"""The NIXL-compatible metadata calls without a peer address, in TCPStore
mode: a real PyTorch TCPStore server (Debian's python3-torch) on a free
loopback port, started in this process by the fixture and stopped after;
skipped without torch.distributed."""
import datetime
import os
import signal

import numpy as np
import pytest

from conftest import needs_ucx
from etcd_peers import publisher, read_from, until
from ferry_kv.nixl import nixl_agent, nixl_agent_config

dist = pytest.importorskip("torch.distributed", reason="no torch.distributed (python3-torch)")
pytestmark = [needs_ucx]


@pytest.fixture
def tcpstore(monkeypatch):
    store = dist.TCPStore("127.0.0.1", 0, None, True, datetime.timedelta(seconds=10),
                          wait_for_workers=False)
    monkeypatch.delenv("NIXL_ETCD_ENDPOINTS", raising=False)
    monkeypatch.delenv("FERRY_ETCD_ENDPOINTS", raising=False)
    monkeypatch.setenv("NIXL_TCPSTORE_ENDPOINT", f"127.0.0.1:{store.port}")
    yield store
    del store


def test_publish_fetch_partial_invalidate(tcpstore):
    conf = nixl_agent_config(backends=["UCX"])
    with nixl_agent("ts", conf) as srv, nixl_agent("tc", conf) as cli:
        cli.fetch_remote_metadata("ts")  # before it is published: waits
        srv.send_local_metadata()
        assert until(lambda: cli.check_remote_metadata("ts"), 5)
        # PyTorch's own client sees the key (it puts "/" before every key).
        assert len(tcpstore.get("ferry/agents/ts/metadata")) > 0
        buf = np.zeros(256, np.uint8)
        reg = cli.register_memory([(buf.ctypes.data, 256, 0, "")], "DRAM")
        cli.send_partial_agent_metadata(reg, True, [], label="kv")
        srv.fetch_remote_metadata("tc", label="kv")
        descs = srv.get_xfer_descs([(buf.ctypes.data, 256, 0)], "DRAM")
        assert until(lambda: srv.check_remote_metadata("tc", descs), 5)
        srv.invalidate_local_metadata()
        assert until(lambda: not cli.check_remote_metadata("ts"), 3)
        assert not tcpstore.delete_key("ferry/agents/ts/metadata")  # already gone


def test_restarted_peer_is_reloaded(tcpstore, spawn):
    """TCPStore has no leases: a killed publisher's keys stay, and when it
    comes back under the same name the reader loads the new metadata by
    itself and reads from the new process (UCX between the two)."""
    q = spawn.Queue()
    with nixl_agent("tr", nixl_agent_config(backends=["UCX"])) as reader:
        child = spawn.Process(target=publisher, args=("tp", 0x11, q), daemon=True)
        child.start()
        addr = q.get(timeout=20)
        reader.fetch_remote_metadata("tp")
        assert until(lambda: reader.check_remote_metadata("tp"), 5)
        assert (read_from(reader, "tp", addr) == 0x11).all()
        gen = reader.agent.ferry_agent.generation("tp")
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        child = spawn.Process(target=publisher, args=("tp", 0x22, q), daemon=True)
        child.start()
        addr = q.get(timeout=20)
        assert until(lambda: reader.agent.ferry_agent.generation("tp") > gen, 5)
        assert (read_from(reader, "tp", addr) == 0x22).all()
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
