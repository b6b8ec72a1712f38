# SPDX-License-Identifier: Apache-2.0
"""Type stub of ferry_kv._ferry, the CPython extension over ferry's C API
(python/ferry_kv/_ext/*.c). Use the ferry_kv package; this describes what
it re-exports. Descriptors are (addr, len, dev_id[, meta]) tuples; memory
types are MEM_* ints or their names ("DRAM", ...); ops are OP_READ/OP_WRITE."""

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar, Union

_MemType = Union[int, str]
_Desc = Union[Tuple[int, int, int], Tuple[int, int, int, bytes]]
_Backends = Optional[Sequence[Union["Backend", str]]]
_Indices = Any  # a sequence of ints or a 1-D integer array
_D = TypeVar("_D", bound="DList")

# ---- constants ----
MEM_DRAM: int
MEM_VRAM: int
MEM_FILE: int
MEM_BLOCK: int
MEM_OBJ: int
OP_READ: int
OP_WRITE: int
SYNC_RW: int
SYNC_STRICT: int
SYNC_NONE: int
CAP_LOCAL: int
CAP_REMOTE: int
CAP_NOTIF: int
CAP_PROGRESS: int
COST_ANALYTICAL: int
COST_MEASURED: int
OK: int
IN_PROGRESS: int
NOTIF_MAX_LEN: int
NAME_MAX: int
VERSION: int
TIMEOUT_NONE: int
XFER_TIMEOUT_DEFAULT_MS: int
LOG_ERROR: int
LOG_WARN: int
LOG_INFO: int
LOG_DEBUG: int
LOG_TRACE: int

# ---- errors: one class per ferry_status, all under Error ----
class Error(Exception):
    status: int
    detail: Optional[str]

class NotPostedError(Error): ...
class InvalidParamError(Error): ...
class BackendError(Error): ...
class NotFoundError(Error): ...
class MismatchError(Error): ...
class NotAllowedError(Error): ...
class RepostActiveError(Error): ...
class UnknownError(Error): ...
class NotSupportedError(Error): ...
class RemoteDisconnectError(Error): ...
class CanceledError(Error): ...
class NoTelemetryError(Error): ...
class NoMemoryError(Error): ...
class TimedOutError(Error): ...
class BadMetadataError(Error): ...
class IoError(Error): ...
class NoResourcesError(Error): ...
class AuthError(Error): ...
class StaleError(Error): ...
class AbiError(Error): ...

error_classes: Dict[int, Type[Error]]

# ---- module functions ----
def version() -> str:
    """Version string of the loaded libferry."""
def strerror(status: int) -> str:
    """strerror(status) -> description"""
def status_name(status: int) -> str:
    """status_name(status) -> 'FERRY_ERR_...'"""
def raise_status(status: int, detail: Optional[str] = None) -> None:
    """Raises the exception of a negative status."""
def mem_type_parse(name: _MemType) -> int:
    """mem_type_parse(name or int) -> int"""
def mem_type_name(mem_type: _MemType) -> str:
    """mem_type_name(int or name) -> 'DRAM', ..."""
def last_error() -> str:
    """Why this thread's calls failed since the last exception or clear_error()."""
def clear_error() -> None:
    """Empties last_error()."""
def set_log_level(level: int) -> None:
    """0 error, 1 warn, 2 info, 3 debug, 4 trace (whole process)."""
def get_log_level() -> int:
    """The library's log level."""
def aligned_alloc(size: int) -> int:
    """Address of zeroed, page-aligned memory (free with aligned_free)."""
def aligned_free(address: int) -> None:
    """Frees what aligned_alloc gave."""
def fill(address: int, size: int, byte: int) -> None:
    """Sets size bytes at address to byte."""
def compare(addr_a: int, addr_b: int, size: int) -> bool:
    """True when the two ranges are equal."""
def memview(address: int, size: int) -> memoryview:
    """A writable memoryview over raw memory."""
def dlpack_info(obj: Any) -> Tuple[int, int, int, int]:
    """(addr, nbytes, device_type, device_id) of obj.__dlpack__()."""

# ---- classes ----
class DList:
    """DList(mem_type, descs=None): a descriptor list."""
    def __init__(self, mem_type: _MemType, descs: Optional[Any] = None) -> None: ...
    @property
    def mem_type(self) -> int: ...
    @property
    def mem_type_name(self) -> str: ...
    @property
    def is_strided(self) -> bool: ...
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> _Desc: ...
    def get(self, index: int, meta: bool = False) -> _Desc:
        """Descriptor as a tuple; meta=True always adds the meta bytes."""
    def append(self, desc: _Desc) -> None:
        """append((addr, len, dev_id[, meta]))"""
    def extend(self, descs: Any) -> None:
        """Tuples or an N x 3 integer array."""
    def remove_at(self, index: int) -> None:
        """Removes a descriptor (rebuilds the list)."""
    def clear(self) -> None:
        """Removes every descriptor."""
    def index(self, desc: Tuple[int, int, int]) -> int:
        """Position of the first equal descriptor."""
    def copy(self, with_meta: bool = True, cls: Optional[Type[_D]] = None) -> "DList":
        """A plain copy, as cls (default: the same type)."""
    def to_bytes(self) -> bytes:
        """Descriptors as N x 3 native uint64 bytes."""
    def serialize(self) -> bytes:
        """Bytes in ferry's wire format (type, descriptors, metadata)."""
    @classmethod
    def deserialize(cls: Type[_D], data: bytes) -> _D:
        """A list from serialize()'s bytes, as this class."""
    @classmethod
    def strided(cls: Type[_D], mem_type: _MemType, base: int, stride: int, count: int,
                length: int, dev_id: int = 0) -> _D:
        """Descriptor i is (base + i * stride, length, dev_id), never materialised."""
    def __reduce__(self) -> Any: ...

class Backend:
    """A backend of an agent (Agent.create_backend / Agent.backend)."""
    @property
    def name(self) -> str: ...
    @property
    def agent(self) -> "Agent": ...
    def caps(self) -> Tuple[int, List[str]]:
        """(flags, [mem type names])"""
    def params(self) -> Dict[str, str]:
        """Effective params."""

class Prepped:
    """A prepared descriptor list (Agent.prep). A context manager."""
    @property
    def released(self) -> bool: ...
    @property
    def remote(self) -> Optional[str]: ...
    @property
    def agent(self) -> "Agent": ...
    @property
    def _handle(self) -> int: ...
    def release(self) -> None:
        """Releases the prepared list; idempotent."""
    def __enter__(self) -> "Prepped": ...
    def __exit__(self, *exc: Any) -> None: ...

class XferTelemetry:
    """Telemetry of a request's last post."""
    start_us: int
    post_us: int
    xfer_us: int
    total_bytes: int
    desc_count: int
    backend: str
    done: bool

class Xfer:
    """A transfer request (Agent.make_xfer / Agent.create_xfer). A context manager."""
    @property
    def backend(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def error(self) -> Optional[str]: ...
    @property
    def released(self) -> bool: ...
    @property
    def agent(self) -> "Agent": ...
    @property
    def _handle(self) -> int: ...
    def post(self, notif: Optional[bytes] = None) -> int:
        """0 done inline, 1 in progress; errors raise."""
    def status(self) -> int:
        """0 done, 1 in progress; the error that ended the request raises."""
    def wait(self, timeout: Optional[float] = None) -> bool:
        """True when done, False on timeout (seconds)."""
    def set_notif(self, msg: Optional[bytes]) -> None:
        """Notification of the next post (None or b'': none)."""
    def set_timeout(self, ms: Optional[int]) -> None:
        """Deadline of the next posts (None/0: the agent's, TIMEOUT_NONE: none)."""
    def telemetry(self) -> XferTelemetry:
        """Telemetry of the last post."""
    def estimate(self) -> Tuple[float, float, int]:
        """(duration_us, error_margin_us, method)"""
    def release(self) -> None:
        """Releases the request (cancels it if in progress); idempotent."""
    def __enter__(self) -> "Xfer": ...
    def __exit__(self, *exc: Any) -> None: ...

class Alloc:
    """Memory a backend allocated (Agent.mem_alloc); DRAM supports the buffer protocol."""
    addr: int
    nbytes: int
    mem_type: str
    def free(self) -> None: ...
    def __enter__(self) -> Alloc: ...
    def __exit__(self, *exc: Any) -> None: ...
    def __buffer__(self, flags: int) -> memoryview: ...

class Agent:
    """A ferry agent. Zero numeric options keep the library's defaults."""
    def __init__(self, name: str, *, progress_thread: bool = False, progress_delay_us: int = 0,
                 listen: bool = False, listen_host: Optional[str] = None, listen_port: int = 0,
                 telemetry: bool = False, sync_mode: int = 0, notif_queue_cap: int = 0,
                 reg_cap_bytes: int = 0, sc_timeout_ms: int = 0, sc_max_frame: int = 0,
                 auth_key: Optional[Union[str, bytes]] = None, xfer_timeout_ms: int = 0,
                 etcd_endpoints: Optional[str] = None, etcd_namespace: Optional[str] = None,
                 etcd_ttl_s: int = 0, etcd_watch_timeout_ms: int = 0,
                 telemetry_exporters: Optional[str] = None, telemetry_dir: Optional[str] = None,
                 telemetry_prometheus_port: int = 0, telemetry_metrics: Optional[str] = None,
                 telemetry_buckets_us: Optional[str] = None,
                 reg_cap_backends: Optional[str] = None) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    @property
    def listen_port(self) -> Optional[int]: ...
    @property
    def notifs_dropped(self) -> int: ...
    def close(self) -> None:
        """Destroys the agent now; its handles become released."""
    def __enter__(self) -> "Agent": ...
    def __exit__(self, *exc: Any) -> None: ...
    def progress(self) -> None:
        """Drives every backend once."""
    def plugins(self) -> List[str]:
        """Names of the available plugins."""
    def plugin_params(self, plugin: str) -> List[Tuple[str, Optional[str], str]]:
        """[(key, default or None, help), ...]"""
    def mem_alloc(self, nbytes: int, mem_type: _MemType = "DRAM", dev_id: int = 0,
                  backend: Optional[Backend] = None) -> Alloc: ...
    def plugin_mem_types(self, plugin: str) -> List[str]:
        """Memory type names."""
    def plugin_path(self, plugin: str) -> Tuple[str, int]:
        """(path or 'builtin', ABI version)"""
    def create_backend(self, plugin: str, params: Optional[Mapping[str, Any]] = None) -> Backend: ...
    def backend(self, plugin: str) -> Backend:
        """The backend of that plugin (NotFoundError)."""
    def register(self, dlist: DList, backends: _Backends = None) -> None: ...
    def deregister(self, dlist: DList, backends: _Backends = None) -> None: ...
    def query_mem(self, dlist: DList, backend: Optional[Union[Backend, str]] = None
                  ) -> List[Optional[Dict[str, int]]]: ...
    def mem_usage(self) -> Dict[str, Tuple[int, int]]:
        """{mem type name: (bytes, regions)} registered"""
    def counters(self) -> Dict[str, int]:
        """Agent-wide counters."""
    def metrics(self) -> List[Dict[str, Any]]:
        """Every metric series: name, kind, labels, value (histograms: buckets, count)."""
    def metrics_text(self) -> str:
        """The metrics in Prometheus' text exposition format."""
    def prep(self, dlist: DList, agent_name: Optional[str] = None,
             backends: _Backends = None) -> Prepped: ...
    def make_xfer(self, op: int, local: Prepped, local_indices: _Indices, remote: Prepped,
                  remote_indices: _Indices, notif: Optional[bytes] = None,
                  backends: _Backends = None, skip_merge: bool = False,
                  backend: Optional[Union[Backend, str]] = None,
                  timeout_ms: Optional[int] = None) -> Xfer: ...
    def create_xfer(self, op: int, local: DList, remote: DList, remote_agent: str,
                    notif: Optional[bytes] = None, backends: _Backends = None,
                    skip_merge: bool = False, backend: Optional[Union[Backend, str]] = None,
                    timeout_ms: Optional[int] = None) -> Xfer: ...
    def send_notif(self, remote_agent: str, msg: bytes, backends: _Backends = None) -> None: ...
    def get_notifs(self, remote_agent: Optional[str] = None,
                   into: Optional[Dict[str, List[bytes]]] = None) -> Dict[str, List[bytes]]: ...
    def take_notif_tag(self, remote_agent: str, tag: bytes, prefix: bool = True) -> bool: ...
    def metadata(self) -> bytes:
        """Full local metadata."""
    def partial_metadata(self, dlists: Optional[Iterable[DList]] = None,
                         include_conn_info: bool = False, backends: _Backends = None) -> bytes: ...
    def load_metadata(self, blob: bytes) -> str:
        """Loads a peer's metadata; returns its agent name."""
    def invalidate_remote(self, name: str) -> None:
        """Forgets a remote agent."""
    def check_remote(self, remote_agent: str, dlist: Optional[DList] = None) -> bool: ...
    def connect(self, remote_agent: str, backends: _Backends = None) -> None: ...
    def generation(self, remote_agent: str) -> int: ...
    def send_metadata(self, ip: str, port: int) -> None: ...
    def send_partial_metadata(self, dlists: Iterable[DList], ip: str, port: int,
                              include_conn_info: bool = False, backends: _Backends = None,
                              label: Optional[str] = None) -> None: ...
    def fetch_metadata(self, remote_agent: str, ip: str, port: int, label: Optional[str] = None,
                       wait_ms: Optional[int] = None) -> None: ...
    def fetch_status(self, remote_agent: str) -> int:
        """Status code of the last fetch (0 done, 1 in progress)."""
    def invalidate_local(self, ip: str, port: int) -> None: ...
