#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Prepares gpu-kv/ (git-ignored) for a GPU host that has no package registry
# and no Meson: the CUDA suite and bench_cuda, the Python suite's GPU tests,
# bench/kv_make_nixl.py through ferry's nixl tree and (when a NIXL wheel is
# given) through NIXL's own, and the TCPStore tests against the host's
# PyTorch, all started by gpu-kv/run-kv.sh from the repository root.
#
#   sh bench/gpu-kv-prepare.sh [BUILD] [NIXL_DIR]
#
#   BUILD     a build folder with the CUDA plugin's kernels (nvcc found at
#             setup); default build
#   NIXL_DIR  optional: an unpacked NIXL wheel (nixl_cu12/ and its .libs)
#             with libcudart.so.12 at its top, packed as nixl.tar.gz (only
#             what its UCX backend loads needs to be there: the whole wheel
#             is over 200 MiB unpacked; its backend, plugins/libplugin_UCX.so
#             under .nixl_cu12.mesonpy.libs, is required)
#
# gpu-kv/ then holds build/ (the programs and plugins, stripped, laid out as
# in BUILD so their $ORIGIN run paths find libferry), extlib/ (the shared
# libraries they link besides glibc's; run-kv.sh installs those the host
# lacks) and run-kv.sh. Carry gpu-kv alone.
set -eu
BUILD=${1:-build}
NIXL=${2:-}
X=gpu-kv
[ -e "$BUILD/plugins/cuda/fy_copy.fatbin" ] || [ -n "$(find "$BUILD/plugins/cuda" -name '*.fatbin' 2>/dev/null)" ] ||
    echo "warning: no fatbin in $BUILD/plugins/cuda (built without nvcc?): kernel mode will be refused" >&2
rm -rf $X && mkdir -p $X/build $X/extlib
DEST=$PWD/$X/build
# Globs expanded inside BUILD: cp --parents keeps BUILD's layout.
(cd "$BUILD" && for p in libferry.so libferry.so.0 libferry.so.0.1.0 plugins/libferry_plugin_*.so \
         plugins/cuda/tests/test_cuda_* plugins/cuda/tests/conformance_vram \
         plugins/cuda/tests/bench_cuda plugins/cuda/tests/libferry_plugin_*.so \
         tests/gpu/libfy_mockcuda.so tests/integration/test_tcpstore tests/integration/test_mesh \
         tools/ferry-info tools/ferry-bench plugins/ucx/wheel/libferry_plugin_ucx.so; do
    [ -f "$p" ] || continue
    cp -P --parents "$p" "$DEST"
    [ -L "$p" ] || strip --strip-debug "$DEST/$p" 2> /dev/null || true
done)
# What they link besides glibc, the loader and the C++ runtime.
# UCX and libfabric are left out: the host has its own (Ubuntu's).
find $X/build -type f | xargs ldd 2>/dev/null | awk '/=> \// {print $3}' | sort -u |
    grep -Ev '/(libc|libm|libdl|librt|libpthread|ld-linux-x86-64|libgcc_s|libstdc\+\+|libferry)[.-]' |
    grep -Ev '/(libuc[mpst]|libfabric|libefa|libibverbs|librdmacm|libpsm|libinfinipath|libnl-|libnuma|libicu)' |
    while read -r lib; do cp -L "$lib" $X/extlib/; done
# UCX 1.22 of the libucx wheel (make build fetches it), what the wheel's
# plugin and ucx_perftest load, in the wheel's layout (their run paths).
U=$BUILD/ucx-wheel
if [ -d "$U/libucx/lib" ]; then
    mkdir -p $X/ucx-wheel/libucx/lib/ucx $X/ucx-wheel/libucx/bin $X/ucx-wheel/libucx_cu12.libs
    for f in libucs libucp libuct libucm; do cp -L "$U/libucx/lib/$f.so.0" $X/ucx-wheel/libucx/lib/; done
    for f in libuct_cma libuct_cuda libucm_cuda libucx_perftest_cuda; do
        cp -L "$U/libucx/lib/ucx/$f.so.0" $X/ucx-wheel/libucx/lib/ucx/
    done
    cp -L "$U/libucx/bin/ucx_perftest" $X/ucx-wheel/libucx/bin/
    cp -L "$U"/libucx_cu12.libs/* $X/ucx-wheel/libucx_cu12.libs/
    find $X/ucx-wheel -type f -exec strip --strip-debug {} + 2> /dev/null || true
fi
cp bench/run-kv.sh $X/run-kv.sh
if [ -n "$NIXL" ]; then
    # NIXL looks for its backends in this folder and starts none without it.
    [ -f "$NIXL/.nixl_cu12.mesonpy.libs/plugins/libplugin_UCX.so" ] ||
        { echo "$NIXL: no .nixl_cu12.mesonpy.libs/plugins/libplugin_UCX.so" >&2; exit 1; }
    tar czf $X/nixl.tar.gz -C "$NIXL" .
fi
du -sh $X/*
