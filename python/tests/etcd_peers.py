# SPDX-License-Identifier: Apache-2.0
"""Child processes (spawned: importable by name) and helpers of test_etcd.py
and test_tcpstore.py."""
import time

import numpy as np

from ferry_kv.nixl import nixl_agent, nixl_agent_config


def publisher(name: str, fill: int, out) -> None:
    """Publishes an agent with one 4 KiB buffer of `fill` bytes through the
    metadata service of the environment (etcd or TCPStore), reports the
    buffer's address, then waits to be killed."""
    buf = np.full(4096, fill, np.uint8)
    agent = nixl_agent(name, nixl_agent_config(backends=["UCX"]))
    agent.register_memory([(buf.ctypes.data, 4096, 0, "")], "DRAM")
    agent.send_local_metadata()
    out.put(buf.ctypes.data)
    while True:
        time.sleep(1)


def until(cond, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while not cond() and time.monotonic() < end:
        time.sleep(0.02)
    return cond()


def read_from(agent, peer: str, addr: int) -> np.ndarray:
    got = np.zeros(4096, np.uint8)
    reg = agent.register_memory([(got.ctypes.data, 4096, 0, "")], "DRAM")
    h = agent.initialize_xfer("READ", agent.get_xfer_descs([(got.ctypes.data, 4096, 0)], "DRAM"),
                              agent.get_xfer_descs([(addr, 4096, 0)], "DRAM"), peer)
    state = agent.transfer(h)
    end = time.monotonic() + 10
    while state == "PROC" and time.monotonic() < end:
        state = agent.check_xfer_state(h)
    assert state == "DONE"
    agent.release_xfer_handle(h)
    agent.deregister_memory(reg)
    return got
