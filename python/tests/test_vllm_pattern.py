# SPDX-License-Identifier: Apache-2.0
"""The vLLM NIXL connector's call pattern end to end, on DRAM, in two
processes: per-layer registration, per-block lists prepared once,
make_prepped_xfer with index arrays and a request-id notification, polling,
telemetry, release; the prefill side counting notifications; and
nixlRemoteDisconnectError once the prefill process is killed. Run through
ferry.nixl and through the opt-in `nixl` tree (pip-installed into a folder)."""
import os
import subprocess
import sys

import pytest

import peers
from conftest import COMPAT_DIR, join_all, needs_ucx

pytestmark = needs_ucx


@pytest.fixture(scope="module")
def compat_install(tmp_path_factory):
    """python/nixl-compat pip-installed into a folder (--target), as a user would."""
    dest = tmp_path_factory.mktemp("nixl-compat")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
           "--disable-pip-version-check", "--target", str(dest), COMPAT_DIR]
    build = os.path.join(COMPAT_DIR, "build")
    try:
        subprocess.run(cmd, check=True, timeout=120, capture_output=True)
    except subprocess.CalledProcessError as e:
        pytest.fail(f"pip install nixl-compat failed:\n{e.stderr.decode()}")
    finally:
        subprocess.run(["rm", "-rf", build, os.path.join(COMPAT_DIR, "ferry_nixl.egg-info")])
    assert os.path.isfile(dest / "nixl" / "_api.py")
    return str(dest)


def _run_pattern(spawn, api, compat_path):
    p_conn, p_child = spawn.Pipe()
    d_conn, d_child = spawn.Pipe()
    prefill = spawn.Process(target=peers.vllm_prefill, args=(p_child, api, compat_path),
                            name="prefill")
    prefill.start()
    md, bases = peers.expect(p_conn, "prefill ready")
    decode = spawn.Process(target=peers.vllm_decode, args=(d_child, api, compat_path, md, bases),
                           name="decode")
    decode.start()
    try:
        stats = peers.expect(d_conn, "decode transfers")
        want_bytes = peers.LAYERS * 2 * 3 * peers.BLOCK_BYTES
        for total, descs, backend, xfer_ok, post_ok, start_ok in stats:
            assert total == want_bytes and backend == "UCX"
            assert 1 <= descs <= peers.LAYERS * 2 * 3
            assert xfer_ok and post_ok and start_ok
        done = peers.expect(p_conn, "prefill notifications")
        assert done == [f"req-{r}".encode() for r in range(peers.REQUESTS)]
    finally:
        prefill.kill()
        prefill.join()
    d_conn.send("killed")
    caught = peers.expect(d_conn, "decode disconnect")
    assert "REMOTE_DISCONNECT" in caught
    join_all([decode])


def test_vllm_pattern_ferry_nixl(spawn):
    _run_pattern(spawn, "ferry", None)


def test_vllm_pattern_nixl_tree(spawn, compat_install):
    _run_pattern(spawn, "nixl", compat_install)
