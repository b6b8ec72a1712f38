# SPDX-License-Identifier: Apache-2.0
"""ferry.Agent and its handles, in one process (LOCAL loopback, UCX where
needed): every public method, including its errors."""
import os
import threading

import numpy as np
import pytest

import ferry_kv as ferry
from conftest import needs_ucx


def buffers(count=2, size=4096):
    return [np.zeros(size, np.uint8) for _ in range(count)]


def region(arr):
    return (arr.ctypes.data, arr.nbytes, 0)


@pytest.fixture
def loop():
    """LOCAL loopback agent with two registered 64 KiB buffers, src patterned."""
    a = ferry.Agent("loop", telemetry=True)
    a.create_backend("LOCAL")
    src = (np.arange(1 << 16) % 253).astype(np.uint8)
    dst = np.zeros(1 << 16, np.uint8)
    reg = a.register([region(src), region(dst)], mem_type="DRAM")
    assert a.load_metadata(a.metadata()) == "loop"
    blocks = lambda arr: [(arr.ctypes.data + i * 4096, 4096, 0) for i in range(16)]  # noqa: E731
    local = a.prep(blocks(src), mem_type="DRAM")
    remote = a.prep(blocks(dst), "loop", mem_type="DRAM")
    yield a, src, dst, local, remote, reg
    a.close()


def test_agent_options_and_attributes():
    with ferry.Agent("opts", progress_thread=True, progress_delay_us=50, telemetry=True,
                     sync_mode=ferry.SYNC_STRICT, notif_queue_cap=16, reg_cap_bytes=1 << 20,
                     sc_timeout_ms=100, sc_max_frame=1 << 20) as a:
        assert a.name == "opts" and not a.closed and a.listen_port is None
        assert repr(a) == "<ferry.Agent 'opts'>" and a.notifs_dropped == 0
        a.progress()
    assert a.closed and "closed" in repr(a)
    with pytest.raises(ferry.InvalidParamError):
        ferry.Agent("")
    with pytest.raises(ferry.InvalidParamError):
        ferry.Agent("x", sync_mode=7)
    with pytest.raises(ferry.InvalidParamError):
        ferry.Agent("x", listen=True, sync_mode=ferry.SYNC_NONE)
    with pytest.raises(ValueError):
        ferry.Agent("x", listen_port=70000)
    with pytest.raises(TypeError):
        ferry.Agent(b"bytes-name")


def test_listener_port():
    with ferry.Agent("l", listen=True, listen_host="127.0.0.1") as a:
        assert 0 < a.listen_port < 65536


def test_plugins():
    with ferry.Agent("p") as a:
        plugins = a.plugins()
        assert "LOCAL" in plugins and plugins == sorted(plugins[1:], key=str) or plugins[0]
        assert a.plugin_path("LOCAL") == ("builtin", a.plugin_path("LOCAL")[1])
        assert "DRAM" in a.plugin_mem_types("LOCAL")
        keys = [p[0] for p in a.plugin_params("LOCAL")]
        assert "workers" in keys and all(len(p) == 3 for p in a.plugin_params("LOCAL"))
        for call in (a.plugin_path, a.plugin_mem_types, a.plugin_params):
            with pytest.raises(ferry.NotFoundError):
                call("NOPE")


@needs_ucx
def test_bundled_plugin_dir():
    with ferry.Agent("p") as a:
        path, abi = a.plugin_path("UCX")
        assert os.path.dirname(path) == ferry.plugin_dir() and abi >= 1
        assert os.path.dirname(ferry.plugin_dir()) == os.path.dirname(ferry.__file__)


def test_backends():
    with ferry.Agent("b") as a:
        be = a.create_backend("LOCAL", {"workers": 0, "inline_max": "4096"})
        assert be.name == "LOCAL" and be.agent is a and "LOCAL" in repr(be)
        flags, mems = be.caps()
        assert flags & ferry.CAP_LOCAL and "DRAM" in mems
        assert be.params()["workers"] == "0" and be.params()["inline_max"] == "4096"
        assert a.backend("LOCAL") == be and hash(a.backend("LOCAL")) == hash(be)
        with pytest.raises(ferry.NotAllowedError):
            a.create_backend("LOCAL")
        with pytest.raises(ferry.NotFoundError):
            a.create_backend("NOPE")
        with pytest.raises(ferry.NotFoundError):
            a.backend("UCX")
        with pytest.raises(TypeError):
            a.create_backend("LOCAL", ["not", "a", "dict"])
    with ferry.Agent("b2") as a:
        with pytest.raises(ferry.InvalidParamError):
            a.create_backend("LOCAL", {"no_such_key": "1"})
    with pytest.raises(ferry.NotAllowedError):
        be.params()


def test_registration_and_ledger():
    with ferry.Agent("r", reg_cap_bytes=8192) as a:
        a.create_backend("LOCAL")
        x, y, z = buffers(3)
        reg = a.register([region(x)], mem_type="DRAM", backends=["LOCAL"])
        assert a.mem_usage()["DRAM"] == (4096, 1)
        assert a.counters()["regions"] == 1 and a.counters()["mem_registered"] == 4096
        with pytest.raises(ferry.NotAllowedError):  # overlaps x
            a.register([(x.ctypes.data + 16, 64, 0)], mem_type="DRAM")
        a.register([region(y)], mem_type="DRAM", backends=[a.backend("LOCAL")])
        with pytest.raises(ferry.NoResourcesError):
            a.register([region(z)], mem_type="DRAM")
        with pytest.raises(ferry.NotFoundError):
            a.deregister([(x.ctypes.data, 100, 0)], mem_type="DRAM")
        with pytest.raises(ferry.NotFoundError):
            a.register([region(z)], mem_type="FILE")  # no backend takes FILE
        with pytest.raises(ferry.NotFoundError):
            a.register([region(z)], mem_type="DRAM", backends=["UCX"])
        with pytest.raises(TypeError):
            a.register([region(z)], mem_type="DRAM", backends=5)
        a.deregister(reg)
        a.deregister([region(y)], mem_type="DRAM")
        assert a.mem_usage()["DRAM"] == (0, 0)


def test_query_mem(tmp_path):
    with ferry.Agent("q") as a, ferry.Agent("other") as b:
        a.create_backend("LOCAL")
        b.create_backend("LOCAL")
        x, y = buffers(2)
        a.register([region(x)], mem_type="DRAM")
        inside = (x.ctypes.data + 1024, 512, 0)
        res = a.query_mem([inside, region(y), (x.ctypes.data + 4000, 200, 0)], mem_type="DRAM")
        assert res[0] == {"addr": x.ctypes.data, "len": 4096, "dev_id": 0}
        assert res[1] is None and res[2] is None  # unregistered; straddles the region's end
        assert a.query_mem([inside], "LOCAL", mem_type="DRAM")[0]["len"] == 4096
        assert a.query_mem([inside], a.backend("LOCAL"), mem_type="DRAM")[0] is not None
        f = tmp_path / "kv.bin"
        f.write_bytes(b"x" * 1000)
        files = [(0, 1, 0, str(f)), (0, 1, 0, str(tmp_path / "none")), (0, 1, 0, "")]
        res = a.query_mem(files, mem_type="FILE")
        st = os.stat(f)
        assert res[0] == {"size": 1000, "mode": st.st_mode, "mtime": int(st.st_mtime)}
        assert res[1] is None and res[2] is None
        with pytest.raises(ferry.NotSupportedError):  # LOCAL does not take files
            a.query_mem(files, "LOCAL", mem_type="FILE")
        with pytest.raises(ferry.NotSupportedError):
            a.query_mem([(0, 1, 0)], mem_type="OBJ")
        with pytest.raises(ferry.NotFoundError):
            a.query_mem([inside], "UCX", mem_type="DRAM")  # not created in this agent
        with pytest.raises(ValueError):
            a.query_mem([inside], b.backend("LOCAL"), mem_type="DRAM")
        assert a.query_mem([], mem_type="DRAM") == []


def test_transfer_loopback(loop):
    a, src, dst, local, remote, _ = loop
    assert len(local) == 16 and local.remote is None and remote.remote == "loop"
    assert "remote 'loop'" in repr(remote) and local.agent is a and local._handle
    idx = np.arange(16, dtype=np.int32)[::-1].copy()
    x = a.make_xfer("WRITE", local, idx, remote, idx, notif=b"n1")
    assert x.agent is a and x.backend == "LOCAL" and x.count == 16 and x.error == ""
    with pytest.raises(ferry.NotPostedError):
        x.status()
    with pytest.raises(ferry.NotPostedError):
        x.telemetry()
    assert x.post() in (0, 1) and x.wait(10)
    assert x.status() == 0 and (src == dst).all()
    t = x.telemetry()
    assert t.total_bytes == 1 << 16 and t.desc_count == 16 and t.backend == "LOCAL" and t.done
    assert t.start_us > 0 and t.xfer_us >= 0 and t.post_us >= 0
    duration, margin, method = x.estimate()
    assert duration >= 0 and margin >= 0 and method in (ferry.COST_ANALYTICAL, ferry.COST_MEASURED)
    assert a.get_notifs() == {"loop": [b"n1"]}
    x.set_notif("second")
    dst[:] = 0
    x.post()
    assert x.wait(10) and (src == dst).all()
    x.post(notif=b"third")
    x.wait(10)
    x.set_notif(None)
    x.post()
    x.wait(10)
    assert a.get_notifs("loop") == {"loop": [b"second", b"third"]}
    x.release()
    x.release()  # idempotent
    assert x.released and "released" in repr(x)
    with pytest.raises(ferry.InvalidParamError):
        x.post()


@pytest.mark.parametrize("make_idx", [
    lambda n: list(range(n)), lambda n: range(n), lambda n: tuple(range(n)),
    lambda n: np.arange(n, dtype=np.int64), lambda n: np.arange(n, dtype=np.uint32),
    lambda n: np.arange(n, dtype=np.int16), lambda n: np.arange(2 * n, dtype=np.int32)[::2] // 2,
    lambda n: [np.int64(i) for i in range(n)], lambda n: np.arange(n, dtype=np.uint64),
], ids=["list", "range", "tuple", "int64", "uint32", "int16", "strided", "np-scalars", "uint64"])
def test_index_kinds(loop, make_idx):
    a, src, dst, local, remote, _ = loop
    with a.make_xfer(ferry.OP_WRITE, local, make_idx(16), remote, make_idx(16)) as x:
        x.post()
        assert x.wait(10)
    assert (src == dst).all() and x.released


def test_index_widths_mixed(loop):
    """An int64 array on one side and an int32 one on the other: the wide one
    is narrowed here, and the blocks land where the pairs say."""
    a, src, dst, local, remote, _ = loop
    perm = np.random.default_rng(3).permutation(16)
    for li, ri in ((np.arange(16, dtype=np.int64), perm.astype(np.int32)),
                   (np.arange(16, dtype=np.int32), perm.astype(np.int64))):
        dst[:] = 0
        with a.make_xfer(ferry.OP_WRITE, local, li, remote, ri) as x:
            x.post()
            assert x.wait(10)
        got = dst.reshape(16, -1)
        assert all((got[perm[i]] == src.reshape(16, -1)[i]).all() for i in range(16))


def test_make_errors_int64(loop):
    """int64 arrays on both sides go to the library as they are: it refuses a
    negative entry, one past the list or past 32 bits (InvalidParamError,
    naming the pair), in the vectorised part of an array and in its tail."""
    a, src, dst, local, remote, _ = loop
    for at in (2, 9):
        for bad in (-1, 16, 2 ** 33, -2 ** 63):
            li, ri = np.arange(11, dtype=np.int64), np.arange(11, dtype=np.int64)
            li[at] = bad
            with pytest.raises(ferry.InvalidParamError, match="out of range"):
                a.make_xfer("READ", local, li, remote, ri)
            with pytest.raises(ferry.InvalidParamError, match="out of range"):
                a.make_xfer("READ", local, ri, remote, li)


def test_make_errors(loop):
    a, src, dst, local, remote, _ = loop
    with pytest.raises(IndexError):
        a.make_xfer("READ", local, [-1], remote, [0])
    with pytest.raises(ferry.InvalidParamError):
        a.make_xfer("READ", local, [16], remote, [0])  # out of range
    with pytest.raises(ferry.InvalidParamError):
        a.make_xfer("READ", local, np.array([-1], np.int32), remote, [0])
    # int64 arrays are narrowed four at a time: a bad entry inside a long one too
    long_bad = np.zeros(11, np.int64)
    long_bad[6] = -3
    for bad in (np.array([0, -1]), np.array([2 ** 33]), np.array([0, 2 ** 40], np.uint64),
                np.array([-5], np.int16), [2 ** 32], long_bad):
        with pytest.raises(IndexError):
            a.make_xfer("READ", local, bad, remote, [0] * len(bad))
    # A bad remote array is let go of, as a bad local one is: array.array
    # refuses to grow while its buffer is still held.
    import array
    bad_remote = array.array("q", [0, -1])
    with pytest.raises(IndexError):
        a.make_xfer("READ", local, [0, 1], remote, bad_remote)
    bad_remote.append(0)
    with pytest.raises(ferry.InvalidParamError):
        a.make_xfer("READ", local, [0, 1], remote, [0])
    with pytest.raises(ferry.InvalidParamError):
        a.make_xfer("READ", local, [], remote, [])
    with pytest.raises(KeyError):
        a.make_xfer("MOVE", local, [0], remote, [0])
    with pytest.raises(ValueError):
        a.make_xfer(7, local, [0], remote, [0])
    with pytest.raises(TypeError):
        a.make_xfer("READ", "local", [0], remote, [0])
    with pytest.raises(TypeError):
        a.make_xfer("READ", local, [0], remote)
    with pytest.raises(TypeError):
        a.make_xfer("READ", local, [0], remote, [0], bogus=1)
    with pytest.raises(TypeError):
        a.make_xfer("READ", local, [0], remote, [0], notif=b"x", notif_=1)
    with pytest.raises(ValueError):
        a.make_xfer("READ", local, np.zeros((2, 2), np.int32), remote, [0])
    with pytest.raises(TypeError):
        a.make_xfer("READ", local, np.zeros(1, np.float32), remote, [0])
    with pytest.raises(ferry.NotFoundError):
        a.make_xfer("READ", local, [0], remote, [0], backends=["UCX"])
    with pytest.raises(ferry.InvalidParamError):  # notification over the 64 KiB cap
        a.make_xfer("READ", local, [0], remote, [0], notif=b"x" * (ferry.NOTIF_MAX_LEN + 1))
    x = a.make_xfer("READ", local, [0], remote, [0], backend="LOCAL", skip_merge=True)
    x.release()
    with ferry.Agent("other") as b:
        b.create_backend("LOCAL")
        with pytest.raises(ValueError):
            b.make_xfer("READ", local, [0], remote, [0])
        with pytest.raises(ValueError):
            a.prep([(1, 1, 0)], mem_type="DRAM", backends=[b.backend("LOCAL")])
    local.release()
    with pytest.raises(ferry.InvalidParamError):
        a.make_xfer("READ", local, [0], remote, [0])
    with pytest.raises(ferry.InvalidParamError):
        len(local)


def test_merging(loop):
    a, src, dst, local, remote, _ = loop
    with a.make_xfer("WRITE", local, range(16), remote, range(16)) as x:
        assert x.count == 1
    with a.make_xfer("WRITE", local, range(16), remote, range(16), skip_merge=True) as x:
        assert x.count == 16


def test_create_xfer(loop):
    a, src, dst, *_ = loop
    x = a.create_xfer("WRITE", [region(src)], [region(dst)], "loop", notif="c", mem_type="DRAM")
    x.post()
    assert x.wait(10) and (src == dst).all()
    x.release()
    with pytest.raises(ferry.NotFoundError):
        a.create_xfer("WRITE", [region(src)], [region(dst)], "nobody", mem_type="DRAM")
    with pytest.raises(ferry.MismatchError):
        a.create_xfer("WRITE", [region(src)], [(dst.ctypes.data, 100, 0)], "loop",
                      mem_type="DRAM")
    with pytest.raises(ferry.NotFoundError):  # not registered
        a.create_xfer("WRITE", [(4096, 10, 0)], [(dst.ctypes.data, 10, 0)], "loop",
                      mem_type="DRAM")
    with pytest.raises(TypeError):
        ferry._ferry.Agent.create_xfer(a, "WRITE", [region(src)], [region(dst)], "loop")


def test_prep_errors(loop):
    a, src, *_ = loop
    with pytest.raises(ferry.NotFoundError):
        a.prep([(4096, 10, 0)], mem_type="DRAM")
    with pytest.raises(ferry.NotFoundError):
        a.prep([region(src)], "nobody", mem_type="DRAM")
    with pytest.raises(TypeError):
        ferry._ferry.Agent.prep(a, [region(src)])
    with pytest.raises(TypeError):
        a.prep([region(src)], 5, mem_type="DRAM")
    with a.prep([region(src)], "", mem_type="DRAM") as p:  # "" is the local side
        assert p.remote is None and len(p) == 1
    assert p.released


def test_notifications(loop):
    a, *_ = loop
    a.send_notif("loop", b"alone")
    a.send_notif("loop", "text")
    a.send_notif("loop", bytearray(b"ba"), backends=["LOCAL"])
    got = {}
    for _ in range(1000):
        a.get_notifs(into=got)
        if len(got.get("loop", [])) == 3:
            break
    assert got == {"loop": [b"alone", b"text", b"ba"]}
    a.send_notif("loop", b"tag-123")
    a.send_notif("loop", b"other")
    assert a.take_notif_tag("loop", b"tag-")
    assert not a.take_notif_tag("loop", b"tag-")
    assert not a.take_notif_tag("loop", b"oth", prefix=False)
    assert a.take_notif_tag("loop", "other", prefix=False)
    with pytest.raises(ferry.NotFoundError):
        a.send_notif("nobody", b"x")
    with pytest.raises(ferry.InvalidParamError):
        a.send_notif("loop", b"x" * (ferry.NOTIF_MAX_LEN + 1))
    with pytest.raises(TypeError):
        a.send_notif("loop", 5)
    assert a.get_notifs("nobody") == {}


def test_metadata(loop):
    a, src, dst, local, remote, reg = loop
    full = a.metadata()
    part = a.partial_metadata([ferry.DList("DRAM", [region(src)])], include_conn_info=True)
    conn_only = a.partial_metadata()
    assert isinstance(full, bytes) and len(conn_only) <= len(part) <= len(full)
    assert a.partial_metadata(ferry.DList("DRAM", [region(src)])) != part
    with pytest.raises(ferry.NotFoundError):
        a.partial_metadata([ferry.DList("DRAM", [(4096, 1, 0)])])
    with pytest.raises(TypeError):
        a.partial_metadata([5])
    with pytest.raises(ferry.BadMetadataError):
        a.load_metadata(b"\x00" * 64)
    gen = a.generation("loop")
    assert a.check_remote("loop") and a.check_remote("loop", ferry.DList("DRAM", [region(src)]))
    assert not a.check_remote("loop", ferry.DList("DRAM", [(4096, 1, 0)]))
    assert not a.check_remote("nobody")
    a.connect("loop")
    with pytest.raises(ferry.NotFoundError):
        a.connect("nobody")
    with pytest.raises(ferry.NotFoundError):
        a.generation("nobody")
    a.invalidate_remote(b"loop")  # bytes names work everywhere
    with pytest.raises(ferry.StaleError):
        a.make_xfer("WRITE", local, [0], remote, [0])
    with pytest.raises(ferry.NotFoundError):
        a.invalidate_remote("loop")
    assert a.load_metadata(full) == "loop" and a.generation("loop") >= gen


def test_side_channel_in_process():
    with ferry.Agent("srv", listen=True, listen_host="127.0.0.1", progress_thread=True) as srv, \
            ferry.Agent("cli", progress_thread=True, listen=True, listen_host="127.0.0.1") as cli:
        srv.create_backend("LOCAL")
        cli.create_backend("LOCAL")
        port = srv.listen_port
        assert cli.fetch_status("srv") == ferry.NotFoundError.status
        cli.fetch_metadata("srv", "127.0.0.1", port, wait_ms=5000)
        assert cli.fetch_status("srv") == ferry.OK and cli.check_remote("srv")
        cli.send_metadata("127.0.0.1", port)
        assert srv.check_remote("cli")
        buf = np.zeros(64, np.uint8)
        cli.register([region(buf)], mem_type="DRAM")
        cli.send_partial_metadata([ferry.DList("DRAM", [region(buf)])], "127.0.0.1", port,
                                  include_conn_info=False, label="part")
        assert srv.check_remote("cli", ferry.DList("DRAM", [region(buf)]))
        cli.invalidate_local("127.0.0.1", port)
        assert not srv.check_remote("cli")
        with pytest.raises(ValueError):
            cli.send_metadata("127.0.0.1", -1)
        srv.close()
        with pytest.raises((ferry.IoError, ferry.TimedOutError)):
            cli.send_metadata("127.0.0.1", port)


def test_closed_agent_and_handles(loop):
    a, src, dst, local, remote, _ = loop
    be = a.backend("LOCAL")
    x = a.make_xfer("WRITE", local, [0], remote, [0])
    a.close()
    a.close()  # idempotent
    assert x.released and local.released and remote.released
    x.release()
    local.release()
    for call in (a.plugins, a.metadata, a.progress, a.counters, a.mem_usage, lambda: a.listen_port,
                 lambda: a.backend("LOCAL"), lambda: a.get_notifs(), lambda: be.name,
                 lambda: a.notifs_dropped, lambda: a.__enter__()):
        with pytest.raises(ferry.NotAllowedError):
            call()
    assert "closed" in repr(be)


def test_threads_share_an_agent(loop):
    a, src, dst, local, remote, _ = loop
    errors = []

    def worker(k):
        try:
            for _ in range(50):
                with a.make_xfer("WRITE", local, [k], remote, [k]) as x:
                    x.post()
                    assert x.wait(10)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert (src[:4 * 4096] == dst[:4 * 4096]).all()


def test_close_while_another_thread_is_inside():
    a = ferry.Agent("busy", sc_timeout_ms=1500, progress_thread=True)
    a.create_backend("LOCAL")
    started = threading.Event()

    def blocked():
        started.set()
        with pytest.raises((ferry.TimedOutError, ferry.IoError)):
            a.fetch_metadata("ghost", "127.0.0.1", 1, wait_ms=1500)

    t = threading.Thread(target=blocked)
    t.start()
    started.wait()
    import time
    time.sleep(0.3)
    with pytest.raises(ferry.NotAllowedError):
        a.close()
    t.join()
    a.close()
    assert a.closed


def test_unaligned_index_arrays(loop):
    a, src, dst, local, remote, _ = loop
    for dtype, offset in ((np.int32, 2), (np.int64, 4)):
        idx = np.arange(16, dtype=dtype)
        skewed = np.frombuffer(b"\0" * offset + idx.tobytes(), dtype=dtype, count=16,
                               offset=offset)
        assert not skewed.flags.aligned
        with a.make_xfer("WRITE", local, skewed, remote, skewed) as x:
            x.post()
            assert x.wait(10)
    assert (src == dst).all()


def test_side_channel_auth_key(monkeypatch):
    key, other = "python-shared-key-0123", "python-other-key-45678"
    with ferry.Agent("srv", listen=True, listen_host="127.0.0.1", auth_key=key) as srv, \
            ferry.Agent("cli", auth_key=key) as cli, \
            ferry.Agent("bad", auth_key=other) as bad, \
            ferry.Agent("open") as unkeyed:
        for a in (srv, cli, bad, unkeyed):
            a.create_backend("LOCAL")
        port = srv.listen_port
        cli.fetch_metadata("srv", "127.0.0.1", port, wait_ms=5000)
        assert cli.check_remote("srv")
        with pytest.raises(ferry.AuthError, match="authentication failed"):
            bad.fetch_metadata("srv", "127.0.0.1", port, wait_ms=5000)
        assert srv.counters()["auth_failures"] == 1
        with pytest.raises(ferry.AuthError, match="no MAC"):
            srv.load_metadata(unkeyed.metadata())
        assert srv.counters()["auth_failures"] == 2
        assert unkeyed.load_metadata(srv.metadata()) == "srv"
    with pytest.raises(ferry.InvalidParamError):
        ferry.Agent("short", auth_key="short")
    monkeypatch.setenv("FERRY_AUTH_KEY", key)
    with ferry.Agent("env", listen=True, listen_host="127.0.0.1") as env, \
            ferry.Agent("cli2", auth_key=key) as cli:
        env.create_backend("LOCAL")
        cli.fetch_metadata("env", "127.0.0.1", env.listen_port, wait_ms=5000)
