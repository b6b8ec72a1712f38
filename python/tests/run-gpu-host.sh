#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs ferry's Python suite on a host that got a copy of the repository with
# a build folder made elsewhere, and has neither Meson nor a network: the GPU
# host (its own Python, e.g. /opt/torch/.venv with torch, numpy, pytest).
#
#   python/tests/run-gpu-host.sh OUT_DIR [BUILD_DIR] [-- PYTEST_ARGS...]
#
#   OUT_DIR     where the results go (created): diagnosis.txt (what was
#               found: Python, headers, compiler, torch/CUDA, the build
#               folder), install.log, pytest.log, junit.xml, summary.txt
#   BUILD_DIR   the build folder with libferry.so* and plugins/ (default:
#               build, relative to the repository root)
#   PYTEST_ARGS replace the default selection (the whole python/tests)
#
# Environment: PYTHON (default /opt/torch/.venv/bin/python if it exists,
# else python3), PYTEST_TIMEOUT (seconds for pytest, default 240).
#
# The extension is compiled here, against this Python, from the tree's
# include/ and BUILD_DIR's libferry (scripts/prebuilt-wheel.py: no Meson or
# ninja), and its wheel, with that libferry and its plugins, is installed
# into a throwaway venv (in
# a temporary folder, removed at the end) that also sees PYTHON's own
# packages (a .pth file), so nothing is installed into PYTHON's environment.
# No package index is used (--no-index); the nixl-tree tests pip-install
# python/nixl-compat themselves, with the same pip, into a temporary folder.
# Exit status: pytest's (0: all passed or skipped), 3 when the install could
# not be done (diagnosis.txt says why).
set -u
usage() { sed -n '3,27p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
case "$1" in -h | --help) usage ;; esac

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd) || { echo "cannot create $1" >&2; exit 2; }
shift
BUILD=build
if [ $# -ge 1 ] && [ "$1" != "--" ]; then BUILD=$1; shift; fi
[ "${1:-}" = "--" ] && shift
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
if [ -z "${PYTHON:-}" ]; then
    if [ -x /opt/torch/.venv/bin/python ]; then PYTHON=/opt/torch/.venv/bin/python; else PYTHON=python3; fi
fi
PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-240}
DIAG=$OUT/diagnosis.txt INSTALL_LOG=$OUT/install.log
# The venv and the staged library live outside OUT_DIR (only results go there).
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-gpu-host.XXXXXX") || exit 2
trap 'rm -rf "$WORK"' EXIT
VENV=$WORK/venv VPY=$WORK/venv/bin/python STAGE=$WORK/libferry
: > "$DIAG"
problems=0

say() { echo "$*" | tee -a "$DIAG"; }
problem() { say "PROBLEM: $*"; problems=$((problems + 1)); }
finish() { # status, summary line
    echo "$2" | tee "$OUT/summary.txt"
    exit "$1"
}

# ---- what is here ----

say "# ferry Python suite on $(hostname), $(date -u '+%Y-%m-%d %H:%M UTC')"
say "repository: $ROOT ($(git -C "$ROOT" log -1 --format='%h %s' 2> /dev/null || echo 'not a git checkout'))"
say "build folder: $BUILD"
PY=$(command -v "$PYTHON" 2> /dev/null) || { problem "no Python at '$PYTHON' (set PYTHON)"; finish 3 "install: no Python"; }
say "python: $PY"
"$PY" - << 'EOF' 2>&1 | tee -a "$DIAG"
import importlib, os, shutil, sys, sysconfig
print("  version:", sys.version.split()[0], "prefix:", sys.prefix, "base:", sys.base_prefix)
inc = sysconfig.get_paths()["include"]
print("  Python.h:", os.path.join(inc, "Python.h"),
      "present" if os.path.isfile(os.path.join(inc, "Python.h")) else "MISSING")
cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
print("  compiler:", cc, "->", shutil.which(cc) or "MISSING")
# setuptools first: imported after pip, Debian's distutils shim trips.
for mod in ("setuptools", "wheel", "pip", "numpy", "pytest", "torch"):
    try:
        m = importlib.import_module(mod)
        print(f"  {mod}: {getattr(m, '__version__', '?')}")
    except Exception as e:  # noqa: BLE001
        print(f"  {mod}: MISSING ({type(e).__name__}: {e})")
try:
    import torch
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    print("  torch CUDA:", torch.version.cuda, "devices:", n,
          [torch.cuda.get_device_name(i) for i in range(n)])
except Exception as e:  # noqa: BLE001
    print("  torch CUDA: unavailable:", e)
EOF
command -v nvidia-smi > /dev/null 2>&1 &&
    nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader 2>&1 | sed 's/^/  GPU /' | tee -a "$DIAG"

# Python.h: the interpreter's own, else a matching one elsewhere on the host
# (same major.minor: the C API is the same), passed to the compiler.
pyver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
pyinc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
if [ ! -f "$pyinc/Python.h" ]; then
    alt=
    for d in /usr/include/python"$pyver" /usr/local/include/python"$pyver" \
        "$(dirname "$(dirname "$(readlink -f "$PY")")")"/include/python"$pyver" \
        /opt/*/include/python"$pyver" "$HOME"/.local/share/uv/python/cpython-"$pyver"*/include/python"$pyver" \
        "$HOME"/.pyenv/versions/"$pyver"*/include/python"$pyver"; do
        if [ -f "$d/Python.h" ]; then alt=$d; break; fi
    done
    if [ -n "$alt" ]; then
        say "Python.h not in $pyinc; using $alt (Python $pyver headers)"
        export CFLAGS="${CFLAGS:-} -I$alt"
    else
        problem "no Python.h for Python $pyver (looked in $pyinc and the usual places): the extension cannot be compiled. Install the headers (Ubuntu: apt install python$pyver-dev) or run with PYTHON= an interpreter that has them."
    fi
fi
cc=$("$PY" -c 'import sysconfig; print((sysconfig.get_config_var("CC") or "cc").split()[0])')
command -v "$cc" > /dev/null 2>&1 || command -v gcc > /dev/null 2>&1 ||
    problem "no C compiler ($cc, gcc): the extension cannot be compiled"
"$PY" -c 'import setuptools' 2> /dev/null ||
    say "note: setuptools is missing in $PY's environment: the nixl-tree tests that pip-install python/nixl-compat will fail"

# The build folder: libferry (any of its names) and plugins.
real=
for f in libferry.so.0 libferry.so libferry.so.0.*; do
    if [ -e "$BUILD/$f" ]; then real=$(readlink -f "$BUILD/$f"); break; fi
done
[ -n "$real" ] || problem "no libferry.so* in $BUILD (build ferry there, or pass the build folder)"
# The extension calls every function of the headers: an older libferry
# (built before the tree's last change) would fail at import.
if [ -n "$real" ]; then
    stale=$("$PY" -c 'import ctypes, re, sys
lib = ctypes.CDLL(sys.argv[1])
names = sorted({m for h in sys.argv[2:] for m in re.findall(r"\b(ferry_[a-z0-9_]+)\(", open(h).read())})
skip = re.compile(r"ferry_plugin_get$|ferry_plugin_builtin_")  # plugin-side, as tests/abi
print(" ".join(n for n in names if not skip.match(n) and not hasattr(lib, n)))' \
        "$real" "$ROOT"/include/ferry/*.h 2>&1)
    [ -z "$stale" ] || problem "$real lacks functions the headers declare ($stale): it is older than this tree; rebuild it (ninja -C build) before copying"
fi
ls "$BUILD"/plugins/libferry_plugin_*.so > /dev/null 2>&1 ||
    problem "no plugins in $BUILD/plugins: only the built-in LOCAL backend would exist"
for so in "$BUILD"/plugins/libferry_plugin_*.so; do
    [ -e "$so" ] || continue
    missing=$(ldd "$so" 2> /dev/null | awk '/not found/ {print $1}' | tr '\n' ' ')
    say "plugin $(basename "$so"): ${missing:+MISSING LIBRARIES: }${missing:-libraries resolve}"
done
[ "$problems" -eq 0 ] || finish 3 "install: $problems problem(s), see $DIAG"

# ---- install into a throwaway venv ----

# A staging folder with the names prebuilt-wheel.py expects (a copied build folder
# may have lost its symlinks): libferry.so, libferry.so.0, plugins/.
rm -rf "$STAGE" && mkdir -p "$STAGE/plugins"
ln -s "$real" "$STAGE/libferry.so.0"
ln -s "$real" "$STAGE/libferry.so"
for so in "$BUILD"/plugins/libferry_plugin_*.so; do
    [ -e "$so" ] && ln -s "$(readlink -f "$so")" "$STAGE/plugins/$(basename "$so")"
done

# The venv sees PYTHON's packages (torch, numpy, pytest, setuptools, and pip
# when the venv has none of its own) through a .pth file listing them.
install_all() {
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" || {
        echo "venv with pip failed (no ensurepip?); making one without pip"
        "$PY" -m venv --without-pip "$VENV" || return 1
    }
    local site
    site=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') || return 1
    "$PY" -c 'import os, sys
print("\n".join(p for p in sys.path if os.path.isdir(p) and p.endswith(("site-packages", "dist-packages"))))' \
        > "$site/ferry-gpu-host-base.pth" || return 1
    echo "base packages: $(tr '\n' ' ' < "$site/ferry-gpu-host-base.pth")"
    "$VPY" -m pip --version || { echo "no pip for $VPY (neither its own nor PYTHON's)"; return 1; }
    # No Meson here: a wheel of the same layout as meson-python's, with only
    # the extension compiled here (scripts/prebuilt-wheel.py).
    rm -rf "$WORK/dist"
    "$VPY" "$ROOT/scripts/prebuilt-wheel.py" --build-dir "$STAGE" --out "$WORK/dist" || return 1
    "$VPY" -m pip install --no-deps --no-index --disable-pip-version-check \
        --no-warn-script-location "$WORK"/dist/ferry_kv-*.whl
}
install_all > "$INSTALL_LOG" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
    say "install failed; the end of $INSTALL_LOG:"
    tail -n 40 "$INSTALL_LOG" | tee -a "$DIAG"
    grep -q "Python.h" "$INSTALL_LOG" && say "DIAGNOSIS: Python.h not found by the compiler (see above)"
    grep -q "no pip for" "$INSTALL_LOG" && say "DIAGNOSIS: no pip available (see above)"
    finish 3 "install: failed, see $INSTALL_LOG"
fi
ext=$("$VPY" -c 'import ferry_kv, ferry_kv._ferry as e; print(e.__file__)' 2>> "$DIAG") ||
    { say "import ferry failed in the venv (above)"; finish 3 "install: import ferry failed"; }
say "installed: $ext"
ldd "$ext" | grep -E "ferry|not found" | sed 's/^/  /' | tee -a "$DIAG"
"$VPY" -c 'import ferry_kv as ferry
a = ferry.Agent("probe")
for p in a.plugins():
    try:
        print(f"  plugin {p}: loads from {a.plugin_path(p)[0]}", end="", flush=True)
        a.create_backend(p)
        print(", backend created")
    except ferry.Error as e:
        print(f", FAILS: {e}")' 2>&1 | tee -a "$DIAG"

# ---- pytest ----

[ $# -gt 0 ] || set -- "$ROOT/python/tests"
cd "$ROOT/python/tests" || finish 3 "no python/tests"
# FERRY_BUILD_DIR: the VRAM-mock runs take the mock driver from there.
export FERRY_LOG_LEVEL=${FERRY_LOG_LEVEL:-error} NCCL_NVLS_ENABLE=0 FERRY_BUILD_DIR=$BUILD
unset FERRY_PLUGIN_DIR FERRY_CUDA_LIB LD_LIBRARY_PATH
say "pytest $* (timeout ${PYTEST_TIMEOUT}s)"
start=$(date +%s)
timeout -k 10 "$PYTEST_TIMEOUT" "$VPY" -m pytest -rs -v -p no:cacheprovider \
    --junitxml="$OUT/junit.xml" "$@" > "$OUT/pytest.log" 2>&1
prc=$?
tail -n 25 "$OUT/pytest.log"
last=$(grep -E '^=+ .*(passed|failed|error|skipped).* =+$' "$OUT/pytest.log" | tail -1)
[ $prc -eq 124 ] || [ $prc -eq 137 ] && last="TIMED OUT after ${PYTEST_TIMEOUT}s; $last"
finish "$prc" "pytest rc=$prc in $(($(date +%s) - start))s: ${last:-no summary line, see pytest.log}"
