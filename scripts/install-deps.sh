#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install what ferry needs to build and test, on Debian 12 (bookworm).
#
# Idempotent: checks each package (dpkg status, or a command on PATH where one
# is named) and installs only what is missing; runs `apt-get update` only when
# something is missing. Quiet when nothing is missing.
#
# Usage: scripts/install-deps.sh [EXTRA_PACKAGE...]
#   Extra packages may also be given in $FERRY_EXTRA_DEPS (space separated).
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
    # JSON written and read by the tools (tools/meson.build: dependency('jansson'))
    libjansson-dev
    # the format check (scripts/check-format.sh)
    clang-format
    # backends
    libucx-dev      # plugins/ucx (dependency('ucx'))
    ucx-utils       # ucx_info, for tests and debugging
    # the Python package (python/) and its suite: headers to build the
    # extension, a venv with pip/setuptools/wheel to install it offline
    # (--no-build-isolation), pytest, numpy, and a CPU build of PyTorch
    python3-dev
    python3-venv
    python3-pip
    python3-setuptools
    python3-wheel
    python3-pytest
    python3-numpy
    python3-torch?
    # later, as the backends and suites land:
    # iproute2 etcd-server
)

PIP_PACKAGES=(
    # e.g. "moto[server]==5.0.0:moto"
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

# shellcheck disable=SC2086 # FERRY_EXTRA_DEPS is a space-separated list
ensure_apt "${APT_PACKAGES[@]}" ${FERRY_EXTRA_DEPS:-} "$@"
ensure_pip ${PIP_PACKAGES[@]+"${PIP_PACKAGES[@]}"}
