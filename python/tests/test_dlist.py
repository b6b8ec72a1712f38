# SPDX-License-Identifier: Apache-2.0
"""ferry.DList and the descriptor conversions (tuples, arrays, tensors)."""
import pickle

import numpy as np
import pytest

import ferry_kv as ferry
from ferry_kv.nixl_bindings import DRAM_SEG, VRAM_SEG, nixl_mem_t, nixlRegDList, nixlXferDList


def test_from_tuples_and_metadata():
    dl = ferry.DList("DRAM", [(4096, 100, 0), (8192, 200, 1, b"meta"), (1 << 40, 1, 2, "path")])
    assert len(dl) == 3 and dl.mem_type == ferry.MEM_DRAM and dl.mem_type_name == "DRAM"
    assert dl[0] == (4096, 100, 0)
    assert dl[1] == (8192, 200, 1, b"meta")
    assert dl[-1] == (1 << 40, 1, 2, b"path")
    assert dl.get(0, meta=True) == (4096, 100, 0, b"")
    assert list(dl)[0] == (4096, 100, 0)
    assert not dl.is_strided
    assert "3 descriptors" in repr(dl)


@pytest.mark.parametrize("mem,want", [("DRAM", 0), ("VRAM", 1), ("FILE", 2), ("BLOCK", 3),
                                      ("OBJ", 4), ("cpu", 0), ("cuda", 1), ("dram", 0), (1, 1),
                                      (VRAM_SEG, 1)])
def test_memory_types(mem, want):
    assert ferry.DList(mem).mem_type == want
    assert ferry.mem_type_parse(mem) == want


def test_unknown_memory_type():
    with pytest.raises(KeyError):
        ferry.DList("HBM")
    with pytest.raises(ValueError):
        ferry.DList(9)
    with pytest.raises(TypeError):
        ferry.DList(1.5)
    assert ferry.mem_type_name(2) == "FILE"


@pytest.mark.parametrize("dtype", [np.uint64, np.int64, np.int32, np.uint32, np.int16])
def test_from_numpy(dtype):
    rows = np.array([[4096 + 64 * i, 64, i % 3] for i in range(100)]).astype(dtype) \
        if dtype != np.int16 else np.array([[16 * i + 16, 16, 0] for i in range(100)], dtype)
    dl = ferry.DList("DRAM", rows)
    assert len(dl) == 100
    assert dl[7] == tuple(int(v) for v in rows[7])
    assert np.array_equal(np.frombuffer(dl.to_bytes(), dtype=np.uint64).reshape(-1, 3),
                          rows.astype(np.uint64))


def test_from_numpy_views():
    base = np.array([[4096 * (i + 1), 4096, 0] for i in range(10)], dtype=np.uint64)
    dl = ferry.DList("DRAM", base[::2])  # strided rows
    assert [d[0] for d in dl] == [4096 * (i + 1) for i in range(0, 10, 2)]
    fortran = np.asfortranarray(base)
    assert ferry.DList("DRAM", fortran) == ferry.DList("DRAM", base)


@pytest.mark.parametrize("bad,exc", [
    ([(1, 2)], ValueError), ([(1, 2, 3, 4, 5)], ValueError), ([1, 2, 3], TypeError),
    ([(-1, 2, 3)], ValueError), ([(1, 0, 0)], ferry.InvalidParamError),
    ([("a", 2, 3)], TypeError), ([(1, 2, 3, 4.5)], TypeError), (object(), TypeError),
])
def test_bad_tuples(bad, exc):
    with pytest.raises(exc):
        ferry.DList("DRAM", bad)


@pytest.mark.parametrize("arr", [np.zeros((4, 2), np.uint64), np.zeros((4,), np.uint64),
                                 np.zeros((2, 3), np.float64), np.array([[-1, 1, 0]])])
def test_bad_arrays(arr):
    # A negative int64 is passed on as is (one copy of the whole array); the
    # library then refuses the wrapped-around descriptor.
    with pytest.raises((ValueError, TypeError, ferry.InvalidParamError)):
        ferry.DList("DRAM", arr)


def test_capacity_and_editing():
    dl = ferry.DList("DRAM", 16)
    assert len(dl) == 0 and not dl
    dl.append((4096, 10, 0))
    dl.extend([(8192, 10, 0), (12288, 10, 0, b"m")])
    dl.extend(np.array([[16384, 10, 0]], np.uint64))
    assert len(dl) == 4 and dl.index((8192, 10, 0)) == 1
    with pytest.raises(ValueError):
        dl.index((1, 1, 1))
    dl[1] = (9000, 11, 1)
    assert dl[1] == (9000, 11, 1) and dl[2] == (12288, 10, 0, b"m")
    del dl[0]
    assert dl[0] == (9000, 11, 1) and len(dl) == 3
    dl.remove_at(-1)
    assert len(dl) == 2
    with pytest.raises(IndexError):
        dl[5]
    with pytest.raises(IndexError):
        dl.remove_at(7)
    dl.clear()
    assert len(dl) == 0 and dl.mem_type == 0


def test_copy_equality_and_serialisation():
    dl = ferry.DList("VRAM", [(4096, 10, 1, b"x"), (8192, 20, 1)])
    assert dl == dl.copy() and dl != dl.copy(with_meta=False)
    assert dl != ferry.DList("DRAM", [(4096, 10, 1, b"x"), (8192, 20, 1)])
    data = dl.serialize()
    assert isinstance(data, bytes) and ferry.DList.deserialize(data) == dl
    assert pickle.loads(pickle.dumps(dl)) == dl
    with pytest.raises(ferry.BadMetadataError):
        ferry.DList.deserialize(b"garbage")
    with pytest.raises(TypeError):
        hash(dl)
    assert dl.__eq__(5) is NotImplemented


def test_strided():
    dl = ferry.DList.strided("DRAM", 4096, 1024, 8, 512, 0)
    assert len(dl) == 8 and dl.is_strided and dl[3] == (4096 + 3 * 1024, 512, 0)
    with pytest.raises(ferry.NotAllowedError):
        dl.append((1, 1, 1))
    assert ferry.DList.deserialize(dl.serialize())[7] == dl[7]
    with pytest.raises(ValueError):
        ferry.DList.strided("DRAM", 0, 1, -1, 1)


def test_nixl_list_classes():
    reg = nixlRegDList(DRAM_SEG, [(4096, 64, 0, b"meta"), (8192, 64, 0, "")])
    assert reg.getType() is nixl_mem_t.DRAM_SEG and reg.descCount() == 2 and not reg.isEmpty()
    assert reg[1] == (8192, 64, 0, b"")  # NIXL's reg lists always give the meta
    xfer = reg.trim()
    assert type(xfer) is nixlXferDList and xfer[0] == (4096, 64, 0)
    xfer.addDesc((12288, 64, 0))
    xfer.remDesc(0)
    assert xfer.descCount() == 2
    empty = nixlXferDList(DRAM_SEG, 4)
    assert empty.isEmpty()
    arr = nixlXferDList(DRAM_SEG, np.array([[4096, 1, 0]], dtype=np.int64))
    assert arr[0] == (4096, 1, 0)
    back = pickle.loads(pickle.dumps(reg))
    assert type(back) is nixlRegDList and back == reg
    reg.print()


def test_descs_from_tensors():
    torch = pytest.importorskip("torch")
    t = torch.arange(64, dtype=torch.float32)
    dl = ferry.descs(t)
    assert dl[0] == (t.data_ptr(), 256, 0) and dl.mem_type_name == "DRAM"
    rows = [t[i * 16:(i + 1) * 16] for i in range(4)]
    dl = ferry.descs(rows)
    assert [d[0] for d in dl] == [r.data_ptr() for r in rows] and all(d[1] == 64 for d in dl)
    with pytest.raises(ValueError):
        ferry.descs(t.reshape(8, 8).t())  # not contiguous


def test_descs_from_dlpack_and_buffers():
    arr = np.arange(32, dtype=np.float64)

    class Exporter:  # only __dlpack__, like a foreign tensor type
        def __dlpack__(self, stream=None):
            return arr.__dlpack__()

        def __dlpack_device__(self):
            return arr.__dlpack_device__()

    if not hasattr(arr, "__dlpack__"):
        pytest.skip("numpy without DLPack")
    dl = ferry.descs(Exporter())
    assert dl[0] == (arr.ctypes.data, 256, 0) and dl.mem_type_name == "DRAM"
    assert ferry._ferry.dlpack_info(arr) == (arr.ctypes.data, 256, 1, 0)
    with pytest.raises(ValueError):
        ferry._ferry.dlpack_info(np.arange(10)[::2])


def test_descs_from_cuda_array_interface_object():
    class FakeCupy:  # the protocol only; nothing dereferences the pointer here
        __cuda_array_interface__ = {"data": (0x7f0000000000, False), "shape": (4, 8),
                                    "typestr": "<f4", "version": 3, "strides": None}

    dl = ferry.descs(FakeCupy())
    assert dl[0] == (0x7f0000000000, 128, 0) and dl.mem_type_name == "VRAM"


def test_descs_needs_a_memory_type():
    with pytest.raises(ValueError):
        ferry.descs([(1, 2, 3)])
    with pytest.raises(ValueError):
        ferry.descs(np.zeros((2, 3), np.uint64))
    with pytest.raises(TypeError):
        ferry.descs(3.0)
    assert len(ferry.descs([], "DRAM")) == 0


def test_unaligned_arrays():
    rows = np.array([[4096, 64, 0], [8192, 64, 1]], dtype=np.uint64)
    raw = b"\0" * 4 + rows.tobytes()
    skewed = np.frombuffer(raw, dtype=np.uint64, count=6, offset=4).reshape(2, 3)
    assert not skewed.flags.aligned
    assert ferry.DList("DRAM", skewed) == ferry.DList("DRAM", rows)
    assert ferry.DList("DRAM", memoryview(rows.tobytes()).cast("Q", (2, 3))) == \
        ferry.DList("DRAM", rows)
