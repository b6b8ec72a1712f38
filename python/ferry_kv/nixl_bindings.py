# SPDX-License-Identifier: Apache-2.0
"""What NIXL's ``nixl._bindings`` offers, backed by ferry.

The low-level layer NIXL's ``_api`` is built on, with NIXL's names, values,
arguments, return values and exceptions: ``nixlAgentConfig``, ``nixlAgent``
(camelCase methods taking and returning integer handles), the descriptor
lists ``nixlXferDList``, ``nixlRegDList`` and ``nixlRemoteDList``, the
memory-type, operation, status, thread-sync and cost constants,
``nixlXferTelemetry`` and one exception class per status.

Each nixl*Error *is* the ferry_kv exception of that status (so ``except
nixlRemoteDisconnectError`` and ``except ferry_kv.RemoteDisconnectError``
catch the same thing); its message carries the library's detail.
Memory-type values are NIXL's (DRAM_SEG 0, VRAM_SEG 1, BLK_SEG 2, OBJ_SEG 3,
FILE_SEG 4); the lists translate them to ferry's underneath.
"""
from __future__ import annotations

import enum
import os
from typing import Any, Optional

from . import _ferry

NIXL_INIT_AGENT = ""
DEFAULT_COMM_PORT = 8888
# A metadata service (docs/metadata.md): with one of these set, metadata
# calls without a peer address go to it.
_MD_SERVICE_ENV = ("FERRY_ETCD_ENDPOINTS", "NIXL_ETCD_ENDPOINTS", "FERRY_TCPSTORE_ENDPOINT",
                   "NIXL_TCPSTORE_ENDPOINT")

# ferry has no UCX GPU device API (device-initiated transfers from kernels):
# NIXL's prepMemView needs it.
HAVE_UCX_GPU_DEVICE_API = False


class _NamedIntEnum(enum.IntEnum):
    """Prints as NIXL's enums do ("nixl_mem_t.DRAM_SEG")."""

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


class nixl_mem_t(_NamedIntEnum):
    DRAM_SEG = 0
    VRAM_SEG = 1
    BLK_SEG = 2
    OBJ_SEG = 3
    FILE_SEG = 4


globals().update(nixl_mem_t.__members__)

_MEM_TO_FERRY = {
    nixl_mem_t.DRAM_SEG: _ferry.MEM_DRAM,
    nixl_mem_t.VRAM_SEG: _ferry.MEM_VRAM,
    nixl_mem_t.BLK_SEG: _ferry.MEM_BLOCK,
    nixl_mem_t.OBJ_SEG: _ferry.MEM_OBJ,
    nixl_mem_t.FILE_SEG: _ferry.MEM_FILE,
}
_MEM_FROM_FERRY = {v: k for k, v in _MEM_TO_FERRY.items()}
# ferry's memory-type names as NIXL's values.
_MEM_BY_NAME = {"DRAM": DRAM_SEG, "VRAM": VRAM_SEG, "BLOCK": BLK_SEG, "OBJ": OBJ_SEG,
                "FILE": FILE_SEG}


def ferry_mem(mem: Any) -> Any:
    """ferry's memory type for a NIXL value (int or nixl_mem_t); names pass through."""
    if isinstance(mem, str):
        return mem
    try:
        return _MEM_TO_FERRY[nixl_mem_t(int(mem))]
    except (ValueError, TypeError):
        raise ValueError(f"not a nixl_mem_t: {mem!r}") from None


def nixl_mem(ferry_value: int) -> nixl_mem_t:
    """NIXL's memory type for ferry's value."""
    return _MEM_FROM_FERRY[ferry_value]


class nixl_xfer_op_t(_NamedIntEnum):
    NIXL_READ = _ferry.OP_READ
    NIXL_WRITE = _ferry.OP_WRITE


NIXL_READ = nixl_xfer_op_t.NIXL_READ
NIXL_WRITE = nixl_xfer_op_t.NIXL_WRITE


class nixl_status_t(_NamedIntEnum):
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


class nixl_thread_sync_t(_NamedIntEnum):
    NIXL_THREAD_SYNC_NONE = 0
    NIXL_THREAD_SYNC_STRICT = 1
    NIXL_THREAD_SYNC_RW = 2
    NIXL_THREAD_SYNC_DEFAULT = 0


NIXL_THREAD_SYNC_NONE = nixl_thread_sync_t.NIXL_THREAD_SYNC_NONE
NIXL_THREAD_SYNC_STRICT = nixl_thread_sync_t.NIXL_THREAD_SYNC_STRICT
NIXL_THREAD_SYNC_RW = nixl_thread_sync_t.NIXL_THREAD_SYNC_RW
NIXL_THREAD_SYNC_DEFAULT = nixl_thread_sync_t.NIXL_THREAD_SYNC_DEFAULT


class nixl_cost_t(_NamedIntEnum):
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


# ---- descriptor lists ----

class _NixlDList(_ferry.DList):
    """NIXL's descriptor-list methods over ferry_kv.DList."""

    def __init__(self, type: Any, descs: Any = None, *args: Any, **kwargs: Any) -> None:  # noqa: A002
        # NIXL's overloads: (type, init_size=0) and (type, descs[, is_sorted]).
        # NIXL's init_size makes that many uninitialised entries; here it
        # reserves room (a list holds only valid descriptors).
        super().__init__(ferry_mem(type), descs)

    def getType(self) -> nixl_mem_t:
        return nixl_mem(self.mem_type)

    def descCount(self) -> int:
        return len(self)

    def isEmpty(self) -> bool:
        return len(self) == 0

    def addDesc(self, desc: tuple) -> None:
        self.append(desc)

    def remDesc(self, index: int) -> None:
        self.remove_at(index)

    def print(self) -> None:  # noqa: A003
        print(f"{type(self).__name__} {self.getType().name}, {len(self)} descriptors:")
        for i in range(len(self)):
            print("  ", self[i])


class nixlXferDList(_NixlDList):
    """A transfer descriptor list: (addr, len, dev_id) entries."""


class nixlRegDList(_NixlDList):
    """A registration descriptor list: (addr, len, dev_id, meta) entries;
    entries read back with meta as bytes, as NIXL's."""

    def __getitem__(self, i: int) -> tuple:
        return self.get(_checked_index(self, i), meta=True)

    def trim(self) -> nixlXferDList:
        """The same descriptors without their metadata, as a transfer list."""
        return self.copy(with_meta=False, cls=nixlXferDList)


class nixlRemoteDList(_NixlDList):
    """Descriptors of a peer's memory: (addr, len, dev_id, remote agent name)
    entries; the name reads back as str, as NIXL's."""

    def __getitem__(self, i: int) -> tuple:
        addr, length, dev, name = self.get(_checked_index(self, i), meta=True)
        return addr, length, dev, name.decode("utf-8", "surrogateescape")


def _checked_index(dlist: Any, i: int) -> int:
    n = len(dlist)
    if i < -n or i >= n:
        raise IndexError("descriptor index out of range")
    return i


class nixlXferTelemetry:
    """Telemetry of a request's last timed post (its first post and every
    256th after it; docs/telemetry.md), with NIXL's field names.

    Times are microseconds: startTime since the epoch, postDuration spent in
    the post, xferDuration from post to completion; descCount counts the
    descriptors as they were given (before merging). backendName is ferry's
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


# ---- the agent ----

class nixlAgentConfig:
    """NIXL's agent configuration, positional arguments in NIXL's order."""

    def __init__(self, useProgThread: bool = False, useListenThread: bool = False,  # noqa: N803
                 listenPort: int = DEFAULT_COMM_PORT,  # noqa: N803
                 syncMode: Any = NIXL_THREAD_SYNC_DEFAULT, numWorkers: int = 1,  # noqa: N803
                 pthrDelay: int = 0, lthrDelay: int = 100000,  # noqa: N803
                 captureTelemetry: bool = False,  # noqa: N803
                 etcdWatchTimeout: int = 5000000) -> None:  # noqa: N803
        self.useProgThread = useProgThread
        self.useListenThread = useListenThread
        self.listenPort = listenPort
        self.syncMode = nixl_thread_sync_t(syncMode)
        self.numWorkers = numWorkers
        self.pthrDelay = pthrDelay
        self.lthrDelay = lthrDelay
        self.captureTelemetry = captureTelemetry
        self.etcdWatchTimeout = etcdWatchTimeout  # microseconds, as NIXL's

    def __repr__(self) -> str:
        return f"nixlAgentConfig({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


_TRUTHY = {"1", "y", "yes", "true", "on"}


def telemetry_enabled(capture: bool) -> bool:
    """NIXL's rule: NIXL_TELEMETRY_ENABLE, when set, decides; else the config."""
    env = os.environ.get("NIXL_TELEMETRY_ENABLE")
    if env is not None and env.strip():
        return env.strip().lower() in _TRUTHY
    return bool(capture)


def ferry_sync_mode(mode: Any, threads: bool) -> int:
    """ferry's locking for a NIXL sync mode. NONE promises one thread at a
    time, which ferry's own progress and listener threads would break: with
    either of them on, NONE becomes RW (a reader/writer lock, cheap on the
    hot path)."""
    mode = nixl_thread_sync_t(mode)
    if mode == NIXL_THREAD_SYNC_STRICT:
        return _ferry.SYNC_STRICT
    if mode == NIXL_THREAD_SYNC_RW or threads:
        return _ferry.SYNC_RW
    return _ferry.SYNC_NONE


def _str(value: Any) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _bytes(value: Any) -> bytes:
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)


class nixlAgent:
    """NIXL's nixlAgent: handles are integers, as NIXL's bindings return them
    (backends, prepared lists, requests); statuses are nixl_status_t; errors
    raise the status's nixl*Error with the library's detail."""

    def __init__(self, name: Any, cfg: nixlAgentConfig) -> None:
        name = _str(name)
        if not isinstance(name, str) or not name:
            raise ValueError("an agent needs a non-empty name")
        threads = bool(cfg.useProgThread or cfg.useListenThread)
        self._agent = _ferry.Agent(
            name,
            progress_thread=bool(cfg.useProgThread),
            progress_delay_us=int(cfg.pthrDelay),
            listen=bool(cfg.useListenThread),
            listen_port=int(cfg.listenPort) if cfg.useListenThread else 0,
            telemetry=telemetry_enabled(cfg.captureTelemetry),
            sync_mode=ferry_sync_mode(cfg.syncMode, threads),
            etcd_watch_timeout_ms=max(int(cfg.etcdWatchTimeout) // 1000, 1),
        )
        # As NIXL: with an etcd endpoint (or a TCPStore's) in the
        # environment, metadata calls without a peer address go to it.
        self._md_service = any(os.environ.get(v) for v in _MD_SERVICE_ENV)
        self.name = name
        self._backends: dict[int, Any] = {}
        self._prepped: dict[int, Any] = {}
        self._xfers: dict[int, Any] = {}
        self._mem_views: set[int] = set()
        self._reg_epoch = 0      # bumped by every (de)registration
        self._self_epoch = -1    # _reg_epoch when own metadata was last loaded

    @property
    def ferry_agent(self) -> Any:
        """The ferry_kv.Agent underneath (ferry's addition)."""
        return self._agent

    def close(self) -> None:
        """Destroys the agent now (ferry's addition; NIXL's waits for GC)."""
        self._agent.close()

    # ---- plugins and backends ----

    def getAvailPlugins(self) -> list[str]:
        return self._agent.plugins()

    def getPluginParams(self, type: str) -> tuple[dict[str, str], list[nixl_mem_t]]:  # noqa: A002
        if type not in self._agent.plugins():
            raise nixlNotFoundError(f"no plugin named {type!r}")
        params = {k: d or "" for k, d, _help in self._agent.plugin_params(type)}
        return params, [_MEM_BY_NAME[m] for m in self._agent.plugin_mem_types(type)]

    def getBackendParams(self, backend: int) -> tuple[dict[str, str], list[nixl_mem_t]]:
        b = self._backend(backend)
        return dict(b.params()), [_MEM_BY_NAME[m] for m in b.caps()[1]]

    def createBackend(self, type: str, initParams: Optional[dict] = None) -> int:  # noqa: A002,N803
        b = self._agent.create_backend(type, {str(k): str(v) for k, v in (initParams or {}).items()})
        self._backends[id(b)] = b
        return id(b)

    def _backend(self, handle: int) -> Any:
        try:
            return self._backends[handle]
        except (KeyError, TypeError):
            raise nixlInvalidParamError(f"not a backend handle of agent {self.name}: {handle!r}") from None

    def _sel(self, handles: Any) -> Optional[list]:
        if not handles:
            return None
        if isinstance(handles, int):
            handles = [] if handles is None else [handles]
        return [self._backend(h) for h in handles] or None

    # ---- memory ----

    def registerMem(self, descs: nixlRegDList, backends: Any = ()) -> nixl_status_t:
        self._agent.register(descs, self._sel(backends))
        self._reg_epoch += 1
        return NIXL_SUCCESS

    def deregisterMem(self, descs: nixlRegDList, backends: Any = ()) -> nixl_status_t:
        self._agent.deregister(descs, self._sel(backends))
        self._reg_epoch += 1
        return NIXL_SUCCESS

    def queryMem(self, descs: nixlRegDList, backend: int) -> list[Optional[dict[str, str]]]:
        infos = self._agent.query_mem(descs, self._backend(backend))
        return [None if i is None else {k: str(v) for k, v in i.items()} for i in infos]

    # ---- prepared lists and requests ----

    def makeConnection(self, remote_agent: str, backends: Any = ()) -> nixl_status_t:
        self._agent.connect(_str(remote_agent), self._sel(backends))
        return NIXL_SUCCESS

    def _target(self, agent_name: Any) -> Optional[str]:
        """None for the local side; own name: loopback, with own metadata
        (re)loaded when registrations changed since (NIXL needs no load)."""
        name = _str(agent_name)
        if name in (NIXL_INIT_AGENT, "NIXL_INIT_AGENT"):
            return None
        if name == self.name and self._self_epoch != self._reg_epoch:
            self._agent.load_metadata(self._agent.metadata())
            self._self_epoch = self._reg_epoch
        return name

    def prepXferDlist(self, *args: Any, **kwargs: Any) -> int:
        """(agent_name, descs, backends=[]), (descs, backends=[]) for the local
        side, or (agent_name, mem_type, Nx5 array, backends=[]): rows of
        (addr, len, dev_id, stride, count), strided runs."""
        if args and isinstance(args[0], _ferry.DList):
            args = (NIXL_INIT_AGENT,) + args
        if len(args) >= 3 and not isinstance(args[1], _ferry.DList):
            return self._prep_strided(*args, **kwargs)
        return self._prep(*args, **kwargs)

    def _prep(self, agent_name: Any, descs: Any, backend: Any = ()) -> int:
        p = self._agent.prep(descs, self._target(agent_name), self._sel(backend))
        self._prepped[id(p)] = p
        return id(p)

    def _prep_strided(self, agent_name: Any, mem: Any, rows: Any, backend: Any = ()) -> int:
        return self._prep(agent_name, strided_dlist(mem, rows), backend)

    def releasedDlistH(self, handle: int) -> nixl_status_t:
        p = self._prepped.pop(handle, None)
        if p is None:
            raise nixlInvalidParamError(f"not a prepared-list handle of agent {self.name}: {handle!r}")
        p.release()
        return NIXL_SUCCESS

    def _keep(self, x: Any) -> int:
        key = id(x)
        self._xfers[key] = x
        return key

    def makeXferReq(self, operation: Any, local_side: int, local_indices: Any, remote_side: int,
                    remote_indices: Any, notif_msg: Any = b"", backend: Any = (),
                    skip_desc_merg: bool = False) -> int:
        try:
            local, remote = self._prepped[local_side], self._prepped[remote_side]
        except (KeyError, TypeError):
            raise nixlInvalidParamError("not a prepared-list handle of this agent") from None
        x = self._agent.make_xfer(operation, local, local_indices, remote, remote_indices,
                                  _bytes(notif_msg) if notif_msg else None, self._sel(backend),
                                  bool(skip_desc_merg))
        return self._keep(x)

    def createXferReq(self, operation: Any, local_descs: nixlXferDList, remote_descs: nixlXferDList,
                      remote_agent: str, notif_msg: Any = b"", backend: Any = ()) -> int:
        target = self._target(remote_agent) or _str(remote_agent)
        x = self._agent.create_xfer(int(operation), local_descs, remote_descs, target,
                                    _bytes(notif_msg) if notif_msg else None, self._sel(backend))
        return self._keep(x)

    def _xfer(self, reqh: int) -> Any:
        try:
            return self._xfers[reqh]
        except (KeyError, TypeError):
            raise nixlInvalidParamError(f"not a request handle of agent {self.name}: {reqh!r}") from None

    def estimateXferCost(self, req_handle: int) -> tuple[int, int, int]:
        duration, margin, method = self._xfer(req_handle).estimate()
        return int(round(duration)), int(round(margin)), int(method)

    def postXferReq(self, reqh: int, notif_msg: Any = b"") -> nixl_status_t:
        x = self._xfer(reqh)
        return NIXL_SUCCESS if x.post(_bytes(notif_msg) if notif_msg else None) == 0 else NIXL_IN_PROG

    def getXferStatus(self, reqh: int) -> nixl_status_t:
        return NIXL_SUCCESS if self._xfer(reqh).status() == 0 else NIXL_IN_PROG

    def getXferTelemetry(self, reqh: int) -> nixlXferTelemetry:
        return nixlXferTelemetry(self._xfer(reqh).telemetry())

    def getMetrics(self) -> list[dict[str, Any]]:
        """ferry's metrics snapshot (not in NIXL): the series of
        ferry_kv.Agent.metrics(), named as NIXL's Prometheus exporter names
        its metrics."""
        return self._agent.metrics()

    def getMetricsText(self) -> str:
        """The snapshot in Prometheus' text format (not in NIXL)."""
        return self._agent.metrics_text()

    def queryXferBackend(self, reqh: int) -> int:
        name = self._xfer(reqh).backend
        for handle, b in self._backends.items():
            if b.name == name:
                return handle
        raise nixlNotFoundError(f"backend {name} of the request has no handle")

    def releaseXferReq(self, reqh: int) -> nixl_status_t:
        x = self._xfers.pop(reqh, None) if isinstance(reqh, int) else None
        if x is None:
            self._xfer(reqh)  # raises
        try:
            x.release()
        except BaseException:
            self._xfers[reqh] = x  # not released (NIXL keeps such a handle too)
            raise
        return NIXL_SUCCESS

    # ---- memory views (UCX's GPU device API) ----

    def prepMemView(self, dlist: Any, backends: Any = ()) -> int:
        raise nixlNotSupportedError(
            "memory views need UCX's GPU device API, which ferry does not offer "
            "(nixl._bindings.HAVE_UCX_GPU_DEVICE_API is False)")

    def releaseMemView(self, mvh: int) -> None:
        raise nixlInvalidParamError(f"not a memory view of agent {self.name}: {mvh!r}")

    # ---- notifications ----

    def getNotifs(self, notif_map: dict, backends: Any = ()) -> dict:
        self._sel(backends)  # ferry queues notifications per agent, not per backend
        return self._agent.get_notifs(None, notif_map)

    def genNotif(self, remote_agent: str, msg: Any, backends: Any = ()) -> nixl_status_t:
        self._agent.send_notif(_str(remote_agent), _bytes(msg), self._sel(backends))
        return NIXL_SUCCESS

    # ---- metadata ----

    def getLocalMD(self) -> bytes:
        return self._agent.metadata()

    def getLocalPartialMD(self, descs: nixlRegDList, inc_conn_info: bool = False,
                          backends: Any = ()) -> bytes:
        lists = [descs] if len(descs) else []
        return self._agent.partial_metadata(lists, bool(inc_conn_info), self._sel(backends))

    def loadRemoteMD(self, remote_metadata: bytes) -> bytes:
        return _bytes(self._agent.load_metadata(bytes(remote_metadata)))

    def invalidateRemoteMD(self, remote_agent: str) -> nixl_status_t:
        """Returns the status (NIXL's does not raise here either)."""
        try:
            self._agent.invalidate_remote(_str(remote_agent))
        except _ferry.Error as e:
            return nixl_status_t(_nixl_status(e))
        return NIXL_SUCCESS

    def checkRemoteMD(self, remote_name: str, descs: Any) -> nixl_status_t:
        """NIXL_SUCCESS when the peer's metadata (covering descs) is loaded,
        else NIXL_ERR_NOT_FOUND; returned, not raised, as NIXL's."""
        dl = descs if descs is not None and len(descs) else None
        try:
            ok = self._agent.check_remote(_str(remote_name), dl)
        except _ferry.Error as e:
            return nixl_status_t(_nixl_status(e))
        return NIXL_SUCCESS if ok else NIXL_ERR_NOT_FOUND

    def _peer(self, ip_addr: str, port: int) -> tuple[str, int]:
        """The listener to talk to; ("", 0) means etcd or TCPStore."""
        if not ip_addr and self._md_service:
            return "", 0
        if not ip_addr:
            raise nixlNotSupportedError(
                "metadata without a peer address needs etcd or a TCPStore: set "
                "FERRY_ETCD_ENDPOINTS or FERRY_TCPSTORE_ENDPOINT (or their NIXL_ names), "
                "or give ip_addr and port")
        return ip_addr, int(port) or DEFAULT_COMM_PORT

    def sendLocalMD(self, ip_addr: str = "", port: int = 0) -> None:
        self._agent.send_metadata(*self._peer(ip_addr, port))

    def sendLocalPartialMD(self, descs: nixlRegDList, inc_conn_info: bool = False,
                           backends: Any = (), ip_addr: str = "", port: int = 0,
                           label: str = "") -> None:
        ip, p = self._peer(ip_addr, port)
        lists = [descs] if len(descs) else []
        self._agent.send_partial_metadata(lists, ip, p, bool(inc_conn_info), self._sel(backends),
                                          label or None)

    def fetchRemoteMD(self, remote_agent: str, ip_addr: str = "", port: int = 0,
                      label: str = "") -> None:
        self._agent.fetch_metadata(_str(remote_agent), *self._peer(ip_addr, port), label or None)

    def invalidateLocalMD(self, ip_addr: str = "", port: int = 0) -> None:
        self._agent.invalidate_local(*self._peer(ip_addr, port))


def _nixl_status(err: Exception) -> int:
    """NIXL's status value for a ferry_kv exception (NIXL_ERR_UNKNOWN when
    ferry's status has no NIXL counterpart)."""
    name = type(err).__name__
    for cls_name, value in _STATUS_OF_CLASS.items():
        if name == cls_name:
            return value
    return NIXL_ERR_UNKNOWN


_STATUS_OF_CLASS = {
    "NotPostedError": NIXL_ERR_NOT_POSTED, "InvalidParamError": NIXL_ERR_INVALID_PARAM,
    "BackendError": NIXL_ERR_BACKEND, "NotFoundError": NIXL_ERR_NOT_FOUND,
    "MismatchError": NIXL_ERR_MISMATCH, "NotAllowedError": NIXL_ERR_NOT_ALLOWED,
    "RepostActiveError": NIXL_ERR_REPOST_ACTIVE, "NotSupportedError": NIXL_ERR_NOT_SUPPORTED,
    "RemoteDisconnectError": NIXL_ERR_REMOTE_DISCONNECT, "CanceledError": NIXL_ERR_CANCELED,
    "NoTelemetryError": NIXL_ERR_NO_TELEMETRY,
}


def strided_dlist(mem: Any, rows: Any) -> nixlXferDList:
    """A transfer list from an Nx5 array of (addr, len, dev_id, stride, count)
    rows: one row stays a strided list (never materialised), several are
    expanded descriptor by descriptor."""
    import numpy as np

    rows = np.asarray(rows, dtype=np.uint64)
    if rows.ndim != 2 or rows.shape[1] != 5:
        raise ValueError("strided descriptors must be an Nx5 array")
    if rows.shape[0] == 1:
        addr, length, dev, stride, count = (int(v) for v in rows[0])
        return nixlXferDList.strided(ferry_mem(mem), addr, stride, count, length, dev)
    parts = []
    for addr, length, dev, stride, count in rows.tolist():
        block = np.empty((int(count), 3), dtype=np.uint64)
        block[:, 0] = addr + np.arange(count, dtype=np.uint64) * np.uint64(stride)
        block[:, 1] = length
        block[:, 2] = dev
        parts.append(block)
    descs = np.concatenate(parts) if parts else np.zeros((0, 3), np.uint64)
    return nixlXferDList(mem, descs)
