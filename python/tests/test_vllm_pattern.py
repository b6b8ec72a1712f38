# SPDX-License-Identifier: Apache-2.0
"""The vLLM NIXL connector's call pattern end to end, in two processes:
per-layer registration, per-block lists prepared once, make_prepped_xfer
with index arrays and a request-id notification, polling, telemetry,
release; the prefill side counting notifications; and
nixlRemoteDisconnectError once the prefill process is killed. Run through
ferry.nixl and through the opt-in `nixl` tree (pip-installed into a folder),
on DRAM (numpy regions, backends=["UCX"]) and on VRAM (CUDA tensors,
backends=["CUDA"]: the CUDA backend's IPC between processes of one host;
skipped without a CUDA device)."""
import os
import subprocess
import sys

import pytest

import peers
from conftest import COMPAT_DIR, HAS_CUDA, HAS_UCX, join_all

# The memory kinds the pattern runs on: DRAM over UCX, VRAM over CUDA, and
# VRAM over CUDA on the mock driver of the build folder (any host).
MOCK_CUDA = os.path.join(os.environ.get("FERRY_BUILD_DIR", "/nonexistent"), "tests", "gpu",
                         "libfy_mockcuda.so")
MEMS = [
    pytest.param("DRAM", marks=pytest.mark.skipif(
        not HAS_UCX, reason="UCX plugin not built (libucx-dev missing)")),
    pytest.param("VRAM", marks=pytest.mark.skipif(
        not HAS_CUDA, reason="VRAM pattern needs a CUDA device (torch.cuda.is_available() "
        "is False here)")),
    pytest.param("VRAM-mock", marks=pytest.mark.skipif(
        not os.path.isfile(MOCK_CUDA), reason="no mock CUDA driver (needs FERRY_BUILD_DIR with "
        "tests/gpu built)")),
]


@pytest.fixture(autouse=True)
def _cuda_plugin(request, monkeypatch):
    """The VRAM runs need the CUDA plugin in the installed package; the mock
    runs point the peers (spawned: they inherit the environment) at the mock."""
    callspec = getattr(request.node, "callspec", None)
    mem = callspec.params.get("mem", "") if callspec else ""
    if mem.startswith("VRAM"):
        import ferry_kv as ferry
        with ferry.Agent("probe-cuda") as a:
            if "CUDA" not in a.plugins():
                pytest.skip("the CUDA plugin is not in the installed ferry package")
    if mem == "VRAM-mock":
        monkeypatch.setenv("FERRY_CUDA_LIB", MOCK_CUDA)


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
        subprocess.run(["rm", "-rf", build, os.path.join(COMPAT_DIR, "ferry_nixl.egg-info"),
                        os.path.join(COMPAT_DIR, "ferry_kv_nixl.egg-info")])
    for pkg in ("nixl", "nixl_cu12", "nixl_cu13"):
        assert os.path.isfile(dest / pkg / "__init__.py")
    return str(dest)


def _run_pattern(spawn, api, compat_path, mem):
    p_conn, p_child = spawn.Pipe()
    d_conn, d_child = spawn.Pipe()
    prefill = spawn.Process(target=peers.vllm_prefill, args=(p_child, api, compat_path, mem),
                            name="prefill")
    prefill.start()
    md, bases, dev = peers.expect(p_conn, "prefill ready")
    decode = spawn.Process(target=peers.vllm_decode,
                           args=(d_child, api, compat_path, md, bases, dev, mem), name="decode")
    decode.start()
    try:
        stats = peers.expect(d_conn, "decode transfers")
        want_bytes = peers.LAYERS * 2 * 3 * peers.BLOCK_BYTES
        for total, descs, backend, xfer_ok, post_ok, start_ok in stats:
            assert total == want_bytes and backend == peers.VLLM_BACKEND[mem]
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


@pytest.mark.parametrize("mem", MEMS)
def test_vllm_pattern_ferry_nixl(spawn, mem):
    _run_pattern(spawn, "ferry", None, mem)


@pytest.mark.parametrize("mem", MEMS)
def test_vllm_pattern_nixl_tree(spawn, compat_install, mem):
    _run_pattern(spawn, "nixl", compat_install, mem)
