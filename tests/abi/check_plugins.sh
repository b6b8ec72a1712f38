#!/usr/bin/env bash
# Every installed plugin reaches the library through the host table it is
# given, never by linking to libferry's own symbols: a process that opened
# libferry privately (Python's extension, dlopen without RTLD_GLOBAL) must
# load them all. TAP output, one test per plugin.
set -u
# Usage: check_plugins.sh PLUGIN_DIR...
n=0 fail=0
for dir in "$@"; do
    for so in "$dir"/libferry_plugin_*.so; do
        [ -e "$so" ] || continue
        n=$((n + 1))
        uses=$(nm -D --undefined-only "$so" | awk '$2 ~ /^ferry_/ {print $2}' | tr '\n' ' ')
        if [ -z "$uses" ]; then
            echo "ok $n - $(basename "$so") needs no libferry symbol"
        else
            echo "not ok $n - $(basename "$so") needs libferry's $uses"
            fail=1
        fi
    done
done
echo "1..$n"
exit $fail
