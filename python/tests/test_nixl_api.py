# SPDX-License-Identifier: Apache-2.0
"""ferry.nixl: every method of NIXL's agent API, in one process (UCX
loopback), with NIXL's arguments, defaults, return values and errors."""
import logging
import os

import numpy as np
import pytest

import ferry_kv as ferry
from conftest import needs_ucx
from ferry_kv import nixl_bindings as nb
from ferry_kv import nixl_logging, nixl_utils
from ferry_kv.nixl import (
    DEFAULT_COMM_PORT,
    nixl_agent,
    nixl_agent_config,
    nixl_prepped_dlist_handle,
    nixl_thread_sync_t,
    nixl_xfer_handle,
)

pytestmark = needs_ucx


@pytest.fixture
def agent():
    a = nixl_agent("me", nixl_agent_config(capture_telemetry=True))
    yield a
    a.close()


@pytest.fixture
def loop(agent):
    """Registered src/dst arrays, prepared per 1 KiB block, own metadata loaded."""
    src = (np.arange(16384) % 241).astype(np.uint8)
    dst = np.zeros(16384, np.uint8)
    reg = agent.register_memory([(src.ctypes.data, src.nbytes, 0, ""),
                                 (dst.ctypes.data, dst.nbytes, 0, "")], "DRAM")
    assert agent.add_remote_agent(agent.get_agent_metadata()) == b"me"
    blocks = lambda a: np.array([[a.ctypes.data + i * 1024, 1024, 0] for i in range(16)],  # noqa
                                dtype=np.uint64)
    local = agent.prep_xfer_dlist("NIXL_INIT_AGENT", blocks(src), "DRAM")
    remote = agent.prep_xfer_dlist("me", blocks(dst), "DRAM")
    return agent, src, dst, local, remote, reg


def wait_done(agent, handle, state):
    while state == "PROC":
        state = agent.check_xfer_state(handle)
    assert state == "DONE"


@pytest.fixture
def nixl_log():
    """Captures the "nixl" logger tree, which (as NIXL's) does not propagate."""
    import contextlib
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("nixl")

    @contextlib.contextmanager
    def capture(level):
        old = log.level
        log.setLevel(level)
        log.addHandler(handler)
        try:
            yield
        finally:
            log.removeHandler(handler)
            log.setLevel(old)

    return _Capture(capture, stream)


class _Capture:
    def __init__(self, fn, stream):
        self._fn, self._stream = fn, stream

    def __call__(self, level):
        return self._fn(level)

    @property
    def text(self):
        return self._stream.getvalue()


def test_config_defaults():
    c = nixl_agent_config()
    assert (c.enable_pthread, c.enable_listen, c.port, c.capture_telemetry, c.num_threads,
            c.backends, c.sync_mode) == (True, False, 8888, False, 0, ["UCX"], None)
    assert DEFAULT_COMM_PORT == 8888
    c = nixl_agent_config(False, True, 0, True, 4, ["UCX", "LOCAL"],
                          nixl_thread_sync_t.NIXL_THREAD_SYNC_RW)
    assert (c.enable_pthread, c.enable_listen, c.port, c.capture_telemetry, c.num_threads) == \
        (False, True, 0, True, 4)
    with pytest.raises(TypeError):
        nixl_agent_config(sync_mode=2)


def test_agent_plugins_and_backends(agent):
    assert agent.name == "me" and isinstance(agent.agent, nb.nixlAgent)
    assert agent.get_plugin_list() == agent.plugin_list and "UCX" in agent.plugin_list
    assert list(agent.backends) == ["UCX"]
    assert agent.get_plugin_mem_types("UCX") == [nb.DRAM_SEG, nb.VRAM_SEG]
    assert agent.get_plugin_mem_types("NOPE") == []
    params = agent.get_plugin_params("UCX")
    assert "num_workers" in params and all(isinstance(v, str) for v in params.values())
    assert agent.get_plugin_params("NOPE") == {}
    assert agent.get_backend_params("UCX")["num_workers"] == "1"
    assert agent.get_backend_params("LOCAL") == {}
    assert nb.DRAM_SEG in agent.get_backend_mem_types("UCX")
    assert agent.get_backend_mem_types("LOCAL") == []
    agent.create_backend("LOCAL", {"workers": "1"})
    assert agent.get_backend_params("LOCAL")["workers"] == "1"
    with pytest.raises(nb.nixlNotAllowedError):
        agent.create_backend("LOCAL")
    with pytest.raises(nb.nixlNotFoundError):
        agent.create_backend("NOPE")


def test_agent_creation_variants(nixl_log):
    with nixl_agent("all", instantiate_all=True) as a:
        # every plugin this host can run (CUDA needs a GPU)
        assert set(a.backends) <= set(a.plugin_list) and "LOCAL" in a.backends
    with nixl_log(logging.WARNING):
        with nixl_agent(b"bytes-name", nixl_agent_config(backends=["NOPE", "LOCAL"])) as a:
            assert a.name == b"bytes-name" and list(a.backends) == ["LOCAL"]
        with nixl_agent("ignored", nixl_agent_config(backends=[]), instantiate_all=True) as a:
            assert a.backends == {}
    assert "missing plugin" in nixl_log.text and "instantiate_all" in nixl_log.text
    for mode in nixl_thread_sync_t:
        for threads in (False, True):
            conf = nixl_agent_config(threads, threads, 0, sync_mode=mode, backends=[])
            with nixl_agent(f"sync-{mode.name}-{threads}", conf) as a:
                assert a.get_listen_port() > 0 if threads else a.get_listen_port() == 0
    with nixl_agent("threads", nixl_agent_config(num_threads=2)) as a:
        assert "UCX" in a.backends  # UCX has no num_threads param: not passed


def test_descriptor_inputs(agent, nixl_log):
    torch = pytest.importorskip("torch")
    t = torch.zeros(64)
    rows = [t[i * 8:(i + 1) * 8] for i in range(8)]
    arr = np.array([[4096, 64, 0], [8192, 64, 0]], dtype=np.uint64)
    x = agent.get_xfer_descs([(4096, 64, 0)], "DRAM")
    assert type(x) is nb.nixlXferDList and agent.get_xfer_descs(x) is x
    assert agent.get_xfer_descs(arr, "cpu")[1] == (8192, 64, 0)
    assert agent.get_xfer_descs(t)[0] == (t.data_ptr(), 256, 0)
    assert len(agent.get_xfer_descs(rows)) == 8
    assert agent.get_xfer_descs(rows).getType() == nb.DRAM_SEG
    r = agent.get_reg_descs([(4096, 64, 0, "meta")], "DRAM")
    assert type(r) is nb.nixlRegDList and r[0] == (4096, 64, 0, b"meta")
    assert agent.get_reg_descs(r) is r
    assert agent.get_reg_descs([(4096, 64, 0)], "DRAM") is None  # 4-tuples, as NIXL
    assert agent.get_reg_descs(arr, "VRAM").getType() == nb.VRAM_SEG
    assert agent.get_reg_descs(t).descCount() == 1
    with nixl_log(logging.ERROR):
        # Invalid inputs: None, as NIXL.
        assert agent.get_xfer_descs([(1, 2, 3)]) is None  # no mem type
        assert agent.get_xfer_descs([(1, 2, 3, "m")], "DRAM") is None  # 4-tuples
        assert agent.get_xfer_descs([(1, 2)], "DRAM") is None
        assert agent.get_xfer_descs(np.zeros((2, 2), np.uint64), "DRAM") is None
        assert agent.get_xfer_descs(arr) is None
        assert agent.get_xfer_descs(r) is None  # a registration list
        assert agent.get_xfer_descs(t.reshape(8, 8).t()) is None  # not contiguous
        assert agent.get_xfer_descs(object()) is None
        assert agent.get_reg_descs(x) is None
        assert agent.get_reg_descs([(1, 2)], "DRAM") is None
        assert agent.get_reg_descs(3.5) is None
    # Unknown memory types raise KeyError, as NIXL.
    with pytest.raises(KeyError):
        agent.get_xfer_descs([(1, 2, 3)], "HBM")
    with pytest.raises(KeyError):
        agent.get_reg_descs([(1, 2, 3, "")], "dram")
    for name in ("DRAM", "VRAM", "FILE", "BLOCK", "OBJ", "cpu", "cuda"):
        assert agent.get_xfer_descs([(4096, 1, 0)], name).getType() == agent.nixl_mems[name]
    blob = agent.get_serialized_descs(x)
    assert isinstance(blob, bytes) and agent.deserialize_descs(blob) == x


def test_register_errors(agent):
    with pytest.raises(nb.nixlInvalidParamError):
        agent.register_memory([(1, 2, 3)])  # no memory type: invalid input
    with pytest.raises(KeyError):
        agent.register_memory([(4096, 64, 0, "")], "DRAM", backends=["NOPE"])
    buf = np.zeros(4096, np.uint8)
    reg = agent.register_memory([(buf.ctypes.data, 4096, 0, "")], "DRAM", backends=["UCX"])
    with pytest.raises(nb.nixlNotAllowedError):
        agent.register_memory([(buf.ctypes.data + 8, 64, 0, "")], "DRAM")
    agent.deregister_memory(reg, backends=["UCX"])
    with pytest.raises(nb.nixlNotFoundError):
        agent.deregister_memory(reg)
    with pytest.raises(nb.nixlInvalidParamError):
        agent.deregister_memory(agent.get_xfer_descs([(4096, 1, 0)], "DRAM"))


def test_prep_arrays_regular_and_not(loop):
    """Nx3 arrays of every block slot (equal gaps: prepared as one strided
    run), with gaps, shuffled, and reaching past the registration."""
    agent, src, dst, local, remote, reg = loop

    def rows(a, order, size=512, step=1024):
        return np.array([[a.ctypes.data + i * step, size, 0] for i in order], dtype=np.uint64)

    for order in (range(16), np.random.default_rng(3).permutation(16)):
        lp = agent.prep_xfer_dlist("NIXL_INIT_AGENT", rows(src, order), "DRAM")
        rp = agent.prep_xfer_dlist("me", rows(dst, order), "DRAM")
        dst[:] = 0
        idx = np.arange(16, dtype=np.int32)
        h = agent.make_prepped_xfer("WRITE", lp, idx, rp, idx[::-1].copy())
        wait_done(agent, h, agent.transfer(h))
        got, want = dst.reshape(16, 1024), src.reshape(16, 1024)
        for i in range(16):
            a, b = list(order)[i], list(order)[15 - i]
            assert (got[b, :512] == want[a, :512]).all() and not got[b, 512:].any()
        agent.release_xfer_handle(h)
        agent.release_dlist_handle(lp)
        agent.release_dlist_handle(rp)
    top = max(src.ctypes.data, dst.ctypes.data)  # its third block lies past both buffers
    past = np.array([[top + i * 8192, 1024, 0] for i in range(3)], dtype=np.uint64)
    with pytest.raises(nb.nixlNotFoundError):
        agent.prep_xfer_dlist("me", past, "DRAM")


def test_prepped_transfer(loop):
    agent, src, dst, local, remote, reg = loop
    assert isinstance(local, nixl_prepped_dlist_handle)
    idx = np.arange(16, dtype=np.int32)
    h = agent.make_prepped_xfer("WRITE", local, idx, remote, idx[::-1].copy(), b"req-1")
    assert isinstance(h, nixl_xfer_handle)
    wait_done(agent, h, agent.transfer(h))
    assert (dst.reshape(16, 1024) == src.reshape(16, 1024)[::-1]).all()
    assert agent.query_xfer_backend(h) == "UCX"
    t = agent.get_xfer_telemetry(h)
    assert isinstance(t, nb.nixlXferTelemetry)
    assert (t.totalBytes, t.descCount, t.backendName) == (16384, 16, "UCX")
    assert t.startTime > 0 and t.postDuration >= 0 and t.xferDuration >= 0
    assert "totalBytes=16384" in repr(t)
    duration, margin, method = agent.estimate_xfer_cost(h) if _has_estimate(h) else (0, 0, "x")
    assert isinstance(duration, int) and isinstance(margin, int) and isinstance(method, str)
    # Repost with a new notification; then merged, list indices, backends named.
    wait_done(agent, h, agent.transfer(h, b"req-2"))
    h2 = agent.make_prepped_xfer("READ", local, list(range(16)), remote, list(range(16)),
                                 notif_msg=b"req-3", backends=["UCX"], skip_desc_merge=False)
    wait_done(agent, h2, agent.transfer(h2))
    assert (src == dst).all() and agent.get_xfer_telemetry(h2).descCount == 16  # as given
    notifs = {}
    while len(notifs.get("me", [])) < 3:
        for k, v in agent.get_new_notifs().items():
            notifs.setdefault(k, []).extend(v)
    assert sorted(notifs["me"]) == [b"req-1", b"req-2", b"req-3"]
    agent.release_xfer_handle(h)
    h2.release()
    agent.release_xfer_handle(h)  # idempotent
    with pytest.raises(nb.nixlInvalidParamError):
        agent.transfer(h)
    with pytest.raises(KeyError):
        agent.make_prepped_xfer("COPY", local, [0], remote, [0])
    with pytest.raises(KeyError):
        agent.make_prepped_xfer("READ", local, [0], remote, [0], backends=["NOPE"])
    with pytest.raises(nb.nixlInvalidParamError):
        agent.make_prepped_xfer("READ", local, [99], remote, [0])
    agent.release_dlist_handle(local)
    agent.release_dlist_handle(local)
    with pytest.raises(nb.nixlInvalidParamError):
        agent.make_prepped_xfer("READ", local, [0], remote, [0])
    with pytest.raises(nb.nixlNotFoundError):
        agent.prep_xfer_dlist("stranger", [(src.ctypes.data, 64, 0)], "DRAM")
    with pytest.raises(nb.nixlInvalidParamError):
        agent.prep_xfer_dlist("", [(1, 2, 3)])


def _has_estimate(h):
    try:
        h._agent.estimateXferCost(h._handle)
        return True
    except ferry.NotSupportedError:
        return False


def test_estimate_on_local_backend():
    with nixl_agent("est", nixl_agent_config(backends=["LOCAL"])) as a:
        buf = np.zeros(8192, np.uint8)
        a.register_memory([(buf.ctypes.data, 8192, 0, "")], "DRAM")
        a.add_remote_agent(a.get_agent_metadata())
        h = a.initialize_xfer("WRITE", a.get_xfer_descs([(buf.ctypes.data, 4096, 0)], "DRAM"),
                              a.get_xfer_descs([(buf.ctypes.data + 4096, 4096, 0)], "DRAM"),
                              "est")
        duration, margin, method = a.estimate_xfer_cost(h)
        assert duration >= 0 and margin >= 0 and method == "ANALYTICAL_BACKEND"


def test_initialize_xfer_and_telemetry_env(loop, monkeypatch):
    agent, src, dst, *_ = loop
    h = agent.initialize_xfer("WRITE", agent.get_xfer_descs([(src.ctypes.data, 16384, 0)], "DRAM"),
                              agent.get_xfer_descs([(dst.ctypes.data, 16384, 0)], "DRAM"), b"me",
                              "UUID")
    wait_done(agent, h, agent.transfer(h))
    assert (src == dst).all()
    assert agent.check_remote_xfer_done("me", b"UU")
    with pytest.raises(KeyError):
        agent.initialize_xfer("SEND", [], [], "me")
    with pytest.raises(nb.nixlInvalidParamError):
        agent.initialize_xfer("READ", [(1, 2, 3)], [(1, 2, 3)], "me")
    with pytest.raises(nb.nixlNotFoundError):
        agent.initialize_xfer("READ", agent.get_xfer_descs([(src.ctypes.data, 64, 0)], "DRAM"),
                              agent.get_xfer_descs([(dst.ctypes.data, 64, 0)], "DRAM"), "nobody")
    # Without capture_telemetry, telemetry needs NIXL_TELEMETRY_ENABLE.
    with nixl_agent("quiet") as q:
        buf = np.zeros(128, np.uint8)
        q.register_memory([(buf.ctypes.data, 128, 0, "")], "DRAM")
        q.add_remote_agent(q.get_agent_metadata())
        d = lambda off: q.get_xfer_descs([(buf.ctypes.data + off, 64, 0)], "DRAM")  # noqa
        h = q.initialize_xfer("WRITE", d(0), d(64), "quiet")
        wait_done(q, h, q.transfer(h))
        with pytest.raises(nb.nixlNoTelemetryError):
            q.get_xfer_telemetry(h)
    monkeypatch.setenv("NIXL_TELEMETRY_ENABLE", "y")
    with nixl_agent("loud") as q:
        buf = np.zeros(128, np.uint8)
        q.register_memory([(buf.ctypes.data, 128, 0, "")], "DRAM")
        q.add_remote_agent(q.get_agent_metadata())
        d = lambda off: q.get_xfer_descs([(buf.ctypes.data + off, 64, 0)], "DRAM")  # noqa
        h = q.initialize_xfer("WRITE", d(0), d(64), "loud")
        wait_done(q, h, q.transfer(h))
        assert q.get_xfer_telemetry(h).totalBytes == 64


def test_notifications(loop):
    agent, *_ = loop
    agent.send_notif("me", b"req-7:done")
    agent.send_notif(b"me", "text", backend="UCX")
    got = {}
    while len(got.get("me", [])) < 2:
        got = agent.update_notifs()
    assert got is agent.notifs and got["me"] == [b"req-7:done", b"text"]
    assert not agent.check_remote_xfer_done("me", b"7:d")  # not a prefix
    assert agent.check_remote_xfer_done("me", b"7:d", tag_is_prefix=False)
    assert agent.check_remote_xfer_done(b"me", "tex")
    assert agent.notifs["me"] == [] and not agent.check_remote_xfer_done("nobody", b"x")
    assert agent.get_new_notifs() == {}
    with pytest.raises(KeyError):
        agent.send_notif("me", b"x", backend="NOPE")
    with pytest.raises(nb.nixlNotFoundError):
        agent.send_notif("nobody", b"x")


def test_metadata_calls(loop):
    agent, src, dst, local, remote, reg = loop
    full = agent.get_agent_metadata()
    conn_only = agent.get_partial_agent_metadata(nb.nixlRegDList(nb.DRAM_SEG), True)
    part = agent.get_partial_agent_metadata(agent.get_reg_descs(
        [(src.ctypes.data, 16384, 0, "")], "DRAM"), False, ["UCX"])
    assert all(isinstance(b, bytes) for b in (full, conn_only, part))
    with nixl_agent("peer", nixl_agent_config(backends=["UCX"])) as peer:
        assert not peer.check_remote_metadata("me")
        assert peer.add_remote_agent(conn_only) == b"me"
        assert peer.check_remote_metadata("me")
        in_src = peer.get_xfer_descs([(src.ctypes.data, 64, 0)], "DRAM")
        assert not peer.check_remote_metadata("me", in_src)
        peer.add_remote_agent(part)
        assert peer.check_remote_metadata("me", in_src)
        peer.make_connection("me")
        peer.make_connection("me", backends=["UCX"])
        peer.remove_remote_agent(b"me")
        assert not peer.check_remote_metadata("me")
        peer.remove_remote_agent("me")  # unknown: no error, as NIXL's
        with pytest.raises(nb.nixlNotFoundError):
            peer.make_connection("me")
        with pytest.raises(ferry.BadMetadataError):  # ferry's own status, no NIXL name
            peer.add_remote_agent(b"not metadata")


def test_side_channel(agent):
    conf = nixl_agent_config(True, True, 0, backends=["UCX"])
    with nixl_agent("listener", conf) as srv, nixl_agent("client", conf) as cli:
        port = srv.get_listen_port()
        assert port > 0 and agent.get_listen_port() == 0
        cli.fetch_remote_metadata("listener", "127.0.0.1", port)
        import time
        end = time.monotonic() + 10
        while not cli.check_remote_metadata("listener") and time.monotonic() < end:
            time.sleep(0.001)
        assert cli.check_remote_metadata("listener")
        cli.send_local_metadata("127.0.0.1", port)
        assert srv.check_remote_metadata("client")
        buf = np.zeros(256, np.uint8)
        reg = cli.register_memory([(buf.ctypes.data, 256, 0, "")], "DRAM")
        cli.send_partial_agent_metadata(reg, False, [], "127.0.0.1", port, "kv")
        assert srv.check_remote_metadata(
            "client", srv.get_xfer_descs([(buf.ctypes.data, 256, 0)], "DRAM"))
        cli.invalidate_local_metadata("127.0.0.1", port)
        assert not srv.check_remote_metadata("client")
        # A peer that is gone: logged, not raised (NIXL queues the request).
        # (Stands in for the real wait, which lasts the side channel's timeout.)
        def gone(ip, port):
            raise ferry.TimedOutError("FERRY_ERR_TIMEOUT: no listener")

        cli.agent.invalidateLocalMD = gone
        cli.invalidate_local_metadata("127.0.0.1", port)
        del cli.agent.invalidateLocalMD
        # Without an address, and no etcd endpoint set, there is no one to ask.
        for call in (lambda: cli.send_local_metadata(),
                     lambda: cli.fetch_remote_metadata("listener"),
                     lambda: cli.invalidate_local_metadata(),
                     lambda: cli.send_partial_agent_metadata(reg)):
            with pytest.raises(nb.nixlNotSupportedError):
                call()


def test_query_memory(agent, tmp_path):
    buf = np.zeros(8192, np.uint8)
    reg = agent.register_memory([(buf.ctypes.data, 4096, 0, "")], "DRAM")
    a = buf.ctypes.data
    res = agent.query_memory([(a + 100, 10, 0, ""), (a + 4096, 10, 0, "")], "UCX", "DRAM")
    assert res == [{"addr": str(a), "len": "4096", "dev_id": "0"}, None]
    agent.deregister_memory(reg)
    assert agent.query_memory([(a, 10, 0, "")], "UCX", "DRAM") == [None]
    # Files: NIXL's transport backends have no answer (its POSIX/GDS do;
    # ferry has no file backend yet).
    f = tmp_path / "kv.bin"
    f.write_bytes(b"x" * 1000)
    with pytest.raises(nb.nixlNotSupportedError):
        agent.query_memory([(0, 1000, 0, str(f))], "UCX", "FILE")
    with pytest.raises(ValueError):
        agent.query_memory([(0, 1, 0, str(f))], "POSIX", "FILE")
    with pytest.raises(nb.nixlNotSupportedError):
        agent.query_memory([(0, 1, 0, "")], "UCX", "OBJ")
    with pytest.raises(nb.nixlInvalidParamError):
        agent.query_memory([(4096, 1)], "UCX", "DRAM")


def test_close_releases_handles(loop):
    agent, src, dst, local, remote, reg = loop
    h = agent.make_prepped_xfer("WRITE", local, [0], remote, [0])
    agent.close()
    agent.release_xfer_handle(h)  # the agent's end released them: no error
    local.release()
    assert h._released and local._released
    with pytest.raises(nb.nixlNotAllowedError):
        agent.get_agent_metadata()


def test_utils_and_logging(monkeypatch):
    a, b = nixl_utils.malloc_passthru(4096), nixl_utils.malloc_passthru(100)
    nixl_utils.ba_buf(a, 100)
    assert bytes(ferry._ferry.memview(a, 4)) == b"\xba" * 4
    with pytest.raises(AssertionError):
        nixl_utils.verify_transfer(a, b, 100)
    nixl_utils.ba_buf(b, 100)
    nixl_utils.verify_transfer(a, b, 100)
    nixl_utils.free_passthru(a)
    nixl_utils.free_passthru(b)
    with pytest.raises(ValueError):
        nixl_utils.malloc_passthru(0)
    assert nixl_logging.get_logger("_api").name == "nixl.api"
    monkeypatch.setattr(nixl_logging, "_logging_configured", False)
    monkeypatch.setenv("NIXL_LOG_LEVEL", "debug")
    nixl_logging.get_logger("x")
    assert logging.getLogger("nixl").level == logging.DEBUG
    logging.getLogger("nixl").setLevel(logging.NOTSET)
    assert os.environ["NIXL_LOG_LEVEL"] == "debug"
