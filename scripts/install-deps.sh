#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install what ferry needs to build and test, on Debian 12 (bookworm).
#
# Idempotent: checks each package (dpkg status, or a command on PATH where one
# is named) and installs only what is missing; runs `apt-get update` only when
# something is missing. Quiet when nothing is missing.
#
# Usage: scripts/install-deps.sh [EXTRA_PACKAGE...]
#        scripts/install-deps.sh --venv DIR
#   Extra packages may also be given in $FERRY_EXTRA_DEPS (space separated).
#   --venv DIR: makes DIR a venv of the Debian interpreter that also sees its
#   packages (--system-site-packages), unless it is one, and pip-installs into
#   it what building the Python package needs and Debian 12 has too old or
#   not at all (VENV_PIP_PACKAGES, from PyPI, once); nothing else.
#
# To add a dependency, add a line to APT_PACKAGES below:
#   name          the Debian package; installed unless dpkg says it is
#   name:cmd      satisfied too when `cmd` is on PATH (e.g. a pip-installed meson)
#   name?         optional: installed when the archive has it, never an error
# Python packages that Debian lacks go into PIP_PACKAGES (installed with the
# Debian interpreter's pip, /usr/bin/python3, the one meson and apt's python3-*
# packages use). Each entry is "distribution[==version]:module".
set -euo pipefail

APT_PACKAGES=(
    # toolchain and build
    build-essential
    meson:meson
    ninja-build:ninja
    pkg-config
    # clang + libFuzzer and sanitizer runtimes (fuzz, asan, tsan builds)
    clang
    libclang-rt-14-dev
    # test tools
    valgrind:valgrind
    python3
    # HMAC of side-channel frames and metadata blobs (dependency('libcrypto'))
    libssl-dev
    # JSON written and read by the tools and etcd mode (dependency('jansson'))
    libjansson-dev
    # the format check (scripts/check-format.sh)
    clang-format
    # backends
    libucx-dev      # plugins/ucx (dependency('ucx'))
    ucx-utils       # ucx_info, for tests and debugging
    liburing-dev    # plugins/posix, io_uring engine (dependency('liburing'))
    libaio-dev      # plugins/posix, Linux AIO engine (libaio.h, -laio)
    e2fsprogs:mkfs.ext4  # plugins/posix tests: a small ext4 image for the full-disk test
    fio:fio         # bench/posix_vs_fio.py: the reference the POSIX backend is set beside
    libcurl4-openssl-dev  # plugins/obj (S3, SigV4) and etcd mode (dependency('libcurl'))
    libxml2-dev           # plugins/obj: S3's XML answers (dependency('libxml-2.0'))
    libfabric-dev   # plugins/libfabric (dependency('libfabric'))
    libfabric-bin:fi_info  # fi_info, fi_rma_bw, fi_pingpong: the benchmark anchors
    # the Python package (python/) and its suite: headers to build the
    # extension, a venv with pip/setuptools/wheel to install it offline
    # (--no-build-isolation), pytest, numpy, and a CPU build of PyTorch
    python3-dev
    python3-venv
    python3-pip
    python3-setuptools
    python3-wheel
    patchelf        # meson-python asks for it when it builds a wheel
    python3-pytest
    python3-numpy
    # also the TCPStore server of TCPStore mode's tests (test_tcpstore.c,
    # test_mesh.c, python/tests/test_tcpstore.py)
    python3-torch?
    # installation and ABI: abidw/abidiff (scripts/check-abi.sh), the tools'
    # man pages from their --help (man/meson.build), a CMake consumer and a
    # C++ one of the installed library (tests/install/check-install.sh)
    abigail-tools:abidiff
    help2man:help2man
    cmake:cmake
    g++:g++
    # etcd mode's tests start a real etcd on loopback (tests/integration/test_etcd.c)
    etcd-server:etcd
    # telemetry: the Prometheus /metrics endpoint (dependency('libmicrohttpd')),
    # and a real Prometheus server that its test starts on loopback
    libmicrohttpd-dev
    prometheus:prometheus
    # later, as the backends and suites land:
    # iproute2
)

PIP_PACKAGES=(
    # e.g. "moto[server]==5.0.0:moto"
)

# For --venv: the Python package's build backend and front end. Debian 12's
# python3-mesonpy is 0.12 (bundling the package's own shared libraries needs
# >= 0.13) and its python3-build 0.9; meson itself stays Debian's (1.0.1,
# found on PATH), as does ninja. Same "distribution:module" form.
VENV_PIP_PACKAGES=(
    "meson-python>=0.13:mesonpy"
    "build>=1.0:build"
    # plugins/obj's tests and benchmark: an S3 server on loopback
    # (moto_server) and an independent S3 client (boto3)
    "moto[server]>=5.0:moto.server"
    "boto3>=1.28:boto3"
)

log() { printf 'install-deps: %s\n' "$*" >&2; }

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    SUDO=(__no_root__)
fi

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

apt_has() {
    apt-cache show "$1" 2>/dev/null | grep -q '^Package:'
}

# Fills MISSING and MISSING_OPTIONAL from the package entries given.
MISSING=()
MISSING_OPTIONAL=()
collect_missing() {
    local entry name cmd optional
    for entry in "$@"; do
        optional=0
        case "$entry" in *\?) optional=1; entry=${entry%\?} ;; esac
        name=${entry%%:*}
        cmd=
        [ "$name" != "$entry" ] && cmd=${entry#*:}
        pkg_installed "$name" && continue
        [ -n "$cmd" ] && command -v "$cmd" >/dev/null 2>&1 && continue
        if [ "$optional" -eq 1 ]; then
            # Known absent from the (already fetched) lists: no update for it.
            apt_has bash && ! apt_has "$name" && continue
            MISSING_OPTIONAL+=("$name")
        else
            MISSING+=("$name")
        fi
    done
}

as_root() {
    if [ "${SUDO[0]:-}" = __no_root__ ]; then
        log "need root (or sudo) to run: $*"
        return 1
    fi
    "${SUDO[@]}" "$@"
}

APT_LOG=$(mktemp "${TMPDIR:-/tmp}/ferry-deps.XXXXXX")
trap 'rm -f "$APT_LOG"' EXIT

apt_run() {
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get -y -q \
            -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0 "$@" >>"$APT_LOG" 2>&1; then
        log "apt-get $* failed; its last lines:"
        tail -n 30 "$APT_LOG" >&2
        return 1
    fi
}

APT_UPDATED=0
# ensure_apt ENTRY...: installs the entries (see the top) that are missing.
ensure_apt() {
    MISSING=()
    MISSING_OPTIONAL=()
    collect_missing "$@"
    [ ${#MISSING[@]} -eq 0 ] && [ ${#MISSING_OPTIONAL[@]} -eq 0 ] && return 0
    if [ "${SUDO[0]:-}" = __no_root__ ]; then
        log "missing: ${MISSING[*]} ${MISSING_OPTIONAL[*]}"
        log "not root and no sudo: run as root: apt-get install ${MISSING[*]}"
        return 1
    fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "updating package lists"
        apt_run update
        APT_UPDATED=1
    fi
    local opt want=()
    [ ${#MISSING[@]} -gt 0 ] && want=("${MISSING[@]}")
    for opt in "${MISSING_OPTIONAL[@]}"; do
        if apt_has "$opt"; then
            want+=("$opt")
        else
            log "optional package $opt is not in the archive; skipped"
        fi
    done
    [ ${#want[@]} -eq 0 ] && return 0
    log "installing: ${want[*]}"
    apt_run install --no-install-recommends "${want[@]}"
}

ensure_pip() {
    [ $# -eq 0 ] && return 0
    local py=/usr/bin/python3 entry dist mod want=()
    for entry in "$@"; do
        dist=${entry%%:*}
        mod=${entry#*:}
        "$py" -c "import $mod" >/dev/null 2>&1 || want+=("$dist")
    done
    [ ${#want[@]} -eq 0 ] && return 0
    "$py" -m pip --version >/dev/null 2>&1 || ensure_apt python3-pip
    log "pip installing: ${want[*]}"
    if ! as_root "$py" -m pip install -q --break-system-packages "${want[@]}" >>"$APT_LOG" 2>&1; then
        log "pip install failed; its last lines:"
        tail -n 30 "$APT_LOG" >&2
        return 1
    fi
}

# ensure_venv DIR: see --venv at the top.
ensure_venv() {
    local venv=$1 entry dist mod want=()
    if [ ! -x "$venv/bin/python" ]; then
        log "creating the venv $venv"
        /usr/bin/python3 -m venv --system-site-packages "$venv" >>"$APT_LOG" 2>&1 ||
            { log "python3 -m venv $venv failed:"; tail -n 20 "$APT_LOG" >&2; return 1; }
    fi
    for entry in "${VENV_PIP_PACKAGES[@]}"; do
        dist=${entry%%:*}
        mod=${entry#*:}
        # -I and cwd /: not a folder of the current directory (build/!).
        (cd / && "$venv/bin/python" -I -c "import $mod") >/dev/null 2>&1 || want+=("$dist")
    done
    [ ${#want[@]} -eq 0 ] && return 0
    log "pip installing into $venv: ${want[*]}"
    # (meson-python's "meson" requirement is met by Debian's meson 1.0.1.)
    if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check "${want[@]}" \
            >>"$APT_LOG" 2>&1; then
        log "pip install into $venv failed; its last lines:"
        tail -n 30 "$APT_LOG" >&2
        return 1
    fi
}

if [ "${1:-}" = --venv ]; then
    [ $# -eq 2 ] || { log "usage: $0 --venv DIR"; exit 2; }
    ensure_venv "$2"
    exit
fi

# shellcheck disable=SC2086 # FERRY_EXTRA_DEPS is a space-separated list
ensure_apt "${APT_PACKAGES[@]}" ${FERRY_EXTRA_DEPS:-} "$@"
ensure_pip ${PIP_PACKAGES[@]+"${PIP_PACKAGES[@]}"}
