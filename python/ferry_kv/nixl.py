# SPDX-License-Identifier: Apache-2.0
"""A drop-in for NIXL's Python agent API (``nixl._api``), backed by ferry.

``nixl_agent`` is built, as NIXL's is, on the low-level ``nixlAgent`` of
``nixl._bindings`` (here ferry_kv.nixl_bindings), looked up when an agent is
made. Arguments, defaults and return values are NIXL's: transfer states
"DONE"/"PROC"/"ERR" (errors raise the status's exception, with the library's
detail), notification maps ``{agent_name: [bytes, ...]}``,
``add_remote_agent`` returns the name as bytes, memory types "DRAM", "VRAM",
"FILE", "BLOCK", "OBJ" (and the deprecated "cpu", "cuda"), handles
``nixl_xfer_handle`` and ``nixl_prepped_dlist_handle`` with ``release()``.
Invalid descriptor inputs to get_xfer_descs/get_reg_descs return None;
unknown memory types and operations raise KeyError.

Where ferry differs (docs/python.md has the full list): metadata without a
peer address go to etcd when FERRY_ETCD_ENDPOINTS (or NIXL_ETCD_ENDPOINTS) is
set, else to a PyTorch TCPStore when FERRY_TCPSTORE_ENDPOINT (or
NIXL_TCPSTORE_ENDPOINT) is, and raise nixlNotSupportedError otherwise; query_memory also answers
for DRAM/VRAM (the registered region); prep_mem_view raises
nixlNotSupportedError (no UCX GPU device API); the handles are also context
managers.
"""
from __future__ import annotations

import enum
import pickle
import sys
from typing import Any, Optional

from . import _ferry
from . import nixl_bindings as nixlBind
from ._descs import to_dlist
from .nixl_bindings import (  # noqa: F401  (NIXL exposes these through _api too)
    DEFAULT_COMM_PORT,
    nixlRegDList,
    nixlRemoteDList,
    nixlXferDList,
    nixlXferTelemetry,
)
from .nixl_logging import get_logger

logger = get_logger(__name__)


class _Handle:
    """A handle as NIXL's: the integer of the low-level agent, release(),
    released by the garbage collector when the caller forgets to."""

    __slots__ = ("_handle", "_agent", "_released")
    _RELEASE = ""

    def __init__(self, agent: Any, value: int) -> None:
        self._handle = int(value)
        self._agent = agent
        self._released = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(0x{self._handle:x}, released={self._released})"

    def __int__(self) -> int:
        return self._handle

    def release(self) -> None:
        if not self._released:
            getattr(self._agent, self._RELEASE)(self._handle)
            self._released = True

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:
        if self._released:
            return
        try:
            self.release()
        except Exception as e:  # noqa: BLE001  (a finalizer must not raise)
            try:
                logger.error("%r: release at collection failed: %s", self, e)
            except Exception:  # noqa: BLE001
                pass


class nixl_prepped_dlist_handle(_Handle):
    """A prepared descriptor list (prep_xfer_dlist)."""

    __slots__ = ()
    _RELEASE = "releasedDlistH"


class nixl_xfer_handle(_Handle):
    """A transfer request (initialize_xfer, make_prepped_xfer). Releasing a
    running request cancels it."""

    __slots__ = ()
    _RELEASE = "releaseXferReq"


# Backend handles are the low-level agent's integers, as NIXL's.
nixl_backend_handle = int


class nixl_thread_sync_t(enum.Enum):
    """Thread synchronisation modes (values: nixl._bindings' constants)."""

    NIXL_THREAD_SYNC_NONE = nixlBind.NIXL_THREAD_SYNC_NONE
    NIXL_THREAD_SYNC_STRICT = nixlBind.NIXL_THREAD_SYNC_STRICT
    NIXL_THREAD_SYNC_RW = nixlBind.NIXL_THREAD_SYNC_RW
    NIXL_THREAD_SYNC_DEFAULT = nixlBind.NIXL_THREAD_SYNC_DEFAULT


class nixl_agent_config:
    """Configuration of a nixl_agent (NIXL's arguments and defaults).

    listen_port 0 picks a free port (nixl_agent.get_listen_port() tells it).
    sync_mode None: STRICT with the listener thread, else NONE, as NIXL; on
    ferry NONE with a progress or listener thread running is a reader/writer
    lock (ferry's own threads need one)."""

    def __init__(
        self,
        enable_prog_thread: bool = True,
        enable_listen_thread: bool = False,
        listen_port: int = DEFAULT_COMM_PORT,
        capture_telemetry: bool = False,
        num_threads: int = 0,
        backends: list[str] = ["UCX"],  # noqa: B006  (NIXL's signature)
        sync_mode: Optional[nixl_thread_sync_t] = None,
    ) -> None:
        if sync_mode is not None and not isinstance(sync_mode, nixl_thread_sync_t):
            raise TypeError(f"sync_mode must be a nixl_thread_sync_t (got {type(sync_mode).__name__!r})")
        self.backends = backends
        self.enable_pthread = enable_prog_thread
        self.enable_listen = enable_listen_thread
        self.port = listen_port
        self.capture_telemetry = capture_telemetry
        self.num_threads = num_threads
        self.sync_mode = sync_mode


# Backend parameter that takes nixl_agent_config.num_threads, per plugin.
_THREAD_PARAM = {"UCX": "num_threads", "OBJ": "num_threads", "LIBFABRIC": "num_threads",
                 "GDS_MT": "thread_count", "UCCL": "num_cpus"}


def _low_level_config(conf: nixl_agent_config) -> Any:
    default_sync = (nixl_thread_sync_t.NIXL_THREAD_SYNC_STRICT if conf.enable_listen
                    else nixl_thread_sync_t.NIXL_THREAD_SYNC_NONE)
    cfg = nixlBind.nixlAgentConfig()
    cfg.useProgThread = conf.enable_pthread
    cfg.useListenThread = conf.enable_listen
    cfg.listenPort = conf.port
    cfg.syncMode = (conf.sync_mode or default_sync).value
    cfg.pthrDelay = 0
    cfg.lthrDelay = 100000
    cfg.captureTelemetry = conf.capture_telemetry
    return cfg


def _is_torch_tensor(obj: Any) -> bool:
    torch = sys.modules.get("torch")  # never import torch just to ask
    return torch is not None and isinstance(obj, torch.Tensor)


class nixl_agent:
    """A NIXL agent on ferry. ``agent.agent`` is the low-level nixlAgent."""

    def __init__(
        self,
        agent_name: str,
        nixl_conf: Optional[nixl_agent_config] = None,
        instantiate_all: bool = False,
    ) -> None:
        if nixl_conf and instantiate_all:
            instantiate_all = False
            logger.warning("Ignoring instantiate_all based on the provided config in agent creation.")
        conf = nixl_conf or nixl_agent_config()
        self.agent = nixlBind.nixlAgent(agent_name, _low_level_config(conf))
        self.name = agent_name
        self.notifs: dict[str, list[bytes]] = {}
        self.backends: dict[str, int] = {}
        self.backend_mems: dict[str, list] = {}
        self.backend_options: dict[str, dict[str, str]] = {}
        self.plugin_list: list[str] = self.agent.getAvailPlugins()
        if not self.plugin_list:
            logger.error("No plugins available, cannot start transfers!")
            raise RuntimeError("No plugins available for NIXL, cannot start transfers!")
        self.plugin_b_options: dict[str, dict[str, str]] = {}
        self.plugin_mem_types: dict[str, list] = {}
        self.nixl_mems = {
            "DRAM": nixlBind.DRAM_SEG, "VRAM": nixlBind.VRAM_SEG, "FILE": nixlBind.FILE_SEG,
            "BLOCK": nixlBind.BLK_SEG, "OBJ": nixlBind.OBJ_SEG,
            "cpu": nixlBind.DRAM_SEG, "cuda": nixlBind.VRAM_SEG,  # deprecated names
        }
        self.nixl_ops = {"WRITE": nixlBind.NIXL_WRITE, "READ": nixlBind.NIXL_READ}
        names = self.plugin_list if instantiate_all else conf.backends
        self._create_backends(names, conf.num_threads, best_effort=instantiate_all)
        logger.info("Initialized NIXL agent: %s", agent_name)

    def _create_backends(self, names: list[str], num_threads: int, best_effort: bool) -> None:
        """With instantiate_all (best_effort), a plugin this host cannot run
        (CUDA without a GPU) is skipped with a warning instead of failing."""
        for name in list(names):
            if name not in self.plugin_list:
                logger.warning("Skipping backend registration %s due to the missing plugin.", name)
                continue
            init: dict[str, str] = {}
            if num_threads > 0 and name in _THREAD_PARAM:
                init[_THREAD_PARAM[name]] = str(num_threads)
            try:
                self.create_backend(name, init)
            except _ferry.Error as err:
                if not best_effort:
                    raise
                logger.warning("Skipping backend %s: it cannot run here (%s).", name, err)

    # ---- context manager and teardown (ferry's addition) ----

    def __enter__(self) -> "nixl_agent":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Destroys the agent now (its handles become released)."""
        self.agent.close()

    # ---- plugins and backends ----

    def _load_plugin_params(self, plugin: str) -> None:
        if plugin not in self.plugin_list:
            return
        try:
            self.plugin_b_options[plugin], self.plugin_mem_types[plugin] = \
                self.agent.getPluginParams(plugin)
        except _ferry.Error:
            logger.warning("Failed to load params for plugin %s", plugin, exc_info=True)

    def get_plugin_list(self) -> list[str]:
        return self.plugin_list

    def get_plugin_mem_types(self, backend: str) -> list:
        if backend not in self.plugin_mem_types:
            self._load_plugin_params(backend)
        if backend not in self.plugin_mem_types:
            logger.warning("Plugin %s is not available to get its supported mem types.", backend)
            return []
        return self.plugin_mem_types[backend]

    def get_plugin_params(self, backend: str) -> dict[str, str]:
        if backend not in self.plugin_b_options:
            self._load_plugin_params(backend)
        if backend not in self.plugin_b_options:
            logger.warning("Plugin %s is not available to get its parameters.", backend)
            return {}
        return self.plugin_b_options[backend]

    def get_backend_mem_types(self, backend: str) -> list:
        if backend not in self.backend_mems:
            logger.warning("Backend %s not instantiated to get its supported mem types.", backend)
            return []
        return self.backend_mems[backend]

    def get_backend_params(self, backend: str) -> dict[str, str]:
        if backend not in self.backend_options:
            logger.warning("Backend %s not instantiated to get its parameters.", backend)
            return {}
        return self.backend_options[backend]

    def create_backend(self, backend: str, initParams: dict[str, str] = {}) -> None:  # noqa: B006,N803
        handle = self.agent.createBackend(backend, initParams)
        self.backends[backend] = handle
        self.backend_options[backend], self.backend_mems[backend] = \
            self.agent.getBackendParams(handle)
        logger.info("Backend %s was instantiated", backend)

    def _handles(self, names: Any) -> list[int]:
        """Backend handles for names; KeyError for one not created, as NIXL."""
        return [self.backends[n] for n in names] if names else []

    # ---- memory ----

    def register_memory(self, reg_list: Any, mem_type: Optional[str] = None,
                        backends: list[str] = [], *, is_sorted: bool = False) -> nixlRegDList:  # noqa: B006
        reg_descs = self._reg_or_raise(reg_list, mem_type)
        self.agent.registerMem(reg_descs, self._handles(backends))
        return reg_descs

    def deregister_memory(self, dereg_list: nixlRegDList, backends: list[str] = []) -> None:  # noqa: B006
        self.agent.deregisterMem(self._reg_or_raise(dereg_list, None), self._handles(backends))

    def _reg_or_raise(self, descs: Any, mem_type: Optional[str]) -> nixlRegDList:
        reg = self.get_reg_descs(descs, mem_type)
        if reg is None:
            raise nixlBind.nixlInvalidParamError("invalid registration descriptors (see the log)")
        return reg

    def query_memory(self, reg_list: Any, backend: str,
                     mem_type: Optional[str] = None) -> list[Optional[dict[str, str]]]:
        """Per descriptor: None when not found, else a dict of its properties
        (strings, as NIXL's). FILE: "size", "mode", "mtime" of the file named
        in the descriptor's metadata; DRAM/VRAM (ferry's addition): "addr",
        "len", "dev_id" of the region registered with that backend covering it."""
        reg_descs = self._reg_or_raise(reg_list, mem_type)
        if backend not in self.backends:
            raise ValueError(f"Backend '{backend}' not found. Available backends: {list(self.backends)}")
        return self.agent.queryMem(reg_descs, self.backends[backend])

    # ---- connections, prepared lists, requests ----

    def make_connection(self, remote_agent: str, backends: list[str] = []) -> None:  # noqa: B006
        self.agent.makeConnection(remote_agent, self._handles(backends))

    def prep_xfer_dlist(self, agent_name: str, xfer_list: Any, mem_type: Optional[str] = None,
                        backends: list[str] = [], *, is_sorted: bool = False  # noqa: B006
                        ) -> nixl_prepped_dlist_handle:
        """agent_name "NIXL_INIT_AGENT" or "": the local side; own name:
        loopback; else a peer. xfer_list: anything get_xfer_descs takes, or an
        Nx5 array of (addr, len, dev_id, stride, count) strided runs (then
        mem_type is required)."""
        if agent_name in ("NIXL_INIT_AGENT", ""):
            agent_name = nixlBind.NIXL_INIT_AGENT
        handles = self._handles(backends)
        run = _regular_run(xfer_list) if mem_type is not None else None
        if run is not None:
            xfer_list = run  # every block slot of a cache: one strided run, nothing per block
        if _is_strided_array(xfer_list):
            if mem_type is None:
                raise ValueError("Please specify a mem type for strided descriptors")
            handle = self.agent.prepXferDlist(agent_name, self.nixl_mems[mem_type], xfer_list, handles)
        else:
            descs = self.get_xfer_descs(xfer_list, mem_type)
            if descs is None:
                raise nixlBind.nixlInvalidParamError("invalid transfer descriptors (see the log)")
            handle = self.agent.prepXferDlist(agent_name, descs, handles)
        return nixl_prepped_dlist_handle(self.agent, handle)

    def make_prepped_xfer(
        self,
        operation: str,
        local_xfer_side: nixl_prepped_dlist_handle,
        local_indices: Any,
        remote_xfer_side: nixl_prepped_dlist_handle,
        remote_indices: Any,
        notif_msg: bytes = b"",
        backends: list[str] = [],  # noqa: B006
        skip_desc_merge: bool = False,
    ) -> nixl_xfer_handle:
        op = self.nixl_ops[operation]
        handle = self.agent.makeXferReq(op, local_xfer_side._handle, local_indices,
                                        remote_xfer_side._handle, remote_indices, notif_msg,
                                        self._handles(backends), skip_desc_merge)
        return nixl_xfer_handle(self.agent, handle)

    def initialize_xfer(self, operation: str, local_descs: Any, remote_descs: Any,
                        remote_agent: str, notif_msg: bytes = b"",
                        backends: list[str] = []) -> nixl_xfer_handle:  # noqa: B006
        op = self.nixl_ops[operation]
        local = self.get_xfer_descs(local_descs)
        remote = self.get_xfer_descs(remote_descs)
        if local is None or remote is None:
            raise nixlBind.nixlInvalidParamError("invalid transfer descriptors (see the log)")
        handle = self.agent.createXferReq(op, local, remote, remote_agent, notif_msg,
                                          self._handles(backends))
        return nixl_xfer_handle(self.agent, handle)

    def estimate_xfer_cost(self, req_handle: nixl_xfer_handle) -> tuple[int, int, str]:
        duration, margin, method = self.agent.estimateXferCost(req_handle._handle)
        name = ("ANALYTICAL_BACKEND" if method == nixlBind.NIXL_COST_ANALYTICAL_BACKEND
                else "UNKNOWN")
        return duration, margin, name

    def transfer(self, handle: nixl_xfer_handle, notif_msg: bytes = b"") -> str:
        status = self.agent.postXferReq(handle._handle, notif_msg)
        return "DONE" if status == 0 else "PROC" if status == 1 else "ERR"

    def check_xfer_state(self, handle: nixl_xfer_handle) -> str:
        status = self.agent.getXferStatus(handle._handle)
        return "DONE" if status == 0 else "PROC" if status == 1 else "ERR"

    def get_xfer_telemetry(self, handle: nixl_xfer_handle) -> nixlXferTelemetry:
        return self.agent.getXferTelemetry(handle._handle)

    def get_metrics(self) -> list[dict[str, Any]]:
        """ferry's extension: every metric series of the agent (transfer
        counters and histograms with telemetry on, the host-memory ledger
        always), as dicts of name, kind, labels, value (docs/telemetry.md)."""
        return self.agent.getMetrics()

    def get_metrics_text(self) -> str:
        """ferry's extension: the metrics in Prometheus' text format."""
        return self.agent.getMetricsText()

    def query_xfer_backend(self, handle: nixl_xfer_handle) -> str:
        b_handle = self.agent.queryXferBackend(handle._handle)
        return next(name for name, h in self.backends.items() if h == b_handle)

    def release_xfer_handle(self, handle: nixl_xfer_handle) -> None:
        handle.release()

    def release_dlist_handle(self, handle: nixl_prepped_dlist_handle) -> None:
        handle.release()

    # ---- memory views (UCX's GPU device API; ferry: nixlNotSupportedError) ----

    def prep_mem_view(self, dlist: Any, *, backends: Optional[list[str]] = None) -> int:
        return self.agent.prepMemView(dlist, self._handles(backends))

    def release_mem_view(self, mvh: int) -> None:
        self.agent.releaseMemView(mvh)

    # ---- notifications ----

    def get_new_notifs(self, backends: list[str] = []) -> dict[str, list[bytes]]:  # noqa: B006
        return self.agent.getNotifs({}, self._handles(backends))

    def update_notifs(self, backends: list[str] = []) -> dict[str, list[bytes]]:  # noqa: B006
        self.notifs = self.agent.getNotifs(self.notifs, self._handles(backends))
        return self.notifs

    def check_remote_xfer_done(self, remote_agent_name: str, lookup_tag: bytes,
                               backends: list[str] = [], tag_is_prefix: bool = True) -> bool:  # noqa: B006
        """True (and that message removed) once a notification from the agent
        starts with lookup_tag (or contains it, with tag_is_prefix=False)."""
        msgs = self.update_notifs(backends).get(_text(remote_agent_name))
        if not msgs:
            return False
        lookup_tag = _blob(lookup_tag)
        for i, msg in enumerate(msgs):
            if msg.startswith(lookup_tag) if tag_is_prefix else lookup_tag in msg:
                del msgs[i]
                return True
        return False

    def send_notif(self, remote_agent_name: str, notif_msg: bytes,
                   backend: Optional[str] = None) -> None:
        self.agent.genNotif(remote_agent_name, notif_msg,
                            [] if backend is None else [self.backends[backend]])

    # ---- metadata ----

    def get_agent_metadata(self) -> bytes:
        return self.agent.getLocalMD()

    def get_partial_agent_metadata(self, descs: Any, inc_conn_info: bool = False,
                                   backends: list[str] = []) -> bytes:  # noqa: B006
        return self.agent.getLocalPartialMD(self._partial(descs), inc_conn_info,
                                            self._handles(backends))

    def _partial(self, descs: Any) -> nixlRegDList:
        if descs is None:
            return nixlRegDList(nixlBind.DRAM_SEG)
        return self._reg_or_raise(descs, None)

    def add_remote_agent(self, metadata: bytes) -> bytes:
        return self.agent.loadRemoteMD(metadata)

    def remove_remote_agent(self, agent: str) -> None:
        self.agent.invalidateRemoteMD(agent)

    def send_local_metadata(self, ip_addr: str = "", port: int = DEFAULT_COMM_PORT) -> None:
        self.agent.sendLocalMD(ip_addr, port)

    def send_partial_agent_metadata(self, descs: Any, inc_conn_info: bool = False,
                                    backends: list[str] = [], ip_addr: str = "",  # noqa: B006
                                    port: int = DEFAULT_COMM_PORT, label: str = "") -> None:
        self.agent.sendLocalPartialMD(self._partial(descs), inc_conn_info, self._handles(backends),
                                      ip_addr, port, label)

    def fetch_remote_metadata(self, remote_agent: str, ip_addr: str = "",
                              port: int = DEFAULT_COMM_PORT, label: str = "") -> None:
        """Starts fetching (non-blocking); check_remote_metadata tells when it is loaded."""
        self.agent.fetchRemoteMD(remote_agent, ip_addr, port, label)

    def invalidate_local_metadata(self, ip_addr: str = "", port: int = DEFAULT_COMM_PORT) -> None:
        """Asks the peer at ip_addr:port to forget this agent. As NIXL's (which
        queues it to its listener thread), a peer that is gone already is no
        error: it is logged."""
        try:
            self.agent.invalidateLocalMD(ip_addr, port)
        except (_ferry.TimedOutError, _ferry.IoError) as e:
            logger.warning("invalidate_local_metadata(%s, %s): %s", ip_addr, port, e)

    def check_remote_metadata(self, agent: str, descs: Any = None) -> bool:
        if descs is None:
            descs = nixlXferDList(nixlBind.DRAM_SEG)
        return self.agent.checkRemoteMD(agent, descs) == nixlBind.NIXL_SUCCESS

    def get_listen_port(self) -> int:
        """The side-channel listener's port (0 when not listening; ferry's addition)."""
        return self.agent.ferry_agent.listen_port or 0

    # ---- descriptors ----

    def _mem(self, mem_type: Optional[str]) -> Any:
        return None if mem_type is None else self.nixl_mems[mem_type]

    def get_xfer_descs(self, descs: Any, mem_type: Optional[str] = None, *,
                       is_sorted: bool = False) -> Optional[nixlXferDList]:
        """A nixlXferDList from (addr, len, dev) tuples (with mem_type), an Nx3
        array (with mem_type), a contiguous tensor, a list of tensors, or a
        nixlXferDList; None (and an error logged) when invalid."""
        if isinstance(descs, nixlXferDList):
            return descs
        if isinstance(descs, (nixlRegDList, nixlRemoteDList)):
            logger.error("RegList type detected for transfer, please use XferList")
            return None
        mem = self._mem(mem_type)
        try:
            if isinstance(descs, _ferry.DList):
                return descs.copy(with_meta=False, cls=nixlXferDList)
            return to_dlist(descs, mem, cls=nixlXferDList, allow_meta=False)
        except (TypeError, ValueError, IndexError, OverflowError, _ferry.Error) as e:
            logger.error("invalid transfer descriptors: %s", e)
            return None

    def get_remote_descs(self, descs: Any, mem_type: Optional[str] = None
                         ) -> Optional[nixlRemoteDList]:
        """A nixlRemoteDList from (addr, len, dev, remote agent name) tuples
        with mem_type, or a nixlRemoteDList; None (and an error logged) else."""
        if isinstance(descs, nixlRemoteDList):
            return descs
        if mem_type is None:
            logger.error("Please specify a mem type")
            return None
        try:
            if not descs or any(len(d) != 4 for d in descs):
                raise ValueError("4-tuple list (addr, len, dev_id, agent_name) needed")
            return nixlRemoteDList(self.nixl_mems[mem_type], list(descs))
        except (TypeError, ValueError, OverflowError, _ferry.Error) as e:
            logger.error("invalid remote descriptors: %s", e)
            return None

    def get_reg_descs(self, descs: Any, mem_type: Optional[str] = None, *,
                      is_sorted: bool = False) -> Optional[nixlRegDList]:
        """A nixlRegDList from (addr, len, dev, meta) tuples (with mem_type),
        an Nx3 array (with mem_type), a contiguous tensor, a list of tensors,
        or a nixlRegDList; None (and an error logged) when invalid."""
        if isinstance(descs, nixlRegDList):
            return descs
        if isinstance(descs, (nixlXferDList, nixlRemoteDList)):
            logger.error("XferList type detected for registration, please use RegList")
            return None
        mem = self._mem(mem_type)
        try:
            if isinstance(descs, _ferry.DList):
                return descs.copy(cls=nixlRegDList)
            if isinstance(descs, (list, tuple)) and descs and isinstance(descs[0], tuple) \
                    and len(descs[0]) != 4:
                raise ValueError("4-tuple list needed for registration")
            return to_dlist(descs, mem, cls=nixlRegDList)
        except (TypeError, ValueError, IndexError, OverflowError, _ferry.Error) as e:
            logger.error("invalid registration descriptors: %s", e)
            return None

    def get_serialized_descs(self, descs: Any) -> bytes:
        return pickle.dumps(descs)

    def deserialize_descs(self, serialized_descs: bytes) -> Any:
        return pickle.loads(serialized_descs)


def _text(value: Any) -> Any:
    """Agent names may come as bytes (add_remote_agent returns them so)."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _blob(value: Any) -> Any:
    return value.encode() if isinstance(value, str) else value


def _regular_run(obj: Any) -> Any:
    """An Nx3 NumPy array of equally spaced descriptors of one length and
    device (an engine's every block slot) as the 1x5 strided run it is;
    None for anything else."""
    if type(obj).__module__ != "numpy" or getattr(obj, "ndim", 0) != 2 \
            or obj.shape[1] != 3 or obj.shape[0] < 2 or obj.dtype.kind not in "iu":
        return None
    np = sys.modules["numpy"]
    addr, size, dev = obj[:, 0], obj[:, 1], obj[:, 2]
    stride = int(addr[1]) - int(addr[0])
    if stride < int(size[0]) or int(size[0]) <= 0 or not (np.diff(addr) == stride).all() \
            or not (size == size[0]).all() or not (dev == dev[0]).all():
        return None
    return np.array([[int(addr[0]), int(size[0]), int(dev[0]), stride, obj.shape[0]]],
                    dtype=np.uint64)


def _is_strided_array(obj: Any) -> bool:
    shape = getattr(obj, "shape", None)
    return getattr(obj, "ndim", 0) == 2 and shape is not None and shape[1] == 5 \
        and not _is_torch_tensor(obj)
