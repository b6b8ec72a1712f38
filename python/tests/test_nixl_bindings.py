# SPDX-License-Identifier: Apache-2.0
"""nixl._bindings on ferry: NIXL's low-level nixlAgent/nixlAgentConfig, its
constants' values, and what nixl._api adds on top of it (strided Nx5 lists,
loopback by one's own name without loading one's own metadata, NIXL's
telemetry switch). One process, UCX loopback."""
import numpy as np
import pytest

import ferry_kv as ferry
from conftest import needs_ucx
from ferry_kv import nixl_bindings as nb
from ferry_kv.nixl import nixl_agent, nixl_agent_config

pytestmark = needs_ucx


def test_constants_have_nixls_values():
    assert [int(m) for m in (nb.DRAM_SEG, nb.VRAM_SEG, nb.BLK_SEG, nb.OBJ_SEG, nb.FILE_SEG)] == \
        [0, 1, 2, 3, 4]
    assert str(nb.FILE_SEG) == "nixl_mem_t.FILE_SEG"
    assert (int(nb.NIXL_READ), int(nb.NIXL_WRITE)) == (0, 1)
    assert int(nb.NIXL_ERR_NO_TELEMETRY) == -12 and int(nb.NIXL_IN_PROG) == 1
    assert nb.NIXL_THREAD_SYNC_DEFAULT == nb.NIXL_THREAD_SYNC_NONE
    assert nb.NIXL_INIT_AGENT == "" and nb.HAVE_UCX_GPU_DEVICE_API is False
    # Each list keeps NIXL's value and stores ferry's underneath.
    for seg, fer in ((nb.FILE_SEG, ferry.MEM_FILE), (nb.BLK_SEG, ferry.MEM_BLOCK),
                     (nb.OBJ_SEG, ferry.MEM_OBJ), (nb.VRAM_SEG, ferry.MEM_VRAM)):
        dl = nb.nixlRegDList(seg)
        assert dl.getType() is seg and dl.mem_type == fer
    with pytest.raises(ValueError):
        nb.nixlXferDList(7)


def test_config_positional_order_and_defaults():
    c = nb.nixlAgentConfig()
    assert (c.useProgThread, c.useListenThread, c.listenPort, c.syncMode, c.pthrDelay,
            c.lthrDelay, c.captureTelemetry, c.etcdWatchTimeout) == \
        (False, False, 8888, nb.NIXL_THREAD_SYNC_DEFAULT, 0, 100000, False, 5000000)
    c = nb.nixlAgentConfig(True, True, 0, nb.NIXL_THREAD_SYNC_RW, 1, 5, 6, True)
    assert (c.useProgThread, c.useListenThread, c.listenPort, c.syncMode, c.pthrDelay,
            c.lthrDelay, c.captureTelemetry) == (True, True, 0, nb.NIXL_THREAD_SYNC_RW, 5, 6, True)


def test_low_level_agent_round_trip():
    with pytest.raises(ValueError):
        nb.nixlAgent("", nb.nixlAgentConfig())
    a = nb.nixlAgent("low", nb.nixlAgentConfig())
    assert "UCX" in a.getAvailPlugins()
    params, mems = a.getPluginParams("UCX")
    assert isinstance(params, dict) and mems[0] is nb.DRAM_SEG
    with pytest.raises(nb.nixlNotFoundError):
        a.getPluginParams("NOPE")
    ucx = a.createBackend("UCX", {})
    assert isinstance(ucx, int) and a.getBackendParams(ucx)[1] == [nb.DRAM_SEG]
    src = (np.arange(8192) % 251).astype(np.uint8)
    dst = np.zeros(8192, np.uint8)
    reg = nb.nixlRegDList(nb.DRAM_SEG)
    reg.addDesc((src.ctypes.data, src.nbytes, 0, "s"))
    reg.addDesc((dst.ctypes.data, dst.nbytes, 0, "d"))
    assert a.registerMem(reg, [ucx]) == nb.NIXL_SUCCESS
    assert reg[1] == (dst.ctypes.data, 8192, 0, b"d")
    local = nb.nixlXferDList(nb.DRAM_SEG, [(src.ctypes.data, 4096, 0)])
    remote = nb.nixlXferDList(nb.DRAM_SEG, [(dst.ctypes.data + 4096, 4096, 0)])
    # Loopback by its own name, its own metadata never loaded (as NIXL).
    h = a.createXferReq(nb.NIXL_WRITE, local, remote, "low", "n\0tif")
    assert isinstance(h, int) and h != 0
    st = a.postXferReq(h)
    while st != nb.NIXL_SUCCESS:
        st = a.getXferStatus(h)
    assert (dst[4096:] == src[:4096]).all()
    notifs = {}
    while not notifs:
        notifs = a.getNotifs(notifs)
    assert notifs == {"low": [b"n\0tif"]}
    assert a.queryXferBackend(h) == ucx
    assert a.releaseXferReq(h) == nb.NIXL_SUCCESS
    with pytest.raises(nb.nixlInvalidParamError):
        a.releaseXferReq(h)
    # The three prepXferDlist forms.
    lp = a.prepXferDlist(nb.nixlXferDList(nb.DRAM_SEG, [(src.ctypes.data, 1024, 0)]))
    rp = a.prepXferDlist("low", remote, [ucx])
    sp = a.prepXferDlist("low", nb.DRAM_SEG, np.array([[dst.ctypes.data, 1024, 0, 1024, 4]],
                                                     dtype=np.uint64))
    x = a.makeXferReq(nb.NIXL_READ, lp, [0], sp, [3])
    st = a.postXferReq(x, b"r")
    while st != nb.NIXL_SUCCESS:
        st = a.getXferStatus(x)
    assert (src[:1024] == dst[3072:4096]).all()
    a.releaseXferReq(x)
    for p in (lp, rp, sp):
        assert a.releasedDlistH(p) == nb.NIXL_SUCCESS
    # Statuses NIXL returns rather than raises.
    assert a.invalidateRemoteMD("nobody") == nb.NIXL_ERR_NOT_FOUND
    assert a.checkRemoteMD("nobody", nb.nixlXferDList(nb.DRAM_SEG)) == nb.NIXL_ERR_NOT_FOUND
    with pytest.raises(nb.nixlNotSupportedError, match="GPU device API"):
        a.prepMemView(local)
    assert a.deregisterMem(reg, [ucx]) == nb.NIXL_SUCCESS
    a.close()


def test_strided_lists_and_loopback_by_own_name():
    """Nx5 arrays (one run: never expanded; several: expanded) prepared for
    loopback by the agent's own name; a region registered after the first
    loopback prep is reachable by the next."""
    agent = nixl_agent("strider", nixl_agent_config(backends=["UCX"]))
    src = (np.arange(65536) % 253).astype(np.uint8)
    dst = np.zeros(65536, np.uint8)
    agent.register_memory([(src.ctypes.data, src.nbytes, 0, "")], "DRAM")
    agent.register_memory([(dst.ctypes.data, dst.nbytes, 0, "")], "DRAM")
    one = np.array([[dst.ctypes.data, 4096, 0, 8192, 8]], dtype=np.uint64)
    two = np.array([[src.ctypes.data, 4096, 0, 4096, 4],
                    [src.ctypes.data + 32768, 4096, 0, 4096, 4]], dtype=np.uint64)
    remote = agent.prep_xfer_dlist(agent.name, one, "DRAM")
    local = agent.prep_xfer_dlist("NIXL_INIT_AGENT", two, "DRAM")
    with pytest.raises(ValueError):
        agent.prep_xfer_dlist("", two)  # strided needs a memory type
    h = agent.make_prepped_xfer("WRITE", local, list(range(8)), remote, list(range(8)))
    state = agent.transfer(h)
    while state == "PROC":
        state = agent.check_xfer_state(h)
    assert state == "DONE"
    for i in range(8):
        s = i * 4096 if i < 4 else 32768 + (i - 4) * 4096
        assert (dst[i * 8192:i * 8192 + 4096] == src[s:s + 4096]).all()
    later = np.full(4096, 7, np.uint8)
    agent.register_memory([(later.ctypes.data, 4096, 0, "")], "DRAM")
    h2 = agent.initialize_xfer("READ", agent.get_xfer_descs([(dst.ctypes.data, 4096, 0)], "DRAM"),
                               agent.get_xfer_descs([(later.ctypes.data, 4096, 0)], "DRAM"),
                               agent.name)
    state = agent.transfer(h2)
    while state == "PROC":
        state = agent.check_xfer_state(h2)
    assert (dst[:4096] == 7).all()
    agent.close()


@pytest.mark.parametrize("env,capture,expect", [
    ("no", True, False), ("y", False, True), (None, True, True), (None, False, False)])
def test_nixl_telemetry_switch(monkeypatch, env, capture, expect):
    if env is None:
        monkeypatch.delenv("NIXL_TELEMETRY_ENABLE", raising=False)
    else:
        monkeypatch.setenv("NIXL_TELEMETRY_ENABLE", env)
    agent = nixl_agent("telem", nixl_agent_config(capture_telemetry=capture))
    buf = np.zeros(8192, np.uint8)
    agent.register_memory([(buf.ctypes.data, 8192, 0, "")], "DRAM")
    local = agent.get_xfer_descs([(buf.ctypes.data, 64, 0), (buf.ctypes.data + 64, 64, 0)], "DRAM")
    remote = agent.get_xfer_descs([(buf.ctypes.data + 4096, 64, 0), (buf.ctypes.data + 4160, 64, 0)],
                                  "DRAM")
    h = agent.initialize_xfer("WRITE", local, remote, agent.name)
    state = agent.transfer(h)
    while state == "PROC":
        state = agent.check_xfer_state(h)
    if expect:
        t = agent.get_xfer_telemetry(h)
        assert (t.descCount, t.totalBytes) == (2, 128)  # as given, though merged
        assert t.postDuration > 0 and t.xferDuration >= t.postDuration
    else:
        with pytest.raises(nb.nixlNoTelemetryError):
            agent.get_xfer_telemetry(h)
    agent.close()


def test_handles_release_once_and_on_collection():
    agent = nixl_agent("handles", nixl_agent_config(backends=["UCX"]))
    buf = np.zeros(4096, np.uint8)
    agent.register_memory([(buf.ctypes.data, 4096, 0, "")], "DRAM")
    p = agent.prep_xfer_dlist("", [(buf.ctypes.data, 4096, 0)], "DRAM")
    assert repr(p).startswith("nixl_prepped_dlist_handle(0x") and int(p) == p._handle
    live = len(agent.agent._prepped)
    del p  # collected: released, as NIXL's handles are
    assert len(agent.agent._prepped) == live - 1
    p = agent.prep_xfer_dlist("", [(buf.ctypes.data, 4096, 0)], "DRAM")
    agent.release_dlist_handle(p)
    agent.release_dlist_handle(p)  # a second release is a no-op
    with pytest.raises(nb.nixlNotSupportedError):
        agent.prep_mem_view(agent.get_xfer_descs([(buf.ctypes.data, 4096, 0)], "DRAM"))
    agent.close()
