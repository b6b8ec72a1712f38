#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks that src/ calls only downwards.

The call graph is read from the object files of a build (nm: the symbols
one object leaves undefined and another defines give an edge between their
source files), so it holds whatever macros and inline functions hide.
Calls through pointers (plugin ops, host callbacks, thread entry points)
are not edges: that is how a lower layer calls back up.

Fails (exit 1) when
  - files of src/ call each other in a circle, or
  - a file calls into a layer above its own (LAYERS, bottom first), or
  - a file of src/ belongs to no layer.

usage: check-layers.py [BUILD_DIR] [--quiet]
"""
import collections
import json
import os
import subprocess
import sys

# Bottom first. A layer is a folder of src/, or one file where a folder's
# top sits above a layer of its own (the agent's lifecycle starts and stops
# the side channel, which uses the agent's metadata functions).
LAYERS = [
    "src/common",  # logger, clocks, byte order
    "src/gpu",  # the CUDA driver, opened at run time
    "src/metadata",  # metadata and frame codecs, authentication (pure)
    "src/telemetry",  # metrics, ledger, event ring, Prometheus endpoint (fed by the core)
    "src/core",  # agent services, bottom to top: see docs/internals.md
    "src/sidechannel",  # the threaded metadata service over TCP
    "src/core/agent.c",  # agent create/destroy: starts everything above
]

# Objects compiled for these folders are other copies of the same sources.
OTHER_TARGETS = ("tests/", "tools/", "plugins/", "examples/", "bench/")


def layer_of(path):
    best = None
    for i, layer in enumerate(LAYERS):
        if path == layer or path.startswith(layer + "/"):
            if best is None or len(layer) > len(LAYERS[best]):
                best = i
    return best


def objects(build, root):
    """{source under src/: one object file compiled from it}"""
    with open(os.path.join(build, "compile_commands.json")) as f:
        cmds = json.load(f)
    out = {}
    for c in cmds:
        src = os.path.relpath(os.path.normpath(os.path.join(c["directory"], c["file"])), root)
        if not src.startswith("src/") or c["output"].startswith(OTHER_TARGETS):
            continue
        obj = os.path.join(c["directory"], c["output"])
        if os.path.exists(obj):
            out.setdefault(src, obj)
    return out


def symbols(obj):
    """(defined global symbols, undefined symbols) of one object"""
    text = subprocess.run(["nm", "-P", obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in text.splitlines():
        f = line.split()
        if len(f) < 2:
            continue
        if f[1] == "U":
            undefined.add(f[0])
        elif f[1] in "TDBRVWGSC":
            defined.add(f[0])
    return defined, undefined


def call_graph(objs):
    owner, needs = {}, {}
    for src, obj in objs.items():
        defined, needs[src] = symbols(obj)
        for s in defined:
            owner[s] = src
    graph = {src: collections.defaultdict(set) for src in objs}
    for src, undefined in needs.items():
        for s in undefined:
            dst = owner.get(s)
            if dst and dst != src:
                graph[src][dst].add(s)
    return graph


def circles(graph):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main(argv):
    quiet = "--quiet" in argv
    args = [a for a in argv if a != "--quiet"]
    build = os.path.abspath(args[0] if args else "build")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    objs = objects(build, root)
    if not objs:
        print(f"check-layers: no objects of src/ in {build} (build it first)")
        return 1
    graph = call_graph(objs)
    errors = []
    for src in sorted(graph):
        if layer_of(src) is None:
            errors.append(f"{src}: in no layer of LAYERS")
    for comp in circles(graph):
        errors.append("files call each other in a circle: " + " ".join(comp))
    for src in sorted(graph):
        for dst, syms in sorted(graph[src].items()):
            a, b = layer_of(src), layer_of(dst)
            if a is not None and b is not None and b > a:
                errors.append(f"{src} ({LAYERS[a]}) calls up into {dst} ({LAYERS[b]}): "
                              + " ".join(sorted(syms)))
    if not quiet:
        for i, layer in reversed(list(enumerate(LAYERS))):
            print(f"layer {i} {layer}")
            for src in sorted(s for s in graph if layer_of(s) == i):
                deps = " ".join(os.path.relpath(d, "src") for d in sorted(graph[src]))
                print(f"  {os.path.relpath(src, 'src')} -> {deps or '(nothing)'}")
    for e in errors:
        print("check-layers: " + e)
    print(f"check-layers: {len(graph)} files, "
          f"{sum(len(d) for d in graph.values())} edges, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
