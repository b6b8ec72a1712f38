#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fetches a current UCX (PyPI's libucx-cu12 wheel: headers, libraries, UCX's
# transport modules, ucx_info and ucx_perftest) into a build folder, so that
# the UCX plugin can also be built and tested against it (meson option
# ucx_wheel, docs/building.md). Never touches the source tree.
#
#   scripts/fetch-ucx-wheel.sh DEST
#
# DEST/libucx/ then holds the wheel's UCX: include/, lib/ (libucp.so, and
# lib/ucx/ with the modules UCX finds beside its own libraries), bin/
# (ucx_perftest: run it with LD_LIBRARY_PATH=DEST/libucx/lib).
# The version is pinned and the wheel's sha256 checked; a wheel already
# unpacked there with that hash is kept (no network). Exit status 0 when
# DEST/libucx is ready, 1 with one line saying why not (no pip, no
# network, a hash mismatch).
set -euo pipefail

UCX_WHEEL_DIST=libucx-cu12
UCX_WHEEL_VERSION=1.22.0
UCX_WHEEL_FILE=libucx_cu12-1.22.0-py3-none-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl
UCX_WHEEL_SHA256=5cbbef0c140a0a158ae3486089af659b38822b2234cd3dc90ba40a5e6553402a

[ $# -eq 1 ] || { echo "usage: fetch-ucx-wheel.sh DEST" >&2; exit 2; }
dest=$1
stamp=$dest/libucx/.sha256

fail() {
    echo "fetch-ucx-wheel: $*" >&2
    exit 1
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$UCX_WHEEL_SHA256" ]; then
    exit 0
fi
[ "$(uname -m)" = x86_64 ] || fail "the pinned wheel is for x86_64, this is $(uname -m)"
py=$(command -v /usr/bin/python3 || command -v python3) || fail "no python3"
"$py" -m pip --version >/dev/null 2>&1 || fail "no pip for $py (python3-pip)"
command -v unzip >/dev/null || "$py" -c 'import zipfile' || fail "no unzip"

mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
whl=$tmp/$UCX_WHEEL_FILE
if ! timeout 300 "$py" -m pip download --quiet --no-deps --only-binary=:all: \
    --disable-pip-version-check --dest "$tmp" "$UCX_WHEEL_DIST==$UCX_WHEEL_VERSION" \
    >"$tmp/pip.log" 2>&1 || [ ! -f "$whl" ]; then
    fail "pip download $UCX_WHEEL_DIST==$UCX_WHEEL_VERSION failed: $(tail -n 1 "$tmp/pip.log")"
fi
got=$(sha256sum "$whl" | cut -d' ' -f1)
[ "$got" = "$UCX_WHEEL_SHA256" ] || fail "$UCX_WHEEL_FILE: sha256 $got, expected $UCX_WHEEL_SHA256"
"$py" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$whl" "$tmp/unpacked"
[ -f "$tmp/unpacked/libucx/include/ucp/api/ucp.h" ] || fail "$UCX_WHEEL_FILE has no ucp.h"
# zipfile drops the mode bits: the tools must run.
chmod +x "$tmp/unpacked/libucx/bin/"*
rm -rf "$dest/libucx" "$dest/libucx_cu12.libs"
# The CUDA runtime and OpenMP the wheel bundles: its tools' run path and the
# CUDA module look for them beside libucx/.
mv "$tmp/unpacked/libucx_cu12.libs" "$dest/libucx_cu12.libs"
mv "$tmp/unpacked/libucx" "$dest/libucx"
echo "$UCX_WHEEL_SHA256" > "$stamp"
echo "fetch-ucx-wheel: UCX $UCX_WHEEL_VERSION ($UCX_WHEEL_DIST) in $dest/libucx"
