# SPDX-License-Identifier: Apache-2.0
"""The POSIX storage backend through the NIXL-compatible layers.

NIXL's own call sequences: test_query_mem of NIXL's test_nixl_bindings.py
(getPluginParams/createBackend("POSIX"), FILE_SEG (0, 0, 0, path) entries,
queryMem), and the storage example (DRAM and FILE registered, fd as dev_id
and offset as addr, WRITE then READ to the agent's own name).
"""
import os

import numpy as np
import pytest

import ferry_kv as ferry
import ferry_kv.nixl_bindings as nixl
from ferry_kv.nixl import nixl_agent, nixl_agent_config


def _has_posix() -> bool:
    with ferry.Agent("probe-posix") as a:
        return "POSIX" in a.plugins()


pytestmark = pytest.mark.skipif(not _has_posix(), reason="POSIX plugin not built "
                                "(liburing-dev and libaio-dev missing)")


def test_query_mem_bindings(tmp_path):
    """NIXL's test_query_mem, against the POSIX backend."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_bytes(b"Test content for queryMem file 1")
    two.write_bytes(b"Test content for queryMem file 2!")
    config = nixl.nixlAgentConfig()
    config.useProgThread = False
    config.useListenThread = False
    agent = nixl.nixlAgent("test_agent", config)
    params, mems = agent.getPluginParams("POSIX")
    assert nixl.FILE_SEG in mems and nixl.DRAM_SEG in mems
    backend = agent.createBackend("POSIX", params)
    descs = nixl.nixlRegDList(nixl.FILE_SEG)
    assert len(agent.queryMem(descs, backend)) == 0
    descs.addDesc((0, 0, 0, str(one)))
    descs.addDesc((0, 0, 0, str(tmp_path / "nixl_test_nonexistent_file_12345.txt")))
    descs.addDesc((0, 0, 0, str(two)))
    resp = agent.queryMem(descs, backend)
    assert len(resp) == 3
    assert isinstance(resp[0], dict) and "size" in resp[0] and "mode" in resp[0]
    assert resp[1] is None
    assert isinstance(resp[2], dict)
    assert int(resp[0]["size"]) == 32 and int(resp[2]["size"]) == 33


@pytest.mark.parametrize("engine,whole_file", [("uring", False), ("aio", False), ("uring", True)])
def test_storage_example(tmp_path, engine, whole_file):
    """NIXL's storage pattern: DRAM buffers and a file (fd as dev_id, offset
    as addr), WRITE then READ to our own name, checked byte for byte. The
    file registered with its length, or whole as (0, 0, fd, path)."""
    agent = nixl_agent("posix-store", nixl_agent_config(backends=[]))
    assert "POSIX" in agent.get_plugin_list()
    agent.create_backend("POSIX", {"engine": engine})
    n, block = 16, 4096
    src = np.random.default_rng(7).integers(0, 256, n * block, dtype=np.uint8)
    dst = np.zeros_like(src)
    dram = agent.register_memory([(src.ctypes.data, src.nbytes, 0, "a"),
                                  (dst.ctypes.data, dst.nbytes, 0, "b")], "DRAM")
    assert dram is not None
    path = str(tmp_path / "kv.bin")
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        reg_len = 0 if whole_file else 2 * n * block
        files = agent.register_memory([(0, reg_len, fd, path)], "FILE")
        assert files is not None
        # blocks in reverse order in the file, every other slot
        file_descs = agent.get_xfer_descs(
            [(2 * (n - 1 - i) * block, block, fd) for i in range(n)], "FILE")
        for op, buf in (("WRITE", src), ("READ", dst)):
            descs = agent.get_xfer_descs(
                [(buf.ctypes.data + i * block, block, 0) for i in range(n)], "DRAM")
            handle = agent.initialize_xfer(op, descs, file_descs, "posix-store")
            state = agent.transfer(handle)
            assert state != "ERR"
            while state != "DONE":
                state = agent.check_xfer_state(handle)
                assert state != "ERR", op
            agent.release_xfer_handle(handle)
        assert np.array_equal(src, dst)
        on_disk = np.fromfile(path, dtype=np.uint8)
        assert np.array_equal(on_disk[2 * (n - 1) * block:2 * (n - 1) * block + block],
                              src[:block])
        res = agent.query_memory([(0, 0, 0, path)], "POSIX", mem_type="FILE")
        assert res[0] is not None and int(res[0]["size"]) == os.path.getsize(path)
        agent.deregister_memory(files)
        agent.deregister_memory(dram)
    finally:
        os.close(fd)


def test_closed_fd_reports_ebadf(tmp_path):
    """A registered fd closed before the transfer: the request ends in ERR,
    the detail names EBADF."""
    agent = nixl_agent("posix-badfd", nixl_agent_config(backends=[]))
    agent.create_backend("POSIX")
    buf = np.zeros(4096, dtype=np.uint8)
    agent.register_memory([(buf.ctypes.data, buf.nbytes, 0, "")], "DRAM")
    path = str(tmp_path / "gone.bin")
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    agent.register_memory([(0, 4096, fd, path)], "FILE")
    os.close(fd)
    handle = agent.initialize_xfer("READ", agent.get_xfer_descs([(buf.ctypes.data, 4096, 0)], "DRAM"),
                                   agent.get_xfer_descs([(0, 4096, fd)], "FILE"), "posix-badfd")
    # NIXL's bindings raise when the post itself fails (the I/O completed
    # within it); otherwise a state check reports ERR.
    try:
        state = agent.transfer(handle)
        while state not in ("DONE", "ERR"):
            state = agent.check_xfer_state(handle)
    except ferry.IoError as e:
        assert "EBADF" in str(e)
        state = "ERR"
    assert state == "ERR"
    agent.release_xfer_handle(handle)
