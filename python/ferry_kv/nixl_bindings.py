# SPDX-License-Identifier: Apache-2.0
"""What NIXL's ``nixl._bindings`` offers, backed by ferry.

Descriptor list classes (nixlXferDList, nixlRegDList), memory-type, operation,
status and thread-sync constants, nixlXferTelemetry, and one exception class
per status under NIXL's names. Each nixl*Error *is* the ferry exception of that
status, so ``except nixlRemoteDisconnectError`` and
``except ferry.RemoteDisconnectError`` catch the same thing. Memory-type
values are ferry's (DRAM 0, VRAM 1, FILE 2, BLOCK 3, OBJ 4); code uses the
names.
"""
from __future__ import annotations

import enum
from typing import Any

from . import _ferry

NIXL_INIT_AGENT = "NIXL_INIT_AGENT"
DEFAULT_COMM_PORT = 8888


class nixl_mem_t(enum.IntEnum):
    DRAM_SEG = _ferry.MEM_DRAM
    VRAM_SEG = _ferry.MEM_VRAM
    FILE_SEG = _ferry.MEM_FILE
    BLK_SEG = _ferry.MEM_BLOCK
    OBJ_SEG = _ferry.MEM_OBJ


DRAM_SEG = nixl_mem_t.DRAM_SEG
VRAM_SEG = nixl_mem_t.VRAM_SEG
FILE_SEG = nixl_mem_t.FILE_SEG
BLK_SEG = nixl_mem_t.BLK_SEG
OBJ_SEG = nixl_mem_t.OBJ_SEG

# NIXL's names of memory types, as get_plugin_mem_types returns them.
MEM_SEG_NAMES = {"DRAM": "DRAM_SEG", "VRAM": "VRAM_SEG", "FILE": "FILE_SEG",
                 "BLOCK": "BLK_SEG", "OBJ": "OBJ_SEG"}


class nixl_xfer_op_t(enum.IntEnum):
    NIXL_READ = _ferry.OP_READ
    NIXL_WRITE = _ferry.OP_WRITE


NIXL_READ = nixl_xfer_op_t.NIXL_READ
NIXL_WRITE = nixl_xfer_op_t.NIXL_WRITE


class nixl_status_t(enum.IntEnum):
    NIXL_IN_PROG = 1
    NIXL_SUCCESS = 0
    NIXL_ERR_NOT_POSTED = -1
    NIXL_ERR_INVALID_PARAM = -2
    NIXL_ERR_BACKEND = -3
    NIXL_ERR_NOT_FOUND = -4
    NIXL_ERR_MISMATCH = -5
    NIXL_ERR_NOT_ALLOWED = -6
    NIXL_ERR_REPOST_ACTIVE = -7
    NIXL_ERR_UNKNOWN = -8
    NIXL_ERR_NOT_SUPPORTED = -9
    NIXL_ERR_REMOTE_DISCONNECT = -10
    NIXL_ERR_CANCELED = -11
    NIXL_ERR_NO_TELEMETRY = -12


globals().update(nixl_status_t.__members__)


class nixl_thread_sync_t(enum.IntEnum):
    NIXL_THREAD_SYNC_NONE = 0
    NIXL_THREAD_SYNC_STRICT = 1
    NIXL_THREAD_SYNC_RW = 2
    NIXL_THREAD_SYNC_DEFAULT = 0


NIXL_THREAD_SYNC_NONE = nixl_thread_sync_t.NIXL_THREAD_SYNC_NONE
NIXL_THREAD_SYNC_STRICT = nixl_thread_sync_t.NIXL_THREAD_SYNC_STRICT
NIXL_THREAD_SYNC_RW = nixl_thread_sync_t.NIXL_THREAD_SYNC_RW
NIXL_THREAD_SYNC_DEFAULT = nixl_thread_sync_t.NIXL_THREAD_SYNC_DEFAULT


class nixl_cost_t(enum.IntEnum):
    NIXL_COST_ANALYTICAL_BACKEND = _ferry.COST_ANALYTICAL


NIXL_COST_ANALYTICAL_BACKEND = nixl_cost_t.NIXL_COST_ANALYTICAL_BACKEND

# One class per status, NIXL's names for ferry's classes.
nixlNotPostedError = _ferry.NotPostedError
nixlInvalidParamError = _ferry.InvalidParamError
nixlBackendError = _ferry.BackendError
nixlNotFoundError = _ferry.NotFoundError
nixlMismatchError = _ferry.MismatchError
nixlNotAllowedError = _ferry.NotAllowedError
nixlRepostActiveError = _ferry.RepostActiveError
nixlUnknownError = _ferry.UnknownError
nixlNotSupportedError = _ferry.NotSupportedError
nixlRemoteDisconnectError = _ferry.RemoteDisconnectError
nixlCancelledError = _ferry.CanceledError
nixlNoTelemetryError = _ferry.NoTelemetryError


class _NixlDList(_ferry.DList):
    """NIXL's descriptor-list methods over ferry.DList."""

    def __init__(self, type: Any, descs: Any = None, *args: Any) -> None:  # noqa: A002
        # NIXL accepts (type, init_size) and (type, descs[, is_sorted]).
        super().__init__(type, descs)

    def getType(self) -> nixl_mem_t:
        return nixl_mem_t(self.mem_type)

    def descCount(self) -> int:
        return len(self)

    def isEmpty(self) -> bool:
        return len(self) == 0

    def addDesc(self, desc: tuple) -> None:
        self.append(desc)

    def remDesc(self, index: int) -> None:
        self.remove_at(index)

    def print(self) -> None:  # noqa: A003
        print(f"{type(self).__name__} {nixl_mem_t(self.mem_type).name}:")
        for i in range(len(self)):
            print("  ", self.get(i))


class nixlXferDList(_NixlDList):
    """A transfer descriptor list: (addr, len, dev_id) entries."""


class nixlRegDList(_NixlDList):
    """A registration descriptor list: (addr, len, dev_id, meta) entries."""

    def __getitem__(self, i: int) -> tuple:
        n = len(self)
        if i < -n or i >= n:
            raise IndexError("descriptor index out of range")
        return self.get(i, meta=True)

    def trim(self) -> nixlXferDList:
        """The same descriptors without their metadata, as a transfer list."""
        return self.copy(with_meta=False, cls=nixlXferDList)


class nixlXferTelemetry:
    """Telemetry of a request's last post, with NIXL's field names.

    Times are microseconds: startTime since the epoch, postDuration spent in
    the post, xferDuration from post to completion. backendName is ferry's
    addition (NIXL gets it from query_xfer_backend)."""

    __slots__ = ("startTime", "postDuration", "xferDuration", "totalBytes", "descCount",
                 "backendName")

    def __init__(self, t: Any = None) -> None:
        if t is None:
            self.startTime = self.postDuration = self.xferDuration = 0
            self.totalBytes = self.descCount = 0
            self.backendName = ""
            return
        self.startTime = t.start_us
        self.postDuration = t.post_us
        self.xferDuration = t.xfer_us
        self.totalBytes = t.total_bytes
        self.descCount = t.desc_count
        self.backendName = t.backend

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"nixlXferTelemetry({fields})"
