#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What `meson install` gives a user of ferry, checked in a temporary prefix
# (docs/install.md):
#   - the layout: headers, libferry with its soname links, the plugins in
#     <libdir>/ferry/plugins, ferry.pc, the CMake package, the tools, their
#     manual pages and the API's; no test, fuzzer or example; no run path
#     into the build folder;
#   - a consumer program (tests/install/consumer.c) built against the
#     installed files only, three ways: C with pkg-config, C++ with
#     pkg-config (the headers are C++-clean), CMake with find_package(ferry);
#     each run with only LD_LIBRARY_PATH set: it must find the installed
#     plugins by itself (no FERRY_PLUGIN_DIR) and move data through LOCAL;
#   - the installed ferry-info, which must list the same plugins.
#
# Usage: tests/install/check-install.sh [BUILD_DIR]        (default: build)
#   Configures BUILD_DIR when it is not (with $MESON_ARGS), builds only what
#   is installed, installs it with --destdir into a temporary folder (removed
#   afterwards unless KEEP=1). Exit 0 when every check passed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
src=$PWD
build=${1:-build}
t0=$SECONDS
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAILED: $*"; fails=$((fails + 1)); }
die() { echo "check-install: $*" >&2; exit 1; }

for t in pkg-config cmake cc g++; do
    command -v $t >/dev/null 2>&1 || die "$t not found (scripts/install-deps.sh installs it)"
done
if [ ! -f "$build/build.ninja" ]; then
    echo "check-install: meson setup $build ${MESON_ARGS:-}"
    # shellcheck disable=SC2086 # MESON_ARGS is a list of options
    meson setup "$build" ${MESON_ARGS:-} >/dev/null || die "meson setup $build failed"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-install.XXXXXX")
work=$(readlink -f "$work")
[ "${KEEP:-0}" = 1 ] && echo "check-install: keeping $work" || trap 'rm -rf "$work"' EXIT
dest=$work/dest

# What the build installs, from meson's introspection: the targets to build
# (only those: no tests) and the file each becomes.
meson introspect --targets "$build" > "$work/targets.json" || die "meson introspect $build failed"
py() { if [ -x /usr/bin/python3 ]; then /usr/bin/python3 "$@"; else python3 "$@"; fi; }
mapfile -t outputs < <(py -c '
import json, os, sys
for t in json.load(open(sys.argv[1])):
    if t.get("installed"):
        for f in t["filename"]:
            print(os.path.relpath(f, sys.argv[2]))' "$work/targets.json" "$(readlink -f "$build")")
[ ${#outputs[@]} -gt 0 ] || die "nothing to install in $build"
ninja -C "$build" "${outputs[@]}" > "$work/ninja.log" 2>&1 ||
    { tail -n 30 "$work/ninja.log"; die "building the installed targets failed"; }
meson install -C "$build" --no-rebuild --destdir "$dest" > "$work/install.log" 2>&1 ||
    { tail -n 30 "$work/install.log"; die "meson install failed"; }

# The configured directories (absolute: under the prefix).
eval "$(meson introspect --buildoptions "$build" | py -c '
import json, os, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
p = o["prefix"]
for k in ("prefix", "libdir", "includedir", "bindir", "mandir"):
    v = o[k] if k == "prefix" else os.path.join(p, o[k])
    print("%s=%s" % (k, v))')"
root=$dest$prefix
lib=$dest$libdir
plugins=$lib/ferry/plugins
echo "check-install: installed $build into $dest (prefix $prefix) in $((SECONDS - t0))s"

# ---- the layout ----
for h in "$src"/include/ferry/*.h; do
    [ -f "$dest$includedir/ferry/$(basename "$h")" ] || bad "header ferry/$(basename "$h") not installed"
done
ok "headers in $includedir/ferry"
real=$(readlink -f "$lib/libferry.so")
soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ -L "$lib/libferry.so" ] && [ -n "$soname" ] && [ -L "$lib/$soname" ] &&
    [ "$(readlink -f "$lib/$soname")" = "$real" ] && [ ! -L "$real" ]; then
    ok "libferry: $(basename "$real"), $soname -> it, libferry.so -> $(readlink "$lib/libferry.so")"
else
    bad "libferry and its soname links in $libdir (libferry.so -> $soname -> the library)"
fi
want_plugins=$(py -c '
import json, sys
for t in json.load(open(sys.argv[1])):
    if t.get("installed") and t["type"] == "shared module":
        print(t["name"].replace("ferry_plugin_", ""))' "$work/targets.json" | sort)
have_plugins=$(find "$plugins" -maxdepth 1 -name 'libferry_plugin_*.so' 2>/dev/null |
    sed 's|.*/libferry_plugin_||; s|\.so$||' | sort)
[ "$want_plugins" = "$have_plugins" ] && ok "plugins in $libdir/ferry/plugins: $(echo $have_plugins)" ||
    bad "plugins in $libdir/ferry/plugins: $(echo $have_plugins), expected $(echo $want_plugins)"
[ -f "$lib/pkgconfig/ferry.pc" ] && ok "pkg-config: $libdir/pkgconfig/ferry.pc" || bad "no ferry.pc"
[ -f "$lib/cmake/ferry/ferryConfig.cmake" ] && [ -f "$lib/cmake/ferry/ferryConfigVersion.cmake" ] &&
    ok "CMake package: $libdir/cmake/ferry" || bad "no CMake package in $libdir/cmake/ferry"
tools=$(find "$dest$bindir" -type f 2>/dev/null | sed 's|.*/||' | sort)
for t in $tools; do
    case $t in
        ferry-*) ;;
        *) bad "$bindir/$t is installed: only ferry-* tools are" ;;
    esac
done
for t in ferry-info ferry-check; do
    echo "$tools" | grep -qx "$t" || bad "$t not installed"
done
ok "tools in $bindir: $(echo $tools)"
strays=$(find "$dest" \( -name 'test_*' -o -name 'fuzz_*' -o -name 'loopback' -o -name 'ferry-demo' \
    -o -name '*.a' -o -name 'libferry_plugin_badabi*' \) | sed "s|^$dest||")
[ -z "$strays" ] && ok "no test, fuzzer, example or static archive installed" ||
    bad "installed but not for users: $(echo $strays)"
# Manual pages: one in man3 per page of docs/api (and its functions'
# links), one in man1 per tool, when the build made them.
man3=$dest$mandir/man3 man1=$dest$mandir/man1
if [ -d "$man3" ]; then
    for md in "$src"/docs/api/*.md; do
        p=$(basename "$md" .md)
        [ "$p" = README ] && p=ferry || p=ferry_$p
        [ -f "$man3/$p.3" ] || bad "no manual page $p(3) for docs/api/$(basename "$md") (man/meson.build lists the pages)"
    done
    [ -L "$man3/ferry_xfer_post.3" ] && [ -f "$man3/ferry_xfer_post.3" ] || bad "no link ferry_xfer_post.3 to its page"
    ok "man3: $(find "$man3" -type f | wc -l) pages, $(find "$man3" -type l | wc -l) links"
    if [ -d "$man1" ]; then
        for t in $tools; do
            [ -f "$man1/$t.1" ] || bad "no manual page $t(1)"
        done
        ok "man1: $(ls "$man1" | tr '\n' ' ')"
    else
        echo "note: no section 1 pages (help2man missing or a sanitizer build)"
    fi
else
    echo "note: no manual pages (-Dman=disabled)"
fi
# Nothing installed runs from the build folder.
absbuild=$(readlink -f "$build")
for f in "$real" "$plugins"/*.so "$dest$bindir"/*; do
    [ -f "$f" ] || continue
    rp=$(readelf -d "$f" 2>/dev/null | grep -E 'R(UN)?PATH' || true)
    case $rp in *"$absbuild"* | *"$src"*) bad "$(basename "$f") has a run path into the sources: $rp" ;; esac
done
ok "no run path into the build folder"

# ---- consumers, built against the installed files only ----
# The installed ferry only: no build folder on any search path, no
# FERRY_PLUGIN_DIR (libferry must find <libdir>/ferry/plugins by itself).
export PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
unset PKG_CONFIG_LIBDIR FERRY_PLUGIN_DIR NIXL_PLUGIN_DIR
run() { # NAME EXE: runs it against the installed library
    local out
    if out=$(env -u FERRY_PLUGIN_DIR -u NIXL_PLUGIN_DIR LD_LIBRARY_PATH="$lib" FERRY_LOG_LEVEL=error \
        timeout 60 "$2" "$plugins" 2>&1); then
        ok "$1: $(echo "$out" | grep -E "^(libferry|read)" | tr '\n' ' ')"
        echo "$out" | grep '^plugin' | sed 's/^/    /'
    else
        bad "$1: it failed:"
        echo "$out" | sed 's/^/    /'
    fi
}
cflags=$(pkg-config --cflags ferry) libs=$(pkg-config --libs ferry)
echo "pkg-config: --cflags: $cflags  --libs: $libs  plugindir: $(pkg-config --variable=plugindir ferry)"
# shellcheck disable=SC2086 # the flags are lists
if cc -std=c11 -Wall -Wextra -Werror -pedantic $cflags -o "$work/consumer-c" tests/install/consumer.c \
    $libs 2> "$work/cc.log"; then
    run "C, pkg-config" "$work/consumer-c"
else
    bad "C, pkg-config: compiling failed:"; cat "$work/cc.log"
fi
# shellcheck disable=SC2086
if g++ -x c++ -std=c++11 -Wall -Wextra -Werror -pedantic $cflags -o "$work/consumer-cxx" \
    tests/install/consumer.c -x none $libs 2> "$work/cxx.log"; then
    run "C++, pkg-config" "$work/consumer-cxx"
else
    bad "C++, pkg-config: compiling failed:"; cat "$work/cxx.log"
fi
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
if cmake -S tests/install -B "$work/cmake" -DCMAKE_PREFIX_PATH="$root" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS="-Wall -Werror" > "$work/cmake.log" 2>&1 &&
    cmake --build "$work/cmake" >> "$work/cmake.log" 2>&1; then
    run "CMake, find_package(ferry) $(sed -n 's/.*PACKAGE_VERSION "\(.*\)".*/\1/p' "$lib/cmake/ferry/ferryConfigVersion.cmake" | head -1)" \
        "$work/cmake/consumer"
else
    bad "CMake, find_package(ferry): configuring or building failed:"; tail -n 30 "$work/cmake.log"
fi

# ---- the installed tools see the installed plugins ----
if out=$(env -u FERRY_PLUGIN_DIR LD_LIBRARY_PATH="$lib" timeout 60 "$dest$bindir/ferry-info" -p 2>&1); then
    missing=
    for p in $want_plugins; do
        echo "$out" | grep -qi "$plugins/libferry_plugin_$p.so" || missing+=" $p"
    done
    [ -z "$missing" ] && ok "the installed ferry-info -p lists the installed plugins" ||
        { bad "the installed ferry-info -p does not show plugins from $plugins:$missing"; echo "$out" | head -20; }
else
    bad "the installed ferry-info -p failed:"; echo "$out" | head -20
fi

echo "check-install: $fails failed, in $((SECONDS - t0))s"
[ $fails -eq 0 ]
