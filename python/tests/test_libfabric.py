# SPDX-License-Identifier: Apache-2.0
"""The LIBFABRIC backend between two processes through NIXL's nixl_agent:
a WRITE and a READ of 4 MiB of host memory, each with a notification,
checked byte for byte on both sides; on tcp over loopback with one rail,
and with two rails (lo listed twice) striping each transfer."""
import peers
import pytest
from conftest import join_all

import ferry_kv as ferry


def _has_libfabric() -> bool:
    with ferry.Agent("lf-probe") as a:
        return "LIBFABRIC" in a.plugins()


pytestmark = pytest.mark.skipif(not _has_libfabric(),
                                reason="LIBFABRIC plugin not built (libfabric-dev missing)")

TCP = {"provider": "tcp;ofi_rxm"}


@pytest.mark.parametrize("params", [
    dict(TCP, domain="lo"),
    dict(TCP, rails="lo,lo", striping_threshold="64K"),
], ids=["tcp", "tcp-2-rails"])
def test_write_read_notified(spawn, params):
    pytest.importorskip("numpy")
    t_conn, t_child = spawn.Pipe()
    i_conn, i_child = spawn.Pipe()
    target = spawn.Process(target=peers.lf_target, args=(t_child, params), name="lf-target")
    target.start()
    target_md, target_base = peers.expect(t_conn, "target's metadata")
    initiator = spawn.Process(target=peers.lf_initiator,
                              args=(i_child, params, target_md, target_base), name="lf-initiator")
    initiator.start()
    wrote, read, got = peers.expect(i_conn, "initiator")
    assert (wrote, read) == ("DONE", "DONE")
    assert got, "the READ brought other bytes than the target's"
    written, untouched, seen = peers.expect(t_conn, "target")
    assert written, "the WRITE's notification came before its data, or the data differs"
    assert untouched, "the READ changed the target's memory"
    assert seen == [("lf-initiator", b"written"), ("lf-initiator", b"read")], seen
    join_all([target, initiator])
