# SPDX-License-Identifier: Apache-2.0
"""Agent.mem_alloc: backend-allocated memory (SHM's memfd-backed host
memory), seen from Python through the buffer protocol without a copy, its
lifetime rules, and a READ and WRITE between two processes that map each
other's allocations."""
import numpy as np
import pytest

import ferry_kv as ferry
import peers
from conftest import _has_plugin, join_all

pytestmark = pytest.mark.skipif(not _has_plugin("SHM"), reason="SHM plugin not built")


@pytest.fixture
def shm_agent():
    with ferry.Agent("alloc") as agent:
        yield agent, agent.create_backend("SHM")


def test_buffer_views_and_lifetime(shm_agent):
    agent, shm = shm_agent
    mem = agent.mem_alloc(1 << 16, backend=shm)
    assert mem.mem_type == "DRAM" and mem.nbytes == 1 << 16 and mem.addr
    view = np.frombuffer(mem, np.uint8)
    view[:] = 7
    assert bytes(memoryview(mem)[:4]) == b"\x07" * 4
    with pytest.raises(ferry.NotAllowedError, match="views"):
        mem.free()
    with pytest.raises(ferry.NotAllowedError, match="views"):
        agent.close()
    del view
    agent.register([(mem.addr, mem.nbytes, 0)], mem_type="DRAM")
    with pytest.raises(ferry.NotAllowedError, match="deregister"):
        mem.free()
    agent.deregister([(mem.addr, mem.nbytes, 0)], mem_type="DRAM")
    mem.free()
    assert mem.addr == 0 and "freed" in repr(mem)
    with pytest.raises(BufferError, match="freed"):
        memoryview(mem)


def test_context_manager_and_closed_agent():
    agent = ferry.Agent("alloc2")
    shm = agent.create_backend("SHM")
    with agent.mem_alloc(4096, backend=shm) as mem:
        assert mem.addr
    assert mem.addr == 0
    kept = agent.mem_alloc(4096)  # any backend that allocates DRAM
    agent.close()  # frees what is left
    assert kept.addr == 0
    with pytest.raises(BufferError):
        memoryview(kept)


def test_bad_arguments(shm_agent):
    agent, _ = shm_agent
    with pytest.raises(ferry.InvalidParamError):
        agent.mem_alloc(0)
    with pytest.raises(TypeError, match="Backend"):
        agent.mem_alloc(4096, backend="SHM")
    with ferry.Agent("other") as other:
        with pytest.raises(TypeError, match="this agent"):
            agent.mem_alloc(4096, backend=other.create_backend("SHM"))
    with pytest.raises(ferry.NotSupportedError):
        agent.mem_alloc(4096, mem_type="OBJ")


def test_two_processes_map_allocations(spawn):
    n = 1 << 20
    conn, child = spawn.Pipe()
    target = spawn.Process(target=peers.alloc_target, args=(child, n), name="target")
    target.start()
    port, remote = peers.expect(conn, "target ready")
    with ferry.Agent("alloc-initiator", progress_thread=True) as agent:
        shm = agent.create_backend("SHM")
        mem = agent.mem_alloc(2 * n, backend=shm)
        view = np.frombuffer(mem, np.uint8)
        view[n:] = peers.pattern(n, 4)
        agent.register([(mem.addr, 2 * n, 0)], mem_type="DRAM")
        agent.fetch_metadata("alloc-target", "127.0.0.1", port, wait_ms=int(peers.DEADLINE * 1000))
        agent.send_metadata("127.0.0.1", port)
        x = agent.create_xfer("READ", [(mem.addr, n, 0)], [(remote, n, 0)], "alloc-target",
                              mem_type="DRAM")
        x.post()
        assert x.wait(peers.DEADLINE) and x.backend == "SHM"
        x.release()
        assert (view[:n] == peers.pattern(n, 3)).all()
        x = agent.create_xfer("WRITE", [(mem.addr + n, n, 0)], [(remote + n, n, 0)],
                              "alloc-target", notif=b"written", mem_type="DRAM")
        x.post()
        assert x.wait(peers.DEADLINE)
        x.release()
        assert peers.expect(conn, "target") == "done"
        del view
        agent.deregister([(mem.addr, 2 * n, 0)], mem_type="DRAM")
        mem.free()
    join_all([target])
