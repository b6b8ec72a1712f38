# SPDX-License-Identifier: Apache-2.0
"""Builds the ferry Python package against the libferry of this source tree.

``pip install ./python`` (from the repository root) runs this. It
 1. builds libferry and its plugins with Meson + ninja, in
    ``python/build/libferry`` (or uses ``$FERRY_BUILD_DIR``, e.g. the tree's
    ``build/``, which it brings up to date with ninja; with
    ``FERRY_PREBUILT=1``, or where there is no ninja, it takes that folder's
    libferry and plugins as they are);
 2. compiles the extension ``ferry_kv._ferry`` against ``include/`` and that
    libferry, with an ``$ORIGIN`` run path;
 3. copies libferry.so.0 into the package and the plugins into
    ``ferry_kv/plugins/``, where libferry looks for them by default.
So the installed package needs neither LD_LIBRARY_PATH nor FERRY_PLUGIN_DIR.
"""
import glob
import os
import shutil
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("FERRY_SOURCE_DIR") or os.path.dirname(HERE)
SONAME = "libferry.so.0"


def lib_build_dir() -> str:
    return os.path.abspath(os.environ.get("FERRY_BUILD_DIR") or
                           os.path.join(HERE, "build", "libferry"))


def run(cmd: list) -> None:
    print("ferry setup:", " ".join(cmd), flush=True)
    subprocess.check_call(cmd)


def prebuilt(bdir: str) -> bool:
    """True when bdir's libferry is to be used as it is, without ninja:
    FERRY_PREBUILT=1, or no ninja on this host (a build folder carried to a
    machine without Meson, e.g. a GPU host)."""
    if os.environ.get("FERRY_PREBUILT", "") not in ("", "0") or shutil.which("ninja") is None:
        if not os.path.isfile(os.path.join(bdir, SONAME)):
            raise RuntimeError(f"no {SONAME} in {bdir}: build it there first (meson + ninja), "
                               "or set FERRY_BUILD_DIR to a folder that has one")
        print(f"ferry setup: using the libferry of {bdir} as it is (no ninja run)", flush=True)
        return True
    return False


def build_library(bdir: str) -> None:
    """Configures (once) and builds libferry and its plugins in bdir."""
    if prebuilt(bdir):
        return
    if not os.path.isfile(os.path.join(ROOT, "meson.build")):
        raise RuntimeError(f"ferry sources not found in {ROOT} (set FERRY_SOURCE_DIR)")
    if not os.path.isfile(os.path.join(bdir, "build.ninja")):
        run(["meson", "setup", bdir, ROOT, "-Dtests=false", "-Dfuzzing=disabled"])
    run(["ninja", "-C", bdir])


class BuildExt(build_ext):
    """build_ext that builds libferry first and bundles it with its plugins."""

    def run(self):
        bdir = lib_build_dir()
        build_library(bdir)
        for ext in self.extensions:
            ext.library_dirs.append(bdir)
        super().run()
        self.bundle(bdir)

    def bundle(self, bdir: str) -> None:
        dest = os.path.dirname(self.get_ext_fullpath("ferry_kv._ferry"))
        shutil.copyfile(os.path.realpath(os.path.join(bdir, SONAME)), os.path.join(dest, SONAME))
        plugins = os.path.join(dest, "plugins")
        os.makedirs(plugins, exist_ok=True)
        for old in glob.glob(os.path.join(plugins, "libferry_plugin_*.so")):
            os.remove(old)
        for so in sorted(glob.glob(os.path.join(bdir, "plugins", "libferry_plugin_*.so"))):
            shutil.copyfile(so, os.path.join(plugins, os.path.basename(so)))
            print("ferry setup: bundled plugin", os.path.basename(so), flush=True)


SOURCES = [f"ferry_kv/_ext/{f}.c" for f in
           ("module", "errors", "convert", "dlist", "agent", "handles", "query", "util")]

ext = Extension(
    "ferry_kv._ferry",
    sources=SOURCES,
    depends=["ferry_kv/_ext/fy_py.h"],
    include_dirs=[os.path.join(ROOT, "include")],
    libraries=["ferry"],
    runtime_library_dirs=["$ORIGIN"],
    extra_compile_args=["-std=c11", "-fvisibility=hidden", "-Wall", "-Wextra",
                        "-Wno-missing-field-initializers", "-Wno-cast-function-type"],
)

setup(
    ext_modules=[ext],
    cmdclass={"build_ext": BuildExt},
    packages=["ferry_kv"],
    include_package_data=False,
    package_data={"ferry_kv": ["py.typed"]},
)
