#!/usr/bin/env bash
# The library exports exactly the functions the public headers declare, all
# under a FERRY_0.<n> version node of src/libferry.map, and nothing else; the
# map lists each declared function by name, once, and no other (TAP output).
set -u
# Usage: check_exports.sh LIBFERRY.so INCLUDE_DIR [MAP]
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
# The map names every function explicitly (no patterns but local's `*`),
# each once, and exactly the declared ones.
map=${3:-$(dirname "$0")/../../src/libferry.map}
pattern=$(grep -nE '^[[:space:]]+[a-z_][a-z0-9_]*[*?[][^;]*;' "$map" | head -3 | tr -s ' \n' ' ')
[ -z "$pattern" ]; check $? "the map lists names, not patterns${pattern:+ (found: $pattern)}"
listed=$(awk '/^FERRY_0\.[0-9]+ *\{/ {node=$1} /^ +ferry_[a-z0-9_]+;/ {sub(/;/, ""); print $1 "@@" node}' "$map")
names=$(echo "$listed" | sed 's/@@.*//' | sort)
twice=$(echo "$names" | uniq -d)
[ -z "$twice" ]; check $? "each name is listed once${twice:+ (twice: $(echo $twice))}"
unmapped=$(comm -23 <(echo "$declared") <(echo "$names" | sort -u))
[ -z "$unmapped" ]; check $? "every declared function is in the map${unmapped:+ (not in src/libferry.map: $(echo $unmapped))}"
undeclared=$(comm -13 <(echo "$declared") <(echo "$names" | sort -u))
[ -z "$undeclared" ]; check $? "every name of the map is declared in include/ferry/${undeclared:+ (not declared: $(echo $undeclared))}"
# Each listed name carries the node it is listed under.
wrong=$(comm -23 <(echo "$listed" | sort) <(nm -D --defined-only "$lib" | awk '{print $3}' | sort))
[ -n "$listed" ] && [ -z "$wrong" ]; check $? "names carry the node they are listed under${wrong:+ (not: $(echo $wrong))}"
echo "1..$n"
exit $fail
