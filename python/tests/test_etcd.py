# SPDX-License-Identifier: Apache-2.0
"""The NIXL-compatible metadata calls without a peer address, in etcd mode:
a real etcd (Debian etcd-server) on free loopback ports, started and
stopped by the fixture; skipped when no etcd binary is installed."""
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import numpy as np
import pytest

from conftest import needs_ucx
from etcd_peers import publisher, read_from as _read, until as _until
from ferry_kv.nixl import nixl_agent, nixl_agent_config

pytestmark = [needs_ucx,
              pytest.mark.skipif(not shutil.which("etcd"), reason="no etcd (Debian etcd-server)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def etcd(tmp_path, monkeypatch):
    client, peer = _free_port(), _free_port()
    url = f"http://127.0.0.1:{client}"
    proc = subprocess.Popen(
        ["etcd", "--data-dir", str(tmp_path / "etcd"), "--listen-client-urls", url,
         "--advertise-client-urls", url, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"default=http://127.0.0.1:{peer}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(url)
        monkeypatch.setenv("NIXL_ETCD_ENDPOINTS", url)
        monkeypatch.setenv("FERRY_ETCD_TTL_S", "2")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_healthy(url: str) -> None:
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("etcd did not start")


def test_publish_fetch_partial_invalidate(etcd):
    conf = nixl_agent_config(backends=["UCX"])
    with nixl_agent("es", conf) as srv, nixl_agent("ec", conf) as cli:
        cli.fetch_remote_metadata("es")  # before it is published: waits
        srv.send_local_metadata()
        assert _until(lambda: cli.check_remote_metadata("es"), 5)
        buf = np.zeros(256, np.uint8)
        reg = cli.register_memory([(buf.ctypes.data, 256, 0, "")], "DRAM")
        cli.send_partial_agent_metadata(reg, True, [], label="kv")
        srv.fetch_remote_metadata("ec", label="kv")
        descs = srv.get_xfer_descs([(buf.ctypes.data, 256, 0)], "DRAM")
        assert _until(lambda: srv.check_remote_metadata("ec", descs), 5)
        srv.invalidate_local_metadata()
        assert _until(lambda: not cli.check_remote_metadata("es"), 3)


def test_killed_peer_expires_and_returns(etcd, spawn):
    """kill -9 of a publishing process: its keys expire with the lease and
    the reader forgets it; restarted under the same name it is fetched and
    read from again (UCX between the two processes)."""
    q = spawn.Queue()
    with nixl_agent("kr", nixl_agent_config(backends=["UCX"])) as reader:
        for fill in (0x11, 0x22):
            child = spawn.Process(target=publisher, args=("kp", fill, q))
            child.start()
            addr = q.get(timeout=20)
            reader.fetch_remote_metadata("kp")
            assert _until(lambda: reader.check_remote_metadata("kp"), 5)
            assert (_read(reader, "kp", addr) == fill).all()
            os.kill(child.pid, signal.SIGKILL)
            child.join(10)
            t0 = time.monotonic()
            assert _until(lambda: not reader.check_remote_metadata("kp"), 2 + 2)
            assert time.monotonic() - t0 < 4
