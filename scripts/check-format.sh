#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The C sources tracked by git follow .clang-format: clang-format --dry-run
# -Werror over every tracked *.c, *.h and *.cc (Debian's clang-format).
# Usage: scripts/check-format.sh [--fix] [PATH...]   (default: the whole tree)
#   --fix   rewrite the files in place instead of checking
# Exit 0 when every file is formatted, 1 otherwise (the files are listed),
# 2 when clang-format is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fix=0
if [ "${1:-}" = --fix ]; then fix=1; shift; fi
cf=${CLANG_FORMAT:-clang-format}
command -v "$cf" >/dev/null || { echo "check-format: $cf not found (apt-get install clang-format)" >&2; exit 2; }
mapfile -t files < <(git ls-files -- "${@:-.}" | grep -E '\.(c|h|cc)$')
[ ${#files[@]} -gt 0 ] || { echo "check-format: no C files"; exit 0; }
if [ $fix -eq 1 ]; then
    "$cf" -i "${files[@]}"
    exit 0
fi
bad=()
for f in "${files[@]}"; do
    "$cf" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
    echo "check-format: ${#bad[@]} of ${#files[@]} files differ from .clang-format (scripts/check-format.sh --fix FILE rewrites one):"
    printf '  %s\n' "${bad[@]}"
    exit 1
fi
echo "check-format: ${#files[@]} files formatted"
