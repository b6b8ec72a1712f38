# SPDX-License-Identifier: Apache-2.0
"""NIXL's ``nixl.logging``: the "nixl" logger tree, its default handler, and
NIXL_LOG_LEVEL.

As NIXL's, the first get_logger() (or setup_logging()) installs a console
handler on the "nixl" logger (INFO, stdout, not propagated) and applies
NIXL_LOG_LEVEL (TRACE, DEBUG, INFO, WARN, ERROR, FATAL). The same variable
sets the C library's level (libferry reads it when FERRY_LOG_LEVEL is unset).
"""
from __future__ import annotations

import logging
import logging.config
import os

_logging_configured = False

LOGGING_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "simpleFormatter": {
            "format": "%(asctime)s NIXL %(levelname)-7s %(filename)s:%(lineno)d %(message)s",
            "datefmt": "%Y-%m-%d %H:%M:%S",
        }
    },
    "handlers": {
        "consoleHandler": {
            "class": "logging.StreamHandler",
            "level": "INFO",
            "formatter": "simpleFormatter",
            "stream": "ext://sys.stdout",
        }
    },
    "loggers": {"nixl": {"level": "INFO", "handlers": ["consoleHandler"], "propagate": False}},
}

# NIXL_LOG_LEVEL's names; TRACE is finer than DEBUG in the C library and
# DEBUG in Python's logging.
_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO,
           "WARN": logging.WARNING, "WARNING": logging.WARNING, "ERROR": logging.ERROR,
           "FATAL": logging.CRITICAL}


def set_log_level_by_env(nixl_logger: logging.Logger) -> None:
    """Sets nixl_logger's level from NIXL_LOG_LEVEL when it is set (a wrong
    value is reported and ignored)."""
    env = os.getenv("NIXL_LOG_LEVEL")
    if not env:
        return
    level = _LEVELS.get(env.strip().upper())
    if level is None:
        nixl_logger.warning("Invalid NIXL_LOG_LEVEL value '%s'. Using configuration default.", env)
        return
    nixl_logger.setLevel(level)
    nixl_logger.info("Log level set to %s from NIXL_LOG_LEVEL environment variable",
                     env.strip().upper())


def setup_logging() -> None:
    """Installs LOGGING_CONFIG once (NIXL's default handler) and applies
    NIXL_LOG_LEVEL. NIXL_DEBUG_LOGGING=1 lets logging errors raise."""
    global _logging_configured
    if _logging_configured:
        return
    logging.config.dictConfig(LOGGING_CONFIG)
    set_log_level_by_env(logging.getLogger("nixl"))
    logging.raiseExceptions = os.getenv("NIXL_DEBUG_LOGGING", "").lower() in ("true", "1", "yes")
    _logging_configured = True


def get_logger(name: str) -> logging.Logger:
    """The logger "nixl.<name without leading underscores>"."""
    setup_logging()
    return logging.getLogger("nixl." + name.lstrip("_"))
