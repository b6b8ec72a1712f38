# SPDX-License-Identifier: Apache-2.0
"""Reference counting and lifetimes: handles keep their agent alive; closing
or dropping agents and handles in any order never crashes; no growth over
10k create/release cycles."""
import gc
import itertools
import os
import sys
import weakref

import numpy as np
import pytest

import ferry_kv as ferry


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_world(name="life"):
    a = ferry.Agent(name)
    a.create_backend("LOCAL", {"workers": "0"})
    buf = np.zeros(8192, np.uint8)
    a.register([(buf.ctypes.data, 8192, 0)], mem_type="DRAM")
    a.load_metadata(a.metadata())
    local = a.prep([(buf.ctypes.data, 4096, 0)], mem_type="DRAM")
    remote = a.prep([(buf.ctypes.data + 4096, 4096, 0)], name, mem_type="DRAM")
    xfer = a.make_xfer("WRITE", local, [0], remote, [0], notif=b"n")
    xfer.post()
    xfer.wait(5)
    backend = a.backend("LOCAL")
    return {"agent": a, "buf": buf, "local": local, "remote": remote, "xfer": xfer,
            "backend": backend}


KINDS = ["agent", "local", "remote", "xfer", "backend"]


@pytest.mark.parametrize("order", list(itertools.permutations(KINDS)),
                         ids=lambda o: ">".join(k[0] for k in o))
def test_drop_in_any_order(order):
    world = make_world()
    ref = weakref.ref(world["agent"])
    for kind in order:  # plain reference counting: no cycles to collect
        del world[kind]
    assert ref() is None  # the last handle took the agent with it


@pytest.mark.parametrize("first", ["close", "release-all", "mixed"])
def test_close_and_release_in_any_order(first):
    w = make_world()
    if first == "close":
        w["agent"].close()
        w["xfer"].release()
        w["local"].release()
    elif first == "release-all":
        w["xfer"].release()
        w["local"].release()
        w["remote"].release()
        w["agent"].close()
    else:
        w["remote"].release()
        w["agent"].close()
        w["xfer"].release()
    for h in ("xfer", "local", "remote"):
        assert w[h].released
        getattr(w[h], "release")()
    w.clear()
    gc.collect()


def test_handles_keep_the_agent_alive():
    w = make_world()
    agent = w.pop("agent")
    ref = weakref.ref(agent)
    before = sys.getrefcount(agent)
    del agent
    gc.collect()
    assert ref() is not None and before >= 5  # held by local, remote, xfer, backend
    assert w["xfer"].agent.name == "life"
    w["xfer"].post()
    assert w["xfer"].wait(5)
    w.clear()
    gc.collect()
    assert ref() is None


def test_xfer_outlives_its_prepared_lists():
    w = make_world()
    w["local"].release()
    w["remote"].release()
    w["xfer"].post()
    assert w["xfer"].wait(5)


def _cycle(a, local, target_addr, i):
    """One create/use/release round of every kind of object."""
    p = a.prep(ferry.DList("DRAM", [(target_addr, 64, 0)]), "cycles")
    x = a.make_xfer("WRITE", local, [i % 4], p, [0], notif=b"c" if i % 3 == 0 else None)
    x.post()
    assert x.wait(5)
    if i % 2:
        x.release()
        p.release()
    else:  # dropped without release: dealloc releases
        del p
        del x
    a.get_notifs()


def test_no_leak_over_10k_cycles():
    a = ferry.Agent("cycles")
    a.create_backend("LOCAL", {"workers": "0"})
    buf = np.zeros(8192, np.uint8)
    a.register([(buf.ctypes.data, 8192, 0)], mem_type="DRAM")
    a.load_metadata(a.metadata())
    local = a.prep([(buf.ctypes.data + 64 * k, 64, 0) for k in range(4)], mem_type="DRAM")
    target = buf.ctypes.data + 4096
    for i in range(1000):  # warm-up: allocator pools, caches
        _cycle(a, local, target, i)
    gc.collect()
    start = rss_bytes()
    for i in range(10000):
        _cycle(a, local, target, i)
    gc.collect()
    grown = rss_bytes() - start
    assert grown < 2 << 20, f"RSS grew by {grown} bytes over 10k cycles"
    assert a.counters()["tx_requests"] == 11000
    a.close()


def test_no_leak_over_agent_cycles():
    for _ in range(50):
        make_world("warm")["agent"].close()
    gc.collect()
    start = rss_bytes()
    for i in range(1000):
        w = make_world("agents")
        if i % 2:
            w["agent"].close()
        w.clear()
    gc.collect()
    grown = rss_bytes() - start
    assert grown < 4 << 20, f"RSS grew by {grown} bytes over 1k agents"
