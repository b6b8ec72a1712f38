# SPDX-License-Identifier: Apache-2.0
"""Two processes over UCX: READ and WRITE with notifications (numpy arrays and
torch tensors), prepared lists with index arrays, the side channel (fetch,
send, invalidate), partial metadata and remote removal; the READ and WRITE
also over SHM (the plugin loaded into Python's process)."""
import numpy as np
import pytest

import ferry_kv as ferry
import peers
from conftest import _has_plugin, join_all, needs_ucx

pytestmark = needs_ucx


@pytest.mark.parametrize("backend", [
    "UCX", pytest.param("SHM", marks=pytest.mark.skipif(not _has_plugin("SHM"),
                                                        reason="SHM plugin not built"))])
@pytest.mark.parametrize("use_torch", [False, True], ids=["numpy", "torch"])
def test_read_write_with_notifications(spawn, use_torch, backend):
    if use_torch:
        pytest.importorskip("torch")
    t_conn, t_child = spawn.Pipe()
    i_conn, i_child = spawn.Pipe()
    target = spawn.Process(target=peers.native_target, args=(t_child, use_torch, backend),
                           name="target")
    target.start()
    port, addr, scratch, n = peers.expect(t_conn, "target ready")
    initiator = spawn.Process(target=peers.native_initiator,
                              args=(i_child, port, addr, scratch, n, use_torch, backend),
                              name="initiator")
    initiator.start()
    assert peers.expect(i_conn, "initiator") == "done"
    assert peers.expect(t_conn, "target notifications")[:2] == [b"read-done", b"write-done"]
    join_all([target, initiator])


def test_partial_metadata_fetch_and_removal(spawn):
    conn, child = spawn.Pipe()
    owner = spawn.Process(target=peers.partial_owner, args=(child,), name="owner")
    owner.start()
    with_conn_a, only_b, addr_a, addr_b, port = peers.expect(conn, "owner ready")
    a_local, b_local = np.zeros(4096, np.uint8), np.zeros(4096, np.uint8)
    try:
        with ferry.Agent("reader", progress_thread=True) as agent:
            agent.create_backend("UCX")
            agent.register([(a_local.ctypes.data, 4096, 0), (b_local.ctypes.data, 4096, 0)],
                           mem_type="DRAM")
            local = agent.prep([(a_local.ctypes.data, 4096, 0), (b_local.ctypes.data, 4096, 0)],
                               mem_type="DRAM")
            remote_a = [(addr_a, 4096, 0)]
            remote_b = [(addr_b, 4096, 0)]
            # Partial blob with connection info and region a only.
            assert agent.load_metadata(with_conn_a) == "owner"
            assert agent.check_remote("owner", ferry.DList("DRAM", remote_a))
            assert not agent.check_remote("owner", ferry.DList("DRAM", remote_b))
            with pytest.raises(ferry.NotFoundError):
                agent.prep(remote_b, "owner", mem_type="DRAM")
            # A second partial blob (no connection info) adds region b.
            assert agent.load_metadata(only_b) == "owner"
            remote = agent.prep(remote_a + remote_b, "owner", mem_type="DRAM")
            with agent.make_xfer("READ", local, [0, 1], remote, [0, 1]) as x:
                x.post()
                assert x.wait(peers.DEADLINE)
            assert (a_local == peers.pattern(4096, 1)).all()
            assert (b_local == peers.pattern(4096, 2)).all()
            # Removing the remote makes its handles stale and its name unknown.
            gen = agent.generation("owner")
            agent.invalidate_remote("owner")
            assert not agent.check_remote("owner")
            with pytest.raises(ferry.StaleError):
                agent.make_xfer("READ", local, [0], remote, [0])
            with pytest.raises(ferry.NotFoundError):
                agent.prep(remote_a, "owner", mem_type="DRAM")
            with pytest.raises(ferry.NotFoundError):
                agent.invalidate_remote("owner")
            # The side channel brings the full metadata back (a new generation).
            a_local[:] = 0
            agent.fetch_metadata("owner", "127.0.0.1", port)
            peers.wait_until(lambda: agent.fetch_status("owner") != ferry.IN_PROGRESS, "fetch")
            assert agent.fetch_status("owner") == ferry.OK
            assert agent.check_remote("owner", ferry.DList("DRAM", remote_a + remote_b))
            assert agent.generation("owner") > gen
            with agent.prep(remote_a, "owner", mem_type="DRAM") as again:
                x = agent.make_xfer("READ", local, [0], again, [0])
                x.post()
                assert x.wait(peers.DEADLINE)
                x.release()
            assert (a_local == peers.pattern(4096, 1)).all()
    finally:
        conn.send("done")
    assert peers.expect(conn, "owner closed") == "closed"
    join_all([owner])


def test_fetch_from_nobody_fails():
    with ferry.Agent("lonely", progress_thread=True, sc_timeout_ms=300) as agent:
        agent.create_backend("UCX")
        with pytest.raises((ferry.IoError, ferry.TimedOutError)):
            agent.fetch_metadata("ghost", "127.0.0.1", 1, wait_ms=2000)
