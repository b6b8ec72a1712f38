# SPDX-License-Identifier: Apache-2.0
"""VRAM paths (CUDA tensors, __cuda_array_interface__, DLPack), loopback
transfers through UCX (when it has CUDA transports) and the CUDA backend,
query_memory on VRAM; skipped without a CUDA device."""
import pytest

import ferry_kv as ferry
from conftest import HAS_UCX, needs_cuda

pytestmark = needs_cuda


def test_cuda_tensor_descriptors():
    import torch
    t = torch.arange(256, dtype=torch.float32, device="cuda:0")
    dl = ferry.descs(t)
    assert dl.mem_type_name == "VRAM" and dl[0] == (t.data_ptr(), 1024, 0)
    addr, nbytes, dev_type, dev_id = ferry._ferry.dlpack_info(t)
    assert (addr, nbytes, dev_type, dev_id) == (t.data_ptr(), 1024, 2, 0)
    rows = [t[i * 64:(i + 1) * 64] for i in range(4)]
    assert len(ferry.descs(rows)) == 4 and ferry.descs(rows).mem_type_name == "VRAM"
    with pytest.raises(ValueError):
        ferry.descs([t, t.cpu()])  # mixed devices


def _has_plugin(name: str) -> bool:
    with ferry.Agent("probe-plugins") as a:
        return name in a.plugins()


@pytest.mark.parametrize("backend", ["UCX", "CUDA"])
def test_vram_loopback_transfer(backend):
    import torch
    if backend == "UCX" and not HAS_UCX:
        pytest.skip("no UCX plugin")
    if not _has_plugin(backend):
        pytest.skip(f"no {backend} plugin in the installed package")
    from ferry_kv import nixl_bindings as nb
    from ferry_kv.nixl import nixl_agent, nixl_agent_config
    with nixl_agent("gpu", nixl_agent_config(backends=[backend])) as a:
        if nb.VRAM_SEG not in a.get_backend_mem_types(backend):  # nixl_mem_t values
            pytest.skip(f"{backend} here has no CUDA transport")
        src = torch.arange(4096, dtype=torch.uint8, device="cuda:0")
        dst = torch.zeros(4096, dtype=torch.uint8, device="cuda:0")
        torch.cuda.synchronize()  # the fills are done before another stream copies
        a.register_memory([src, dst])
        a.add_remote_agent(a.get_agent_metadata())
        h = a.initialize_xfer("WRITE", a.get_xfer_descs(src), a.get_xfer_descs(dst), "gpu")
        state = a.transfer(h)
        while state == "PROC":
            state = a.check_xfer_state(h)
        torch.cuda.synchronize()
        assert torch.equal(src, dst)
        assert a.query_xfer_backend(h) == backend
        a.release_xfer_handle(h)


def test_vram_query_memory():
    """query_memory on VRAM through the CUDA backend: the registered region
    and its GPU; None outside it; files are not the CUDA backend's."""
    import torch
    if not _has_plugin("CUDA"):
        pytest.skip("no CUDA plugin in the installed package")
    from ferry_kv import nixl_bindings as nb
    from ferry_kv.nixl import nixl_agent, nixl_agent_config
    dev = torch.cuda.device_count() - 1
    with nixl_agent("gpu-query", nixl_agent_config(backends=["CUDA"])) as a:
        t = torch.zeros(1 << 16, dtype=torch.uint8, device=f"cuda:{dev}")
        other = torch.zeros(4096, dtype=torch.uint8, device=f"cuda:{dev}")
        reg = a.register_memory(t)
        p = t.data_ptr()
        res = a.query_memory([(p + 4096, 4096, dev, ""), (other.data_ptr(), 4096, dev, "")],
                             "CUDA", "VRAM")
        assert res == [{"addr": str(p), "len": str(t.numel()), "dev_id": str(dev)}, None]
        assert a.query_memory(t, "CUDA")[0]["dev_id"] == str(dev)  # a tensor as the list
        with pytest.raises(nb.nixlNotSupportedError):
            a.query_memory([(0, 1, 0, "/tmp")], "CUDA", "FILE")
        a.deregister_memory(reg)
        assert a.query_memory(t, "CUDA") == [None]
