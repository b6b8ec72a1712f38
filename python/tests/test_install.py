# SPDX-License-Identifier: Apache-2.0
"""The installed package (distribution ferry-kv, built by meson-python or
scripts/prebuilt-wheel.py): libferry.so.0 and the extension in ferry_kv/, the
plugins in ferry_kv/plugins/ (libferry's default search path), an $ORIGIN run
path, no LD_LIBRARY_PATH or FERRY_PLUGIN_DIR needed, nothing imported from the
source tree; no `nixl` module unless the opt-in tree (ferry-kv-nixl: nixl,
nixl_cu12, nixl_cu13) is installed."""
import os
import re
import shutil
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

import ferry_kv as ferry
from conftest import COMPAT_DIR, HAS_UCX, PYTHON_DIR

PKG = os.path.dirname(ferry.__file__)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_LIBRARY_PATH", "FERRY_PLUGIN_DIR", "PYTHONPATH")}
    env.update(extra)
    return env


def run_py(code, **env):
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd="/",
                       env=clean_env(**env), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_library_and_plugins_are_bundled():
    assert os.path.isfile(os.path.join(PKG, "libferry.so.0"))
    ext = [f for f in os.listdir(PKG) if f.startswith("_ferry") and f.endswith(".so")]
    assert len(ext) == 1
    if HAS_UCX:
        assert os.path.isfile(os.path.join(PKG, "plugins", "libferry_plugin_ucx.so"))
    if shutil.which("readelf"):
        dyn = subprocess.run(["readelf", "-d", os.path.join(PKG, ext[0])], capture_output=True,
                             text=True, check=True).stdout
        assert re.search(r"R(UN)?PATH.*\[\$ORIGIN/?\]", dyn), dyn
        assert "[libferry.so.0]" in dyn


def test_installed_not_the_source_tree():
    """The suite runs against an installed distribution, never python/ferry_kv."""
    assert os.path.realpath(PKG) != os.path.realpath(os.path.join(PYTHON_DIR, "ferry_kv"))
    dist = metadata.distribution("ferry-kv")
    assert dist.metadata["Name"] == "ferry-kv"
    files = {str(f) for f in dist.files or ()}
    assert {"ferry_kv/libferry.so.0", "ferry_kv/__init__.py", "ferry_kv/_ucx.py"} <= files
    assert any(f.startswith("ferry_kv/plugins/libferry_plugin_") for f in files)
    # Only the package: no headers, pkg-config file, tools or nixl tree.
    assert all(f.startswith(("ferry_kv/", "ferry_kv-")) for f in files), sorted(files)


def test_extension_resolves_the_bundled_library():
    if not shutil.which("ldd"):
        pytest.skip("no ldd")
    ext = [f for f in os.listdir(PKG) if f.startswith("_ferry") and f.endswith(".so")][0]
    env = clean_env()
    out = subprocess.run(["ldd", os.path.join(PKG, ext)], capture_output=True, text=True,
                         env=env, check=True).stdout
    line = [ln for ln in out.splitlines() if "libferry.so.0" in ln][0]
    assert os.path.realpath(line.split("=>")[1].split()[0]) == \
        os.path.realpath(os.path.join(PKG, "libferry.so.0"))


def test_ucx_source_is_reported():
    """_ucx: a libucx wheel's UCX when one is importable, else the system's."""
    from ferry_kv import _ucx
    try:
        import libucx  # noqa: F401
        have_wheel = True
    except ImportError:
        have_wheel = False
    assert _ucx.UCX_SOURCE.startswith("libucx " if have_wheel else "system")
    if HAS_UCX:
        out = run_py("""
            import ferry_kv as ferry
            a = ferry.Agent("ucxsrc")
            a.create_backend("UCX")
            print(ferry._ucx.UCX_SOURCE.split()[0])
            print([l.split()[-1] for l in open("/proc/self/maps") if "libucp.so" in l][0])
        """)
        src, libucp = out.split()
        if src == "libucx":
            assert "/libucx/" in libucp
        else:
            assert "/libucx/" not in libucp


def test_works_without_library_paths():
    out = run_py("""
        import ferry_kv as ferry
        a = ferry.Agent("standalone")
        print(",".join(a.plugins()))
        if "UCX" in a.plugins():
            print(a.plugin_path("UCX")[0])
        print([l.split()[-1] for l in open("/proc/self/maps") if "libferry.so" in l][0])
    """)
    lines = out.split()
    assert "LOCAL" in lines[0].split(",")
    if HAS_UCX:
        assert lines[1] == os.path.join(PKG, "plugins", "libferry_plugin_ucx.so")
    assert os.path.dirname(lines[-1]) == PKG


def _real_nixl_installed():
    r = subprocess.run([sys.executable, "-c", "import nixl"], env=clean_env(), cwd="/",
                       capture_output=True)
    return r.returncode == 0


def test_ferry_alone_adds_no_nixl_module():
    if _real_nixl_installed():
        pytest.skip("a nixl package is installed in this environment")
    r = subprocess.run([sys.executable, "-c", "import nixl"], env=clean_env(), cwd="/",
                       capture_output=True, text=True)
    assert r.returncode != 0 and "No module named 'nixl'" in r.stderr


def test_compat_tree_is_ferry(tmp_path):
    out = run_py("""
        import nixl, ferry_kv as ferry
        from nixl._api import nixl_agent, nixl_agent_config, nixl_thread_sync_t
        from nixl._bindings import (nixlXferDList, nixlRegDList, DRAM_SEG, VRAM_SEG, FILE_SEG,
            BLK_SEG, OBJ_SEG, NIXL_SUCCESS, NIXL_IN_PROG, nixl_status_t, nixlXferTelemetry,
            nixlBackendError, nixlNotFoundError, nixlInvalidParamError,
            nixlRemoteDisconnectError, nixlCancelledError, nixlNoTelemetryError)
        from nixl._utils import malloc_passthru, free_passthru, ba_buf, verify_transfer
        from nixl.logging import get_logger
        assert nixl.nixl_agent is nixl_agent and nixl.DRAM_SEG == DRAM_SEG
        assert nixlRemoteDisconnectError is ferry.RemoteDisconnectError
        print(nixl.BACKEND, nixl.__file__)
    """, PYTHONPATH=COMPAT_DIR)
    backend, path = out.split()
    assert backend == "ferry" and path.startswith(COMPAT_DIR)


def test_compat_tree_is_one_set_of_modules():
    """nixl, nixl_cu12 and nixl_cu13 (the names engines import) are the same
    modules: patching nixl._bindings is seen by nixl._api, as with NIXL."""
    out = run_py("""
        import nixl, nixl_cu12, nixl_cu13, nixl._api, nixl._bindings
        import ferry_kv.nixl, ferry_kv.nixl_bindings
        assert nixl._bindings is ferry_kv.nixl_bindings is nixl_cu13._bindings
        assert nixl_cu12._api is nixl._api is ferry_kv.nixl
        assert nixl_cu12.nixl_agent is nixl.nixl_agent and nixl.HAVE_UCX_GPU_DEVICE_API is False
        print(nixl.BACKEND, nixl_cu12.BACKEND, nixl_cu13.BACKEND)
    """, PYTHONPATH=COMPAT_DIR)
    assert out.split() == ["ferry"] * 3
