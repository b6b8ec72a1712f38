# SPDX-License-Identifier: Apache-2.0
"""Process entry points of test_engine_calls.py: the NIXL call sequences of
vLLM's NixlConnector, SGLang's NIXL disaggregation (NixlKVManager) and
SGLang's HiCache NIXL storage, made through the `nixl` import tree with the
engines' own imports, argument forms and reads of the results.

Each entry runs in a spawned process, imports `nixl` from the nixl-compat
folder (FERRY_NIXL=1) and reports through a Pipe with peers.py's _report:
("ok", payload), ("skip", reason) or ("error", traceback).
"""
import os
import sys
import time
import uuid

from peers import DEADLINE, Skip as _Skip, _report, wait_until as _wait_until


def _use_tree(compat_path):
    """The `nixl` tree of nixl-compat, forced onto ferry."""
    sys.path.insert(0, compat_path)
    os.environ["FERRY_NIXL"] = "1"


def _recv(conn, what):
    if not conn.poll(DEADLINE):
        raise TimeoutError(f"nothing from the test ({what})")
    return conn.recv()


# ---------------------------------------------------------------------------
# vLLM: vllm/distributed/kv_transfer/kv_connector/v1/nixl_connector.py
# (NixlConnectorWorker). K and V of a layer are separate regions; one
# descriptor per block per region; desc id = region * num_blocks + block.
# ---------------------------------------------------------------------------

V_LAYERS, V_BLOCKS, V_BLOCK_TOKENS, V_HEADS, V_HEAD_DIM = 3, 8, 4, 2, 16
V_BACKENDS = ["UCX"]  # get_from_extra_config("backends", ["UCX"])
V_NUM_THREADS = 4  # get_from_extra_config("num_threads", 4)
V_WORLD_SIZE = 1


def vllm_kv_caches(seed):
    """The CPU kv caches of a worker: layer -> [2, blocks, tokens, heads, dim]."""
    import torch
    shape = (2, V_BLOCKS, V_BLOCK_TOKENS, V_HEADS, V_HEAD_DIM)
    n = 1
    for s in shape:
        n *= s
    caches = {}
    for layer in range(V_LAYERS):
        if seed is None:
            caches[f"model.layers.{layer}.self_attn"] = torch.zeros(shape, dtype=torch.float16)
        else:
            vals = (torch.arange(n, dtype=torch.int64) * 7 + seed * 1000 + layer * 131) % 2039
            caches[f"model.layers.{layer}.self_attn"] = vals.to(torch.float16).reshape(shape)
    return caches


def _vllm_imports():
    # The connector's module-level imports, in its order.
    try:
        from nixl._api import nixl_agent as NixlWrapper
        from nixl._bindings import nixlXferTelemetry
    except ImportError:
        NixlWrapper = None
        nixlXferTelemetry = None
    try:
        from nixl._api import nixl_agent_config
    except ImportError:
        nixl_agent_config = None
    assert NixlWrapper is not None, "from nixl._api import nixl_agent failed"
    assert nixlXferTelemetry is not None, "from nixl._bindings import nixlXferTelemetry failed"
    assert nixl_agent_config is not None, "from nixl._api import nixl_agent_config failed"
    return NixlWrapper, nixlXferTelemetry, nixl_agent_config


class _VllmWorker:
    """The NIXL calls of NixlConnectorWorker, in its order."""

    def __init__(self, caches):
        NixlWrapper, self.telemetry_cls, nixl_agent_config = _vllm_imports()
        non_ucx_backends = [b for b in V_BACKENDS if b != "UCX"]
        config = (
            nixl_agent_config(backends=V_BACKENDS, capture_telemetry=True)
            if len(non_ucx_backends) > 0
            else nixl_agent_config(num_threads=V_NUM_THREADS, capture_telemetry=True)
        )
        self.nixl_wrapper = NixlWrapper(str(uuid.uuid4()), config)
        self.nixl_memory_type = "DRAM"  # kv_buffer_device == "cpu"
        self.src_xfer_handles = []
        self.dst_xfer_side_handles = []
        self.remote_agents = []
        self._registered_descs = []
        self.register_kv_caches(caches)

    def register_kv_caches(self, kv_caches):
        caches_data, seen = [], []
        self.block_len_per_layer = []
        self.num_blocks = 0
        for _name, cache_or_caches in kv_caches.items():
            for cache in cache_or_caches:  # split_k_and_v
                base_addr = cache.data_ptr()
                if base_addr in seen:
                    continue
                seen.append(base_addr)
                size = cache.numel() * cache.element_size()
                self.num_blocks = cache.shape[0]
                self.block_len_per_layer.append(size // self.num_blocks)
                self.device_id = max(cache.get_device(), 0)
                caches_data.append((base_addr, size, self.device_id, ""))
        self.seen_base_addresses = seen
        self.num_regions = len(caches_data)
        descs = self.nixl_wrapper.get_reg_descs(caches_data, self.nixl_memory_type)
        self.nixl_wrapper.register_memory(descs, backends=V_BACKENDS)
        self._registered_descs.append(descs)
        self.src_handle = self.register_local_xfer_handler()
        self.agent_metadata = self.nixl_wrapper.get_agent_metadata()

    def register_local_xfer_handler(self):
        blocks_data = []
        for i, base_addr in enumerate(self.seen_base_addresses):
            for block_id in range(self.num_blocks):
                addr = base_addr + block_id * self.block_len_per_layer[i]
                blocks_data.append((addr, self.block_len_per_layer[i], self.device_id))
        descs = self.nixl_wrapper.get_xfer_descs(blocks_data, self.nixl_memory_type)
        handle = self.nixl_wrapper.prep_xfer_dlist("NIXL_INIT_AGENT", descs)
        self.src_xfer_handles.append(handle)
        return handle

    def add_remote_agent(self, agent_metadata, base_addrs, block_lens, num_blocks, device_id):
        remote_agent_name = self.nixl_wrapper.add_remote_agent(agent_metadata)
        self.remote_agents.append(remote_agent_name)
        blocks_data = []
        for i, base_addr in enumerate(base_addrs):
            local_block_len = self.block_len_per_layer[i]
            for block_id in range(num_blocks):
                addr = base_addr + block_id * block_lens[i]
                blocks_data.append((addr, local_block_len, device_id))
        descs = self.nixl_wrapper.get_xfer_descs(blocks_data, self.nixl_memory_type)
        self.dst_handle = self.nixl_wrapper.prep_xfer_dlist(remote_agent_name, descs)
        self.dst_xfer_side_handles.append(self.dst_handle)
        return remote_agent_name

    def _get_block_descs_ids(self, block_ids):
        import numpy as np
        region_ids = np.arange(self.num_regions)[:, None]
        block_ids = np.array(block_ids)[None, :]
        return (region_ids * self.num_blocks + block_ids).flatten()

    def read_blocks(self, agent_name, local_block_ids, remote_block_ids, remote_request_id):
        """_read_blocks: a handle (to poll) or None after a notification only."""
        notif_id = f"{remote_request_id}:{V_WORLD_SIZE}".encode()
        if len(local_block_ids) == 0:
            self.nixl_wrapper.send_notif(agent_name, notif_msg=notif_id)
            return None
        remote_ids = self._get_block_descs_ids(remote_block_ids)
        local_ids = self._get_block_descs_ids(local_block_ids)
        assert len(local_ids) == len(remote_ids)
        handle = self.nixl_wrapper.make_prepped_xfer(
            "READ",
            self.src_handle,
            local_ids,
            self.dst_handle,
            remote_ids,
            notif_msg=notif_id,
        )
        self.nixl_wrapper.transfer(handle)
        return handle

    def pop_done(self, handle):
        """_pop_done_transfers for one handle: telemetry dict once DONE."""
        xfer_state = self.nixl_wrapper.check_xfer_state(handle)
        if xfer_state == "DONE":
            res = self.nixl_wrapper.get_xfer_telemetry(handle)
            stats = {  # NixlKVConnectorStats.record_transfer
                "transfer_duration": res.xferDuration / 1e6,
                "post_duration": res.postDuration / 1e6,
                "bytes_transferred": res.totalBytes,
                "num_descriptors": res.descCount,
            }
            self.nixl_wrapper.release_xfer_handle(handle)
            return stats
        assert xfer_state == "PROC", f"transfer state {xfer_state!r}"
        return None

    def get_new_notifs(self):
        """_get_new_notifs: req_id -> number of consumers reported."""
        got = []
        for notifs in self.nixl_wrapper.get_new_notifs().values():
            for notif in notifs:
                req_id, tp_size = notif.decode("utf-8").rsplit(":", 1)
                got.append((req_id, int(tp_size)))
        return got

    def shutdown(self):
        for handle in self.src_xfer_handles:
            self.nixl_wrapper.release_dlist_handle(handle)
        for handle in self.dst_xfer_side_handles:
            self.nixl_wrapper.release_dlist_handle(handle)
        for agent_name in self.remote_agents:
            self.nixl_wrapper.remove_remote_agent(agent_name)
        for desc in self._registered_descs:
            self.nixl_wrapper.deregister_memory(desc)


# The requests: (request id, prefill blocks, decode blocks); the empty one is
# a full prefix-cache hit (notification only).
V_REQUESTS = [("req-a", [0, 1, 2], [7, 6, 5]), ("req-b", [5, 3], [0, 1]), ("req-c", [], [])]


def vllm_prefill(conn, compat_path):
    _report(conn, _vllm_prefill, compat_path)


def _vllm_prefill(conn, compat_path):
    _use_tree(compat_path)
    caches = vllm_kv_caches(seed=1)
    worker = _VllmWorker(caches)
    md = worker.agent_metadata
    assert isinstance(md, bytes), f"get_agent_metadata() gave {type(md).__name__}, not bytes"
    conn.send(("ok", (md, worker.seen_base_addresses, worker.block_len_per_layer,
                      worker.num_blocks, worker.device_id)))
    # The prefill side frees a request's blocks once its reader notified.
    want = {r for r, _, _ in V_REQUESTS}
    seen = {}

    def all_in():
        for req_id, tp_size in worker.get_new_notifs():
            seen[req_id] = seen.get(req_id, 0) + 1
            assert tp_size == V_WORLD_SIZE, tp_size
        return set(seen) >= want

    _wait_until(all_in, f"notifications of {sorted(want)}")
    assert all(v == 1 for v in seen.values()), seen
    conn.send(("ok", sorted(seen)))
    _recv(conn, "decode finished")
    worker.shutdown()
    return "shut down"


def vllm_decode(conn, compat_path, remote):
    _report(conn, _vllm_decode, compat_path, remote)


def _vllm_decode(conn, compat_path, remote):
    import torch
    _use_tree(compat_path)
    md, bases, block_lens, num_blocks, device_id = remote
    caches = vllm_kv_caches(seed=None)
    worker = _VllmWorker(caches)
    name = worker.add_remote_agent(md, bases, block_lens, num_blocks, device_id)
    want_src = vllm_kv_caches(seed=1)
    stats = []
    for req_id, remote_blocks, local_blocks in V_REQUESTS:
        handle = worker.read_blocks(name, local_blocks, remote_blocks, req_id)
        if handle is None:
            continue
        done = _wait_until(lambda: worker.pop_done(handle), f"READ of {req_id}")
        stats.append(done)
        for layer, cache in caches.items():
            for kv in range(2):
                got = cache[kv][local_blocks]
                exp = want_src[layer][kv][remote_blocks]
                assert torch.equal(got, exp), f"{req_id}: {layer} {'KV'[kv]} blocks differ"
    block_len = worker.block_len_per_layer[0]
    for (req_id, remote_blocks, _), st in zip([r for r in V_REQUESTS if r[1]], stats):
        assert st["bytes_transferred"] == len(remote_blocks) * block_len * worker.num_regions, st
        assert st["num_descriptors"] >= 1 and st["transfer_duration"] >= 0, st
    worker.shutdown()
    return stats


# ---------------------------------------------------------------------------
# SGLang disaggregation: python/sglang/srt/disaggregation/nixl/conn.py
# (NixlKVManager / NixlKVSender / NixlKVReceiver). Prefill WRITEs into decode.
# ---------------------------------------------------------------------------

S_LAYERS, S_SLOTS, S_ITEM = 4, 16, 512  # kv_data_ptrs per layer, item_len bytes
S_AUX_SLOTS, S_AUX_ITEM = 4, 64
S_MEM = "DRAM"  # the engine says "VRAM" for KV on GPUs; these buffers are host memory


def _sglang_imports():
    from nixl._api import nixl_agent, nixl_agent_config, nixl_thread_sync_t
    try:
        from nixl._bindings import (
            nixlBackendError,
            nixlCancelledError,
            nixlRemoteDisconnectError,
        )
        transport_errors = (nixlRemoteDisconnectError, nixlBackendError, nixlCancelledError)
    except ImportError:
        transport_errors = None
    assert transport_errors is not None, (
        "from nixl._bindings import nixlBackendError, nixlCancelledError, "
        "nixlRemoteDisconnectError failed")
    for e in transport_errors:
        assert issubclass(e, Exception), e
    return nixl_agent, nixl_agent_config, nixl_thread_sync_t


def _sglang_buffers(seed):
    import numpy as np
    from peers import pattern
    kv = [pattern(S_SLOTS * S_ITEM, seed + i) if seed else
          np.zeros(S_SLOTS * S_ITEM, np.uint8) for i in range(S_LAYERS)]
    aux = pattern(S_AUX_SLOTS * S_AUX_ITEM, seed + 99) if seed else \
        np.zeros(S_AUX_SLOTS * S_AUX_ITEM, np.uint8)
    return kv, aux


class _SglangManager:
    """NixlKVManager.__init__ + register_buffer_to_engine."""

    def __init__(self, prefill, kv, aux):
        import json
        nixl_agent, nixl_agent_config, nixl_thread_sync_t = _sglang_imports()
        backend = "UCX"  # SGLANG_DISAGGREGATION_NIXL_BACKEND's default
        num_threads = 8 if prefill else 0
        backend_params = json.loads("{}")  # SGLANG_DISAGGREGATION_NIXL_BACKEND_PARAMS
        agent_config = nixl_agent_config(
            backends=[],
            num_threads=num_threads,
            sync_mode=nixl_thread_sync_t.NIXL_THREAD_SYNC_STRICT,
        )
        self.agent = nixl_agent(str(uuid.uuid4()), agent_config)
        if num_threads > 0:
            if backend == "UCX" or backend == "OBJ":
                backend_params.setdefault("num_threads", str(num_threads))
        self.agent.create_backend(backend, backend_params)
        available_plugins = self.agent.get_plugin_list()
        if backend not in available_plugins:
            raise ValueError(f"NIXL backend '{backend}' not found. Available: {available_plugins}")
        self.kv, self.aux = kv, aux
        self.kv_data_ptrs = [a.ctypes.data for a in kv]
        self.kv_data_lens = [a.nbytes for a in kv]
        self.kv_item_lens = [S_ITEM] * S_LAYERS
        self.aux_data_ptrs = [aux.ctypes.data]
        self.aux_item_lens = [S_AUX_ITEM]
        self.gpu_id = 0
        kv_addrs = [(p, n, self.gpu_id, "") for p, n in zip(self.kv_data_ptrs, self.kv_data_lens)]
        self.kv_descs = self.agent.register_memory(kv_addrs, S_MEM)
        if not self.kv_descs:
            raise Exception("NIXL memory registration failed for kv tensors")
        aux_addrs = [(aux.ctypes.data, aux.nbytes, 0, "")]
        self.aux_descs = self.agent.register_memory(aux_addrs, "DRAM")
        if not self.aux_descs:
            raise Exception("NIXL memory registration failed for aux tensors")
        self.prep_handles = {}


def _sglang_prep(mgr, peer_name, kv_ptrs, gpu_id):
    """_init_equal_tp_prep_handle: an (N, 3) uint64 array of every slot of every layer."""
    import numpy as np
    arrays = []
    kv_ptrs_u64 = np.array(kv_ptrs, dtype=np.uint64)
    for base_ptr, item_len, data_len in zip(kv_ptrs_u64, mgr.kv_item_lens, mgr.kv_data_lens):
        n = data_len // item_len
        addrs = np.arange(n, dtype=np.uint64) * np.uint64(item_len) + base_ptr
        arrays.append(np.column_stack([addrs, np.full(n, item_len, dtype=np.uint64),
                                       np.full(n, gpu_id, dtype=np.uint64)]))
    mgr.prep_handles[peer_name] = mgr.agent.prep_xfer_dlist(peer_name, np.vstack(arrays), S_MEM)
    assert mgr.prep_handles[peer_name] is not None


def _repeat_over_layers(indices, num_layers, num_slots):
    import numpy as np
    idx = np.asarray(indices, dtype=np.int32)
    return np.concatenate([idx + layer * num_slots for layer in range(num_layers)]).astype(np.int32)


# Room 1: chunk 0 through the prepped path, chunk 1 (last) through send_kvcache
# (get_xfer_descs + initialize_xfer), then aux. Room 2: no KV pages (decode
# cache hit): aux_nokv as a notification only.
S_ROOM1, S_ROOM2 = 1001, 1002
S_CHUNK0 = ([0, 1, 2, 5], [9, 10, 11, 3])  # prefill slots, decode slots
S_CHUNK1 = ([6, 7, 12], [4, 5, 14])
S_AUX = (1, 2)  # prefill aux index, decode aux index


def sglang_decode(conn, compat_path):
    _report(conn, _sglang_decode, compat_path)


def _sglang_decode(conn, compat_path):
    import numpy as np
    _use_tree(compat_path)
    kv, aux = _sglang_buffers(None)
    mgr = _SglangManager(False, kv, aux)
    name = mgr.agent.name
    # _register_kv_args: the agent's name and metadata and the buffers' addresses.
    conn.send(("ok", (name.encode("ascii"), mgr.agent.get_agent_metadata(),
                      mgr.kv_data_ptrs, mgr.aux_data_ptrs, mgr.gpu_id)))
    prefill_name = _recv(conn, "prefill agent name")
    # update_transfer_status, polled by NixlKVReceiver.poll
    status = {S_ROOM1: {"kvs": set(), "expected": None, "aux": False},
              S_ROOM2: {"kvs": set(), "expected": None, "aux": False}}
    senders = set()

    def update_transfer_status():
        notif_map = mgr.agent.get_new_notifs()
        for peer_name, messages in notif_map.items():
            senders.add(peer_name)
            for msg in messages:
                components = msg.decode("ascii").split("_")
                room = int(components[0])
                if components[1] == "kv":
                    chunk_id = int(components[2])
                    is_last = bool(int(components[3]))
                    status[room]["kvs"].add(chunk_id)
                    if is_last:
                        status[room]["expected"] = chunk_id + 1
                elif components[1] == "aux":
                    status[room]["aux"] = True
                    if len(components) > 2 and components[2] == "nokv":
                        status[room]["expected"] = 0
        return all(s["expected"] is not None and len(s["kvs"]) == s["expected"] and s["aux"]
                   for s in status.values())

    _wait_until(update_transfer_status, "kv and aux notifications of both rooms")
    assert senders == {prefill_name}, (senders, prefill_name)
    src, src_aux = _sglang_buffers(3)
    for layer in range(S_LAYERS):
        got = kv[layer].reshape(S_SLOTS, S_ITEM)
        exp = src[layer].reshape(S_SLOTS, S_ITEM)
        for p_slots, d_slots in (S_CHUNK0, S_CHUNK1):
            assert (got[d_slots] == exp[p_slots]).all(), f"layer {layer} slots differ"
        untouched = sorted(set(range(S_SLOTS)) - set(S_CHUNK0[1]) - set(S_CHUNK1[1]))
        assert not got[untouched].any(), f"layer {layer}: bytes written outside the slots"
    a = aux.reshape(S_AUX_SLOTS, S_AUX_ITEM)
    assert (a[S_AUX[1]] == src_aux.reshape(S_AUX_SLOTS, S_AUX_ITEM)[S_AUX[0]]).all(), "aux differs"
    assert not np.delete(a, S_AUX[1], axis=0).any(), "aux written outside its slot"
    return "verified"


def sglang_prefill(conn, compat_path, decode_info):
    _report(conn, _sglang_prefill, compat_path, decode_info)


def _sglang_prefill(conn, compat_path, decode_info):
    _use_tree(compat_path)
    kv, aux = _sglang_buffers(3)
    mgr = _SglangManager(True, kv, aux)
    agent_name_b, agent_metadata, dst_kv_ptrs, dst_aux_ptrs, dst_gpu_id = decode_info
    peer_name = agent_name_b.decode("ascii")  # KVArgsRegisterInfo.from_zmq
    conn.send(("ok", mgr.agent.name))
    # _add_remote_peer
    mgr.agent.add_remote_agent(agent_metadata)
    # _init_prep_handles_for_peer (equal TP): the shared src list, then the peer's.
    if "" not in mgr.prep_handles:
        _sglang_prep(mgr, "", mgr.kv_data_ptrs, mgr.gpu_id)
    _sglang_prep(mgr, peer_name, dst_kv_ptrs, dst_gpu_id)
    handles = []
    engine_rank = 0
    # Chunk 0 of room 1: send_kvcache's prepped path.
    p_idx, d_idx = S_CHUNK0
    notif = f"{S_ROOM1}_kv_0_0_{engine_rank}"
    src_indices = _repeat_over_layers(p_idx, S_LAYERS, S_SLOTS)
    dst_indices = _repeat_over_layers(d_idx, S_LAYERS, S_SLOTS)
    xfer_handle = mgr.agent.make_prepped_xfer(
        "WRITE", mgr.prep_handles[""], src_indices, mgr.prep_handles[peer_name], dst_indices,
        notif.encode("ascii"),
    )
    if not xfer_handle:
        raise Exception("KVSender failed to create prepped transfer")
    state = mgr.agent.transfer(xfer_handle)
    if state == "ERR":
        raise Exception("KVSender failed to post prepped transfer")
    handles.append(xfer_handle)
    # Chunk 1 (last) of room 1: send_kvcache's descriptor path.
    p_idx, d_idx = S_CHUNK1
    notif = f"{S_ROOM1}_kv_1_1_{engine_rank}"
    # group_concurrent_contiguous: runs that are contiguous on both sides
    pairs = list(zip(p_idx, d_idx))
    runs = [[pairs[0]]]
    for pr in pairs[1:]:
        last = runs[-1][-1]
        if pr[0] == last[0] + 1 and pr[1] == last[1] + 1:
            runs[-1].append(pr)
        else:
            runs.append([pr])
    src_addrs, dst_addrs = [], []
    for layer_id in range(S_LAYERS):
        src_ptr, dst_ptr = mgr.kv_data_ptrs[layer_id], dst_kv_ptrs[layer_id]
        item_len = mgr.kv_item_lens[layer_id]
        for run in runs:
            src_addrs.append((src_ptr + int(run[0][0]) * item_len, item_len * len(run), mgr.gpu_id))
            dst_addrs.append((dst_ptr + int(run[0][1]) * item_len, item_len * len(run), dst_gpu_id))
    src_descs = mgr.agent.get_xfer_descs(src_addrs, S_MEM)
    dst_descs = mgr.agent.get_xfer_descs(dst_addrs, S_MEM)
    xfer_handle = mgr.agent.initialize_xfer("WRITE", src_descs, dst_descs, peer_name,
                                            notif.encode("ascii"))
    if not xfer_handle:
        raise Exception("KVSender failed to create transfer")
    state = mgr.agent.transfer(xfer_handle)
    if state == "ERR":
        raise Exception("KVSender failed to post transfer")
    handles.append(xfer_handle)
    # send_aux of room 1
    aux_item_len = mgr.aux_item_lens[0]
    prefill_aux_addr = mgr.aux_data_ptrs[0] + S_AUX[0] * aux_item_len
    decode_aux_addr = dst_aux_ptrs[0] + S_AUX[1] * aux_item_len
    src_descs = mgr.agent.get_xfer_descs([(prefill_aux_addr, aux_item_len, 0)], "DRAM")
    dst_descs = mgr.agent.get_xfer_descs([(decode_aux_addr, aux_item_len, 0)], "DRAM")
    xfer_handle = mgr.agent.initialize_xfer("WRITE", src_descs, dst_descs, peer_name,
                                            f"{S_ROOM1}_aux".encode("ascii"))
    if not xfer_handle:
        raise Exception("KVSender failed to create transfer")
    if mgr.agent.transfer(xfer_handle) == "ERR":
        raise Exception("KVSender failed to post transfer")
    handles.append(xfer_handle)
    # Room 2: no KV pages, a non-owner rank's aux marker as a notification only.
    mgr.agent.send_notif(peer_name, f"{S_ROOM2}_aux_nokv_{engine_rank}".encode("ascii"))
    # transfer_worker's wait, then NixlKVSender.poll
    def polled():
        states = [mgr.agent.check_xfer_state(h) for h in handles]
        if any(s == "ERR" for s in states):
            raise RuntimeError("NIXL transfer encountered ERR")
        return all(s == "DONE" for s in states)
    _wait_until(polled, "the room's transfers")
    _recv(conn, "decode verified")
    for h in handles:
        mgr.agent.release_xfer_handle(h)
    for h in mgr.prep_handles.values():
        mgr.agent.release_dlist_handle(h)
    mgr.agent.remove_remote_agent(peer_name)
    mgr.agent.deregister_memory(mgr.kv_descs)
    mgr.agent.deregister_memory(mgr.aux_descs)
    return "sent"


# ---------------------------------------------------------------------------
# SGLang HiCache: python/sglang/srt/mem_cache/storage/nixl/{hicache_nixl,nixl_utils}.py
# (HiCacheNixl with NixlBackendSelection("auto"), NixlRegistration, NixlFileManager).
# ---------------------------------------------------------------------------

FILE_PLUGINS = ["3FS", "POSIX", "GDS_MT", "GDS"]
OBJ_PLUGINS = ["OBJ"]


def hicache(conn, compat_path, base_dir):
    _report(conn, _hicache, compat_path, base_dir)


def _hicache(conn, compat_path, base_dir):
    import torch
    _use_tree(compat_path)
    from nixl._api import nixl_agent, nixl_agent_config
    agent_config = nixl_agent_config(backends=[])
    agent_name = f"hicache_nixl_{str(uuid.uuid4())}"
    agent = nixl_agent(agent_name, agent_config)

    # NixlBackendSelection("auto").create_backend
    plugin_list = agent.get_plugin_list()
    backend_name = None
    for plugin in FILE_PLUGINS:
        if plugin in plugin_list:
            backend_name = plugin
            break
    if not backend_name:
        for plugin in OBJ_PLUGINS:
            if plugin in plugin_list:
                backend_name = plugin
                break
    assert all(isinstance(p, str) for p in plugin_list), plugin_list
    if backend_name not in plugin_list:
        raise _Skip(
            "ferry has no NIXL file or object storage backend: HiCache's "
            f"NixlBackendSelection('auto') looks for {'/'.join(FILE_PLUGINS)} (FILE) and then "
            f"{'/'.join(OBJ_PLUGINS)} (OBJ) in get_plugin_list(), which here is {plugin_list}")
    if backend_name in OBJ_PLUGINS:
        raise _Skip(f"only the object backend {backend_name} is available; this test "
                    "walks HiCache's FILE path (needs AWS_DEFAULT_BUCKET for OBJ)")
    agent.create_backend(backend_name)
    mem_type = "FILE"

    # Host buffers (after the backend exists, as in HiCache), as
    # HiCacheNixl.register_buffers registers them: a list of
    # tensors (mem_type None) and a list of (addr, len) tuples as DRAM.
    values = [torch.arange(256, dtype=torch.float32) * (k + 1) for k in range(3)]
    reg_descs = agent.get_reg_descs(values, None)
    assert reg_descs is not None, "get_reg_descs(list of tensors, None) gave None"
    assert agent.register_memory(reg_descs), "register_memory of tensors gave nothing"
    pool = torch.zeros(3 * 1024, dtype=torch.uint8)
    tuples = [(pool.data_ptr() + i * 1024, 1024, 0, "") for i in range(3)]
    pool_descs = agent.get_reg_descs(tuples, "DRAM")
    assert pool_descs is not None and agent.register_memory(pool_descs)


    def files_to_nixl_tuples(paths):
        return [(0, 0, os.open(p, os.O_RDWR), p) for p in paths]

    def register(items, mtype):
        descs = agent.get_reg_descs(items, mtype)
        assert descs is not None
        return agent.register_memory(descs)

    def execute(buffers, paths, direction):
        tuples = files_to_nixl_tuples(paths)
        assert tuples and register(tuples, mem_type), "file registration failed"
        sizes = [t.element_size() * t.numel() for t in buffers]
        storage_tuples = [(x[0], s, x[2]) for x, s in zip(tuples, sizes)]
        host_descs = agent.get_xfer_descs(buffers)
        storage_descs = agent.get_xfer_descs(storage_tuples, mem_type)
        assert host_descs is not None and storage_descs is not None
        xfer_req = agent.initialize_xfer(direction, host_descs, storage_descs, agent_name)
        state = agent.transfer(xfer_req)
        end = time.monotonic() + DEADLINE
        while state != "DONE":
            state = agent.check_xfer_state(xfer_req)
            assert state != "ERR", "transfer failed"
            assert time.monotonic() < end, "transfer did not finish"
            time.sleep(0.0001)
        agent.release_xfer_handle(xfer_req)
        for t in tuples:
            os.close(t[2])

    keys = [f"page-{k}_model_0_1" for k in range(3)]
    paths = [os.path.join(base_dir, k) for k in keys]
    for p in paths:  # batch_set: a new file per set
        os.makedirs(os.path.dirname(p), exist_ok=True)
        open(p, "wb").close()
    execute(values, paths, "WRITE")
    for p, v in zip(paths, values):
        assert os.path.getsize(p) == v.numel() * v.element_size(), p
    back = [torch.zeros_like(v) for v in values]
    assert register(back, None)
    execute(back, paths, "READ")
    for b, v in zip(back, values):
        assert torch.equal(b, v), "read back differs"
    # exists(): query_memory with create_query_tuples' (0, 0, 0, path)
    res = agent.query_memory([(0, 0, 0, paths[0])], backend_name, mem_type=mem_type)
    assert res[0] is not None, "query_memory: an existing file reported missing"
    res = agent.query_memory([(0, 0, 0, os.path.join(base_dir, "absent"))], backend_name,
                             mem_type=mem_type)
    assert res[0] is None, "query_memory: a missing file reported present"
    return backend_name
