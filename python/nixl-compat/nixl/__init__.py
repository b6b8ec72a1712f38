# SPDX-License-Identifier: Apache-2.0
"""The `nixl` import tree, backed by ferry (distribution ferry-nixl).

Submodules: nixl._api (nixl_agent, nixl_agent_config, nixl_thread_sync_t),
nixl._bindings, nixl._utils, nixl.logging; their public names are also
available from `nixl` itself, as NIXL's own package arranges.

A real NIXL wins unless asked otherwise: when a NIXL wheel's implementation
package (nixl_cu13, nixl_cu12) is importable, this package hands every
submodule over to it. FERRY_NIXL=1 forces ferry.
"""
import importlib
import importlib.util
import os
import sys

_SUBMODULES = ("_api", "_bindings", "_utils", "logging")


def _real_nixl():
    """Name of a real NIXL implementation package to defer to, or None."""
    if os.environ.get("FERRY_NIXL", "").strip().lower() in ("1", "yes", "true", "ferry"):
        return None
    for name in ("nixl_cu13", "nixl_cu12"):
        try:
            if importlib.util.find_spec(name) is not None:
                return name
        except (ImportError, ValueError):
            continue
    return None


def _export(module):
    for attr in dir(module):
        if not attr.startswith("_"):
            setattr(sys.modules[__name__], attr, getattr(module, attr))


def _load(package):
    for sub in _SUBMODULES:
        module = importlib.import_module(f"{package}.{sub}")
        sys.modules[f"{__name__}.{sub}"] = module
        setattr(sys.modules[__name__], sub, module)
        _export(module)


BACKEND = _real_nixl()
if BACKEND is None:
    try:
        import ferry_kv  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError(
            "the nixl tree of ferry-nixl needs the ferry package: pip install ./python") from e
    BACKEND = "ferry"
    _load(__name__)
else:
    _load(BACKEND)
