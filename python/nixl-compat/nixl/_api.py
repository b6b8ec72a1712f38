# SPDX-License-Identifier: Apache-2.0
"""nixl._api on ferry: the agent API (see ferry.nixl)."""
from ferry_kv.nixl import (  # noqa: F401
    DEFAULT_COMM_PORT,
    nixl_agent,
    nixl_agent_config,
    nixl_backend_handle,
    nixl_prepped_dlist_handle,
    nixl_thread_sync_t,
    nixl_xfer_handle,
)

from . import _bindings as nixlBind  # noqa: F401
from .logging import get_logger  # noqa: F401
