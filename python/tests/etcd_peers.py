# SPDX-License-Identifier: Apache-2.0
"""Child processes of test_etcd.py (spawned: importable by name)."""
import time

import numpy as np

from ferry_kv.nixl import nixl_agent, nixl_agent_config


def publisher(name: str, fill: int, out) -> None:
    """Publishes an agent with one 4 KiB buffer of `fill` bytes through
    etcd (NIXL_ETCD_ENDPOINTS in the environment), reports the buffer's
    address, then waits to be killed."""
    buf = np.full(4096, fill, np.uint8)
    agent = nixl_agent(name, nixl_agent_config(backends=["UCX"]))
    agent.register_memory([(buf.ctypes.data, 4096, 0, "")], "DRAM")
    agent.send_local_metadata()
    out.put(buf.ctypes.data)
    while True:
        time.sleep(1)
