#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `meson test --wrapper` for `make valgrind`:
#   run-valgrind.sh [VALGRIND_OPTION...] -- TEST_COMMAND...
# Runs TEST_COMMAND under valgrind when it is a compiled program; scripts
# (and interpreters: sh, bash, python) run as they are, since checking the
# interpreter's memory finds nothing of ferry's. Exit statuses pass through
# (valgrind's --error-exitcode marks its own findings).
set -eu

n=0
for a in "$@"; do
    [ "$a" = "--" ] && break
    n=$((n + 1))
done
if [ "$n" -eq "$#" ]; then
    echo "usage: $0 [VALGRIND_OPTION...] -- TEST_COMMAND..." >&2
    exit 2
fi

# The test command: what follows "--".
i=0
opts=
for a in "$@"; do
    i=$((i + 1))
    [ "$i" -gt "$n" ] && break
    # Valgrind options have no spaces; keep them as one word each.
    opts="$opts $a"
done
shift $((n + 1))

prog=$1
case "$(basename "$prog")" in
    sh | bash | dash | python* | perl* | env) exec "$@" ;;
esac
path=$prog
case "$prog" in */*) ;; *) path=$(command -v "$prog" || echo "$prog") ;; esac
if [ "$(od -An -tx1 -N4 "$path" 2>/dev/null | tr -d ' \n')" != 7f454c46 ]; then
    exec "$@"
fi
# shellcheck disable=SC2086 # opts is a list of single-word options
exec valgrind $opts "$@"
