# SPDX-License-Identifier: Apache-2.0
"""The engines' NIXL call sequences through ferry's `nixl` tree, with the
engines' own imports, argument forms and reads of the results:

- vLLM's NixlConnector (NixlConnectorWorker): nixl_agent(uuid, config with
  num_threads and capture_telemetry), per-region registration from
  (addr, len, dev, "") tuples, per-block lists prepared with
  "NIXL_INIT_AGENT" and the remote name add_remote_agent returned,
  make_prepped_xfer with index arrays and notif_msg=, transfer, polling
  check_xfer_state, get_xfer_telemetry, send_notif for a full prefix hit,
  get_new_notifs on the prefill side, and the shutdown releases; two
  processes (prefill, decode), CPU tensors over UCX.
- SGLang's NIXL disaggregation (NixlKVManager): nixl_agent_config with
  backends=[] and sync_mode STRICT, create_backend with its parameters,
  registration of KV and aux, lists prepared from (N, 3) uint64 arrays with
  the local name "", make_prepped_xfer and initialize_xfer WRITEs with
  positional notifications, send_notif, polling, the decode side parsing
  get_new_notifs; two processes.
- SGLang's HiCache NIXL storage (HiCacheNixl): tensor and DRAM tuple
  registration, backend selection among the file/object plugins, then FILE
  registration, WRITE/READ through initialize_xfer to the agent itself and
  query_memory; skipped when no file backend exists.

Every peer runs in a spawned process with `nixl` imported from nixl-compat
(FERRY_NIXL=1) and checks the bytes that moved.
"""
import pytest

import engine_peers
from conftest import COMPAT_DIR, HAS_UCX, join_all

needs_ucx = pytest.mark.skipif(not HAS_UCX, reason="UCX plugin not built (libucx-dev missing)")
WAIT = 25.0  # seconds the test waits for any one message of a peer


def _expect(conn, what):
    if not conn.poll(WAIT):
        raise TimeoutError(f"peer sent nothing ({what})")
    kind, payload = conn.recv()
    if kind == "error":
        raise AssertionError(f"peer failed ({what}):\n{payload}")
    if kind == "skip":
        pytest.skip(payload)
    return payload


def _stop(procs):
    for p in procs:
        if p.is_alive():
            p.kill()
        p.join(5)


@needs_ucx
def test_vllm_nixl_connector_calls(spawn):
    p_conn, p_child = spawn.Pipe()
    d_conn, d_child = spawn.Pipe()
    prefill = spawn.Process(target=engine_peers.vllm_prefill, args=(p_child, COMPAT_DIR),
                            name="vllm-prefill")
    prefill.start()
    procs = [prefill]
    try:
        remote = _expect(p_conn, "prefill registered")
        decode = spawn.Process(target=engine_peers.vllm_decode,
                               args=(d_child, COMPAT_DIR, remote), name="vllm-decode")
        decode.start()
        procs.append(decode)
        stats = _expect(d_conn, "decode read and verified")
        assert len(stats) == 2
        done = _expect(p_conn, "prefill notifications")
        assert done == sorted(r for r, _, _ in engine_peers.V_REQUESTS)
        p_conn.send("bye")
        assert _expect(p_conn, "prefill shutdown") == "shut down"
        join_all(procs, timeout=WAIT)
    finally:
        _stop(procs)


@needs_ucx
def test_sglang_nixl_disagg_calls(spawn):
    d_conn, d_child = spawn.Pipe()
    p_conn, p_child = spawn.Pipe()
    decode = spawn.Process(target=engine_peers.sglang_decode, args=(d_child, COMPAT_DIR),
                           name="sglang-decode")
    decode.start()
    procs = [decode]
    try:
        info = _expect(d_conn, "decode registered")
        prefill = spawn.Process(target=engine_peers.sglang_prefill,
                                args=(p_child, COMPAT_DIR, info), name="sglang-prefill")
        prefill.start()
        procs.append(prefill)
        prefill_name = _expect(p_conn, "prefill agent name")
        d_conn.send(prefill_name)
        assert _expect(d_conn, "decode verified") == "verified"
        p_conn.send("verified")
        assert _expect(p_conn, "prefill done") == "sent"
        join_all(procs, timeout=WAIT)
    finally:
        _stop(procs)


def test_sglang_hicache_nixl_calls(spawn, tmp_path):
    conn, child = spawn.Pipe()
    proc = spawn.Process(target=engine_peers.hicache, args=(child, COMPAT_DIR, str(tmp_path)),
                         name="hicache")
    proc.start()
    try:
        backend = _expect(conn, "hicache walk")
        assert backend in engine_peers.FILE_PLUGINS
        join_all([proc], timeout=WAIT)
    finally:
        _stop([proc])
