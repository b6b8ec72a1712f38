# SPDX-License-Identifier: Apache-2.0
"""Turning what callers hold into descriptor lists.

Accepted: a DList (as is); a PyTorch tensor or a list of tensors
(data_ptr, numel * element_size, device index); an object exporting
``__cuda_array_interface__`` or ``__dlpack__``, or a list of them; an N x 3
integer numpy array (read by the extension in C, no Python loop); a list of
``(addr, len, dev_id[, meta])`` tuples. Tuples and arrays need a memory type;
tensors carry their own.

torch and numpy are never imported here: an object can only be a tensor or an
array if its module is loaded already.
"""
from __future__ import annotations

import sys
from typing import Any, Optional, Sequence

from . import _ferry

DList = _ferry.DList

# DLPack device types (dlpack.h): CPU, CUDA, CUDA host (pinned), CUDA managed, ROCm.
_DL_CPU, _DL_CUDA, _DL_CUDA_HOST, _DL_CUDA_MANAGED, _DL_ROCM = 1, 2, 3, 13, 10


def is_tensor(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def is_ndarray(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)


def tensor_desc(t: Any) -> tuple[tuple[int, int, int], str]:
    """((addr, nbytes, device index), "DRAM" | "VRAM") of a contiguous tensor."""
    if not t.is_contiguous():
        raise ValueError("tensor is not contiguous")
    dev = t.get_device()
    mem = "VRAM" if t.is_cuda else "DRAM"
    return (t.data_ptr(), t.numel() * t.element_size(), max(dev, 0)), mem


def cuda_array_desc(obj: Any) -> tuple[tuple[int, int, int], str]:
    """Descriptor of an object with __cuda_array_interface__ (CuPy, Numba...)."""
    cai = obj.__cuda_array_interface__
    shape = tuple(cai["shape"])
    itemsize = int(cai["typestr"][2:])
    strides = cai.get("strides")
    if strides is not None:
        expect = itemsize
        for dim, stride in zip(reversed(shape), reversed(strides)):
            if dim != 1 and stride != expect:
                raise ValueError("CUDA array is not contiguous")
            expect *= dim
    n = 1
    for dim in shape:
        n *= dim
    device = getattr(obj, "device", None)
    dev = int(getattr(device, "id", 0) or 0)
    return (int(cai["data"][0]), n * itemsize, dev), "VRAM"


def dlpack_desc(obj: Any) -> tuple[tuple[int, int, int], str]:
    """Descriptor of an object exporting __dlpack__ (read in C)."""
    addr, nbytes, dev_type, dev_id = _ferry.dlpack_info(obj)
    if dev_type in (_DL_CPU, _DL_CUDA_HOST):
        return (addr, nbytes, 0), "DRAM"
    if dev_type in (_DL_CUDA, _DL_CUDA_MANAGED, _DL_ROCM):
        return (addr, nbytes, dev_id), "VRAM"
    raise ValueError(f"unsupported DLPack device type {dev_type}")


def object_desc(obj: Any) -> Optional[tuple[tuple[int, int, int], str]]:
    """Descriptor and memory type of one memory object, None if obj is none."""
    if is_tensor(obj):
        return tensor_desc(obj)
    if hasattr(obj, "__cuda_array_interface__"):
        return cuda_array_desc(obj)
    if hasattr(obj, "__dlpack__") and not is_ndarray(obj):
        return dlpack_desc(obj)
    return None


def _objects_dlist(items: Sequence[Any], cls: type) -> Any:
    """One descriptor per memory object; all of one memory type and device kind."""
    descs = []
    mem = None
    kind = None
    for item in items:
        one = object_desc(item)
        if one is None:
            raise TypeError(f"cannot describe {type(item).__name__} as memory")
        desc, m = one
        k = (m, str(item.device.type)) if is_tensor(item) else (m, None)
        if kind is not None and k != kind:
            raise ValueError("memory objects on different kinds of device")
        kind, mem = k, m
        descs.append(desc)
    return cls(mem, descs)


def to_dlist(
    obj: Any,
    mem_type: Any = None,
    cls: type = DList,
    allow_meta: bool = True,
) -> Any:
    """A DList (of class cls) for obj; TypeError/ValueError when it cannot be one."""
    if isinstance(obj, DList):
        return obj
    one = None if isinstance(obj, (list, tuple)) else object_desc(obj)
    if one is not None:
        return cls(one[1], [one[0]])
    if is_ndarray(obj) or isinstance(obj, memoryview):
        if mem_type is None:
            raise ValueError("a memory type is needed for a descriptor array")
        if getattr(obj, "ndim", 2) != 2 or getattr(obj, "shape", (0, 3))[1] != 3:
            raise ValueError("descriptor array must have shape (N, 3)")
        return cls(mem_type, obj)
    if not isinstance(obj, (list, tuple)):
        raise TypeError(f"cannot make descriptors from {type(obj).__name__}")
    if len(obj) == 0:
        return cls("DRAM" if mem_type is None else mem_type)
    first = obj[0]
    if isinstance(first, (tuple, list)):
        if mem_type is None:
            raise ValueError("a memory type is needed for a list of descriptor tuples")
        if not allow_meta and len(first) != 3:
            raise ValueError("transfer descriptors are (addr, len, dev_id) tuples")
        return cls(mem_type, obj)
    return _objects_dlist(obj, cls)
