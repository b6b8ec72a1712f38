# SPDX-License-Identifier: Apache-2.0
"""NIXL's ``nixl.logging``: loggers under "nixl", level from NIXL_LOG_LEVEL."""
from __future__ import annotations

import logging
import os

_configured = False


def _configure() -> None:
    global _configured
    if _configured:
        return
    _configured = True
    level = os.environ.get("NIXL_LOG_LEVEL")
    if not level:
        return
    root = logging.getLogger("nixl")
    value = getattr(logging, level.upper(), None)
    if isinstance(value, int):
        root.setLevel(value)
    else:
        root.warning("ignoring NIXL_LOG_LEVEL=%r: not a logging level", level)


def get_logger(name: str) -> logging.Logger:
    """The logger "nixl.<name without leading underscores>"."""
    _configure()
    return logging.getLogger("nixl." + name.lstrip("_"))
