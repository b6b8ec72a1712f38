# SPDX-License-Identifier: Apache-2.0
"""ferry: moving KV-cache blocks and tensors for distributed inference.

The C extension (``ferry._ferry``) wraps ferry's public C API; this package
adds conversions from tensors, arrays and tuple lists, and ``ferry.nixl``, a
drop-in for NIXL's ``nixl_agent``. See docs/python.md.

The installed package carries its own libferry and plugins (``ferry_kv/plugins``,
found by libferry beside itself), so nothing needs LD_LIBRARY_PATH or
FERRY_PLUGIN_DIR.
"""
from __future__ import annotations

import os
from typing import Any, Optional

from . import _ucx  # noqa: F401  (first: a libucx wheel's UCX, when installed)
from . import _ferry
from ._descs import to_dlist
from ._ferry import (  # noqa: F401  (re-exported)
    CAP_LOCAL,
    CAP_NOTIF,
    CAP_PROGRESS,
    CAP_REMOTE,
    COST_ANALYTICAL,
    COST_MEASURED,
    IN_PROGRESS,
    MEM_BLOCK,
    MEM_DRAM,
    MEM_FILE,
    MEM_OBJ,
    MEM_VRAM,
    NAME_MAX,
    NOTIF_MAX_LEN,
    OK,
    OP_READ,
    OP_WRITE,
    SYNC_NONE,
    SYNC_RW,
    SYNC_STRICT,
    TIMEOUT_NONE,
    XFER_TIMEOUT_DEFAULT_MS,
    AbiError,
    Alloc,
    AuthError,
    Backend,
    BackendError,
    BadMetadataError,
    CanceledError,
    DList,
    Error,
    InvalidParamError,
    IoError,
    MismatchError,
    NoMemoryError,
    NoResourcesError,
    NoTelemetryError,
    NotAllowedError,
    NotFoundError,
    NotPostedError,
    NotSupportedError,
    Prepped,
    RemoteDisconnectError,
    RepostActiveError,
    StaleError,
    TimedOutError,
    UnknownError,
    Xfer,
    XferTelemetry,
    mem_type_name,
    mem_type_parse,
    status_name,
    strerror,
)

__version__ = _ferry.version()

__all__ = [
    "Agent", "Alloc", "Backend", "DList", "Prepped", "Xfer", "XferTelemetry", "Error", "descs",
    "error_class", "plugin_dir", "version", "strerror", "status_name",
] + [name for name in dir(_ferry) if name.endswith("Error")]


def version() -> str:
    """Version of the loaded libferry."""
    return _ferry.version()


def error_class(status: int) -> type:
    """The exception class of a negative ferry_status (Error for unknown codes)."""
    return _ferry.error_classes.get(status, Error)


def plugin_dir() -> Optional[str]:
    """The plugin folder bundled with this package, if it has one."""
    d = os.path.join(os.path.dirname(__file__), "plugins")
    return d if os.path.isdir(d) else None


def descs(obj: Any, mem_type: Any = None) -> DList:
    """A DList from a tensor, tensors, an N x 3 array, tuples or a DList."""
    return to_dlist(obj, mem_type)


class Agent(_ferry.Agent):
    """A ferry agent (see ferry._ferry.Agent for every option).

    Methods taking descriptors also accept anything ``ferry.descs`` does::

        with ferry.Agent("a", progress_thread=True) as agent:
            agent.create_backend("UCX")
            agent.register(tensor)
    """

    __slots__ = ()

    def register(self, descs: Any, backends: Any = None, mem_type: Any = None) -> DList:
        """Registers memory; returns the DList, for deregister."""
        dl = to_dlist(descs, mem_type)
        super().register(dl, backends)
        return dl

    def deregister(self, descs: Any, backends: Any = None, mem_type: Any = None) -> None:
        super().deregister(to_dlist(descs, mem_type), backends)

    def query_mem(self, descs: Any, backend: Any = None,
                  mem_type: Any = None) -> list[Optional[dict[str, int]]]:
        """Per descriptor: None when not found, else a dict. DRAM/VRAM: the
        registered region covering it ({"addr", "len", "dev_id"}), held by
        backend when one is given; FILE: {"size", "mode", "mtime"} of the file
        named in its metadata; OBJ: {"size"} of the object named in its
        metadata (an S3 HEAD by the OBJ backend). NotSupportedError for BLOCK,
        for OBJ without such a backend, and for a memory type the backend does
        not accept."""
        return super().query_mem(to_dlist(descs, mem_type), backend)

    def prep(self, descs: Any, agent_name: Optional[str] = None, backends: Any = None,
             mem_type: Any = None) -> Prepped:
        return super().prep(to_dlist(descs, mem_type), agent_name, backends)

    def create_xfer(self, op: Any, local: Any, remote: Any, remote_agent: str,
                    notif: Any = None, backends: Any = None, skip_merge: bool = False,
                    backend: Any = None, mem_type: Any = None,
                    timeout_ms: Optional[int] = None) -> Xfer:
        return super().create_xfer(op, to_dlist(local, mem_type), to_dlist(remote, mem_type),
                                   remote_agent, notif, backends, skip_merge, backend,
                                   timeout_ms)
