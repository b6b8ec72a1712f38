#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Builds a ferry-kv wheel from a build folder made elsewhere, without Meson.

    python scripts/prebuilt-wheel.py --build-dir BUILD [--out DIR]

For a host that has a copy of the repository and of a build folder (libferry
and its plugins, built by `meson setup build && ninja -C build` on another
machine) but neither Meson nor ninja nor a network: the GPU host
(python/tests/run-gpu-host.sh). It compiles only the extension
ferry_kv._ferry, with this interpreter's compiler and headers (sysconfig;
$CC and $CFLAGS are honoured), against include/ and BUILD's libferry, with an
$ORIGIN run path, and writes a wheel of the same layout as the one
meson-python builds (`pip install .`): libferry.so.0 and the extension in
ferry_kv/, the plugins in ferry_kv/plugins/. Install it with
`pip install --no-index --no-deps DIR/ferry_kv-*.whl`.

Only the standard library is used (no setuptools, wheel or pip). The wheel
is tagged for this interpreter (cpXY-cpXY-<platform>). Prints the wheel's
path.
"""
import argparse
import base64
import csv
import glob
import hashlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG_SRC = os.path.join(ROOT, "python", "ferry_kv")
SONAME = "libferry.so.0"


def project_version() -> str:
    with open(os.path.join(ROOT, "meson.build")) as f:
        m = re.search(r"project\([^)]*?version\s*:\s*'([^']+)'", f.read(), re.S)
    if not m:
        raise SystemExit("prebuilt-wheel: no version in meson.build's project()")
    return m.group(1)


def find_libferry(bdir: str) -> str:
    for name in (SONAME, "libferry.so", *sorted(glob.glob(os.path.join(bdir, "libferry.so.0.*")))):
        path = os.path.join(bdir, name)
        if os.path.exists(path):
            return os.path.realpath(path)
    raise SystemExit(f"prebuilt-wheel: no libferry.so* in {bdir} (build ferry there first)")


def ext_sources() -> list:
    """The extension's C files, as python/meson.build lists them."""
    with open(os.path.join(ROOT, "python", "meson.build")) as f:
        text = f.read()
    block = re.search(r"py_ext_sources\s*=\s*files\((.*?)\)", text, re.S)
    if not block:
        raise SystemExit("prebuilt-wheel: no py_ext_sources in python/meson.build")
    return [os.path.join(ROOT, "python", s) for s in re.findall(r"'([^']+\.c)'", block.group(1))]


def compile_extension(lib: str, out: str) -> None:
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not shutil.which(cc[0]) and shutil.which("gcc"):
        cc = ["gcc"]
    cflags = shlex.split(os.environ.get("CFLAGS", ""))
    inc = [sysconfig.get_paths()["include"], sysconfig.get_paths()["platinclude"]]
    cmd = (cc + ["-shared", "-fPIC", "-O2", "-g", "-std=c11", "-D_GNU_SOURCE", "-fvisibility=hidden",
                 "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Wno-cast-function-type",
                 "-I" + os.path.join(ROOT, "include")] + ["-I" + d for d in dict.fromkeys(inc)] +
           cflags + ext_sources() + [lib, "-Wl,-rpath,$ORIGIN", "-lpthread", "-o", out])
    print("prebuilt-wheel:", " ".join(shlex.quote(c) for c in cmd), file=sys.stderr, flush=True)
    subprocess.check_call(cmd)


def wheel_tag() -> str:
    v = sys.version_info
    py = f"{sys.implementation.name[:2] if sys.implementation.name == 'cpython' else 'py'}{v.major}{v.minor}"
    plat = re.sub(r"[-.]", "_", sysconfig.get_platform())
    return f"{py}-{py}-{plat}"


def record_line(arc: str, data: bytes) -> list:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [arc, f"sha256={digest}", str(len(data))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", required=True, help="folder with libferry.so* and plugins/")
    ap.add_argument("--out", default="dist", help="where the wheel goes (default: dist)")
    args = ap.parse_args()
    bdir = os.path.abspath(args.build_dir)
    lib = find_libferry(bdir)
    version = project_version()
    ext_name = "_ferry" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so")

    files = {}  # archive name -> bytes
    for f in sorted(os.listdir(PKG_SRC)):
        if f.endswith((".py", ".pyi")) or f == "py.typed":
            with open(os.path.join(PKG_SRC, f), "rb") as fh:
                files[f"ferry_kv/{f}"] = fh.read()
    with tempfile.TemporaryDirectory() as tmp:
        so = os.path.join(tmp, ext_name)
        compile_extension(lib, so)
        with open(so, "rb") as fh:
            files[f"ferry_kv/{ext_name}"] = fh.read()
    with open(lib, "rb") as fh:
        files[f"ferry_kv/{SONAME}"] = fh.read()
    for p in sorted(glob.glob(os.path.join(bdir, "plugins", "libferry_plugin_*.so"))):
        with open(os.path.realpath(p), "rb") as fh:
            files[f"ferry_kv/plugins/{os.path.basename(p)}"] = fh.read()

    tag = wheel_tag()
    dist = f"ferry_kv-{version}.dist-info"
    files[f"{dist}/METADATA"] = (
        "Metadata-Version: 2.1\nName: ferry-kv\n"
        f"Version: {version}\n"
        "Summary: ferry: moving KV-cache data for distributed LLM inference "
        "(Python API, NIXL-compatible)\nLicense: Apache-2.0\nRequires-Python: >=3.9\n"
        "Provides-Extra: numpy\nRequires-Dist: numpy; extra == \"numpy\"\n"
        "Provides-Extra: torch\nRequires-Dist: torch; extra == \"torch\"\n").encode()
    files[f"{dist}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: ferry scripts/prebuilt-wheel.py\n"
        f"Root-Is-Purelib: false\nTag: {tag}\n").encode()
    rows = [record_line(arc, data) for arc, data in files.items()] + [[f"{dist}/RECORD", "", ""]]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    files[f"{dist}/RECORD"] = buf.getvalue().encode()

    os.makedirs(args.out, exist_ok=True)
    whl = os.path.join(os.path.abspath(args.out), f"ferry_kv-{version}-{tag}.whl")
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in files.items():
            info = zipfile.ZipInfo(arc, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if arc.endswith(".so") or ".so." in arc else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    print(whl)
    return 0


if __name__ == "__main__":
    sys.exit(main())
