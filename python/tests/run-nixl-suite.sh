#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs NIXL's own Python test suite (NIXL_DIR/test/python), unchanged, with
# one or more Python interpreters, and prints one table: a row per test, a
# column per interpreter (PASS, FAIL, SKIP, ERROR).
#
#   python/tests/run-nixl-suite.sh NIXL_DIR PYTHON [PYTHON...]
#
# Each PYTHON is the interpreter of an environment where `import nixl` works:
# ferry's tree (ferry-kv + ferry-kv-nixl installed) or NIXL's own wheel (the
# baseline). The column is named after nixl.BACKEND ("ferry") or, for NIXL,
# the package nixl resolves to. Tests run from a scratch folder (NIXL's
# query_mem test writes files into the working directory) with pytest's
# cache off; NIXL's tests mark their time limits for pytest-timeout, which
# pytest loads by itself where it is installed. JUnit files stay in $NIXL_SUITE_OUT (default: a
# temporary folder). Exit status: 0 when every interpreter after the first
# passes every test the first one passes, 1 otherwise (so
# `run-nixl-suite.sh DIR NIXL_WHEEL_PY FERRY_PY` checks ferry against NIXL).
set -euo pipefail

if [ $# -lt 2 ] || [ ! -d "$1/test/python" ]; then
    echo "usage: $0 NIXL_DIR PYTHON [PYTHON...]  (NIXL_DIR/test/python must exist)" >&2
    exit 2
fi
SUITE=$(cd "$1/test/python" && pwd)
shift
OUT=${NIXL_SUITE_OUT:-$(mktemp -d /tmp/nixl-suite.XXXXXX)}
mkdir -p "$OUT"
commit=$(git -C "$SUITE" rev-parse --short=8 HEAD 2>/dev/null || echo "unknown")
echo "NIXL test suite: $SUITE (commit $commit)"

labels=()
i=0
for py in "$@"; do
    i=$((i + 1))
    # Absolute, without resolving links (a venv's python is a link).
    case $py in */*) py="$(cd "$(dirname "$py")" && pwd)/$(basename "$py")" ;; esac
    label=$("$py" -c 'import nixl
print(getattr(nixl, "BACKEND", None) or nixl._api.__name__.split(".")[0])' 2>/dev/null) ||
        { echo "$py: cannot import nixl" >&2; exit 2; }
    labels+=("$i:$label")
    scratch=$(mktemp -d /tmp/nixl-suite-run.XXXXXX)
    echo "--- $label ($py)"
    (cd "$scratch" && timeout 900 "$py" -m pytest -q -rs -p no:cacheprovider \
        --rootdir "$SUITE" --junitxml "$OUT/$i.xml" "$SUITE" 2>&1 | tail -n 15) || true
    rm -rf "$scratch"
done

/usr/bin/env python3 - "$OUT" "${labels[@]}" <<'EOF'
import sys
import xml.etree.ElementTree as ET

out, labels = sys.argv[1], sys.argv[2:]
results, order = [], []
for lab in labels:
    idx = lab.split(":", 1)[0]
    res = {}
    try:
        root = ET.parse(f"{out}/{idx}.xml").getroot()
    except (OSError, ET.ParseError):
        root = None
    for case in (root.iter("testcase") if root is not None else []):
        name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
        if name not in order:
            order.append(name)
        kinds = {child.tag for child in case}
        res[name] = ("FAIL" if "failure" in kinds else "ERROR" if "error" in kinds
                     else "SKIP" if "skipped" in kinds else "PASS")
    results.append(res)
names = [lab.split(":", 1)[1] for lab in labels]
width = max([len(n) for n in order] + [10])
print()
print(f"| {'test'.ljust(width)} | " + " | ".join(names) + " |")
print(f"|{'-' * (width + 2)}|" + "|".join("-" * (len(n) + 2) for n in names) + "|")
for test in order:
    print(f"| {test.ljust(width)} | " +
          " | ".join(r.get(test, "-").ljust(len(n)) for r, n in zip(results, names)) + " |")
for r, n in zip(results, names):
    counts = {k: sum(1 for v in r.values() if v == k) for k in ("PASS", "FAIL", "ERROR", "SKIP")}
    print(f"{n}: {counts['PASS']} passed, {counts['FAIL'] + counts['ERROR']} failed, "
          f"{counts['SKIP']} skipped")
missing = []
for r, n in zip(results[1:], names[1:]):
    missing += [f"{n}: {t}" for t, v in results[0].items() if v == "PASS" and r.get(t) != "PASS"]
if missing:
    print(f"passed with {names[0]} but not with the others:")
    print("\n".join("  " + m for m in missing))
sys.exit(1 if missing else 0)
EOF
