#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Compiles the C code of the documentation against include/ (as curl does
with its man pages' examples): every ```c block of README.md, docs/*.md and
docs/api/*.md. A block with an #include is a translation unit and compiles as
it is; one without is a fragment and is compiled inside a function, after
<ferry/ferry.h>, in a scope where the names pages use for context exist
(agent, backend, xfer, ...). A synopsis block (its first line says
"declared in" or "or <ferry/...>") compiles with its type definitions left
out: its prototypes must then agree with the headers'. An HTML comment on the line before the block changes that:

    <!-- doc-example: skip -->       not compiled (say why beside it)
    <!-- doc-example: fragment -->   inside a function even with includes

Usage: doc_examples.py SOURCE_ROOT [CC]. TAP output; exit 1 when a block does
not compile (the compiler's message names the page and the block's line)."""
import os
import re
import subprocess
import sys
import tempfile

ROOT = sys.argv[1] if len(sys.argv) > 1 else "."
CC = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("CC", "cc")
FLAGS = ["-std=c11", "-D_GNU_SOURCE", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
         "-Wno-unused-variable", "-Wno-unused-function", "-Wno-unused-parameter",
         "-Wno-unused-but-set-variable", "-I" + os.path.join(ROOT, "include")]
BLOCK = re.compile(r"^```c[ \t]*\n(.*?)^```", re.S | re.M)
MARK = re.compile(r"<!--\s*doc-example:\s*(\w+)\s*-->\s*$")


def pages():
    out = [os.path.join(ROOT, "README.md")]
    for d in ("docs", os.path.join("docs", "api")):
        full = os.path.join(ROOT, d)
        out += sorted(os.path.join(full, f) for f in os.listdir(full) if f.endswith(".md"))
    return out


def blocks(path):
    text = open(path, encoding="utf-8").read()
    for m in BLOCK.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARK.search(before)
        yield line, m.group(1), mark.group(1) if mark else None


# Names the pages' fragments take as given, declared in an outer scope (a
# fragment's own declarations shadow them).
CONTEXT = """    ferry_agent *agent = NULL, *a = NULL;
    ferry_backend *backend = NULL, *be = NULL;
    ferry_xfer *xfer = NULL;
    ferry_dlist *dlist = NULL, *regions = NULL, *local = NULL, *remote = NULL;
    ferry_status rc = FERRY_OK;
    const char *peer = "peer";
    void *blob = NULL;
    size_t len = 0;
    (void)agent; (void)a; (void)backend; (void)be; (void)xfer; (void)dlist; (void)regions;
    (void)local; (void)remote; (void)rc; (void)peer; (void)blob; (void)len;
"""
TYPEDEF_LINE = re.compile(r"^(typedef\s+)?(struct|enum|union)\b[^;{\n]*\{[^\n]*\}[^;\n]*;", re.M)
TYPEDEF = re.compile(r"^(typedef\s+)?(struct|enum|union)\b[^;{]*\{.*?^\}[^;]*;", re.S | re.M)


def synopsis(code):
    first = code.split("\n", 1)[0]
    return "declared in" in first or "/* or <ferry" in first


def source(path, line, code, mark):
    rel = os.path.relpath(path, ROOT)
    head = '#line %d "%s"\n' % (line + 1, rel)
    if mark != "fragment" and "#include" in code:
        if synopsis(code):
            # Blank the definitions out, keeping the line count.
            code = TYPEDEF_LINE.sub("", code)
            code = TYPEDEF.sub(lambda m: "\n" * m.group(0).count("\n"), code)
            code = re.sub(r"^#define (?:.*\\\n)*.*$",
                          lambda m: "\n" * m.group(0).count("\n"), code, flags=re.M)
        return head + code
    return ("#include <ferry/ferry.h>\n#include <stdio.h>\n#include <stdlib.h>\n"
            "#include <string.h>\nvoid doc_fragment(void);\nvoid doc_fragment(void)\n{\n"
            + CONTEXT + "{\n" + head + code + "\n}\n}\n")


def main():
    n = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in pages():
            for line, code, mark in blocks(path):
                n += 1
                what = "%s:%d" % (os.path.relpath(path, ROOT), line)
                if mark == "skip":
                    print("ok %d - %s # SKIP marked" % (n, what))
                    continue
                src = os.path.join(tmp, "block%d.c" % n)
                with open(src, "w") as f:
                    f.write(source(path, line, code, mark))
                r = subprocess.run([CC] + FLAGS + [src], capture_output=True, text=True)
                if r.returncode == 0:
                    print("ok %d - %s" % (n, what))
                else:
                    failed += 1
                    print("not ok %d - %s" % (n, what))
                    for l in (r.stderr or r.stdout).splitlines()[:20]:
                        print("# " + l)
    print("1..%d" % n)
    return 1 if failed or not n else 0


if __name__ == "__main__":
    sys.exit(main())
