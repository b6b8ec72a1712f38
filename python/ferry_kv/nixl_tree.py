# SPDX-License-Identifier: Apache-2.0
"""Makes a package (``nixl``, ``nixl_cu12``, ``nixl_cu13``) NIXL's import tree
on ferry: its submodules ``_api``, ``_bindings``, ``_utils`` and ``logging``
*are* ferry_kv's modules (the same objects, so a test that monkeypatches
``nixl._bindings.nixlAgent`` changes what ``nixl._api`` builds on), and their
public names are the package's, as NIXL's packages arrange."""
from __future__ import annotations

import sys

from . import nixl as _api
from . import nixl_bindings as _bindings
from . import nixl_logging as _logging
from . import nixl_utils as _utils

SUBMODULES = {"_api": _api, "_bindings": _bindings, "_utils": _utils, "logging": _logging}


def install(package: str) -> None:
    """Binds the submodules under package (already in sys.modules) and
    copies their public names into it."""
    pkg = sys.modules[package]
    for sub, module in SUBMODULES.items():
        sys.modules[f"{package}.{sub}"] = module
        setattr(pkg, sub, module)
    for module in SUBMODULES.values():
        for attr in dir(module):
            if not attr.startswith("_"):
                setattr(pkg, attr, getattr(module, attr))
    pkg.BACKEND = "ferry"
