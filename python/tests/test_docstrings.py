# SPDX-License-Identifier: Apache-2.0
"""Every public method and function of the package has a docstring, and the
type stub of the compiled module (ferry_kv/_ferry.pyi) names everything the
module has."""
import ast
import inspect
import os

import ferry_kv as ferry
from ferry_kv import _ferry

STUB = os.path.join(os.path.dirname(__file__), "..", "ferry_kv", "_ferry.pyi")


def _public(obj):
    return [n for n in dir(obj) if not n.startswith("_") or n in ("__enter__", "__exit__")]


def test_extension_methods_have_docstrings():
    missing = []
    for name in _public(_ferry):
        obj = getattr(_ferry, name)
        if inspect.isbuiltin(obj) and not obj.__doc__:
            missing.append(name)
        if inspect.isclass(obj) and obj.__module__.startswith("ferry_kv"):
            if not obj.__doc__:
                missing.append(name)
            for m in _public(obj):
                attr = getattr(obj, m, None)
                if callable(attr) and getattr(attr, "__objclass__", obj) is obj and not attr.__doc__:
                    missing.append("%s.%s" % (name, m))
    assert not missing, missing


def test_package_functions_have_docstrings():
    missing = [n for n in _public(ferry)
               if inspect.isfunction(getattr(ferry, n)) and not getattr(ferry, n).__doc__]
    assert not missing, missing


def test_stub_names_the_module():
    tree = ast.parse(open(STUB).read())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    have = {n for n in dir(_ferry) if not n.startswith("_")}
    assert not have - names, sorted(have - names)
