# SPDX-License-Identifier: Apache-2.0
"""nixl.logging on ferry: get_logger(name) -> logger "nixl.<name>"."""
from ferry_kv.nixl_logging import get_logger  # noqa: F401
