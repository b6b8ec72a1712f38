# SPDX-License-Identifier: Apache-2.0
"""nixl._bindings on ferry: descriptor lists, constants, telemetry, exceptions."""
from ferry_kv.nixl_bindings import *  # noqa: F401,F403
from ferry_kv.nixl_bindings import (  # noqa: F401  (names star-import skips or tools look for)
    DEFAULT_COMM_PORT,
    NIXL_INIT_AGENT,
    nixlBackendError,
    nixlCancelledError,
    nixlInvalidParamError,
    nixlMismatchError,
    nixlNoTelemetryError,
    nixlNotAllowedError,
    nixlNotFoundError,
    nixlNotPostedError,
    nixlNotSupportedError,
    nixlRegDList,
    nixlRemoteDisconnectError,
    nixlRepostActiveError,
    nixlUnknownError,
    nixlXferDList,
    nixlXferTelemetry,
)
