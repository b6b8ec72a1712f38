# SPDX-License-Identifier: Apache-2.0
"""A drop-in for NIXL's Python agent API (``nixl._api``), backed by ferry.

``nixl_agent`` and ``nixl_agent_config`` take the same arguments, defaults and
return the same values as NIXL's: transfer states "DONE"/"PROC" (errors raise
the status's exception, as NIXL's bindings do), notification maps
``{agent_name: [bytes, ...]}``, ``add_remote_agent`` returns the name as
bytes, memory types "DRAM", "VRAM", "FILE", "BLOCK", "OBJ", "cpu", "cuda".
Invalid descriptor inputs to get_xfer_descs/get_reg_descs return None; unknown
memory types and operations raise KeyError.

Where ferry differs: metadata without an address (etcd) is not available yet
(NotSupportedError); query_memory also answers for DRAM/VRAM (the
registered region); the handles are ferry.Prepped / ferry.Xfer,
which have NIXL's release() and are context managers too.
"""
from __future__ import annotations

import enum
import logging
import os
import pickle
from typing import Any, Optional, Union

from . import _ferry
from . import nixl_bindings as nixlBind
from ._descs import to_dlist
from .nixl_bindings import (  # noqa: F401  (NIXL exposes these through _api too)
    DEFAULT_COMM_PORT,
    nixlRegDList,
    nixlXferDList,
    nixlXferTelemetry,
)

logger = logging.getLogger("ferry.nixl")

# Handles as NIXL returns them: objects with release().
nixl_prepped_dlist_handle = _ferry.Prepped
nixl_xfer_handle = _ferry.Xfer
nixl_backend_handle = _ferry.Backend

_TRUTHY = {"1", "y", "yes", "true", "on"}


class nixl_thread_sync_t(enum.Enum):
    """Thread synchronisation modes (values: nixl._bindings' constants)."""

    NIXL_THREAD_SYNC_NONE = nixlBind.NIXL_THREAD_SYNC_NONE
    NIXL_THREAD_SYNC_STRICT = nixlBind.NIXL_THREAD_SYNC_STRICT
    NIXL_THREAD_SYNC_RW = nixlBind.NIXL_THREAD_SYNC_RW
    NIXL_THREAD_SYNC_DEFAULT = nixlBind.NIXL_THREAD_SYNC_DEFAULT


class nixl_agent_config:
    """Configuration of a nixl_agent (NIXL's arguments and defaults).

    listen_port 0 picks a free port (nixl_agent.get_listen_port() tells it).
    sync_mode None: ferry's reader/writer locking, safe with the progress and
    listener threads."""

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
            raise TypeError(f"sync_mode must be a nixl_thread_sync_t, not {type(sync_mode).__name__}")
        self.backends = list(backends)
        self.enable_pthread = enable_prog_thread
        self.enable_listen = enable_listen_thread
        self.port = listen_port
        self.capture_telemetry = capture_telemetry
        self.num_threads = num_threads
        self.sync_mode = sync_mode


def _ferry_sync_mode(conf: nixl_agent_config) -> int:
    """ferry's locking for a NIXL sync mode. NONE needs one thread at a time,
    which ferry's own progress and listener threads would break: with either
    of them on, NONE becomes RW (a reader/writer lock, cheap on the hot path)."""
    mode = conf.sync_mode
    if mode is None:
        return _ferry.SYNC_RW
    if mode.value == nixlBind.NIXL_THREAD_SYNC_STRICT:
        return _ferry.SYNC_STRICT
    if mode.value == nixlBind.NIXL_THREAD_SYNC_RW:
        return _ferry.SYNC_RW
    threads = conf.enable_pthread or conf.enable_listen
    return _ferry.SYNC_RW if threads else _ferry.SYNC_NONE


def _telemetry_wanted(conf: nixl_agent_config) -> bool:
    env = os.environ.get("NIXL_TELEMETRY_ENABLE", "")
    return bool(conf.capture_telemetry) or env.strip().lower() in _TRUTHY


def _name(name: Union[str, bytes]) -> str:
    return name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else name


def _msg(msg: Union[bytes, str, None]) -> Any:
    return msg.encode() if isinstance(msg, str) else msg


class nixl_agent:
    """A NIXL agent on ferry. ``agent.agent`` is the ferry.Agent underneath."""

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
        self.name = _name(agent_name)
        self.agent = _ferry.Agent(
            self.name,
            progress_thread=bool(conf.enable_pthread),
            listen=bool(conf.enable_listen),
            listen_port=int(conf.port) if conf.enable_listen else 0,
            telemetry=_telemetry_wanted(conf),
            sync_mode=_ferry_sync_mode(conf),
        )
        self.notifs: dict[str, list[bytes]] = {}
        self.backends: dict[str, _ferry.Backend] = {}
        self.backend_mems: dict[str, list[str]] = {}
        self.backend_options: dict[str, dict[str, str]] = {}
        self.plugin_list: list[str] = self.agent.plugins()
        if not self.plugin_list:
            raise RuntimeError("No plugins available for NIXL, cannot start transfers!")
        self.plugin_b_options: dict[str, dict[str, str]] = {}
        self.plugin_mem_types: dict[str, list[str]] = {}
        self.nixl_mems = {
            "DRAM": nixlBind.DRAM_SEG, "VRAM": nixlBind.VRAM_SEG, "FILE": nixlBind.FILE_SEG,
            "BLOCK": nixlBind.BLK_SEG, "OBJ": nixlBind.OBJ_SEG,
            "cpu": nixlBind.DRAM_SEG, "cuda": nixlBind.VRAM_SEG,
        }
        self.nixl_ops = {"WRITE": nixlBind.NIXL_WRITE, "READ": nixlBind.NIXL_READ}
        self._create_backends(self.plugin_list if instantiate_all else conf.backends, conf,
                              best_effort=instantiate_all)
        logger.info("Initialized NIXL agent: %s", self.name)

    def _create_backends(self, names: list[str], conf: nixl_agent_config,
                         best_effort: bool = False) -> None:
        """Creates the named backends. With instantiate_all (best_effort), a
        plugin this host cannot run (e.g. CUDA without a GPU) is skipped with
        a warning instead of failing the agent."""
        for name in names:
            if name not in self.plugin_list:
                logger.warning("Skipping backend registration %s due to the missing plugin.", name)
                continue
            init: dict[str, str] = {}
            if conf.num_threads > 0 and "num_threads" in dict(self._plugin_params(name)):
                init["num_threads"] = str(conf.num_threads)
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

    def _plugin_params(self, plugin: str) -> list:
        return [(key, default) for key, default, _help in self.agent.plugin_params(plugin)]

    def _load_plugin(self, plugin: str) -> bool:
        if plugin not in self.plugin_list:
            return False
        if plugin not in self.plugin_b_options:
            params = self._plugin_params(plugin)
            self.plugin_b_options[plugin] = {k: d or "" for k, d in params}
            mems = self.agent.plugin_mem_types(plugin)
            self.plugin_mem_types[plugin] = [nixlBind.MEM_SEG_NAMES[m] for m in mems]
        return True

    def get_plugin_list(self) -> list[str]:
        return self.plugin_list

    def get_plugin_mem_types(self, backend: str) -> list[str]:
        if not self._load_plugin(backend):
            logger.warning("Plugin %s is not available to get its supported mem types.", backend)
            return []
        return self.plugin_mem_types[backend]

    def get_plugin_params(self, backend: str) -> dict[str, str]:
        if not self._load_plugin(backend):
            logger.warning("Plugin %s is not available to get its parameters.", backend)
            return {}
        return self.plugin_b_options[backend]

    def get_backend_mem_types(self, backend: str) -> list[str]:
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
        b = self.agent.create_backend(backend, dict(initParams))
        self.backends[backend] = b
        self.backend_options[backend] = b.params()
        self.backend_mems[backend] = [nixlBind.MEM_SEG_NAMES[m] for m in b.caps()[1]]
        logger.info("Backend %s was instantiated", backend)

    def _backends(self, names: Optional[list[str]]) -> Optional[list]:
        """Backend objects for names; KeyError for one not created, as NIXL."""
        if not names:
            return None
        return [self.backends[n] for n in names]

    # ---- memory ----

    def register_memory(self, reg_list: Any, mem_type: Optional[str] = None,
                        backends: list[str] = [], *, is_sorted: bool = False) -> nixlRegDList:  # noqa: B006
        descs = self.get_reg_descs(reg_list, mem_type)
        if descs is None:
            raise nixlBind.nixlInvalidParamError("invalid registration descriptors")
        self.agent.register(descs, self._backends(backends))
        return descs

    def deregister_memory(self, dereg_list: nixlRegDList, backends: list[str] = []) -> None:  # noqa: B006
        descs = self.get_reg_descs(dereg_list)
        if descs is None:
            raise nixlBind.nixlInvalidParamError("invalid registration descriptors")
        self.agent.deregister(descs, self._backends(backends))

    def query_memory(self, reg_list: Any, backend: str,
                     mem_type: Optional[str] = None) -> list[Optional[dict[str, str]]]:
        """Per descriptor: None when not found, else a dict of its properties
        (strings, as NIXL's). FILE: "size", "mode", "mtime" of the file named
        in the descriptor's metadata (NIXL's POSIX/GDS answer); DRAM/VRAM:
        "addr", "len", "dev_id" of the region registered with that backend
        which covers the descriptor (ferry's addition: NIXL's transport
        backends answer NOT_SUPPORTED). A backend is asked only about memory
        types it accepts: nixlNotSupportedError otherwise, as from NIXL."""
        descs = self.get_reg_descs(reg_list, mem_type)
        if descs is None:
            raise nixlBind.nixlInvalidParamError("invalid registration descriptors")
        if backend not in self.backends:
            raise ValueError(f"Backend '{backend}' not found. Available backends: {list(self.backends)}")
        infos = self.agent.query_mem(descs, self.backends[backend])
        return [None if i is None else {k: str(v) for k, v in i.items()} for i in infos]

    # ---- connections, prepared lists, requests ----

    def make_connection(self, remote_agent: str, backends: list[str] = []) -> None:  # noqa: B006
        self.agent.connect(remote_agent, self._backends(backends))

    def prep_xfer_dlist(self, agent_name: str, xfer_list: Any, mem_type: Optional[str] = None,
                        backends: list[str] = [], *, is_sorted: bool = False) -> _ferry.Prepped:  # noqa: B006
        descs = self.get_xfer_descs(xfer_list, mem_type)
        if descs is None:
            raise nixlBind.nixlInvalidParamError("invalid transfer descriptors")
        if agent_name in ("NIXL_INIT_AGENT", "", b"NIXL_INIT_AGENT", b""):
            agent_name = None
        return self.agent.prep(descs, agent_name, self._backends(backends))

    def make_prepped_xfer(
        self,
        operation: str,
        local_xfer_side: _ferry.Prepped,
        local_indices: Any,
        remote_xfer_side: _ferry.Prepped,
        remote_indices: Any,
        notif_msg: bytes = b"",
        backends: list[str] = [],  # noqa: B006
        skip_desc_merge: bool = False,
    ) -> _ferry.Xfer:
        op = self.nixl_ops[operation]
        return self.agent.make_xfer(op, local_xfer_side, local_indices, remote_xfer_side,
                                    remote_indices, notif_msg,
                                    self._backends(backends) if backends else None,
                                    skip_desc_merge)

    def initialize_xfer(self, operation: str, local_descs: Any, remote_descs: Any,
                        remote_agent: str, notif_msg: bytes = b"",
                        backends: list[str] = []) -> _ferry.Xfer:  # noqa: B006
        op = self.nixl_ops[operation]
        local = self.get_xfer_descs(local_descs)
        remote = self.get_xfer_descs(remote_descs)
        if local is None or remote is None:
            raise nixlBind.nixlInvalidParamError("invalid transfer descriptors")
        return self.agent.create_xfer(op, local, remote, remote_agent, _msg(notif_msg),
                                      self._backends(backends))

    def estimate_xfer_cost(self, req_handle: _ferry.Xfer) -> tuple[int, int, str]:
        duration, margin, method = req_handle.estimate()
        name = "ANALYTICAL_BACKEND" if method == _ferry.COST_ANALYTICAL else "UNKNOWN"
        return int(round(duration)), int(round(margin)), name

    def transfer(self, handle: _ferry.Xfer, notif_msg: bytes = b"") -> str:
        return "DONE" if handle.post(notif_msg) == 0 else "PROC"

    def check_xfer_state(self, handle: _ferry.Xfer) -> str:
        st = handle.status()
        return "DONE" if st == 0 else "PROC" if st == 1 else "ERR"

    def get_xfer_telemetry(self, handle: _ferry.Xfer) -> nixlXferTelemetry:
        return nixlXferTelemetry(handle.telemetry())

    def query_xfer_backend(self, handle: _ferry.Xfer) -> str:
        return handle.backend

    def release_xfer_handle(self, handle: _ferry.Xfer) -> None:
        handle.release()

    def release_dlist_handle(self, handle: _ferry.Prepped) -> None:
        handle.release()

    # ---- notifications ----

    def get_new_notifs(self, backends: list[str] = []) -> dict[str, list[bytes]]:  # noqa: B006
        self._backends(backends)  # ferry queues notifications per agent, not per backend
        return self.agent.get_notifs()

    def update_notifs(self, backends: list[str] = []) -> dict[str, list[bytes]]:  # noqa: B006
        self._backends(backends)
        self.agent.get_notifs(None, self.notifs)
        return self.notifs

    def check_remote_xfer_done(self, remote_agent_name: str, lookup_tag: bytes,
                               backends: list[str] = [], tag_is_prefix: bool = True) -> bool:  # noqa: B006
        """True (and that message removed) once a notification from the agent
        starts with lookup_tag (or contains it, with tag_is_prefix=False)."""
        self.update_notifs(backends)
        msgs = self.notifs.get(_name(remote_agent_name))
        tag = _msg(lookup_tag)
        if not msgs:
            return False
        for i, msg in enumerate(msgs):
            if (msg.startswith(tag) if tag_is_prefix else tag in msg):
                del msgs[i]
                return True
        return False

    def send_notif(self, remote_agent_name: str, notif_msg: bytes,
                   backend: Optional[str] = None) -> None:
        self.agent.send_notif(remote_agent_name, _msg(notif_msg),
                              None if backend is None else [self.backends[backend]])

    # ---- metadata ----

    def get_agent_metadata(self) -> bytes:
        return self.agent.metadata()

    def _partial_lists(self, descs: Any) -> list:
        dl = self.get_reg_descs(descs) if descs is not None else None
        if descs is not None and dl is None:
            raise nixlBind.nixlInvalidParamError("invalid registration descriptors")
        return [dl] if dl is not None and len(dl) else []

    def get_partial_agent_metadata(self, descs: Any, inc_conn_info: bool = False,
                                   backends: list[str] = []) -> bytes:  # noqa: B006
        return self.agent.partial_metadata(self._partial_lists(descs), inc_conn_info,
                                           self._backends(backends))

    def add_remote_agent(self, metadata: bytes) -> bytes:
        return self.agent.load_metadata(metadata).encode("utf-8", "surrogateescape")

    def remove_remote_agent(self, agent: str) -> None:
        self.agent.invalidate_remote(agent)

    @staticmethod
    def _need_peer(ip_addr: str) -> None:
        if not ip_addr:
            raise nixlBind.nixlNotSupportedError(
                "metadata without a peer address needs etcd, which ferry's C library does not "
                "offer yet; give ip_addr and port")

    def send_local_metadata(self, ip_addr: str = "", port: int = DEFAULT_COMM_PORT) -> None:
        self._need_peer(ip_addr)
        self.agent.send_metadata(ip_addr, port)

    def send_partial_agent_metadata(self, descs: Any, inc_conn_info: bool = False,
                                    backends: list[str] = [], ip_addr: str = "",  # noqa: B006
                                    port: int = DEFAULT_COMM_PORT, label: str = "") -> None:
        self._need_peer(ip_addr)
        self.agent.send_partial_metadata(self._partial_lists(descs), ip_addr, port,
                                         inc_conn_info, self._backends(backends), label or None)

    def fetch_remote_metadata(self, remote_agent: str, ip_addr: str = "",
                              port: int = DEFAULT_COMM_PORT, label: str = "") -> None:
        """Starts fetching (non-blocking); check_remote_metadata tells when it is loaded."""
        self._need_peer(ip_addr)
        self.agent.fetch_metadata(remote_agent, ip_addr, port, label or None)

    def invalidate_local_metadata(self, ip_addr: str = "", port: int = DEFAULT_COMM_PORT) -> None:
        """Asks the peer at ip_addr:port to forget this agent. Like NIXL's (which
        queues it to its listener thread), a peer that is gone already is no
        error: it is logged."""
        self._need_peer(ip_addr)
        try:
            self.agent.invalidate_local(ip_addr, port)
        except (_ferry.TimedOutError, _ferry.IoError) as e:
            logger.warning("invalidate_local_metadata(%s, %s): %s", ip_addr, port, e)

    def check_remote_metadata(self, agent: str, descs: Any = None) -> bool:
        dl = None
        if descs is not None:
            dl = self.get_xfer_descs(descs)
            if dl is None:
                dl = self.get_reg_descs(descs)
            if dl is None:
                raise nixlBind.nixlInvalidParamError("invalid descriptors")
        return self.agent.check_remote(agent, dl if dl is not None and len(dl) else None)

    def get_listen_port(self) -> int:
        """The side-channel listener's port (0 when not listening)."""
        return self.agent.listen_port or 0

    # ---- descriptors ----

    def _mem(self, mem_type: Optional[str]) -> Any:
        return None if mem_type is None else self.nixl_mems[mem_type]

    def get_xfer_descs(self, descs: Any, mem_type: Optional[str] = None) -> Optional[nixlXferDList]:
        """A nixlXferDList from (addr, len, dev) tuples, an N x 3 array, a tensor,
        tensors, or a nixlXferDList; None (and an error logged) when invalid."""
        if isinstance(descs, nixlXferDList):
            return descs
        if isinstance(descs, nixlRegDList):
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

    def get_reg_descs(self, descs: Any, mem_type: Optional[str] = None) -> Optional[nixlRegDList]:
        """A nixlRegDList from (addr, len, dev[, meta]) tuples, an N x 3 array, a
        tensor, tensors, or a nixlRegDList; None (and an error logged) when invalid."""
        if isinstance(descs, nixlRegDList):
            return descs
        if isinstance(descs, nixlXferDList):
            logger.error("XferList type detected for registration, please use RegList")
            return None
        mem = self._mem(mem_type)
        try:
            if isinstance(descs, _ferry.DList):
                return descs.copy(cls=nixlRegDList)
            return to_dlist(descs, mem, cls=nixlRegDList)
        except (TypeError, ValueError, IndexError, OverflowError, _ferry.Error) as e:
            logger.error("invalid registration descriptors: %s", e)
            return None

    def get_serialized_descs(self, descs: Any) -> bytes:
        return pickle.dumps(descs)

    def deserialize_descs(self, serialized_descs: bytes) -> Any:
        return pickle.loads(serialized_descs)

