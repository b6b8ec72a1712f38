#!/usr/bin/env bash
# The library exports exactly the functions the public headers declare, all
# under a FERRY_0.<n> version node of src/libferry.map, and nothing else (TAP output).
set -u
lib=$1 headers=$2
declared=$(grep -hoE '\bferry_[a-z0-9_]+\(' "$headers"/*.h | tr -d '(' | sort -u |
    grep -vE '^ferry_plugin_get$|^ferry_plugin_builtin_')
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u)
n=0 fail=0
check() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
[ -z "$missing" ]; check $? "every declared function is exported${missing:+ (missing: $(echo $missing))}"
extra=$(comm -13 <(echo "$declared") <(echo "$exported"))
[ -z "$extra" ]; check $? "nothing else is exported${extra:+ (extra: $(echo $extra))}"
nm -D --defined-only "$lib" | grep -q ' FERRY_0.1$'; check $? "symbols carry the FERRY_0.1 version node"
unversioned=$(objdump -T "$lib" | awk '/ DF .text/ && $0 !~ /FERRY_0\.[0-9]+/' | head -3)
[ -z "$unversioned" ]; check $? "no unversioned exported function"
# A name listed in a later node carries that node, not FERRY_0.1's pattern.
map=$(dirname "$0")/../../src/libferry.map
listed=$(awk '/^FERRY_0\.[0-9]+ *\{/ {node=$1} /^ +ferry_[a-z0-9_]+;/ {sub(/;/, ""); print $1 "@@" node}' "$map")
wrong=$(comm -23 <(echo "$listed" | sort) <(nm -D --defined-only "$lib" | awk '{print $3}' | sort))
[ -n "$listed" ] && [ -z "$wrong" ]; check $? "names of later nodes carry their node${wrong:+ (not: $(echo $wrong))}"
echo "1..$n"
exit $fail
