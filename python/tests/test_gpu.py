# SPDX-License-Identifier: Apache-2.0
"""VRAM paths (CUDA tensors, __cuda_array_interface__, DLPack); skipped
without a CUDA device."""
import pytest

import ferry
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


def test_vram_loopback_transfer():
    import torch
    if not HAS_UCX:
        pytest.skip("no UCX plugin")
    from ferry.nixl import nixl_agent, nixl_agent_config
    with nixl_agent("gpu", nixl_agent_config(backends=["UCX"])) as a:
        if "VRAM_SEG" not in a.get_backend_mem_types("UCX"):
            pytest.skip("UCX here has no CUDA transport")
        src = torch.arange(4096, dtype=torch.uint8, device="cuda:0")
        dst = torch.zeros(4096, dtype=torch.uint8, device="cuda:0")
        a.register_memory([src, dst])
        a.add_remote_agent(a.get_agent_metadata())
        h = a.initialize_xfer("WRITE", a.get_xfer_descs(src), a.get_xfer_descs(dst), "gpu")
        state = a.transfer(h)
        while state == "PROC":
            state = a.check_xfer_state(h)
        torch.cuda.synchronize()
        assert torch.equal(src, dst)
