# SPDX-License-Identifier: Apache-2.0
"""The GDS and GDS_MT backends through the NIXL-compatible layer.

NIXL's GDS call sequence (its nixl_gds_example pattern: memory and a file
registered, fd as dev_id and offset as addr, WRITE then READ to the
agent's own name), here with host memory, against the fake libcufile of
plugins/gds/tests (FERRY_BUILD_DIR), which does what cuFile's
compatibility mode does; and without any libcufile: creation fails with
NIXL's not-supported error and the reason.
"""
import os

import numpy as np
import pytest

import ferry_kv as ferry
from ferry_kv.nixl import nixl_agent, nixl_agent_config

BUILD = os.environ.get("FERRY_BUILD_DIR", "/nonexistent")
MOCK_CUFILE = os.path.join(BUILD, "plugins", "gds", "tests", "libfy_mockcufile.so")


def _has_gds() -> bool:
    with ferry.Agent("probe-gds") as a:
        return "GDS" in a.plugins() and "GDS_MT" in a.plugins()


pytestmark = pytest.mark.skipif(not _has_gds(), reason="GDS plugins not built (-Dcuda=disabled)")


def _transfer(agent, op, local, remote, name):
    handle = agent.initialize_xfer(op, local, remote, name)
    state = agent.transfer(handle)
    while state not in ("DONE", "ERR"):
        state = agent.check_xfer_state(handle)
    agent.release_xfer_handle(handle)
    return state


@pytest.mark.skipif(not os.path.isfile(MOCK_CUFILE),
                    reason="no fake libcufile (needs FERRY_BUILD_DIR with the GDS tests built)")
@pytest.mark.parametrize("plugin,params", [("GDS", {}), ("GDS", {"mode": "mt"}),
                                           ("GDS_MT", {"thread_count": "2"})])
def test_gds_example(tmp_path, monkeypatch, plugin, params):
    monkeypatch.setenv("FERRY_CUFILE_LIB", MOCK_CUFILE)
    name = f"gds-example-{plugin.lower()}"
    agent = nixl_agent(name, nixl_agent_config(backends=[]))
    assert plugin in agent.get_plugin_list()
    agent.create_backend(plugin, params)
    n, block = 16, 64 * 1024
    src = np.random.default_rng(5).integers(0, 256, n * block, dtype=np.uint8)
    dst = np.zeros_like(src)
    dram = agent.register_memory([(src.ctypes.data, src.nbytes, 0, "src"),
                                  (dst.ctypes.data, dst.nbytes, 0, "dst")], "DRAM")
    path = str(tmp_path / "gds.bin")
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        files = agent.register_memory([(0, n * block, fd, path)], "FILE")
        assert files is not None
        remote = agent.get_xfer_descs([(i * block, block, fd) for i in range(n)], "FILE")
        for op, buf in (("WRITE", src), ("READ", dst)):
            local = agent.get_xfer_descs(
                [(buf.ctypes.data + i * block, block, 0) for i in range(n)], "DRAM")
            assert _transfer(agent, op, local, remote, name) == "DONE", op
        assert np.array_equal(src, dst)
        assert np.array_equal(np.fromfile(path, dtype=np.uint8), src)
        agent.deregister_memory(files)
        agent.deregister_memory(dram)
    finally:
        os.close(fd)


@pytest.mark.parametrize("plugin", ["GDS", "GDS_MT"])
def test_no_libcufile(monkeypatch, plugin):
    monkeypatch.setenv("FERRY_CUFILE_LIB", "/nonexistent/libcufile.so.0")
    agent = nixl_agent(f"gds-none-{plugin.lower()}", nixl_agent_config(backends=[]))
    with pytest.raises(Exception) as err:
        agent.create_backend(plugin)
    assert "cuFile" in str(err.value) or "not supported" in str(err.value).lower()
