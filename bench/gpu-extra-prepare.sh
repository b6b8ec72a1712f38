#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Prepares gpu-extra/ (git-ignored) for a GPU host that has no package
# registry and no build tools: the VRAM <-> FILE tests and benchmark
# (bench/vram_file_vs_fio.py) run there from it, started by
# gpu-extra/run20.sh from the repository root.
#
#   sh bench/gpu-extra-prepare.sh [BUILD]     (BUILD: default build)
#
# gpu-extra/ then holds:
#   root/   fio's Debian package and the libraries it links that an Ubuntu
#           host usually lacks (ceph, gluster, pmem, nbd, boost 1.74, ...;
#           `ldd /usr/bin/fio` lists them), and liburing2/libaio1, which
#           the POSIX plugin links (Ubuntu 24.04 names its libaio
#           libaio.so.1t64), unpacked with dpkg -x;
#   build/  the programs and plugins of BUILD the run needs, laid out as in
#           BUILD (their $ORIGIN run paths find libferry);
#   run20.sh  a copy of bench/run20.sh.
# About 35 MiB in all: carry gpu-extra alone.
set -eu
BUILD=${1:-build}
X=gpu-extra
PKGS="fio libaio1 liburing2 libnuma1 libibverbs1 librdmacm1 libnl-3-200 libnl-route-3-200
      librados2 librbd1 libgfapi0 libgfrpc0 libgfxdr0 libglusterfs0 libnbd0 libpmem1
      libpmemblk1 libndctl6 libdaxctl1 libfmt9 libboost-thread1.74.0 libboost-iostreams1.74.0
      libtirpc3 libcryptsetup12 libkmod2 libdevmapper1.02.1 libargon2-1 libjson-c5"
mkdir -p $X/debs
(cd $X/debs && apt-get download $PKGS)
rm -rf $X/root && mkdir -p $X/root
for d in $X/debs/*.deb; do dpkg -x "$d" $X/root; done
rm -rf $X/root/usr/share $X/root/lib/systemd
rm -rf $X/build
for f in libferry.so libferry.so.0 libferry.so.0.1.0 plugins/libferry_plugin_*.so \
         tools/ferry-bench tools/ferry-kvbench plugins/posix/tests/test_px_vram \
         plugins/gds/tests/test_gds plugins/gds/tests/libfy_mockcufile.so \
         tests/gpu/libfy_mockcuda.so; do
    for p in $BUILD/$f; do
        rel=${p#"$BUILD"/}
        mkdir -p "$X/build/$(dirname "$rel")"
        cp -P "$p" "$X/build/$rel"
    done
done
cp bench/run20.sh $X/run20.sh
rm -rf $X/debs
du -sh $X/root $X/build
