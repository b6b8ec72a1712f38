# SPDX-License-Identifier: Apache-2.0
"""Process entry points of the multi-process tests (spawned, so importable).

Every peer talks to the test through a Pipe: it sends ("ok", payload),
("skip", reason) or ("error", traceback) and exits; the test process
checks the payloads.
"""
import os
import sys
import time
import traceback

DEADLINE = 20.0  # seconds any wait of a peer may take


class Skip(Exception):
    """Raised by a peer that cannot run here: the test reports it skipped."""


def _report(conn, fn, *args):
    try:
        conn.send(("ok", fn(conn, *args)))
    except Skip as s:
        conn.send(("skip", str(s)))
    except BaseException:  # noqa: BLE001  (sent to the test, which fails)
        conn.send(("error", traceback.format_exc()))
        raise


def expect(conn, what=None):
    """The test side: next message of a peer (raises with its traceback)."""
    if not conn.poll(DEADLINE * 2):
        raise TimeoutError(f"peer sent nothing ({what})")
    kind, payload = conn.recv()
    if kind == "error":
        raise AssertionError(f"peer failed:\n{payload}")
    return payload


def wait_until(pred, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.001)
    raise TimeoutError(what)


def pattern(n, seed):
    import numpy as np
    return ((np.arange(n, dtype=np.uint64) * 2654435761 + seed) % 251).astype(np.uint8)


# ---- native ferry API: write/read with notifications, tensors and arrays ----

def native_target(conn, use_torch, backend="UCX"):
    _report(conn, _native_target, use_torch, backend)


def _native_target(conn, use_torch, backend):
    import numpy as np

    import ferry_kv as ferry
    agent = ferry.Agent("target", progress_thread=True, listen=True, listen_host="127.0.0.1")
    agent.create_backend(backend)
    n = 1 << 15
    if use_torch:
        import torch
        mem = torch.from_numpy(pattern(n, 7).copy())
        addr = mem.data_ptr()
    else:
        mem = pattern(n, 7)
        addr = mem.ctypes.data
    scratch = np.zeros(n, dtype=np.uint8)
    # A tensor registers as itself; numpy arrays are descriptor arrays to ferry.
    regs = agent.register(mem) if use_torch else agent.register([(addr, n, 0)], mem_type="DRAM")
    agent.register([(scratch.ctypes.data, n, 0)], mem_type="DRAM")
    conn.send(("ok", (agent.listen_port, addr, scratch.ctypes.data, n)))
    # The initiator READs `mem`, then WRITEs into `scratch`, each with a notif.
    got = []
    wait_until(lambda: got.extend(agent.get_notifs().get("initiator", [])) or len(got) >= 2,
               "two notifications from the initiator")
    assert got[:2] == [b"read-done", b"write-done"], got
    expect_written = pattern(n, 9)
    assert (scratch == expect_written).all(), "written bytes differ"
    agent.deregister(regs)
    agent.close()
    return got


def native_initiator(conn, port, remote_addr, remote_scratch, n, use_torch, backend="UCX"):
    _report(conn, _native_initiator, port, remote_addr, remote_scratch, n, use_torch, backend)


def _native_initiator(conn, port, remote_addr, remote_scratch, n, use_torch, backend):
    import numpy as np

    import ferry_kv as ferry
    with ferry.Agent("initiator", progress_thread=True) as agent:
        agent.create_backend(backend)
        if use_torch:
            import torch
            dst = torch.zeros(n, dtype=torch.uint8)
            src = torch.from_numpy(pattern(n, 9).copy())
            dst_addr, src_addr = dst.data_ptr(), src.data_ptr()
        else:
            dst, src = np.zeros(n, dtype=np.uint8), pattern(n, 9)
            dst_addr, src_addr = dst.ctypes.data, src.ctypes.data
        if use_torch:
            agent.register([dst, src])
        else:
            agent.register(np.array([[dst_addr, n, 0], [src_addr, n, 0]], dtype=np.uint64),
                           mem_type="DRAM")
        agent.fetch_metadata("target", "127.0.0.1", port, wait_ms=int(DEADLINE * 1000))
        agent.send_metadata("127.0.0.1", port)  # so the target can receive our notifications
        blk = n // 8
        # READ the target's memory block by block, in reverse (no merging).
        local = agent.prep(np.array([[dst_addr + i * blk, blk, 0] for i in range(8)], np.uint64),
                           mem_type="DRAM")
        remote = agent.prep(np.array([[remote_addr + i * blk, blk, 0] for i in range(8)],
                                     np.uint64), "target", mem_type="DRAM")
        idx = np.arange(8, dtype=np.int32)
        with agent.make_xfer("READ", local, idx, remote, idx, notif=b"read-done") as x:
            x.post()
            assert x.wait(DEADLINE)
        got = dst.numpy() if use_torch else dst
        assert (got == pattern(n, 7)).all(), "read bytes differ"
        # WRITE our pattern into the target's scratch with a plain request.
        x = agent.create_xfer("WRITE", [(src_addr, n, 0)], [(remote_scratch, n, 0)], "target",
                              notif=b"write-done", mem_type="DRAM")
        x.post()
        assert x.wait(DEADLINE)
        x.release()
        local.release()
        remote.release()
        return "done"


# ---- partial metadata, remote removal, side channel invalidation ----

def partial_owner(conn):
    _report(conn, _partial_owner)


def _partial_owner(conn):
    import ferry_kv as ferry
    agent = ferry.Agent("owner", progress_thread=True, listen=True, listen_host="127.0.0.1")
    agent.create_backend("UCX")
    a, b = pattern(4096, 1), pattern(4096, 2)
    agent.register([(a.ctypes.data, a.nbytes, 0), (b.ctypes.data, b.nbytes, 0)], mem_type="DRAM")
    only_a = ferry.DList("DRAM", [(a.ctypes.data, a.nbytes, 0)])
    conn.send(("ok", (agent.partial_metadata([only_a], include_conn_info=True),
                      agent.partial_metadata(ferry.DList("DRAM", [(b.ctypes.data, 4096, 0)])),
                      a.ctypes.data, b.ctypes.data, agent.listen_port)))
    # Wait for the reader to finish, keeping the memory alive.
    assert conn.poll(DEADLINE * 2)
    conn.recv()
    agent.close()
    return "closed"


# ---- the vLLM connector's call pattern, through ferry.nixl or the nixl tree ----
#
# mem "DRAM": numpy regions over UCX; "VRAM": CUDA tensors over the CUDA
# backend (prefill on GPU 0, decode on the last GPU, so two GPUs exercise
# peer access and one GPU two processes on one device); "VRAM-mock": the
# same on the mock CUDA driver of tests/gpu (FERRY_CUDA_LIB, two GPUs whose
# memory is host memory), so the VRAM path runs on hosts without a GPU.

LAYERS, BLOCKS, BLOCK_BYTES = 4, 16, 2048
REQUESTS = 3
VLLM_BACKEND = {"DRAM": "UCX", "VRAM": "CUDA", "VRAM-mock": "CUDA"}


def _nixl_mem(mem):
    return "VRAM" if mem.startswith("VRAM") else mem


def _mock_alloc(device, nbytes):
    """Device memory of the mock driver (a host address), made current first."""
    import ctypes
    lib = ctypes.CDLL(os.environ["FERRY_CUDA_LIB"])  # the handle ferry opens too
    dev, ctx, ptr = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_uint64()
    ok = (lib.cuInit(0) == 0 and lib.cuDeviceGet(ctypes.byref(dev), device) == 0
          and lib.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev) == 0
          and lib.cuCtxPushCurrent_v2(ctx) == 0
          and lib.cuMemAlloc_v2(ctypes.byref(ptr), nbytes) == 0)
    assert ok, "mock CUDA driver allocation failed"
    lib.cuCtxPopCurrent_v2(ctypes.byref(ctx))
    return ptr.value


def _nixl_api(api, compat_path):
    if api == "nixl":
        sys.path.insert(0, compat_path)
        from nixl._api import nixl_agent, nixl_agent_config
        from nixl._bindings import nixlRemoteDisconnectError
        import nixl
        assert nixl.BACKEND == "ferry", nixl.BACKEND
    else:
        from ferry_kv.nixl import nixl_agent, nixl_agent_config
        from ferry_kv.nixl_bindings import nixlRemoteDisconnectError
    return nixl_agent, nixl_agent_config, nixlRemoteDisconnectError


class _KvCache:
    """One region per layer for K and one for V, as vLLM registers them:
    numpy arrays (DRAM) or uint8 CUDA tensors (VRAM) on one device."""

    def __init__(self, mem, seed, device=0):
        import numpy as np
        self.mem, self.dev = mem, device if mem != "DRAM" else 0
        host = [pattern(BLOCKS * BLOCK_BYTES, seed + r) if seed else
                np.zeros(BLOCKS * BLOCK_BYTES, dtype=np.uint8) for r in range(LAYERS * 2)]
        if mem == "DRAM":
            self.regions = host
            return
        if mem == "VRAM-mock":
            import ctypes
            self.regions = []
            for h in host:
                addr = _mock_alloc(device, h.nbytes)
                ctypes.memmove(addr, h.ctypes.data, h.nbytes)
                self.regions.append(np.frombuffer((ctypes.c_uint8 * h.nbytes).from_address(addr),
                                                 np.uint8))
            return
        import torch
        self.regions = [torch.from_numpy(h).to(f"cuda:{device}") for h in host]
        torch.cuda.synchronize(device)  # the data is in place before any peer reads it

    def bases(self):
        return [r.data_ptr() if self.mem == "VRAM" else r.ctypes.data for r in self.regions]

    def host(self, layer):
        """A layer's bytes as a numpy array, blocks by rows."""
        r = self.regions[layer]
        return (r.cpu().numpy() if self.mem == "VRAM" else r).reshape(BLOCKS, BLOCK_BYTES)

    def reg_tuples(self):
        return [(b, BLOCKS * BLOCK_BYTES, self.dev, "") for b in self.bases()]

    def block_descs(self, bases=None, dev=None):
        """Descriptor i = region i // BLOCKS, block i % BLOCKS (vLLM's layout)."""
        dev = self.dev if dev is None else dev
        return [(base + b * BLOCK_BYTES, BLOCK_BYTES, dev) for base in (bases or self.bases())
                for b in range(BLOCKS)]


def _decode_device(mem):
    if mem == "VRAM-mock":
        return 1  # the mock driver has two GPUs
    if mem != "VRAM":
        return 0
    import torch
    return torch.cuda.device_count() - 1


def _desc_ids(blocks):
    import numpy as np
    return np.array([r * BLOCKS + b for r in range(LAYERS * 2) for b in blocks], dtype=np.int64)


def vllm_prefill(conn, api, compat_path, mem="DRAM"):
    _report(conn, _vllm_prefill, api, compat_path, mem)


def _vllm_prefill(conn, api, compat_path, mem):
    nixl_agent, nixl_agent_config, _ = _nixl_api(api, compat_path)
    agent = nixl_agent("prefill-engine", nixl_agent_config(backends=[VLLM_BACKEND[mem]]))
    cache = _KvCache(mem, seed=11)
    reg = agent.register_memory(agent.get_reg_descs(cache.reg_tuples(), _nixl_mem(mem)))
    local = agent.prep_xfer_dlist("NIXL_INIT_AGENT",
                                  agent.get_xfer_descs(cache.block_descs(), _nixl_mem(mem)))
    conn.send(("ok", (agent.get_agent_metadata(), cache.bases(), cache.dev)))
    # Free each request's blocks once its reader says it is done.
    done = {}
    def all_done():
        for sender, msgs in agent.get_new_notifs().items():
            assert sender == "decode-engine", sender
            for m in msgs:
                done[m] = done.get(m, 0) + 1
        return len(done) >= REQUESTS
    wait_until(all_done, "notifications of every request")
    assert done == {f"req-{r}".encode(): 1 for r in range(REQUESTS)}, done
    conn.send(("ok", sorted(done)))
    # Stay up until killed (the decode side then sees the disconnect).
    time.sleep(DEADLINE * 3)
    agent.release_dlist_handle(local)
    agent.deregister_memory(reg)
    return "not killed"


def vllm_decode(conn, api, compat_path, remote_md, remote_bases, remote_dev=0, mem="DRAM"):
    _report(conn, _vllm_decode, api, compat_path, remote_md, remote_bases, remote_dev, mem)


def _vllm_decode(conn, api, compat_path, remote_md, remote_bases, remote_dev, mem):
    os.environ["NIXL_TELEMETRY_ENABLE"] = "1"
    nixl_agent, nixl_agent_config, nixlRemoteDisconnectError = _nixl_api(api, compat_path)
    agent = nixl_agent("decode-engine", nixl_agent_config(backends=[VLLM_BACKEND[mem]]))
    cache = _KvCache(mem, seed=0, device=_decode_device(mem))
    nmem = _nixl_mem(mem)
    reg = agent.register_memory(agent.get_reg_descs(cache.reg_tuples(), nmem))
    local = agent.prep_xfer_dlist("NIXL_INIT_AGENT",
                                  agent.get_xfer_descs(cache.block_descs(), nmem))
    remote_name = agent.add_remote_agent(remote_md)
    assert remote_name == b"prefill-engine", remote_name
    remote = agent.prep_xfer_dlist(remote_name, agent.get_xfer_descs(
        cache.block_descs(remote_bases, remote_dev), nmem))
    stats = []
    for r in range(REQUESTS):
        src_blocks = [(3 * r + k) % BLOCKS for k in range(3)]  # the prompt's blocks there
        dst_blocks = [BLOCKS - 1 - (3 * r + k) for k in range(3)]  # free blocks here
        handle = agent.make_prepped_xfer("READ", local, _desc_ids(dst_blocks), remote,
                                         _desc_ids(src_blocks), notif_msg=f"req-{r}".encode())
        state = agent.transfer(handle)
        while state != "DONE":
            assert state == "PROC", state
            state = agent.check_xfer_state(handle)
        t = agent.get_xfer_telemetry(handle)
        stats.append((t.totalBytes, t.descCount, t.backendName, t.xferDuration >= 0,
                      t.postDuration >= 0, t.startTime > 0))
        agent.release_xfer_handle(handle)
        for layer in range(LAYERS * 2):
            want = pattern(BLOCKS * BLOCK_BYTES, 11 + layer).reshape(BLOCKS, BLOCK_BYTES)
            assert (cache.host(layer)[dst_blocks] == want[src_blocks]).all(), (r, layer)
    conn.send(("ok", stats))
    # The test kills prefill now; the next transfer must raise the disconnect.
    assert conn.poll(DEADLINE * 2)
    conn.recv()
    caught = None
    end = time.monotonic() + DEADLINE
    while caught is None and time.monotonic() < end:
        try:
            handle = agent.make_prepped_xfer("READ", local, [0], remote, [0], notif_msg=b"late")
            state = agent.transfer(handle)
            while state == "PROC":
                state = agent.check_xfer_state(handle)
            agent.release_xfer_handle(handle)
            time.sleep(0.05)
        except nixlRemoteDisconnectError as e:
            caught = str(e)
    assert caught, "no nixlRemoteDisconnectError after the peer died"
    agent.release_dlist_handle(remote)
    agent.release_dlist_handle(local)
    agent.remove_remote_agent(remote_name)
    agent.deregister_memory(reg)
    return caught


# ---- NIXL's published two-peer example (target / initiator over the side channel) ----

def example_peer(conn, mode, port, use_tensor):
    _report(conn, _example_peer, mode, port, use_tensor)


def _example_peer(conn, mode, port, use_tensor):
    import torch

    from ferry_kv.nixl import nixl_agent, nixl_agent_config
    listen_port = port if mode == "target" else 0
    config = nixl_agent_config(True, True, listen_port)
    agent = nixl_agent(mode, config)
    if mode == "target":
        tensor = torch.ones((10, 16), dtype=torch.float32)
    else:
        tensor = torch.zeros((10, 16), dtype=torch.float32)
    reg_descs = agent.register_memory(tensor if use_tensor else [tensor])
    if not reg_descs:
        raise RuntimeError("Memory registration failed.")
    if mode == "target":
        conn.send(("ok", agent.get_listen_port()))  # the example's --listen-port-out
        rows = [tensor[i, :] for i in range(tensor.shape[0])]
        target_descs = agent.get_xfer_descs(rows)
        target_desc_str = agent.get_serialized_descs(target_descs)
        wait_until(lambda: agent.check_remote_metadata("initiator"), "initiator metadata")
        agent.send_notif("initiator", target_desc_str)
        wait_until(lambda: agent.check_remote_xfer_done("initiator", b"Done"), "Done_reading")
        agent.deregister_memory(reg_descs)
        return "target done"
    agent.fetch_remote_metadata("target", "127.0.0.1", port)
    agent.send_local_metadata("127.0.0.1", port)
    notifs = wait_until(lambda: agent.get_new_notifs(), "target's descriptors")
    target_descs = agent.deserialize_descs(notifs["target"][0])
    initiator_descs = agent.get_xfer_descs([tensor[i, :] for i in range(tensor.shape[0])])
    wait_until(lambda: agent.check_remote_metadata("target"), "target metadata")
    xfer_handle = agent.initialize_xfer("READ", initiator_descs, target_descs, "target",
                                        "Done_reading")
    state = agent.transfer(xfer_handle)
    assert state != "ERR"
    while state != "DONE":
        state = agent.check_xfer_state(xfer_handle)
        assert state != "ERR"
    assert torch.allclose(tensor, torch.ones((10, 16))), "data verification failed"
    agent.remove_remote_agent("target")
    agent.release_xfer_handle(xfer_handle)
    agent.invalidate_local_metadata("127.0.0.1", port)
    agent.deregister_memory(reg_descs)
    return "initiator done"


# ---- LIBFABRIC through nixl_agent: a WRITE and a READ, each notified ----

LF_HALF = 4 << 20  # bytes each way: above the striping threshold of the rails case


def lf_target(conn, params):
    _report(conn, _lf_target, params)


def _lf_wait_notif(agent, msg, seen):
    """Waits for msg from the initiator; seen collects every notification."""
    def arrived():
        for sender, msgs in agent.get_new_notifs().items():
            seen.extend((sender, m) for m in msgs)
        return ("lf-initiator", msg) in seen
    wait_until(arrived, f"notification {msg!r}")


def _lf_target(conn, params):
    import numpy as np

    from ferry_kv.nixl import nixl_agent, nixl_agent_config
    agent = nixl_agent("lf-target", nixl_agent_config(backends=[]))
    if "LIBFABRIC" not in agent.get_plugin_list():
        raise Skip("the LIBFABRIC plugin is not built (libfabric-dev missing)")
    agent.create_backend("LIBFABRIC", params)
    # The first half is read by the initiator, the second written by it.
    buf = np.concatenate([pattern(LF_HALF, 1), np.zeros(LF_HALF, dtype=np.uint8)])
    reg = agent.register_memory(agent.get_reg_descs([(buf.ctypes.data, buf.nbytes, 0, "")], "DRAM"))
    conn.send(("ok", (agent.get_agent_metadata(), buf.ctypes.data)))
    seen = []
    _lf_wait_notif(agent, b"written", seen)
    # The notification follows its data: every byte is here already.
    written = bool((buf[LF_HALF:] == pattern(LF_HALF, 2)).all())
    _lf_wait_notif(agent, b"read", seen)
    untouched = bool((buf[:LF_HALF] == pattern(LF_HALF, 1)).all())
    agent.deregister_memory(reg)
    return written, untouched, seen


def lf_initiator(conn, params, target_md, target_base):
    _report(conn, _lf_initiator, params, target_md, target_base)


def _lf_xfer(agent, op, local, remote, name, notif):
    handle = agent.initialize_xfer(op, agent.get_xfer_descs(local, "DRAM"),
                                   agent.get_xfer_descs(remote, "DRAM"), name, notif)
    state = agent.transfer(handle)
    end = time.monotonic() + DEADLINE
    while state == "PROC" and time.monotonic() < end:
        state = agent.check_xfer_state(handle)
    agent.release_xfer_handle(handle)
    return state


def _lf_initiator(conn, params, target_md, target_base):
    import numpy as np

    from ferry_kv.nixl import nixl_agent, nixl_agent_config
    agent = nixl_agent("lf-initiator", nixl_agent_config(backends=[]))
    agent.create_backend("LIBFABRIC", params)
    buf = np.concatenate([np.zeros(LF_HALF, dtype=np.uint8), pattern(LF_HALF, 2)])
    base = buf.ctypes.data
    reg = agent.register_memory(agent.get_reg_descs([(base, buf.nbytes, 0, "")], "DRAM"))
    name = agent.add_remote_agent(target_md)
    wrote = _lf_xfer(agent, "WRITE", [(base + LF_HALF, LF_HALF, 0)],
                     [(target_base + LF_HALF, LF_HALF, 0)], name, b"written")
    read = _lf_xfer(agent, "READ", [(base, LF_HALF, 0)], [(target_base, LF_HALF, 0)], name,
                    b"read")
    got = bool((buf[:LF_HALF] == pattern(LF_HALF, 1)).all())
    agent.remove_remote_agent(name)
    agent.deregister_memory(reg)
    return wrote, read, got


# ---- SHM with memory from Agent.mem_alloc (mapped by the peer) ----

def alloc_target(conn, n):
    _report(conn, _alloc_target, n)


def _alloc_target(conn, n):
    import numpy as np

    import ferry_kv as ferry
    with ferry.Agent("alloc-target", progress_thread=True, listen=True,
                     listen_host="127.0.0.1") as agent:
        shm = agent.create_backend("SHM")
        mem = agent.mem_alloc(2 * n, backend=shm)
        view = np.frombuffer(mem, np.uint8)
        view[:n] = pattern(n, 3)
        view[n:] = 0
        agent.register([(mem.addr, 2 * n, 0)], mem_type="DRAM")
        conn.send(("ok", (agent.listen_port, mem.addr)))
        got = []
        wait_until(lambda: got.extend(agent.get_notifs().get("alloc-initiator", [])) or got,
                   "the initiator's notification")
        assert got == [b"written"], got
        assert (view[n:] == pattern(n, 4)).all(), "written bytes differ"
        del view
        agent.deregister([(mem.addr, 2 * n, 0)], mem_type="DRAM")
        mem.free()
        return "done"
