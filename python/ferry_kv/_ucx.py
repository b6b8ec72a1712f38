# SPDX-License-Identifier: Apache-2.0
"""Which UCX the UCX plugin runs on: a UCX wheel's when one is installed.

ferry's UCX plugin (``ferry_kv/plugins/libferry_plugin_ucx.so``) needs
``libucp.so.0`` and ``libucs.so.0``. The dynamic loader gives it the system's
(e.g. Debian 12's UCX 1.13) unless libraries of those names are already
loaded in the process. PyPI's UCX wheels (``libucx-cu12``, ``libucx-cu13``,
import name ``libucx``; what NIXL's and RAPIDS' wheels use) carry a newer UCX
and ``libucx.load_library()``, which loads it into the process. ``load()``,
run when ``ferry_kv/__init__.py`` imports this module (before anything of
ferry is loaded), does that when such a wheel is importable, so the plugin
then binds to the wheel's UCX; without one, nothing changes and the system's
UCX is used.

``FERRY_UCX=system`` skips the wheel (``RAPIDS_LIBUCX_PREFER_SYSTEM_LIBRARY``,
which libucx honours itself, prefers the system's library per library, the
wheel's where the system has none). ``UCX_SOURCE`` tells what was done:
``"libucx <version> (<dir>)"``, ``"system"`` (no wheel, or skipped), or
``"system (libucx failed: <why>)"``.
"""
from __future__ import annotations

import os

UCX_SOURCE = "system"


def load() -> str:
    """Loads the libucx wheel's UCX when it is installed (once); returns
    UCX_SOURCE. Never raises: on any problem the system's UCX stays in use."""
    global UCX_SOURCE
    if UCX_SOURCE != "system" or os.environ.get("FERRY_UCX", "").lower() in ("system", "0", "off", "no"):
        return UCX_SOURCE
    try:
        import libucx  # type: ignore[import-not-found]
    except ImportError:
        return UCX_SOURCE
    try:
        libucx.load_library()
    except Exception as e:  # noqa: BLE001  (a broken wheel must not break ferry)
        UCX_SOURCE = f"system (libucx failed: {type(e).__name__}: {e})"
        return UCX_SOURCE
    UCX_SOURCE = (f"libucx {getattr(libucx, '__version__', '?')} "
                  f"({os.path.join(os.path.dirname(libucx.__file__), 'lib')})")
    return UCX_SOURCE


load()  # on import: ferry_kv/__init__.py imports this module first
