#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# GPU memory to and from files on a GPU host: the staged path's tests and
# the GDS tests against the real CUDA driver (and libcufile where there is
# one), then bench/vram_file_vs_fio.py beside fio. Run from the repository
# root, as gpu-extra/run20.sh (bench/gpu-extra-prepare.sh puts it there
# with fio and the programs: nothing is built on the host).
#
#   sh gpu-extra/run20.sh [DIR]   DIR: the disk to measure (default /tmp)
#
# Logs and the table go to $OUT (default gpu-extra/out). Exit status 0
# when no test failed.
set -u
DIR=${1:-/tmp}
X=gpu-extra
OUT=${OUT:-$X/out}
BUILD=${BUILD:-$X/build}
[ -x "$BUILD/tools/ferry-bench" ] || BUILD=build
mkdir -p "$OUT"
# ceph/: librados' private library, which fio links through it
LIBS=$PWD/$X/root/usr/lib/x86_64-linux-gnu:$PWD/$X/root/usr/lib/x86_64-linux-gnu/ceph
LIBS=$LIBS:$PWD/$X/root/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export FERRY_PLUGIN_DIR=$PWD/$BUILD/plugins
unset FERRY_CUDA_LIB FERRY_CUFILE_LIB
# cuFile's configuration: ferry's (compatibility mode allowed) unless one is set.
export CUFILE_ENV_PATH_JSON=${CUFILE_ENV_PATH_JSON:-$PWD/plugins/gds/cufile.json}
FIO=$X/root/usr/bin/fio
LOG=$OUT/run20.log
: > "$LOG"
say() { echo "$@" | tee -a "$LOG"; }

say "# $(date -u +%FT%TZ) $(uname -r); build $BUILD; files in $DIR"
say "# GPU: $(nvidia-smi --query-gpu=name,driver_version,pci.bus_id --format=csv,noheader 2>&1 | head -1)"
say "# disk: $(df -h "$DIR" | tail -1)"
say "# fio: $($FIO --version 2>&1); cuFile config: $CUFILE_ENV_PATH_JSON"
for p in "$FIO" "$BUILD/tools/ferry-bench" "$BUILD/libferry.so.0" "$BUILD"/plugins/libferry_plugin_posix.so \
         "$BUILD"/plugins/libferry_plugin_gds.so; do
    miss=$(ldd "$p" 2>&1 | grep "not found")
    [ -z "$miss" ] || say "# MISSING for $p: $miss"
done

fail=0 pass=0 skip=0
run_test() { # name, program args...
    name=$1; shift
    timeout 600 "$@" > "$OUT/$name.tap" 2>&1
    rc=$?
    case $rc in
    0) pass=$((pass + 1)); what=ok ;;
    77) skip=$((skip + 1)); what="skip ($(grep -m1 "^1\.\.0" "$OUT/$name.tap"))" ;;
    *) fail=$((fail + 1)); what="FAILED (exit $rc)" ;;
    esac
    say "$name: $what"
    grep -E "^(not ok|ok|# )" "$OUT/$name.tap" | sed 's/^/    /' >> "$LOG"
}
T=$BUILD/plugins
run_test posix_vram_uring "$T/posix/tests/test_px_vram" uring
run_test posix_vram_aio "$T/posix/tests/test_px_vram" aio
run_test gds_io "$T/gds/tests/test_gds" io
FERRY_CUFILE_LIB=/nonexistent/libcufile.so.0 run_test gds_nolib "$T/gds/tests/test_gds" nolib
say "# tests: $pass passed, $fail failed, $skip skipped"

say "# benchmark: python3 bench/vram_file_vs_fio.py --dir $DIR --build $BUILD --fio $FIO"
python3 bench/vram_file_vs_fio.py --dir "$DIR" --build "$BUILD" --fio "$FIO" 2>&1 | tee "$OUT/bench.txt" | tee -a "$LOG"
[ $fail -eq 0 ]
