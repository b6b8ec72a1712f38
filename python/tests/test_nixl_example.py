# SPDX-License-Identifier: Apache-2.0
"""NIXL's published two-peer example, unchanged in its calls: target and
initiator with the listener thread, metadata over the side channel
(fetch_remote_metadata / send_local_metadata / check_remote_metadata),
descriptors serialised into a notification, initialize_xfer READ with a
notification, check_remote_xfer_done, invalidate_local_metadata."""
import pytest

import peers
from conftest import join_all, needs_ucx

pytestmark = needs_ucx


@pytest.mark.parametrize("use_tensor", [True, False], ids=["tensor", "tensor-list"])
def test_two_peers(spawn, use_tensor):
    pytest.importorskip("torch")
    t_conn, t_child = spawn.Pipe()
    i_conn, i_child = spawn.Pipe()
    target = spawn.Process(target=peers.example_peer, args=(t_child, "target", 0, use_tensor),
                           name="target")
    target.start()
    port = peers.expect(t_conn, "target listening")
    assert port > 0
    initiator = spawn.Process(target=peers.example_peer,
                              args=(i_child, "initiator", port, use_tensor), name="initiator")
    initiator.start()
    assert peers.expect(i_conn, "initiator") == "initiator done"
    assert peers.expect(t_conn, "target") == "target done"
    join_all([target, initiator])
